/* SPDX-License-Identifier: Apache-2.0 */
/* Challenges (RFC 8555 §7.5.1, §8): a POST starts an asynchronous validation on the va/ pool;
 * acme_challenge_complete() writes its result back to challenge, authorization and orders. The
 * POST that started it holds its reply (without blocking the worker) until the result is
 * committed or ChallengeResponseWait= passed, so that most clients learn the result from it
 * and need not poll. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/acme/acme-internal.h"
#include "server/server-worker.h"
#include "shared/errors.h"
#include "shared/log.h"

int acme_challenge_complete(Store *s, int64_t challenge_id, int error, const char *detail,
                            cf_time_t now) {
        _cleanup_(acme_challenge_freep) AcmeChallenge *c = NULL;
        _cleanup_(acme_authz_freep) AcmeAuthz *a = NULL;
        _cleanup_free_ int64_t *orders = NULL;
        size_t n = 0;
        int q;

        q = store_begin(s);
        if (q < 0)
                return q;
        q = store_acme_challenge_get(s, challenge_id, &c);
        if (q < 0)
                goto fail;
        if (c->status != ACME_STATUS_PROCESSING) {
                /* A result for a challenge no longer waiting for one (e.g. a pool restart): drop it. */
                store_rollback(s);
                return 0;
        }
        q = store_acme_authz_get(s, c->authz_id, &a);
        if (q < 0)
                goto fail;

        if (error == 0) {
                c->status = ACME_STATUS_VALID;
                c->validated = now;
        } else {
                int e = cf_error_is_protocol(error) ? error : -CF_E_CONNECTION;

                c->status = ACME_STATUS_INVALID;
                free(c->error);
                c->error = NULL;
                q = acme_problem_json(e, detail ?: "Validation failed", &c->error);
                if (q < 0)
                        goto fail;
        }
        q = store_acme_challenge_update(s, c);
        if (q < 0)
                goto fail;

        if (acme_authz_effective_status(a, now) == ACME_STATUS_PENDING) {
                q = store_acme_authz_update(s, a->id, error == 0 ? ACME_STATUS_VALID : ACME_STATUS_INVALID,
                                            a->expires);
                if (q < 0)
                        goto fail;
        }

        q = store_acme_authz_get_order_ids(s, a->id, &orders, &n);
        if (q < 0)
                goto fail;
        for (size_t i = 0; i < n; i++) {
                q = acme_order_update_from_authzs(s, orders[i], now);
                if (q < 0)
                        goto fail;
        }
        return acme_commit(s);
fail:
        store_rollback(s);
        return q;
}

static int respond_challenge(AcmeRequest *r, const AcmeChallenge *c) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        int q;

        q = acme_challenge_to_json(r, c, &o);
        if (q < 0)
                return q;
        q = http_response_add_headerf(r->resp, "Link", "<%sauthz/%" PRIi64 ">;rel=\"up\"",
                                      r->prefix_url, c->authz_id);
        if (q < 0)
                return q;
        /* RFC 8555 §8.2: tell the client when to look again. */
        if (c->status == ACME_STATUS_PROCESSING) {
                q = http_response_add_headerf(r->resp, "Retry-After", "%d", ACME_RETRY_AFTER_PROCESSING);
                if (q < 0)
                        return q;
        }
        return acme_respond_json(r, 200, o);
}

/* Inside the transaction so two concurrent POSTs start one validation: -EALREADY if another
 * challenge of the authorization is being (or was) validated, or this one left pending. */
static int authz_idle(Store *store, int64_t authz_id) {
        AcmeChallenge **l = NULL;
        bool busy = false;
        int q;

        q = store_acme_challenge_list_by_authz(store, authz_id, &l);
        if (q < 0)
                return q;
        for (AcmeChallenge **i = l; *i; i++)
                if ((*i)->status != ACME_STATUS_PENDING)
                        busy = true;
        acme_challenge_list_free(l);
        return busy ? -EALREADY : 0;
}

/* *ret_started: this request moved the challenge to processing (and may wait for the result). */
static int start_validation(AcmeRequest *r, AcmeChallenge *c, const AcmeAuthz *a, bool *ret_started) {
        _cleanup_free_ char *key_authz = NULL;
        bool wait = r->http && acme_server_response_wait_usec(r->server) > 0;
        ChallengeType t;
        int q;

        t = challenge_type_from_string(c->type);
        if (t < 0)
                return -EIO;
        if (asprintf(&key_authz, "%s.%s", c->token, r->account->thumbprint) < 0)
                return -ENOMEM;

        VaRequest req = {
                .type = t,
                .identifier_type = a->identifier_type,
                .identifier = a->identifier_value,
                .token = c->token,
                .key_authorization = key_authz,
                .challenge_id = c->id,
        };

        q = acme_begin(r);
        if (q < 0)
                return q;
        q = authz_idle(r->store, a->id);
        if (q == -EALREADY) {
                AcmeChallenge *cur = NULL;

                /* Answer with the state the winner left. */
                q = store_acme_challenge_get(r->store, c->id, &cur);
                store_rollback(r->store);
                if (q < 0)
                        return q;
                c->status = cur->status;
                c->validated = cur->validated;
                free(c->error);
                c->error = TAKE_PTR(cur->error);
                acme_challenge_free(cur);
                return 0;
        }
        if (q < 0)
                goto fail;
        c->status = ACME_STATUS_PROCESSING;
        q = store_acme_challenge_update(r->store, c);
        if (q < 0)
                goto fail;
        /* Before the submit: the result may be committed before this reply is held. */
        if (wait) {
                q = acme_server_wait_register(r->server, c->id);
                if (q < 0)
                        goto fail;
        }
        /* Submitted inside the transaction: the pool's writer waits on the store's lock until
         * the processing state is committed, and a refused submit leaves nothing behind. */
        q = acme_server_submit_validation(r->server, &req);
        if (q == -EAGAIN) {
                q = acme_fail(r, -CF_E_RATE_LIMITED, "Too many validations in progress; retry later");
                (void) http_response_add_header(r->resp, "Retry-After", "5");
                goto fail;
        }
        if (q < 0)
                goto fail;
        q = acme_commit_request(r);
        if (q < 0) {
                if (wait)
                        acme_server_wait_unregister(r->server, c->id);
                c->status = ACME_STATUS_PENDING;
                return q;
        }
        *ret_started = wait;
        return 0;
fail:
        store_rollback(r->store);
        if (wait)
                acme_server_wait_unregister(r->server, c->id);
        c->status = ACME_STATUS_PENDING;
        return q;
}

typedef struct ChallengeWait {
        AcmeServer *server;
        int64_t challenge_id;
        char *prefix_url;
} ChallengeWait;

static void challenge_wait_free(void *userdata) {
        ChallengeWait *w = userdata;

        if (!w)
                return;
        free(w->prefix_url);
        free(w);
}

/* On the worker that owns the connection, once the result is committed or the bound passed (or
 * the server stops): the reply today's unheld POST would have given, with the state now. */
static int challenge_resume(const HttpRequest *req, HttpResponse *resp, void *userdata) {
        ChallengeWait *w = userdata;
        _cleanup_(acme_challenge_freep) AcmeChallenge *c = NULL;
        AcmeRequest r = {
                .server = w->server,
                .http = req,
                .resp = resp,
                .method = req->method,
                .url = req->url,
                .store = server_worker_get_store(req->worker),
                .prefix_url = strdup(w->prefix_url),
        };
        int q;

        /* Timed out: the result must not wake a reply that is gone. */
        acme_server_wait_unregister(w->server, w->challenge_id);

        q = r.prefix_url ? 0 : -ENOMEM;
        if (q >= 0)
                q = store_acme_challenge_get(r.store, w->challenge_id, &c);
        if (q >= 0)
                q = respond_challenge(&r, c);
        return acme_request_finish(&r, q);
}

/* After start_validation() registered and committed: holds the reply until the result is there.
 * 1 if held (woken at once if the result came first); 0 if holding failed: answer now. */
static int challenge_hold(AcmeRequest *r, AcmeChallenge *c) {
        _cleanup_(http_deferred_unrefp) HttpDeferred *d = NULL;
        ChallengeWait *w;
        int q;

        w = calloc(1, sizeof(*w));
        if (!w || !(w->prefix_url = strdup(r->prefix_url))) {
                challenge_wait_free(w);
                acme_server_wait_unregister(r->server, c->id);
                return 0;
        }
        w->server = r->server;
        w->challenge_id = c->id;

        q = http_request_defer(r->http, acme_server_response_wait_usec(r->server), challenge_resume,
                               w, challenge_wait_free, &d);
        if (q < 0) {
                log_debug_errno(q, "Cannot hold the reply for challenge %" PRIi64 ", answering now: %m",
                                c->id);
                challenge_wait_free(w);
                acme_server_wait_unregister(r->server, c->id);
                return 0;
        }

        r->deferred = true;
        q = acme_server_wait_attach(r->server, c->id, d);
        if (q >= 0) {
                TAKE_PTR(d);
                return 1;
        }
        /* The result came first: the held reply, woken now, answers with it from the loop. */
        http_deferred_wake(d);
        return 1;
}

int acme_challenge_handle(AcmeRequest *r, int64_t id) {
        _cleanup_(acme_challenge_freep) AcmeChallenge *c = NULL;
        _cleanup_(acme_authz_freep) AcmeAuthz *a = NULL;
        int q;

        q = store_acme_challenge_get(r->store, id, &c);
        if (q >= 0)
                q = store_acme_authz_get(r->store, c->authz_id, &a);
        if (q == -ENOENT || (q >= 0 && (a->account_id != r->account->id ||
                                        strcmp(a->profile, r->route_key) != 0)))
                return acme_fail(r, -CF_E_NOT_FOUND, "No such challenge");
        if (q < 0)
                return q;

        if (r->payload && c->status == ACME_STATUS_PENDING) {
                AcmeStatus as = acme_authz_effective_status(a, time_now());

                if (as != ACME_STATUS_PENDING)
                        return acme_fail(r, -CF_E_MALFORMED, "Authorization is %s", acme_status_to_string(as));
                bool started = false;

                q = start_validation(r, c, a, &started);
                if (q < 0)
                        return q;
                /* Only the POST that started the validation waits; concurrent ones answer now. */
                if (started && challenge_hold(r, c) > 0)
                        return 0;
        }
        return respond_challenge(r, c);
}
