/* SPDX-License-Identifier: Apache-2.0 */
/* Replay nonces (RFC 8555 §6.5) that work across server instances sharing one database: a nonce
 * is AES-256-GCM(key, timestamp || random) under a key stored in the database, so any instance
 * can check it without having issued it; single use is enforced by a replay record inserted in
 * the shared database when it is consumed. Tampered nonces and nonces from another key fail the
 * GCM tag; old ones fail the timestamp; replayed ones hit the record's primary key. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "server/acme/acme-internal.h"
#include "shared/base64.h"
#include "shared/errors.h"
#include "shared/random-util.h"

#define NONCE_IV_SIZE    12
#define NONCE_PLAIN_SIZE 16     /* 8 bytes big-endian timestamp, 8 random */
#define NONCE_TAG_SIZE   16
#define NONCE_RAW_SIZE   (NONCE_IV_SIZE + NONCE_PLAIN_SIZE + NONCE_TAG_SIZE)
#define NONCE_TEXT_MAX   64     /* base64url of NONCE_RAW_SIZE is 59 characters */

int acme_nonce_new(const AcmeServer *s, char **ret) {
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = NULL;
        uint8_t raw[NONCE_RAW_SIZE], plain[NONCE_PLAIN_SIZE];
        uint64_t now = (uint64_t) time_now();
        int len, r;

        for (int i = 0; i < 8; i++)
                plain[i] = (uint8_t) (now >> (56 - 8 * i));
        r = random_bytes(plain + 8, 8);
        if (r < 0)
                return r;
        r = random_bytes(raw, NONCE_IV_SIZE);
        if (r < 0)
                return r;

        ctx = EVP_CIPHER_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, s->nonce_key, raw) != 1 ||
            EVP_EncryptUpdate(ctx, raw + NONCE_IV_SIZE, &len, plain, sizeof(plain)) != 1 ||
            len != NONCE_PLAIN_SIZE ||
            EVP_EncryptFinal_ex(ctx, raw + NONCE_IV_SIZE + len, &len) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, NONCE_TAG_SIZE,
                                raw + NONCE_IV_SIZE + NONCE_PLAIN_SIZE) != 1)
                return -EIO;

        return base64url_encode(raw, sizeof(raw), ret);
}

int acme_nonce_check(const AcmeServer *s, const char *nonce, cf_time_t now, char **ret_id,
                     cf_time_t *ret_expires) {
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = NULL;
        _cleanup_free_ uint8_t *raw = NULL;
        uint8_t plain[NONCE_PLAIN_SIZE];
        size_t n, len_text;
        uint64_t ts = 0;
        int len, r;

        if (!nonce)
                return -CF_E_BAD_NONCE;
        len_text = strnlen(nonce, NONCE_TEXT_MAX + 1);
        if (len_text > NONCE_TEXT_MAX)
                return -CF_E_BAD_NONCE;
        r = base64url_decode(nonce, len_text, (void **) &raw, &n);
        if (r < 0 || n != NONCE_RAW_SIZE)
                return -CF_E_BAD_NONCE;

        ctx = EVP_CIPHER_CTX_new();
        if (!ctx)
                return -ENOMEM;
        if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, s->nonce_key, raw) != 1 ||
            EVP_DecryptUpdate(ctx, plain, &len, raw + NONCE_IV_SIZE, NONCE_PLAIN_SIZE) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, NONCE_TAG_SIZE,
                                raw + NONCE_IV_SIZE + NONCE_PLAIN_SIZE) != 1 ||
            EVP_DecryptFinal_ex(ctx, plain + len, &len) != 1)
                return -CF_E_BAD_NONCE;

        for (int i = 0; i < 8; i++)
                ts = (ts << 8) | plain[i];
        /* A little tolerance for clock differences between instances. */
        if ((cf_time_t) ts > now + 60 || (cf_time_t) ts + ACME_NONCE_LIFETIME < now)
                return -CF_E_BAD_NONCE;

        if (ret_id) {
                r = base64url_encode(plain, sizeof(plain), ret_id);
                if (r < 0)
                        return r;
        }
        if (ret_expires)
                *ret_expires = (cf_time_t) ts + ACME_NONCE_LIFETIME + 60;
        return 0;
}

int acme_nonce_consume(const AcmeServer *s, Store *store, const char *nonce, cf_time_t now) {
        _cleanup_free_ char *id = NULL;
        cf_time_t expires;
        int r;

        r = acme_nonce_check(s, nonce, now, &id, &expires);
        if (r < 0)
                return r;

        r = store_begin(store);
        if (r < 0)
                return r;
        r = store_acme_nonce_consume(store, id, expires, now);
        if (r < 0) {
                store_rollback(store);
                return r == -EEXIST ? -CF_E_BAD_NONCE : r;
        }
        return acme_commit(store);
}

int acme_begin(AcmeRequest *r) {
        int q;

        q = store_begin(r->store);
        if (q < 0)
                return q;
        r->nonce_in_transaction = false;
        if (!r->nonce_id || r->nonce_recorded)
                return 0;

        q = store_acme_nonce_consume(r->store, r->nonce_id, r->nonce_expires, time_now());
        if (q < 0) {
                store_rollback(r->store);
                if (q == -EEXIST)
                        return acme_fail(r, -CF_E_BAD_NONCE, "JWS nonce was already used");
                return q;
        }
        r->nonce_in_transaction = true;
        return 0;
}

int acme_commit_request(AcmeRequest *r) {
        int q;

        q = acme_commit(r->store);
        if (q >= 0 && r->nonce_in_transaction)
                r->nonce_recorded = true;
        r->nonce_in_transaction = false;
        return q;
}

int acme_nonce_record_pending(AcmeRequest *r) {
        int q;

        if (!r->nonce_id || r->nonce_recorded)
                return 0;
        /* A transaction of the handler's that held the record was rolled back. */
        q = acme_begin(r);
        if (q < 0)
                return q;
        return acme_commit_request(r);
}
