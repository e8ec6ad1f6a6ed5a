/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Deployment of an issued certificate to the paths of [Deploy]: files first (all staged, then
 * renamed, so a failure leaves every previous file in place), then ReloadOrRestartUnit for
 * ReloadUnits= over the system bus, then the ExecDeploy= hooks. */

#include "agent/agent-config.h"

#define AGENT_DEPLOY_CERT_MODE 0644
#define AGENT_DEPLOY_STAGING_SUFFIX ".certfleet-new"

typedef struct AgentDeployInput {
        const char *cert_pem;
        const char *chain_pem;             /* "" if none */
        const char *key_pem;
        /* The state directory's copies, for hook variables whose [Deploy] path is not set. */
        const char *live_dir;
} AgentDeployInput;

/* Resolves Owner=/Group= (names or numbers); unset: (uid_t)-1 / (gid_t)-1. -ESRCH if unknown. */
int agent_deploy_resolve_owner(const CertConfig *c, uid_t *ret_uid, gid_t *ret_gid);

/* Each returns 0 or a negative error with a message in *ret_error. */
int agent_deploy_files(const CertConfig *c, const AgentDeployInput *in, char **ret_error);
int agent_deploy_reload_units(char *const *units, char **ret_error);
int agent_deploy_run_hooks(const CertConfig *c, const AgentDeployInput *in, char **ret_error);

/* All three in order; stops at the first failure. */
int agent_deploy(const CertConfig *c, const AgentDeployInput *in, char **ret_error);
