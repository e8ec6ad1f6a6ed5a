/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shared/errors.h"
#include "shared/log.h"
#include "shared/macro.h"

/* stderr is redirected into a memfd while a test logs, then read back. */
static int saved_stderr = -1;
static int capture_fd = -1;

static void capture_begin(void) {
        fflush(stderr);
        capture_fd = memfd_create("stderr", MFD_CLOEXEC);
        assert_true(capture_fd >= 0);
        saved_stderr = dup(STDERR_FILENO);
        assert_true(saved_stderr >= 0);
        assert_int_equal(dup2(capture_fd, STDERR_FILENO), STDERR_FILENO);
}

/* Returns what was written since capture_begin(); restores stderr. */
static char *capture_end(void) {
        char *buf;
        off_t size;

        fflush(stderr);
        assert_int_equal(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
        close(saved_stderr);
        saved_stderr = -1;

        size = lseek(capture_fd, 0, SEEK_END);
        assert_true(size >= 0);
        buf = malloc((size_t) size + 1);
        assert_non_null(buf);
        assert_int_equal(pread(capture_fd, buf, (size_t) size, 0), size);
        buf[size] = 0;
        close(capture_fd);
        capture_fd = -1;
        return buf;
}

static int setup(void **state) {
        log_set_target(LOG_TARGET_STDERR);
        log_set_ident("test-log");
        log_set_max_level(LOG_INFO);
        return 0;
}

static void test_log_formats_ident_level_and_message(void **state) {
        _cleanup_free_ char *out = NULL;

        capture_begin();
        log_info("hello %s %d", "world", 42);
        log_warning("careful");
        log_error("broken: %05.1f%%", 3.14159);
        log_notice("n");
        out = capture_end();
        assert_string_equal(out,
                            "test-log[info]: hello world 42\n"
                            "test-log[warning]: careful\n"
                            "test-log[error]: broken: 003.1%\n"
                            "test-log[notice]: n\n");
}

static void test_log_percent_m_expands_cf_error_name(void **state) {
        _cleanup_free_ char *out = NULL;
        int r;

        capture_begin();
        r = log_error_errno(-CF_E_BAD_CSR, "Failed to parse CSR of '%s': %m", "web");
        out = capture_end();
        assert_int_equal(r, -CF_E_BAD_CSR);
        assert_string_equal(out, "test-log[error]: Failed to parse CSR of 'web': badCSR\n");
}

static void test_log_percent_m_expands_errno_text(void **state) {
        _cleanup_free_ char *out = NULL;
        char expect[256];
        int r1, r2;

        capture_begin();
        r1 = log_error_errno(-ENOENT, "Failed to open '%s': %m", "/x");
        /* A positive errno means the same and comes back negative. */
        r2 = log_warning_errno(EACCES, "%m, %s", "then more");
        out = capture_end();
        assert_int_equal(r1, -ENOENT);
        assert_int_equal(r2, -EACCES);
        snprintf(expect, sizeof expect, "test-log[error]: Failed to open '/x': %s\ntest-log[warning]: %s, then more\n",
                 strerror(ENOENT), strerror(EACCES));
        assert_string_equal(out, expect);
}

static void test_log_percent_percent_m_is_literal(void **state) {
        _cleanup_free_ char *out = NULL;

        capture_begin();
        log_error_errno(-CF_E_DNS, "100%%m %m %%%m");
        out = capture_end();
        assert_string_equal(out, "test-log[error]: 100%m dns %dns\n");
}

static void test_log_errno_returns_its_argument(void **state) {
        _cleanup_free_ char *out = NULL;

        capture_begin();
        assert_int_equal(log_error_errno(-EINVAL, "a"), -EINVAL);
        assert_int_equal(log_info_errno(-CF_E_SERVER_INTERNAL, "b"), -CF_E_SERVER_INTERNAL);
        assert_int_equal(log_warning_errno(-ENOMEM, "c"), -ENOMEM);
        /* Filtered out, still returned. */
        assert_int_equal(log_debug_errno(-EBADMSG, "d"), -EBADMSG);
        /* 0 becomes -EIO so that `return log_error_errno(0, …)` still fails. */
        assert_int_equal(log_error_errno(0, "e"), -EIO);
        assert_int_equal(log_debug_errno(0, "f"), -EIO);
        out = capture_end();
        assert_null(strstr(out, "]: d\n"));
        assert_null(strstr(out, "]: f\n"));
        assert_non_null(strstr(out, "]: e\n"));
}

static void test_log_preserves_errno(void **state) {
        _cleanup_free_ char *out = NULL;

        capture_begin();
        errno = EXDEV;
        log_error_errno(-ENOENT, "x %m");
        assert_int_equal(errno, EXDEV);
        log_debug("y");
        assert_int_equal(errno, EXDEV);
        out = capture_end();
}

static void test_log_level_filtering(void **state) {
        _cleanup_free_ char *out = NULL;

        log_set_max_level(LOG_WARNING);
        assert_int_equal(log_get_max_level(), LOG_WARNING);
        capture_begin();
        log_debug("debug");
        log_info("info");
        log_notice("notice");
        log_warning("warning");
        log_error("error");
        out = capture_end();
        assert_string_equal(out, "test-log[warning]: warning\ntest-log[error]: error\n");
        free(out);

        log_set_max_level(LOG_DEBUG);
        capture_begin();
        log_debug("debug %d", 1);
        out = capture_end();
        assert_string_equal(out, "test-log[debug]: debug 1\n");

        log_set_max_level(LOG_INFO);
}

static void test_log_event_prefixes_certificate(void **state) {
        _cleanup_free_ char *out = NULL;
        int r;

        capture_begin();
        log_event(LOG_INFO, "0123456789abcdef0123456789abcdef", "web", "Renewed, valid until %s", "2025-01-02");
        r = log_event_errno(LOG_ERR, -CF_E_RATE_LIMITED, NULL, "mail", "Renewal failed: %m");
        log_event(LOG_NOTICE, NULL, NULL, "no certificate");
        log_event(LOG_DEBUG, NULL, "web", "filtered");
        out = capture_end();
        assert_int_equal(r, -CF_E_RATE_LIMITED);
        assert_string_equal(out,
                            "test-log[info]: web: Renewed, valid until 2025-01-02\n"
                            "test-log[error]: mail: Renewal failed: rateLimited\n"
                            "test-log[notice]: no certificate\n");
}

static void test_log_parse_environment(void **state) {
        assert_int_equal(setenv("CERTFLEET_LOG_LEVEL", "debug", 1), 0);
        log_parse_environment();
        assert_int_equal(log_get_max_level(), LOG_DEBUG);

        assert_int_equal(setenv("CERTFLEET_LOG_LEVEL", "warning", 1), 0);
        log_parse_environment();
        assert_int_equal(log_get_max_level(), LOG_WARNING);

        /* Unknown names leave the level alone. */
        assert_int_equal(setenv("CERTFLEET_LOG_LEVEL", "loud", 1), 0);
        log_parse_environment();
        assert_int_equal(log_get_max_level(), LOG_WARNING);

        assert_int_equal(unsetenv("CERTFLEET_LOG_LEVEL"), 0);
        log_set_max_level(LOG_INFO);
}

static void test_log_long_message_is_truncated_not_overflowing(void **state) {
        _cleanup_free_ char *out = NULL, *big = malloc(10000);

        assert_non_null(big);
        memset(big, 'x', 9999);
        big[9999] = 0;
        capture_begin();
        log_error_errno(-CF_E_TLS, "%s %m", big);
        out = capture_end();
        assert_true(strlen(out) < 4096 + 64);
        assert_true(strncmp(out, "test-log[error]: xxxx", 21) == 0);
        assert_true(out[strlen(out) - 1] == '\n');
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_log_formats_ident_level_and_message),
                cmocka_unit_test(test_log_percent_m_expands_cf_error_name),
                cmocka_unit_test(test_log_percent_m_expands_errno_text),
                cmocka_unit_test(test_log_percent_percent_m_is_literal),
                cmocka_unit_test(test_log_errno_returns_its_argument),
                cmocka_unit_test(test_log_preserves_errno),
                cmocka_unit_test(test_log_level_filtering),
                cmocka_unit_test(test_log_event_prefixes_certificate),
                cmocka_unit_test(test_log_parse_environment),
                cmocka_unit_test(test_log_long_message_is_truncated_not_overflowing),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
