/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What a request handler can reach on the worker thread that runs it. */

#include "server/ra/ra-profile.h"
#include "server/server-config.h"
#include "server/store/store.h"

typedef struct ServerWorker ServerWorker;

/* The store connection (shared by every worker thread: see store.h). */
Store *server_worker_get_store(ServerWorker *w);
/* The profile snapshot current when the request started: stays valid for the whole request even
 * if a SIGHUP reload swaps in a new one meanwhile. */
const ProfileSet *server_worker_get_profiles(ServerWorker *w);
const ServerConfig *server_worker_get_config(ServerWorker *w);
