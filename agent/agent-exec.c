/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent-exec.h"
#include "shared/macro.h"
#include "shared/strv.h"

extern char **environ;

int agent_exec_split(const char *command_line, char ***ret) {
        return strv_split(command_line, " \t\n", ret);
}

/* Variables that describe the agent's own relation to systemd: a hook must not notify systemd
 * on the agent's behalf nor believe it was socket-activated or is watched. */
static const char *const env_dropped[] = {
        "NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_PID", "WATCHDOG_USEC",
        NULL,
};

static bool env_is_dropped(const char *assignment, size_t name_len) {
        for (const char *const *d = env_dropped; *d; d++)
                if (strlen(*d) == name_len && strncmp(*d, assignment, name_len) == 0)
                        return true;
        return false;
}

static int build_env(char *const *extra, char ***ret) {
        char **env = NULL;
        int r;

        for (char **e = environ; e && *e; e++) {
                const char *eq = strchr(*e, '=');
                bool overridden = false;

                if (!eq || env_is_dropped(*e, (size_t) (eq - *e)))
                        continue;
                for (char *const *x = extra; x && *x; x++)
                        if (strncmp(*x, *e, (size_t) (eq - *e) + 1) == 0)
                                overridden = true;
                if (overridden)
                        continue;
                r = strv_extend(&env, *e);
                if (r < 0)
                        goto fail;
        }
        for (char *const *x = extra; x && *x; x++) {
                r = strv_extend(&env, *x);
                if (r < 0)
                        goto fail;
        }
        if (!env && !(env = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *ret = env;
        return 0;
fail:
        strv_free(env);
        return r;
}

static int wait_with_timeout(pid_t pid, unsigned timeout_sec) {
        _cleanup_(closep) int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        int status;

        if (pidfd >= 0) {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };
                int n;

                do
                        n = poll(&p, 1, (int) timeout_sec * 1000);
                while (n < 0 && errno == EINTR);
                if (n == 0) {
                        /* The whole process group: a hook's children must not outlive the timeout. */
                        (void) kill(-pid, SIGKILL);
                        (void) waitpid(pid, &status, 0);
                        return -ETIMEDOUT;
                }
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return -ECHILD;
}

int agent_exec_run(char *const *argv, char *const *env_extra, unsigned timeout_sec) {
        _cleanup_(strv_freep) char **env = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none;
        pid_t pid;
        int r;

        if (!argv || !argv[0] || argv[0][0] != '/')
                return -EINVAL;
        r = build_env(env_extra, &env);
        if (r < 0)
                return r;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        /* Only stdin/stdout/stderr reach the hook, even if a library (libcurl, sd-bus, OpenSSL)
         * left a descriptor without O_CLOEXEC: a hook must never inherit the bus connection, a
         * TLS socket or a challenge listener. */
        posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
        posix_spawnattr_init(&attr);
        /* The daemon blocks SIGHUP/SIGTERM for sd-event; the child must get default behaviour. */
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attr, &none);
        /* Its own process group, so that a timeout kills everything the hook started. */
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
        {
                sigset_t all;
                sigfillset(&all);
                posix_spawnattr_setsigdefault(&attr, &all);
        }
        r = posix_spawn(&pid, argv[0], &fa, &attr, argv, env);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return -r;
        return wait_with_timeout(pid, timeout_sec);
}
