/* SPDX-License-Identifier: Apache-2.0 */
/* `certfleet-server ca …` and `certfleet-server cert …`: admin commands on the CA directory and
 * the inventory. */

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>
#include <json-c/json.h>

#include "server/ca/ca.h"
#include "server/ra/ra.h"
#include "server/server-cli.h"
#include "server/server-config.h"
#include "server/store/store.h"
#include "shared/errors.h"
#include "shared/key.h"
#include "shared/log.h"
#include "shared/strv.h"
#include "shared/time-util.h"

#define SERIAL_HEX_MAX 64

/* ---- ca init ---- */

/* What `ca init` needs from the config, read without opening anything: the config may well name
 * a CA whose keys this very command is about to create, which a full load would refuse. */
typedef struct ConfigPeek {
        char *state_directory;
        char **ca_names;
        char **ca_directories;        /* "NAME=DIR" */
} ConfigPeek;

static void config_peek_done(ConfigPeek *p) {
        free(p->state_directory);
        strv_free(p->ca_names);
        strv_free(p->ca_directories);
}

static int config_peek_handler(void *userdata, const char *section, const char *key, const char *value) {
        ConfigPeek *p = userdata;

        if (strcasecmp(section, "Server") == 0 && strcmp(key, "StateDirectory") == 0) {
                free(p->state_directory);
                p->state_directory = strdup(value);
                return p->state_directory ? 1 : 0;
        }
        if (strncmp(section, "CA ", 3) == 0) {
                const char *name = section + 3;
                char *s;

                while (*name == ' ')
                        name++;
                if (!strv_contains(p->ca_names, name) && strv_extend(&p->ca_names, name) < 0)
                        return 0;
                if (strcmp(key, "Directory") == 0) {
                        if (asprintf(&s, "%s=%s", name, value) < 0)
                                return 0;
                        /* Later assignments win: put them first. */
                        if (strv_consume(&p->ca_directories, s) < 0)
                                return 0;
                }
        }
        return 1;
}

static void config_peek(const char *path, ConfigPeek *p) {
        _cleanup_free_ char *pattern = NULL;
        glob_t g = {};

        /* Best effort: a missing or unreadable config just means defaults. */
        (void) ini_parse(path, config_peek_handler, p);
        if (asprintf(&pattern, "%s.d/*.conf", path) < 0)
                return;
        if (glob(pattern, 0, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; i++)
                        (void) ini_parse(g.gl_pathv[i], config_peek_handler, p);
        globfree(&g);
}

static const char *config_peek_ca_directory(const ConfigPeek *p, const char *name) {
        const char *found = NULL;
        size_t n = strlen(name);

        for (char **i = p->ca_directories; i && *i; i++)
                if (strncmp(*i, name, n) == 0 && (*i)[n] == '=')
                        found = *i + n + 1;
        return found;
}

static void ca_usage(void) {
        fprintf(stderr,
                "Usage: certfleet-server ca init [--ca NAME] [--key-type ec-p256|ec-p384|rsa-2048|…]\n"
                "                                [--force] [--directory DIR | --state-dir DIR]\n");
}

static int ca_init(int argc, char *argv[], const char *config_path) {
        static const struct option options[] = {
                { "ca",        required_argument, NULL, 'c' },
                { "key-type",  required_argument, NULL, 'k' },
                { "force",     no_argument,       NULL, 'f' },
                { "directory", required_argument, NULL, 'd' },
                { "state-dir", required_argument, NULL, 's' },
                { "help",      no_argument,       NULL, 'h' },
                {}
        };
        _cleanup_(config_peek_done) ConfigPeek peek = {};
        _cleanup_free_ char *directory = NULL, *prefix = NULL;
        const char *name = NULL, *dir_arg = NULL, *state_arg = NULL;
        KeyType key_type = KEY_EC_P256;
        bool force = false;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        name = optarg;
                        break;
                case 'k':
                        key_type = key_type_from_string(optarg);
                        if (key_type < 0) {
                                fprintf(stderr, "Unknown key type '%s'.\n", optarg);
                                return SERVER_CLI_EXIT_USAGE;
                        }
                        break;
                case 'f':
                        force = true;
                        break;
                case 'd':
                        dir_arg = optarg;
                        break;
                case 's':
                        state_arg = optarg;
                        break;
                case 'h':
                        ca_usage();
                        return SERVER_CLI_EXIT_OK;
                default:
                        ca_usage();
                        return SERVER_CLI_EXIT_USAGE;
                }
        if (optind < argc) {
                ca_usage();
                return SERVER_CLI_EXIT_USAGE;
        }

        config_peek(config_path ?: SERVER_CONFIG_DEFAULT_PATH, &peek);

        if (!name) {
                /* With exactly one CA configured there is nothing to choose; without any, the
                 * embedded defaults' [CA default]. */
                if (strv_length(peek.ca_names) == 1)
                        name = peek.ca_names[0];
                else if (strv_length(peek.ca_names) == 0)
                        name = "default";
                else {
                        fprintf(stderr, "The configuration declares several CAs; choose one with --ca NAME.\n");
                        return SERVER_CLI_EXIT_USAGE;
                }
        }
        for (const char *i = name; *i; i++)
                if (!isalnum((unsigned char) *i) && !strchr("-_.", *i)) {
                        fprintf(stderr, "Invalid CA name '%s'.\n", name);
                        return SERVER_CLI_EXIT_USAGE;
                }

        if (dir_arg)
                directory = strdup(dir_arg);
        else if (config_peek_ca_directory(&peek, name))
                directory = strdup(config_peek_ca_directory(&peek, name));
        else if (asprintf(&directory, "%s/ca/%s",
                          state_arg ?: peek.state_directory ?: server_config_default_state_directory(), name) < 0)
                directory = NULL;
        if (!directory)
                return log_oom(), SERVER_CLI_EXIT_FAILURE;

        if (asprintf(&prefix, "certfleet %s", name) < 0) {
                prefix = NULL;
                return log_oom(), SERVER_CLI_EXIT_FAILURE;
        }

        r = ca_local_init(directory, key_type, prefix, force);
        if (r == -EEXIST) {
                log_error("A CA already exists in '%s'; use --force to replace it.", directory);
                return SERVER_CLI_EXIT_FAILURE;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to create CA '%s' in '%s': %m", name, directory);
                return SERVER_CLI_EXIT_FAILURE;
        }

        printf("Created CA '%s' (%s) in %s:\n"
               "  root certificate:    %s/root.crt\n"
               "  issuing certificate: %s/issuing.crt\n",
               name, key_type_to_string(key_type), directory, directory, directory);
        return SERVER_CLI_EXIT_OK;
}

int server_cli_ca(int argc, char *argv[], const char *config_path) {
        if (argc > 0 && strcmp(argv[0], "ca") == 0) {
                argc--;
                argv++;
        }
        if (argc < 1) {
                ca_usage();
                return SERVER_CLI_EXIT_USAGE;
        }
        if (strcmp(argv[0], "init") == 0)
                return ca_init(argc, argv, config_path);

        fprintf(stderr, "Unknown command 'ca %s'.\n", argv[0]);
        ca_usage();
        return SERVER_CLI_EXIT_USAGE;
}

/* ---- cert … ---- */

static void cert_usage(void) {
        fprintf(stderr,
                "Usage: certfleet-server cert list [--expiring 7d] [--profile P] [--json]\n"
                "       certfleet-server cert show SERIAL [--json] [--pem]\n"
                "       certfleet-server cert renew-now SERIAL\n"
                "       certfleet-server cert revoke SERIAL [--reason N]\n"
                "Every cert command also takes --database URL (instead of the config's) and --state-dir DIR\n"
                "(for the embedded defaults when there is no config file).\n");
}

/* "0A:1B:…", "0a1b…" and "0x0a1b" all name the same serial: lower-case hex, no separators, no
 * leading zeros (the inventory's form, shared/cert.h cert_serial_hex()). */
static int serial_normalize(const char *s, char **ret) {
        char buf[SERIAL_HEX_MAX + 1];
        size_t n = 0;
        const char *start;

        if (strncasecmp(s, "0x", 2) == 0)
                s += 2;
        for (; *s; s++) {
                if (*s == ':' || *s == ' ')
                        continue;
                if (!isxdigit((unsigned char) *s) || n >= SERIAL_HEX_MAX)
                        return -EINVAL;
                buf[n++] = (char) tolower((unsigned char) *s);
        }
        if (n == 0)
                return -EINVAL;
        buf[n] = '\0';

        start = buf;
        while (start[0] == '0' && start[1] != '\0')
                start++;
        *ret = strdup(start);
        return *ret ? 0 : -ENOMEM;
}

typedef struct CertContext {
        ServerConfig *config;
        Store *store;
} CertContext;

static void cert_context_done(CertContext *c) {
        store_close(c->store);
        server_config_free(c->config);
}

/* The config to use: the one given, else the default file if it exists, else the embedded
 * defaults for state_dir (the same fallbacks as `serve`). */
static int cert_load_config(const char *config_path, const char *state_dir, unsigned flags,
                            ServerConfig **ret) {
        _cleanup_free_ char *error = NULL;
        /* Like `serve`: without --config, the default file, or the embedded defaults with its
         * drop-ins when it does not exist. */
        ServerConfigOverrides o = {
                .state_directory = state_dir,
                .config_optional = !config_path,
        };
        const char *path = config_path ?: SERVER_CONFIG_DEFAULT_PATH;
        int r;

        r = server_config_load_full(path, &o, flags, ret, &error);
        if (r < 0)
                return log_error_errno(r, "Failed to load configuration '%s': %s",
                                       path ?: "(embedded defaults)", error ?: cf_error_name(r));
        return 0;
}

static int cert_context_open(CertContext *c, const char *config_path, const char *state_dir,
                             const char *database, bool need_profiles) {
        _cleanup_free_ char *db_default = NULL;
        int r;

        if (!database || need_profiles) {
                r = cert_load_config(config_path, state_dir, need_profiles ? 0 : SERVER_CONFIG_SETTINGS_ONLY,
                                     &c->config);
                if (r < 0)
                        return r;
        }
        if (!database) {
                database = c->config->database;
                if (!database) {
                        if (asprintf(&db_default, "sqlite:%s/certfleet.db",
                                     c->config->state_directory ?: server_config_default_state_directory()) < 0)
                                return log_oom();
                        database = db_default;
                }
        }

        r = store_open(database, &c->store);
        if (r < 0)
                return log_error_errno(r, "Failed to open database '%s': %m", database);
        return 0;
}

static const char *cert_display_status(const InventoryCert *c, cf_time_t now) {
        if (c->status == CERT_STATUS_REVOKED)
                return "revoked";
        if (c->not_after <= now)
                return "expired";
        return "valid";
}

static json_object *json_string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static json_object *json_time(cf_time_t t) {
        char buf[CF_RFC3339_MAX];
        return t > 0 ? json_object_new_string(time_format_rfc3339(t, buf)) : NULL;
}

static int cert_to_json(const InventoryCert *c, bool with_pem, cf_time_t now, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL, *ids = NULL;

        o = json_object_new_object();
        ids = json_object_new_array();
        if (!o || !ids)
                return -ENOMEM;
        for (char **i = c->identifiers; i && *i; i++)
                if (json_object_array_add(ids, json_object_new_string(*i)) < 0)
                        return -ENOMEM;

        json_object_object_add(o, "serial", json_object_new_string(c->serial));
        json_object_object_add(o, "status", json_object_new_string(cert_display_status(c, now)));
        json_object_object_add(o, "protocol", json_string_or_null(c->protocol));
        json_object_object_add(o, "protocolProfile", json_string_or_null(c->protocol_profile));
        json_object_object_add(o, "raProfile", json_string_or_null(c->ra_profile));
        json_object_object_add(o, "ca", json_string_or_null(c->ca));
        json_object_object_add(o, "accountId", json_object_new_int64(c->account_id));
        json_object_object_add(o, "identifiers", TAKE_PTR(ids));
        json_object_object_add(o, "subject", json_string_or_null(c->subject));
        json_object_object_add(o, "notBefore", json_time(c->not_before));
        json_object_object_add(o, "notAfter", json_time(c->not_after));
        json_object_object_add(o, "issuedAt", json_time(c->issued_at));
        if (c->status == CERT_STATUS_REVOKED) {
                json_object_object_add(o, "revocationReason", json_object_new_int(c->revocation_reason));
                json_object_object_add(o, "revokedAt", json_time(c->revoked_at));
        }
        json_object_object_add(o, "ariCertId", json_string_or_null(c->ari_cert_id));
        json_object_object_add(o, "replaces", json_string_or_null(c->replaces));
        json_object_object_add(o, "replacedBy", json_string_or_null(c->replaced_by));
        json_object_object_add(o, "renewNow", json_object_new_boolean(c->renew_now));
        if (with_pem) {
                json_object_object_add(o, "pem", json_string_or_null(c->pem));
                json_object_object_add(o, "chainPem", json_string_or_null(c->chain_pem));
        }

        *ret = TAKE_PTR(o);
        return 0;
}

static int print_json(json_object *o) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        printf("%s\n", s);
        return 0;
}

int server_cli_open_store(const char *config_path, const char *state_dir, const char *database, Store **ret) {
        _cleanup_(cert_context_done) CertContext ctx = {};
        int r;

        r = cert_context_open(&ctx, config_path, state_dir, database, false);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ctx.store);
        return 0;
}

int server_cli_print_json(json_object *o) {
        return print_json(o);
}

static int exit_code_for(int r) {
        if (r >= 0)
                return SERVER_CLI_EXIT_OK;
        if (r == -ENOENT || r == -CF_E_NOT_FOUND)
                return SERVER_CLI_EXIT_NOT_FOUND;
        return SERVER_CLI_EXIT_FAILURE;
}

enum {
        ARG_JSON = 0x100,
        ARG_PEM,
        ARG_EXPIRING,
        ARG_PROFILE,
        ARG_REASON,
        ARG_DATABASE,
        ARG_STATE_DIR,
};

typedef struct CertArgs {
        bool json;
        bool pem;
        int64_t expiring;             /* seconds, -1: no filter */
        const char *profile;
        int reason;
        const char *database;
        const char *state_dir;
        const char *serial;
} CertArgs;

static int cert_parse_args(int argc, char *argv[], bool want_serial, CertArgs *a) {
        static const struct option options[] = {
                { "json",     no_argument,       NULL, ARG_JSON },
                { "pem",      no_argument,       NULL, ARG_PEM },
                { "expiring", required_argument, NULL, ARG_EXPIRING },
                { "profile",  required_argument, NULL, ARG_PROFILE },
                { "reason",   required_argument, NULL, ARG_REASON },
                { "database", required_argument, NULL, ARG_DATABASE },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "help",     no_argument,       NULL, 'h' },
                {}
        };
        int c, r;

        *a = (CertArgs) { .expiring = -1, .reason = 0 };

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_JSON:
                        a->json = true;
                        break;
                case ARG_PEM:
                        a->pem = true;
                        break;
                case ARG_EXPIRING:
                        r = duration_parse(optarg, &a->expiring);
                        if (r < 0) {
                                fprintf(stderr, "Invalid duration '%s' (e.g. 7d, 12h).\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_PROFILE:
                        a->profile = optarg;
                        break;
                case ARG_REASON: {
                        char *end;
                        long v;

                        errno = 0;
                        v = strtol(optarg, &end, 10);
                        if (errno != 0 || end == optarg || *end != '\0' || v < 0 || v > 10 || v == 7 || v == 8) {
                                fprintf(stderr, "Invalid revocation reason '%s' (RFC 5280 CRLReason 0…10, "
                                        "not 7 (unassigned) or 8 (removeFromCRL, delta CRLs only)).\n", optarg);
                                return -EINVAL;
                        }
                        a->reason = (int) v;
                        break;
                }
                case ARG_DATABASE:
                        a->database = optarg;
                        break;
                case ARG_STATE_DIR:
                        a->state_dir = optarg;
                        break;
                case 'h':
                        cert_usage();
                        return 0;
                default:
                        return -EINVAL;
                }

        if (want_serial) {
                if (optind + 1 != argc) {
                        fprintf(stderr, "Expected exactly one SERIAL.\n");
                        return -EINVAL;
                }
                a->serial = argv[optind];
        } else if (optind != argc) {
                fprintf(stderr, "Unexpected argument '%s'.\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static void print_padded(const char *s, size_t width) {
        printf("%-*s  ", (int) width, s ?: "-");
}

static int cert_list(const CertArgs *a, CertContext *ctx) {
        InventoryCert **l = NULL;
        InventoryFilter f = { .profile = a->profile };
        cf_time_t now = time_now();
        size_t w_serial = 6, w_status = 6, w_protocol = 8, w_profile = 7;
        int r;

        if (a->expiring >= 0)
                f.expiring_before = now + a->expiring;

        r = store_inventory_list(ctx->store, &f, &l);
        if (r < 0)
                return log_error_errno(r, "Failed to list certificates: %m");

        if (a->json) {
                _cleanup_(json_object_putp) json_object *arr = json_object_new_array();
                if (!arr) {
                        inventory_cert_list_free(l);
                        return log_oom();
                }
                for (InventoryCert **i = l; *i; i++) {
                        json_object *o;
                        r = cert_to_json(*i, false, now, &o);
                        if (r < 0 || json_object_array_add(arr, o) < 0) {
                                inventory_cert_list_free(l);
                                return log_oom();
                        }
                }
                inventory_cert_list_free(l);
                return print_json(arr);
        }

        for (InventoryCert **i = l; *i; i++) {
                w_serial = MAX(w_serial, strlen((*i)->serial));
                w_status = MAX(w_status, strlen(cert_display_status(*i, now)) + ((*i)->renew_now ? 8 : 0));
                w_protocol = MAX(w_protocol, strlen((*i)->protocol ?: "-"));
                w_profile = MAX(w_profile, strlen((*i)->protocol_profile ?: "-"));
        }

        print_padded("SERIAL", w_serial);
        print_padded("STATUS", w_status);
        print_padded("NOT AFTER", CF_RFC3339_MAX > 20 ? 20 : CF_RFC3339_MAX);
        print_padded("PROTOCOL", w_protocol);
        print_padded("PROFILE", w_profile);
        printf("IDENTIFIERS\n");

        for (InventoryCert **i = l; *i; i++) {
                char t[CF_RFC3339_MAX], status[32];
                _cleanup_free_ char *ids = strv_join((*i)->identifiers, ",");

                snprintf(status, sizeof status, "%s%s", cert_display_status(*i, now),
                         (*i)->renew_now ? " (renew)" : "");
                print_padded((*i)->serial, w_serial);
                print_padded(status, w_status);
                print_padded(time_format_rfc3339((*i)->not_after, t), 20);
                print_padded((*i)->protocol, w_protocol);
                print_padded((*i)->protocol_profile, w_profile);
                printf("%s\n", ids ?: "");
        }

        inventory_cert_list_free(l);
        return 0;
}

static int cert_show(const CertArgs *a, CertContext *ctx, const char *serial) {
        _cleanup_(inventory_cert_freep) InventoryCert *c = NULL;
        cf_time_t now = time_now();
        char t[CF_RFC3339_MAX];
        int r;

        r = store_inventory_get(ctx->store, serial, &c);
        if (r == -ENOENT) {
                log_error("No certificate with serial %s.", serial);
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to read certificate %s: %m", serial);

        if (a->json) {
                _cleanup_(json_object_putp) json_object *o = NULL;
                r = cert_to_json(c, a->pem, now, &o);
                if (r < 0)
                        return log_oom();
                return print_json(o);
        }

        if (a->pem) {
                fputs(c->pem, stdout);
                return 0;
        }

        printf("%-16s %s\n", "Serial:", c->serial);
        printf("%-16s %s%s\n", "Status:", cert_display_status(c, now), c->renew_now ? " (renewal requested)" : "");
        printf("%-16s %s\n", "Subject:", c->subject && c->subject[0] ? c->subject : "(empty)");
        for (char **i = c->identifiers; i && *i; i++)
                printf("%-16s %s\n", i == c->identifiers ? "Identifiers:" : "", *i);
        printf("%-16s %s\n", "Not before:", time_format_rfc3339(c->not_before, t));
        printf("%-16s %s\n", "Not after:", time_format_rfc3339(c->not_after, t));
        printf("%-16s %s\n", "Issued at:", time_format_rfc3339(c->issued_at, t));
        printf("%-16s %s\n", "Protocol:", c->protocol);
        printf("%-16s %s\n", "Profile:", c->protocol_profile ?: "-");
        printf("%-16s %s\n", "RA profile:", c->ra_profile ?: "-");
        printf("%-16s %s\n", "CA:", c->ca ?: "-");
        if (c->account_id > 0)
                printf("%-16s %" PRId64 "\n", "Account:", c->account_id);
        if (c->status == CERT_STATUS_REVOKED) {
                printf("%-16s %d\n", "Revocation reason:", c->revocation_reason);
                printf("%-16s %s\n", "Revoked at:", time_format_rfc3339(c->revoked_at, t));
        }
        printf("%-16s %s\n", "ARI CertID:", c->ari_cert_id ?: "-");
        if (c->replaces)
                printf("%-16s %s\n", "Replaces:", c->replaces);
        if (c->replaced_by)
                printf("%-16s %s\n", "Replaced by:", c->replaced_by);
        return 0;
}

static int cert_renew_now(CertContext *ctx, const char *serial) {
        int r;

        r = store_begin(ctx->store);
        if (r < 0)
                return log_error_errno(r, "Failed to start a transaction: %m");
        r = store_inventory_set_renew_now(ctx->store, serial, true);
        if (r < 0) {
                store_rollback(ctx->store);
                if (r == -ENOENT)
                        log_error("No certificate with serial %s.", serial);
                else
                        log_error_errno(r, "Failed to mark %s for renewal: %m", serial);
                return r;
        }
        r = store_commit(ctx->store);
        if (r < 0)
                return log_error_errno(r, "Failed to commit: %m");

        printf("Certificate %s is marked for renewal: ACME clients asking for renewal information now get a window in the past.\n",
               serial);
        return 0;
}

static int cert_revoke(const CertArgs *a, CertContext *ctx, const char *serial) {
        int r;

        r = ra_revoke(ctx->store, ctx->config->profiles, serial, a->reason);
        if (r == -ENOENT) {
                log_error("No certificate with serial %s.", serial);
                return r;
        }
        if (r == -CF_E_ALREADY_REVOKED) {
                log_error("Certificate %s is already revoked.", serial);
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to revoke %s: %m", serial);

        printf("Certificate %s revoked (reason %d).\n", serial, a->reason);
        return 0;
}

int server_cli_cert(int argc, char *argv[], const char *config_path) {
        _cleanup_(cert_context_done) CertContext ctx = {};
        _cleanup_free_ char *serial = NULL;
        const char *verb;
        bool want_serial, need_profiles;
        CertArgs a;
        int r;

        if (argc > 0 && strcmp(argv[0], "cert") == 0) {
                argc--;
                argv++;
        }
        if (argc < 1) {
                cert_usage();
                return SERVER_CLI_EXIT_USAGE;
        }
        verb = argv[0];

        if (strcmp(verb, "list") == 0)
                want_serial = false;
        else if (strcmp(verb, "show") == 0 || strcmp(verb, "renew-now") == 0 || strcmp(verb, "revoke") == 0)
                want_serial = true;
        else {
                fprintf(stderr, "Unknown command 'cert %s'.\n", verb);
                cert_usage();
                return SERVER_CLI_EXIT_USAGE;
        }
        need_profiles = strcmp(verb, "revoke") == 0;

        r = cert_parse_args(argc, argv, want_serial, &a);
        if (r < 0) {
                cert_usage();
                return SERVER_CLI_EXIT_USAGE;
        }
        if (r == 0)
                return SERVER_CLI_EXIT_OK;

        if (a.serial) {
                r = serial_normalize(a.serial, &serial);
                if (r < 0) {
                        fprintf(stderr, "Invalid serial '%s' (hexadecimal expected).\n", a.serial);
                        return SERVER_CLI_EXIT_USAGE;
                }
        }

        r = cert_context_open(&ctx, config_path, a.state_dir, a.database, need_profiles);
        if (r < 0)
                return SERVER_CLI_EXIT_FAILURE;

        if (strcmp(verb, "list") == 0)
                r = cert_list(&a, &ctx);
        else if (strcmp(verb, "show") == 0)
                r = cert_show(&a, &ctx, serial);
        else if (strcmp(verb, "renew-now") == 0)
                r = cert_renew_now(&ctx, serial);
        else
                r = cert_revoke(&a, &ctx, serial);

        return exit_code_for(r);
}
