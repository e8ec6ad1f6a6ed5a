/* SPDX-License-Identifier: Apache-2.0 */
/* The profile set of DESIGN §5: [CA …], [RAProfile …] and [ACMEProfile …] sections, checked and
 * with their CA backends opened, as one refcounted immutable snapshot. */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <openssl/objects.h>

#include "server/ca/ca.h"
#include "server/ra/ra-profile.h"
#include "server/ra/ra-internal.h"
#include "server/ra/ra.h"
#include "shared/base64.h"
#include "shared/errors.h"
#include "shared/fileio.h"
#include "shared/key.h"
#include "shared/log.h"
#include "shared/strv.h"

#define PROFILE_NAME_MAX 64
#define PROFILES_MAX 1024               /* of each kind */
#define EAB_CREDENTIAL_FILE_MAX 4096
#define EAB_KEY_MIN_BYTES 16            /* an HMAC key shorter than 128 bits is guessable */

#define DEFAULT_VALIDITY (47 * 24 * 3600)
#define DEFAULT_MAX_VALIDITY (90 * 24 * 3600)
#define DEFAULT_ORDER_LIFETIME (7 * 24 * 3600)
#define DEFAULT_AUTHZ_LIFETIME (30 * 24 * 3600)
#define DEFAULT_MAX_IDENTIFIERS 100
#define DEFAULT_STATE_DIRECTORY "/var/lib/certfleet/server"

struct ProfileSet {
        unsigned n_ref;
        bool finished;
        char *state_directory;

        CaConfig **cas;
        CaBackend **backends;           /* parallel to cas, filled by profile_set_finish() */
        size_t n_cas;
        RaProfile **ras;
        size_t n_ras;
        AcmeProfile **acmes;
        size_t n_acmes;
};

static const ConfItem ca_items[] = {
        { "CA", "Backend",      conf_parse_string, offsetof(CaConfig, backend),        NULL },
        { "CA", "Directory",    conf_parse_path,   offsetof(CaConfig, directory),      NULL },
        { "CA", "CRLURL",       conf_parse_string, offsetof(CaConfig, crl_url),        NULL },
        { "CA", "OCSPURL",      conf_parse_string, offsetof(CaConfig, ocsp_url),       NULL },
        { "CA", "CAIssuersURL", conf_parse_string, offsetof(CaConfig, ca_issuers_url), NULL },
        {}
};

static const ConfItem ra_items[] = {
        { "RAProfile", "CA",                 conf_parse_string,   offsetof(RaProfile, ca),                  NULL },
        { "RAProfile", "Enabled",            conf_parse_bool,     offsetof(RaProfile, enabled),             NULL },
        { "RAProfile", "AllowedIdentifiers", conf_parse_strv,     offsetof(RaProfile, allowed_identifiers), NULL },
        { "RAProfile", "KeyAlgorithms",      conf_parse_strv,     offsetof(RaProfile, key_algorithms),      NULL },
        { "RAProfile", "MinRSABits",         conf_parse_unsigned, offsetof(RaProfile, min_rsa_bits),        NULL },
        { "RAProfile", "MinECBits",          conf_parse_unsigned, offsetof(RaProfile, min_ec_bits),         NULL },
        { "RAProfile", "Validity",           conf_parse_duration, offsetof(RaProfile, validity),            NULL },
        { "RAProfile", "MaxValidity",        conf_parse_duration, offsetof(RaProfile, max_validity),        NULL },
        { "RAProfile", "ExtendedKeyUsage",   conf_parse_strv,     offsetof(RaProfile, ekus),                NULL },
        { "RAProfile", "ApprovalRequired",   conf_parse_bool,     offsetof(RaProfile, approval_required),   NULL },
        { "RAProfile", "ACMEProfile",        conf_parse_string,   offsetof(RaProfile, acme_profile),        NULL },
        {}
};

static const ConfItem acme_items[] = {
        { "ACMEProfile", "Enabled",                 conf_parse_bool,     offsetof(AcmeProfile, enabled),          NULL },
        { "ACMEProfile", "RAProfile",               conf_parse_string,   offsetof(AcmeProfile, ra_profile),       NULL },
        { "ACMEProfile", "TermsOfService",          conf_parse_string,   offsetof(AcmeProfile, terms_of_service), NULL },
        { "ACMEProfile", "Website",                 conf_parse_string,   offsetof(AcmeProfile, website),          NULL },
        { "ACMEProfile", "ExternalAccountRequired", conf_parse_bool,     offsetof(AcmeProfile, eab_required),     NULL },
        { "ACMEProfile", "EABKeys",                 conf_parse_strv,     offsetof(AcmeProfile, eab_key_specs),    NULL },
        { "ACMEProfile", "MaxIdentifiers",          conf_parse_unsigned, offsetof(AcmeProfile, max_identifiers),  NULL },
        { "ACMEProfile", "OrderLifetime",           conf_parse_duration, offsetof(AcmeProfile, order_lifetime),   NULL },
        { "ACMEProfile", "AuthorizationLifetime",   conf_parse_duration, offsetof(AcmeProfile, authz_lifetime),   NULL },
        {}
};

static void ca_config_free(CaConfig *c) {
        if (!c)
                return;
        free(c->name);
        free(c->backend);
        free(c->directory);
        free(c->crl_url);
        free(c->ocsp_url);
        free(c->ca_issuers_url);
        free(c);
}

static void ra_profile_free(RaProfile *r) {
        if (!r)
                return;
        free(r->name);
        free(r->ca);
        strv_free(r->allowed_identifiers);
        strv_free(r->key_algorithms);
        strv_free(r->ekus);
        free(r->acme_profile);
        free(r);
}

static void acme_profile_free(AcmeProfile *a) {
        if (!a)
                return;
        free(a->name);
        free(a->ra_profile);
        free(a->terms_of_service);
        free(a->website);
        for (size_t i = 0; i < a->n_eab_keys; i++) {
                free(a->eab_keys[i].kid);
                secret_buf_done(&a->eab_keys[i].hmac_key);
        }
        free(a->eab_keys);
        strv_free(a->eab_key_specs);
        free(a);
}

static ProfileSet *profile_set_free(ProfileSet *p) {
        for (size_t i = 0; i < p->n_cas; i++) {
                if (p->backends)
                        ca_backend_unref(p->backends[i]);
                ca_config_free(p->cas[i]);
        }
        free(p->backends);
        free(p->cas);
        for (size_t i = 0; i < p->n_ras; i++)
                ra_profile_free(p->ras[i]);
        free(p->ras);
        for (size_t i = 0; i < p->n_acmes; i++)
                acme_profile_free(p->acmes[i]);
        free(p->acmes);
        free(p->state_directory);
        free(p);
        return NULL;
}

int profile_set_new(ProfileSet **ret) {
        ProfileSet *p;

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->n_ref = 1;
        *ret = p;
        return 0;
}

ProfileSet *profile_set_ref(ProfileSet *p) {
        if (p)
                __atomic_add_fetch(&p->n_ref, 1, __ATOMIC_RELAXED);
        return p;
}

ProfileSet *profile_set_unref(ProfileSet *p) {
        if (!p)
                return NULL;
        if (__atomic_sub_fetch(&p->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;
        return profile_set_free(p);
}

int profile_set_set_state_directory(ProfileSet *p, const char *state_directory) {
        char *s;

        if (!p || p->finished || !state_directory || state_directory[0] != '/')
                return -EINVAL;
        s = strdup(state_directory);
        if (!s)
                return -ENOMEM;
        free(p->state_directory);
        p->state_directory = s;
        return 0;
}

/* Names appear in URLs and file names: keep them to a safe alphabet. */
static bool profile_name_valid(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > PROFILE_NAME_MAX || name[0] == '.')
                return false;
        for (const char *c = name; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.'))
                        return false;
        return true;
}

static int array_append(void ***array, size_t *n, void *item) {
        void **a;

        if (*n >= PROFILES_MAX)
                return -E2BIG;
        a = reallocarray(*array, *n + 1, sizeof(void *));
        if (!a)
                return -ENOMEM;
        a[(*n)++] = item;
        *array = a;
        return 0;
}

int profile_set_section_handler(const char *section, const char *name, void *userdata,
                                const ConfItem **ret_table, void **ret_target) {
        ProfileSet *p = userdata;
        int r;

        if (!section || !p)
                return -EINVAL;
        if (p->finished)
                return -EBUSY;

        if (strcmp(section, "CA") == 0) {
                CaConfig *c;

                if (!profile_name_valid(name))
                        return -EINVAL;
                c = (CaConfig *) profile_set_get_ca(p, name);
                if (!c) {
                        c = calloc(1, sizeof *c);
                        if (!c)
                                return -ENOMEM;
                        c->name = strdup(name);
                        if (!c->name) {
                                ca_config_free(c);
                                return -ENOMEM;
                        }
                        r = array_append((void ***) &p->cas, &p->n_cas, c);
                        if (r < 0) {
                                ca_config_free(c);
                                return r;
                        }
                }
                *ret_table = ca_items;
                *ret_target = c;
                return 0;
        }

        if (strcmp(section, "RAProfile") == 0) {
                RaProfile *ra;

                if (!profile_name_valid(name))
                        return -EINVAL;
                ra = (RaProfile *) profile_set_get_ra(p, name);
                if (!ra) {
                        ra = calloc(1, sizeof *ra);
                        if (!ra)
                                return -ENOMEM;
                        *ra = (RaProfile) {
                                .name = strdup(name),
                                .enabled = true,
                                .min_rsa_bits = 2048,
                                .min_ec_bits = 256,
                                .validity = DEFAULT_VALIDITY,
                                .max_validity = DEFAULT_MAX_VALIDITY,
                        };
                        if (!ra->name) {
                                ra_profile_free(ra);
                                return -ENOMEM;
                        }
                        r = array_append((void ***) &p->ras, &p->n_ras, ra);
                        if (r < 0) {
                                ra_profile_free(ra);
                                return r;
                        }
                }
                *ret_table = ra_items;
                *ret_target = ra;
                return 0;
        }

        if (strcmp(section, "ACMEProfile") == 0) {
                AcmeProfile *a;

                if (!profile_name_valid(name))
                        return -EINVAL;
                a = (AcmeProfile *) profile_set_get_acme(p, name);
                if (!a) {
                        a = calloc(1, sizeof *a);
                        if (!a)
                                return -ENOMEM;
                        *a = (AcmeProfile) {
                                .name = strdup(name),
                                .enabled = true,
                                .max_identifiers = DEFAULT_MAX_IDENTIFIERS,
                                .order_lifetime = DEFAULT_ORDER_LIFETIME,
                                .authz_lifetime = DEFAULT_AUTHZ_LIFETIME,
                        };
                        if (!a->name) {
                                acme_profile_free(a);
                                return -ENOMEM;
                        }
                        r = array_append((void ***) &p->acmes, &p->n_acmes, a);
                        if (r < 0) {
                                acme_profile_free(a);
                                return r;
                        }
                }
                *ret_table = acme_items;
                *ret_target = a;
                return 0;
        }

        return -ENOENT;
}

static int set_error(char **ret_error, int r, const char *format, ...) _printf_(3, 4);
static int set_error(char **ret_error, int r, const char *format, ...) {
        va_list ap;

        if (ret_error) {
                char *m = NULL;

                va_start(ap, format);
                if (vasprintf(&m, format, ap) < 0)
                        m = NULL;
                va_end(ap);
                free(*ret_error);
                *ret_error = m;
        }
        return r;
}

/* URLs go into certificate extensions: only plain http(s) URLs without characters that would
 * need escaping in an extension value. */
static bool extension_url_valid(const char *url) {
        if (!url)
                return true;
        if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
                return false;
        if (strlen(url) > 1024)
                return false;
        for (const char *c = url; *c; c++)
                if (*c <= ' ' || *c >= 0x7f || *c == ',' || *c == '"' || *c == '\\')
                        return false;
        return true;
}

static int strv_set_default(char ***l, const char *a, const char *b) {
        int r;

        if (*l)
                return 0;
        r = strv_extend(l, a);
        if (r < 0)
                return r;
        if (b)
                return strv_extend(l, b);
        return 0;
}

static int ca_finish(ProfileSet *p, CaConfig *c, char **ret_error) {
        if (!c->backend) {
                c->backend = strdup("local");
                if (!c->backend)
                        return -ENOMEM;
        }
        if (!c->directory) {
                if (asprintf(&c->directory, "%s/ca/%s",
                             p->state_directory ?: DEFAULT_STATE_DIRECTORY, c->name) < 0) {
                        c->directory = NULL;
                        return -ENOMEM;
                }
        }
        if (!extension_url_valid(c->crl_url))
                return set_error(ret_error, -EINVAL, "[CA %s]: CRLURL= is not a plain http(s) URL.", c->name);
        if (!extension_url_valid(c->ocsp_url))
                return set_error(ret_error, -EINVAL, "[CA %s]: OCSPURL= is not a plain http(s) URL.", c->name);
        if (!extension_url_valid(c->ca_issuers_url))
                return set_error(ret_error, -EINVAL, "[CA %s]: CAIssuersURL= is not a plain http(s) URL.", c->name);
        return 0;
}

static int ra_finish(ProfileSet *p, RaProfile *ra, char **ret_error) {
        int r;

        if (!ra->ca) {
                if (p->n_cas != 1)
                        return set_error(ret_error, -EINVAL, "[RAProfile %s]: CA= is required.", ra->name);
                /* With exactly one CA there is nothing to choose. */
                ra->ca = strdup(p->cas[0]->name);
                if (!ra->ca)
                        return -ENOMEM;
        }
        if (!profile_set_get_ca(p, ra->ca))
                return set_error(ret_error, -ENOENT, "[RAProfile %s]: CA '%s' is not defined.", ra->name, ra->ca);

        r = strv_set_default(&ra->key_algorithms, "ec", "rsa");
        if (r < 0)
                return r;
        r = strv_set_default(&ra->ekus, "serverAuth", NULL);
        if (r < 0)
                return r;

        for (char **i = ra->key_algorithms; *i; i++)
                if (key_algorithm_from_string(*i) < 0)
                        return set_error(ret_error, -EINVAL, "[RAProfile %s]: unknown key algorithm '%s'.", ra->name, *i);
        for (char **i = ra->ekus; *i; i++) {
                ASN1_OBJECT *o = OBJ_txt2obj(*i, 0);
                if (!o)
                        return set_error(ret_error, -EINVAL, "[RAProfile %s]: unknown extended key usage '%s'.", ra->name, *i);
                ASN1_OBJECT_free(o);
        }
        for (char **i = ra->allowed_identifiers; i && *i; i++)
                if (!ra_identifier_pattern_valid(*i))
                        return set_error(ret_error, -EINVAL, "[RAProfile %s]: invalid identifier pattern '%s'.", ra->name, *i);

        if (ra->min_rsa_bits < 2048 || ra->min_rsa_bits > 16384)
                return set_error(ret_error, -EINVAL, "[RAProfile %s]: MinRSABits= out of range.", ra->name);
        if (ra->validity <= 0 || ra->max_validity <= 0)
                return set_error(ret_error, -EINVAL, "[RAProfile %s]: validity must be positive.", ra->name);
        if (ra->validity > ra->max_validity)
                return set_error(ret_error, -EINVAL, "[RAProfile %s]: Validity= exceeds MaxValidity=.", ra->name);

        if (ra->acme_profile && !profile_set_get_acme(p, ra->acme_profile))
                return set_error(ret_error, -ENOENT, "[RAProfile %s]: ACME profile '%s' is not defined.",
                                 ra->name, ra->acme_profile);
        return 0;
}

static int eab_key_load(const char *spec, const char *credentials_dir, EabKey *ret, char **ret_error,
                        const char *profile) {
        _cleanup_free_ char *kid = NULL, *path = NULL, *data = NULL;
        _cleanup_free_ void *key = NULL;
        size_t size, key_size;
        const char *colon, *cred;
        int r;

        colon = strchr(spec, ':');
        if (!colon || colon == spec || colon[1] == '\0')
                return set_error(ret_error, -EINVAL, "[ACMEProfile %s]: EABKeys= entry '%s' is not KID:CREDENTIAL.",
                                 profile, spec);
        kid = strndup(spec, colon - spec);
        if (!kid)
                return -ENOMEM;
        cred = colon + 1;

        if (cred[0] == '/')
                path = strdup(cred);
        else {
                if (!credentials_dir)
                        return set_error(ret_error, -ENOENT,
                                         "[ACMEProfile %s]: EAB credential '%s' needs $CREDENTIALS_DIRECTORY.",
                                         profile, cred);
                if (strchr(cred, '/') || strcmp(cred, ".") == 0 || strcmp(cred, "..") == 0)
                        return set_error(ret_error, -EINVAL, "[ACMEProfile %s]: bad credential name '%s'.",
                                         profile, cred);
                if (asprintf(&path, "%s/%s", credentials_dir, cred) < 0)
                        path = NULL;
        }
        if (!path)
                return -ENOMEM;

        r = read_full_file(path, EAB_CREDENTIAL_FILE_MAX, &data, &size);
        if (r < 0)
                return set_error(ret_error, r, "[ACMEProfile %s]: failed to read EAB key '%s': %s",
                                 profile, path, strerror(-r));
        /* A trailing newline is what every editor and echo(1) leave behind. */
        while (size > 0 && (data[size - 1] == '\n' || data[size - 1] == '\r' ||
                            data[size - 1] == ' ' || data[size - 1] == '\t'))
                size--;

        r = base64url_decode(data, size, &key, &key_size);
        explicit_bzero(data, size);
        if (r < 0)
                return set_error(ret_error, -EINVAL, "[ACMEProfile %s]: EAB key '%s' is not base64url.",
                                 profile, path);
        if (key_size < EAB_KEY_MIN_BYTES) {
                explicit_bzero(key, key_size);
                return set_error(ret_error, -EINVAL, "[ACMEProfile %s]: EAB key '%s' is shorter than %d bytes.",
                                 profile, path, EAB_KEY_MIN_BYTES);
        }

        ret->kid = TAKE_PTR(kid);
        ret->hmac_key = (SecretBuf) { .data = TAKE_PTR(key), .size = key_size };
        return 0;
}

static int acme_finish(ProfileSet *p, AcmeProfile *a, const char *credentials_dir, char **ret_error) {
        size_t n;
        int r;

        if (a->ra_profile && !profile_set_get_ra(p, a->ra_profile))
                return set_error(ret_error, -ENOENT, "[ACMEProfile %s]: RA profile '%s' is not defined.",
                                 a->name, a->ra_profile);
        if (a->max_identifiers == 0 || a->max_identifiers > 1000)
                return set_error(ret_error, -EINVAL, "[ACMEProfile %s]: MaxIdentifiers= must be 1…1000.", a->name);
        if (a->order_lifetime <= 0 || a->authz_lifetime <= 0)
                return set_error(ret_error, -EINVAL, "[ACMEProfile %s]: lifetimes must be positive.", a->name);

        n = strv_length(a->eab_key_specs);
        if (n > 0) {
                a->eab_keys = calloc(n, sizeof(EabKey));
                if (!a->eab_keys)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                r = eab_key_load(a->eab_key_specs[i], credentials_dir, &a->eab_keys[a->n_eab_keys], ret_error, a->name);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < a->n_eab_keys; j++)
                        if (strcmp(a->eab_keys[j].kid, a->eab_keys[a->n_eab_keys].kid) == 0) {
                                free(a->eab_keys[a->n_eab_keys].kid);
                                secret_buf_done(&a->eab_keys[a->n_eab_keys].hmac_key);
                                return set_error(ret_error, -EEXIST, "[ACMEProfile %s]: EAB key ID '%s' is listed twice.",
                                                 a->name, a->eab_keys[j].kid);
                        }
                a->n_eab_keys++;
        }
        if (a->eab_required && a->n_eab_keys == 0)
                return set_error(ret_error, -EINVAL,
                                 "[ACMEProfile %s]: ExternalAccountRequired=yes needs EABKeys=.", a->name);
        return 0;
}

int profile_set_finish(ProfileSet *p, const char *credentials_dir, char **ret_error) {
        int r;

        if (!p || p->finished)
                return -EINVAL;

        for (size_t i = 0; i < p->n_cas; i++) {
                r = ca_finish(p, p->cas[i], ret_error);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < p->n_ras; i++) {
                r = ra_finish(p, p->ras[i], ret_error);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < p->n_acmes; i++) {
                r = acme_finish(p, p->acmes[i], credentials_dir, ret_error);
                if (r < 0)
                        return r;
        }

        if (p->n_cas > 0) {
                p->backends = calloc(p->n_cas, sizeof(CaBackend *));
                if (!p->backends)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < p->n_cas; i++) {
                r = ca_backend_open(p->cas[i], &p->backends[i]);
                if (r < 0)
                        return set_error(ret_error, r, "[CA %s]: failed to open %s CA in '%s': %s",
                                         p->cas[i]->name, p->cas[i]->backend, p->cas[i]->directory,
                                         r == -EOPNOTSUPP ? "unknown backend" : cf_error_name(r));
        }

        p->finished = true;
        return 0;
}

const CaConfig *profile_set_get_ca(const ProfileSet *p, const char *name) {
        if (!p || !name)
                return NULL;
        for (size_t i = 0; i < p->n_cas; i++)
                if (strcmp(p->cas[i]->name, name) == 0)
                        return p->cas[i];
        return NULL;
}

const RaProfile *profile_set_get_ra(const ProfileSet *p, const char *name) {
        if (!p || !name)
                return NULL;
        for (size_t i = 0; i < p->n_ras; i++)
                if (strcmp(p->ras[i]->name, name) == 0)
                        return p->ras[i];
        return NULL;
}

const AcmeProfile *profile_set_get_acme(const ProfileSet *p, const char *name) {
        if (!p || !name)
                return NULL;
        for (size_t i = 0; i < p->n_acmes; i++)
                if (strcmp(p->acmes[i]->name, name) == 0)
                        return p->acmes[i];
        return NULL;
}

CaBackend *profile_set_get_ca_backend(const ProfileSet *p, const char *name) {
        if (!p || !name || !p->backends)
                return NULL;
        for (size_t i = 0; i < p->n_cas; i++)
                if (strcmp(p->cas[i]->name, name) == 0)
                        return p->backends[i];
        return NULL;
}

size_t profile_set_n_ca(const ProfileSet *p) {
        return p ? p->n_cas : 0;
}

const CaConfig *profile_set_ca_at(const ProfileSet *p, size_t i) {
        if (!p || i >= p->n_cas)
                return NULL;
        return p->cas[i];
}

int profile_set_resolve_acme(const ProfileSet *p, const char *acme_profile, const char *ra_profile,
                             const AcmeProfile **ret_acme, const RaProfile **ret_ra,
                             const char **ret_detail) {
        const AcmeProfile *a;
        const RaProfile *ra;
        const char *detail;
        int r;

        if (!p || (!acme_profile == !ra_profile))
                return -EINVAL;

        if (acme_profile) {
                a = profile_set_get_acme(p, acme_profile);
                if (!a) {
                        r = -CF_E_NOT_FOUND;
                        detail = "ACME profile does not exist";
                        goto fail;
                }
                if (!a->enabled) {
                        r = -CF_E_DISABLED;
                        detail = "ACME profile is disabled";
                        goto fail;
                }
                if (!a->ra_profile) {
                        r = -CF_E_DISABLED;
                        detail = "ACME profile has no default RA profile";
                        goto fail;
                }
                ra = profile_set_get_ra(p, a->ra_profile);
                if (!ra) {
                        r = -CF_E_DISABLED;
                        detail = "default RA profile of the ACME profile does not exist";
                        goto fail;
                }
                if (!ra->enabled) {
                        r = -CF_E_DISABLED;
                        detail = "default RA profile of the ACME profile is disabled";
                        goto fail;
                }
        } else {
                ra = profile_set_get_ra(p, ra_profile);
                if (!ra) {
                        r = -CF_E_NOT_FOUND;
                        detail = "RA profile does not exist";
                        goto fail;
                }
                if (!ra->enabled) {
                        r = -CF_E_DISABLED;
                        detail = "RA profile is disabled";
                        goto fail;
                }
                if (!ra->acme_profile) {
                        r = -CF_E_DISABLED;
                        detail = "RA profile does not enable ACME";
                        goto fail;
                }
                a = profile_set_get_acme(p, ra->acme_profile);
                if (!a) {
                        r = -CF_E_DISABLED;
                        detail = "ACME profile of the RA profile does not exist";
                        goto fail;
                }
                if (!a->enabled) {
                        r = -CF_E_DISABLED;
                        detail = "ACME profile of the RA profile is disabled";
                        goto fail;
                }
        }

        if (ret_acme)
                *ret_acme = a;
        if (ret_ra)
                *ret_ra = ra;
        return 0;

fail:
        if (ret_detail)
                *ret_detail = detail;
        return r;
}
