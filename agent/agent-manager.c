/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <systemd/sd-daemon.h>

#include "agent/agent-cert.h"
#include "agent/agent-config.h"
#include "agent/agent-job.h"
#include "agent/agent-manager.h"
#include "agent/agent-messages.h"
#include "agent/agent-state.h"
#include "agent/agent-worker.h"
#include "shared/fileio.h"
#include "shared/log.h"
#include "shared/strv.h"

/* After a job, the same certificate is not looked at again sooner than this, whatever its
 * schedule says: a schedule that is always due must not spin. */
#define AGENT_RESCHEDULE_MIN 60

struct AgentManager {
        sd_event *event;
        char *config_dir;
        char *state_dir_override;
        bool no_timer;
        AgentConfig *config;

        AgentCert **certs;            /* sorted by name */
        size_t n_certs;

        char **queue;                 /* names waiting for the worker, FIFO */
        AgentWorker *worker;
        AgentJob *job;                /* the running job */
        AgentCert *job_cert;          /* NULL if its certificate disappeared in a reload */

        sd_event_source *timer;
        bool failed_since_idle;

        AgentChangeCallback change_cb;
        void *change_userdata;
        AgentIdleCallback idle_cb;
        void *idle_userdata;
};

static const char *state_dir(AgentManager *m) {
        return m->state_dir_override ?: m->config->state_directory;
}

/* The state directory holds private keys and ACME account keys: 0700 even if it already existed
 * wider (created by hand or by an older package), since mkdir() leaves an existing one alone. */
static void tighten_state_dir(const char *path) {
        struct stat st;

        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 077) == 0)
                return;
        if (chmod(path, st.st_mode & 0700) < 0)
                log_warning_errno(-errno, "The state directory %s is accessible to others and cannot be restricted: %m", path);
        else
                log_warning("The state directory %s was accessible to others (mode %04o); made it 0700.",
                            path, (unsigned) (st.st_mode & 07777));
}

static void notify_change(AgentManager *m, AgentCert *c, AgentChange change) {
        if (m->change_cb)
                m->change_cb(m, c, change, m->change_userdata);
}

static void update_status(AgentManager *m) {
        _cleanup_free_ char *line = NULL, *status = NULL;

        if (agent_manager_status_line(m, &line) < 0)
                return;
        if (asprintf(&status, "STATUS=%s", line) < 0)
                return;
        (void) sd_notify(0, status);
}

static void refresh_state(AgentManager *m, AgentCert *c) {
        if (agent_cert_update_state(c, time_now()))
                notify_change(m, c, AGENT_CHANGE_PROPERTIES);
}

static int arm_timer(AgentManager *m);
static void start_next(AgentManager *m);
static void check_idle(AgentManager *m);

static cf_time_t effective_wakeup(const AgentCert *c) {
        cf_time_t t = agent_cert_next_wakeup(c);

        if (c->last_job_end != CF_TIME_INVALID && t < c->last_job_end + AGENT_RESCHEDULE_MIN)
                t = c->last_job_end + AGENT_RESCHEDULE_MIN;
        return t;
}

int agent_manager_new(sd_event *event, const AgentManagerOptions *options, AgentManager **ret) {
        _cleanup_(agent_manager_freep) AgentManager *m = NULL;
        int r;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(event);
        m->config_dir = strdup(options && options->config_dir ? options->config_dir : AGENT_CONFIG_DIR_DEFAULT);
        if (!m->config_dir)
                return -ENOMEM;
        if (options && options->state_dir && !(m->state_dir_override = strdup(options->state_dir)))
                return -ENOMEM;
        m->no_timer = options && options->no_timer;
        r = agent_worker_new(event, &m->worker);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

AgentManager *agent_manager_free(AgentManager *m) {
        if (!m)
                return NULL;
        sd_event_source_disable_unref(m->timer);
        if (m->worker && agent_worker_busy(m->worker))
                /* The worker thread still uses the job: leave it to the exiting process. */
                m->job = NULL;
        agent_worker_free(m->worker);
        agent_job_free(m->job);
        for (size_t i = 0; i < m->n_certs; i++)
                agent_cert_free(m->certs[i]);
        free(m->certs);
        strv_free(m->queue);
        agent_config_free(m->config);
        free(m->config_dir);
        free(m->state_dir_override);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

static int cmp_cert(const void *a, const void *b) {
        const AgentCert *x = *(AgentCert *const *) a, *y = *(AgentCert *const *) b;
        return strcmp(x->config->name, y->config->name);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Loads every agent.d/NAME.conf; a broken file is logged and skipped. */
static int load_cert_configs(AgentManager *m, CertConfig ***ret, size_t *ret_n) {
        _cleanup_free_ char *dir_path = NULL;
        _cleanup_(strv_freep) char **files = NULL;
        CertConfig **configs = NULL;
        size_t n = 0;
        struct dirent *de;
        DIR *d;
        int r;

        if (asprintf(&dir_path, "%s/agent.d", m->config_dir) < 0)
                return -ENOMEM;
        d = opendir(dir_path);
        if (!d) {
                if (errno != ENOENT)
                        return log_error_errno(-errno, "Cannot open %s: %m", dir_path);
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".conf") != 0)
                        continue;
                if (strv_length(files) >= AGENT_CERTS_MAX) {
                        log_warning("More than %d files in %s, ignoring the rest", AGENT_CERTS_MAX, dir_path);
                        break;
                }
                r = strv_extend(&files, de->d_name);
                if (r < 0) {
                        closedir(d);
                        return r;
                }
        }
        closedir(d);
        if (files)
                qsort(files, strv_length(files), sizeof(char *), cmp_str);

        configs = calloc(strv_length(files) + 1, sizeof *configs);
        if (!configs)
                return -ENOMEM;
        for (char **f = files; f && *f; f++) {
                _cleanup_free_ char *path = NULL, *error = NULL, *name = NULL;
                CertConfig *c = NULL;

                if (asprintf(&path, "%s/%s", dir_path, *f) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = cert_config_load(path, m->config, &c, &error);
                if (r == -ENOMEM)
                        goto fail;
                if (r < 0) {
                        /* The file name is the certificate's name even when its contents are broken,
                         * so `journalctl CERTIFICATE=NAME` shows why NAME is not tracked. */
                        name = strndup(*f, strlen(*f) - strlen(".conf"));
                        log_event_errno(LOG_ERR, r, AGENT_MESSAGE_CONFIG,
                                        name && agent_cert_name_is_valid(name) ? name : NULL,
                                        "Ignoring %s: %s", path, error ?: "invalid");
                        continue;
                }
                configs[n++] = c;
        }
        *ret = configs;
        *ret_n = n;
        return 0;
fail:
        for (size_t i = 0; i < n; i++)
                cert_config_unref(configs[i]);
        free(configs);
        return r;
}

static AgentCert *find_in(AgentCert **certs, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(certs[i]->config->name, name) == 0)
                        return certs[i];
        return NULL;
}

static int load_all(AgentManager *m) {
        _cleanup_(agent_config_freep) AgentConfig *config = NULL;
        _cleanup_free_ char *conf_path = NULL, *error = NULL;
        _cleanup_free_ bool *is_new = NULL;
        CertConfig **configs = NULL;
        AgentCert **certs = NULL;
        AgentConfig *old_config;
        size_t n = 0, n_certs = 0;
        int r;

        if (asprintf(&conf_path, "%s/agent.conf", m->config_dir) < 0)
                return -ENOMEM;
        r = agent_config_load(conf_path, &config, &error);
        if (r < 0)
                return log_event_errno(LOG_ERR, r, AGENT_MESSAGE_CONFIG, NULL, "%s", error ?: conf_path);

        old_config = m->config;
        m->config = TAKE_PTR(config);
        r = load_cert_configs(m, &configs, &n);
        if (r < 0) {
                config = m->config;
                m->config = old_config;
                return r;
        }
        config = old_config;   /* the previous one is freed on return */

        r = mkdir_p(state_dir(m), 0700);
        if (r < 0)
                log_error_errno(r, "Cannot create the state directory %s: %m", state_dir(m));
        else
                tighten_state_dir(state_dir(m));

        certs = calloc(n + 1, sizeof *certs);
        is_new = calloc(n + 1, sizeof *is_new);
        if (!certs || !is_new) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t i = 0; i < n; i++) {
                AgentCert *old = find_in(m->certs, m->n_certs, configs[i]->name), *c;

                if (old) {
                        /* Keep the object (the bus exported it) and swap in the new config; a
                         * running job finishes with the config it started with. */
                        cert_config_unref(old->config);
                        old->config = cert_config_ref(configs[i]);
                        c = old;
                } else {
                        r = agent_cert_new(configs[i], &c);
                        if (r < 0)
                                goto finish;
                        is_new[n_certs] = true;
                }
                if (!c->running)
                        (void) agent_cert_load(c, state_dir(m));
                (void) agent_cert_update_state(c, time_now());
                certs[n_certs++] = c;
        }

        /* Certificates whose file is gone: tell the bus, forget queued work. */
        for (size_t i = 0; i < m->n_certs; i++) {
                AgentCert *c = m->certs[i];
                if (find_in(certs, n_certs, c->config->name))
                        continue;
                notify_change(m, c, AGENT_CHANGE_REMOVED);
                log_event(LOG_INFO, AGENT_MESSAGE_CONFIG, c->config->name, "No longer tracked");
                if (m->job_cert == c)
                        m->job_cert = NULL;
                for (char **q = m->queue; q && *q; q++)
                        if (strcmp(*q, c->config->name) == 0) {
                                free(*q);
                                memmove(q, q + 1, (strv_length(q + 1) + 1) * sizeof *q);
                                break;
                        }
                agent_cert_free(c);
        }
        free(m->certs);
        m->certs = TAKE_PTR(certs);
        m->n_certs = n_certs;
        for (size_t i = 0; i < m->n_certs; i++)
                notify_change(m, m->certs[i], is_new[i] ? AGENT_CHANGE_ADDED : AGENT_CHANGE_PROPERTIES);
        qsort(m->certs, m->n_certs, sizeof *m->certs, cmp_cert);
        r = 0;
finish:
        for (size_t i = 0; i < n; i++)
                cert_config_unref(configs[i]);
        free(configs);
        if (certs) {
                /* Failure half-way: drop only the objects created here. */
                for (size_t i = 0; i < n_certs; i++)
                        if (is_new[i])
                                agent_cert_free(certs[i]);
                free(certs);
        }
        return r;
}

int agent_manager_load(AgentManager *m) {
        int r;

        r = load_all(m);
        if (r < 0)
                return r;
        log_info("Tracking %zu certificate%s, state in %s", m->n_certs, m->n_certs == 1 ? "" : "s", state_dir(m));
        (void) arm_timer(m);
        update_status(m);
        return 0;
}

int agent_manager_reload(AgentManager *m) {
        int r;

        r = load_all(m);
        if (r < 0)
                return r;
        log_event(LOG_INFO, AGENT_MESSAGE_CONFIG, NULL, "Configuration reloaded: %zu certificate%s",
                  m->n_certs, m->n_certs == 1 ? "" : "s");
        (void) arm_timer(m);
        update_status(m);
        return 0;
}

AgentCert *agent_manager_find_cert(AgentManager *m, const char *name) {
        return name ? find_in(m->certs, m->n_certs, name) : NULL;
}

AgentCert *const *agent_manager_get_certs(AgentManager *m, size_t *ret_n) {
        if (ret_n)
                *ret_n = m->n_certs;
        return m->certs;
}

const char *agent_cert_get_name(AgentCert *c) {
        return c->config->name;
}

int agent_cert_get_info(AgentCert *c, AgentCertInfo *ret) {
        *ret = (AgentCertInfo) {
                .name = c->config->name,
                .state = c->state,
                .protocol = c->config->protocol,
                .server = c->config->server,
                .names = c->config->names,
                .serial = c->serial,
                .not_before = c->not_before,
                .not_after = c->not_after,
                .renewal_window_start = c->schedule.window_start,
                .renewal_window_end = c->schedule.window_end,
                .next_renewal = agent_cert_next_renewal(c),
                .last_attempt = c->schedule.last_attempt,
                .last_success = c->schedule.last_success,
                .last_error = c->schedule.last_error ?: "",
                .failures = c->schedule.failures,
                .ari = c->schedule.ari,
                .issuer = c->issuer,
                .pending = c->queued || c->running,
        };
        return 0;
}

void agent_manager_set_change_callback(AgentManager *m, AgentChangeCallback cb, void *userdata) {
        m->change_cb = cb;
        m->change_userdata = userdata;
}

void agent_manager_set_idle_callback(AgentManager *m, AgentIdleCallback cb, void *userdata) {
        m->idle_cb = cb;
        m->idle_userdata = userdata;
}

bool agent_manager_busy(AgentManager *m) {
        return agent_worker_busy(m->worker) || strv_length(m->queue) > 0;
}

static int enqueue(AgentManager *m, AgentCert *c) {
        int r;

        if (c->queued || c->running)
                return -EBUSY;
        r = strv_extend(&m->queue, c->config->name);
        if (r < 0)
                return r;
        c->queued = true;
        return 0;
}

static void job_done(void *userdata) {
        AgentManager *m = userdata;
        _cleanup_(agent_job_freep) AgentJob *j = TAKE_PTR(m->job);
        AgentCert *c = TAKE_PTR(m->job_cert);

        if (j->result < 0)
                m->failed_since_idle = true;
        if (c) {
                c->running = false;
                c->last_job_end = time_now();
                agent_schedule_done(&c->schedule);
                c->schedule = j->new_schedule;
                agent_schedule_init(&j->new_schedule);
                /* Pick up the certificate the job committed (or confirm the old one). */
                (void) agent_cert_load_certificate(c, state_dir(m));
                (void) agent_cert_update_state(c, time_now());
                notify_change(m, c, AGENT_CHANGE_PROPERTIES);
                if (j->issued && j->deployed)
                        notify_change(m, c, AGENT_CHANGE_RENEWED);
                if (j->result < 0)
                        notify_change(m, c, AGENT_CHANGE_FAILED);
        }
        update_status(m);
        start_next(m);
}

static void check_idle(AgentManager *m) {
        bool failed;

        if (agent_manager_busy(m))
                return;
        failed = m->failed_since_idle;
        m->failed_since_idle = false;
        (void) arm_timer(m);
        if (m->idle_cb)
                m->idle_cb(m, failed, m->idle_userdata);
}

static void start_next(AgentManager *m) {
        while (!agent_worker_busy(m->worker) && strv_length(m->queue) > 0) {
                _cleanup_free_ char *name = m->queue[0];
                _cleanup_(agent_job_freep) AgentJob *j = NULL;
                AgentCert *c;
                int r;

                memmove(m->queue, m->queue + 1, strv_length(m->queue) * sizeof *m->queue);
                c = find_in(m->certs, m->n_certs, name);
                if (!c)
                        continue;
                c->queued = false;

                r = agent_job_new(c->config, state_dir(m), &c->schedule, &j);
                if (r < 0) {
                        log_event_errno(LOG_ERR, r, AGENT_MESSAGE_FAILED, name, "Cannot start a job: %m");
                        m->failed_since_idle = true;
                        continue;
                }
                m->job = TAKE_PTR(j);
                m->job_cert = c;
                r = agent_worker_submit(m->worker, agent_job_run, m->job, job_done, m);
                if (r < 0) {
                        log_event_errno(LOG_ERR, r, AGENT_MESSAGE_FAILED, name, "Cannot start the worker: %m");
                        m->job = agent_job_free(m->job);
                        m->job_cert = NULL;
                        m->failed_since_idle = true;
                        continue;
                }
                c->running = true;
                refresh_state(m, c);
                update_status(m);
        }
        check_idle(m);
}

/* guard: the timer's view, where a certificate that just had a job waits AGENT_RESCHEDULE_MIN;
 * an explicit request (RenewDue, --once) takes the schedule as it is. */
static int queue_due(AgentManager *m, bool guard) {
        cf_time_t now = time_now();
        int n = 0;

        for (size_t i = 0; i < m->n_certs; i++) {
                AgentCert *c = m->certs[i];
                if ((guard ? effective_wakeup(c) : agent_cert_next_wakeup(c)) > now)
                        continue;
                if (enqueue(m, c) >= 0)
                        n++;
        }
        start_next(m);
        return n;
}

int agent_manager_renew_due(AgentManager *m) {
        return queue_due(m, false);
}

int agent_manager_renew(AgentManager *m, const char *name, bool force) {
        AgentCert *c = agent_manager_find_cert(m, name);
        int r;

        if (!c)
                return -ENOENT;
        if (c->queued || c->running)
                return -EBUSY;
        if (force) {
                /* Persisted first: a crash before the renewal completes resumes it. */
                c->schedule.renew_requested = true;
                c->schedule.force = true;
                c->schedule.backoff_until = CF_TIME_INVALID;
                r = agent_state_save_schedule(state_dir(m), c->config->name, &c->schedule);
                if (r < 0)
                        log_event_errno(LOG_WARNING, r, AGENT_MESSAGE_STATE_BROKEN, c->config->name,
                                        "Cannot save the renewal request: %m");
        }
        r = enqueue(m, c);
        if (r < 0)
                return r;
        start_next(m);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        AgentManager *m = userdata;

        (void) queue_due(m, true);
        if (!agent_manager_busy(m))
                (void) arm_timer(m);
        return 0;
}

static int arm_timer(AgentManager *m) {
        cf_time_t now = time_now(), next = CF_TIME_INVALID;
        uint64_t usec;
        int r;

        if (m->no_timer)
                return 0;
        for (size_t i = 0; i < m->n_certs; i++) {
                cf_time_t t = effective_wakeup(m->certs[i]);
                if (m->certs[i]->queued || m->certs[i]->running)
                        continue;
                if (next == CF_TIME_INVALID || t < next)
                        next = t;
        }
        if (next == CF_TIME_INVALID) {
                if (m->timer)
                        (void) sd_event_source_set_enabled(m->timer, SD_EVENT_OFF);
                return 0;
        }
        /* Never sooner than a short pause, so a certificate that stays due does not spin. */
        if (next < now + 1)
                next = now + 1;
        usec = (uint64_t) next * 1000000ULL;

        if (m->timer) {
                r = sd_event_source_set_time(m->timer, usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->timer, SD_EVENT_ONESHOT);
        } else {
                r = sd_event_add_time(m->event, &m->timer, CLOCK_REALTIME, usec, 1000000, on_timer, m);
                if (r >= 0)
                        (void) sd_event_source_set_description(m->timer, "agent-renewal-timer");
        }
        return r;
}

int agent_manager_status_line(AgentManager *m, char **ret) {
        size_t counts[_AGENT_CERT_STATE_MAX] = {};
        cf_time_t next = CF_TIME_INVALID;
        char buf[CF_RFC3339_MAX];
        char *s;

        for (size_t i = 0; i < m->n_certs; i++) {
                AgentCert *c = m->certs[i];
                counts[c->state]++;
                if (c->schedule.next_renewal != CF_TIME_INVALID &&
                    (next == CF_TIME_INVALID || c->schedule.next_renewal < next))
                        next = c->schedule.next_renewal;
        }
        if (asprintf(&s, "%zu certificate%s: %zu valid, %zu renewing, %zu failed, %zu expired, %zu new%s%s",
                     m->n_certs, m->n_certs == 1 ? "" : "s",
                     counts[AGENT_CERT_VALID], counts[AGENT_CERT_RENEWING] + counts[AGENT_CERT_ENROLLING],
                     counts[AGENT_CERT_FAILED], counts[AGENT_CERT_EXPIRED], counts[AGENT_CERT_NEW],
                     next != CF_TIME_INVALID ? "; next renewal " : "",
                     next != CF_TIME_INVALID ? time_format_rfc3339(next, buf) : "") < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}
