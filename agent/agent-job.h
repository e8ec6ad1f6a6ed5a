/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* One pass over one tracked certificate, run on the worker thread:
 *   1. redeploy the current generation if the deploy targets do not hold it (crash recovery);
 *   2. refresh the ARI window when its poll time has come (or compute the fallback schedule);
 *   3. if renewal is due (or was requested): enroll, commit to the state directory, deploy.
 * The job works on its own copies and persists the schedule itself; the manager only reads the
 * result back on the event loop. */

#include <stdbool.h>

#include "agent/agent-config.h"
#include "agent/agent-state.h"

typedef struct AgentJob {
        /* input */
        CertConfig *config;           /* a reference */
        char *state_dir;
        AgentSchedule schedule;       /* copy of the manager's */
        cf_time_t now;                /* CF_TIME_INVALID: the job reads the clock */

        /* output */
        int result;                   /* 0, or the first failure */
        char *error;                  /* message for result < 0 */
        bool issued;                  /* a new certificate was committed */
        bool deployed;
        bool attempted;               /* an enrollment was attempted */
        AgentSchedule new_schedule;
} AgentJob;

int agent_job_new(CertConfig *config, const char *state_dir, const AgentSchedule *schedule, AgentJob **ret);
AgentJob *agent_job_free(AgentJob *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentJob *, agent_job_free);

void agent_job_run(void *userdata);

/* Whether an enrollment is due at now for a schedule and the current certificate's validity
 * (CF_TIME_INVALID if there is none). */
bool agent_job_renewal_due(const AgentSchedule *s, cf_time_t not_before, cf_time_t not_after, cf_time_t now);
