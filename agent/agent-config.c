/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent-config.h"
#include "shared/base64.h"
#include "shared/fileio.h"
#include "shared/strv.h"

#define SECRET_FILE_MAX 4096

static const char *const challenge_names[_AGENT_CHALLENGE_MAX] = {
        [AGENT_CHALLENGE_HTTP01] = "http-01",
        [AGENT_CHALLENGE_TLSALPN01] = "tls-alpn-01",
        [AGENT_CHALLENGE_DNS01] = "dns-01",
};

const char *agent_challenge_type_to_string(AgentChallengeType t) {
        if (t < 0 || t >= _AGENT_CHALLENGE_MAX)
                return NULL;
        return challenge_names[t];
}

AgentChallengeType agent_challenge_type_from_string(const char *s) {
        if (!s)
                return _AGENT_CHALLENGE_INVALID;
        for (int i = 0; i < _AGENT_CHALLENGE_MAX; i++)
                if (strcasecmp(s, challenge_names[i]) == 0)
                        return (AgentChallengeType) i;
        return _AGENT_CHALLENGE_INVALID;
}

bool agent_cert_name_is_valid(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > AGENT_CERT_NAME_MAX || name[0] == '.')
                return false;
        for (const char *p = name; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("_.-", *p))
                        return false;
        return true;
}

AgentConfig *agent_config_free(AgentConfig *c) {
        if (!c)
                return NULL;
        free(c->state_directory);
        free(c->default_server);
        free(c->default_ca_bundle);
        free(c->default_email);
        free(c);
        return NULL;
}

static const ConfItem agent_conf_table[] = {
        { "Agent", "StateDirectory", conf_parse_path,   offsetof(AgentConfig, state_directory),   NULL },
        { "Agent", "Server",         conf_parse_string, offsetof(AgentConfig, default_server),    NULL },
        { "Agent", "CABundle",       conf_parse_path,   offsetof(AgentConfig, default_ca_bundle), NULL },
        { "Agent", "Email",          conf_parse_string, offsetof(AgentConfig, default_email),     NULL },
        {},
};

static int take_conf_error(ConfError *e, const char *fallback_path, int r, char **ret_error) {
        if (ret_error) {
                if (e->message)
                        *ret_error = TAKE_PTR(e->message);
                else if (asprintf(ret_error, "%s: %s", fallback_path, strerror(r < 0 ? -r : r)) < 0)
                        *ret_error = NULL;
        }
        conf_error_done(e);
        return r;
}

int agent_config_load(const char *path, AgentConfig **ret, char **ret_error) {
        _cleanup_(agent_config_freep) AgentConfig *c = NULL;
        ConfError e = {};
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;

        r = conf_load(path, agent_conf_table, c, NULL, NULL, &e);
        if (r < 0 && r != -ENOENT)
                return take_conf_error(&e, path, r, ret_error);
        conf_error_done(&e);

        if (!c->state_directory) {
                c->state_directory = strdup("/var/lib/certfleet/agent");
                if (!c->state_directory)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

static int parse_key_type(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        KeyType t = key_type_from_string(value);
        if (t < 0)
                return -EINVAL;
        *(KeyType *) data = t;
        return 0;
}

static int parse_challenge(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        AgentChallengeType t = agent_challenge_type_from_string(value);
        if (t < 0)
                return -EINVAL;
        *(AgentChallengeType *) data = t;
        return 0;
}

/* ExecDeploy= takes one command line per assignment (unlike the word lists of Names=); an empty
 * value resets the list, as in systemd. */
static int parse_command(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        char ***l = data;

        if (!value || !*value) {
                *l = strv_free(*l);
                return 0;
        }
        if (value[0] != '/')
                return -EINVAL;
        return strv_extend(l, value);
}

/* host:port or [v6]:port, port 1…65535. */
static int parse_listen(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        const char *colon = strrchr(value, ':');
        char *end = NULL;
        unsigned long port;
        char *copy;

        if (!colon || colon == value)
                return -EINVAL;
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno || !end || *end || port == 0 || port > 65535)
                return -EINVAL;
        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        free(*(char **) data);
        *(char **) data = copy;
        return 0;
}

static const ConfItem cert_conf_table[] = {
        { "Certificate", "Protocol",    conf_parse_string, offsetof(CertConfig, protocol),           NULL },
        { "Certificate", "Server",      conf_parse_string, offsetof(CertConfig, server),             NULL },
        { "Certificate", "Profile",     conf_parse_string, offsetof(CertConfig, profile),            NULL },
        { "Certificate", "Names",       conf_parse_strv,   offsetof(CertConfig, names),              NULL },
        { "Certificate", "KeyType",     parse_key_type,    offsetof(CertConfig, key_type),           NULL },
        { "Certificate", "ReuseKey",    conf_parse_bool,   offsetof(CertConfig, reuse_key),          NULL },
        { "Certificate", "CABundle",    conf_parse_path,   offsetof(CertConfig, ca_bundle),          NULL },
        { "ACME",        "Email",       conf_parse_string, offsetof(CertConfig, email),              NULL },
        { "ACME",        "EABKeyID",    conf_parse_string, offsetof(CertConfig, eab_kid),            NULL },
        { "ACME",        "EABKey",      conf_parse_string, offsetof(CertConfig, eab_key),            NULL },
        { "ACME",        "Challenge",   parse_challenge,   offsetof(CertConfig, challenge),          NULL },
        { "ACME",        "HTTPListen",  parse_listen,      offsetof(CertConfig, http_listen),        NULL },
        { "ACME",        "Webroot",     conf_parse_path,   offsetof(CertConfig, webroot),            NULL },
        { "ACME",        "TLSListen",   parse_listen,      offsetof(CertConfig, tls_listen),         NULL },
        { "ACME",        "DNSHook",     conf_parse_path,   offsetof(CertConfig, dns_hook),           NULL },
        { "Deploy",      "Certificate", conf_parse_path,   offsetof(CertConfig, deploy_certificate), NULL },
        { "Deploy",      "Chain",       conf_parse_path,   offsetof(CertConfig, deploy_chain),       NULL },
        { "Deploy",      "FullChain",   conf_parse_path,   offsetof(CertConfig, deploy_fullchain),   NULL },
        { "Deploy",      "Key",         conf_parse_path,   offsetof(CertConfig, deploy_key),         NULL },
        { "Deploy",      "Owner",       conf_parse_string, offsetof(CertConfig, owner),              NULL },
        { "Deploy",      "Group",       conf_parse_string, offsetof(CertConfig, group),              NULL },
        { "Deploy",      "Mode",        conf_parse_mode,   offsetof(CertConfig, mode),               NULL },
        { "Deploy",      "ReloadUnits", conf_parse_strv,   offsetof(CertConfig, reload_units),       NULL },
        { "Deploy",      "ExecDeploy",  parse_command,     offsetof(CertConfig, exec_deploy),        NULL },
        {},
};

CertConfig *cert_config_ref(CertConfig *c) {
        if (c)
                c->n_ref++;
        return c;
}

static void cert_config_destroy(CertConfig *c) {
        free(c->name);
        free(c->path);
        free(c->protocol);
        free(c->server);
        free(c->profile);
        strv_free(c->names);
        free(c->ca_bundle);
        free(c->email);
        free(c->eab_kid);
        free(c->eab_key);
        free(c->http_listen);
        free(c->webroot);
        free(c->tls_listen);
        free(c->dns_hook);
        free(c->deploy_certificate);
        free(c->deploy_chain);
        free(c->deploy_fullchain);
        free(c->deploy_key);
        free(c->owner);
        free(c->group);
        strv_free(c->reload_units);
        strv_free(c->exec_deploy);
        free(c);
}

/* The manager and the worker thread hold references; both only touch them on the event loop
 * thread (the worker's reference is dropped when its result is dispatched), so no atomics. */
CertConfig *cert_config_unref(CertConfig *c) {
        if (!c)
                return NULL;
        if (--c->n_ref == 0)
                cert_config_destroy(c);
        return NULL;
}

static int fail(char **ret_error, int r, const char *path, const char *what) {
        if (ret_error && asprintf(ret_error, "%s: %s", path, what) < 0)
                *ret_error = NULL;
        return r;
}

static int dup_default(char **field, const char *value) {
        if (*field || !value)
                return 0;
        *field = strdup(value);
        return *field ? 0 : -ENOMEM;
}

static int name_from_path(const char *path, char **ret) {
        const char *base = strrchr(path, '/');
        size_t n;
        char *name;

        base = base ? base + 1 : path;
        n = strlen(base);
        if (n <= 5 || strcmp(base + n - 5, ".conf") != 0)
                return -EINVAL;
        name = strndup(base, n - 5);
        if (!name)
                return -ENOMEM;
        if (!agent_cert_name_is_valid(name)) {
                free(name);
                return -EINVAL;
        }
        *ret = name;
        return 0;
}

static bool dns_name_is_plausible(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 253)
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("-.*_", *p))
                        return false;
        return true;
}

int cert_config_load(const char *path, const AgentConfig *defaults, CertConfig **ret, char **ret_error) {
        _cleanup_(cert_config_unrefp) CertConfig *c = NULL;
        ConfError e = {};
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->key_type = KEY_EC_P256;
        c->challenge = AGENT_CHALLENGE_HTTP01;
        c->mode = 0600;

        r = name_from_path(path, &c->name);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(ret_error, r, path, "file name is not a valid certificate name "
                            "(NAME.conf, NAME of letters, digits, '_', '.', '-')");
        c->path = strdup(path);
        if (!c->path)
                return -ENOMEM;

        r = conf_load(path, cert_conf_table, c, NULL, NULL, &e);
        if (r < 0)
                return take_conf_error(&e, path, r, ret_error);
        conf_error_done(&e);

        if (defaults) {
                if (dup_default(&c->server, defaults->default_server) < 0 ||
                    dup_default(&c->ca_bundle, defaults->default_ca_bundle) < 0 ||
                    dup_default(&c->email, defaults->default_email) < 0)
                        return -ENOMEM;
        }
        if (!c->protocol && !(c->protocol = strdup("acme")))
                return -ENOMEM;

        if (strcmp(c->protocol, "acme") != 0)
                return fail(ret_error, -EINVAL, path, "[Certificate] Protocol= must be \"acme\"");
        if (!c->server)
                return fail(ret_error, -EINVAL, path, "[Certificate] Server= (the ACME directory URL) is not set");
        if (strncmp(c->server, "https://", 8) != 0 && strncmp(c->server, "http://", 7) != 0)
                return fail(ret_error, -EINVAL, path, "[Certificate] Server= must be an http(s) URL");
        if (strv_length(c->names) == 0)
                return fail(ret_error, -EINVAL, path, "[Certificate] Names= is empty");
        if (strv_length(c->names) > AGENT_NAMES_MAX)
                return fail(ret_error, -E2BIG, path, "[Certificate] Names= lists too many names");
        for (char **n = c->names; *n; n++)
                if (!dns_name_is_plausible(*n))
                        return fail(ret_error, -EINVAL, path, "[Certificate] Names= contains an invalid DNS name");
        if (!!c->eab_kid != !!c->eab_key)
                return fail(ret_error, -EINVAL, path, "[ACME] EABKeyID= and EABKey= must be set together");

        switch (c->challenge) {
        case AGENT_CHALLENGE_HTTP01:
                if (!c->http_listen == !c->webroot)
                        return fail(ret_error, -EINVAL, path,
                                    "[ACME] Challenge=http-01 needs exactly one of HTTPListen= and Webroot=");
                break;
        case AGENT_CHALLENGE_TLSALPN01:
                if (!c->tls_listen)
                        return fail(ret_error, -EINVAL, path, "[ACME] Challenge=tls-alpn-01 needs TLSListen=");
                break;
        case AGENT_CHALLENGE_DNS01:
                if (!c->dns_hook)
                        return fail(ret_error, -EINVAL, path, "[ACME] Challenge=dns-01 needs DNSHook=");
                break;
        default:
                return fail(ret_error, -EINVAL, path, "[ACME] Challenge= is invalid");
        }
        if (c->challenge != AGENT_CHALLENGE_DNS01)
                for (char **n = c->names; *n; n++)
                        if ((*n)[0] == '*')
                                return fail(ret_error, -EINVAL, path,
                                            "wildcard names can only be validated with Challenge=dns-01");

        *ret = TAKE_PTR(c);
        return 0;
}

int agent_config_read_secret(const char *reference, SecretBuf *ret) {
        _cleanup_free_ char *path = NULL;
        char *text = NULL;
        size_t size = 0, n;
        void *key = NULL;
        size_t key_size = 0;
        int r;

        if (!reference || !*reference)
                return -EINVAL;
        if (reference[0] == '/')
                path = strdup(reference);
        else {
                const char *dir = getenv("CREDENTIALS_DIRECTORY");
                if (!dir)
                        return -ENOKEY;
                /* A credential name, never a path out of the credentials directory. */
                if (strchr(reference, '/') || strcmp(reference, ".") == 0 || strcmp(reference, "..") == 0)
                        return -EINVAL;
                if (asprintf(&path, "%s/%s", dir, reference) < 0)
                        path = NULL;
        }
        if (!path)
                return -ENOMEM;

        r = read_full_file(path, SECRET_FILE_MAX, &text, &size);
        if (r < 0)
                return r;
        n = size;
        while (n > 0 && isspace((unsigned char) text[n - 1]))
                n--;
        r = base64url_decode(text, n, &key, &key_size);
        explicit_bzero(text, size);
        free(text);
        if (r < 0)
                return r;
        if (key_size == 0) {
                free(key);
                return -EINVAL;
        }
        ret->data = key;
        ret->size = key_size;
        return 0;
}
