/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/fileio.h"
#include "shared/macro.h"
#include "tests/unit/test-util.h"

static size_t count_entries(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

static void test_write_file_atomic_sets_mode_despite_umask(void **state) {
        _cleanup_free_ char *path = NULL, *data = NULL;
        struct stat st;
        size_t size;
        mode_t old = umask(0);

        assert_true(asprintf(&path, "%s/key.pem", test_tmpdir) > 0);
        assert_int_equal(write_file_atomic(path, "secret", 6, 0600, (uid_t) -1, (gid_t) -1), 0);
        umask(old);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(read_full_file(path, 1024, &data, &size), 0);
        assert_int_equal(size, 6);
        assert_string_equal(data, "secret");
}

static void test_write_file_atomic_replaces_and_leaves_no_temporary(void **state) {
        _cleanup_free_ char *path = NULL, *data = NULL, *sub = NULL;

        assert_true(asprintf(&sub, "%s/replace", test_tmpdir) > 0);
        assert_int_equal(mkdir_p(sub, 0755), 0);
        assert_true(asprintf(&path, "%s/cert.pem", sub) > 0);
        assert_int_equal(write_file_atomic(path, "old", 3, 0644, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(write_file_atomic(path, "new!", 4, 0644, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(read_full_file(path, 1024, &data, NULL), 0);
        assert_string_equal(data, "new!");
        assert_int_equal(count_entries(sub), 1);
}

static void test_write_file_atomic_failure_keeps_old_file(void **state) {
        _cleanup_free_ char *path = NULL, *data = NULL;

        assert_true(asprintf(&path, "%s/keep.pem", test_tmpdir) > 0);
        assert_int_equal(write_file_atomic(path, "old", 3, 0644, (uid_t) -1, (gid_t) -1), 0);
        if (geteuid() == 0) {
                /* chown to a uid/gid pair that does not exist still works for root, so force a
                 * failure differently: a path whose directory does not exist. */
                _cleanup_free_ char *bad = NULL;
                assert_true(asprintf(&bad, "%s/missing/keep.pem", test_tmpdir) > 0);
                assert_int_equal(write_file_atomic(bad, "x", 1, 0644, (uid_t) -1, (gid_t) -1), -ENOENT);
        } else
                assert_int_equal(write_file_atomic(path, "new", 3, 0644, 0, 0), -EPERM);
        assert_int_equal(read_full_file(path, 1024, &data, NULL), 0);
        assert_string_equal(data, "old");
}

/* tmpdir/NAME as a fresh directory. */
static char *new_dir(const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", test_tmpdir, name) > 0);
        assert_int_equal(mkdir_p(p, 0755), 0);
        return p;
}

static void test_write_file_atomic_follows_links_of_root_or_ourselves(void **state) {
        _cleanup_free_ char *real = new_dir("links-real"), *abs_link = NULL, *rel_link = NULL,
                            *via_abs = NULL, *via_rel = NULL, *data = NULL, *in_real = NULL;

        /* An absolute and a relative link, both ours: followed, with ".." and "//" on the way. */
        assert_true(asprintf(&abs_link, "%s/links-abs", test_tmpdir) > 0);
        assert_true(asprintf(&rel_link, "%s/links-rel", test_tmpdir) > 0);
        assert_int_equal(symlink(real, abs_link), 0);
        assert_int_equal(symlink("./links-real/../links-real", rel_link), 0);
        assert_true(asprintf(&via_abs, "%s//a.pem", abs_link) > 0);
        assert_true(asprintf(&via_rel, "%s/b.pem", rel_link) > 0);
        assert_int_equal(write_file_atomic(via_abs, "a", 1, 0600, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(write_file_atomic(via_rel, "b", 1, 0600, (uid_t) -1, (gid_t) -1), 0);
        assert_true(asprintf(&in_real, "%s/b.pem", real) > 0);
        assert_int_equal(read_full_file(in_real, 16, &data, NULL), 0);
        assert_string_equal(data, "b");
        assert_int_equal(count_entries(real), 2);
}

static void test_write_file_atomic_refuses_links_of_other_users(void **state) {
        _cleanup_free_ char *victim = new_dir("victim"), *writable = new_dir("writable"),
                            *link = NULL, *path = NULL, *file_as_dir = NULL, *under_file = NULL;
        int fd;

        if (geteuid() != 0)
                skip();   /* lchown to another user needs root (the agent runs as root) */

        /* Someone who may write "writable" swaps a directory for a link to "victim": as its
         * owner is neither root nor us, the write is refused and "victim" stays empty. */
        assert_true(asprintf(&link, "%s/certs", writable) > 0);
        assert_int_equal(symlink(victim, link), 0);
        assert_int_equal(lchown(link, 65534, 65534), 0);
        assert_true(asprintf(&path, "%s/key.pem", link) > 0);
        assert_int_equal(write_file_atomic(path, "secret", 6, 0600, (uid_t) -1, (gid_t) -1), -EPERM);
        fd = open_directory_safely(link);
        assert_int_equal(fd, -EPERM);
        assert_int_equal(count_entries(victim), 0);

        /* A file where a directory should be. */
        assert_true(asprintf(&file_as_dir, "%s/plain", writable) > 0);
        assert_int_equal(write_file_atomic(file_as_dir, "x", 1, 0600, (uid_t) -1, (gid_t) -1), 0);
        assert_true(asprintf(&under_file, "%s/key.pem", file_as_dir) > 0);
        assert_int_equal(write_file_atomic(under_file, "x", 1, 0600, (uid_t) -1, (gid_t) -1), -ENOTDIR);
}

static void test_read_full_file_enforces_limit(void **state) {
        _cleanup_free_ char *path = NULL, *data = NULL;
        char big[4096];

        memset(big, 'a', sizeof big);
        assert_true(asprintf(&path, "%s/big", test_tmpdir) > 0);
        assert_int_equal(write_file_atomic(path, big, sizeof big, 0644, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(read_full_file(path, 4095, &data, NULL), -EFBIG);
        assert_null(data);
        assert_int_equal(read_full_file(path, 4096, &data, NULL), 0);
        assert_int_equal(strlen(data), 4096);
}

static void test_read_full_file_rejects_directory(void **state) {
        char *data = NULL;
        assert_int_equal(read_full_file(test_tmpdir, 1024, &data, NULL), -EISDIR);
}

static void test_mkdir_p_creates_parents(void **state) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        assert_true(asprintf(&p, "%s/a/b/c", test_tmpdir) > 0);
        assert_int_equal(mkdir_p(p, 0700), 0);
        assert_int_equal(stat(p, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(mkdir_p(p, 0700), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_write_file_atomic_sets_mode_despite_umask),
                cmocka_unit_test(test_write_file_atomic_replaces_and_leaves_no_temporary),
                cmocka_unit_test(test_write_file_atomic_failure_keeps_old_file),
                cmocka_unit_test(test_write_file_atomic_follows_links_of_root_or_ourselves),
                cmocka_unit_test(test_write_file_atomic_refuses_links_of_other_users),
                cmocka_unit_test(test_read_full_file_enforces_limit),
                cmocka_unit_test(test_read_full_file_rejects_directory),
                cmocka_unit_test(test_mkdir_p_creates_parents),
        };
        return cmocka_run_group_tests(tests, test_tmpdir_setup, test_tmpdir_teardown);
}
