/* SPDX-License-Identifier: Apache-2.0 */
/* Authorizations (RFC 8555 §7.5, §7.5.2 deactivation) and the challenge objects they list. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/acme/acme-internal.h"
#include "shared/errors.h"
#include "shared/json-util.h"

AcmeStatus acme_authz_effective_status(const AcmeAuthz *a, cf_time_t now) {
        if ((a->status == ACME_STATUS_PENDING || a->status == ACME_STATUS_VALID) && a->expires <= now)
                return ACME_STATUS_EXPIRED;
        return a->status;
}

int acme_challenge_to_json(AcmeRequest *r, const AcmeChallenge *c, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *u = NULL;
        char buf[CF_RFC3339_MAX];

        u = acme_url(r, "chall/%" PRIi64, c->id);
        o = json_object_new_object();
        if (!u || !o)
                return -ENOMEM;
        json_object_object_add(o, "type", json_object_new_string(c->type));
        json_object_object_add(o, "url", json_object_new_string(u));
        json_object_object_add(o, "status", json_object_new_string(acme_status_to_string(c->status)));
        json_object_object_add(o, "token", json_object_new_string(c->token));
        if (c->validated > 0)
                json_object_object_add(o, "validated",
                                       json_object_new_string(time_format_rfc3339(c->validated, buf)));
        if (c->error) {
                json_object *e = NULL;
                if (json_parse_strict(c->error, strlen(c->error), JWS_BODY_MAX, &e) >= 0)
                        json_object_object_add(o, "error", e);
        }
        *ret = TAKE_PTR(o);
        return 0;
}

int acme_authz_to_json(AcmeRequest *r, const AcmeAuthz *a, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        AcmeChallenge **l = NULL;
        char buf[CF_RFC3339_MAX];
        json_object *ident, *challs;
        int q;

        q = store_acme_challenge_list_by_authz(r->store, a->id, &l);
        if (q < 0)
                return q;
        o = json_object_new_object();
        ident = json_object_new_object();
        challs = json_object_new_array();
        if (!o || !ident || !challs) {
                json_object_put(ident);
                json_object_put(challs);
                acme_challenge_list_free(l);
                return -ENOMEM;
        }
        json_object_object_add(ident, "type", json_object_new_string(a->identifier_type));
        json_object_object_add(ident, "value", json_object_new_string(a->identifier_value));
        json_object_object_add(o, "identifier", ident);
        json_object_object_add(o, "status", json_object_new_string(
                acme_status_to_string(acme_authz_effective_status(a, time_now()))));
        json_object_object_add(o, "expires", json_object_new_string(time_format_rfc3339(a->expires, buf)));
        json_object_object_add(o, "challenges", challs);
        for (AcmeChallenge **c = l; *c; c++) {
                json_object *co = NULL;

                /* RFC 8555 §7.1.4: a valid authorization lists only the challenge that was used. */
                if (a->status == ACME_STATUS_VALID && (*c)->status != ACME_STATUS_VALID)
                        continue;
                q = acme_challenge_to_json(r, *c, &co);
                if (q < 0) {
                        acme_challenge_list_free(l);
                        return q;
                }
                json_object_array_add(challs, co);
        }
        acme_challenge_list_free(l);
        if (a->wildcard)
                json_object_object_add(o, "wildcard", json_object_new_boolean(true));
        *ret = TAKE_PTR(o);
        return 0;
}

int acme_authz_deactivate(Store *s, int64_t authz_id, cf_time_t now) {
        _cleanup_(acme_authz_freep) AcmeAuthz *a = NULL;
        _cleanup_free_ int64_t *orders = NULL;
        size_t n = 0;
        int q;

        q = store_acme_authz_get(s, authz_id, &a);
        if (q < 0)
                return q;
        if (a->status != ACME_STATUS_PENDING && a->status != ACME_STATUS_VALID)
                return -CF_E_MALFORMED;
        q = store_acme_authz_update(s, authz_id, ACME_STATUS_DEACTIVATED, a->expires);
        if (q < 0)
                return q;
        q = store_acme_authz_get_order_ids(s, authz_id, &orders, &n);
        if (q < 0)
                return q;
        for (size_t i = 0; i < n; i++) {
                q = acme_order_update_from_authzs(s, orders[i], now);
                if (q < 0)
                        return q;
        }
        return 0;
}

int acme_authz_handle(AcmeRequest *r, int64_t id) {
        _cleanup_(acme_authz_freep) AcmeAuthz *a = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *v;
        int q;

        q = store_acme_authz_get(r->store, id, &a);
        if (q == -ENOENT || (q >= 0 && (a->account_id != r->account->id ||
                                        strcmp(a->profile, r->route_key) != 0)))
                return acme_fail(r, -CF_E_NOT_FOUND, "No such authorization");
        if (q < 0)
                return q;

        if (r->payload) {
                if (!json_object_object_get_ex(r->payload, "status", &v) ||
                    !json_object_is_type(v, json_type_string) ||
                    strcmp(json_object_get_string(v), "deactivated") != 0)
                        return acme_fail(r, -CF_E_MALFORMED,
                                         "Only {\"status\":\"deactivated\"} can be posted to an authorization");
                if (a->status != ACME_STATUS_PENDING && a->status != ACME_STATUS_VALID)
                        return acme_fail(r, -CF_E_MALFORMED, "Authorization is %s and cannot be deactivated",
                                         acme_status_to_string(a->status));
                q = store_begin(r->store);
                if (q < 0)
                        return q;
                q = acme_authz_deactivate(r->store, id, time_now());
                if (q < 0) {
                        store_rollback(r->store);
                        return q;
                }
                q = acme_commit(r->store);
                if (q < 0)
                        return q;
                a->status = ACME_STATUS_DEACTIVATED;
        }

        q = acme_authz_to_json(r, a, &o);
        if (q < 0)
                return q;
        return acme_respond_json(r, 200, o);
}
