/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shared/json-util.h"
#include "shared/macro.h"
#include "shared/strv.h"

static int parse(const char *s, json_object **ret) {
        return json_parse_strict(s, strlen(s), 1024, ret);
}

static void test_json_parse_strict_accepts_object_with_trailing_whitespace(void **state) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        const char *s;

        assert_int_equal(parse("{\"a\": \"b\"}\n ", &o), 0);
        assert_int_equal(json_get_string(o, "a", &s), 0);
        assert_string_equal(s, "b");
}

static void test_json_parse_strict_accepts_quotes_inside_strings(void **state) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        const char *s;

        assert_int_equal(parse("{\"a\": \"it's \\\"x\\\"\"}", &o), 0);
        assert_int_equal(json_get_string(o, "a", &s), 0);
        assert_string_equal(s, "it's \"x\"");
}

/* Found by fuzz-json: a value ending the buffer must parse like the same value plus a newline. */
static void test_json_parse_strict_accepts_scalar_at_end_of_buffer(void **state) {
        static const char *const values[] = { "true", "false", "12", "-1.5e3", "\"s\"", "[]" };

        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                _cleanup_(json_object_putp) json_object *a = NULL, *b = NULL;
                char with_newline[32];

                snprintf(with_newline, sizeof with_newline, "%s\n", values[i]);
                assert_int_equal(parse(values[i], &a), 0);
                assert_int_equal(parse(with_newline, &b), 0);
                assert_true(json_object_equal(a, b));
        }
        json_object *o = NULL;
        /* json-c has no object for null: refused either way, consistently. */
        assert_int_equal(parse("null", &o), -EBADMSG);
        assert_int_equal(parse("null\n", &o), -EBADMSG);
        assert_int_equal(parse("tru", &o), -EBADMSG);
        assert_int_equal(parse("12 13", &o), -EBADMSG);
}

static void test_json_parse_strict_rejects_non_json(void **state) {
        static const char *const bad[] = {
                "",
                "{\"a\": 1} x",          /* trailing garbage */
                "{\"a\": 1}{}",          /* two values */
                "{'a': 1}",              /* single quotes */
                "{\"a\": 1,}",           /* trailing comma */
                "/* c */ {}",            /* comment */
                "{\"a\": \"\xff\"}",     /* invalid UTF-8 */
                "{\"a\":",               /* truncated */
                "NaN",                   /* not in RFC 8259 (found by fuzz-json) */
                "[1, Infinity]",
                "{\"x\": -Infinity}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                json_object *o = NULL;
                assert_int_equal(parse(bad[i], &o), -EBADMSG);
                assert_null(o);
        }
}

static void test_json_parse_strict_rejects_embedded_nul_and_size(void **state) {
        json_object *o = NULL;

        assert_int_equal(json_parse_strict("{}\0{}", 5, 1024, &o), -EBADMSG);
        assert_int_equal(json_parse_strict("{}   ", 5, 4, &o), -E2BIG);
        assert_null(o);
}

static void test_json_parse_strict_limits_depth(void **state) {
        char deep[2 * (JSON_DEPTH_MAX + 2) + 1];
        json_object *o = NULL;
        size_t n = JSON_DEPTH_MAX + 2;

        memset(deep, '[', n);
        memset(deep + n, ']', n);
        deep[2 * n] = 0;
        assert_int_equal(parse(deep, &o), -EBADMSG);
        /* Just under the limit parses. */
        n = JSON_DEPTH_MAX - 1;
        memset(deep, '[', n);
        memset(deep + n, ']', n);
        deep[2 * n] = 0;
        assert_int_equal(parse(deep, &o), 0);
        json_object_put(o);
}

static void test_json_getters_distinguish_missing_and_wrong_type(void **state) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_(strv_freep) char **l = NULL;
        const char *s;
        int64_t i;
        bool b;

        assert_int_equal(parse("{\"s\":\"x\",\"i\":42,\"b\":true,\"l\":[\"p\",\"q\"],\"bad\":[1]}", &o), 0);
        assert_int_equal(json_get_string(o, "missing", &s), -ENOENT);
        assert_int_equal(json_get_string(o, "i", &s), -EBADMSG);
        assert_int_equal(json_get_int64(o, "i", &i), 0);
        assert_int_equal(i, 42);
        assert_int_equal(json_get_bool(o, "b", &b), 0);
        assert_true(b);
        assert_int_equal(json_get_strv(o, "l", &l), 0);
        assert_int_equal(strv_length(l), 2);
        assert_string_equal(l[1], "q");
        assert_int_equal(json_get_strv(o, "bad", &l), -EBADMSG);
}

static void test_json_to_string_compact_does_not_escape_slash(void **state) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        json_object_object_add(o, "url", json_object_new_string("https://x/y"));
        assert_string_equal(json_to_string_compact(o), "{\"url\":\"https://x/y\"}");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_json_parse_strict_accepts_object_with_trailing_whitespace),
                cmocka_unit_test(test_json_parse_strict_accepts_quotes_inside_strings),
                cmocka_unit_test(test_json_parse_strict_accepts_scalar_at_end_of_buffer),
                cmocka_unit_test(test_json_parse_strict_rejects_non_json),
                cmocka_unit_test(test_json_parse_strict_rejects_embedded_nul_and_size),
                cmocka_unit_test(test_json_parse_strict_limits_depth),
                cmocka_unit_test(test_json_getters_distinguish_missing_and_wrong_type),
                cmocka_unit_test(test_json_to_string_compact_does_not_escape_slash),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
