/* SPDX-License-Identifier: Apache-2.0 */
/* Path → handler, profile resolution, authentication per resource (DESIGN §5):
 *
 *   /api/v1/protocols/acme/{acmeProfile}/<resource>
 *   /api/v1/protocols/acme/raProfile/{raProfile}/<resource>
 *
 * Every resource lives below the directory's prefix, so each request knows its profile. An
 * unknown profile gets 404 (type malformed, detail naming the failed check); a disabled or
 * unbound one 403 unauthorized. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/acme/acme-internal.h"
#include "server/server-worker.h"
#include "shared/errors.h"
#include "shared/log.h"

static bool profile_name_is_valid(const char *s, size_t n) {
        if (n == 0 || n > ACME_PROFILE_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]))
                        return false;
        return !(n <= 2 && s[0] == '.');
}

/* Splits the path into route key and resource; -ENOENT if the path has no valid profile part. */
static int acme_route_parse(const char *path, char **ret_key, char **ret_name, bool *ret_by_ra,
                            const char **ret_resource) {
        const char *p, *slash;
        bool by_ra = false;
        char *key, *name;

        if (strncmp(path, ACME_ROUTE_PREFIX, strlen(ACME_ROUTE_PREFIX)) != 0)
                return -ENOENT;
        p = path + strlen(ACME_ROUTE_PREFIX);
        if (strncmp(p, "raProfile/", 10) == 0) {
                by_ra = true;
                p += 10;
        }
        slash = strchr(p, '/');
        if (!slash || !profile_name_is_valid(p, slash - p))
                return -ENOENT;
        name = strndup(p, slash - p);
        if (!name)
                return -ENOMEM;
        if (asprintf(&key, "%s%s", by_ra ? "raProfile/" : "", name) < 0) {
                free(name);
                return -ENOMEM;
        }
        *ret_key = key;
        *ret_name = name;
        *ret_by_ra = by_ra;
        *ret_resource = slash + 1;
        return 0;
}

static bool method_is(const AcmeRequest *r, const char *m) {
        return r->method && strcmp(r->method, m) == 0;
}

static int acme_method_not_allowed(AcmeRequest *r, const char *allow) {
        int q = http_response_add_header(r->resp, "Allow", allow);
        if (q < 0)
                return q;
        return acme_fail(r, -CF_E_METHOD_NOT_ALLOWED, "Method %s not allowed here; use %s",
                         r->method, allow);
}

/* Resources reached by POST with a JWS. */
static int acme_dispatch_post(AcmeRequest *r) {
        const char *res = r->resource;
        AcmeAuthMode mode = ACME_AUTH_KID;
        int64_t id, after;
        int q;

        if (strcmp(res, "new-account") == 0)
                mode = ACME_AUTH_JWK;
        else if (strcmp(res, "revoke-cert") == 0)
                mode = ACME_AUTH_ANY;

        /* The handlers that write in one transaction begun with acme_begin() (the ones every
         * order goes through) record the nonce in it; the others consume it before they run. */
        r->nonce_deferred = strcmp(res, "new-order") == 0 || strncmp(res, "chall/", 6) == 0 ||
                acme_parse_id(res, "order/", "/finalize", &id) >= 0;

        q = acme_jws_authenticate(r, mode);
        if (q < 0)
                return q;

        if (strcmp(res, "new-account") == 0)
                return acme_new_account_handle(r);
        if (strcmp(res, "new-order") == 0)
                return acme_new_order_handle(r);
        if (strcmp(res, "revoke-cert") == 0)
                return acme_revoke_handle(r);
        if (strcmp(res, "key-change") == 0)
                return acme_key_change_handle(r);
        if (acme_parse_orders_page(res, &id, &after) >= 0)
                return acme_account_orders_handle(r, id, after);
        if (acme_parse_id(res, "acct/", NULL, &id) >= 0)
                return acme_account_handle(r, id);
        if (acme_parse_id(res, "order/", "/finalize", &id) >= 0)
                return acme_finalize_handle(r, id);
        if (acme_parse_id(res, "order/", NULL, &id) >= 0)
                return acme_order_handle(r, id);
        if (acme_parse_id(res, "authz/", NULL, &id) >= 0)
                return acme_authz_handle(r, id);
        if (acme_parse_id(res, "chall/", NULL, &id) >= 0)
                return acme_challenge_handle(r, id);
        if (strncmp(res, "cert/", 5) == 0)
                return acme_cert_handle(r, res + 5);
        return acme_fail(r, -CF_E_NOT_FOUND, "Unknown ACME resource");
}

static bool resource_is_post(const char *res) {
        static const char *const fixed[] = { "new-account", "new-order", "revoke-cert", "key-change" };
        int64_t id, after;

        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                if (strcmp(res, fixed[i]) == 0)
                        return true;
        return acme_parse_orders_page(res, &id, &after) >= 0 ||
               acme_parse_id(res, "acct/", NULL, &id) >= 0 ||
               acme_parse_id(res, "order/", "/finalize", &id) >= 0 ||
               acme_parse_id(res, "order/", NULL, &id) >= 0 ||
               acme_parse_id(res, "authz/", NULL, &id) >= 0 ||
               acme_parse_id(res, "chall/", NULL, &id) >= 0 ||
               strncmp(res, "cert/", 5) == 0;
}

static int acme_dispatch(AcmeRequest *r) {
        const char *res = r->resource;
        bool get = method_is(r, "GET"), head = method_is(r, "HEAD");

        if (strcmp(res, "directory") == 0) {
                if (!get && !head)
                        return acme_method_not_allowed(r, "GET, HEAD");
                return acme_directory_handle(r);
        }
        if (strcmp(res, "new-nonce") == 0) {
                if (!get && !head)
                        return acme_method_not_allowed(r, "GET, HEAD");
                return acme_new_nonce_handle(r);
        }
        if (strncmp(res, "renewal-info/", 13) == 0) {
                if (!get && !head)
                        return acme_method_not_allowed(r, "GET, HEAD");
                return acme_renewal_info_handle(r, res + 13);
        }
        if (strncmp(res, "issuer/", 7) == 0) {
                if (!get && !head)
                        return acme_method_not_allowed(r, "GET, HEAD");
                return acme_issuer_handle(r, res + 7);
        }
        if (resource_is_post(res)) {
                if (!method_is(r, "POST"))
                        return acme_method_not_allowed(r, "POST");
                return acme_dispatch_post(r);
        }
        return acme_fail(r, -CF_E_NOT_FOUND, "Unknown ACME resource");
}

static int acme_resolve_profile(AcmeRequest *r, const char *name, bool by_ra) {
        const char *detail = NULL;
        int q;

        if (!r->profiles)
                return acme_fail(r, -CF_E_NOT_FOUND, "No ACME profiles are configured");
        q = profile_set_resolve_acme(r->profiles, by_ra ? NULL : name, by_ra ? name : NULL,
                                     &r->acme, &r->ra, &detail);
        if (q == -CF_E_NOT_FOUND || q == -ENOENT)
                return acme_fail(r, -CF_E_NOT_FOUND, "%s", detail ?: "Unknown ACME profile");
        if (q == -CF_E_DISABLED)
                return acme_fail(r, -CF_E_UNAUTHORIZED, "%s", detail ?: "ACME profile is disabled");
        if (q < 0)
                return q;
        return 0;
}

int acme_handle_request(const HttpRequest *req, HttpResponse *resp, void *userdata) {
        _cleanup_free_ char *name = NULL;
        AcmeRequest r = {
                .server = userdata,
                .http = req,
                .resp = resp,
                .method = req->method,
                .url = req->url,
                .body = req->body,
                .body_size = req->body_size,
                .content_type = http_request_get_header(req, "Content-Type"),
        };
        bool by_ra = false;
        int q;

        r.store = server_worker_get_store(req->worker);
        r.profiles = server_worker_get_profiles(req->worker);

        q = acme_route_parse(req->path, &r.route_key, &name, &by_ra, &r.resource);
        /* The prefix first, so even a refused request gets its Link rel="index". */
        if (q >= 0 && asprintf(&r.prefix_url, "%s%s%s/", req->base_url, ACME_ROUTE_PREFIX,
                               r.route_key) < 0) {
                r.prefix_url = NULL;
                q = -ENOMEM;
        }
        if (req->body_too_large)
                q = acme_fail(&r, -CF_E_TOO_LARGE, "The request body exceeds the server's size limit");
        else if (q == -ENOENT)
                q = acme_fail(&r, -CF_E_NOT_FOUND, "Unknown ACME profile or resource");
        else if (q >= 0) {
                q = acme_resolve_profile(&r, name, by_ra);
                if (q >= 0)
                        q = acme_dispatch(&r);
        }

        if (r.nonce_id && !r.nonce_recorded) {
                int k;

                /* A handler that left its transaction open has a bug; never record the nonce in it. */
                if (r.store)
                        store_rollback(r.store);
                k = acme_nonce_record_pending(&r);
                if (k < 0) {
                        /* The nonce was used: answer as if it had been refused up front. */
                        free(r.location);
                        r.location = NULL;
                        q = k;
                }
        }

        if (r.deferred) {
                /* The held reply is filled later (acme_request_finish() on resume); its nonce
                 * was recorded with the transaction that started the validation. */
                acme_request_done(&r);
                return 0;
        }
        return acme_request_finish(&r, q);
}

int acme_request_finish(AcmeRequest *r, int q) {
        if (q < 0) {
                /* A transaction a handler left open is a bug; never leave the connection in it. */
                if (r->store)
                        store_rollback(r->store);
                q = acme_respond_problem(r, q);
        }
        if (q >= 0)
                q = acme_add_common_headers(r);
        acme_request_done(r);
        return q < 0 ? q : 0;
}
