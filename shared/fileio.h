/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Reads a whole regular file. Files larger than max_size: -EFBIG. The buffer gets a trailing
 * NUL (not counted). */
int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size);

/* Opens a directory (O_RDONLY | O_DIRECTORY) walking its path one component at a time. A
 * symbolic link on the way is followed only if root or our own user owns it; any other link is
 * -EPERM. Nobody else can make such a link, so a user who may write to a directory on the way
 * cannot redirect our writes elsewhere by swapping a component for a link. */
int open_directory_safely(const char *path);

/* Writes dir_fd/name atomically: temporary file in the same directory (created with mode, so a
 * key is never readable by others even for a moment), write, fchown(uid, gid) unless they are
 * (uid_t)-1/(gid_t)-1, fchmod(mode), fsync, rename over name, fsync of the directory. On any
 * failure the old file is untouched and the temporary is removed. name has no '/'. */
int write_file_atomic_at(int dir_fd, const char *name, const void *data, size_t size, mode_t mode,
                         uid_t uid, gid_t gid);
/* The same for a path, its directory opened with open_directory_safely(). */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode,
                      uid_t uid, gid_t gid);

/* mkdir -p with mode for the created components. */
int mkdir_p(const char *path, mode_t mode);
