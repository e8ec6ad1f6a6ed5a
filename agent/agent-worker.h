/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Runs one blocking function at a time on a thread and reports its completion on the sd-event
 * loop (eventfd), so the loop — and the bus on it — keeps answering while an enrollment runs. */

#include <stdbool.h>

#include <systemd/sd-event.h>

#include "shared/macro.h"

typedef struct AgentWorker AgentWorker;

typedef void (*AgentWorkFunc)(void *userdata);       /* on the worker thread */
typedef void (*AgentWorkDoneFunc)(void *userdata);   /* on the event loop, after work returned */

int agent_worker_new(sd_event *e, AgentWorker **ret);
/* If work is still running, the thread is detached and its eventfd left open: the process is
 * exiting and the state on disk is crash-safe, so there is nothing to wait for. done is not called. */
AgentWorker *agent_worker_free(AgentWorker *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentWorker *, agent_worker_free);

/* -EBUSY while a previous work item has not been reported done. */
int agent_worker_submit(AgentWorker *w, AgentWorkFunc work, void *work_userdata,
                        AgentWorkDoneFunc done, void *done_userdata);
bool agent_worker_busy(AgentWorker *w);
