/* SPDX-License-Identifier: Apache-2.0 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/x509.h>

#include "bench/bench-acme.h"
#include "shared/base64.h"
#include "shared/csr.h"
#include "shared/jose.h"
#include "shared/json-util.h"
#include "shared/key.h"
#include "shared/pem.h"

#define RESPONSE_MAX (1024u * 1024u)
#define NONCE_MAX 256u
#define LOCATION_MAX 2048u
#define BAD_NONCE_RETRIES 3
#define ACME_ERROR_PREFIX "urn:ietf:params:acme:error:"

typedef enum Method {
        METHOD_HEAD,
        METHOD_GET,
        METHOD_POST,
} Method;

struct BenchClient {
        BenchClientOptions o;
        CURL *curl;
        struct curl_slist *headers;
        char curl_error[CURL_ERROR_SIZE];
        EVP_PKEY *account_key;
        EVP_PKEY *cert_key;
        char *kid;
        char *thumbprint;
        char nonce[NONCE_MAX];          /* the next nonce to use; "" when none */

        /* The last response; the buffer is reused across requests. */
        long status;
        char *body;
        size_t body_size, body_alloc;
        bool body_too_large;
        char location[LOCATION_MAX];
        char reply_nonce[NONCE_MAX];

        BenchClientStats stats;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup);

static int fail(BenchError *err, int r, const char *type, const char *format, ...) _printf_(4, 5);
static int fail(BenchError *err, int r, const char *type, const char *format, ...) {
        va_list ap;

        snprintf(err->type, sizeof(err->type), "%s", type);
        va_start(ap, format);
        vsnprintf(err->detail, sizeof(err->detail), format, ap);
        va_end(ap);
        return r;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata) {
        BenchClient *c = userdata;
        size_t n = size * nmemb;

        if (c->body_size + n + 1 > RESPONSE_MAX) {
                c->body_too_large = true;
                return 0;   /* aborts the transfer */
        }
        if (c->body_size + n + 1 > c->body_alloc) {
                size_t a = MAX(c->body_alloc * 2, c->body_size + n + 1);
                char *b = realloc(c->body, a);

                if (!b)
                        return 0;
                c->body = b;
                c->body_alloc = a;
        }
        memcpy(c->body + c->body_size, data, n);
        c->body_size += n;
        c->body[c->body_size] = 0;
        return n;
}

/* Copies the value of header line "name: value\r\n" into buf if the line is that header. */
static void header_value(const char *line, size_t n, const char *name, char *buf, size_t size) {
        size_t l = strlen(name), e;

        if (n <= l + 1 || strncasecmp(line, name, l) != 0 || line[l] != ':')
                return;
        line += l + 1;
        n -= l + 1;
        while (n > 0 && (*line == ' ' || *line == '\t')) {
                line++;
                n--;
        }
        e = n;
        while (e > 0 && (line[e - 1] == '\r' || line[e - 1] == '\n' || line[e - 1] == ' '))
                e--;
        if (e >= size)
                return;
        memcpy(buf, line, e);
        buf[e] = 0;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *userdata) {
        BenchClient *c = userdata;
        size_t n = size * nmemb;

        header_value(data, n, "Replay-Nonce", c->reply_nonce, sizeof(c->reply_nonce));
        header_value(data, n, "Location", c->location, sizeof(c->location));
        return n;
}

static int curl_setup(CURL *curl, const char *ca_file, char *error_buffer) {
        if (curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer) != CURLE_OK)
                return -EIO;
        if (ca_file && curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file) != CURLE_OK)
                return -EIO;
        return 0;
}

static int request(BenchClient *c, Method method, const char *url, const char *body, BenchError *err) {
        CURLcode cr;
        long connects = 0;

        c->body_size = 0;
        c->body_too_large = false;
        if (c->body)
                c->body[0] = 0;
        c->location[0] = 0;
        c->reply_nonce[0] = 0;
        c->curl_error[0] = 0;

        curl_easy_setopt(c->curl, CURLOPT_URL, url);
        switch (method) {
        case METHOD_HEAD:
                curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
                break;
        case METHOD_GET:
                curl_easy_setopt(c->curl, CURLOPT_NOBODY, 0L);
                curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
                break;
        case METHOD_POST:
                curl_easy_setopt(c->curl, CURLOPT_NOBODY, 0L);
                curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
                curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
                break;
        }

        c->stats.requests++;
        cr = curl_easy_perform(c->curl);
        if (curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK)
                c->stats.connects += (uint64_t) connects;
        if (cr != CURLE_OK) {
                char type[32];

                snprintf(type, sizeof(type), "curl-%d", (int) cr);
                return fail(err, -EIO, c->body_too_large ? "response-too-large" : type, "%s %s: %s",
                            method == METHOD_POST ? "POST" : method == METHOD_GET ? "GET" : "HEAD", url,
                            c->curl_error[0] ? c->curl_error : curl_easy_strerror(cr));
        }
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
        if (c->o.trace) {
                double total = 0;

                curl_easy_getinfo(c->curl, CURLINFO_TOTAL_TIME, &total);
                fprintf(stderr, "acme-load: %s %s → %ld in %.1f ms\n",
                        method == METHOD_POST ? "POST" : method == METHOD_GET ? "GET" : "HEAD", url,
                        c->status, total * 1e3);
        }
        if (c->reply_nonce[0])
                memcpy(c->nonce, c->reply_nonce, sizeof(c->nonce));
        if (!c->body) {
                /* Keeps c->body a valid string for callers even after an empty response. */
                c->body = calloc(1, 1024);
                if (!c->body)
                        return fail(err, -ENOMEM, "oom", "out of memory");
                c->body_alloc = 1024;
        }
        return 0;
}

static int fetch_nonce(BenchClient *c, BenchError *err) {
        int r;

        c->stats.nonce_fetches++;
        r = request(c, METHOD_HEAD, c->o.directory->new_nonce, NULL, err);
        if (r < 0)
                return r;
        if (!c->nonce[0])
                return fail(err, -EPROTO, "no-nonce", "HEAD %s: status %ld without Replay-Nonce",
                            c->o.directory->new_nonce, c->status);
        return 0;
}

/* A signed POST (payload NULL: POST-as-GET). 2xx: 0 and the response is in c. An ACME problem:
 * -EPROTO with err->type the problem type without its URN prefix. badNonce is retried with the
 * nonce of the error response, as RFC 8555 §6.5 asks clients to. */
static int post(BenchClient *c, const char *url, json_object *payload, bool use_jwk, BenchError *err) {
        for (unsigned attempt = 0;; attempt++) {
                _cleanup_(json_object_putp) json_object *problem = NULL;
                _cleanup_free_ char *jws = NULL;
                const char *type = NULL, *detail = "";
                int r;

                if (!c->nonce[0]) {
                        r = fetch_nonce(c, err);
                        if (r < 0)
                                return r;
                }
                r = jws_sign(c->account_key, use_jwk ? NULL : c->kid, c->nonce, url, payload, &jws);
                if (r < 0)
                        return fail(err, r, "jws-sign", "jws_sign() failed: %s", strerror(-r));
                c->nonce[0] = 0;   /* used up, whatever happens next */

                r = request(c, METHOD_POST, url, jws, err);
                if (r < 0)
                        return r;
                if (c->status >= 200 && c->status < 300)
                        return 0;

                if (json_parse_strict(c->body, c->body_size, RESPONSE_MAX, &problem) >= 0) {
                        (void) json_get_string(problem, "type", &type);
                        (void) json_get_string(problem, "detail", &detail);
                }
                if (type && strncmp(type, ACME_ERROR_PREFIX, strlen(ACME_ERROR_PREFIX)) == 0)
                        type += strlen(ACME_ERROR_PREFIX);
                if (type && strcmp(type, "badNonce") == 0 && attempt < BAD_NONCE_RETRIES) {
                        c->stats.bad_nonce_retries++;
                        continue;
                }
                if (type) {
                        char t[64];

                        snprintf(t, sizeof(t), "%ld-%s", c->status, type);
                        return fail(err, -EPROTO, t, "POST %s: %ld %s: %s", url, c->status, type, detail);
                }
                {
                        char t[64];

                        snprintf(t, sizeof(t), "http-%ld", c->status);
                        return fail(err, -EPROTO, t, "POST %s: %ld: %.200s", url, c->status, c->body);
                }
        }
}

static int parse_body(BenchClient *c, const char *what, json_object **ret, BenchError *err) {
        int r;

        r = json_parse_strict(c->body, c->body_size, RESPONSE_MAX, ret);
        if (r < 0)
                return fail(err, r, "bad-json", "%s: response is not JSON: %.200s", what, c->body);
        return 0;
}

int bench_directory_fetch(const char *url, const char *ca_file, BenchDirectory *ret, BenchError *err) {
        _cleanup_(curl_easy_cleanupp) CURL *curl = NULL;
        _cleanup_(json_object_putp) json_object *dir = NULL;
        BenchClient tmp = {};
        const char *nn, *na, *no;
        BenchDirectory d = {};
        int r;

        curl = curl_easy_init();
        if (!curl)
                return fail(err, -ENOMEM, "curl-init", "curl_easy_init() failed");
        r = curl_setup(curl, ca_file, tmp.curl_error);
        if (r < 0)
                return fail(err, r, "curl-setup", "curl_easy_setopt() failed");
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &tmp);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &tmp);
        tmp.curl = curl;

        r = request(&tmp, METHOD_GET, url, NULL, err);
        if (r >= 0 && tmp.status != 200)
                r = fail(err, -EPROTO, "directory", "GET %s: status %ld", url, tmp.status);
        if (r >= 0)
                r = parse_body(&tmp, "directory", &dir, err);
        if (r >= 0 && (json_get_string(dir, "newNonce", &nn) < 0 ||
                       json_get_string(dir, "newAccount", &na) < 0 ||
                       json_get_string(dir, "newOrder", &no) < 0))
                r = fail(err, -EBADMSG, "directory", "%s lacks newNonce/newAccount/newOrder", url);
        if (r >= 0) {
                d.new_nonce = strdup(nn);
                d.new_account = strdup(na);
                d.new_order = strdup(no);
                if (!d.new_nonce || !d.new_account || !d.new_order) {
                        bench_directory_done(&d);
                        r = fail(err, -ENOMEM, "oom", "out of memory");
                }
        }
        free(tmp.body);
        if (r < 0)
                return r;
        *ret = d;
        return 0;
}

void bench_directory_done(BenchDirectory *d) {
        free(d->new_nonce);
        free(d->new_account);
        free(d->new_order);
        *d = (BenchDirectory) {};
}

int bench_client_new(const BenchClientOptions *o, BenchClient **ret) {
        _cleanup_(bench_client_freep) BenchClient *c = NULL;
        struct curl_slist *l;
        int r;

        c = calloc(1, sizeof(BenchClient));
        if (!c)
                return -ENOMEM;
        c->o = *o;

        r = key_generate(KEY_EC_P256, &c->account_key);
        if (r < 0)
                return r;
        if (!o->new_key_per_order) {
                r = key_generate(KEY_EC_P256, &c->cert_key);
                if (r < 0)
                        return r;
        }
        r = jwk_thumbprint_from_key(c->account_key, &c->thumbprint);
        if (r < 0)
                return r;

        c->curl = curl_easy_init();
        if (!c->curl)
                return -ENOMEM;
        r = curl_setup(c->curl, o->ca_file, c->curl_error);
        if (r < 0)
                return r;
        /* "Expect:" keeps curl from waiting for a 100 Continue before larger bodies (finalize). */
        l = curl_slist_append(NULL, "Content-Type: application/jose+json");
        if (l)
                c->headers = l;
        l = l ? curl_slist_append(l, "Expect:") : NULL;
        if (!l)
                return -ENOMEM;
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, c);

        *ret = TAKE_PTR(c);
        return 0;
}

BenchClient *bench_client_free(BenchClient *c) {
        if (!c)
                return NULL;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        curl_slist_free_all(c->headers);
        EVP_PKEY_free(c->account_key);
        EVP_PKEY_free(c->cert_key);
        free(c->kid);
        free(c->thumbprint);
        free(c->body);
        free(c);
        return NULL;
}

const BenchClientStats *bench_client_get_stats(BenchClient *c) {
        return &c->stats;
}

int bench_client_register(BenchClient *c, BenchError *err) {
        _cleanup_(json_object_putp) json_object *payload = NULL;
        int r;

        if (c->kid)
                return 0;
        payload = json_object_new_object();
        if (!payload || json_object_object_add(payload, "termsOfServiceAgreed", json_object_new_boolean(1)) < 0)
                return fail(err, -ENOMEM, "oom", "out of memory");
        r = post(c, c->o.directory->new_account, payload, true, err);
        if (r < 0)
                return r;
        if (!c->location[0])
                return fail(err, -EPROTO, "no-location", "newAccount: status %ld without Location", c->status);
        c->kid = strdup(c->location);
        if (!c->kid)
                return fail(err, -ENOMEM, "oom", "out of memory");
        return 0;
}

/* POST-as-GET url until its "status" leaves pending/processing (or ready, for an order being
 * finalized: some servers answer the finalize before flipping the order to processing). *ret
 * holds the last object. Short, growing sleeps: the latency they add is part of what we measure. */
static int poll_status(BenchClient *c, const char *url, const char *what, bool wait_ready,
                       json_object **ret, BenchError *err) {
        unsigned delay = c->o.poll_min_ms, waited = 0;

        for (;;) {
                _cleanup_(json_object_putp) json_object *obj = NULL;
                const char *status;
                int r;

                sleep_ms(delay);
                waited += delay;
                delay = MIN(delay * 3 / 2 + 1, c->o.poll_max_ms);

                c->stats.polls++;
                r = post(c, url, NULL, false, err);
                if (r < 0)
                        return r;
                r = parse_body(c, what, &obj, err);
                if (r < 0)
                        return r;
                if (json_get_string(obj, "status", &status) < 0)
                        return fail(err, -EBADMSG, "bad-json", "%s %s without status", what, url);
                if (strcmp(status, "pending") != 0 && strcmp(status, "processing") != 0 &&
                    !(wait_ready && strcmp(status, "ready") == 0)) {
                        *ret = TAKE_PTR(obj);
                        return 0;
                }
                if (waited >= c->o.poll_timeout_ms)
                        return fail(err, -ETIMEDOUT, "poll-timeout", "%s %s still %s after %u ms",
                                    what, url, status, waited);
        }
}

static int csr_payload(BenchClient *c, const char *dns_name, json_object **ret, BenchError *err) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *fresh = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        _cleanup_(json_object_putp) json_object *payload = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *b64 = NULL;
        char *names[] = { (char *) dns_name, NULL };
        size_t der_len;
        int r;

        if (c->o.new_key_per_order) {
                r = key_generate(KEY_EC_P256, &fresh);
                if (r < 0)
                        return fail(err, r, "keygen", "key_generate() failed: %s", strerror(-r));
        }
        r = csr_build(&(CsrRequest) { .key = fresh ?: c->cert_key, .dns = names }, &csr);
        if (r < 0)
                return fail(err, r, "csr", "csr_build() failed: %s", strerror(-r));
        r = der_write_csr(csr, &der, &der_len);
        if (r < 0)
                return fail(err, r, "csr", "der_write_csr() failed: %s", strerror(-r));
        r = base64url_encode(der, der_len, &b64);
        if (r < 0)
                return fail(err, r, "csr", "base64url_encode() failed");
        payload = json_object_new_object();
        if (!payload || json_object_object_add(payload, "csr", json_object_new_string(b64)) < 0)
                return fail(err, -ENOMEM, "oom", "out of memory");
        *ret = TAKE_PTR(payload);
        return 0;
}

static int validate_authz(BenchClient *c, const char *authz_url, BenchError *err) {
        _cleanup_(json_object_putp) json_object *authz = NULL, *done = NULL, *empty = NULL, *chall = NULL;
        _cleanup_free_ char *challenge_url = NULL, *token = NULL, *keyauth = NULL;
        json_object *challenges;
        const char *status;
        int r;

        r = post(c, authz_url, NULL, false, err);
        if (r < 0)
                return r;
        r = parse_body(c, "authorization", &authz, err);
        if (r < 0)
                return r;
        if (json_get_string(authz, "status", &status) < 0)
                return fail(err, -EBADMSG, "bad-json", "authorization %s without status", authz_url);
        if (strcmp(status, "valid") == 0)
                return 0;   /* reused: nothing to prove */
        if (json_get_array(authz, "challenges", &challenges) < 0)
                return fail(err, -EBADMSG, "bad-json", "authorization %s without challenges", authz_url);
        for (size_t i = 0; i < json_object_array_length(challenges); i++) {
                json_object *ch = json_object_array_get_idx(challenges, i);
                const char *type, *url, *tok;

                if (json_get_string(ch, "type", &type) < 0 || strcmp(type, "http-01") != 0)
                        continue;
                if (json_get_string(ch, "url", &url) < 0 || json_get_string(ch, "token", &tok) < 0)
                        return fail(err, -EBADMSG, "bad-json", "http-01 challenge without url/token");
                challenge_url = strdup(url);
                token = strdup(tok);
                if (!challenge_url || !token)
                        return fail(err, -ENOMEM, "oom", "out of memory");
                break;
        }
        if (!challenge_url)
                return fail(err, -EBADMSG, "no-http-01", "authorization %s offers no http-01", authz_url);

        if (asprintf(&keyauth, "%s.%s", token, c->thumbprint) < 0) {
                keyauth = NULL;
                return fail(err, -ENOMEM, "oom", "out of memory");
        }
        r = http01_responder_put(c->o.responder, token, keyauth);
        if (r < 0)
                return fail(err, r, "oom", "out of memory");

        empty = json_object_new_object();
        if (!empty)
                r = fail(err, -ENOMEM, "oom", "out of memory");
        else
                r = post(c, challenge_url, empty, false, err);
        if (r >= 0)
                r = parse_body(c, "challenge", &chall, err);
        if (r >= 0 && json_get_string(chall, "status", &status) < 0)
                r = fail(err, -EBADMSG, "bad-json", "challenge %s without status", challenge_url);
        /* A server may answer the challenge POST with the outcome (RFC 8555 §7.5.1). Valid means
         * a valid authorization when it has this one challenge, as lego assumes too; invalid is
         * final. Anything else: poll the authorization. */
        if (r >= 0 && strcmp(status, "valid") == 0) {
                http01_responder_remove(c->o.responder, token);
                return 0;
        }
        if (r >= 0 && strcmp(status, "invalid") == 0) {
                json_object *problem;
                const char *detail = "";

                http01_responder_remove(c->o.responder, token);
                if (json_get_object(chall, "error", &problem) >= 0)
                        detail = json_to_string_compact(problem);
                return fail(err, -EPROTO, "authz-invalid", "challenge %s is invalid: %s", challenge_url, detail);
        }
        if (r >= 0)
                r = poll_status(c, authz_url, "authorization", false, &done, err);
        http01_responder_remove(c->o.responder, token);
        if (r < 0)
                return r;

        (void) json_get_string(done, "status", &status);
        if (strcmp(status, "valid") != 0) {
                json_object *chs, *problem;
                const char *detail = "";

                if (json_get_array(done, "challenges", &chs) >= 0)
                        for (size_t i = 0; i < json_object_array_length(chs); i++)
                                if (json_get_object(json_object_array_get_idx(chs, i), "error", &problem) >= 0) {
                                        detail = json_to_string_compact(problem);
                                        break;
                                }
                return fail(err, -EPROTO, "authz-invalid", "authorization %s is %s: %s", authz_url, status, detail);
        }
        return 0;
}

int bench_client_issue(BenchClient *c, const char *dns_name, BenchError *err) {
        _cleanup_(json_object_putp) json_object *payload = NULL, *order = NULL, *final = NULL, *csr = NULL;
        _cleanup_free_ char *order_url = NULL, *finalize_url = NULL, *cert_url = NULL;
        json_object *authzs, *ids, *id;
        const char *status, *s;
        int r;

        payload = json_object_new_object();
        ids = json_object_new_array();
        id = json_object_new_object();
        if (!payload || !ids || !id ||
            json_object_object_add(id, "type", json_object_new_string("dns")) < 0 ||
            json_object_object_add(id, "value", json_object_new_string(dns_name)) < 0 ||
            json_object_array_add(ids, id) < 0 ||
            json_object_object_add(payload, "identifiers", ids) < 0) {
                json_object_put(ids);
                json_object_put(id);
                return fail(err, -ENOMEM, "oom", "out of memory");
        }

        r = post(c, c->o.directory->new_order, payload, false, err);
        if (r < 0)
                return r;
        if (!c->location[0])
                return fail(err, -EPROTO, "no-location", "newOrder: status %ld without Location", c->status);
        order_url = strdup(c->location);
        if (!order_url)
                return fail(err, -ENOMEM, "oom", "out of memory");
        r = parse_body(c, "order", &order, err);
        if (r < 0)
                return r;
        if (json_get_array(order, "authorizations", &authzs) < 0 || json_get_string(order, "finalize", &s) < 0)
                return fail(err, -EBADMSG, "bad-json", "order %s without authorizations/finalize", order_url);
        finalize_url = strdup(s);
        if (!finalize_url)
                return fail(err, -ENOMEM, "oom", "out of memory");

        for (size_t i = 0; i < json_object_array_length(authzs); i++) {
                _cleanup_free_ char *authz_url = NULL;
                const char *u = json_object_get_string(json_object_array_get_idx(authzs, i));

                if (!u)
                        return fail(err, -EBADMSG, "bad-json", "order %s: authorization URL is not a string", order_url);
                authz_url = strdup(u);
                if (!authz_url)
                        return fail(err, -ENOMEM, "oom", "out of memory");
                r = validate_authz(c, authz_url, err);
                if (r < 0)
                        return r;
        }

        r = csr_payload(c, dns_name, &csr, err);
        if (r < 0)
                return r;
        r = post(c, finalize_url, csr, false, err);
        if (r < 0)
                return r;
        r = parse_body(c, "order", &final, err);
        if (r < 0)
                return r;
        if (json_get_string(final, "status", &status) < 0)
                return fail(err, -EBADMSG, "bad-json", "finalized order %s without status", order_url);
        if (strcmp(status, "valid") != 0) {
                json_object_put(TAKE_PTR(final));
                r = poll_status(c, order_url, "order", true, &final, err);
                if (r < 0)
                        return r;
                (void) json_get_string(final, "status", &status);
                if (strcmp(status, "valid") != 0)
                        return fail(err, -EPROTO, "order-invalid", "order %s is %s after finalize: %.200s",
                                    order_url, status, json_to_string_compact(final));
        }
        if (json_get_string(final, "certificate", &s) < 0)
                return fail(err, -EBADMSG, "bad-json", "valid order %s without certificate", order_url);
        cert_url = strdup(s);
        if (!cert_url)
                return fail(err, -ENOMEM, "oom", "out of memory");

        r = post(c, cert_url, NULL, false, err);
        if (r < 0)
                return r;
        if (strncmp(c->body, "-----BEGIN CERTIFICATE-----", 27) != 0)
                return fail(err, -EBADMSG, "bad-certificate", "certificate %s is not PEM: %.100s", cert_url, c->body);
        return 0;
}
