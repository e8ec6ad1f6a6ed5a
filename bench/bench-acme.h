/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* One ACME client of the load driver: one libcurl handle (keep-alive, one TLS handshake), one
 * P-256 account key, nonces taken from the previous response, the full RFC 8555 flow per order. */

#include <stdbool.h>
#include <stdint.h>

#include "bench/bench-http01.h"
#include "shared/macro.h"

typedef struct BenchDirectory {
        char *new_nonce;
        char *new_account;
        char *new_order;
} BenchDirectory;

typedef struct BenchClientOptions {
        const BenchDirectory *directory;
        const char *ca_file;                /* NULL: system trust store */
        Http01Responder *responder;
        unsigned poll_min_ms;               /* first poll delay, then ×1.5 per poll */
        unsigned poll_max_ms;
        unsigned poll_timeout_ms;           /* one authorization or order poll sequence */
        bool new_key_per_order;             /* else one certificate key per client, reused */
        bool trace;                         /* print every request with its duration */
} BenchClientOptions;

/* Why an order failed: a short class for counting ("badNonce", "http-500", "curl-7",
 * "authz-invalid", "poll-timeout", …) and a detail for the first occurrences. */
typedef struct BenchError {
        char type[64];
        char detail[512];
} BenchError;

typedef struct BenchClientStats {
        uint64_t requests;          /* HTTP requests sent, nonce fetches and retries included */
        uint64_t connects;          /* new TCP+TLS connections (keep-alive: one per client) */
        uint64_t nonce_fetches;     /* HEAD newNonce (ideally one per client) */
        uint64_t bad_nonce_retries;
        uint64_t polls;             /* POST-as-GET of an authorization or order while pending */
} BenchClientStats;

typedef struct BenchClient BenchClient;

int bench_directory_fetch(const char *url, const char *ca_file, BenchDirectory *ret, BenchError *err);
void bench_directory_done(BenchDirectory *d);

int bench_client_new(const BenchClientOptions *o, BenchClient **ret);
BenchClient *bench_client_free(BenchClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(BenchClient *, bench_client_free);

/* newAccount with the client's key (first call only does work). */
int bench_client_register(BenchClient *c, BenchError *err);
/* newOrder for one dns identifier, http-01, finalize, certificate download. */
int bench_client_issue(BenchClient *c, const char *dns_name, BenchError *err);

const BenchClientStats *bench_client_get_stats(BenchClient *c);
