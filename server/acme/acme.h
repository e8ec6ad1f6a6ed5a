/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The ACME front end (RFC 8555 + RFC 9773 ARI). Registered by the server core as the handler of
 * ACME_ROUTE_PREFIX; it owns its validation pool (va/). */

#include "server/http/http.h"
#include "server/server-config.h"
#include "server/store/store.h"

#define ACME_ROUTE_PREFIX "/api/v1/protocols/acme/"

typedef struct AcmeServer AcmeServer;

/* Called once at start-up (after the store's migrations ran). Starts the va/ pool, which writes
 * validation results through store (borrowed: it must outlive the server). */
int acme_server_new(const ServerConfig *config, Store *store, AcmeServer **ret);
AcmeServer *acme_server_free(AcmeServer *acme);
/* Applies a reloaded configuration (validation settings); profiles come per request. */
int acme_server_reload(AcmeServer *acme, const ServerConfig *config);

/* HttpHandler for ACME_ROUTE_PREFIX; userdata is the AcmeServer. */
int acme_handle_request(const HttpRequest *req, HttpResponse *resp, void *userdata);
