/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Runs helper programs (DNS hooks, ExecDeploy=) with a bounded run time. */

#include <stdint.h>

#define AGENT_EXEC_TIMEOUT_SEC (5 * 60)

/* argv[0] must be an absolute path. env_extra ("KEY=value" strv, may be NULL) is added to our
 * environment. stdin is /dev/null; stdout/stderr are inherited (they land in the journal).
 * Returns the exit status (0…255), or -ETIMEDOUT (the child was killed after timeout_sec),
 * -ECHILD if it died of a signal, or a spawn error. */
int agent_exec_run(char *const *argv, char *const *env_extra, unsigned timeout_sec);

/* Splits a command line on whitespace (no quoting: ExecDeploy= takes plain words). */
int agent_exec_split(const char *command_line, char ***ret);
