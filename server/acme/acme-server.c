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

struct AcmeWait {
        AcmeWait *next;
        int64_t challenge_id;
        HttpDeferred *deferred;        /* NULL until the reply is held */
        bool done;                     /* the result came before the reply was held */
};

/* The hold must end well before the validation times out: a client whose http-01 responder
 * runs on the thread that waits for this reply can only answer the validation's request once it
 * got the reply. Holding for at most half the timeout delays such a client, never fails it. */
static uint64_t response_wait_bound(const VaConfig *va) {
        uint64_t half = (uint64_t) MAX(va->timeout, (int64_t) 1) * 1000000u / 2u;

        return MIN(va->response_wait_usec, half);
}

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
        pthread_mutex_init(&s->wait_lock, NULL);
        atomic_init(&s->response_wait_usec, 0);
        r = acme_server_load_nonce_key(s, store);
        if (r < 0) {
                acme_server_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

static AcmeWait **wait_find(AcmeServer *s, int64_t challenge_id) {
        AcmeWait **w;

        for (w = &s->waits; *w; w = &(*w)->next)
                if ((*w)->challenge_id == challenge_id)
                        break;
        return w;
}

int acme_server_wait_register(AcmeServer *s, int64_t challenge_id) {
        AcmeWait *w;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->challenge_id = challenge_id;
        pthread_mutex_lock(&s->wait_lock);
        w->next = s->waits;
        s->waits = w;
        pthread_mutex_unlock(&s->wait_lock);
        return 0;
}

void acme_server_wait_unregister(AcmeServer *s, int64_t challenge_id) {
        AcmeWait **p, *w = NULL;

        pthread_mutex_lock(&s->wait_lock);
        p = wait_find(s, challenge_id);
        if (*p) {
                w = *p;
                *p = w->next;
        }
        pthread_mutex_unlock(&s->wait_lock);
        if (w) {
                http_deferred_unref(w->deferred);
                free(w);
        }
}

int acme_server_wait_attach(AcmeServer *s, int64_t challenge_id, HttpDeferred *d) {
        AcmeWait **p, *w = NULL;
        int r = 0;

        pthread_mutex_lock(&s->wait_lock);
        p = wait_find(s, challenge_id);
        if (!*p)
                r = -ENOENT;
        else if ((*p)->done) {
                w = *p;
                *p = w->next;
                r = -EALREADY;
        } else
                (*p)->deferred = d;
        pthread_mutex_unlock(&s->wait_lock);
        free(w);
        return r;
}

/* After the result is committed: wakes the reply held for it, so that it carries the result. */
static void acme_server_wait_done(AcmeServer *s, int64_t challenge_id) {
        HttpDeferred *d = NULL;
        AcmeWait **p, *w = NULL;

        pthread_mutex_lock(&s->wait_lock);
        p = wait_find(s, challenge_id);
        if (*p && (*p)->deferred) {
                w = *p;
                *p = w->next;
                d = w->deferred;
        } else if (*p)
                (*p)->done = true;
        pthread_mutex_unlock(&s->wait_lock);
        free(w);
        http_deferred_wake(d);
        http_deferred_unref(d);
}

uint64_t acme_server_response_wait_usec(AcmeServer *s) {
        return atomic_load(&s->response_wait_usec);
}

/* On a va thread. */
static void acme_server_va_done(const VaResult *result, void *userdata) {
        AcmeServer *s = userdata;
        int r;

        r = acme_challenge_complete(s->store, result->challenge_id, result->error, result->detail,
                                    time_now());
        /* Also after a failure: the held reply then says what the store says. */
        acme_server_wait_done(s, result->challenge_id);
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
        atomic_store(&s->response_wait_usec, response_wait_bound(&config->va));
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
        /* The HTTP server stopped first: every held reply was answered; these are references. */
        while (s->waits) {
                AcmeWait *w = s->waits;
                s->waits = w->next;
                http_deferred_unref(w->deferred);
                free(w);
        }
        explicit_bzero(s->nonce_key, sizeof(s->nonce_key));
        pthread_mutex_destroy(&s->va_lock);
        pthread_mutex_destroy(&s->wait_lock);
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
        /* Replies held already keep the bound they were held with. */
        atomic_store(&s->response_wait_usec, response_wait_bound(&config->va));
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
