/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "shared/errors.h"
#include "shared/macro.h"

static const struct {
        CfError error;
        const char *name;
} names[] = {
        { CF_E_MALFORMED, "malformed" },
        { CF_E_BAD_NONCE, "badNonce" },
        { CF_E_BAD_SIGNATURE_ALGORITHM, "badSignatureAlgorithm" },
        { CF_E_BAD_SIGNATURE, "badSignature" },
        { CF_E_BAD_PUBLIC_KEY, "badPublicKey" },
        { CF_E_BAD_CSR, "badCSR" },
        { CF_E_BAD_REVOCATION_REASON, "badRevocationReason" },
        { CF_E_ALREADY_REVOKED, "alreadyRevoked" },
        { CF_E_ALREADY_REPLACED, "alreadyReplaced" },
        { CF_E_REJECTED_IDENTIFIER, "rejectedIdentifier" },
        { CF_E_UNSUPPORTED_IDENTIFIER, "unsupportedIdentifier" },
        { CF_E_INVALID_CONTACT, "invalidContact" },
        { CF_E_UNSUPPORTED_CONTACT, "unsupportedContact" },
        { CF_E_EXTERNAL_ACCOUNT_REQUIRED, "externalAccountRequired" },
        { CF_E_ACCOUNT_DOES_NOT_EXIST, "accountDoesNotExist" },
        { CF_E_UNAUTHORIZED, "unauthorized" },
        { CF_E_ORDER_NOT_READY, "orderNotReady" },
        { CF_E_USER_ACTION_REQUIRED, "userActionRequired" },
        { CF_E_RATE_LIMITED, "rateLimited" },
        { CF_E_CAA, "caa" },
        { CF_E_CONNECTION, "connection" },
        { CF_E_DNS, "dns" },
        { CF_E_INCORRECT_RESPONSE, "incorrectResponse" },
        { CF_E_TLS, "tls" },
        { CF_E_NOT_FOUND, "notFound" },
        { CF_E_DISABLED, "disabled" },
        { CF_E_CONFLICT, "conflict" },
        { CF_E_TOO_LARGE, "tooLarge" },
        { CF_E_UNSUPPORTED_MEDIA_TYPE, "unsupportedMediaType" },
        { CF_E_METHOD_NOT_ALLOWED, "methodNotAllowed" },
        { CF_E_APPROVAL_PENDING, "approvalPending" },
        { CF_E_SERVER_INTERNAL, "serverInternal" },
};

static void test_errors_table_covers_every_value(void **state) {
        assert_int_equal(ELEMENTSOF(names), _CF_E_MAX - CF_ERROR_BASE);
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_int_equal(names[i].error, CF_ERROR_BASE + (int) i);
}

static void test_cf_error_name_every_value(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_string_equal(cf_error_name(-(int) names[i].error), names[i].name);
}

static void test_cf_error_name_errno_and_success(void **state) {
        assert_string_equal(cf_error_name(0), "success");
        assert_string_equal(cf_error_name(5), "success");
        assert_string_equal(cf_error_name(-EINVAL), strerror(EINVAL));
        assert_string_equal(cf_error_name(-ENOENT), strerror(ENOENT));
        assert_string_equal(cf_error_name(-EACCES), strerror(EACCES));
        /* Just outside the enum on both sides: errno text, never NULL. */
        assert_non_null(cf_error_name(-(CF_ERROR_BASE - 1)));
        assert_non_null(cf_error_name(-_CF_E_MAX));
}

static void test_cf_error_is_protocol(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                assert_true(cf_error_is_protocol(-(int) names[i].error));
                assert_false(cf_error_is_protocol((int) names[i].error));
        }
        assert_false(cf_error_is_protocol(-EINVAL));
        assert_false(cf_error_is_protocol(0));
        assert_false(cf_error_is_protocol(-_CF_E_MAX));
        assert_false(cf_error_is_protocol(-(CF_ERROR_BASE - 1)));
}

static void test_cf_error_from_errno_passes_protocol_errors(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_int_equal(cf_error_from_errno(-(int) names[i].error), names[i].error);
}

static void test_cf_error_from_errno_maps_errno(void **state) {
        static const struct {
                int r;
                CfError e;
        } map[] = {
                { -EINVAL, CF_E_MALFORMED },
                { -EBADMSG, CF_E_MALFORMED },
                { -EPROTO, CF_E_MALFORMED },
                { -E2BIG, CF_E_TOO_LARGE },
                { -EMSGSIZE, CF_E_TOO_LARGE },
                { -ENOENT, CF_E_NOT_FOUND },
                { -ENOKEY, CF_E_NOT_FOUND },
                { -ENOMEM, CF_E_SERVER_INTERNAL },
                { -EIO, CF_E_SERVER_INTERNAL },
                { -EACCES, CF_E_SERVER_INTERNAL },
                { -ECONNREFUSED, CF_E_SERVER_INTERNAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (cf_error_from_errno(map[i].r) != map[i].e)
                        fail_msg("%s mapped to %d, expected %d", strerror(-map[i].r),
                                 cf_error_from_errno(map[i].r), map[i].e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_errors_table_covers_every_value),
                cmocka_unit_test(test_cf_error_name_every_value),
                cmocka_unit_test(test_cf_error_name_errno_and_success),
                cmocka_unit_test(test_cf_error_is_protocol),
                cmocka_unit_test(test_cf_error_from_errno_passes_protocol_errors),
                cmocka_unit_test(test_cf_error_from_errno_maps_errno),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
