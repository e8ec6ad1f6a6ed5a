/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A tracked certificate: its configuration, persisted schedule, what the current certificate
 * looks like, and the state machine of agent-manager.h's AgentCertState. Event-loop thread only. */

#include <stdbool.h>

#include "agent/agent-config.h"
#include "agent/agent-manager.h"
#include "agent/agent-state.h"

struct AgentCert {
        CertConfig *config;
        AgentSchedule schedule;
        AgentCertState state;
        char *serial;                 /* current certificate, NULL if none */
        char *issuer;
        cf_time_t not_before;
        cf_time_t not_after;
        cf_time_t last_job_end;       /* CF_TIME_INVALID: no job ran since loading */
        bool queued;
        bool running;
};

int agent_cert_new(CertConfig *config, AgentCert **ret);
AgentCert *agent_cert_free(AgentCert *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentCert *, agent_cert_free);

/* Reads schedule.json and the live generation; a broken state is logged and treated as none. */
int agent_cert_load(AgentCert *c, const char *state_dir);
/* Only the live generation (serial, validity), after a job. */
int agent_cert_load_certificate(AgentCert *c, const char *state_dir);

/* Recomputes c->state from what is known (running, failures, validity at now). Returns true if
 * it changed. */
bool agent_cert_update_state(AgentCert *c, cf_time_t now);

/* The earliest time something must be done for this certificate (enroll, renew, poll ARI,
 * redeploy); CF_TIME_INVALID if nothing is ever due (cannot happen for a loaded certificate). */
cf_time_t agent_cert_next_wakeup(const AgentCert *c);
/* When the next enrollment will be attempted (the NextRenewal property). */
cf_time_t agent_cert_next_renewal(const AgentCert *c);
