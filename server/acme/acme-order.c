/* SPDX-License-Identifier: Apache-2.0 */
/* Orders: newOrder (RFC 8555 §7.4, RFC 8738 IP identifiers, RFC 9773 replaces), the order
 * object and the order half of the state machine (§7.1.6). */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/acme/acme-internal.h"
#include "server/ra/ra.h"
#include "shared/errors.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/problem.h"
#include "shared/ari.h"
#include "shared/random-util.h"
#include "shared/strv.h"

#define ACME_REPLACES_MAX 512

AcmeStatus acme_order_effective_status(const AcmeOrder *o, cf_time_t now) {
        if ((o->status == ACME_STATUS_PENDING || o->status == ACME_STATUS_READY) && o->expires <= now)
                return ACME_STATUS_INVALID;
        return o->status;
}

static bool authz_status_is_final_failure(AcmeStatus s) {
        return s == ACME_STATUS_INVALID || s == ACME_STATUS_DEACTIVATED ||
               s == ACME_STATUS_EXPIRED || s == ACME_STATUS_REVOKED;
}

int acme_order_update_from_authzs(Store *s, int64_t order_id, cf_time_t now) {
        _cleanup_(acme_order_freep) AcmeOrder *o = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        _cleanup_free_ char *error = NULL;
        AcmeStatus status = ACME_STATUS_READY;
        size_t n = 0;
        int q;

        q = store_acme_order_get(s, order_id, &o);
        if (q < 0)
                return q;
        if (o->status != ACME_STATUS_PENDING && o->status != ACME_STATUS_READY)
                return 0;
        q = store_acme_order_get_authz_ids(s, order_id, &ids, &n);
        if (q < 0)
                return q;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(acme_authz_freep) AcmeAuthz *a = NULL;
                AcmeStatus as;

                q = store_acme_authz_get(s, ids[i], &a);
                if (q < 0)
                        return q;
                as = acme_authz_effective_status(a, now);
                if (authz_status_is_final_failure(as)) {
                        _cleanup_free_ char *d = NULL;

                        if (asprintf(&d, "Authorization for %s%s is %s", a->wildcard ? "*." : "",
                                     a->identifier_value, acme_status_to_string(as)) < 0)
                                return -ENOMEM;
                        q = acme_problem_json(-CF_E_UNAUTHORIZED, d, &error);
                        if (q < 0)
                                return q;
                        status = ACME_STATUS_INVALID;
                        break;
                }
                if (as != ACME_STATUS_VALID)
                        status = ACME_STATUS_PENDING;
        }
        if (status == o->status)
                return 0;
        o->status = status;
        free(o->error);
        o->error = TAKE_PTR(error);
        return store_acme_order_update(s, o);
}

int acme_order_to_json(AcmeRequest *r, const AcmeOrder *o, json_object **ret) {
        _cleanup_(json_object_putp) json_object *obj = NULL, *idents = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        _cleanup_free_ char *fin = NULL;
        char buf[CF_RFC3339_MAX];
        AcmeStatus status = acme_order_effective_status(o, time_now());
        json_object *authzs;
        size_t n = 0;
        int q;

        q = json_parse_strict(o->identifiers, strlen(o->identifiers), JWS_BODY_MAX, &idents);
        if (q < 0)
                return q;
        q = store_acme_order_get_authz_ids(r->store, o->id, &ids, &n);
        if (q < 0)
                return q;
        fin = acme_url(r, "order/%" PRIi64 "/finalize", o->id);
        obj = json_object_new_object();
        authzs = json_object_new_array();
        if (!fin || !obj || !authzs) {
                json_object_put(authzs);
                return -ENOMEM;
        }
        json_object_object_add(obj, "status", json_object_new_string(acme_status_to_string(status)));
        json_object_object_add(obj, "expires", json_object_new_string(time_format_rfc3339(o->expires, buf)));
        json_object_object_add(obj, "identifiers", TAKE_PTR(idents));
        if (o->not_before > 0)
                json_object_object_add(obj, "notBefore",
                                       json_object_new_string(time_format_rfc3339(o->not_before, buf)));
        if (o->not_after > 0)
                json_object_object_add(obj, "notAfter",
                                       json_object_new_string(time_format_rfc3339(o->not_after, buf)));
        json_object_object_add(obj, "authorizations", authzs);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *u = acme_url(r, "authz/%" PRIi64, ids[i]);
                if (!u)
                        return -ENOMEM;
                json_object_array_add(authzs, json_object_new_string(u));
        }
        json_object_object_add(obj, "finalize", json_object_new_string(fin));
        if (o->error) {
                json_object *e = NULL;
                if (json_parse_strict(o->error, strlen(o->error), JWS_BODY_MAX, &e) >= 0)
                        json_object_object_add(obj, "error", e);
        } else if (status != o->status) {
                /* Expired by the clock, so nothing stored an error; clients show "error" to say
                 * why an order failed. Unauthorized, as for an authorization that expired. */
                json_object *e = NULL;
                _cleanup_free_ char *detail = NULL;

                if (asprintf(&detail, "Order expired at %s before it was finalized",
                             time_format_rfc3339(o->expires, buf)) < 0)
                        return -ENOMEM;
                q = problem_new(-CF_E_UNAUTHORIZED, detail, &e);
                if (q < 0)
                        return q;
                json_object_object_add(obj, "error", e);
        }
        if (o->status == ACME_STATUS_VALID && o->cert_serial) {
                _cleanup_free_ char *u = acme_url(r, "cert/%s", o->cert_serial);
                if (!u)
                        return -ENOMEM;
                json_object_object_add(obj, "certificate", json_object_new_string(u));
        }
        if (o->replaces) {
                /* RFC 9773 echoes the CertID the client sent; we keep the serial, so look it up. */
                _cleanup_(inventory_cert_freep) InventoryCert *c = NULL;
                if (store_inventory_get(r->store, o->replaces, &c) >= 0 && c->ari_cert_id)
                        json_object_object_add(obj, "replaces", json_object_new_string(c->ari_cert_id));
        }
        *ret = TAKE_PTR(obj);
        return 0;
}

int acme_order_respond(AcmeRequest *r, int status, const AcmeOrder *o) {
        _cleanup_(json_object_putp) json_object *obj = NULL;
        int q;

        q = acme_order_to_json(r, o, &obj);
        if (q < 0)
                return q;
        if (o->status == ACME_STATUS_PROCESSING) {
                q = http_response_add_headerf(r->resp, "Retry-After", "%d", ACME_RETRY_AFTER_PROCESSING);
                if (q < 0)
                        return q;
        }
        return acme_respond_json(r, status, obj);
}

/* One requested identifier, normalised. value keeps "*." for wildcards. */
typedef struct OrderIdent {
        IdentifierType type;
        char *value;
        const char *base;              /* value without "*." */
        bool wildcard;
} OrderIdent;

static int ident_parse(AcmeRequest *r, json_object *e, OrderIdent *ret) {
        const char *type, *value;
        IdentifierType t;
        char *v;
        int q;

        if (!json_object_is_type(e, json_type_object) || json_get_string(e, "type", &type) < 0 ||
            json_get_string(e, "value", &value) < 0)
                return acme_fail(r, -CF_E_MALFORMED, "Each identifier needs a type and a value");
        t = identifier_type_from_string(type);
        if (t < 0)
                return acme_fail(r, -CF_E_UNSUPPORTED_IDENTIFIER, "Identifier type '%.20s' is not supported", type);
        if (strlen(value) > ACME_DNS_NAME_MAX + 2)
                return acme_fail(r, -CF_E_REJECTED_IDENTIFIER, "Identifier is too long");

        if (t == IDENTIFIER_IP) {
                unsigned char addr[16];
                char buf[INET6_ADDRSTRLEN];
                int af = strchr(value, ':') ? AF_INET6 : AF_INET;

                if (inet_pton(af, value, addr) != 1 || !inet_ntop(af, addr, buf, sizeof(buf)))
                        return acme_fail(r, -CF_E_MALFORMED, "Invalid IP address '%.64s'", value);
                v = strdup(buf);
        } else {
                size_t n = strlen(value);
                if (n == 0)
                        return acme_fail(r, -CF_E_MALFORMED, "Empty DNS identifier");
                v = strdup(value);
                if (v)
                        for (char *c = v; *c; c++) {
                                *c = (char) tolower((unsigned char) *c);
                                if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789.-*", *c)) {
                                        free(v);
                                        return acme_fail(r, -CF_E_REJECTED_IDENTIFIER,
                                                         "Invalid character in DNS identifier");
                                }
                        }
        }
        if (!v)
                return -ENOMEM;

        *ret = (OrderIdent) { .type = t, .value = v, .base = v };
        if (t == IDENTIFIER_DNS && strncmp(v, "*.", 2) == 0) {
                ret->wildcard = true;
                ret->base = v + 2;
        }
        if (strchr(ret->base, '*') || strlen(ret->base) > ACME_DNS_NAME_MAX || !ret->base[0]) {
                free(v);
                *ret = (OrderIdent) {};
                return acme_fail(r, -CF_E_REJECTED_IDENTIFIER, "Invalid identifier '%.100s'", value);
        }
        q = ra_check_identifier(r->ra, t, v);
        if (q < 0) {
                int err = q == -CF_E_MALFORMED ? -CF_E_MALFORMED : -CF_E_REJECTED_IDENTIFIER;
                if (err == -CF_E_MALFORMED)
                        acme_fail(r, err, "Identifier '%.100s' is not a valid %s", v,
                                  t == IDENTIFIER_IP ? "IP address" : "DNS name");
                else
                        acme_fail(r, err, "Identifier '%.100s' is not allowed by this profile", v);
                free(v);
                *ret = (OrderIdent) {};
                return err;
        }
        return 0;
}

static int create_authz(AcmeRequest *r, const OrderIdent *id, cf_time_t now, int64_t *ret_id) {
        static const char *const dns_types[] = { "http-01", "dns-01", "tls-alpn-01", NULL };
        static const char *const wildcard_types[] = { "dns-01", NULL };
        static const char *const ip_types[] = { "http-01", "tls-alpn-01", NULL };
        const char *const *types = id->type == IDENTIFIER_IP ? ip_types :
                                   id->wildcard ? wildcard_types : dns_types;
        AcmeAuthz a = {
                .account_id = r->account->id,
                .profile = r->route_key,
                .identifier_type = (char *) identifier_type_to_string(id->type),
                .identifier_value = (char *) id->base,
                .wildcard = id->wildcard,
                .status = ACME_STATUS_PENDING,
                .expires = now + (r->acme->authz_lifetime > 0 ? r->acme->authz_lifetime : 30 * 86400),
                .created = now,
        };
        int64_t authz_id;
        int q;

        q = store_acme_authz_insert(r->store, &a, &authz_id);
        if (q < 0)
                return q;
        for (size_t i = 0; types[i]; i++) {
                _cleanup_free_ char *token = NULL;
                AcmeChallenge c = { .authz_id = authz_id, .status = ACME_STATUS_PENDING };

                q = random_token(ACME_TOKEN_BYTES, &token);
                if (q < 0)
                        return q;
                c.type = (char *) types[i];
                c.token = token;
                q = store_acme_challenge_insert(r->store, &c, NULL);
                if (q < 0)
                        return q;
        }
        *ret_id = authz_id;
        return 0;
}

static int parse_time_field(AcmeRequest *r, const char *key, cf_time_t *ret) {
        json_object *v;

        *ret = 0;
        if (!json_object_object_get_ex(r->payload, key, &v))
                return 0;
        if (!json_object_is_type(v, json_type_string) ||
            time_parse_rfc3339(json_object_get_string(v), ret) < 0)
                return acme_fail(r, -CF_E_MALFORMED, "%s must be an RFC 3339 date-time", key);
        return 0;
}

/* RFC 9773 §5: replaces names a certificate of this account that is not replaced yet. Its
 * identifiers ("dns:…", "ip:…") come back for the shared-identifier check. */
static int replaces_check(AcmeRequest *r, json_object *v, char **ret_serial, char ***ret_identifiers) {
        _cleanup_(inventory_cert_freep) InventoryCert *c = NULL;
        const char *id;
        int64_t other;
        int q;

        if (!json_object_is_type(v, json_type_string))
                return acme_fail(r, -CF_E_MALFORMED, "replaces must be a CertID string");
        id = json_object_get_string(v);
        if (strlen(id) > ACME_REPLACES_MAX)
                return acme_fail(r, -CF_E_MALFORMED, "replaces is not a valid CertID");
        {
                _cleanup_free_ uint8_t *aki = NULL, *serial = NULL;
                size_t naki, nserial;

                if (ari_cert_id_parse(id, &aki, &naki, &serial, &nserial) < 0)
                        return acme_fail(r, -CF_E_MALFORMED, "replaces is not a valid CertID");
        }
        q = store_inventory_get_by_ari_id(r->store, id, &c);
        if (q == -ENOENT)
                return acme_fail(r, -CF_E_MALFORMED, "replaces names an unknown certificate");
        if (q < 0)
                return q;
        if (c->account_id != r->account->id || !c->protocol || strcmp(c->protocol, "acme") != 0)
                return acme_fail(r, -CF_E_UNAUTHORIZED, "replaces names a certificate of another account");
        if (c->replaced_by)
                return acme_fail(r, -CF_E_ALREADY_REPLACED, "The certificate was already replaced");
        q = store_acme_order_find_replacing(r->store, c->serial, time_now(), &other);
        if (q >= 0)
                return acme_fail(r, -CF_E_ALREADY_REPLACED, "An order already replaces this certificate");
        if (q != -ENOENT)
                return q;
        *ret_serial = TAKE_PTR(c->serial);
        *ret_identifiers = TAKE_PTR(c->identifiers);
        return 0;
}

/* RFC 9773 §5: the order SHOULD share at least one identifier with the certificate it replaces,
 * so that replaces can't link unrelated certificates in the inventory. */
static bool order_shares_identifier(const OrderIdent *idents, size_t n, char *const *replaced) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *s = NULL;

                if (asprintf(&s, "%s:%s", identifier_type_to_string(idents[i].type), idents[i].value) < 0)
                        return false;
                if (strv_contains(replaced, s))
                        return true;
        }
        return false;
}

static void idents_free(OrderIdent *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(l[i].value);
        free(l);
}

int acme_new_order_handle(AcmeRequest *r) {
        _cleanup_(json_object_putp) json_object *idents_json = NULL;
        _cleanup_(acme_order_freep) AcmeOrder *created = NULL;
        _cleanup_free_ char *replaces = NULL;
        _cleanup_(strv_freep) char **replaced_identifiers = NULL;
        OrderIdent *idents = NULL;
        size_t n = 0, max;
        json_object *arr, *v;
        cf_time_t now = time_now(), nb, na;
        bool all_valid = true;
        int64_t order_id;
        int q;

        if (!r->payload || !json_object_object_get_ex(r->payload, "identifiers", &arr) ||
            !json_object_is_type(arr, json_type_array))
                return acme_fail(r, -CF_E_MALFORMED, "newOrder needs an identifiers array");
        max = r->acme->max_identifiers > 0 ? r->acme->max_identifiers : 100;
        n = json_object_array_length(arr);
        if (n == 0)
                return acme_fail(r, -CF_E_MALFORMED, "newOrder needs at least one identifier");
        if (n > max)
                return acme_fail(r, -CF_E_REJECTED_IDENTIFIER, "At most %zu identifiers per order", max);

        q = parse_time_field(r, "notBefore", &nb);
        if (q < 0)
                return q;
        q = parse_time_field(r, "notAfter", &na);
        if (q < 0)
                return q;
        if (nb > 0 || na > 0) {
                q = ra_check_validity(r->ra, nb, na);
                if (q < 0)
                        return acme_fail(r, -CF_E_MALFORMED, "Requested validity is not allowed by this profile");
        }
        if (json_object_object_get_ex(r->payload, "replaces", &v)) {
                q = replaces_check(r, v, &replaces, &replaced_identifiers);
                if (q < 0)
                        return q;
        }

        idents = calloc(n, sizeof(OrderIdent));
        idents_json = json_object_new_array();
        if (!idents || !idents_json) {
                free(idents);
                return -ENOMEM;
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
                OrderIdent id;
                bool dup = false;

                q = ident_parse(r, json_object_array_get_idx(arr, i), &id);
                if (q < 0)
                        goto finish;
                for (size_t j = 0; j < m; j++)
                        if (idents[j].type == id.type && strcmp(idents[j].value, id.value) == 0)
                                dup = true;
                if (dup) {
                        free(id.value);
                        continue;
                }
                idents[m++] = id;
                json_object *o = json_object_new_object();
                if (!o) {
                        q = -ENOMEM;
                        goto finish;
                }
                json_object_object_add(o, "type", json_object_new_string(identifier_type_to_string(id.type)));
                json_object_object_add(o, "value", json_object_new_string(id.value));
                json_object_array_add(idents_json, o);
        }

        if (replaces && !order_shares_identifier(idents, m, replaced_identifiers)) {
                q = acme_fail(r, -CF_E_MALFORMED,
                              "replaces names a certificate that shares no identifier with this order");
                goto finish;
        }

        /* Everything checked: now one transaction for all rows (and the nonce's replay record). */
        q = acme_begin(r);
        if (q < 0)
                goto finish;
        {
                AcmeOrder o = {
                        .account_id = r->account->id,
                        .profile = r->route_key,
                        .status = ACME_STATUS_PENDING,
                        .identifiers = (char *) json_to_string_compact(idents_json),
                        .not_before = nb,
                        .not_after = na,
                        .expires = now + (r->acme->order_lifetime > 0 ? r->acme->order_lifetime : 7 * 86400),
                        .replaces = replaces,
                        .created = now,
                };
                q = store_acme_order_insert(r->store, &o, &order_id);
        }
        for (size_t i = 0; q >= 0 && i < m; i++) {
                _cleanup_(acme_authz_freep) AcmeAuthz *reuse = NULL;
                int64_t authz_id;

                q = store_acme_authz_find_reusable(r->store, r->account->id, r->route_key,
                                                   identifier_type_to_string(idents[i].type),
                                                   idents[i].base, idents[i].wildcard, now, &reuse);
                if (q >= 0)
                        authz_id = reuse->id;
                else if (q == -ENOENT) {
                        all_valid = false;
                        q = create_authz(r, &idents[i], now, &authz_id);
                }
                if (q >= 0)
                        q = store_acme_order_link_authz(r->store, order_id, authz_id);
        }
        if (q >= 0 && all_valid)
                q = acme_order_update_from_authzs(r->store, order_id, now);
        if (q >= 0)
                q = store_acme_order_get(r->store, order_id, &created);
        if (q < 0) {
                store_rollback(r->store);
                goto finish;
        }
        q = acme_commit_request(r);
        if (q < 0)
                goto finish;

        r->location = acme_url(r, "order/%" PRIi64, order_id);
        if (!r->location) {
                q = -ENOMEM;
                goto finish;
        }
        q = acme_order_respond(r, 201, created);
finish:
        idents_free(idents, m);
        return q;
}

int acme_order_load_owned(AcmeRequest *r, int64_t id, AcmeOrder **ret) {
        _cleanup_(acme_order_freep) AcmeOrder *o = NULL;
        int q;

        q = store_acme_order_get(r->store, id, &o);
        if (q == -ENOENT || (q >= 0 && (o->account_id != r->account->id ||
                                        strcmp(o->profile, r->route_key) != 0)))
                return acme_fail(r, -CF_E_NOT_FOUND, "No such order");
        if (q < 0)
                return q;
        *ret = TAKE_PTR(o);
        return 0;
}

int acme_order_handle(AcmeRequest *r, int64_t id) {
        _cleanup_(acme_order_freep) AcmeOrder *o = NULL;
        int q;

        if (r->payload)
                return acme_fail(r, -CF_E_MALFORMED, "Orders are fetched with POST-as-GET");
        q = acme_order_load_owned(r, id, &o);
        if (q < 0)
                return q;
        if (o->status == ACME_STATUS_PROCESSING && o->csr) {
                q = acme_finalize_retry_pending(r, o);
                if (q < 0)
                        return q;
        }
        return acme_order_respond(r, 200, o);
}
