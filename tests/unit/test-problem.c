/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "shared/json-util.h"
#include "shared/macro.h"
#include "shared/problem.h"

#define URN "urn:ietf:params:acme:error:"

/* RFC 8555 §6.7 (+ RFC 9773 §7.4 alreadyReplaced). type NULL: no ACME type, "malformed" expected,
 * and after a round trip the error that the status gives back (parsed). */
static const struct {
        CfError error;
        const char *type;
        int status;
        CfError parsed;
} expected[] = {
        { CF_E_MALFORMED, "malformed", 400, CF_E_MALFORMED },
        { CF_E_BAD_NONCE, "badNonce", 400, CF_E_BAD_NONCE },
        { CF_E_BAD_SIGNATURE_ALGORITHM, "badSignatureAlgorithm", 400, CF_E_BAD_SIGNATURE_ALGORITHM },
        { CF_E_BAD_SIGNATURE, NULL, 400, CF_E_MALFORMED },
        { CF_E_BAD_PUBLIC_KEY, "badPublicKey", 400, CF_E_BAD_PUBLIC_KEY },
        { CF_E_BAD_CSR, "badCSR", 400, CF_E_BAD_CSR },
        { CF_E_BAD_REVOCATION_REASON, "badRevocationReason", 400, CF_E_BAD_REVOCATION_REASON },
        { CF_E_ALREADY_REVOKED, "alreadyRevoked", 400, CF_E_ALREADY_REVOKED },
        { CF_E_ALREADY_REPLACED, "alreadyReplaced", 409, CF_E_ALREADY_REPLACED },
        { CF_E_REJECTED_IDENTIFIER, "rejectedIdentifier", 400, CF_E_REJECTED_IDENTIFIER },
        { CF_E_UNSUPPORTED_IDENTIFIER, "unsupportedIdentifier", 400, CF_E_UNSUPPORTED_IDENTIFIER },
        { CF_E_INVALID_CONTACT, "invalidContact", 400, CF_E_INVALID_CONTACT },
        { CF_E_UNSUPPORTED_CONTACT, "unsupportedContact", 400, CF_E_UNSUPPORTED_CONTACT },
        { CF_E_EXTERNAL_ACCOUNT_REQUIRED, "externalAccountRequired", 400, CF_E_EXTERNAL_ACCOUNT_REQUIRED },
        { CF_E_ACCOUNT_DOES_NOT_EXIST, "accountDoesNotExist", 400, CF_E_ACCOUNT_DOES_NOT_EXIST },
        { CF_E_UNAUTHORIZED, "unauthorized", 403, CF_E_UNAUTHORIZED },
        { CF_E_ORDER_NOT_READY, "orderNotReady", 403, CF_E_ORDER_NOT_READY },
        { CF_E_USER_ACTION_REQUIRED, "userActionRequired", 403, CF_E_USER_ACTION_REQUIRED },
        { CF_E_RATE_LIMITED, "rateLimited", 429, CF_E_RATE_LIMITED },
        { CF_E_CAA, "caa", 403, CF_E_CAA },
        { CF_E_CONNECTION, "connection", 400, CF_E_CONNECTION },
        { CF_E_DNS, "dns", 400, CF_E_DNS },
        { CF_E_INCORRECT_RESPONSE, "incorrectResponse", 403, CF_E_INCORRECT_RESPONSE },
        { CF_E_TLS, "tls", 400, CF_E_TLS },
        { CF_E_NOT_FOUND, NULL, 404, CF_E_NOT_FOUND },
        { CF_E_DISABLED, NULL, 403, CF_E_MALFORMED },
        { CF_E_CONFLICT, NULL, 409, CF_E_CONFLICT },
        { CF_E_TOO_LARGE, NULL, 413, CF_E_TOO_LARGE },
        { CF_E_UNSUPPORTED_MEDIA_TYPE, NULL, 415, CF_E_UNSUPPORTED_MEDIA_TYPE },
        { CF_E_METHOD_NOT_ALLOWED, NULL, 405, CF_E_METHOD_NOT_ALLOWED },
        { CF_E_APPROVAL_PENDING, NULL, 403, CF_E_MALFORMED },
        { CF_E_SERVER_INTERNAL, "serverInternal", 500, CF_E_SERVER_INTERNAL },
};

static void test_problem_table_covers_every_error(void **state) {
        assert_int_equal(ELEMENTSOF(expected), _CF_E_MAX - CF_ERROR_BASE);
        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                assert_int_equal(expected[i].error, CF_ERROR_BASE + (int) i);
}

static void test_problem_type_and_status_for_every_error(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                char urn[128];

                snprintf(urn, sizeof urn, URN "%s", expected[i].type ?: "malformed");
                /* Negative (as returned) and positive (the enum value) mean the same. */
                assert_string_equal(problem_type_for_error(-(int) expected[i].error), urn);
                assert_string_equal(problem_type_for_error((int) expected[i].error), urn);
                assert_int_equal(problem_http_status_for_error(-(int) expected[i].error), expected[i].status);
        }
}

static void test_problem_type_for_errno(void **state) {
        assert_string_equal(problem_type_for_error(-EINVAL), URN "malformed");
        assert_int_equal(problem_http_status_for_error(-EINVAL), 400);
        assert_string_equal(problem_type_for_error(-EBADMSG), URN "malformed");
        assert_string_equal(problem_type_for_error(-ENOENT), URN "malformed");
        assert_int_equal(problem_http_status_for_error(-ENOENT), 404);
        assert_int_equal(problem_http_status_for_error(-E2BIG), 413);
        assert_string_equal(problem_type_for_error(-ENOMEM), URN "serverInternal");
        assert_int_equal(problem_http_status_for_error(-ENOMEM), 500);
        assert_string_equal(problem_type_for_error(-EIO), URN "serverInternal");
        assert_int_equal(problem_http_status_for_error(-EIO), 500);
}

static void test_problem_round_trip_every_error(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                _cleanup_(json_object_putp) json_object *p = NULL;
                _cleanup_(problem_done) Problem parsed = {};
                const char *text, *type;
                char detail[64];
                int64_t status;

                snprintf(detail, sizeof detail, "detail \"%zu\" with\nescapes", i);
                assert_int_equal(problem_new(-(int) expected[i].error, detail, &p), 0);

                /* The object itself has exactly type, detail, status. */
                assert_int_equal(json_object_object_length(p), 3);
                assert_int_equal(json_get_string(p, "type", &type), 0);
                assert_string_equal(type, problem_type_for_error(-(int) expected[i].error));
                assert_int_equal(json_get_int64(p, "status", &status), 0);
                assert_int_equal(status, expected[i].status);

                text = json_to_string_compact(p);
                assert_int_equal(problem_parse(text, strlen(text), &parsed), 0);
                assert_string_equal(parsed.type, type);
                assert_string_equal(parsed.detail, detail);
                assert_int_equal(parsed.status, expected[i].status);
                if (parsed.error != expected[i].parsed)
                        fail_msg("%s: parsed back as %d, expected %d", type, parsed.error, expected[i].parsed);
        }
}

static void test_problem_new_without_detail(void **state) {
        _cleanup_(json_object_putp) json_object *p = NULL;
        _cleanup_(problem_done) Problem parsed = {};
        const char *text;

        assert_int_equal(problem_new(-CF_E_BAD_NONCE, NULL, &p), 0);
        assert_false(json_object_object_get_ex(p, "detail", NULL));
        text = json_to_string_compact(p);
        assert_int_equal(problem_parse(text, strlen(text), &parsed), 0);
        assert_int_equal(parsed.error, CF_E_BAD_NONCE);
        assert_null(parsed.detail);
        assert_int_equal(parsed.status, 400);
}

static void test_problem_subproblems(void **state) {
        _cleanup_(json_object_putp) json_object *p = NULL;
        json_object *subs, *sub, *id;
        const char *s;

        assert_int_equal(problem_new(-CF_E_MALFORMED, "Some of the identifiers requested were rejected", &p), 0);
        assert_int_equal(problem_add_subproblem(p, -CF_E_MALFORMED, "Invalid underscore in DNS name \"_example.org\"",
                                                "dns", "_example.org"), 0);
        assert_int_equal(problem_add_subproblem(p, -CF_E_REJECTED_IDENTIFIER, "This CA will not issue for \"example.net\"",
                                                "dns", "example.net"), 0);
        assert_int_equal(problem_add_subproblem(p, -CF_E_SERVER_INTERNAL, NULL, NULL, NULL), 0);
        /* An identifier needs both a type and a value. */
        assert_int_equal(problem_add_subproblem(p, -CF_E_MALFORMED, NULL, "dns", NULL), -EINVAL);

        assert_int_equal(json_get_array(p, "subproblems", &subs), 0);
        assert_int_equal(json_object_array_length(subs), 3);

        sub = json_object_array_get_idx(subs, 1);
        assert_int_equal(json_get_string(sub, "type", &s), 0);
        assert_string_equal(s, URN "rejectedIdentifier");
        assert_int_equal(json_get_string(sub, "detail", &s), 0);
        assert_string_equal(s, "This CA will not issue for \"example.net\"");
        assert_int_equal(json_get_object(sub, "identifier", &id), 0);
        assert_int_equal(json_get_string(id, "type", &s), 0);
        assert_string_equal(s, "dns");
        assert_int_equal(json_get_string(id, "value", &s), 0);
        assert_string_equal(s, "example.net");

        sub = json_object_array_get_idx(subs, 2);
        assert_int_equal(json_get_string(sub, "type", &s), 0);
        assert_string_equal(s, URN "serverInternal");
        assert_false(json_object_object_get_ex(sub, "identifier", NULL));
        assert_false(json_object_object_get_ex(sub, "detail", NULL));

        assert_int_equal(problem_add_subproblem(NULL, -CF_E_MALFORMED, NULL, NULL, NULL), -EINVAL);
}

static void test_problem_parse_rfc8555_compound_example(void **state) {
        /* RFC 8555 §6.7.1. */
        const char *doc =
                "{\n"
                "  \"type\": \"urn:ietf:params:acme:error:malformed\",\n"
                "  \"detail\": \"Some of the identifiers requested were rejected\",\n"
                "  \"subproblems\": [\n"
                "    {\n"
                "      \"type\": \"urn:ietf:params:acme:error:malformed\",\n"
                "      \"detail\": \"Invalid underscore in DNS name \\\"_example.org\\\"\",\n"
                "      \"identifier\": { \"type\": \"dns\", \"value\": \"_example.org\" }\n"
                "    }\n"
                "  ]\n"
                "}\n";
        _cleanup_(problem_done) Problem p = {};

        assert_int_equal(problem_parse(doc, strlen(doc), &p), 0);
        assert_int_equal(p.error, CF_E_MALFORMED);
        assert_string_equal(p.type, URN "malformed");
        assert_string_equal(p.detail, "Some of the identifiers requested were rejected");
        assert_int_equal(p.status, 0);
}

static void test_problem_parse_unknown_type_keeps_string(void **state) {
        const char *doc = "{\"type\":\"urn:example:error:weird\",\"status\":418}";
        _cleanup_(problem_done) Problem p = {};

        assert_int_equal(problem_parse(doc, strlen(doc), &p), 0);
        assert_int_equal(p.error, CF_E_SERVER_INTERNAL);
        assert_string_equal(p.type, "urn:example:error:weird");
        assert_int_equal(p.status, 418);
}

static void test_problem_parse_missing_type_is_about_blank(void **state) {
        const char *doc = "{\"detail\":\"x\",\"status\":503}";
        _cleanup_(problem_done) Problem p = {};

        assert_int_equal(problem_parse(doc, strlen(doc), &p), 0);
        assert_string_equal(p.type, "about:blank");
        assert_int_equal(p.error, CF_E_SERVER_INTERNAL);
        assert_string_equal(p.detail, "x");
}

static void test_problem_parse_rejects_invalid(void **state) {
        static const char *const bad[] = {
                "",
                "not json",
                "[]",
                "\"urn:ietf:params:acme:error:malformed\"",
                "{\"type\":5}",
                "{\"type\":\"urn:ietf:params:acme:error:malformed\",\"detail\":[]}",
                "{\"type\":\"urn:ietf:params:acme:error:malformed\",\"status\":\"400\"}",
                "{\"type\":\"urn:ietf:params:acme:error:malformed\",\"status\":99}",
                "{\"type\":\"urn:ietf:params:acme:error:malformed\",\"status\":600}",
                "{\"type\":\"urn:ietf:params:acme:error:malformed\"} trailing",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Problem p = { .status = 7 };
                if (problem_parse(bad[i], strlen(bad[i]), &p) != -EBADMSG)
                        fail_msg("accepted '%s'", bad[i]);
                assert_int_equal(p.status, 7);
                assert_null(p.type);
        }
}

static void test_problem_error_from_type(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                char urn[128];
                if (!expected[i].type)
                        continue;
                snprintf(urn, sizeof urn, URN "%s", expected[i].type);
                assert_int_equal(problem_error_from_type(urn), expected[i].error);
                assert_int_equal(problem_error_from_type(expected[i].type), expected[i].error);
        }
        assert_int_equal(problem_error_from_type(URN "compound"), CF_E_MALFORMED);
        assert_int_equal(problem_error_from_type("notFound"), -EINVAL);        /* ours, not ACME's */
        assert_int_equal(problem_error_from_type(URN "notFound"), -EINVAL);
        assert_int_equal(problem_error_from_type(URN), -EINVAL);
        assert_int_equal(problem_error_from_type(""), -EINVAL);
        assert_int_equal(problem_error_from_type("urn:ietf:params:acme:error:BADNONCE"), -EINVAL);
        assert_int_equal(problem_error_from_type("urn:other:badNonce"), -EINVAL);
        assert_int_equal(problem_error_from_type(NULL), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_problem_table_covers_every_error),
                cmocka_unit_test(test_problem_type_and_status_for_every_error),
                cmocka_unit_test(test_problem_type_for_errno),
                cmocka_unit_test(test_problem_round_trip_every_error),
                cmocka_unit_test(test_problem_new_without_detail),
                cmocka_unit_test(test_problem_subproblems),
                cmocka_unit_test(test_problem_parse_rfc8555_compound_example),
                cmocka_unit_test(test_problem_parse_unknown_type_keeps_string),
                cmocka_unit_test(test_problem_parse_missing_type_is_about_blank),
                cmocka_unit_test(test_problem_parse_rejects_invalid),
                cmocka_unit_test(test_problem_error_from_type),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
