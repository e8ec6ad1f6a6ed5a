/* SPDX-License-Identifier: Apache-2.0 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/ca/ca.h"
#include "server/http/http-server.h"
#include "server/server-config.h"
#include "shared/conf.h"
#include "shared/key.h"
#include "shared/log.h"
#include "shared/strv.h"

#define SERVER_STATE_DIRECTORY_DEFAULT "/var/lib/certfleet/server"
#define SERVER_TIMEOUT_DEFAULT 30
#define SERVER_MAX_CONNECTIONS_DEFAULT 4096
#define VA_HTTP_PORT_DEFAULT 80
#define VA_TLS_PORT_DEFAULT 443
#define VA_WORKERS_DEFAULT 4
#define VA_TIMEOUT_DEFAULT 10
#define VA_RESPONSE_WAIT_DEFAULT_USEC (1000u * 1000u)
#define VA_RESPONSE_WAIT_MAX_USEC (60u * 1000u * 1000u)

typedef struct Range {
        uint64_t min;
        uint64_t max;
} Range;

static const Range workers_range = { 0, HTTP_WORKERS_MAX };
static const Range va_workers_range = { 1, 64 };
static const Range body_range = { 1024, 64u * 1024u * 1024u };
static const Range header_range = { 1024, 1024u * 1024u };
static const Range timeout_range = { 1, 3600 };
static const Range va_timeout_range = { 1, 300 };
static const Range va_response_wait_range = { 0, VA_RESPONSE_WAIT_MAX_USEC };
static const Range connections_range = { 1, 1000000 };
static const Range port_range = { 1, 65535 };

/* "64K", "1M", "512", "2G" (binary multiples; an optional trailing "B" or "iB"). */
static int parse_size(const char *s, uint64_t *ret) {
        unsigned long long v;
        uint64_t mult = 1;
        char *end;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -ERANGE;

        switch (toupper((unsigned char) *end)) {
        case 'K': mult = 1024u; end++; break;
        case 'M': mult = 1024u * 1024u; end++; break;
        case 'G': mult = 1024u * 1024u * 1024u; end++; break;
        default: break;
        }
        if (mult > 1 && (end[0] == 'i' || end[0] == 'I') && (end[1] == 'B' || end[1] == 'b'))
                end += 2;
        else if (*end == 'B' || *end == 'b')
                end++;
        if (*end != 0)
                return -EINVAL;
        if (v > UINT64_MAX / mult)
                return -ERANGE;

        *ret = (uint64_t) v * mult;
        return 0;
}

static int config_parse_size(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        const Range *range = userdata;
        uint64_t v;
        int r;

        r = parse_size(value, &v);
        if (r < 0)
                return r;
        if (v < range->min || v > range->max)
                return -ERANGE;
        *(size_t *) data = (size_t) v;
        return 0;
}

static int config_parse_unsigned_range(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        const Range *range = userdata;
        unsigned v;
        int r;

        r = conf_parse_unsigned(loc, value, &v, NULL);
        if (r < 0)
                return r;
        if (v < range->min || v > range->max)
                return -ERANGE;
        *(unsigned *) data = v;
        return 0;
}

static int config_parse_duration_range(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        const Range *range = userdata;
        int64_t v;
        int r;

        r = conf_parse_duration(loc, value, &v, NULL);
        if (r < 0)
                return r;
        if (v < (int64_t) range->min || v > (int64_t) range->max)
                return -ERANGE;
        *(int64_t *) data = v;
        return 0;
}

/* A short duration in microseconds: "250ms", "0", or anything duration_parse() takes ("1s", "2").
 * Sub-second values matter for ChallengeResponseWait=, which is typically below a second. */
static int config_parse_duration_usec(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        const Range *range = userdata;
        size_t l = strlen(value);
        uint64_t v;

        if (l > 2 && strcmp(value + l - 2, "ms") == 0) {
                unsigned long long ms;
                char *end;

                if (!isdigit((unsigned char) value[0]))
                        return -EINVAL;
                errno = 0;
                ms = strtoull(value, &end, 10);
                if (errno != 0 || ms > UINT64_MAX / 1000u)
                        return -ERANGE;
                if (end != value + l - 2)
                        return -EINVAL;
                v = (uint64_t) ms * 1000u;
        } else {
                int64_t sec;
                int r;

                r = conf_parse_duration(loc, value, &sec, NULL);
                if (r < 0)
                        return r;
                if (sec < 0 || (uint64_t) sec > UINT64_MAX / 1000000u)
                        return -ERANGE;
                v = (uint64_t) sec * 1000000u;
        }
        if (v < range->min || v > range->max)
                return -ERANGE;
        *(uint64_t *) data = v;
        return 0;
}

/* Every word must be an address we can bind; an empty value resets the list. */
static int config_parse_listen(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        _cleanup_(strv_freep) char **words = NULL;
        int r;

        r = strv_split(value, " \t", &words);
        if (r < 0)
                return r;
        for (char **w = words; w && *w; w++) {
                struct sockaddr_storage ss;
                socklen_t sl;

                r = http_parse_listen_address(*w, &ss, &sl);
                if (r < 0)
                        return r;
        }
        return conf_parse_strv(loc, value, data, NULL);
}

/* "https://host[:port]" without a path: the layer appends request paths to it verbatim. */
static int base_url_check(const char *value) {
        const char *rest;

        if (strncmp(value, "https://", 8) == 0)
                rest = value + 8;
        else if (strncmp(value, "http://", 7) == 0)
                rest = value + 7;
        else
                return -EINVAL;
        if (rest[0] == 0 || strlen(rest) > HTTP_HOST_MAX + 1)
                return -EINVAL;
        for (const char *p = rest; *p; p++) {
                if (*p == '/' && p[1] == 0)
                        break;
                if (!(isalnum((unsigned char) *p) || strchr(".-:[]_", *p)))
                        return -EINVAL;
        }
        return 0;
}

static int config_parse_base_url(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        char **p = data;
        char *copy;
        size_t l;

        if (value[0] == 0) {
                free(*p);
                *p = NULL;
                return 0;
        }
        if (base_url_check(value) < 0)
                return -EINVAL;
        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        l = strlen(copy);
        if (copy[l - 1] == '/')
                copy[l - 1] = 0;
        free(*p);
        *p = copy;
        return 0;
}

static int config_parse_database(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        /* "sqlite:/path" or an absolute path (a relative one would depend on the working
         * directory). Other schemes name backends this build does not have (PostgreSQL comes
         * later): refuse them here, with the line, rather than fail later on a missing file. */
        if (strncmp(value, "sqlite:", 7) == 0) {
                if (value[7] != '/')
                        return -EINVAL;
        } else if (value[0] != '/')
                return strstr(value, "://") ? -EPROTONOSUPPORT : -EINVAL;
        return conf_parse_string(loc, value, data, NULL);
}

#define S(field) offsetof(ServerConfig, field)
static const ConfItem server_config_table[] = {
        { "Server",     "StateDirectory", conf_parse_path,             S(state_directory), NULL },
        { "Server",     "Workers",        config_parse_unsigned_range, S(workers),         (void *) &workers_range },
        { "Server",     "BaseURL",        config_parse_base_url,       S(base_url),        NULL },
        { "HTTPS",      "Listen",         config_parse_listen,         S(https_listen),    NULL },
        { "HTTPS",      "Certificate",    conf_parse_path,             S(tls_certificate), NULL },
        { "HTTPS",      "Key",            conf_parse_path,             S(tls_key),         NULL },
        { "HTTPS",      "ClientCA",       conf_parse_path,             S(tls_client_ca),   NULL },
        { "HTTP",       "Listen",         config_parse_listen,         S(http_listen),     NULL },
        { "Limits",     "MaxBodySize",    config_parse_size,           S(max_body_size),   (void *) &body_range },
        { "Limits",     "MaxHeaderSize",  config_parse_size,           S(max_header_size), (void *) &header_range },
        { "Limits",     "Timeout",        config_parse_duration_range, S(timeout),         (void *) &timeout_range },
        { "Limits",     "MaxConnections", config_parse_unsigned_range, S(max_connections), (void *) &connections_range },
        { "Store",      "Database",       config_parse_database,       S(database),        NULL },
        { "Validation", "Resolver",       conf_parse_string,           S(va.resolver),     NULL },
        { "Validation", "HTTPPort",       config_parse_unsigned_range, S(va.http_port),    (void *) &port_range },
        { "Validation", "TLSPort",        config_parse_unsigned_range, S(va.tls_port),     (void *) &port_range },
        { "Validation", "Workers",        config_parse_unsigned_range, S(va.workers),      (void *) &va_workers_range },
        { "Validation", "Timeout",        config_parse_duration_range, S(va.timeout),      (void *) &va_timeout_range },
        { "Validation", "ChallengeResponseWait", config_parse_duration_usec, S(va.response_wait_usec), (void *) &va_response_wait_range },
        {}
};
#undef S

/* The embedded defaults, fed through the same loader as a file. "*" and the two zero-length
 * prefixes are ra-policy's "any DNS name" and "any IP address". */
static const char default_config_format[] =
        "[Server]\n"
        "StateDirectory=%1$s\n"
        "\n"
        "[HTTPS]\n"
        "Listen=127.0.0.1:8443\n"
        "\n"
        "[CA default]\n"
        "Backend=local\n"
        "Directory=%1$s/ca/default\n"
        "\n"
        "[RAProfile default]\n"
        "CA=default\n"
        "Enabled=yes\n"
        "AllowedIdentifiers=* 0.0.0.0/0 ::/0\n"
        "KeyAlgorithms=ec rsa ed25519\n"
        "Validity=47d\n"
        "ExtendedKeyUsage=serverAuth\n"
        "ACMEProfile=default\n"
        "\n"
        "[ACMEProfile default]\n"
        "Enabled=yes\n"
        "RAProfile=default\n";

const char *server_config_default_state_directory(void) {
        const char *e = getenv("STATE_DIRECTORY");

        /* systemd may pass several, colon-separated; ours is the first. Only absolute ones. */
        if (e && e[0] == '/' && !strchr(e, ':'))
                return e;
        return SERVER_STATE_DIRECTORY_DEFAULT;
}

ServerConfig *server_config_free(ServerConfig *c) {
        if (!c)
                return NULL;

        free(c->config_path);
        free(c->state_directory);
        free(c->base_url);
        strv_free(c->https_listen);
        free(c->tls_certificate);
        free(c->tls_key);
        free(c->tls_client_ca);
        strv_free(c->http_listen);
        free(c->database);
        free(c->va.resolver);
        profile_set_unref(c->profiles);
        free(c);
        return NULL;
}

static int set_error(char **ret_error, const char *format, ...) _printf_(2, 3);
static int set_error(char **ret_error, const char *format, ...) {
        va_list ap;

        if (!ret_error)
                return 0;
        va_start(ap, format);
        if (vasprintf(ret_error, format, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return 0;
}

static int make_absolute(const char *path, char **ret) {
        _cleanup_free_ char *cwd = NULL;
        char *p;

        if (path[0] == '/')
                p = strdup(path);
        else {
                cwd = getcwd(NULL, 0);
                if (!cwd)
                        return -errno;
                if (asprintf(&p, "%s/%s", cwd, path) < 0)
                        p = NULL;
        }
        if (!p)
                return -ENOMEM;

        /* Trailing slashes would turn "DIR/ca" into "DIR//ca" in every derived path. */
        size_t l = strlen(p);
        while (l > 1 && p[l - 1] == '/')
                p[--l] = 0;
        *ret = p;
        return 0;
}

/* `serve` with a local CA whose directory does not exist yet: create it, so that
 * `certfleet-server --state-dir DIR` works on an empty directory. */
static int create_missing_cas(ServerConfig *c, char **ret_error) {
        size_t n = profile_set_n_ca(c->profiles);

        for (size_t i = 0; i < n; i++) {
                const CaConfig *ca = profile_set_ca_at(c->profiles, i);
                _cleanup_free_ char *dir = NULL;
                int r;

                if (!ca || (ca->backend && strcmp(ca->backend, "local") != 0))
                        continue;

                if (ca->directory)
                        dir = strdup(ca->directory);
                else if (asprintf(&dir, "%s/ca/%s", c->state_directory, ca->name) < 0)
                        dir = NULL;
                if (!dir)
                        return -ENOMEM;

                if (access(dir, F_OK) >= 0)
                        continue;
                if (errno != ENOENT) {
                        r = -errno;
                        set_error(ret_error, "Cannot access directory '%s' of [CA %s]: %s", dir, ca->name, strerror(errno));
                        return r;
                }

                log_info("CA directory '%s' of [CA %s] does not exist, creating a new CA there.", dir, ca->name);
                r = ca_local_init(dir, KEY_EC_P256, "certfleet", false);
                if (r < 0) {
                        set_error(ret_error, "Failed to create CA [CA %s] in '%s': %s", ca->name, dir, strerror(-r));
                        return r;
                }
        }
        return 0;
}

static int config_finish(ServerConfig *c, const char *label, const ServerConfigOverrides *o,
                         unsigned flags, char **ret_error) {
        int r;

        if (o && o->state_directory) {
                free(c->state_directory);
                r = make_absolute(o->state_directory, &c->state_directory);
                if (r < 0)
                        return r;
        }
        if (o && o->https_listen) {
                strv_free(c->https_listen);
                c->https_listen = strv_copy(o->https_listen);
                if (!c->https_listen)
                        return -ENOMEM;
        }
        if (o && o->http_listen) {
                strv_free(c->http_listen);
                c->http_listen = strv_copy(o->http_listen);
                if (!c->http_listen)
                        return -ENOMEM;
        }
        for (char **l = c->https_listen; l && *l; l++) {
                struct sockaddr_storage ss;
                socklen_t sl;
                if (http_parse_listen_address(*l, &ss, &sl) < 0) {
                        set_error(ret_error, "Invalid listen address '%s'", *l);
                        return -EINVAL;
                }
        }
        for (char **l = c->http_listen; l && *l; l++) {
                struct sockaddr_storage ss;
                socklen_t sl;
                if (http_parse_listen_address(*l, &ss, &sl) < 0) {
                        set_error(ret_error, "Invalid listen address '%s'", *l);
                        return -EINVAL;
                }
        }

        if (!c->state_directory) {
                c->state_directory = strdup(server_config_default_state_directory());
                if (!c->state_directory)
                        return -ENOMEM;
        }
        if (!c->database && asprintf(&c->database, "sqlite:%s/certfleet.db", c->state_directory) < 0) {
                c->database = NULL;
                return -ENOMEM;
        }

        if (!!c->tls_certificate != !!c->tls_key) {
                set_error(ret_error, "%s: [HTTPS] %s= is set but %s= is not", label,
                          c->tls_certificate ? "Certificate" : "Key",
                          c->tls_certificate ? "Key" : "Certificate");
                return -EINVAL;
        }

        r = profile_set_set_state_directory(c->profiles, c->state_directory);
        if (r < 0) {
                set_error(ret_error, "%s: invalid state directory '%s'", label, c->state_directory);
                return r;
        }

        if (flags & SERVER_CONFIG_SETTINGS_ONLY)
                return 0;

        if (flags & SERVER_CONFIG_CREATE_MISSING_CA) {
                r = create_missing_cas(c, ret_error);
                if (r < 0)
                        return r;
        }

        _cleanup_free_ char *profile_error = NULL;
        r = profile_set_finish(c->profiles, getenv("CREDENTIALS_DIRECTORY"), &profile_error);
        if (r < 0) {
                /* Reference errors have no line of their own; the file still narrows it down. */
                set_error(ret_error, "%s: %s", label, profile_error ?: strerror(-r));
                return r;
        }
        return 0;
}

static int config_new(ServerConfig **ret) {
        _cleanup_(server_config_freep) ServerConfig *c = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->workers = 0;
        c->max_body_size = HTTP_BODY_MAX_DEFAULT;
        c->max_header_size = HTTP_HEADERS_MAX_DEFAULT;
        c->timeout = SERVER_TIMEOUT_DEFAULT;
        c->max_connections = SERVER_MAX_CONNECTIONS_DEFAULT;
        c->va = (VaConfig) {
                .http_port = VA_HTTP_PORT_DEFAULT,
                .tls_port = VA_TLS_PORT_DEFAULT,
                .workers = VA_WORKERS_DEFAULT,
                .timeout = VA_TIMEOUT_DEFAULT,
                .response_wait_usec = VA_RESPONSE_WAIT_DEFAULT_USEC,
        };
        r = profile_set_new(&c->profiles);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

int server_config_load_full(const char *path, const ServerConfigOverrides *overrides, unsigned flags,
                            ServerConfig **ret, char **ret_error) {
        _cleanup_(server_config_freep) ServerConfig *c = NULL;
        ConfError error = {};
        const char *label;
        int r;

        if (!ret)
                return -EINVAL;
        if (ret_error)
                *ret_error = NULL;

        r = config_new(&c);
        if (r < 0)
                return r;

        /* No main file: the embedded defaults, with the drop-ins (if any) on top, as systemd
         * reads its own configuration. A typo'd --config with no drop-ins is still an error. */
        bool defaults = !path || (access(path, F_OK) < 0 && errno == ENOENT);
        label = path ?: "(embedded defaults)";

        if (defaults) {
                _cleanup_free_ char *state_dir = NULL, *text = NULL;
                int n;

                r = make_absolute(overrides && overrides->state_directory ? overrides->state_directory :
                                  server_config_default_state_directory(), &state_dir);
                if (r < 0)
                        return r;
                /* The path goes into an INI line; a newline in it would inject configuration. */
                if (strpbrk(state_dir, "\n\r")) {
                        set_error(ret_error, "Invalid state directory '%s'", state_dir);
                        return -EINVAL;
                }
                n = asprintf(&text, default_config_format, state_dir);
                if (n < 0) {
                        text = NULL;
                        return -ENOMEM;
                }
                r = conf_load_string("(embedded defaults)", text, (size_t) n, server_config_table, c,
                                     profile_set_section_handler, c->profiles, &error);
        }
        if (path && r >= 0) {
                c->config_path = strdup(path);
                if (!c->config_path)
                        return -ENOMEM;
                r = conf_load(path, server_config_table, c, profile_set_section_handler, c->profiles, &error);
                if (r == -ENOENT && defaults && overrides && overrides->config_optional)
                        r = 0;
        }
        if (r < 0) {
                if (error.message) {
                        if (ret_error)
                                *ret_error = TAKE_PTR(error.message);
                } else if (r == -ENOENT)
                        set_error(ret_error, "%s: No such file", label);
                else
                        set_error(ret_error, "%s: %s", label, strerror(-r));
                conf_error_done(&error);
                return r;
        }
        conf_error_done(&error);

        r = config_finish(c, label, overrides, flags, ret_error);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

int server_config_load(const char *path, ServerConfig **ret, char **ret_error) {
        if (!path)
                return -EINVAL;
        return server_config_load_full(path, NULL, 0, ret, ret_error);
}

int server_config_new_default(const char *state_dir, ServerConfig **ret, char **ret_error) {
        ServerConfigOverrides o = { .state_directory = state_dir };

        return server_config_load_full(NULL, &o, 0, ret, ret_error);
}
