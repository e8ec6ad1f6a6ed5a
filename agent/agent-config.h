/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* /etc/certfleet/agent.conf and /etc/certfleet/agent.d/NAME.conf (DESIGN §6). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/conf.h"
#include "shared/key.h"
#include "shared/macro.h"

#define AGENT_CERT_NAME_MAX 64
#define AGENT_NAMES_MAX 100            /* identifiers per certificate */
#define AGENT_CERTS_MAX 1024           /* files in agent.d/ */

typedef struct AgentConfig {
        char *state_directory;         /* [Agent] StateDirectory=, default /var/lib/certfleet/agent */
        char *default_server;          /* [Agent] Server=: used where a certificate sets none */
        char *default_ca_bundle;       /* [Agent] CABundle= */
        char *default_email;           /* [Agent] Email= */
} AgentConfig;

typedef enum AgentChallengeType {
        AGENT_CHALLENGE_HTTP01,
        AGENT_CHALLENGE_TLSALPN01,
        AGENT_CHALLENGE_DNS01,
        _AGENT_CHALLENGE_MAX,
        _AGENT_CHALLENGE_INVALID = -EINVAL,
} AgentChallengeType;

const char *agent_challenge_type_to_string(AgentChallengeType t);   /* "http-01" … (ACME names) */
AgentChallengeType agent_challenge_type_from_string(const char *s);

/* One tracked certificate. Shared between the manager and a running job: reference counted and
 * never modified after loading (a reload makes new ones). */
typedef struct CertConfig {
        unsigned n_ref;
        char *name;                    /* file name without .conf */
        char *path;

        /* [Certificate] */
        char *protocol;                /* "acme" */
        char *server;                  /* ACME directory URL */
        char *profile;                 /* ACME profile for newOrder, if the server advertises it */
        char **names;                  /* DNS identifiers; the first is the CN */
        KeyType key_type;
        bool reuse_key;
        char *ca_bundle;               /* PEM file trusted for the server's TLS; NULL: system store */

        /* [ACME] */
        char *email;
        char *eab_kid;
        char *eab_key;                 /* credential name (in $CREDENTIALS_DIRECTORY) or absolute path */
        AgentChallengeType challenge;
        char *http_listen;             /* "ADDR:PORT" or "[ADDR]:PORT" */
        char *webroot;
        char *tls_listen;
        char *dns_hook;

        /* [Deploy] */
        char *deploy_certificate;
        char *deploy_chain;
        char *deploy_fullchain;
        char *deploy_key;
        char *owner;
        char *group;
        mode_t mode;                   /* of the key file; certificates are 0644 */
        char **reload_units;
        char **exec_deploy;            /* one command line per entry (split on whitespace) */
} CertConfig;

AgentConfig *agent_config_free(AgentConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentConfig *, agent_config_free);
/* A missing agent.conf gives the defaults. Errors are described in *ret_error. */
int agent_config_load(const char *path, AgentConfig **ret, char **ret_error);

CertConfig *cert_config_ref(CertConfig *c);
CertConfig *cert_config_unref(CertConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CertConfig *, cert_config_unref);

/* Loads agent.d/NAME.conf and checks it (Names set, the challenge has what it needs, …); defaults
 * from agent may be NULL. Errors: negative, described in *ret_error ("file:line: …"). */
int cert_config_load(const char *path, const AgentConfig *defaults, CertConfig **ret, char **ret_error);

/* NAME: [A-Za-z0-9_.-], 1 … AGENT_CERT_NAME_MAX, not starting with '.'. It names a directory. */
bool agent_cert_name_is_valid(const char *name);

/* Reads the EAB HMAC key: an absolute path, or a credential name in $CREDENTIALS_DIRECTORY.
 * The file holds the base64url key as the CA hands it out (trailing whitespace ignored). */
int agent_config_read_secret(const char *reference, SecretBuf *ret);
