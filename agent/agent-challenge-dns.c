/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "agent/agent-challenge.h"
#include "agent/agent-exec.h"
#include "shared/base64.h"

int challenge_dns_txt_value(const char *key_authorization, char **ret) {
        unsigned char md[SHA256_DIGEST_LENGTH];

        if (!EVP_Digest(key_authorization, strlen(key_authorization), md, NULL, EVP_sha256(), NULL))
                return -EIO;
        return base64url_encode(md, sizeof md, ret);
}

int challenge_dns_run_hook(const char *hook, const char *action, const char *identifier, const char *value) {
        _cleanup_free_ char *record = NULL, *domain_env = NULL;
        int r;

        if (asprintf(&record, "_acme-challenge.%s", identifier) < 0 ||
            asprintf(&domain_env, "CERTFLEET_DOMAIN=%s", identifier) < 0)
                return -ENOMEM;

        char *argv[] = { (char *) hook, (char *) action, record, (char *) value, NULL };
        char *env[] = { domain_env, NULL };

        r = agent_exec_run(argv, env, AGENT_EXEC_TIMEOUT_SEC);
        if (r < 0)
                return r;
        return r == 0 ? 0 : -EIO;
}
