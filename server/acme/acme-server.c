/* SPDX-License-Identifier: Apache-2.0 */
/* The ACME server object: the nonce key shared through the database and the validation pool
 * whose results are written back by acme_server_va_done() on the pool's threads. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/acme/acme-internal.h"
#include "shared/errors.h"
#include "shared/log.h"
#include "shared/random-util.h"

#define ACME_NONCE_KEY_NAME "nonce-key-v1"

static int acme_server_load_nonce_key(AcmeServer *s, Store *store) {
        uint8_t candidate[ACME_NONCE_KEY_SIZE];
        _cleanup_free_ uint8_t *key = NULL;
        size_t n = 0;
        int r;

        r = random_bytes(candidate, sizeof(candidate));
        if (r < 0)
                return r;
        r = store_acme_secret_get_or_create(store, ACME_NONCE_KEY_NAME, candidate, sizeof(candidate),
                                            &key, &n);
        explicit_bzero(candidate, sizeof(candidate));
        if (r < 0)
                return r;
        if (n != ACME_NONCE_KEY_SIZE) {
                explicit_bzero(key, n);
                return -EBADMSG;
        }
        memcpy(s->nonce_key, key, n);
        explicit_bzero(key, n);
        return 0;
}

int acme_server_new_with_store(Store *store, AcmeServer **ret) {
        AcmeServer *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        pthread_mutex_init(&s->va_lock, NULL);
        r = acme_server_load_nonce_key(s, store);
        if (r < 0) {
                acme_server_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

/* On a va thread. */
static void acme_server_va_done(const VaResult *result, void *userdata) {
        AcmeServer *s = userdata;
        int r;

        r = acme_challenge_complete(s->store, result->challenge_id, result->error, result->detail,
                                    time_now());
        if (r < 0)
                log_error_errno(r, "Failed to record validation of challenge %" PRIi64 ": %m",
                                result->challenge_id);
        else
                log_debug("Challenge %" PRIi64 " validated: %s", result->challenge_id,
                          result->error == 0 ? "valid" : result->detail ?: "invalid");
}

int acme_server_new(const ServerConfig *config, Store *store, AcmeServer **ret) {
        AcmeServer *s = NULL;
        int r;

        r = acme_server_new_with_store(store, &s);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the ACME nonce key: %m");
        s->store = store;
        r = va_new(&config->va, acme_server_va_done, s, &s->va);
        if (r < 0) {
                acme_server_free(s);
                return log_error_errno(r, "Failed to start the ACME validation pool: %m");
        }
        *ret = s;
        return 0;
}

AcmeServer *acme_server_free(AcmeServer *s) {
        if (!s)
                return NULL;
        va_free(s->va);
        explicit_bzero(s->nonce_key, sizeof(s->nonce_key));
        pthread_mutex_destroy(&s->va_lock);
        free(s);
        return NULL;
}

int acme_server_reload(AcmeServer *s, const ServerConfig *config) {
        Va *va = NULL, *old;
        int r;

        r = va_new(&config->va, acme_server_va_done, s, &va);
        if (r < 0)
                return log_error_errno(r, "Failed to restart the ACME validation pool: %m");
        pthread_mutex_lock(&s->va_lock);
        old = s->va;
        s->va = va;
        pthread_mutex_unlock(&s->va_lock);
        /* Finishes the validations already queued on the old pool. */
        va_free(old);
        return 0;
}

int acme_server_submit_validation(AcmeServer *s, const VaRequest *req) {
        int r;

        pthread_mutex_lock(&s->va_lock);
        r = s->va ? va_submit(s->va, req) : -EAGAIN;
        pthread_mutex_unlock(&s->va_lock);
        return r;
}

int acme_commit(Store *s) {
        int r = store_commit(s);
        if (r < 0)
                store_rollback(s);
        return r;
}
