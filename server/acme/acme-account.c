/* SPDX-License-Identifier: Apache-2.0 */
/* Accounts: newAccount with external account binding (RFC 8555 §7.3, §7.3.4), update and
 * deactivation (§7.3.2, §7.3.6), the orders list (§7.1.2.1) and keyChange (§7.3.5).
 *
 * An EAB key may bind several accounts: a fleet shares one per profile. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "server/acme/acme-internal.h"
#include "shared/errors.h"
#include "shared/json-util.h"

#define ACME_JWK_TEXT_MAX (16u * 1024u)

static int account_to_json(AcmeRequest *r, const AcmeAccount *a, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL, *contacts = NULL;
        _cleanup_free_ char *orders = NULL;
        int q;

        q = json_parse_strict(a->contacts ?: "[]", strlen(a->contacts ?: "[]"), 64 * 1024, &contacts);
        if (q < 0)
                return q;
        orders = acme_url(r, "acct/%" PRIi64 "/orders", a->id);
        o = json_object_new_object();
        if (!orders || !o)
                return -ENOMEM;
        json_object_object_add(o, "status", json_object_new_string(acme_status_to_string(a->status)));
        json_object_object_add(o, "contact", TAKE_PTR(contacts));
        json_object_object_add(o, "termsOfServiceAgreed", json_object_new_boolean(a->tos_agreed));
        json_object_object_add(o, "orders", json_object_new_string(orders));
        *ret = TAKE_PTR(o);
        return 0;
}

static int respond_account(AcmeRequest *r, int status, const AcmeAccount *a) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        int q;

        q = account_to_json(r, a, &o);
        if (q < 0)
                return q;
        free(r->location);
        r->location = acme_url(r, "acct/%" PRIi64, a->id);
        if (!r->location)
                return -ENOMEM;
        return acme_respond_json(r, status, o);
}

/* Checks a "contact" array and returns it as compact JSON text. */
static int contacts_check(AcmeRequest *r, json_object *arr, char **ret) {
        size_t n;

        if (!json_object_is_type(arr, json_type_array))
                return acme_fail(r, -CF_E_MALFORMED, "contact must be an array of URLs");
        n = json_object_array_length(arr);
        if (n > ACME_CONTACTS_MAX)
                return acme_fail(r, -CF_E_INVALID_CONTACT, "At most %d contacts are allowed",
                                 ACME_CONTACTS_MAX);
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                const char *c, *at;

                if (!json_object_is_type(e, json_type_string))
                        return acme_fail(r, -CF_E_MALFORMED, "contact must be an array of URLs");
                c = json_object_get_string(e);
                if (strlen(c) > ACME_CONTACT_LENGTH_MAX)
                        return acme_fail(r, -CF_E_INVALID_CONTACT, "Contact is too long");
                if (strncmp(c, "mailto:", 7) != 0)
                        return acme_fail(r, -CF_E_UNSUPPORTED_CONTACT,
                                         "Only mailto: contacts are supported");
                at = strchr(c + 7, '@');
                if (!at || at == c + 7 || !at[1] || strchr(at + 1, '@') ||
                    strpbrk(c + 7, ",?&;<> \t\r\n\"\\"))
                        return acme_fail(r, -CF_E_INVALID_CONTACT, "Invalid email contact '%.100s'", c + 7);
        }
        *ret = strdup(json_to_string_compact(arr));
        return *ret ? 0 : -ENOMEM;
}

static int jwk_same(json_object *a, json_object *b) {
        _cleanup_free_ char *ta = NULL, *tb = NULL;
        int q;

        q = jwk_thumbprint(a, &ta);
        if (q < 0)
                return q;
        q = jwk_thumbprint(b, &tb);
        if (q < 0)
                return q;
        return strcmp(ta, tb) == 0;
}

/* RFC 8555 §7.3.4. Returns the EAB kid. */
static int eab_check(AcmeRequest *r, json_object *eab, const char **ret_kid) {
        _cleanup_(jws_freep) Jws *jws = NULL;
        _cleanup_(json_object_putp) json_object *inner = NULL;
        const EabKey *key = NULL;
        const char *text;
        int q;

        if (!json_object_is_type(eab, json_type_object))
                return acme_fail(r, -CF_E_MALFORMED, "externalAccountBinding must be a JWS object");
        text = json_to_string_compact(eab);
        q = jws_parse(text, strlen(text), &jws);
        if (q < 0 || jws->alg != JWS_ALG_HS256)
                return acme_fail(r, -CF_E_MALFORMED, "externalAccountBinding must be an HS256 JWS");
        if (!jws->kid || jws->jwk || jws->nonce)
                return acme_fail(r, -CF_E_MALFORMED,
                                 "externalAccountBinding needs a kid and no jwk or nonce");
        if (!jws->url || strcmp(jws->url, r->url) != 0)
                return acme_fail(r, -CF_E_UNAUTHORIZED, "externalAccountBinding url does not match");

        for (size_t i = 0; i < r->acme->n_eab_keys; i++)
                if (strcmp(r->acme->eab_keys[i].kid, jws->kid) == 0) {
                        key = &r->acme->eab_keys[i];
                        break;
                }
        if (!key)
                return acme_fail(r, -CF_E_UNAUTHORIZED, "Unknown external account key id");
        if (jws_verify_hmac(jws, key->hmac_key.data, key->hmac_key.size) < 0)
                return acme_fail(r, -CF_E_UNAUTHORIZED, "externalAccountBinding signature is invalid");

        q = json_parse_strict((const char *) jws->payload, jws->payload_size, ACME_JWK_TEXT_MAX, &inner);
        if (q < 0 || jwk_same(inner, r->jws->jwk) <= 0)
                return acme_fail(r, -CF_E_MALFORMED,
                                 "externalAccountBinding payload is not the account's JWK");
        *ret_kid = key->kid;
        return 0;
}

int acme_new_account_handle(AcmeRequest *r) {
        _cleanup_(acme_account_freep) AcmeAccount *existing = NULL;
        _cleanup_free_ char *thumbprint = NULL, *contacts = NULL;
        json_object *p = r->payload, *v;
        bool only_existing = false, tos = false;
        const char *eab_kid = NULL;
        AcmeAccount a = {};
        int64_t id;
        int q;

        if (!p)
                return acme_fail(r, -CF_E_MALFORMED, "newAccount needs a payload");
        if (json_object_object_get_ex(p, "onlyReturnExisting", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        return acme_fail(r, -CF_E_MALFORMED, "onlyReturnExisting must be a boolean");
                only_existing = json_object_get_boolean(v);
        }
        if (json_object_object_get_ex(p, "termsOfServiceAgreed", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        return acme_fail(r, -CF_E_MALFORMED, "termsOfServiceAgreed must be a boolean");
                tos = json_object_get_boolean(v);
        }

        q = jwk_thumbprint(r->jws->jwk, &thumbprint);
        if (q < 0)
                return acme_fail(r, -CF_E_MALFORMED, "Invalid JWK");
        q = store_acme_account_get_by_thumbprint(r->store, r->route_key, thumbprint, &existing);
        if (q >= 0) {
                if (existing->status != ACME_STATUS_VALID)
                        return acme_fail(r, -CF_E_UNAUTHORIZED, "Account is %s",
                                         acme_status_to_string(existing->status));
                return respond_account(r, 200, existing);
        }
        if (q != -ENOENT)
                return q;
        if (only_existing)
                return acme_fail(r, -CF_E_ACCOUNT_DOES_NOT_EXIST, "No account exists for this key");

        if (json_object_object_get_ex(p, "contact", &v)) {
                q = contacts_check(r, v, &contacts);
                if (q < 0)
                        return q;
        }
        if (r->acme->terms_of_service && !tos)
                return acme_fail(r, -CF_E_MALFORMED, "You must agree to the terms of service");

        if (json_object_object_get_ex(p, "externalAccountBinding", &v)) {
                q = eab_check(r, v, &eab_kid);
                if (q < 0)
                        return q;
        } else if (r->acme->eab_required)
                return acme_fail(r, -CF_E_EXTERNAL_ACCOUNT_REQUIRED,
                                 "This profile requires an external account binding");

        a = (AcmeAccount) {
                .profile = r->route_key,
                .jwk = (char *) json_to_string_compact(r->jws->jwk),
                .thumbprint = thumbprint,
                .status = ACME_STATUS_VALID,
                .contacts = contacts,
                .tos_agreed = tos,
                .eab_kid = (char *) eab_kid,
                .created = time_now(),
        };
        q = store_begin(r->store);
        if (q < 0)
                return q;
        q = store_acme_account_insert(r->store, &a, &id);
        if (q < 0) {
                store_rollback(r->store);
                /* Lost a race with the same key: the winner's account is the answer. */
                return q == -EEXIST ? acme_fail(r, -CF_E_CONFLICT, "Account creation raced; retry") : q;
        }
        q = acme_commit(r->store);
        if (q < 0)
                return q;
        a.id = id;
        return respond_account(r, 201, &a);
}

static int check_own_account(AcmeRequest *r, int64_t id) {
        if (id != r->account->id)
                return acme_fail(r, -CF_E_UNAUTHORIZED, "Account URL does not match the JWS kid");
        return 0;
}

int acme_account_handle(AcmeRequest *r, int64_t id) {
        _cleanup_free_ char *contacts = NULL, *cancelled_error = NULL;
        AcmeAccount *a = r->account;
        json_object *v;
        bool changed = false, deactivating = false;
        int q;

        q = check_own_account(r, id);
        if (q < 0)
                return q;
        if (!r->payload)
                return respond_account(r, 200, a);

        if (json_object_object_get_ex(r->payload, "contact", &v)) {
                q = contacts_check(r, v, &contacts);
                if (q < 0)
                        return q;
                free(a->contacts);
                a->contacts = TAKE_PTR(contacts);
                changed = true;
        }
        /* RFC 8555 §7.3.2: the server MUST ignore updates to termsOfServiceAgreed; agreeing to
         * changed terms happens out of band (§7.3.3). */
        if (json_object_object_get_ex(r->payload, "status", &v)) {
                if (!json_object_is_type(v, json_type_string) ||
                    strcmp(json_object_get_string(v), "deactivated") != 0)
                        return acme_fail(r, -CF_E_MALFORMED, "Only status \"deactivated\" can be requested");
                a->status = ACME_STATUS_DEACTIVATED;
                deactivating = true;
                changed = true;
        }
        if (deactivating) {
                q = acme_problem_json(-CF_E_UNAUTHORIZED, "The account was deactivated", &cancelled_error);
                if (q < 0)
                        return q;
        }
        if (changed) {
                q = store_begin(r->store);
                if (q < 0)
                        return q;
                q = store_acme_account_update(r->store, a);
                if (q >= 0 && deactivating)
                        q = store_acme_order_cancel_for_account(r->store, a->id, cancelled_error);
                if (q < 0) {
                        store_rollback(r->store);
                        return q;
                }
                q = acme_commit(r->store);
                if (q < 0)
                        return q;
        }
        return respond_account(r, 200, a);
}

/* RFC 8555 §7.1.2.1: the orders that can still succeed, ACME_ORDERS_PAGE_SIZE per page, each
 * page linking the next one with Link rel="next". A page is addressed by the last order id of
 * the page before it, so orders created while a client pages through never shift a page. */
int acme_account_orders_handle(AcmeRequest *r, int64_t id, int64_t after_id) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ int64_t *ids = NULL;
        json_object *arr;
        size_t n = 0;
        int q;

        q = check_own_account(r, id);
        if (q < 0)
                return q;
        if (r->payload)
                return acme_fail(r, -CF_E_MALFORMED, "The orders list is fetched with POST-as-GET");
        /* One more than a page tells whether a next page exists. */
        q = store_acme_order_list_by_account(r->store, id, after_id, time_now(), ACME_ORDERS_PAGE_SIZE + 1,
                                             &ids, &n);
        if (q < 0)
                return q;
        if (n > ACME_ORDERS_PAGE_SIZE) {
                n = ACME_ORDERS_PAGE_SIZE;
                q = http_response_add_headerf(r->resp, "Link", "<%sacct/%" PRIi64 "/orders/%" PRIi64 ">;rel=\"next\"",
                                              r->prefix_url, id, ids[n - 1]);
                if (q < 0)
                        return q;
        }
        o = json_object_new_object();
        arr = json_object_new_array();
        if (!o || !arr) {
                json_object_put(arr);
                return -ENOMEM;
        }
        json_object_object_add(o, "orders", arr);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *u = acme_url(r, "order/%" PRIi64, ids[i]);
                if (!u)
                        return -ENOMEM;
                json_object_array_add(arr, json_object_new_string(u));
        }
        return acme_respond_json(r, 200, o);
}

int acme_key_change_handle(AcmeRequest *r) {
        _cleanup_(jws_freep) Jws *inner = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *new_key = NULL;
        _cleanup_(json_object_putp) json_object *ip = NULL, *old_jwk = NULL;
        _cleanup_(acme_account_freep) AcmeAccount *other = NULL;
        _cleanup_free_ char *new_thumb = NULL, *new_jwk = NULL;
        const char *text, *account_url;
        json_object *old_key;
        AcmeAccount *a = r->account;
        int q;

        if (!r->payload)
                return acme_fail(r, -CF_E_MALFORMED, "keyChange needs an inner JWS payload");
        text = json_to_string_compact(r->payload);
        q = jws_parse(text, strlen(text), &inner);
        if (q == -CF_E_BAD_SIGNATURE_ALGORITHM)
                return acme_fail(r, q, "Inner JWS algorithm is not supported");
        if (q < 0)
                return acme_fail(r, -CF_E_MALFORMED, "Inner JWS is malformed");
        if (!inner->jwk || inner->kid)
                return acme_fail(r, -CF_E_MALFORMED, "Inner JWS must carry a jwk and no kid");
        if (inner->nonce)
                return acme_fail(r, -CF_E_MALFORMED, "Inner JWS must not carry a nonce");
        if (!inner->url || strcmp(inner->url, r->url) != 0)
                return acme_fail(r, -CF_E_MALFORMED, "Inner JWS url must equal the outer url");
        q = jwk_to_key(inner->jwk, &new_key);
        if (q == -CF_E_BAD_PUBLIC_KEY)
                return acme_fail(r, q, "New key type or size is not accepted");
        if (q < 0)
                return acme_fail(r, -CF_E_MALFORMED, "Inner JWS jwk is invalid");
        q = jws_verify(inner, new_key);
        if (q == -CF_E_BAD_SIGNATURE_ALGORITHM || q == -CF_E_BAD_PUBLIC_KEY)
                return acme_fail(r, q, "Inner JWS algorithm does not match the new key");
        if (q < 0)
                return acme_fail(r, -CF_E_MALFORMED, "Inner JWS signature is invalid");

        q = json_parse_strict((const char *) inner->payload, inner->payload_size, ACME_JWK_TEXT_MAX, &ip);
        if (q < 0 || !json_object_is_type(ip, json_type_object) ||
            json_get_string(ip, "account", &account_url) < 0 ||
            !json_object_object_get_ex(ip, "oldKey", &old_key))
                return acme_fail(r, -CF_E_MALFORMED, "Inner payload needs account and oldKey");
        if (strcmp(account_url, r->jws->kid) != 0)
                return acme_fail(r, -CF_E_UNAUTHORIZED, "Inner payload account does not match the kid");
        q = json_parse_strict(a->jwk, strlen(a->jwk), ACME_JWK_TEXT_MAX, &old_jwk);
        if (q < 0)
                return q;
        if (jwk_same(old_key, old_jwk) <= 0)
                return acme_fail(r, -CF_E_UNAUTHORIZED, "oldKey is not the account's current key");

        q = jwk_thumbprint(inner->jwk, &new_thumb);
        if (q < 0)
                return acme_fail(r, -CF_E_MALFORMED, "Inner JWS jwk is invalid");
        q = store_acme_account_get_by_thumbprint(r->store, r->route_key, new_thumb, &other);
        if (q >= 0) {
                r->location = acme_url(r, "acct/%" PRIi64, other->id);
                if (!r->location)
                        return -ENOMEM;
                return acme_fail(r, -CF_E_CONFLICT, "The new key is already in use by an account");
        }
        if (q != -ENOENT)
                return q;

        new_jwk = strdup(json_to_string_compact(inner->jwk));
        if (!new_jwk)
                return -ENOMEM;
        free(a->jwk);
        a->jwk = TAKE_PTR(new_jwk);
        free(a->thumbprint);
        a->thumbprint = TAKE_PTR(new_thumb);

        q = store_begin(r->store);
        if (q < 0)
                return q;
        q = store_acme_account_update(r->store, a);
        if (q < 0) {
                store_rollback(r->store);
                return q == -EEXIST ? acme_fail(r, -CF_E_CONFLICT, "The new key is already in use") : q;
        }
        q = acme_commit(r->store);
        if (q < 0)
                return q;
        return respond_account(r, 200, a);
}
