/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The agent's core as the bus layer (agent-bus*.c) and agent-main.c see it.
 *
 * An AgentManager owns the tracked certificates (one per agent.d/NAME.conf), their persisted
 * state, the renewal timer and the single enrollment worker. Everything here runs on the sd-event
 * loop's thread; enrollments run on a worker thread and report back through the loop, so no call
 * below blocks on the network. */

#include <stdbool.h>
#include <stddef.h>

#include <systemd/sd-event.h>

#include "shared/macro.h"
#include "shared/time-util.h"

typedef struct AgentManager AgentManager;
typedef struct AgentCert AgentCert;

#define AGENT_CONFIG_DIR_DEFAULT "/etc/certfleet"
#define AGENT_STATE_DIR_DEFAULT "/var/lib/certfleet/agent"

/* Lifecycle of a tracked certificate (the D-Bus "State" property uses these strings):
 * new (never issued), enrolling (a job runs and there is no certificate yet), valid, renewing (a
 * job runs for it; it may end without a new certificate when the ARI check finds nothing due),
 * failed (the last attempt failed; a previous certificate may still be valid), expired (past
 * notAfter). Every job start and end is reported as AGENT_CHANGE_PROPERTIES. */
typedef enum AgentCertState {
        AGENT_CERT_NEW,
        AGENT_CERT_ENROLLING,
        AGENT_CERT_VALID,
        AGENT_CERT_RENEWING,
        AGENT_CERT_FAILED,
        AGENT_CERT_EXPIRED,
        _AGENT_CERT_STATE_MAX,
} AgentCertState;

const char *agent_cert_state_to_string(AgentCertState s);

/* What changed, for the bus layer's PropertiesChanged and signals. */
typedef enum AgentChange {
        AGENT_CHANGE_ADDED,        /* a certificate appeared (startup or reload): export it */
        AGENT_CHANGE_REMOVED,      /* about to disappear (reload): unexport; cert valid during the call */
        AGENT_CHANGE_PROPERTIES,   /* some property changed: emit PropertiesChanged */
        AGENT_CHANGE_RENEWED,      /* a new certificate was issued and deployed (signal) */
        AGENT_CHANGE_FAILED,       /* an enrollment or deployment failed (signal; see last_error) */
} AgentChange;

typedef void (*AgentChangeCallback)(AgentManager *m, AgentCert *c, AgentChange change, void *userdata);

/* A snapshot of one certificate's public state; strings borrowed from the manager and valid until
 * the next return to the event loop. Times are CF_TIME_INVALID when unknown. */
typedef struct AgentCertInfo {
        const char *name;              /* NAME of agent.d/NAME.conf */
        AgentCertState state;
        const char *protocol;          /* "acme" */
        const char *server;            /* directory URL */
        char *const *names;            /* configured identifiers (strv) */
        const char *serial;            /* hex serial of the current certificate, NULL if none */
        cf_time_t not_before;
        cf_time_t not_after;
        cf_time_t renewal_window_start; /* ARI suggested window, or the fallback window */
        cf_time_t renewal_window_end;
        cf_time_t next_renewal;        /* 0: as soon as possible (never issued, or requested) */
        cf_time_t last_attempt;
        cf_time_t last_success;
        const char *last_error;        /* "" if none */
        unsigned failures;             /* consecutive failures */
        bool ari;                      /* the schedule comes from the server's renewalInfo */
        const char *issuer;            /* RFC 2253 issuer of the current certificate, NULL if none */
        bool pending;                  /* queued for the worker or its job is running */
} AgentCertInfo;

typedef struct AgentManagerOptions {
        const char *config_dir;        /* holds agent.conf and agent.d/; NULL: AGENT_CONFIG_DIR_DEFAULT */
        const char *state_dir;         /* overrides agent.conf's StateDirectory= if non-NULL */
        bool no_timer;                 /* --once: only what is asked for runs, no renewal timer */
} AgentManagerOptions;

int agent_manager_new(sd_event *event, const AgentManagerOptions *options, AgentManager **ret);
AgentManager *agent_manager_free(AgentManager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentManager *, agent_manager_free);

/* Reads agent.conf and agent.d/, loads the persisted state and arms the timer. */
int agent_manager_load(AgentManager *m);
/* Rereads the configuration (SIGHUP, Reload()). Certificates whose file disappeared are dropped
 * (REMOVED), new ones added (ADDED); a running enrollment finishes with the config it started with.
 * A broken file is logged and skipped; the others still load. */
int agent_manager_reload(AgentManager *m);

/* Queues every certificate whose renewal is due (or that was never issued). Returns the number
 * queued. */
int agent_manager_renew_due(AgentManager *m);
/* Queues one certificate by name. force: renew even if not due (the request is persisted first, so
 * it survives a crash). Without force the job refreshes the schedule (ARI) and renews only if
 * due. -ENOENT for an unknown name, -EBUSY if it is already queued or running (not an error for
 * callers that only want it done). */
int agent_manager_renew(AgentManager *m, const char *name, bool force);

/* true while an enrollment is queued or running. */
bool agent_manager_busy(AgentManager *m);

/* Certificates in name order. The array is owned by the manager and valid until the next
 * reload; n_ret may be NULL. */
AgentCert *const *agent_manager_get_certs(AgentManager *m, size_t *ret_n);
AgentCert *agent_manager_find_cert(AgentManager *m, const char *name);
int agent_cert_get_info(AgentCert *c, AgentCertInfo *ret);
const char *agent_cert_get_name(AgentCert *c);

/* One callback (the bus layer's); NULL unregisters. */
void agent_manager_set_change_callback(AgentManager *m, AgentChangeCallback cb, void *userdata);

/* For --once: called after every finished job when nothing is queued or running any more.
 * failed is true if any job since the last call failed. */
typedef void (*AgentIdleCallback)(AgentManager *m, bool failed, void *userdata);
void agent_manager_set_idle_callback(AgentManager *m, AgentIdleCallback cb, void *userdata);

/* A one-line status for sd_notify STATUS= ("3 certificates, 1 renewing, next renewal …"). */
int agent_manager_status_line(AgentManager *m, char **ret);
