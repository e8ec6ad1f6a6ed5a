/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 9773 window maths of the ACME server (acme_ari_window). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server/acme/acme-internal.h"

#define DAY 86400

static void test_ari_window_47_days_centred_on_last_third(void **state) {
        cf_time_t nb = 1700000000, na = nb + 47 * DAY, now = nb + DAY;
        AcmeAriWindow w;

        assert_int_equal(acme_ari_window(nb, na, false, false, now, &w), 0);
        /* The last third starts at 2/3 of the validity: 31 days 8 hours after notBefore. */
        assert_int_equal((w.start + w.end) / 2, nb + 31 * DAY + 8 * 3600);
        assert_true(w.end > w.start);
        assert_int_equal(w.end - w.start, 2 * DAY);
        assert_true(w.start > nb + 47 * DAY / 2);     /* after the middle */
        assert_true(w.end < na);
        /* Far from the window: poll every 6 hours. */
        assert_int_equal(w.retry_after, 6 * 3600);
}

static void test_ari_window_90_days(void **state) {
        cf_time_t nb = 1700000000, na = nb + 90 * DAY;
        AcmeAriWindow w;

        assert_int_equal(acme_ari_window(nb, na, false, false, nb, &w), 0);
        assert_int_equal(w.start, nb + 59 * DAY);
        assert_int_equal(w.end, nb + 61 * DAY);
}

static void test_ari_window_7_days_last_half(void **state) {
        cf_time_t nb = 1700000000, na = nb + 7 * DAY;
        AcmeAriWindow w;

        assert_int_equal(acme_ari_window(nb, na, false, false, nb, &w), 0);
        assert_int_equal((w.start + w.end) / 2, nb + 7 * DAY / 2);
        /* A tenth of the validity wide, not 2 days. */
        assert_int_equal(w.end - w.start, 2 * (7 * DAY / 20));
        assert_true(w.start > nb + 3 * DAY && w.end < nb + 4 * DAY);
}

static void test_ari_window_revoked_is_in_the_past(void **state) {
        cf_time_t nb = 1700000000, na = nb + 47 * DAY, now = nb + 2 * DAY;
        AcmeAriWindow w;

        assert_int_equal(acme_ari_window(nb, na, true, false, now, &w), 0);
        assert_true(w.start < w.end);
        assert_true(w.end < now);
        assert_true(w.retry_after > 0);
}

static void test_ari_window_renew_now_is_in_the_past(void **state) {
        cf_time_t nb = 1700000000, na = nb + 47 * DAY, now = nb + 2 * DAY;
        AcmeAriWindow w, normal;

        assert_int_equal(acme_ari_window(nb, na, false, true, now, &w), 0);
        assert_true(w.start < w.end);
        assert_true(w.end < now);
        assert_int_equal(acme_ari_window(nb, na, false, false, now, &normal), 0);
        assert_true(normal.start > now);
}

static void test_ari_window_retry_after_shrinks_near_window(void **state) {
        cf_time_t nb = 1700000000, na = nb + 47 * DAY;
        AcmeAriWindow w;

        /* Two hours before the window opens: come back when it opens. */
        assert_int_equal(acme_ari_window(nb, na, false, false, 0, &w), 0);
        assert_int_equal(acme_ari_window(nb, na, false, false, w.start - 2 * 3600, &w), 0);
        assert_int_equal(w.retry_after, 2 * 3600);
        /* Ten minutes before: not more often than hourly. */
        assert_int_equal(acme_ari_window(nb, na, false, false, w.start - 600, &w), 0);
        assert_int_equal(w.retry_after, 3600);
        /* Inside the window. */
        assert_int_equal(acme_ari_window(nb, na, false, false, w.start + 60, &w), 0);
        assert_int_equal(w.retry_after, 6 * 3600);
}

static void test_ari_window_rejects_inverted_validity(void **state) {
        AcmeAriWindow w;

        assert_int_equal(acme_ari_window(1000, 1000, false, false, 0, &w), -EINVAL);
        assert_int_equal(acme_ari_window(2000, 1000, false, false, 0, &w), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ari_window_47_days_centred_on_last_third),
                cmocka_unit_test(test_ari_window_90_days),
                cmocka_unit_test(test_ari_window_7_days_last_half),
                cmocka_unit_test(test_ari_window_revoked_is_in_the_past),
                cmocka_unit_test(test_ari_window_renew_now_is_in_the_past),
                cmocka_unit_test(test_ari_window_retry_after_shrinks_near_window),
                cmocka_unit_test(test_ari_window_rejects_inverted_validity),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
