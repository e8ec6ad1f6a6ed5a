/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "agent/agent-http.h"
#include "config.h"
#include "shared/errors.h"

struct AgentHttp {
        CURL *curl;
        char *ca_bundle;
        char error[CURL_ERROR_SIZE];
};

void agent_http_response_done(AgentHttpResponse *r) {
        free(r->body);
        free(r->content_type);
        free(r->location);
        free(r->replay_nonce);
        free(r->retry_after);
        free(r->link_up);
        *r = (AgentHttpResponse) {};
}

int agent_http_new(const char *ca_bundle, AgentHttp **ret) {
        AgentHttp *h = calloc(1, sizeof *h);

        if (!h)
                return -ENOMEM;
        h->curl = curl_easy_init();
        if (!h->curl) {
                free(h);
                return -ENOMEM;
        }
        if (ca_bundle && !(h->ca_bundle = strdup(ca_bundle))) {
                agent_http_free(h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

AgentHttp *agent_http_free(AgentHttp *h) {
        if (!h)
                return NULL;
        curl_easy_cleanup(h->curl);
        free(h->ca_bundle);
        free(h);
        return NULL;
}

const char *agent_http_last_error(AgentHttp *h) {
        return h->error;
}

typedef struct Sink {
        AgentHttpResponse *resp;
        bool too_large;
        bool too_many_headers;
        unsigned n_headers;
} Sink;

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata) {
        Sink *s = userdata;
        size_t n = size * nmemb;
        char *p;

        if (s->resp->body_size + n > AGENT_HTTP_BODY_MAX) {
                s->too_large = true;
                return 0;   /* aborts the transfer */
        }
        p = realloc(s->resp->body, s->resp->body_size + n + 1);
        if (!p)
                return 0;
        memcpy(p + s->resp->body_size, data, n);
        s->resp->body = p;
        s->resp->body_size += n;
        p[s->resp->body_size] = 0;
        return n;
}

static char *strip(const char *s, size_t n) {
        while (n > 0 && isspace((unsigned char) *s))
                s++, n--;
        while (n > 0 && isspace((unsigned char) s[n - 1]))
                n--;
        return strndup(s, n);
}

static void set_header(char **field, const char *value, size_t n) {
        char *v;

        if (n > AGENT_HTTP_HEADER_MAX)
                return;
        v = strip(value, n);
        if (!v)
                return;
        free(*field);
        *field = v;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *userdata) {
        Sink *s = userdata;
        size_t n = size * nmemb;
        const char *colon = memchr(data, ':', n);
        size_t name_len, value_len;
        const char *value;

        /* A new status line (after a 100 Continue, say) starts a fresh header set. */
        if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
                AgentHttpResponse *r = s->resp;
                free(r->content_type); free(r->location); free(r->replay_nonce);
                free(r->retry_after); free(r->link_up);
                r->content_type = r->location = r->replay_nonce = r->retry_after = r->link_up = NULL;
                s->n_headers = 0;
                return n;
        }
        /* libcurl bounds the length of one line, not the number of lines: a server must not keep
         * us parsing an endless head of tiny headers (the empty line ending the head is free). */
        if (!(n <= 2 && (data[0] == '\r' || data[0] == '\n')) && ++s->n_headers > AGENT_HTTP_HEADERS_MAX) {
                s->too_many_headers = true;
                return 0;   /* aborts the transfer */
        }
        if (!colon)
                return n;
        name_len = (size_t) (colon - data);
        value = colon + 1;
        value_len = n - name_len - 1;

#define IS(h) (name_len == strlen(h) && strncasecmp(data, h, name_len) == 0)
        if (IS("Replay-Nonce"))
                set_header(&s->resp->replay_nonce, value, value_len);
        else if (IS("Location"))
                set_header(&s->resp->location, value, value_len);
        else if (IS("Retry-After"))
                set_header(&s->resp->retry_after, value, value_len);
        else if (IS("Content-Type")) {
                const char *semi = memchr(value, ';', value_len);
                set_header(&s->resp->content_type, value, semi ? (size_t) (semi - value) : value_len);
                for (char *p = s->resp->content_type; p && *p; p++)
                        *p = (char) tolower((unsigned char) *p);
        } else if (IS("Link")) {
                /* Only rel="up" matters to us. */
                if (value_len < AGENT_HTTP_HEADER_MAX) {
                        _cleanup_free_ char *v = strip(value, value_len);
                        if (v && strstr(v, "rel=\"up\"")) {
                                char *lt = strchr(v, '<'), *gt = lt ? strchr(lt, '>') : NULL;
                                if (lt && gt)
                                        set_header(&s->resp->link_up, lt + 1, (size_t) (gt - lt - 1));
                        }
                }
        }
#undef IS
        return n;
}

static int map_curl_error(CURLcode c) {
        switch (c) {
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
                return -EPROTO;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        default:
                return -EIO;
        }
}

static int perform(AgentHttp *h, const char *url, const char *method, const char *body,
                   const char *accept, AgentHttpResponse *ret) {
        struct curl_slist *headers = NULL;
        AgentHttpResponse resp = {};
        Sink sink = { .resp = &resp };
        _cleanup_free_ char *accept_header = NULL;
        CURLcode c;

        curl_easy_reset(h->curl);
        h->error[0] = 0;
        curl_easy_setopt(h->curl, CURLOPT_URL, url);
        curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->error);
        curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, (long) AGENT_HTTP_TIMEOUT_SEC);
        curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, (long) AGENT_HTTP_CONNECT_TIMEOUT_SEC);
        curl_easy_setopt(h->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) AGENT_HTTP_BODY_MAX);
        curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "certfleet-agent/" CERTFLEET_VERSION);
        curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &sink);
        curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, &sink);
        if (h->ca_bundle)
                curl_easy_setopt(h->curl, CURLOPT_CAINFO, h->ca_bundle);

        if (strcmp(method, "HEAD") == 0)
                curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
        else if (strcmp(method, "POST") == 0) {
                headers = curl_slist_append(headers, "Content-Type: application/jose+json");
                curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(body));
        }
        if (accept) {
                if (asprintf(&accept_header, "Accept: %s", accept) < 0) {
                        curl_slist_free_all(headers);
                        return -ENOMEM;
                }
                headers = curl_slist_append(headers, accept_header);
        }
        if (headers)
                curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers);

        c = curl_easy_perform(h->curl);
        curl_slist_free_all(headers);
        if (c != CURLE_OK) {
                agent_http_response_done(&resp);
                if (sink.too_large || c == CURLE_FILESIZE_EXCEEDED)
                        return -E2BIG;
                if (sink.too_many_headers) {
                        snprintf(h->error, sizeof h->error, "more than %d header lines in the response",
                                 AGENT_HTTP_HEADERS_MAX);
                        return -EMSGSIZE;
                }
                if (!h->error[0])
                        snprintf(h->error, sizeof h->error, "%s", curl_easy_strerror(c));
                return map_curl_error(c);
        }
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp.status);
        if (!resp.body) {
                resp.body = strdup("");
                if (!resp.body) {
                        agent_http_response_done(&resp);
                        return -ENOMEM;
                }
        }
        *ret = resp;
        return 0;
}

int agent_http_get(AgentHttp *h, const char *url, AgentHttpResponse *ret) {
        return perform(h, url, "GET", NULL, NULL, ret);
}

int agent_http_head(AgentHttp *h, const char *url, AgentHttpResponse *ret) {
        return perform(h, url, "HEAD", NULL, NULL, ret);
}

int agent_http_post_jose(AgentHttp *h, const char *url, const char *body, const char *accept,
                         AgentHttpResponse *ret) {
        return perform(h, url, "POST", body, accept, ret);
}
