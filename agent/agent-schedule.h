/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Renewal timing, pure functions (no clock, no RNG: the caller passes now and random values, so
 * the unit tests can pin every branch).
 *
 * Policy: ARI first (RFC 9773): a uniformly random time inside the server's suggestedWindow,
 * kept while the window still contains it; renew at once when the window is in the past.
 * Without ARI: at 2/3 of the lifetime, with a jitter of ±1/30 of the lifetime. Whatever ARI says,
 * never later than the deadline: notAfter - lifetime/20. Failures back off exponentially with
 * jitter, capped at 6 h. */

#include <stdbool.h>
#include <stdint.h>

#include "shared/time-util.h"

#define MIN_TIME(a, b) ((a) < (b) ? (a) : (b))

#define SCHEDULE_ARI_POLL_MIN (60 * 60)             /* Retry-After is clamped to 1 h … */
#define SCHEDULE_ARI_POLL_MAX (7 * 24 * 60 * 60)    /* … 7 d */
#define SCHEDULE_ARI_POLL_DEFAULT (6 * 60 * 60)     /* without Retry-After */
#define SCHEDULE_BACKOFF_BASE 60
#define SCHEDULE_BACKOFF_MAX (6 * 60 * 60)

/* not_after - lifetime/20. */
cf_time_t schedule_deadline(cf_time_t not_before, cf_time_t not_after);

/* not_before + 2/3 lifetime + jitter, where jitter = random mod (2·lifetime/30 + 1) - lifetime/30;
 * never past the deadline. */
cf_time_t schedule_fallback(cf_time_t not_before, cf_time_t not_after, uint64_t random);

/* Chooses the renewal time for an ARI window:
 *  - window entirely in the past (end <= now): now;
 *  - previous (CF_TIME_INVALID if none) inside [start, end]: previous (the choice is kept so the
 *    time does not move on every poll);
 *  - otherwise start + random mod (end - start + 1).
 * Returns the choice; the caller still applies schedule_next_renewal(). */
cf_time_t schedule_ari_pick(cf_time_t window_start, cf_time_t window_end, cf_time_t previous,
                            cf_time_t now, uint64_t random);

/* When to fetch renewalInfo again: now + Retry-After clamped to [1 h, 7 d];
 * retry_after < 0 means the header was absent (SCHEDULE_ARI_POLL_DEFAULT). */
cf_time_t schedule_ari_next_poll(int64_t retry_after, cf_time_t now);

/* Delay after the n-th consecutive failure (n >= 1): min(BASE·2^(n-1), MAX), then a uniformly
 * random point in [delay/2, delay] so a fleet does not retry in lockstep. */
int64_t schedule_backoff(unsigned failures, uint64_t random);

/* The effective next renewal: chosen (ARI or fallback), pulled in to the deadline. */
cf_time_t schedule_next_renewal(cf_time_t chosen, cf_time_t not_before, cf_time_t not_after);

/* Parses an HTTP Retry-After value (delta-seconds or an IMF-fixdate) into seconds from now;
 * -EINVAL if neither. A date in the past gives 0. */
int schedule_parse_retry_after(const char *value, cf_time_t now, int64_t *ret);
