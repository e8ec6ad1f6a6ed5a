/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "shared/macro.h"
#include "shared/strv.h"

static void test_strv_split_drops_empty_words(void **state) {
        _cleanup_(strv_freep) char **l = NULL;

        assert_int_equal(strv_split("  a b\t\tc  ", " \t", &l), 0);
        assert_int_equal(strv_length(l), 3);
        assert_string_equal(l[0], "a");
        assert_string_equal(l[1], "b");
        assert_string_equal(l[2], "c");
        assert_null(l[3]);
}

static void test_strv_split_of_blank_is_empty_vector(void **state) {
        _cleanup_(strv_freep) char **l = NULL;

        assert_int_equal(strv_split("   ", " ", &l), 0);
        assert_non_null(l);
        assert_int_equal(strv_length(l), 0);
}

static void test_strv_join_and_contains(void **state) {
        _cleanup_(strv_freep) char **l = NULL;
        _cleanup_free_ char *j = NULL, *e = NULL;

        assert_int_equal(strv_extend(&l, "x"), 0);
        assert_int_equal(strv_extend(&l, "y"), 0);
        assert_true(strv_contains(l, "y"));
        assert_false(strv_contains(l, "z"));
        j = strv_join(l, ", ");
        assert_string_equal(j, "x, y");
        e = strv_join(NULL, ",");
        assert_string_equal(e, "");
}

static void test_strv_equal_unordered_ignores_order_only(void **state) {
        char *a[] = { "b", "a", "c", NULL };
        char *b[] = { "a", "c", "b", NULL };
        char *c[] = { "a", "c", "c", NULL };
        char *d[] = { "a", "b", NULL };

        assert_true(strv_equal_unordered(a, b));
        assert_false(strv_equal_unordered(a, c));
        assert_false(strv_equal_unordered(a, d));
        assert_true(strv_equal_unordered(NULL, NULL));
        /* The inputs are not reordered. */
        assert_string_equal(a[0], "b");
}

static void test_strv_copy_is_deep(void **state) {
        char *a[] = { "one", "two", NULL };
        _cleanup_(strv_freep) char **c = strv_copy(a);

        assert_non_null(c);
        assert_ptr_not_equal(c[0], a[0]);
        assert_string_equal(c[1], "two");
        assert_null(c[2]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_strv_split_drops_empty_words),
                cmocka_unit_test(test_strv_split_of_blank_is_empty_vector),
                cmocka_unit_test(test_strv_join_and_contains),
                cmocka_unit_test(test_strv_equal_unordered_ignores_order_only),
                cmocka_unit_test(test_strv_copy_is_deep),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
