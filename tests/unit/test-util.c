/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "shared/fileio.h"
#include "test-util.h"

/* Larger than any input limit of the code under test, so that tests can read back what they
 * wrote to exceed one. */
#define TEST_READ_MAX (64u * 1024u * 1024u)

char test_tmpdir[TEST_TMPDIR_MAX];

int test_tmpdir_setup(void **state) {
        snprintf(test_tmpdir, sizeof test_tmpdir, "/tmp/certfleet-%s-XXXXXX", program_invocation_short_name);
        return mkdtemp(test_tmpdir) ? 0 : -1;
}

int test_tmpdir_teardown(void **state) {
        _cleanup_free_ char *cmd = NULL;

        if (asprintf(&cmd, "rm -rf '%s'", test_tmpdir) < 0)
                return -1;
        return system(cmd) == 0 ? 0 : -1;
}

char *test_path(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", test_tmpdir, name) > 0);
        return p;
}

int test_run(const char *format, ...) {
        _cleanup_free_ char *cmd = NULL, *full = NULL;
        va_list ap;
        int r, status;

        va_start(ap, format);
        r = vasprintf(&cmd, format, ap);
        va_end(ap);
        assert_true(r > 0);
        assert_true(asprintf(&full, "cd '%s' && %s", test_tmpdir, cmd) > 0);

        status = system(full);
        if (status < 0 || !WIFEXITED(status))
                return -1;
        return WEXITSTATUS(status);
}

char *test_read_file(const char *name, size_t *ret_size) {
        _cleanup_free_ char *path = test_path(name);
        char *buf = NULL;
        size_t size = 0;

        assert_int_equal(read_full_file(path, TEST_READ_MAX, &buf, &size), 0);
        if (ret_size)
                *ret_size = size;
        return buf;
}

void test_write_file(const char *name, const void *data, size_t size) {
        _cleanup_free_ char *path = test_path(name);
        FILE *f;

        f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, size, f), size);
        assert_int_equal(fclose(f), 0);
}

void test_write_text(const char *name, const char *text) {
        test_write_file(name, text, strlen(text));
}
