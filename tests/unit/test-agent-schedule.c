/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "agent/agent-job.h"
#include "agent/agent-schedule.h"
#include "shared/time-util.h"

#define DAY (24 * 60 * 60)
#define T0 ((cf_time_t) 1700000000)    /* 2023-11-14T22:13:20Z */

static void test_deadline_is_one_twentieth_before_expiry(void **state) {
        /* 90 days: 1/20 = 4.5 days. */
        assert_int_equal(schedule_deadline(T0, T0 + 90 * DAY), T0 + 90 * DAY - 90 * DAY / 20);
        assert_int_equal(schedule_deadline(T0, T0 + 100), T0 + 95);
        /* A broken certificate (notAfter before notBefore) is due at notAfter. */
        assert_int_equal(schedule_deadline(T0, T0 - 10), T0 - 10);
}

static void test_fallback_spans_two_thirds_plus_minus_one_thirtieth(void **state) {
        cf_time_t nb = T0, na = T0 + 90 * DAY, life = 90 * DAY;
        cf_time_t lo = nb + life * 2 / 3 - life / 30, hi = nb + life * 2 / 3 + life / 30;

        /* random 0 is the earliest point, 2·spread the latest, and it wraps after that. */
        assert_int_equal(schedule_fallback(nb, na, 0), lo);
        assert_int_equal(schedule_fallback(nb, na, (uint64_t) (2 * (life / 30))), hi);
        assert_int_equal(schedule_fallback(nb, na, (uint64_t) (2 * (life / 30) + 1)), lo);
        assert_int_equal(schedule_fallback(nb, na, (uint64_t) (life / 30)), nb + life * 2 / 3);
        for (uint64_t r = 1; r < 1000000000000ULL; r = r * 7 + 3) {
                cf_time_t t = schedule_fallback(nb, na, r);
                assert_true(t >= lo && t <= hi);
        }
}

static void test_fallback_never_passes_deadline(void **state) {
        /* 60 s of lifetime: 2/3 = 40, spread 2 → at most 42, deadline 57. A 1 s lifetime has
         * nothing left to spread and lands before the deadline too. */
        assert_true(schedule_fallback(T0, T0 + 60, UINT64_MAX) <= schedule_deadline(T0, T0 + 60));
        assert_true(schedule_fallback(T0, T0 + 1, UINT64_MAX) <= T0 + 1);
}

static void test_ari_pick_is_inside_window(void **state) {
        cf_time_t start = T0 + 10 * DAY, end = T0 + 12 * DAY;

        assert_int_equal(schedule_ari_pick(start, end, CF_TIME_INVALID, T0, 0), start);
        assert_int_equal(schedule_ari_pick(start, end, CF_TIME_INVALID, T0, (uint64_t) (end - start)), end);
        assert_int_equal(schedule_ari_pick(start, end, CF_TIME_INVALID, T0, (uint64_t) (end - start + 1)), start);
        assert_int_equal(schedule_ari_pick(start, end, CF_TIME_INVALID, T0, 12345), start + 12345);
}

static void test_ari_pick_keeps_previous_choice_inside_window(void **state) {
        cf_time_t start = T0 + 10 * DAY, end = T0 + 12 * DAY, prev = T0 + 11 * DAY;

        assert_int_equal(schedule_ari_pick(start, end, prev, T0, 999), prev);
        /* The window moved away from the choice: pick again. */
        assert_int_equal(schedule_ari_pick(start + 2 * DAY, end + 2 * DAY, prev, T0, 7), start + 2 * DAY + 7);
        assert_int_equal(schedule_ari_pick(start - 5 * DAY, start - 4 * DAY, end, T0, 3), start - 5 * DAY + 3);
}

static void test_ari_window_in_past_renews_now(void **state) {
        assert_int_equal(schedule_ari_pick(T0 - 2 * DAY, T0 - DAY, CF_TIME_INVALID, T0, 55), T0);
        assert_int_equal(schedule_ari_pick(T0 - 2 * DAY, T0, T0 - DAY - 5, T0, 55), T0);
}

static void test_ari_poll_clamped_to_hour_and_week(void **state) {
        assert_int_equal(schedule_ari_next_poll(10, T0), T0 + SCHEDULE_ARI_POLL_MIN);
        assert_int_equal(schedule_ari_next_poll(0, T0), T0 + 60 * 60);
        assert_int_equal(schedule_ari_next_poll(5 * 60 * 60, T0), T0 + 5 * 60 * 60);
        assert_int_equal(schedule_ari_next_poll(30 * DAY, T0), T0 + 7 * DAY);
        assert_int_equal(schedule_ari_next_poll(-1, T0), T0 + SCHEDULE_ARI_POLL_DEFAULT);
}

static void test_backoff_doubles_with_jitter_and_caps_at_six_hours(void **state) {
        assert_int_equal(schedule_backoff(0, 123), 0);
        /* n-th failure: delay 60·2^(n-1); jitter covers [delay/2, delay]. */
        assert_int_equal(schedule_backoff(1, 0), 30);
        assert_int_equal(schedule_backoff(1, 30), 60);
        assert_int_equal(schedule_backoff(2, 0), 60);
        assert_int_equal(schedule_backoff(3, 60), 180);
        assert_int_equal(schedule_backoff(3, 120), 240);
        assert_int_equal(schedule_backoff(9, 0), 60 * 256 / 2);
        /* 60·2^9 = 30720 > 21600: capped. */
        assert_int_equal(schedule_backoff(10, 0), 6 * 60 * 60 / 2);
        assert_int_equal(schedule_backoff(10, 6 * 60 * 60 / 2), 6 * 60 * 60);
        assert_int_equal(schedule_backoff(1000, UINT64_MAX - 5) <= 6 * 60 * 60, 1);
        for (unsigned n = 1; n < 40; n++)
                for (uint64_t r = 0; r < 100000; r += 997) {
                        int64_t d = schedule_backoff(n, r);
                        assert_true(d >= 30 && d <= SCHEDULE_BACKOFF_MAX);
                }
}

static void test_next_renewal_pulled_in_to_deadline(void **state) {
        cf_time_t nb = T0, na = T0 + 90 * DAY, deadline = schedule_deadline(nb, na);

        /* ARI says "later than the deadline" (a misbehaving server): the deadline wins. */
        assert_int_equal(schedule_next_renewal(na - DAY, nb, na), deadline);
        assert_int_equal(schedule_next_renewal(nb + 30 * DAY, nb, na), nb + 30 * DAY);
        assert_int_equal(schedule_next_renewal(CF_TIME_INVALID, nb, na), deadline);
}

static void test_renewal_due_at_deadline_whatever_ari_says(void **state) {
        cf_time_t nb = T0, na = T0 + 90 * DAY, deadline = schedule_deadline(nb, na);
        AgentSchedule s;

        agent_schedule_init(&s);
        /* No certificate yet: due at once. */
        assert_true(agent_job_renewal_due(&s, CF_TIME_INVALID, CF_TIME_INVALID, T0));

        /* ARI chose a time after the deadline (the stored next_renewal was not pulled in): the
         * deadline still makes it due. */
        s.ari = true;
        s.chosen = s.next_renewal = na - DAY;
        assert_false(agent_job_renewal_due(&s, nb, na, deadline - 1));
        assert_true(agent_job_renewal_due(&s, nb, na, deadline));

        /* Before the chosen time nothing is due; at it, it is. */
        s.chosen = s.next_renewal = nb + 60 * DAY;
        assert_false(agent_job_renewal_due(&s, nb, na, nb + 60 * DAY - 1));
        assert_true(agent_job_renewal_due(&s, nb, na, nb + 60 * DAY));

        /* A request (forced renewal, or one interrupted by a crash) is due at once … */
        s.renew_requested = true;
        assert_true(agent_job_renewal_due(&s, nb, na, nb + DAY));
        /* … unless a failure put it into backoff, which holds even past the deadline. */
        s.backoff_until = deadline + 600;
        assert_false(agent_job_renewal_due(&s, nb, na, deadline + 599));
        assert_true(agent_job_renewal_due(&s, nb, na, deadline + 600));
        agent_schedule_done(&s);
}

static void test_retry_after_seconds_and_http_date(void **state) {
        int64_t s = -1;

        assert_int_equal(schedule_parse_retry_after("120", T0, &s), 0);
        assert_int_equal(s, 120);
        assert_int_equal(schedule_parse_retry_after(" 5 ", T0, &s), 0);
        assert_int_equal(s, 5);
        /* 1700000000 + 3600 = Wed, 15 Nov 2023 00:13:20 GMT */
        assert_int_equal(schedule_parse_retry_after("Tue, 14 Nov 2023 23:13:20 GMT", T0, &s), 0);
        assert_int_equal(s, 3600);
        assert_int_equal(schedule_parse_retry_after("Tue, 14 Nov 2023 20:13:20 GMT", T0, &s), 0);
        assert_int_equal(s, 0);
        assert_int_equal(schedule_parse_retry_after("soon", T0, &s), -EINVAL);
        assert_int_equal(schedule_parse_retry_after("12abc", T0, &s), -EINVAL);
        assert_int_equal(schedule_parse_retry_after("-5", T0, &s), -EINVAL);
        assert_int_equal(schedule_parse_retry_after("", T0, &s), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_deadline_is_one_twentieth_before_expiry),
                cmocka_unit_test(test_fallback_spans_two_thirds_plus_minus_one_thirtieth),
                cmocka_unit_test(test_fallback_never_passes_deadline),
                cmocka_unit_test(test_ari_pick_is_inside_window),
                cmocka_unit_test(test_ari_pick_keeps_previous_choice_inside_window),
                cmocka_unit_test(test_ari_window_in_past_renews_now),
                cmocka_unit_test(test_ari_poll_clamped_to_hour_and_week),
                cmocka_unit_test(test_backoff_doubles_with_jitter_and_caps_at_six_hours),
                cmocka_unit_test(test_next_renewal_pulled_in_to_deadline),
                cmocka_unit_test(test_renewal_due_at_deadline_whatever_ari_says),
                cmocka_unit_test(test_retry_after_seconds_and_http_date),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
