/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A small libcurl wrapper for the protocol clients: bounded response bodies, timeouts, no
 * redirects, and the headers ACME needs. One AgentHttp per job (curl handles are not shared
 * between threads). */

#include <stddef.h>

#include "shared/macro.h"

#define AGENT_HTTP_BODY_MAX (1024u * 1024u)   /* a larger response: -E2BIG */
#define AGENT_HTTP_HEADER_MAX 4096            /* a longer header value is ignored */
#define AGENT_HTTP_HEADERS_MAX 100            /* more header lines in one response: -EMSGSIZE */
#define AGENT_HTTP_TIMEOUT_SEC 60
#define AGENT_HTTP_CONNECT_TIMEOUT_SEC 15

typedef struct AgentHttp AgentHttp;

typedef struct AgentHttpResponse {
        long status;
        char *body;                   /* NUL-terminated, body_size bytes */
        size_t body_size;
        char *content_type;           /* NULL if absent; parameters stripped, lower-case */
        char *location;
        char *replay_nonce;
        char *retry_after;
        char *link_up;                /* Link: <…>;rel="up" (certificate chain alternates) */
} AgentHttpResponse;

void agent_http_response_done(AgentHttpResponse *r);

/* ca_bundle: a PEM file trusted instead of the system store, or NULL. */
int agent_http_new(const char *ca_bundle, AgentHttp **ret);
AgentHttp *agent_http_free(AgentHttp *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentHttp *, agent_http_free);

/* Transport failures: -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, -EPROTO (TLS), -E2BIG, -EIO; the
 * curl message is kept for agent_http_last_error(). HTTP error statuses are not failures here. */
int agent_http_get(AgentHttp *h, const char *url, AgentHttpResponse *ret);
int agent_http_head(AgentHttp *h, const char *url, AgentHttpResponse *ret);
/* POST with Content-Type: application/jose+json; accept: an Accept header value or NULL. */
int agent_http_post_jose(AgentHttp *h, const char *url, const char *body, const char *accept,
                         AgentHttpResponse *ret);
const char *agent_http_last_error(AgentHttp *h);
