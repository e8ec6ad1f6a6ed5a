/* SPDX-License-Identifier: Apache-2.0 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "server/server-cli.h"
#include "server/server-config.h"
#include "server/server-manager.h"
#include "shared/log.h"
#include "shared/strv.h"

#define EXIT_USAGE 2

static void help(void) {
        printf("Usage: certfleet-server [OPTIONS] [serve]\n"
               "       certfleet-server [OPTIONS] ca init [--ca NAME] [--key-type TYPE] [--force] [--directory DIR]\n"
               "       certfleet-server [OPTIONS] cert list|show|renew-now|revoke …\n"
               "       certfleet-server [OPTIONS] request list|show|approve|reject …\n"
               "\n"
               "Certificate lifecycle server: ACME (RFC 8555, RFC 9773) in front of internal CAs.\n"
               "\n"
               "Options:\n"
               "  --config PATH          configuration file (default " SERVER_CONFIG_DEFAULT_PATH
               " plus its .d/ drop-ins;\n"
               "                         without one, built-in defaults are used)\n"
               "  --state-dir DIR        state directory (database, CA, TLS certificate)\n"
               "  --listen ADDR:PORT     HTTPS listener, replaces [HTTPS] Listen= (repeatable)\n"
               "  --http-listen ADDR:PORT\n"
               "                         plain HTTP listener, replaces [HTTP] Listen= (repeatable)\n"
               "  --version              print the version\n"
               "  -h --help              print this help\n");
}

typedef struct Args {
        const char *config_path;
        bool config_explicit;
        const char *state_dir;
        char **https_listen;
        char **http_listen;
        int verb_index;
} Args;

static void args_done(Args *a) {
        strv_free(a->https_listen);
        strv_free(a->http_listen);
}

/* 1: go on, 0: done (help/version), negative: usage error (printed). */
static int parse_args(int argc, char *argv[], Args *a) {
        enum {
                ARG_CONFIG = 0x100,
                ARG_STATE_DIR,
                ARG_LISTEN,
                ARG_HTTP_LISTEN,
                ARG_VERSION,
        };
        static const struct option options[] = {
                { "config",      required_argument, NULL, ARG_CONFIG },
                { "state-dir",   required_argument, NULL, ARG_STATE_DIR },
                { "listen",      required_argument, NULL, ARG_LISTEN },
                { "http-listen", required_argument, NULL, ARG_HTTP_LISTEN },
                { "version",     no_argument,       NULL, ARG_VERSION },
                { "help",        no_argument,       NULL, 'h' },
                {}
        };
        int c;

        /* "+": stop at the first word, so `ca init --force` keeps its own options. */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case ARG_CONFIG:
                        a->config_path = optarg;
                        a->config_explicit = true;
                        break;
                case ARG_STATE_DIR:
                        if (optarg[0] == 0) {
                                fprintf(stderr, "--state-dir needs a directory.\n");
                                return -EINVAL;
                        }
                        a->state_dir = optarg;
                        break;
                case ARG_LISTEN:
                        if (strv_extend(&a->https_listen, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_HTTP_LISTEN:
                        if (strv_extend(&a->http_listen, optarg) < 0)
                                return log_oom();
                        break;
                case ARG_VERSION:
                        printf("certfleet-server %s\n", CERTFLEET_VERSION);
                        return 0;
                case 'h':
                        help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'certfleet-server --help'.\n");
                        return -EINVAL;
                }

        a->verb_index = optind;
        return 1;
}

static bool strv_has_option(char **argv, int argc, const char *option) {
        size_t l = strlen(option);
        for (int i = 0; i < argc; i++)
                if (strcmp(argv[i], option) == 0 || (strncmp(argv[i], option, l) == 0 && argv[i][l] == '='))
                        return true;
        return false;
}

/* The admin commands take the state directory through their own --state-dir option. */
static int run_cli(const Args *a, int argc, char *argv[]) {
        _cleanup_(strv_freep) char **args = NULL;
        _cleanup_free_ char *extra = NULL;
        const char *config = a->config_explicit ? a->config_path : NULL;

        for (int i = 0; i < argc; i++)
                if (strv_extend(&args, argv[i]) < 0)
                        return log_oom();

        if (a->state_dir && !strv_has_option(argv, argc, "--state-dir")) {
                _cleanup_free_ char *abs = NULL;
                const char *state = a->state_dir;

                if (state[0] != '/') {
                        _cleanup_free_ char *cwd = getcwd(NULL, 0);
                        if (!cwd || asprintf(&abs, "%s/%s", cwd, state) < 0)
                                return log_oom();
                        state = abs;
                }
                if (asprintf(&extra, "--state-dir=%s", state) < 0)
                        return log_oom();
                if (strv_extend(&args, extra) < 0)
                        return log_oom();
        }

        int n = (int) strv_length(args);
        if (strcmp(argv[0], "ca") == 0)
                return server_cli_ca(n, args, config);
        if (strcmp(argv[0], "request") == 0)
                return server_cli_request(n, args, config);
        return server_cli_cert(n, args, config);
}

static int run_serve(const Args *a) {
        _cleanup_(server_manager_freep) ServerManager *m = NULL;
        ServerConfigOverrides o = {
                .state_directory = a->state_dir,
                .https_listen = a->https_listen,
                .http_listen = a->http_listen,
                /* No --config and no file at the default place: the embedded defaults (plus any
                 * drop-ins), so that `certfleet-server --state-dir DIR` alone runs a server. */
                .config_optional = !a->config_explicit,
        };
        int r;

        if (access(a->config_path, F_OK) < 0)
                log_info("No %s, using the built-in defaults and its drop-ins.", a->config_path);

        r = server_manager_new(a->config_path, &o, &m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the server: %m");

        return server_manager_run(m);
}

int main(int argc, char *argv[]) {
        _cleanup_(args_done) Args a = {
                .config_path = SERVER_CONFIG_DEFAULT_PATH,
        };
        const char *verb;
        int r;

        log_set_ident("certfleet-server");
        log_parse_environment();

        r = parse_args(argc, argv, &a);
        if (r < 0)
                return EXIT_USAGE;
        if (r == 0)
                return EXIT_SUCCESS;

        verb = a.verb_index < argc ? argv[a.verb_index] : "serve";

        if (strcmp(verb, "ca") == 0 || strcmp(verb, "cert") == 0 || strcmp(verb, "request") == 0)
                return run_cli(&a, argc - a.verb_index, argv + a.verb_index);

        if (strcmp(verb, "serve") != 0) {
                fprintf(stderr, "Unknown command '%s'. Try 'certfleet-server --help'.\n", verb);
                return EXIT_USAGE;
        }
        if (a.verb_index + 1 < argc) {
                fprintf(stderr, "'serve' takes no arguments. Try 'certfleet-server --help'.\n");
                return EXIT_USAGE;
        }

        return run_serve(&a) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
