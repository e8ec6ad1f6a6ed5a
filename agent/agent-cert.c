/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent-cert.h"
#include "agent/agent-messages.h"
#include "shared/cert.h"
#include "shared/log.h"

static const char *const state_names[_AGENT_CERT_STATE_MAX] = {
        [AGENT_CERT_NEW] = "new",
        [AGENT_CERT_ENROLLING] = "enrolling",
        [AGENT_CERT_VALID] = "valid",
        [AGENT_CERT_RENEWING] = "renewing",
        [AGENT_CERT_FAILED] = "failed",
        [AGENT_CERT_EXPIRED] = "expired",
};

const char *agent_cert_state_to_string(AgentCertState s) {
        if (s < 0 || s >= _AGENT_CERT_STATE_MAX)
                return NULL;
        return state_names[s];
}

int agent_cert_new(CertConfig *config, AgentCert **ret) {
        AgentCert *c = calloc(1, sizeof *c);

        if (!c)
                return -ENOMEM;
        c->config = cert_config_ref(config);
        agent_schedule_init(&c->schedule);
        c->not_before = c->not_after = CF_TIME_INVALID;
        c->last_job_end = CF_TIME_INVALID;
        c->state = AGENT_CERT_NEW;
        *ret = c;
        return 0;
}

AgentCert *agent_cert_free(AgentCert *c) {
        if (!c)
                return NULL;
        cert_config_unref(c->config);
        agent_schedule_done(&c->schedule);
        free(c->serial);
        free(c->issuer);
        free(c);
        return NULL;
}

int agent_cert_load(AgentCert *c, const char *state_dir) {
        AgentSchedule s;
        int r;

        r = agent_state_load_schedule(state_dir, c->config->name, &s);
        if (r < 0) {
                log_event_errno(LOG_WARNING, r, AGENT_MESSAGE_STATE_BROKEN, c->config->name,
                                "Ignoring unreadable schedule.json: %m");
                agent_schedule_init(&s);
        }
        agent_schedule_done(&c->schedule);
        c->schedule = s;

        return agent_cert_load_certificate(c, state_dir);
}

int agent_cert_load_certificate(AgentCert *c, const char *state_dir) {
        _cleanup_(cert_info_freep) CertInfo *info = NULL;
        AgentLive live = {};
        int r;

        free(c->serial);
        free(c->issuer);
        c->serial = c->issuer = NULL;
        c->not_before = c->not_after = CF_TIME_INVALID;

        r = agent_state_load_live(state_dir, c->config->name, &live);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                log_event_errno(LOG_WARNING, r, AGENT_MESSAGE_STATE_BROKEN, c->config->name,
                                "Stored certificate is unusable: %m");
                return 0;
        }
        r = cert_inspect(live.cert, &info);
        agent_live_done(&live);
        if (r < 0)
                return r;
        c->serial = TAKE_PTR(info->serial_hex);
        c->issuer = TAKE_PTR(info->issuer);
        c->not_before = info->not_before;
        c->not_after = info->not_after;
        return 0;
}

bool agent_cert_update_state(AgentCert *c, cf_time_t now) {
        AgentCertState s;

        if (c->running)
                s = c->serial ? AGENT_CERT_RENEWING : AGENT_CERT_ENROLLING;
        else if (c->serial && c->not_after != CF_TIME_INVALID && now >= c->not_after)
                s = AGENT_CERT_EXPIRED;
        else if (c->schedule.failures > 0)
                s = AGENT_CERT_FAILED;
        else if (c->serial)
                s = AGENT_CERT_VALID;
        else
                s = AGENT_CERT_NEW;

        if (s == c->state)
                return false;
        if (s == AGENT_CERT_EXPIRED)
                log_event(LOG_ERR, AGENT_MESSAGE_EXPIRED, c->config->name, "Certificate %s has expired", c->serial);
        c->state = s;
        return true;
}

static cf_time_t min_time(cf_time_t a, cf_time_t b) {
        if (a == CF_TIME_INVALID)
                return b;
        if (b == CF_TIME_INVALID)
                return a;
        return a < b ? a : b;
}

static cf_time_t max_time(cf_time_t a, cf_time_t b) {
        if (a == CF_TIME_INVALID)
                return b;
        if (b == CF_TIME_INVALID)
                return a;
        return a > b ? a : b;
}

cf_time_t agent_cert_next_wakeup(const AgentCert *c) {
        const AgentSchedule *s = &c->schedule;
        cf_time_t t;

        /* Nothing yet, a requested renewal, a schedule for another certificate or a deployment that
         * did not complete: act now, but never before the backoff after a failure ends. */
        if (!c->serial || s->renew_requested || !s->serial || strcmp(s->serial, c->serial) != 0 ||
            !s->deployed_serial || strcmp(s->deployed_serial, c->serial) != 0)
                t = 0;
        else
                t = min_time(s->next_renewal, s->next_ari_poll);
        if (t == CF_TIME_INVALID)
                t = 0;
        return max_time(t, s->backoff_until);
}

cf_time_t agent_cert_next_renewal(const AgentCert *c) {
        const AgentSchedule *s = &c->schedule;
        cf_time_t t;

        if (!c->serial || s->renew_requested)
                t = 0;
        else
                t = s->next_renewal;
        if (t == CF_TIME_INVALID)
                return CF_TIME_INVALID;
        return max_time(t, s->backoff_until);
}
