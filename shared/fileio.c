/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/fileio.h"
#include "shared/macro.h"
#include "shared/random-util.h"

int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size) {
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return S_ISDIR(st.st_mode) ? -EISDIR : -EBADFD;
        if ((uint64_t) st.st_size > max_size)
                return -EFBIG;

        /* The size may change while we read (a file being rewritten): read until EOF but never
         * past max_size. */
        allocated = (size_t) st.st_size + 1;
        buf = malloc(allocated);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;

                if (size + 1 >= allocated) {
                        size_t want = MIN(allocated * 2, max_size + 2);
                        char *p;
                        if (want <= allocated)
                                return -EFBIG;
                        p = realloc(buf, want);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        allocated = want;
                }
                n = read(fd, buf + size, allocated - size - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > max_size)
                        return -EFBIG;
        }
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

static int write_all(int fd, const void *data, size_t size) {
        const char *p = data;

        while (size > 0) {
                ssize_t n = write(fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

/* "a/b/c" → "a/b", "c" → ".", "/c" → "/". */
static char *directory_of(const char *path) {
        const char *slash = strrchr(path, '/');

        if (!slash)
                return strdup(".");
        if (slash == path)
                return strdup("/");
        return strndup(path, (size_t) (slash - path));
}

/* One step of the walk: enters component `name` of directory *fd. A symbolic link is followed
 * (its target pushed in front of *rest) only when root or we ourselves own it, since nobody
 * else can create such a link: whoever may write to a directory on the way can otherwise swap a
 * component for a link and send our writes anywhere. */
static int walk_component(int *fd, const char *name, char **rest, unsigned *links) {
        _cleanup_free_ char *target = NULL, *joined = NULL;
        struct stat st;
        int next;

        next = openat(*fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next >= 0) {
                close(*fd);
                *fd = next;
                return 0;
        }
        if ((errno != ENOTDIR && errno != ELOOP) || fstatat(*fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISLNK(st.st_mode))
                return -ENOTDIR;
        if (st.st_uid != 0 && st.st_uid != geteuid())
                return -EPERM;
        if (++*links > 40)
                return -ELOOP;

        target = malloc(PATH_MAX);
        if (!target)
                return -ENOMEM;
        ssize_t n = readlinkat(*fd, name, target, PATH_MAX - 1);
        if (n < 0)
                return -errno;
        target[n] = 0;
        if (asprintf(&joined, "%s/%s", target, *rest) < 0)
                return -ENOMEM;
        if (target[0] == '/') {
                next = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (next < 0)
                        return -errno;
                close(*fd);
                *fd = next;
        }
        free(*rest);
        *rest = TAKE_PTR(joined);
        return 0;
}

int open_directory_safely(const char *path) {
        _cleanup_free_ char *rest = NULL;
        _cleanup_(closep) int fd = -EBADF;
        unsigned links = 0;
        int r;

        if (!path || !*path)
                return -EINVAL;
        rest = strdup(path);
        if (!rest)
                return -ENOMEM;
        fd = open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;

        for (;;) {
                _cleanup_free_ char *name = NULL, *tail = NULL;
                char *p = rest, *slash;

                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                slash = strchr(p, '/');
                name = slash ? strndup(p, (size_t) (slash - p)) : strdup(p);
                tail = strdup(slash ? slash : "");
                if (!name || !tail)
                        return -ENOMEM;
                free(rest);
                rest = TAKE_PTR(tail);
                r = walk_component(&fd, name, &rest, &links);
                if (r < 0)
                        return r;
        }

        /* O_PATH was enough to walk; fsync and the *at() calls of the writers want a real one. */
        r = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return r < 0 ? -errno : r;
}

int write_file_atomic_at(int dir_fd, const char *name, const void *data, size_t size, mode_t mode,
                         uid_t uid, gid_t gid) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_(closep) int fd = -EBADF;
        uint64_t suffix;
        int r;

        if (!name || !*name || strchr(name, '/'))
                return -EINVAL;
        r = random_uniform(UINT64_MAX, &suffix);
        if (r < 0)
                return r;
        /* Hidden temporary beside the target: rename() is atomic only within one file system. */
        if (asprintf(&tmp, ".#%s.%016llx", name, (unsigned long long) suffix) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }

        /* Created with the final mode (never wider), so a key is never readable by others. */
        fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
        if (fd < 0)
                return -errno;

        r = write_all(fd, data, size);
        if (r >= 0 && (uid != (uid_t) -1 || gid != (gid_t) -1) && fchown(fd, uid, gid) < 0)
                r = -errno;
        /* fchmod after fchown: chown clears set-id bits, and the umask must not narrow mode. */
        if (r >= 0 && fchmod(fd, mode & 07777) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dir_fd, tmp, 0);
                return r;
        }
        return fsync(dir_fd) < 0 ? -errno : 0;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode,
                      uid_t uid, gid_t gid) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_(closep) int dir_fd = -EBADF;
        const char *base;

        base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        if (!*base)
                return -EISDIR;
        dir = directory_of(path);
        if (!dir)
                return -ENOMEM;
        dir_fd = open_directory_safely(dir);
        if (dir_fd < 0)
                return dir_fd;
        return write_file_atomic_at(dir_fd, base, data, size, mode, uid, gid);
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; ; s++) {
                if (*s != '/' && *s != 0)
                        continue;
                char c = *s;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = c;
                if (c == 0)
                        break;
        }
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}
