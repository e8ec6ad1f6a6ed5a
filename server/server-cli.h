/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The admin subcommands of certfleet-server that work on the state directory directly (no
 * running daemon needed). server-main.c dispatches to them with argv starting at the group word:
 *
 *   server_cli_ca(argc, argv = {"ca", "init", "--force", …}, config_path)
 *   server_cli_cert(argc, argv = {"cert", "list", "--expiring", "7d", …}, config_path)
 *
 *   ca init [--ca NAME] [--key-type ec-p256|ec-p384|rsa-2048|…] [--force] [--directory DIR]
 *   cert list [--expiring 7d] [--profile P] [--json]
 *   cert show SERIAL [--json] [--pem]
 *   cert renew-now SERIAL
 *   cert revoke SERIAL [--reason N]
 *   request list [--all] [--json]          (server-cli-request.c)
 *   request show ID [--json]
 *   request approve ID
 *   request reject ID [--reason TEXT]
 *
 * They print their own messages and return the process exit code. */

#include <json-c/json.h>

#include "server/store/store.h"

#define SERVER_CLI_EXIT_OK 0
#define SERVER_CLI_EXIT_FAILURE 1
#define SERVER_CLI_EXIT_USAGE 2
#define SERVER_CLI_EXIT_NOT_FOUND 4

int server_cli_ca(int argc, char *argv[], const char *config_path);
int server_cli_cert(int argc, char *argv[], const char *config_path);
int server_cli_request(int argc, char *argv[], const char *config_path);

/* Shared by the command files. The store of the configuration (or of database, a URL, if
 * given), logged on failure. */
int server_cli_open_store(const char *config_path, const char *state_dir, const char *database, Store **ret);
/* Pretty-prints o and a newline on stdout. */
int server_cli_print_json(json_object *o);
