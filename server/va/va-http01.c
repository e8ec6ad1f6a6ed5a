/* SPDX-License-Identifier: Apache-2.0 */

/* http-01 (RFC 8555 §8.3): GET http://IDENTIFIER:HTTPPort/.well-known/acme-challenge/TOKEN.
 *
 * Redirects are followed by hand, one fresh handle per hop, so that every host name is looked
 * up with our resolver (pinned with CURLOPT_RESOLVE) and every target is checked against the
 * allowed schemes and ports before we connect to it. */

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/va/va-internal.h"
#include "shared/macro.h"

static bool is_http_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup);
DEFINE_TRIVIAL_CLEANUP_FUNC(CURLU *, curl_url_cleanup);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all);

static inline void curl_freep(char **p) {
        curl_free(*p);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void va_curl_init(void) {
        curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct HttpBody {
        char data[VA_HTTP_BODY_MAX + 1];
        size_t size;
        bool too_large;
} HttpBody;

static size_t va_http_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        HttpBody *body = userdata;
        size_t n = size * nmemb;

        /* Returning less than n makes curl abort the transfer: the rest is never read. */
        if (n > VA_HTTP_BODY_MAX - body->size) {
                body->too_large = true;
                return 0;
        }
        memcpy(body->data + body->size, ptr, n);
        body->size += n;
        return n;
}

typedef struct HttpTarget {
        char *url;
        char *host;                  /* as in the URL: IPv6 literals with brackets */
        unsigned port;
} HttpTarget;

static void http_target_done(HttpTarget *t) {
        free(t->url);
        free(t->host);
        *t = (HttpTarget) {};
}

/* Checks a redirect target (or the first URL) and splits out what we need. */
static int va_http_target(const VaConfig *config, const char *url, HttpTarget *ret, char **ret_detail) {
        _cleanup_(curl_url_cleanupp) CURLU *u = NULL;
        _cleanup_(curl_freep) char *scheme = NULL, *host = NULL, *port = NULL;
        unsigned want;
        char *end;
        unsigned long p;

        if (strlen(url) > 2048)
                return va_fail(-CF_E_CONNECTION, ret_detail, "Redirect target too long");

        u = curl_url();
        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
                return va_fail(-CF_E_CONNECTION, ret_detail, "Invalid redirect target \"%s\"", url);

        /* Only the two ports a challenge may use, like Boulder's ports 80 and 443. */
        if (strcmp(scheme, "http") == 0)
                want = va_http_port(config);
        else if (strcmp(scheme, "https") == 0)
                want = va_tls_port(config);
        else
                return va_fail(-CF_E_CONNECTION, ret_detail,
                               "Invalid protocol scheme in redirect target \"%s\": only http and https are followed", url);

        errno = 0;
        p = strtoul(port, &end, 10);
        if (errno != 0 || *end != 0 || p != want)
                return va_fail(-CF_E_CONNECTION, ret_detail,
                               "Invalid port in redirect target \"%s\": only ports %u and %u are followed",
                               url, va_http_port(config), va_tls_port(config));

        *ret = (HttpTarget) {
                .url = strdup(url),
                .host = strdup(host),
                .port = want,
        };
        if (!ret->url || !ret->host) {
                http_target_done(ret);
                return -ENOMEM;
        }
        return 0;
}

/* "host:port:addr1,[addr2]" for CURLOPT_RESOLVE, or NULL for an IP literal curl won't resolve. */
static int va_http_pin(const VaConfig *config, const HttpTarget *t, va_usec_t deadline,
                       char **ret, char **ret_detail) {
        _cleanup_free_ VaAddress *addresses = NULL;
        _cleanup_free_ char *bare = NULL, *s = NULL;
        size_t n = 0, len = 0, size;
        int r;

        bare = strdup(t->host);
        if (!bare)
                return -ENOMEM;
        if (bare[0] == '[') {
                size_t l = strlen(bare);

                if (l < 3 || bare[l - 1] != ']')
                        return va_fail(-CF_E_CONNECTION, ret_detail, "Invalid host \"%s\"", t->host);
                memmove(bare, bare + 1, l - 2);
                bare[l - 2] = 0;
        }
        if (va_parse_ip(bare, NULL)) {
                *ret = NULL;
                return 0;
        }
        if (strspn(bare, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.") != strlen(bare) ||
            strlen(bare) > VA_IDENTIFIER_MAX)
                return va_fail(-CF_E_CONNECTION, ret_detail, "Invalid host \"%s\"", t->host);

        r = va_resolve_addresses(config, bare, deadline, &addresses, &n, ret_detail);
        if (r < 0)
                return r;

        size = strlen(bare) + 16 + n * (sizeof(addresses[0].text) + 3);
        s = malloc(size);
        if (!s)
                return -ENOMEM;
        len = snprintf(s, size, "%s:%u:", bare, t->port);
        for (size_t i = 0; i < n; i++)
                len += snprintf(s + len, size - len, addresses[i].family == AF_INET6 ? "%s[%s]" : "%s%s",
                                i > 0 ? "," : "", addresses[i].text);

        *ret = TAKE_PTR(s);
        return 0;
}

static int va_http_curl_error(CURLcode c, const char *url, const char *errbuf, char **ret_detail) {
        const char *what = errbuf[0] ? errbuf : curl_easy_strerror(c);

        switch (c) {
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
                return va_fail(-CF_E_TLS, ret_detail, "Fetching %s: TLS error: %s", url, what);
        case CURLE_OPERATION_TIMEDOUT:
                return va_fail(-CF_E_CONNECTION, ret_detail, "Fetching %s: Timeout during connect or read (%s)",
                               url, what);
        default:
                return va_fail(-CF_E_CONNECTION, ret_detail, "Fetching %s: Connection failed: %s", url, what);
        }
}

static bool va_http_is_redirect(long status) {
        return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

int va_validate_http01(const VaConfig *config, const VaRequest *req, va_usec_t deadline, char **ret_detail) {
        _cleanup_free_ char *first = NULL, *url = NULL;
        _cleanup_free_ HttpBody *body = NULL;
        int r;

        pthread_once(&curl_once, va_curl_init);
        if (curl_init_result != CURLE_OK)
                return va_fail(-CF_E_SERVER_INTERNAL, ret_detail, "Cannot initialize libcurl");

        if (strcmp(req->identifier_type, "ip") == 0) {
                VaAddress a;

                if (!va_parse_ip(req->identifier, &a))
                        return -EINVAL;
                r = asprintf(&first, a.family == AF_INET6 ? "http://[%s]:%u/.well-known/acme-challenge/%s"
                                                          : "http://%s:%u/.well-known/acme-challenge/%s",
                             a.text, va_http_port(config), req->token);
        } else
                r = asprintf(&first, "http://%s:%u/.well-known/acme-challenge/%s",
                             req->identifier, va_http_port(config), req->token);
        if (r < 0)
                return -ENOMEM;

        body = malloc(sizeof(HttpBody));
        if (!body)
                return -ENOMEM;

        url = TAKE_PTR(first);
        for (int hop = 0;; hop++) {
                _cleanup_(curl_easy_cleanupp) CURL *curl = NULL;
                _cleanup_(curl_slist_free_allp) struct curl_slist *resolve = NULL;
                _cleanup_(http_target_done) HttpTarget target = {};
                _cleanup_free_ char *pin = NULL;
                char errbuf[CURL_ERROR_SIZE] = "";
                char *location = NULL;
                long status = 0;
                int64_t left;
                CURLcode c;

                r = va_http_target(config, url, &target, ret_detail);
                if (r < 0)
                        return r;
                r = va_http_pin(config, &target, deadline, &pin, ret_detail);
                if (r < 0)
                        return r;

                left = va_remaining_ms(deadline);
                if (left <= 0)
                        return va_fail(-CF_E_CONNECTION, ret_detail, "Fetching %s: Timeout", url);

                curl = curl_easy_init();
                if (!curl)
                        return -ENOMEM;
                if (pin) {
                        resolve = curl_slist_append(NULL, pin);
                        if (!resolve)
                                return -ENOMEM;
                }

                *body = (HttpBody) {};
                if (curl_easy_setopt(curl, CURLOPT_URL, target.url) != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve) != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
                    /* The environment's proxy settings must not decide where we connect. */
                    curl_easy_setopt(curl, CURLOPT_PROXY, "") != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*") != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) left) != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) left) != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE, (long) VA_HTTP_BODY_MAX) != CURLE_OK ||
                    /* RFC 8555 §8.3 asks no certificate check of an https redirect target. */
                    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_USERAGENT, "certfleet-va") != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, va_http_write) != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body) != CURLE_OK)
                        return va_fail(-CF_E_SERVER_INTERNAL, ret_detail, "Cannot set up libcurl");

                c = curl_easy_perform(curl);
                if (body->too_large || c == CURLE_FILESIZE_EXCEEDED)
                        return va_fail(-CF_E_INCORRECT_RESPONSE, ret_detail,
                                       "Fetching %s: response body larger than %u bytes", target.url,
                                       VA_HTTP_BODY_MAX);
                if (c != CURLE_OK)
                        return va_http_curl_error(c, target.url, errbuf, ret_detail);

                (void) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
                if (va_http_is_redirect(status) &&
                    curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location) {
                        if (hop >= VA_HTTP_MAX_REDIRECTS)
                                return va_fail(-CF_E_CONNECTION, ret_detail, "Fetching %s: Too many redirects",
                                               target.url);
                        free(url);
                        url = strdup(location);
                        if (!url)
                                return -ENOMEM;
                        continue;
                }
                if (status != 200)
                        return va_fail(-CF_E_UNAUTHORIZED, ret_detail, "Invalid response from %s: %ld",
                                       target.url, status);

                /* RFC 8555 §8.3: trailing whitespace of the body is ignored. */
                while (body->size > 0 && is_http_space(body->data[body->size - 1]))
                        body->size--;
                body->data[body->size] = 0;

                if (body->size != strlen(req->key_authorization) ||
                    CRYPTO_memcmp(body->data, req->key_authorization, body->size) != 0) {
                        /* Printing a short, printable prefix helps the operator see what answered. */
                        int show = 0;

                        while ((size_t) show < body->size && show < 128 &&
                               body->data[show] >= 0x20 && body->data[show] < 0x7f)
                                show++;
                        return va_fail(-CF_E_INCORRECT_RESPONSE, ret_detail,
                                       "The key authorization file from the server did not match this challenge. "
                                       "Expected \"%s\" (got \"%.*s\")", req->key_authorization, show, body->data);
                }
                return 0;
        }
}
