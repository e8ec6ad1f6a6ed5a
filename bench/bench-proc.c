/* SPDX-License-Identifier: Apache-2.0 */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench-proc.h"
#include "shared/macro.h"

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* Fields 4 (ppid) and 14–17 (utime stime cutime cstime, in clock ticks) of /proc/PID/stat (proc(5)).
 * comm (field 2) may contain spaces and parentheses, so parsing starts after the last ')'. */
static int read_stat(pid_t pid, pid_t *ret_ppid, unsigned long long *ret_ticks) {
        char path[64], buf[2048], *p;
        _cleanup_(fclosep) FILE *f = NULL;
        unsigned long long ut, st;
        long long cut, cst;
        int ppid;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? -ESRCH : -errno;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;
        p = strrchr(buf, ')');
        if (!p)
                return -EBADMSG;
        /* After ")": state(3) ppid(4) pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
         * utime(14) stime(15) cutime(16) cstime(17) */
        if (sscanf(p + 1, " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
                   &ppid, &ut, &st, &cut, &cst) != 5)
                return -EBADMSG;
        *ret_ppid = ppid;
        *ret_ticks = ut + st + (unsigned long long) (cut > 0 ? cut : 0) + (unsigned long long) (cst > 0 ? cst : 0);
        return 0;
}

static int add_children(pid_t parent, unsigned long long *sum, unsigned depth) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;

        if (depth > 16)
                return 0;
        d = opendir("/proc");
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                unsigned long long ticks;
                pid_t pid, ppid;
                char *end;

                pid = (pid_t) strtol(de->d_name, &end, 10);
                if (*end || pid <= 0 || pid == parent)
                        continue;
                if (read_stat(pid, &ppid, &ticks) < 0 || ppid != parent)
                        continue;
                *sum += ticks;
                (void) add_children(pid, sum, depth + 1);
        }
        return 0;
}

int proc_tree_cpu_ms(pid_t pid, double *ret) {
        unsigned long long ticks;
        long hz = sysconf(_SC_CLK_TCK);
        pid_t ppid;
        int r;

        r = read_stat(pid, &ppid, &ticks);
        if (r < 0)
                return r;
        r = add_children(pid, &ticks, 0);
        if (r < 0)
                return r;
        *ret = (double) ticks * 1000.0 / (double) (hz > 0 ? hz : 100);
        return 0;
}
