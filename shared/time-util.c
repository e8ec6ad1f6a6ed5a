/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>

#include "shared/macro.h"
#include "shared/time-util.h"

cf_time_t time_now(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return (cf_time_t) time(NULL);
        return (cf_time_t) ts.tv_sec;
}

/* Proleptic Gregorian calendar on int64 days (H. Hinnant's days_from_civil / civil_from_days),
 * so that neither the C library's time_t nor struct tm's int year limits our range. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        int64_t era;
        unsigned yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = (unsigned) (y - era * 400);
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d) {
        int64_t era, y;
        unsigned doe, yoe, doy, mp, d, m;

        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = (unsigned) (z - era * 146097);
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        y = (int64_t) yoe + era * 400;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        d = doy - (153 * mp + 2) / 5 + 1;
        m = mp < 10 ? mp + 3 : mp - 9;
        *ret_y = y + (m <= 2);
        *ret_m = m;
        *ret_d = d;
}

static bool is_leap(int64_t y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m) {
        static const unsigned days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Exactly n decimal digits. */
static bool parse_digits(const char **p, unsigned n, unsigned *ret) {
        unsigned v = 0;

        for (unsigned i = 0; i < n; i++) {
                char c = (*p)[i];
                if (c < '0' || c > '9')
                        return false;
                v = v * 10 + (unsigned) (c - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

static bool expect(const char **p, char c) {
        if (**p != c)
                return false;
        (*p)++;
        return true;
}

int time_parse_rfc3339(const char *s, cf_time_t *ret) {
        unsigned year, month, day, hour, minute, second, oh = 0, om = 0;
        int sign = 0;
        const char *p = s;
        int64_t t;

        if (!s)
                return -EINVAL;

        if (!parse_digits(&p, 4, &year) || !expect(&p, '-') ||
            !parse_digits(&p, 2, &month) || !expect(&p, '-') ||
            !parse_digits(&p, 2, &day))
                return -EINVAL;
        if (*p != 'T' && *p != 't')
                return -EINVAL;
        p++;
        if (!parse_digits(&p, 2, &hour) || !expect(&p, ':') ||
            !parse_digits(&p, 2, &minute) || !expect(&p, ':') ||
            !parse_digits(&p, 2, &second))
                return -EINVAL;

        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                while (*p >= '0' && *p <= '9')
                        p++;
        }

        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                sign = *p == '+' ? 1 : -1;
                p++;
                if (!parse_digits(&p, 2, &oh) || !expect(&p, ':') || !parse_digits(&p, 2, &om))
                        return -EINVAL;
                if (oh > 23 || om > 59)
                        return -EINVAL;
        } else
                return -EINVAL;

        if (*p != 0)
                return -EINVAL;

        if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
            hour > 23 || minute > 59 || second > 60)
                return -EINVAL;

        t = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
        /* "+02:00" means local time is ahead of UTC. */
        t -= sign * (int64_t) (oh * 3600 + om * 60);

        *ret = t;
        return 0;
}

char *time_format_rfc3339(cf_time_t t, char buf[static CF_RFC3339_MAX]) {
        int64_t days = t / 86400, secs = t % 86400, y;
        char tmp[96] = {};
        unsigned m, d;

        if (secs < 0) {
                secs += 86400;
                days--;
        }
        civil_from_days(days, &y, &m, &d);
        /* Even INT64_MIN/MAX (years of 12 digits) fit CF_RFC3339_MAX; the compiler can't see that
         * the fields are bounded, hence the bigger scratch buffer. */
        snprintf(tmp, sizeof tmp, "%04lld-%02u-%02uT%02u:%02u:%02uZ",
                 (long long) y, m, d,
                 (unsigned) (secs / 3600), (unsigned) (secs / 60 % 60), (unsigned) (secs % 60));
        memcpy(buf, tmp, CF_RFC3339_MAX - 1);
        buf[CF_RFC3339_MAX - 1] = 0;
        return buf;
}

static const struct {
        char unit;
        int64_t seconds;
} duration_units[] = {
        { 'w', 7 * 86400 },
        { 'd', 86400 },
        { 'h', 3600 },
        { 'm', 60 },
        { 's', 1 },
};

int duration_parse(const char *s, int64_t *ret_seconds) {
        const char *p = s;
        int64_t total = 0;

        if (!s || !*s)
                return -EINVAL;

        while (*p) {
                const char *start = p;
                int64_t n = 0, mult = 0;

                if (*p < '0' || *p > '9')
                        return -EINVAL;
                while (*p >= '0' && *p <= '9') {
                        int digit = *p - '0';
                        if (n > (INT64_MAX - digit) / 10)
                                return -ERANGE;
                        n = n * 10 + digit;
                        p++;
                }

                if (*p == 0) {
                        /* A bare number is seconds, but only as the whole value: "1d5" is more
                         * likely a typo than 1 day and 5 seconds. */
                        if (start != s)
                                return -EINVAL;
                        mult = 1;
                } else {
                        for (size_t i = 0; i < ELEMENTSOF(duration_units); i++)
                                if (*p == duration_units[i].unit)
                                        mult = duration_units[i].seconds;
                        if (mult == 0)
                                return -EINVAL;
                        p++;
                }

                if (n > INT64_MAX / mult || total > INT64_MAX - n * mult)
                        return -ERANGE;
                total += n * mult;
        }

        *ret_seconds = total;
        return 0;
}

/* Greedy split into units from first_unit on; returns the length written. */
static size_t duration_format_from(uint64_t v, size_t first_unit, char *buf, size_t size) {
        size_t n = 0;

        if (v == 0)
                return (size_t) snprintf(buf, size, "0s");
        for (size_t i = first_unit; i < ELEMENTSOF(duration_units); i++) {
                uint64_t u = (uint64_t) duration_units[i].seconds;
                if (v >= u) {
                        n += (size_t) snprintf(buf + n, size - n, "%llu%c",
                                               (unsigned long long) (v / u), duration_units[i].unit);
                        v %= u;
                }
        }
        return n;
}

char *duration_format(int64_t seconds, char buf[static 64]) {
        char with_weeks[64], without_weeks[64];
        uint64_t v;
        size_t a, b, off = 0;

        if (seconds < 0) {
                buf[off++] = '-';
                v = (uint64_t) 0 - (uint64_t) seconds;
        } else
                v = (uint64_t) seconds;

        /* Certificate lifetimes are thought of in days ("90d", not "12w6d"): weeks only when
         * strictly shorter ("2w" for 14 days). */
        a = duration_format_from(v, 0, with_weeks, sizeof with_weeks);
        b = duration_format_from(v, 1, without_weeks, sizeof without_weeks);
        memcpy(buf + off, a < b ? with_weeks : without_weeks, (a < b ? a : b) + 1);
        return buf;
}

int time_from_asn1(const struct asn1_string_st *t, cf_time_t *ret) {
        struct tm tm = {};
        int64_t days;

        if (!t)
                return -EINVAL;
        if (ASN1_TIME_to_tm(t, &tm) != 1)
                return -EINVAL;

        /* Our own calendar rather than timegm(): no dependence on time_t width or TZ. */
        days = days_from_civil((int64_t) tm.tm_year + 1900, (unsigned) tm.tm_mon + 1, (unsigned) tm.tm_mday);
        *ret = days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
        return 0;
}
