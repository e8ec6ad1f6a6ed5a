/* SPDX-License-Identifier: Apache-2.0 */
/* Request authentication, RFC 8555 §6.2–6.5. Nothing is written to the store unless the request
 * authenticates: the nonce's replay record is the last step. */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/acme/acme-internal.h"
#include "shared/errors.h"
#include "shared/json-util.h"

static bool content_type_is_jose(const char *ct) {
        size_t n;

        if (!ct)
                return false;
        n = strcspn(ct, ";");
        while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
                n--;
        return n == strlen("application/jose+json") &&
               strncasecmp(ct, "application/jose+json", n) == 0;
}

int acme_account_id_from_url(const AcmeRequest *r, const char *url, int64_t *ret) {
        size_t n = strlen(r->prefix_url);
        int64_t id;

        if (strncmp(url, r->prefix_url, n) != 0)
                return -CF_E_ACCOUNT_DOES_NOT_EXIST;
        if (acme_parse_id(url + n, "acct/", NULL, &id) < 0)
                return -CF_E_ACCOUNT_DOES_NOT_EXIST;
        *ret = id;
        return 0;
}

/* Per worker thread: account key thumbprint → parsed public key. Turning the stored JWK into an
 * EVP_PKEY (JSON parse, curve set-up, point checks) cost more than verifying the signature, on
 * every request of the account. The thumbprint names the key itself, so a keyChange is a miss,
 * never a stale hit. Direct-mapped: a collision only costs a re-parse. */
#define ACCOUNT_KEY_CACHE_SIZE 64u

typedef struct AccountKeyCache {
        char *thumbprint[ACCOUNT_KEY_CACHE_SIZE];
        EVP_PKEY *key[ACCOUNT_KEY_CACHE_SIZE];
} AccountKeyCache;

static pthread_key_t account_key_cache_key;
static pthread_once_t account_key_cache_once = PTHREAD_ONCE_INIT;

static void account_key_cache_free(void *p) {
        AccountKeyCache *c = p;

        for (size_t i = 0; i < ACCOUNT_KEY_CACHE_SIZE; i++) {
                free(c->thumbprint[i]);
                EVP_PKEY_free(c->key[i]);
        }
        free(c);
}

static void account_key_cache_init(void) {
        if (pthread_key_create(&account_key_cache_key, account_key_cache_free) != 0)
                abort();   /* only when the process is out of keys: a build-time bug */
}

static AccountKeyCache *account_key_cache_get(void) {
        AccountKeyCache *c;

        (void) pthread_once(&account_key_cache_once, account_key_cache_init);
        c = pthread_getspecific(account_key_cache_key);
        if (!c) {
                c = calloc(1, sizeof(AccountKeyCache));
                if (c && pthread_setspecific(account_key_cache_key, c) != 0) {
                        free(c);
                        c = NULL;
                }
        }
        return c;   /* NULL: no cache, still correct */
}

static int account_key(const AcmeAccount *account, EVP_PKEY **ret) {
        _cleanup_(json_object_putp) json_object *jwk = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        AccountKeyCache *c = account_key_cache_get();
        size_t slot = 0;
        int q;

        for (const char *p = account->thumbprint; p && *p; p++)
                slot = slot * 31 + (unsigned char) *p;
        slot %= ACCOUNT_KEY_CACHE_SIZE;

        if (c && account->thumbprint && c->thumbprint[slot] &&
            strcmp(c->thumbprint[slot], account->thumbprint) == 0 &&
            EVP_PKEY_up_ref(c->key[slot]) == 1) {
                *ret = c->key[slot];
                return 0;
        }

        q = json_parse_strict(account->jwk, strlen(account->jwk), 64 * 1024, &jwk);
        if (q < 0)
                return q;
        q = jwk_to_key(jwk, &key);
        if (q < 0)
                return q;

        if (c && account->thumbprint) {
                char *t = strdup(account->thumbprint);

                if (t && EVP_PKEY_up_ref(key) == 1) {
                        free(c->thumbprint[slot]);
                        EVP_PKEY_free(c->key[slot]);
                        c->thumbprint[slot] = t;
                        c->key[slot] = key;
                } else
                        free(t);
        }
        *ret = TAKE_PTR(key);
        return 0;
}

int acme_jws_authenticate(AcmeRequest *r, AcmeAuthMode mode) {
        _cleanup_(jws_freep) Jws *jws = NULL;
        _cleanup_(acme_account_freep) AcmeAccount *account = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(json_object_putp) json_object *payload = NULL;
        _cleanup_free_ char *nonce_id = NULL;
        cf_time_t now = time_now(), nonce_expires = 0;
        int q;

        if (!content_type_is_jose(r->content_type))
                return acme_fail(r, -CF_E_UNSUPPORTED_MEDIA_TYPE,
                                 "Content-Type must be application/jose+json");

        q = jws_parse((const char *) r->body, r->body_size, &jws);
        if (q == -E2BIG || q == -CF_E_TOO_LARGE)
                return acme_fail(r, -CF_E_TOO_LARGE, "JWS too large");
        if (q == -CF_E_BAD_SIGNATURE_ALGORITHM)
                return acme_fail(r, q, "Unsupported JWS algorithm; use ES256, ES384, ES512, RS256 or EdDSA");
        if (q < 0)
                return acme_fail(r, -CF_E_MALFORMED, "Request is not a valid flattened JWS");
        if (jws->alg == JWS_ALG_HS256)
                return acme_fail(r, -CF_E_BAD_SIGNATURE_ALGORITHM, "HS256 is only for external account binding");

        if (!jws->nonce)
                return acme_fail(r, -CF_E_BAD_NONCE, "JWS has no nonce");
        if (acme_nonce_check(r->server, jws->nonce, now, &nonce_id, &nonce_expires) < 0)
                return acme_fail(r, -CF_E_BAD_NONCE, "JWS has an invalid or expired nonce");

        if (!jws->url)
                return acme_fail(r, -CF_E_MALFORMED, "JWS has no url");
        if (strcmp(jws->url, r->url) != 0)
                return acme_fail(r, -CF_E_UNAUTHORIZED, "JWS url does not match the request URL");

        if (jws->jwk && jws->kid)
                return acme_fail(r, -CF_E_MALFORMED, "JWS has both jwk and kid");
        if (mode == ACME_AUTH_JWK && !jws->jwk)
                return acme_fail(r, -CF_E_MALFORMED, "This resource needs a jwk in the JWS header");
        if (mode == ACME_AUTH_KID && !jws->kid)
                return acme_fail(r, -CF_E_MALFORMED, "This resource needs a kid in the JWS header");

        if (jws->kid) {
                int64_t id;

                q = acme_account_id_from_url(r, jws->kid, &id);
                if (q < 0)
                        return acme_fail(r, q, "Account '%.200s' does not exist", jws->kid);
                q = store_acme_account_get(r->store, id, &account);
                if (q == -ENOENT || (q >= 0 && strcmp(account->profile, r->route_key) != 0))
                        return acme_fail(r, -CF_E_ACCOUNT_DOES_NOT_EXIST,
                                         "Account '%.200s' does not exist", jws->kid);
                if (q < 0)
                        return q;
                if (account->status != ACME_STATUS_VALID)
                        return acme_fail(r, -CF_E_UNAUTHORIZED, "Account is %s",
                                         acme_status_to_string(account->status));
                q = account_key(account, &key);
                if (q < 0)
                        return q;
        } else {
                q = jwk_to_key(jws->jwk, &key);
                if (q == -CF_E_BAD_PUBLIC_KEY)
                        return acme_fail(r, q, "JWK key type or size is not accepted");
                if (q < 0)
                        return acme_fail(r, -CF_E_MALFORMED, "Invalid JWK");
        }

        q = jws_verify(jws, key);
        if (q == -CF_E_BAD_SIGNATURE_ALGORITHM)
                return acme_fail(r, q, "JWS algorithm does not match the key");
        if (q == -CF_E_BAD_PUBLIC_KEY)
                return acme_fail(r, q, "Key type or size is not accepted");
        if (q < 0)
                return acme_fail(r, -CF_E_MALFORMED, "JWS signature is invalid");

        if (!jws->payload_empty) {
                _cleanup_(json_object_putp) json_object *p = NULL;

                q = json_parse_strict((const char *) jws->payload, jws->payload_size, JWS_BODY_MAX, &p);
                if (q < 0 || !json_object_is_type(p, json_type_object))
                        return acme_fail(r, -CF_E_MALFORMED, "JWS payload is not a JSON object");
                payload = TAKE_PTR(p);
        }

        /* Authenticated: now burn the nonce, or leave that to the handler's transaction. */
        if (r->nonce_deferred) {
                r->nonce_id = TAKE_PTR(nonce_id);
                r->nonce_expires = nonce_expires;
        } else {
                q = acme_nonce_consume(r->server, r->store, jws->nonce, now);
                if (q == -CF_E_BAD_NONCE)
                        return acme_fail(r, q, "JWS nonce was already used");
                if (q < 0)
                        return q;
        }

        r->jws = TAKE_PTR(jws);
        r->account = TAKE_PTR(account);
        r->key = TAKE_PTR(key);
        r->payload = TAKE_PTR(payload);
        return 0;
}
