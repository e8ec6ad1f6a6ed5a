/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The ACME validation authority: a pool of threads that validate challenges off the event loops,
 * with timeouts, configurable resolver and ports for private networks and tests. */

#include <stdint.h>

#include "shared/errors.h"

typedef enum ChallengeType {
        CHALLENGE_HTTP_01,
        CHALLENGE_DNS_01,
        CHALLENGE_TLS_ALPN_01,
        _CHALLENGE_TYPE_MAX,
        _CHALLENGE_TYPE_INVALID = -22,
} ChallengeType;

const char *challenge_type_to_string(ChallengeType t);   /* "http-01" "dns-01" "tls-alpn-01" */
ChallengeType challenge_type_from_string(const char *s);

typedef struct VaConfig {
        char *resolver;              /* "127.0.0.1:8053"; NULL: system resolver */
        unsigned http_port;          /* default 80 */
        unsigned tls_port;           /* default 443 */
        unsigned workers;            /* threads, default 4 */
        int64_t timeout;             /* seconds per validation, default 10 */
        unsigned queue_size;         /* pending validations before va_submit() says -EAGAIN;
                                        0: 1024 */
        uint64_t response_wait_usec; /* how long the challenge POST that starts a validation
                                        waits for its result before answering "processing"
                                        (not used by va/ itself; the ACME front end holds the
                                        reply), 0: answer at once */
} VaConfig;

typedef struct VaRequest {
        ChallengeType type;
        char *identifier_type;       /* "dns" "ip" */
        char *identifier;            /* without "*." for wildcards */
        char *token;
        char *key_authorization;     /* token "." thumbprint */
        int64_t challenge_id;        /* opaque to va, passed back */
} VaRequest;

typedef struct VaResult {
        int64_t challenge_id;
        int error;                   /* 0 or -CF_E_CONNECTION/-CF_E_DNS/-CF_E_INCORRECT_RESPONSE/
                                        -CF_E_UNAUTHORIZED/-CF_E_TLS */
        char *detail;                /* human-readable, NULL on success */
} VaResult;

/* Called on a va thread when a validation ends; must be thread-safe (e.g. opens its own store). */
typedef void (*VaDoneCallback)(const VaResult *result, void *userdata);

typedef struct Va Va;

int va_new(const VaConfig *config, VaDoneCallback done, void *userdata, Va **ret);
/* Queues a copy of req. -EAGAIN if the queue is full (bounded). */
int va_submit(Va *va, const VaRequest *req);
/* Stops the threads after finishing queued work (bounded by the timeout). */
Va *va_free(Va *va);

/* Synchronous single validation (used by the pool and by unit tests). */
int va_validate(const VaConfig *config, const VaRequest *req, char **ret_detail);
