/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent-acme.h"
#include "agent/agent-challenge.h"
#include "agent/agent-deploy.h"
#include "agent/agent-job.h"
#include "agent/agent-messages.h"
#include "agent/agent-schedule.h"
#include "shared/cert.h"
#include "shared/key.h"
#include "shared/log.h"
#include "shared/pem.h"
#include "shared/random-util.h"

#define NO_ARI_POLL_INTERVAL (24 * 60 * 60)   /* re-read the directory daily in case ARI appears */

int agent_job_new(CertConfig *config, const char *state_dir, const AgentSchedule *schedule, AgentJob **ret) {
        _cleanup_(agent_job_freep) AgentJob *j = NULL;
        int r;

        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        agent_schedule_init(&j->schedule);
        agent_schedule_init(&j->new_schedule);
        j->now = CF_TIME_INVALID;
        j->config = cert_config_ref(config);
        j->state_dir = strdup(state_dir);
        if (!j->state_dir)
                return -ENOMEM;
        r = agent_schedule_copy(schedule, &j->schedule);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(j);
        return 0;
}

AgentJob *agent_job_free(AgentJob *j) {
        if (!j)
                return NULL;
        cert_config_unref(j->config);
        free(j->state_dir);
        agent_schedule_done(&j->schedule);
        agent_schedule_done(&j->new_schedule);
        free(j->error);
        free(j);
        return NULL;
}

static uint64_t random_u64(void) {
        uint64_t v = 0;
        if (random_bytes(&v, sizeof v) < 0)
                v = (uint64_t) time_now();
        return v;
}

static int job_fail(AgentJob *j, int r, const char *format, ...) _printf_(3, 4);
static int job_fail(AgentJob *j, int r, const char *format, ...) {
        va_list ap;

        free(j->error);
        va_start(ap, format);
        if (vasprintf(&j->error, format, ap) < 0)
                j->error = NULL;
        va_end(ap);
        j->result = r < 0 ? r : -EIO;
        return j->result;
}

bool agent_job_renewal_due(const AgentSchedule *s, cf_time_t not_before, cf_time_t not_after, cf_time_t now) {
        if (s->backoff_until != CF_TIME_INVALID && now < s->backoff_until)
                return false;
        if (s->renew_requested || not_after == CF_TIME_INVALID)
                return true;
        if (now >= schedule_deadline(not_before, not_after))
                return true;
        return s->next_renewal != CF_TIME_INVALID && now >= s->next_renewal;
}

static int set_string(char **field, const char *value) {
        char *v = NULL;

        if (value && !(v = strdup(value)))
                return -ENOMEM;
        free(*field);
        *field = v;
        return 0;
}

static int make_acme_client(AgentJob *j, AcmeClient **ret) {
        const CertConfig *c = j->config;
        SecretBuf eab = {};
        AcmeClientOptions o = {
                .directory_url = c->server,
                .ca_bundle = c->ca_bundle,
                .state_dir = j->state_dir,
                .email = c->email,
        };
        int r;

        if (c->eab_kid) {
                r = agent_config_read_secret(c->eab_key, &eab);
                if (r < 0)
                        return job_fail(j, r, "cannot read the EAB key '%s': %s%s", c->eab_key, strerror(-r),
                                        r == -ENOKEY ? " ($CREDENTIALS_DIRECTORY is not set)" : "");
                o.eab_kid = c->eab_kid;
                o.eab_key = eab.data;
                o.eab_key_size = eab.size;
        }
        r = acme_client_new(&o, ret);
        secret_buf_done(&eab);
        if (r < 0)
                return job_fail(j, r, "cannot set up the ACME client: %s", strerror(-r));
        return 0;
}

/* Refreshes the schedule for the current certificate: the ARI window if the server has one (only
 * when the poll time has come), else the 2/3-lifetime fallback. */
static void refresh_schedule(AgentJob *j, AcmeClient *acme, AgentLive *live, CertInfo *info, cf_time_t now) {
        AgentSchedule *s = &j->new_schedule;
        bool serial_changed = !s->serial || !info || strcmp(s->serial, info->serial_hex) != 0;
        int r;

        if (!info)
                return;
        if (serial_changed) {
                /* The stored certificate replaced the one this schedule knew: a renewal committed
                 * it and the process died before recording that. The request is fulfilled. */
                if (s->serial && s->renew_requested) {
                        s->renew_requested = false;
                        s->force = false;
                        s->failures = 0;
                        s->backoff_until = CF_TIME_INVALID;
                        (void) set_string(&s->last_error, NULL);
                }
                /* A schedule for another certificate is meaningless: start over. */
                (void) set_string(&s->serial, info->serial_hex);
                s->ari = false;
                s->chosen = CF_TIME_INVALID;
                s->next_ari_poll = CF_TIME_INVALID;
                s->window_start = s->window_end = CF_TIME_INVALID;
        }

        if (s->next_ari_poll == CF_TIME_INVALID || now >= s->next_ari_poll) {
                r = acme_client_load_directory(acme);
                if (r >= 0 && acme_client_has_ari(acme)) {
                        AriRenewalInfo ari = {};
                        int64_t retry_after = -1;

                        r = acme_client_renewal_info(acme, live->cert, &ari, &retry_after);
                        if (r >= 0) {
                                s->ari = true;
                                s->window_start = ari.window_start;
                                s->window_end = ari.window_end;
                                (void) set_string(&s->explanation_url, ari.explanation_url);
                                s->chosen = schedule_ari_pick(ari.window_start, ari.window_end, s->chosen,
                                                              now, random_u64());
                                s->next_ari_poll = schedule_ari_next_poll(retry_after, now);
                                ari_renewal_info_done(&ari);
                        } else {
                                log_event(LOG_WARNING, AGENT_MESSAGE_SCHEDULE, j->config->name,
                                          "Fetching renewalInfo failed, keeping the previous schedule: %s",
                                          acme_client_error(acme));
                                s->next_ari_poll = now + schedule_backoff(3, random_u64());
                        }
                } else {
                        if (r < 0)
                                log_event(LOG_WARNING, AGENT_MESSAGE_SCHEDULE, j->config->name,
                                          "Cannot read the ACME directory for the schedule: %s",
                                          acme_client_error(acme));
                        s->ari = false;
                        s->next_ari_poll = now + (r < 0 ? schedule_backoff(3, random_u64()) : NO_ARI_POLL_INTERVAL);
                }
        }

        if (!s->ari) {
                if (s->chosen == CF_TIME_INVALID || serial_changed)
                        s->chosen = schedule_fallback(info->not_before, info->not_after, random_u64());
                s->window_start = s->chosen;
                s->window_end = schedule_deadline(info->not_before, info->not_after);
                if (s->window_end < s->window_start)
                        s->window_end = s->window_start;
        }
        s->next_renewal = schedule_next_renewal(s->chosen, info->not_before, info->not_after);
}

static int deploy_live(AgentJob *j, AgentLive *live, const char *serial) {
        _cleanup_free_ char *live_dir = NULL, *error = NULL;
        AgentDeployInput in = {
                .cert_pem = live->cert_pem,
                .chain_pem = live->chain_pem,
                .key_pem = live->key_pem,
        };
        int r;

        if (asprintf(&live_dir, "%s/%s/live", j->state_dir, j->config->name) < 0)
                return job_fail(j, -ENOMEM, "out of memory");
        in.live_dir = live_dir;
        r = agent_deploy(j->config, &in, &error);
        if (r < 0)
                return job_fail(j, r, "deployment failed: %s", error ?: strerror(-r));
        (void) set_string(&j->new_schedule.deployed_serial, serial);
        j->deployed = true;
        log_event(LOG_INFO, AGENT_MESSAGE_DEPLOYED, j->config->name,
                  "Deployed certificate %s", serial);
        return 0;
}

static int enroll(AgentJob *j, AcmeClient *acme, AgentLive *live, bool have_live) {
        _cleanup_(agent_challenge_solver_freep) AgentChallengeSolver *solver = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *cert_pem = NULL, *chain_pem = NULL, *key_pem = NULL;
        AcmeIssueRequest req = {};
        int r;

        if (j->config->reuse_key && have_live) {
                key = live->key;
                EVP_PKEY_up_ref(key);
        } else {
                r = key_generate(j->config->key_type, &key);
                if (r < 0)
                        return job_fail(j, r, "cannot generate a %s key", key_type_to_string(j->config->key_type));
        }

        r = agent_challenge_solver_new(j->config, &solver);
        if (r < 0)
                return job_fail(j, r, "cannot start the %s responder: %s",
                                agent_challenge_type_to_string(j->config->challenge), strerror(-r));

        req = (AcmeIssueRequest) {
                .names = j->config->names,
                .key = key,
                .replaces = have_live ? live->cert : NULL,
                .solver = solver,
                .profile = j->config->profile,
        };
        r = acme_client_issue(acme, &req, &cert_pem, &chain_pem);
        if (r < 0)
                return job_fail(j, r, "%s", acme_client_error(acme));

        r = pem_write_private_key(key, &key_pem);
        if (r < 0)
                return job_fail(j, r, "cannot encode the key");
        r = agent_state_commit(j->state_dir, j->config->name, cert_pem, chain_pem, key_pem);
        explicit_bzero(key_pem, strlen(key_pem));
        if (r < 0)
                return job_fail(j, r, "cannot store the new certificate: %s", strerror(-r));
        j->issued = true;
        return 0;
}

void agent_job_run(void *userdata) {
        AgentJob *j = userdata;
        _cleanup_(acme_client_freep) AcmeClient *acme = NULL;
        _cleanup_(cert_info_freep) CertInfo *info = NULL;
        AgentSchedule *s = &j->new_schedule;
        AgentLive live = {};
        bool have_live;
        cf_time_t now = j->now != CF_TIME_INVALID ? j->now : time_now();
        int r;

        j->result = 0;
        if (agent_schedule_copy(&j->schedule, s) < 0) {
                job_fail(j, -ENOMEM, "out of memory");
                return;
        }
        r = agent_state_ensure_dir(j->state_dir, j->config->name);
        if (r < 0) {
                job_fail(j, r, "cannot create the state directory: %s", strerror(-r));
                return;
        }

        r = agent_state_load_live(j->state_dir, j->config->name, &live);
        have_live = r >= 0;
        if (r < 0 && r != -ENOENT)
                log_event_errno(LOG_WARNING, r, AGENT_MESSAGE_STATE_BROKEN, j->config->name,
                                "The stored certificate is unusable, enrolling anew: %m");
        if (have_live && cert_inspect(live.cert, &info) < 0)
                info = NULL;

        /* 1. The deploy targets must hold the stored certificate (a crash may have interrupted the
         *    last deployment). */
        if (have_live && info && (!s->deployed_serial || strcmp(s->deployed_serial, info->serial_hex) != 0))
                if (deploy_live(j, &live, info->serial_hex) < 0)
                        goto finish;

        if (make_acme_client(j, &acme) < 0)
                goto finish;

        /* 2. Schedule. */
        refresh_schedule(j, acme, &live, info, now);

        /* 3. Enroll if due. */
        if (!agent_job_renewal_due(s, info ? info->not_before : CF_TIME_INVALID,
                                   info ? info->not_after : CF_TIME_INVALID, now))
                goto finish;

        j->attempted = true;
        s->last_attempt = now;
        s->renew_requested = true;     /* persisted below: a crash from here on resumes the renewal */
        (void) agent_state_save_schedule(j->state_dir, j->config->name, s);
        log_event(LOG_INFO, AGENT_MESSAGE_RENEWAL_STARTED, j->config->name,
                  "%s certificate for %s", have_live ? "Renewing" : "Enrolling", j->config->names[0]);

        if (enroll(j, acme, &live, have_live) < 0)
                goto finish;

        agent_live_done(&live);
        info = cert_info_free(info);
        r = agent_state_load_live(j->state_dir, j->config->name, &live);
        if (r < 0) {
                job_fail(j, r, "cannot read back the new certificate: %s", strerror(-r));
                goto finish;
        }
        have_live = true;
        r = cert_inspect(live.cert, &info);
        if (r < 0) {
                job_fail(j, r, "cannot inspect the new certificate");
                goto finish;
        }
        s->renew_requested = false;
        s->force = false;
        s->failures = 0;
        s->backoff_until = CF_TIME_INVALID;
        s->last_success = now;
        (void) set_string(&s->last_error, NULL);
        log_event(LOG_NOTICE, AGENT_MESSAGE_ISSUED, j->config->name,
                  "Issued certificate %s for %s, valid until %s", info->serial_hex, j->config->names[0],
                  time_format_rfc3339(info->not_after, (char[CF_RFC3339_MAX]) {}));
        /* Persist the new serial before deploying so a crash during deployment redeploys. */
        refresh_schedule(j, acme, &live, info, now);
        (void) agent_state_save_schedule(j->state_dir, j->config->name, s);

        (void) deploy_live(j, &live, info->serial_hex);

finish:
        if (j->result < 0) {
                s->failures++;
                s->backoff_until = now + schedule_backoff(s->failures, random_u64());
                (void) set_string(&s->last_error, j->error ?: strerror(-j->result));
                if (j->attempted || !have_live)
                        s->next_renewal = s->backoff_until;
                log_event_errno(LOG_ERR, j->result, AGENT_MESSAGE_FAILED, j->config->name,
                                "%s (attempt %u, next try after %s)", j->error ?: "failed", s->failures,
                                time_format_rfc3339(s->backoff_until, (char[CF_RFC3339_MAX]) {}));
        } else if (j->deployed && s->failures > 0) {
                /* A deployment is only redone when the previous one failed after the certificate
                 * was stored; now that it went through, that failure is resolved. */
                s->failures = 0;
                s->backoff_until = CF_TIME_INVALID;
                (void) set_string(&s->last_error, NULL);
        }
        r = agent_state_save_schedule(j->state_dir, j->config->name, s);
        if (r < 0)
                log_event_errno(LOG_ERR, r, AGENT_MESSAGE_STATE_BROKEN, j->config->name, "Cannot save the schedule: %m");
        agent_live_done(&live);
}
