/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The profile model of DESIGN §5: a CA (backend) ← an RA profile (policy) ← protocol profiles.
 * Declared in server.conf as named sections:
 *
 *   [CA internal]            Backend=local  Directory=…  CRLURL=…  OCSPURL=…  CAIssuersURL=…
 *   [RAProfile web]          CA=internal  Enabled=yes  AllowedIdentifiers=*.internal.example 10.0.0.0/8
 *                            KeyAlgorithms=ec rsa ed25519  MinRSABits=2048  MinECBits=256
 *                            Validity=47d  MaxValidity=90d  ExtendedKeyUsage=serverAuth clientAuth
 *                            ApprovalRequired=no  ACMEProfile=default
 *   [ACMEProfile default]    Enabled=yes  RAProfile=web  TermsOfService=URL  Website=URL
 *                            ExternalAccountRequired=no  EABKeys=kid1:credential-name …
 *                            MaxIdentifiers=100  OrderLifetime=7d  AuthorizationLifetime=30d
 *
 * The whole set is one immutable ProfileSet snapshot, refcounted, swapped on SIGHUP. */

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "shared/conf.h"
#include "shared/macro.h"

typedef struct CaConfig {
        char *name;
        char *backend;                 /* "local" */
        char *directory;               /* local: where ca init put root + issuing CA */
        char *crl_url;                 /* CRL distribution point for issued certs, NULL: none */
        char *ocsp_url;                /* AIA OCSP, NULL: none */
        char *ca_issuers_url;          /* AIA caIssuers, NULL: none */
} CaConfig;

typedef struct RaProfile {
        char *name;
        char *ca;                      /* CaConfig name */
        bool enabled;
        char **allowed_identifiers;    /* "*.internal.example", "host.example", "10.0.0.0/8", "fd00::/8";
                                          "*": any DNS name; empty: nothing is allowed */
        char **key_algorithms;         /* "ec" "rsa" "ed25519" */
        unsigned min_rsa_bits;         /* default 2048 */
        unsigned min_ec_bits;          /* default 256 */
        int64_t validity;              /* seconds, default 47d */
        int64_t max_validity;          /* ceiling for requested notAfter, default 90d */
        char **ekus;                   /* "serverAuth" "clientAuth"; default serverAuth */
        bool approval_required;
        char *acme_profile;            /* protocol profile enabled for this RA profile, NULL: none */
} RaProfile;

typedef struct EabKey {
        char *kid;
        SecretBuf hmac_key;            /* decoded (base64url in the credential file) */
} EabKey;

typedef struct AcmeProfile {
        char *name;
        bool enabled;
        char *ra_profile;              /* default RA profile, NULL: none */
        char *terms_of_service;
        char *website;
        bool eab_required;
        EabKey *eab_keys;
        size_t n_eab_keys;
        char **eab_key_specs;          /* raw "kid:credential" as configured */
        unsigned max_identifiers;      /* per order, default 100 */
        int64_t order_lifetime;        /* default 7d */
        int64_t authz_lifetime;        /* default 30d (reuse window) */
} AcmeProfile;

typedef struct ProfileSet ProfileSet;

/* The named-section handler for conf_load(): "CA", "RAProfile", "ACMEProfile". userdata is the
 * ProfileSet being built. */
int profile_set_new(ProfileSet **ret);
int profile_set_section_handler(const char *section, const char *name, void *userdata,
                                const ConfItem **ret_table, void **ret_target);
/* After loading: fills defaults, resolves EAB credentials (from credentials_dir, i.e.
 * $CREDENTIALS_DIRECTORY, or an absolute path), checks references (RA → CA exists, ACME →
 * RA exists). Errors get a message in *ret_error. */
int profile_set_finish(ProfileSet *p, const char *credentials_dir, char **ret_error);
/* Before profile_set_finish(): a [CA] section without Directory= defaults to
 * STATE_DIRECTORY/ca/NAME (without this call: /var/lib/certfleet/server/ca/NAME). */
int profile_set_set_state_directory(ProfileSet *p, const char *state_directory);

ProfileSet *profile_set_ref(ProfileSet *p);
ProfileSet *profile_set_unref(ProfileSet *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(ProfileSet *, profile_set_unref);

const CaConfig *profile_set_get_ca(const ProfileSet *p, const char *name);
const RaProfile *profile_set_get_ra(const ProfileSet *p, const char *name);
const AcmeProfile *profile_set_get_acme(const ProfileSet *p, const char *name);
/* The opened backend for a CaConfig name (opened by profile_set_finish(), which fails if a CA's
 * keys can't be loaded). Borrowed: valid while the ProfileSet is referenced. */
struct CaBackend *profile_set_get_ca_backend(const ProfileSet *p, const char *name);
/* Iteration for listing. */
size_t profile_set_n_ca(const ProfileSet *p);
const CaConfig *profile_set_ca_at(const ProfileSet *p, size_t i);

/* DESIGN §5 resolution for a protocol URL:
 *   by protocol profile: the profile exists (-CF_E_NOT_FOUND), is enabled (-CF_E_DISABLED), has a
 *   default RA profile that exists and is enabled (-CF_E_DISABLED);
 *   by RA profile: the RA profile exists and is enabled and names an ACME profile that exists and
 *   is enabled (-CF_E_DISABLED otherwise).
 * *ret_detail (static string) says which check failed. */
int profile_set_resolve_acme(const ProfileSet *p, const char *acme_profile, const char *ra_profile,
                             const AcmeProfile **ret_acme, const RaProfile **ret_ra,
                             const char **ret_detail);
