/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "agent/agent-cert.h"
#include "agent/agent-manager-query.h"
#include "shared/cert.h"
#include "shared/pem.h"

/* The manager keeps no issuer and does not expose its state directory, so the deployed file is
 * the place to look; it is only trusted when its serial is the one the manager reports. */
static int issuer_from_file(const char *path, const char *serial, char **ret) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(cert_info_freep) CertInfo *info = NULL;
        int r;

        if (!path)
                return -ENOENT;
        r = cert_load_file(path, &cert);
        if (r < 0)
                return r;
        r = cert_inspect(cert, &info);
        if (r < 0)
                return r;
        if (!info->serial_hex || strcmp(info->serial_hex, serial) != 0 || !info->issuer)
                return -ENOENT;
        *ret = TAKE_PTR(info->issuer);
        return 0;
}

int agent_cert_get_issuer(AgentCert *c, char **ret) {
        int r;

        if (!c->serial)
                return -ENOENT;
        r = issuer_from_file(c->config->deploy_certificate, c->serial, ret);
        if (r >= 0)
                return r;
        return issuer_from_file(c->config->deploy_fullchain, c->serial, ret);
}

bool agent_cert_is_pending(AgentCert *c) {
        return c->queued || c->running;
}
