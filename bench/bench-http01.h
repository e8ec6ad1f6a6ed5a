/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The load driver's own http-01 responder: a few threads answering
 * GET /.well-known/acme-challenge/TOKEN from a concurrent token → key authorization map, so the
 * server under test validates against the driver and no third program sits in the measured path. */

#include <stdint.h>

#include "shared/macro.h"

typedef struct Http01Responder Http01Responder;

typedef struct Http01Stats {
        uint64_t served;        /* 200 with a key authorization */
        uint64_t not_found;     /* unknown token or path */
        uint64_t bad_request;   /* unparsable, oversized or timed-out requests */
} Http01Stats;

/* Listens on address:port (IPv4 or IPv6 literal), SO_REUSEADDR, with n_threads accept threads. */
int http01_responder_new(const char *address, uint16_t port, unsigned n_threads, Http01Responder **ret);
Http01Responder *http01_responder_free(Http01Responder *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Http01Responder *, http01_responder_free);

/* Both copy their arguments; put replaces an existing token. */
int http01_responder_put(Http01Responder *r, const char *token, const char *key_authorization);
void http01_responder_remove(Http01Responder *r, const char *token);

void http01_responder_get_stats(Http01Responder *r, Http01Stats *ret);
