/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* /etc/certfleet/server.conf (+ server.conf.d/NAME.conf):
 *
 *   [Server]      StateDirectory=/var/lib/certfleet/server  Workers=0 (0: one per core)
 *                 BaseURL=https://ca.example:8443 (optional; default: from the Host header)
 *   [HTTPS]       Listen=127.0.0.1:8443 [::1]:8443  Certificate=PATH  Key=PATH
 *                 ClientCA=PATH (optional: request client certificates, verify against these)
 *   [HTTP]        Listen=127.0.0.1:8080     (optional plain listener; SCEP, CRLs and OCSP will use it)
 *   [Limits]      MaxBodySize=64K  MaxHeaderSize=16K  Timeout=30s  MaxConnections=4096
 *   [Store]       Database=sqlite:/var/lib/certfleet/server/certfleet.db
 *   [Validation]  Resolver=127.0.0.1:8053  HTTPPort=80  TLSPort=443  Workers=4  Timeout=10s
 *   [CA …] [RAProfile …] [ACMEProfile …]   (server/ra/ra-profile.h)
 */

#include <stddef.h>
#include <stdint.h>

#include "server/ra/ra-profile.h"
#include "server/va/va.h"
#include "shared/macro.h"

typedef struct ServerConfig {
        char *config_path;
        char *state_directory;
        unsigned workers;
        char *base_url;
        char **https_listen;
        char *tls_certificate;
        char *tls_key;
        char **http_listen;
        size_t max_body_size;
        size_t max_header_size;
        int64_t timeout;
        unsigned max_connections;
        char *database;
        VaConfig va;
        ProfileSet *profiles;
        char *tls_client_ca;
} ServerConfig;

/* Loads and checks everything (profiles included, CA keys opened). *ret_error describes the
 * first problem with file:line where there is one. */
int server_config_load(const char *path, ServerConfig **ret, char **ret_error);
ServerConfig *server_config_free(ServerConfig *c);

/* The embedded defaults, for running without any config file: StateDirectory=state_dir, SQLite at
 * state_dir/certfleet.db, [HTTPS] Listen=127.0.0.1:8443, [CA default] (local, state_dir/ca/default),
 * [RAProfile default] (any DNS name and IP address, ec rsa ed25519, 47d) and [ACMEProfile default]
 * bound to it. Built by feeding an INI text through the same loader as a file. */
int server_config_new_default(const char *state_dir, ServerConfig **ret, char **ret_error);

/* Command-line values that win over the file ("flags override config"). */
typedef struct ServerConfigOverrides {
        const char *state_directory;   /* also moves the database unless Database= is set */
        char **https_listen;           /* non-NULL: replaces [HTTPS] Listen= */
        char **http_listen;            /* non-NULL: replaces [HTTP] Listen= */
        bool config_optional;          /* the default path: its absence means embedded defaults */
} ServerConfigOverrides;

#define SERVER_CONFIG_CREATE_MISSING_CA (1u << 0)   /* `serve`: create a missing local CA (logged) */
/* Commands that only read the database: settings are read and checked, but profiles are not
 * finished, so no CA key or EAB credential is opened (an admin who may read the inventory need
 * not be able to read the CA's keys). */
#define SERVER_CONFIG_SETTINGS_ONLY     (1u << 1)

/* path NULL, or a path whose main file does not exist: the embedded defaults (with
 * overrides->state_directory or the default state directory), then PATH.d/ drop-ins if any.
 * A missing path with no drop-ins either is -ENOENT unless overrides->config_optional. */
int server_config_load_full(const char *path, const ServerConfigOverrides *overrides, unsigned flags,
                            ServerConfig **ret, char **ret_error);

/* Where a config-less daemon keeps its state: $STATE_DIRECTORY (systemd) or
 * /var/lib/certfleet/server. */
const char *server_config_default_state_directory(void);
#define SERVER_CONFIG_DEFAULT_PATH "/etc/certfleet/server.conf"
DEFINE_TRIVIAL_CLEANUP_FUNC(ServerConfig *, server_config_free);
