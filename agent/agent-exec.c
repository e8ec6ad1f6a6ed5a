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

static int build_env(char *const *extra, char ***ret) {
        char **env = NULL;
        int r;

        for (char **e = environ; e && *e; e++) {
                const char *eq = strchr(*e, '=');
                bool overridden = false;

                if (!eq)
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
                        (void) kill(pid, SIGKILL);
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
        posix_spawnattr_init(&attr);
        /* The daemon blocks SIGHUP/SIGTERM for sd-event; the child must get default behaviour. */
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
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
