/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include <openssl/asn1.h>

#include "shared/macro.h"
#include "shared/time-util.h"

/* Expected values computed independently with GNU date, e.g.
 *   date -u -d "2025-01-02T03:04:05+02:00" +%s   → 1735779845 */
static const struct {
        const char *s;
        cf_time_t t;
} valid_times[] = {
        { "2025-01-02T03:04:05Z", 1735787045 },
        { "2025-01-02t03:04:05z", 1735787045 },           /* RFC 3339 §5.6 NOTE: lower case */
        { "2025-01-02T03:04:05.123Z", 1735787045 },       /* fraction truncated */
        { "2025-01-02T03:04:05.999999999Z", 1735787045 },
        { "2025-01-02T03:04:05+02:00", 1735779845 },
        { "2025-01-02T03:04:05-05:30", 1735806845 },
        { "2025-01-02T03:04:05.5-05:30", 1735806845 },
        { "2025-01-02T03:04:05+00:00", 1735787045 },
        { "2025-01-02T03:04:05-00:00", 1735787045 },
        { "1985-04-12T23:20:50.52Z", 482196050 },          /* RFC 3339 §5.8 examples */
        { "1996-12-19T16:39:57-08:00", 851042397 },
        { "1990-12-31T23:59:60Z", 662688000 },             /* leap second: 23:59:59 (662687999) + 1 */
        { "2024-02-29T12:00:00Z", 1709208000 },
        { "2024-02-29T00:00:00+14:00", 1709114400 },
        { "2000-03-01T00:00:00Z", 951868800 },
        { "1970-01-01T00:00:00Z", 0 },
        { "1969-12-31T23:59:59Z", -1 },
        { "0001-01-01T00:00:00Z", -62135596800 },
        { "9999-12-31T23:59:59Z", 253402300799 },
};

static void test_time_parse_rfc3339_valid(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(valid_times); i++) {
                cf_time_t t = 42;

                assert_int_equal(time_parse_rfc3339(valid_times[i].s, &t), 0);
                if (t != valid_times[i].t)
                        fail_msg("%s: got %lld, expected %lld", valid_times[i].s,
                                 (long long) t, (long long) valid_times[i].t);
        }
}

static void test_time_parse_rfc3339_rejects_invalid(void **state) {
        static const char *const bad[] = {
                "",
                "2025-02-30T00:00:00Z",            /* Feb 30 */
                "2023-02-29T00:00:00Z",            /* not a leap year */
                "1900-02-29T00:00:00Z",            /* century, not a leap year */
                "2025-13-01T00:00:00Z",            /* month 13 */
                "2025-00-01T00:00:00Z",
                "2025-01-00T00:00:00Z",
                "2025-04-31T00:00:00Z",
                "2025-01-02T24:00:00Z",            /* hour 24 */
                "2025-01-02T23:60:00Z",
                "2025-01-02T23:59:61Z",
                "2025-01-02T03:04:05",             /* missing Z */
                "2025-01-02T03:04:05Z ",           /* trailing garbage */
                "2025-01-02T03:04:05Zx",
                "2025-01-02T03:04:05+02:00x",
                "2025-01-02 03:04:05Z",
                "2025-01-02T03:04Z",
                "25-01-02T03:04:05Z",
                "2025-1-02T03:04:05Z",
                "2025-01-02T03:04:05.Z",           /* empty fraction */
                "2025-01-02T03:04:05+0200",
                "2025-01-02T03:04:05+02",
                "2025-01-02T03:04:05+24:00",
                "2025-01-02T03:04:05+02:60",
                " 2025-01-02T03:04:05Z",
                "+2025-01-02T03:04:05Z",
                "2025-01-02T03:04:05UTC",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                cf_time_t t = 42;
                if (time_parse_rfc3339(bad[i], &t) != -EINVAL)
                        fail_msg("accepted '%s'", bad[i]);
                assert_int_equal(t, 42);
        }
}

static void test_time_format_rfc3339(void **state) {
        char buf[CF_RFC3339_MAX];

        assert_string_equal(time_format_rfc3339(1735787045, buf), "2025-01-02T03:04:05Z");
        assert_string_equal(time_format_rfc3339(0, buf), "1970-01-01T00:00:00Z");
        assert_string_equal(time_format_rfc3339(-1, buf), "1969-12-31T23:59:59Z");
        assert_string_equal(time_format_rfc3339(951868800, buf), "2000-03-01T00:00:00Z");
        assert_string_equal(time_format_rfc3339(253402300799, buf), "9999-12-31T23:59:59Z");
        assert_string_equal(time_format_rfc3339(-62135596800, buf), "0001-01-01T00:00:00Z");
        /* Extremes still fit the buffer (a twelve-digit year) and are NUL-terminated. */
        assert_true(strlen(time_format_rfc3339(INT64_MAX, buf)) < CF_RFC3339_MAX);
        assert_true(strlen(time_format_rfc3339(INT64_MIN + 1, buf)) < CF_RFC3339_MAX);
}

/* Formatting and parsing agree with gmtime_r() every 9999 seconds + a bit over 200 years. */
static void test_time_round_trip_against_gmtime(void **state) {
        for (int64_t t = -2208988800; t < 4102444800; t += 9999 * 97 + 13) {
                char buf[CF_RFC3339_MAX], expect[64];
                time_t tt = (time_t) t;
                struct tm tm;
                cf_time_t back;

                assert_non_null(gmtime_r(&tt, &tm));
                strftime(expect, sizeof expect, "%Y-%m-%dT%H:%M:%SZ", &tm);
                assert_string_equal(time_format_rfc3339(t, buf), expect);
                assert_int_equal(time_parse_rfc3339(buf, &back), 0);
                assert_int_equal(back, t);
        }
}

static void test_time_now_is_current(void **state) {
        cf_time_t a = (cf_time_t) time(NULL), n = time_now(), b = (cf_time_t) time(NULL);
        assert_true(n >= a && n <= b + 1);
}

static void test_duration_parse_valid(void **state) {
        static const struct {
                const char *s;
                int64_t seconds;
        } v[] = {
                { "90d", 90 * 86400 },
                { "47d", 47 * 86400 },
                { "12h", 12 * 3600 },
                { "30m", 30 * 60 },
                { "1d12h", 86400 + 12 * 3600 },
                { "2w", 14 * 86400 },
                { "45s", 45 },
                { "45", 45 },                  /* bare number: seconds */
                { "0", 0 },
                { "0s", 0 },
                { "1h30m15s", 5415 },
                { "1w2d3h4m5s", 7 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5 },
                { "9223372036854775807", INT64_MAX },
                { "9223372036854775807s", INT64_MAX },
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                int64_t s = -42;
                assert_int_equal(duration_parse(v[i].s, &s), 0);
                if (s != v[i].seconds)
                        fail_msg("%s: got %lld", v[i].s, (long long) s);
        }
}

static void test_duration_parse_rejects_invalid(void **state) {
        static const struct {
                const char *s;
                int error;
        } bad[] = {
                { "", -EINVAL },
                { "-1d", -EINVAL },
                { "5x", -EINVAL },
                { "d", -EINVAL },
                { "1d5", -EINVAL },            /* a bare number only as the whole value */
                { "1 d", -EINVAL },
                { " 1d", -EINVAL },
                { "1d ", -EINVAL },
                { "+1d", -EINVAL },
                { "1.5d", -EINVAL },
                { "1D", -EINVAL },
                { "9223372036854775808", -ERANGE },
                { "106751991167301d", -ERANGE },      /* × 86400 overflows */
                { "106751991167300d1d", -ERANGE },    /* the sum overflows */
                { "99999999999999999999999h", -ERANGE },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int64_t s = -42;
                if (duration_parse(bad[i].s, &s) != bad[i].error)
                        fail_msg("'%s' not refused with %d", bad[i].s, bad[i].error);
                assert_int_equal(s, -42);
        }
}

static void test_duration_format(void **state) {
        static const struct {
                int64_t seconds;
                const char *s;
        } v[] = {
                { 90 * 86400, "90d" },
                { 47 * 86400, "47d" },
                { 12 * 3600, "12h" },
                { 30 * 60, "30m" },
                { 86400 + 12 * 3600, "1d12h" },
                { 0, "0s" },
                { 59, "59s" },
                { 3601, "1h1s" },
                { 7 * 86400, "7d" },            /* same length as "1w": days */
                { 14 * 86400, "2w" },           /* shorter than "14d" */
                { 5415, "1h30m15s" },
                { -3600, "-1h" },
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                char buf[64];
                assert_string_equal(duration_format(v[i].seconds, buf), v[i].s);
        }
}

static void test_duration_format_parse_round_trip(void **state) {
        static const int64_t values[] = { 1, 60, 61, 3599, 86399, 86401, 604800, 7776000, 31536000,
                                          INT64_MAX, INT64_MAX - 1, 123456789 };
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                char buf[64];
                int64_t back;
                assert_int_equal(duration_parse(duration_format(values[i], buf), &back), 0);
                assert_int_equal(back, values[i]);
        }
}

static void check_asn1(const char *s, cf_time_t expect) {
        _cleanup_(ASN1_TIME_freep) ASN1_TIME *a = ASN1_TIME_new();
        cf_time_t t;

        assert_non_null(a);
        assert_int_equal(ASN1_TIME_set_string(a, s), 1);
        assert_int_equal(time_from_asn1(a, &t), 0);
        if (t != expect)
                fail_msg("%s: got %lld, expected %lld", s, (long long) t, (long long) expect);
}

static void test_time_from_asn1(void **state) {
        /* UTCTime and GeneralizedTime; values from date -u -d … +%s. */
        check_asn1("250102030405Z", 1735787045);
        check_asn1("20250102030405Z", 1735787045);
        check_asn1("491231235959Z", 2524607999);       /* UTCTime 49 → 2049 */
        check_asn1("500101000000Z", -631152000);        /* UTCTime 50 → 1950 */
        check_asn1("99991231235959Z", 253402300799);
}

static void test_time_from_asn1_rejects_garbage(void **state) {
        _cleanup_(ASN1_TIME_freep) ASN1_TIME *a = ASN1_TIME_new();
        cf_time_t t = 42;

        assert_non_null(a);
        /* Bypass ASN1_TIME_set_string()'s checks to get a malformed value. */
        assert_int_equal(ASN1_STRING_set(a, "2025XX02030405Z", -1), 1);
        a->type = V_ASN1_GENERALIZEDTIME;
        assert_int_equal(time_from_asn1(a, &t), -EINVAL);
        assert_int_equal(time_from_asn1(NULL, &t), -EINVAL);
        assert_int_equal(t, 42);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_time_parse_rfc3339_valid),
                cmocka_unit_test(test_time_parse_rfc3339_rejects_invalid),
                cmocka_unit_test(test_time_format_rfc3339),
                cmocka_unit_test(test_time_round_trip_against_gmtime),
                cmocka_unit_test(test_time_now_is_current),
                cmocka_unit_test(test_duration_parse_valid),
                cmocka_unit_test(test_duration_parse_rejects_invalid),
                cmocka_unit_test(test_duration_format),
                cmocka_unit_test(test_duration_format_parse_round_trip),
                cmocka_unit_test(test_time_from_asn1),
                cmocka_unit_test(test_time_from_asn1_rejects_garbage),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
