/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The daemon: loads the configuration, opens the store (migrations), starts the ACME front end
 * and the HTTP workers, talks to systemd (sd_notify, socket activation) and handles signals on
 * the main thread: SIGHUP reloads configuration, profiles and the TLS certificate without
 * dropping a connection; SIGTERM/SIGINT stop cleanly. */

#include "server/server-config.h"
#include "server/server-worker.h"

typedef struct ServerManager ServerManager;

/* config_path NULL: the embedded defaults. overrides are copied. */
int server_manager_new(const char *config_path, const ServerConfigOverrides *overrides,
                       ServerManager **ret);
ServerManager *server_manager_free(ServerManager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(ServerManager *, server_manager_free);

/* Starts serving and returns after SIGTERM/SIGINT (0) or a start-up failure (negative, logged). */
int server_manager_run(ServerManager *m);

/* A configuration generation: the ServerConfig (with its ProfileSet) that a request sees from
 * start to end. Refcounted across threads; the manager swaps in a new one on reload. */
typedef struct ServerSnapshot ServerSnapshot;
/* The store connection every worker thread shares (NULL before the manager started). */
Store *server_manager_get_store(ServerManager *m);
ServerSnapshot *server_manager_snapshot_ref(ServerManager *m);
ServerSnapshot *server_snapshot_unref(ServerSnapshot *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ServerSnapshot *, server_snapshot_unref);
const ServerConfig *server_snapshot_get_config(const ServerSnapshot *s);

/* server-worker.c: one per HTTP worker thread, created and freed on that thread. */
int server_worker_new(ServerManager *m, unsigned index, ServerWorker **ret);
ServerWorker *server_worker_free(ServerWorker *w);
void server_worker_request_start(ServerWorker *w);
void server_worker_request_end(ServerWorker *w);

/* The TLS certificate a config-less server uses: STATE/tls/server.{crt,key}, issued by the
 * [CA default] for localhost, 127.0.0.1 and ::1; reused while it is valid for 7 more days and
 * issued by the current CA. */
int server_default_tls_certificate(const ServerConfig *config, char **ret_cert_path, char **ret_key_path);
