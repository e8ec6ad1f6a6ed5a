/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What the unit tests share: one temporary directory per test program, files in it, and shell
 * commands (mostly the openssl CLI, to cross-check our output) run inside it. Failures inside
 * these helpers fail the calling test. */

#include <stddef.h>

#include "shared/macro.h"

#define TEST_TMPDIR_MAX 128

/* /tmp/certfleet-PROGRAM-XXXXXX, filled in by test_tmpdir_setup(). */
extern char test_tmpdir[TEST_TMPDIR_MAX];

/* cmocka group setup and teardown: create test_tmpdir, and remove it with all it holds. */
int test_tmpdir_setup(void **state);
int test_tmpdir_teardown(void **state);

/* test_tmpdir/name, allocated. */
char *test_path(const char *name);

/* Runs a shell command inside test_tmpdir: its exit status, -1 if it did not exit normally. */
int test_run(const char *format, ...) _printf_(1, 2);

/* The contents of test_tmpdir/name, NUL-terminated; ret_size may be NULL. */
char *test_read_file(const char *name, size_t *ret_size);
/* Creates or replaces test_tmpdir/name with size bytes of data. */
void test_write_file(const char *name, const void *data, size_t size);
void test_write_text(const char *name, const char *text);
