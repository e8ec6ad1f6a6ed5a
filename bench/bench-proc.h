/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* CPU time of the server under test, from /proc: it does not depend on how fast or slow the driver
 * is, so it is the figure that compares servers. */

#include <sys/types.h>

/* utime+stime (+cutime+cstime) in milliseconds of pid and of every live descendant of it.
 * -ESRCH if pid is gone. */
int proc_tree_cpu_ms(pid_t pid, double *ret);
