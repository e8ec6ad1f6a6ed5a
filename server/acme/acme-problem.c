/* SPDX-License-Identifier: Apache-2.0 */
/* Responses: JSON bodies, problem documents and the headers every ACME response carries. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/acme/acme-internal.h"
#include "shared/errors.h"
#include "shared/log.h"
#include "shared/json-util.h"
#include "shared/problem.h"

void acme_request_done(AcmeRequest *r) {
        free(r->route_key);
        free(r->prefix_url);
        jws_free(r->jws);
        acme_account_free(r->account);
        EVP_PKEY_free(r->key);
        json_object_put(r->payload);
        free(r->detail);
        free(r->location);
        free(r->nonce_id);
        *r = (AcmeRequest) {};
}

int acme_fail(AcmeRequest *r, int error, const char *format, ...) {
        va_list ap;
        char *d = NULL;

        va_start(ap, format);
        if (vasprintf(&d, format, ap) < 0)
                d = NULL;
        va_end(ap);
        free(r->detail);
        r->detail = d;
        return error;
}

char *acme_url(const AcmeRequest *r, const char *format, ...) {
        _cleanup_free_ char *tail = NULL;
        char *u = NULL;
        va_list ap;
        int n;

        va_start(ap, format);
        n = vasprintf(&tail, format, ap);
        va_end(ap);
        if (n < 0)
                return NULL;
        if (asprintf(&u, "%s%s", r->prefix_url, tail) < 0)
                return NULL;
        return u;
}

int acme_parse_id(const char *resource, const char *prefix, const char *suffix, int64_t *ret) {
        size_t lp = strlen(prefix), ls = suffix ? strlen(suffix) : 0, n;
        const char *p;
        int64_t v = 0;

        if (strncmp(resource, prefix, lp) != 0)
                return -ENOENT;
        p = resource + lp;
        n = strlen(p);
        if (n <= ls || (ls > 0 && strcmp(p + n - ls, suffix) != 0))
                return -ENOENT;
        n -= ls;
        if (n > 18)
                return -ENOENT;
        for (size_t i = 0; i < n; i++) {
                if (p[i] < '0' || p[i] > '9')
                        return -ENOENT;
                v = v * 10 + (p[i] - '0');
        }
        if (v <= 0)
                return -ENOENT;
        *ret = v;
        return 0;
}

int acme_parse_orders_page(const char *resource, int64_t *ret_account_id, int64_t *ret_after_id) {
        _cleanup_free_ char *list = NULL;
        const char *m = strstr(resource, "/orders");
        int64_t account_id, after_id = 0;
        int r;

        if (!m)
                return -ENOENT;
        list = strndup(resource, (size_t) (m - resource) + strlen("/orders"));
        if (!list)
                return -ENOMEM;
        r = acme_parse_id(list, "acct/", "/orders", &account_id);
        if (r < 0)
                return r;
        m += strlen("/orders");
        if (*m != 0) {
                r = acme_parse_id(m, "/", NULL, &after_id);
                if (r < 0)
                        return r;
        }
        *ret_account_id = account_id;
        *ret_after_id = after_id;
        return 0;
}

int acme_respond_json(AcmeRequest *r, int status, json_object *obj) {
        return http_response_set_json(r->resp, status, "application/json", obj);
}

int acme_problem_json(int error, const char *detail, char **ret) {
        _cleanup_(json_object_putp) json_object *p = NULL;
        char *t;
        int r;

        r = problem_new(-(int) cf_error_from_errno(error), detail, &p);
        if (r < 0)
                return r;
        t = strdup(json_to_string_compact(p));
        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

int acme_respond_problem(AcmeRequest *r, int error) {
        _cleanup_(json_object_putp) json_object *p = NULL;
        int e, status, q;

        /* errno values become protocol errors here; anything unexpected is serverInternal, and
         * its detail never exposes internals. */
        e = -(int) cf_error_from_errno(error);
        if (e == -CF_E_SERVER_INTERNAL && !cf_error_is_protocol(error))
                log_error_errno(error, "ACME request %s %s failed: %m", r->method ?: "?",
                                r->url ?: "?");
        q = problem_new(e, e == -CF_E_SERVER_INTERNAL && !cf_error_is_protocol(error) ?
                        "Internal server error" : r->detail, &p);
        if (q < 0)
                return q;
        status = problem_http_status_for_error(e);
        return http_response_set_json(r->resp, status, "application/problem+json", p);
}

int acme_add_common_headers(AcmeRequest *r) {
        _cleanup_free_ char *nonce = NULL;
        int q;

        q = acme_nonce_new(r->server, &nonce);
        if (q < 0)
                return q;
        q = http_response_add_header(r->resp, "Replay-Nonce", nonce);
        if (q < 0)
                return q;
        if (r->prefix_url) {
                q = http_response_add_headerf(r->resp, "Link", "<%sdirectory>;rel=\"index\"",
                                              r->prefix_url);
                if (q < 0)
                        return q;
        }
        if (r->location) {
                q = http_response_add_header(r->resp, "Location", r->location);
                if (q < 0)
                        return q;
        }
        return 0;
}
