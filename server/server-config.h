/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* /etc/certfleet/server.conf (+ server.conf.d/*.conf):
 *
 *   [Server]      StateDirectory=/var/lib/certfleet/server  Workers=0 (0: one per core)
 *                 BaseURL=https://ca.example:8443 (optional; default: from the Host header)
 *   [HTTPS]       Listen=127.0.0.1:8443 [::1]:8443  Certificate=PATH  Key=PATH
 *   [HTTP]        Listen=127.0.0.1:8080     (optional plain listener: SCEP, CRL, OCSP)
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
} ServerConfig;

/* Loads and checks everything (profiles included, CA keys opened). *ret_error describes the
 * first problem with file:line where there is one. */
int server_config_load(const char *path, ServerConfig **ret, char **ret_error);
ServerConfig *server_config_free(ServerConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ServerConfig *, server_config_free);
