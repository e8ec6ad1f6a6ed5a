/* SPDX-License-Identifier: Apache-2.0 */

/* The validation pool: challenges are validated on threads of their own because one validation
 * may wait for a slow or silent peer for the whole timeout, which the event loops must never do. */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/va/va-internal.h"
#include "server/va/va.h"
#include "shared/macro.h"

static const char *const challenge_type_table[_CHALLENGE_TYPE_MAX] = {
        [CHALLENGE_HTTP_01] = "http-01",
        [CHALLENGE_DNS_01] = "dns-01",
        [CHALLENGE_TLS_ALPN_01] = "tls-alpn-01",
};

const char *challenge_type_to_string(ChallengeType t) {
        if (t < 0 || t >= _CHALLENGE_TYPE_MAX)
                return NULL;
        return challenge_type_table[t];
}

ChallengeType challenge_type_from_string(const char *s) {
        if (!s)
                return _CHALLENGE_TYPE_INVALID;
        for (int i = 0; i < _CHALLENGE_TYPE_MAX; i++)
                if (strcmp(challenge_type_table[i], s) == 0)
                        return (ChallengeType) i;
        return _CHALLENGE_TYPE_INVALID;
}

va_usec_t va_now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (va_usec_t) ts.tv_sec * 1000000u + (va_usec_t) ts.tv_nsec / 1000u;
}

va_usec_t va_deadline(const VaConfig *config) {
        int64_t timeout = config->timeout > 0 ? config->timeout : VA_DEFAULT_TIMEOUT;

        return va_now() + (va_usec_t) timeout * 1000000u;
}

int64_t va_remaining_ms(va_usec_t deadline) {
        va_usec_t now = va_now();

        if (now >= deadline)
                return 0;
        return (int64_t) ((deadline - now + 999u) / 1000u);
}

int va_fail(int error, char **ret_detail, const char *format, ...) {
        va_list ap;
        char *s;

        if (!ret_detail)
                return error;

        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        va_end(ap);

        free(*ret_detail);
        *ret_detail = s;
        return error;
}

static bool va_token_valid(const char *token) {
        size_t n = strlen(token);

        /* RFC 8555 §8.1: tokens are base64url; anything else could change the URL we fetch. */
        if (n == 0 || n > VA_TOKEN_MAX)
                return false;
        return strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static bool va_dns_name_valid(const char *name) {
        size_t n = strlen(name), label = 0;

        if (n == 0 || n > VA_IDENTIFIER_MAX)
                return false;
        if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.") != n)
                return false;
        for (const char *p = name; *p; p++) {
                if (*p == '.') {
                        if (label == 0)
                                return false;
                        label = 0;
                } else if (++label > 63)
                        return false;
        }
        return label > 0;
}

static int va_request_check(const VaRequest *req) {
        if (!req || !req->identifier_type || !req->identifier || !req->token || !req->key_authorization)
                return -EINVAL;
        if (!challenge_type_to_string(req->type))
                return -EINVAL;
        if (!va_token_valid(req->token))
                return -EINVAL;
        if (strlen(req->key_authorization) > VA_KEY_AUTHORIZATION_MAX)
                return -EINVAL;

        if (strcmp(req->identifier_type, "dns") == 0) {
                if (!va_dns_name_valid(req->identifier))
                        return -EINVAL;
        } else if (strcmp(req->identifier_type, "ip") == 0) {
                if (!va_parse_ip(req->identifier, NULL))
                        return -EINVAL;
                /* RFC 8738 §7: dns-01 cannot prove control of an IP address. */
                if (req->type == CHALLENGE_DNS_01)
                        return -EINVAL;
        } else
                return -EINVAL;

        return 0;
}

int va_validate(const VaConfig *config, const VaRequest *req, char **ret_detail) {
        _cleanup_free_ char *detail = NULL;
        va_usec_t deadline;
        int r;

        if (!config)
                return -EINVAL;
        r = va_request_check(req);
        if (r < 0)
                return va_fail(r, ret_detail, "Invalid validation request");

        deadline = va_deadline(config);
        switch (req->type) {
        case CHALLENGE_HTTP_01:
                r = va_validate_http01(config, req, deadline, &detail);
                break;
        case CHALLENGE_DNS_01:
                r = va_validate_dns01(config, req, deadline, &detail);
                break;
        case CHALLENGE_TLS_ALPN_01:
                r = va_validate_tlsalpn01(config, req, deadline, &detail);
                break;
        default:
                return -EINVAL;
        }
        if (r < 0 && ret_detail) {
                free(*ret_detail);
                *ret_detail = detail ? TAKE_PTR(detail) : strdup(cf_error_name(r));
        }
        return r;
}

/* The pool. */

typedef struct VaJob {
        VaRequest req;
} VaJob;

struct Va {
        VaConfig config;
        VaDoneCallback done;
        void *userdata;

        pthread_mutex_t lock;
        pthread_cond_t cond;
        VaJob *queue;                /* ring of queue_size entries */
        size_t queue_size, head, count;
        bool stopping;

        pthread_t *threads;
        size_t n_threads;
};

static void va_request_done(VaRequest *req) {
        free(req->identifier_type);
        free(req->identifier);
        free(req->token);
        if (req->key_authorization)
                explicit_bzero(req->key_authorization, strlen(req->key_authorization));
        free(req->key_authorization);
        *req = (VaRequest) {};
}

static int va_request_copy(const VaRequest *src, VaRequest *ret) {
        VaRequest c = {
                .type = src->type,
                .challenge_id = src->challenge_id,
                .identifier_type = strdup(src->identifier_type),
                .identifier = strdup(src->identifier),
                .token = strdup(src->token),
                .key_authorization = strdup(src->key_authorization),
        };

        if (!c.identifier_type || !c.identifier || !c.token || !c.key_authorization) {
                va_request_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static void *va_worker(void *p) {
        Va *va = p;

        for (;;) {
                _cleanup_free_ char *detail = NULL;
                VaJob job;
                VaResult result;
                int r;

                pthread_mutex_lock(&va->lock);
                while (va->count == 0 && !va->stopping)
                        pthread_cond_wait(&va->cond, &va->lock);
                if (va->count == 0) {
                        pthread_mutex_unlock(&va->lock);
                        return NULL;
                }
                job = va->queue[va->head];
                va->queue[va->head] = (VaJob) {};
                va->head = (va->head + 1) % va->queue_size;
                va->count--;
                pthread_mutex_unlock(&va->lock);

                r = va_validate(&va->config, &job.req, &detail);
                result = (VaResult) {
                        .challenge_id = job.req.challenge_id,
                        .error = r < 0 ? r : 0,
                        .detail = r < 0 ? detail : NULL,
                };
                va->done(&result, va->userdata);
                va_request_done(&job.req);
        }
}

int va_new(const VaConfig *config, VaDoneCallback done, void *userdata, Va **ret) {
        Va *va;
        int r;

        if (!config || !done || !ret)
                return -EINVAL;
        if (config->http_port > 65535 || config->tls_port > 65535 || config->timeout < 0 ||
            config->workers > VA_MAX_WORKERS)
                return -EINVAL;
        /* A typo in Resolver= should stop the daemon at start, not fail every validation. */
        if (config->resolver) {
                struct sockaddr_storage ss;
                socklen_t len;

                r = va_dns_parse_server(config->resolver, &ss, &len);
                if (r < 0)
                        return r;
        }

        va = calloc(1, sizeof(Va));
        if (!va)
                return -ENOMEM;

        va->config = (VaConfig) {
                .http_port = config->http_port ?: VA_DEFAULT_HTTP_PORT,
                .tls_port = config->tls_port ?: VA_DEFAULT_TLS_PORT,
                .workers = config->workers ?: VA_DEFAULT_WORKERS,
                .timeout = config->timeout ?: VA_DEFAULT_TIMEOUT,
                .queue_size = config->queue_size ?: VA_DEFAULT_QUEUE_SIZE,
        };
        va->done = done;
        va->userdata = userdata;
        pthread_mutex_init(&va->lock, NULL);
        pthread_cond_init(&va->cond, NULL);

        if (config->resolver) {
                va->config.resolver = strdup(config->resolver);
                if (!va->config.resolver) {
                        va_free(va);
                        return -ENOMEM;
                }
        }

        va->queue_size = va->config.queue_size;
        va->queue = calloc(va->queue_size, sizeof(VaJob));
        va->threads = calloc(va->config.workers, sizeof(pthread_t));
        if (!va->queue || !va->threads) {
                va_free(va);
                return -ENOMEM;
        }

        for (unsigned i = 0; i < va->config.workers; i++) {
                r = pthread_create(&va->threads[i], NULL, va_worker, va);
                if (r != 0) {
                        va_free(va);
                        return -r;
                }
                va->n_threads++;
        }

        *ret = va;
        return 0;
}

int va_submit(Va *va, const VaRequest *req) {
        VaRequest copy;
        int r;

        if (!va || !req)
                return -EINVAL;

        r = va_request_copy(req, &copy);
        if (r < 0)
                return r;

        pthread_mutex_lock(&va->lock);
        if (va->stopping)
                r = -ESHUTDOWN;
        else if (va->count >= va->queue_size)
                r = -EAGAIN;
        else {
                va->queue[(va->head + va->count) % va->queue_size].req = copy;
                va->count++;
                pthread_cond_signal(&va->cond);
        }
        pthread_mutex_unlock(&va->lock);

        if (r < 0)
                va_request_done(&copy);
        return r;
}

Va *va_free(Va *va) {
        if (!va)
                return NULL;

        pthread_mutex_lock(&va->lock);
        va->stopping = true;
        pthread_cond_broadcast(&va->cond);
        pthread_mutex_unlock(&va->lock);

        for (size_t i = 0; i < va->n_threads; i++)
                pthread_join(va->threads[i], NULL);

        /* Only left if no thread ever started. */
        for (size_t i = 0; va->queue && i < va->count; i++)
                va_request_done(&va->queue[(va->head + i) % va->queue_size].req);

        pthread_cond_destroy(&va->cond);
        pthread_mutex_destroy(&va->lock);
        free(va->queue);
        free(va->threads);
        free(va->config.resolver);
        free(va);
        return NULL;
}
