/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent-schedule.h"

cf_time_t schedule_deadline(cf_time_t not_before, cf_time_t not_after) {
        cf_time_t lifetime = not_after > not_before ? not_after - not_before : 0;
        return not_after - lifetime / 20;
}

cf_time_t schedule_fallback(cf_time_t not_before, cf_time_t not_after, uint64_t random) {
        cf_time_t lifetime = not_after > not_before ? not_after - not_before : 0;
        cf_time_t spread = lifetime / 30, t;

        t = not_before + lifetime / 3 * 2 + (lifetime % 3) * 2 / 3;
        t += (cf_time_t) (random % (uint64_t) (2 * spread + 1)) - spread;
        return MIN_TIME(t, schedule_deadline(not_before, not_after));
}

cf_time_t schedule_ari_pick(cf_time_t window_start, cf_time_t window_end, cf_time_t previous,
                            cf_time_t now, uint64_t random) {
        if (window_end <= now)
                return now;
        if (previous != CF_TIME_INVALID && previous >= window_start && previous <= window_end)
                return previous;
        if (window_end <= window_start)
                return window_start;
        return window_start + (cf_time_t) (random % (uint64_t) (window_end - window_start + 1));
}

cf_time_t schedule_ari_next_poll(int64_t retry_after, cf_time_t now) {
        if (retry_after < 0)
                retry_after = SCHEDULE_ARI_POLL_DEFAULT;
        if (retry_after < SCHEDULE_ARI_POLL_MIN)
                retry_after = SCHEDULE_ARI_POLL_MIN;
        if (retry_after > SCHEDULE_ARI_POLL_MAX)
                retry_after = SCHEDULE_ARI_POLL_MAX;
        return now + retry_after;
}

int64_t schedule_backoff(unsigned failures, uint64_t random) {
        int64_t delay = SCHEDULE_BACKOFF_BASE;

        if (failures == 0)
                return 0;
        for (unsigned i = 1; i < failures && delay < SCHEDULE_BACKOFF_MAX; i++)
                delay *= 2;
        if (delay > SCHEDULE_BACKOFF_MAX)
                delay = SCHEDULE_BACKOFF_MAX;
        return delay / 2 + (int64_t) (random % (uint64_t) (delay - delay / 2 + 1));
}

cf_time_t schedule_next_renewal(cf_time_t chosen, cf_time_t not_before, cf_time_t not_after) {
        cf_time_t deadline = schedule_deadline(not_before, not_after);
        if (chosen == CF_TIME_INVALID)
                return deadline;
        return MIN_TIME(chosen, deadline);
}

int schedule_parse_retry_after(const char *value, cf_time_t now, int64_t *ret) {
        struct tm tm = {};
        const char *end;
        char *e = NULL;

        if (!value)
                return -EINVAL;
        while (*value == ' ' || *value == '\t')
                value++;
        if (*value >= '0' && *value <= '9') {
                unsigned long long v;

                errno = 0;
                v = strtoull(value, &e, 10);
                if (errno || !e)
                        return -EINVAL;
                while (*e == ' ' || *e == '\t')
                        e++;
                if (*e)
                        return -EINVAL;
                if (v > INT32_MAX)
                        v = INT32_MAX;
                *ret = (int64_t) v;
                return 0;
        }

        /* IMF-fixdate (RFC 9110 §5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT". */
        end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        if (!end || *end)
                return -EINVAL;
        {
                cf_time_t t = (cf_time_t) timegm(&tm);
                *ret = t > now ? t - now : 0;
        }
        return 0;
}
