/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Times are int64_t seconds since the epoch, UTC (cf_time_t). */

#include <stdint.h>

typedef int64_t cf_time_t;

#define CF_RFC3339_MAX 32         /* "2025-01-02T03:04:05Z" plus room */
#define CF_TIME_INVALID INT64_MIN

cf_time_t time_now(void);

/* RFC 3339 date-time: "2025-01-02T03:04:05Z", "…05.123Z" (fraction truncated), "…05+02:00",
 * lower-case t/z accepted (RFC 3339 §5.6 NOTE). Rejects anything else (-EINVAL), including
 * out-of-range fields (month 13, Feb 30, hour 24) and trailing characters. Leap second 60 is
 * accepted and folded into the next second. */
int time_parse_rfc3339(const char *s, cf_time_t *ret);

/* Always "YYYY-MM-DDTHH:MM:SSZ". buf must hold CF_RFC3339_MAX bytes. Returns buf. */
char *time_format_rfc3339(cf_time_t t, char buf[static CF_RFC3339_MAX]);

/* Durations: a sequence of <number><unit>, units s m h d w ("90d", "47d", "12h", "30m",
 * "1d12h"); a bare number is seconds. Rejects empty input, unknown units, negative values and
 * overflow (-EINVAL / -ERANGE). */
int duration_parse(const char *s, int64_t *ret_seconds);

/* Shortest exact form, largest unit first ("90d", "1d12h", "0s"). buf needs 64 bytes. */
char *duration_format(int64_t seconds, char buf[static 64]);

/* ASN1_TIME (struct asn1_string_st) → cf_time_t. */
struct asn1_string_st;
int time_from_asn1(const struct asn1_string_st *t, cf_time_t *ret);
