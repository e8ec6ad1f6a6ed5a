/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Persisted state, under StateDirectory (default /var/lib/certfleet/agent):
 *
 *   NAME/live -> gen-SERIAL          symlink, replaced atomically (rename) after a new generation
 *   NAME/gen-SERIAL/key.pem (0600), cert.pem, chain.pem, fullchain.pem
 *   NAME/schedule.json               AgentSchedule
 *   accounts/ID/key.pem, account.json  one ACME account per directory URL (ID = SHA-256 prefix)
 *
 * A generation directory is complete (all files fsync'ed) before "live" points to it, so a crash
 * at any moment leaves "live" on a whole, matching key and certificate. The previous generation
 * is kept as a fallback until the next one is committed. */

#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "shared/macro.h"
#include "shared/time-util.h"

typedef struct AgentSchedule {
        char *serial;                  /* certificate the schedule was computed for; NULL: none */
        bool ari;                      /* window from renewalInfo (else the 2/3-lifetime fallback) */
        cf_time_t window_start;
        cf_time_t window_end;
        char *explanation_url;
        cf_time_t chosen;              /* the random point picked in the window */
        cf_time_t next_renewal;
        cf_time_t next_ari_poll;
        cf_time_t last_attempt;
        cf_time_t last_success;
        char *last_error;
        unsigned failures;
        cf_time_t backoff_until;       /* after a failure: no new attempt before this */
        bool renew_requested;          /* a renewal was asked for and has not finished (survives crashes) */
        bool force;                    /* … and it was forced */
        char *deployed_serial;         /* what the deploy targets hold, per the last successful deploy */
} AgentSchedule;

void agent_schedule_init(AgentSchedule *s);
void agent_schedule_done(AgentSchedule *s);
int agent_schedule_copy(const AgentSchedule *s, AgentSchedule *ret);

/* The current generation, as PEM text and parsed. */
typedef struct AgentLive {
        char *cert_pem;
        char *chain_pem;               /* "" if the CA sent no intermediates */
        char *key_pem;
        X509 *cert;
        EVP_PKEY *key;
} AgentLive;

void agent_live_done(AgentLive *l);

/* Creates STATE/NAME (0700) if needed. */
int agent_state_ensure_dir(const char *state_dir, const char *name);
/* -ENOENT if nothing was ever issued. A generation whose key does not match its certificate:
 * -EBADMSG. */
int agent_state_load_live(const char *state_dir, const char *name, AgentLive *ret);
/* Writes a new generation and switches "live" to it; older generations except the one replaced
 * are removed. */
int agent_state_commit(const char *state_dir, const char *name,
                       const char *cert_pem, const char *chain_pem, const char *key_pem);

/* A missing schedule.json gives an initialised schedule and returns 0. */
int agent_state_load_schedule(const char *state_dir, const char *name, AgentSchedule *ret);
int agent_state_save_schedule(const char *state_dir, const char *name, const AgentSchedule *s);

/* ACME account for a directory URL. -ENOENT if none yet. *ret_url may be NULL if the key exists
 * but registration never completed. */
int agent_state_load_account(const char *state_dir, const char *directory_url,
                             EVP_PKEY **ret_key, char **ret_url);
int agent_state_save_account_key(const char *state_dir, const char *directory_url, EVP_PKEY *key);
int agent_state_save_account_url(const char *state_dir, const char *directory_url, const char *url);
