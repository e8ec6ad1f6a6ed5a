/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Read-only questions about a tracked certificate that agent-manager.h does not answer (yet),
 * for the bus layer. */

#include "agent/agent-manager.h"

/* The issuer (RFC 2253 one-line) of the current certificate, read from its deployed copy
 * ([Deploy] Certificate= or FullChain=) when that copy holds the current serial. -ENOENT if there
 * is no current certificate or no deployed copy of it. */
int agent_cert_get_issuer(AgentCert *c, char **ret);

/* true while the certificate is queued for the worker or its job is running. */
bool agent_cert_is_pending(AgentCert *c);
