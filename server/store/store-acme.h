/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* ACME state (RFC 8555): accounts, orders, authorizations, challenges, the order↔authorization
 * links, nonce replay records and the shared nonce key. Used by server/acme/ only.
 *
 * "profile" everywhere is the ACME route key of the URL the object was created under: the ACME
 * profile name ("default") or "raProfile/<name>". Objects never leak between route keys.
 *
 * Callers group writes in store_begin()/store_commit(); these functions never open a transaction
 * themselves except store_acme_secret_get_or_create(). Lookups return -ENOENT if absent. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/store/store.h"
#include "shared/macro.h"
#include "shared/time-util.h"

/* One status enum for every ACME object (RFC 8555 §7.1.6). */
typedef enum AcmeStatus {
        ACME_STATUS_PENDING,
        ACME_STATUS_READY,
        ACME_STATUS_PROCESSING,
        ACME_STATUS_VALID,
        ACME_STATUS_INVALID,
        ACME_STATUS_DEACTIVATED,
        ACME_STATUS_EXPIRED,
        ACME_STATUS_REVOKED,
        _ACME_STATUS_MAX,
        _ACME_STATUS_INVALID = -22,
} AcmeStatus;

const char *acme_status_to_string(AcmeStatus s);
AcmeStatus acme_status_from_string(const char *s);

typedef struct AcmeAccount {
        int64_t id;
        char *profile;
        char *jwk;                    /* public JWK, JSON text */
        char *thumbprint;             /* RFC 7638, UNIQUE per profile */
        AcmeStatus status;            /* valid, deactivated, revoked */
        char *contacts;               /* JSON array text, "[]" if none */
        bool tos_agreed;
        char *eab_kid;                /* NULL: no external account binding */
        cf_time_t created;
} AcmeAccount;

AcmeAccount *acme_account_free(AcmeAccount *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(AcmeAccount *, acme_account_free);

/* -EEXIST if (profile, thumbprint) is taken. */
int store_acme_account_insert(Store *s, const AcmeAccount *a, int64_t *ret_id);
int store_acme_account_get(Store *s, int64_t id, AcmeAccount **ret);
int store_acme_account_get_by_thumbprint(Store *s, const char *profile, const char *thumbprint,
                                         AcmeAccount **ret);
/* Writes jwk, thumbprint, status, contacts and tos_agreed of a->id. -EEXIST on a thumbprint clash. */
int store_acme_account_update(Store *s, const AcmeAccount *a);
int store_acme_account_count(Store *s, const char *profile, int64_t *ret);

typedef struct AcmeOrder {
        int64_t id;
        int64_t account_id;
        char *profile;
        AcmeStatus status;            /* pending ready processing valid invalid */
        char *identifiers;            /* JSON array text [{"type":"dns","value":"*.a.example"}] */
        cf_time_t not_before;         /* 0: not requested */
        cf_time_t not_after;
        cf_time_t expires;
        char *error;                  /* problem document JSON text, NULL */
        uint8_t *csr;                 /* DER of the finalize CSR, NULL before finalize */
        size_t csr_size;
        char *cert_serial;            /* NULL until valid */
        char *replaces;               /* serial of the replaced certificate (RFC 9773), NULL */
        cf_time_t created;
} AcmeOrder;

AcmeOrder *acme_order_free(AcmeOrder *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(AcmeOrder *, acme_order_free);

int store_acme_order_insert(Store *s, const AcmeOrder *o, int64_t *ret_id);
int store_acme_order_get(Store *s, int64_t id, AcmeOrder **ret);
/* Writes status, error, csr and cert_serial of o->id. */
int store_acme_order_update(Store *s, const AcmeOrder *o);
/* Ids of an account's orders that can still succeed (RFC 8555 §7.1.2.1: not invalid, and not a
 * pending/ready order past its expiry at now), oldest first, with an id above after_id, at most
 * max. */
int store_acme_order_list_by_account(Store *s, int64_t account_id, int64_t after_id, cf_time_t now,
                                     size_t max, int64_t **ret_ids, size_t *ret_n);
/* An order of any account that replaces serial and can still succeed (not invalid, and not a
 * pending/ready order past its expiry at now): its id, or -ENOENT. */
int store_acme_order_find_replacing(Store *s, const char *serial, cf_time_t now, int64_t *ret_id);

/* RFC 8555 §7.3.6: a deactivated account's pending operations are cancelled. Every pending, ready
 * or processing order of the account becomes invalid with error (problem document JSON).
 * Returns the number of orders changed. */
int store_acme_order_cancel_for_account(Store *s, int64_t account_id, const char *error_json);

int store_acme_order_link_authz(Store *s, int64_t order_id, int64_t authz_id);
int store_acme_order_get_authz_ids(Store *s, int64_t order_id, int64_t **ret_ids, size_t *ret_n);
int store_acme_authz_get_order_ids(Store *s, int64_t authz_id, int64_t **ret_ids, size_t *ret_n);

typedef struct AcmeAuthz {
        int64_t id;
        int64_t account_id;
        char *profile;
        char *identifier_type;        /* "dns" "ip" */
        char *identifier_value;       /* without "*." */
        bool wildcard;
        AcmeStatus status;            /* pending valid invalid deactivated expired revoked */
        cf_time_t expires;
        cf_time_t created;
} AcmeAuthz;

AcmeAuthz *acme_authz_free(AcmeAuthz *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(AcmeAuthz *, acme_authz_free);

int store_acme_authz_insert(Store *s, const AcmeAuthz *a, int64_t *ret_id);
int store_acme_authz_get(Store *s, int64_t id, AcmeAuthz **ret);
int store_acme_authz_update(Store *s, int64_t id, AcmeStatus status, cf_time_t expires);
/* A valid authorization of this account for the identifier that is still valid at now (the one
 * expiring last), or -ENOENT. */
int store_acme_authz_find_reusable(Store *s, int64_t account_id, const char *profile,
                                   const char *identifier_type, const char *identifier_value,
                                   bool wildcard, cf_time_t now, AcmeAuthz **ret);

typedef struct AcmeChallenge {
        int64_t id;
        int64_t authz_id;
        char *type;                   /* "http-01" "dns-01" "tls-alpn-01" */
        char *token;
        AcmeStatus status;            /* pending processing valid invalid */
        cf_time_t validated;          /* 0 if not */
        char *error;                  /* problem document JSON text, NULL */
} AcmeChallenge;

AcmeChallenge *acme_challenge_free(AcmeChallenge *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AcmeChallenge *, acme_challenge_free);
void acme_challenge_list_free(AcmeChallenge **l);   /* NULL-terminated */

int store_acme_challenge_insert(Store *s, const AcmeChallenge *c, int64_t *ret_id);
int store_acme_challenge_get(Store *s, int64_t id, AcmeChallenge **ret);
/* Writes status, validated and error of c->id. */
int store_acme_challenge_update(Store *s, const AcmeChallenge *c);
/* NULL-terminated, ordered by id. */
int store_acme_challenge_list_by_authz(Store *s, int64_t authz_id, AcmeChallenge ***ret);

/* Records that the nonce id was used (single use, RFC 8555 §6.5) and purges records past their
 * expiry. -EEXIST if it was used already. */
int store_acme_nonce_consume(Store *s, const char *nonce_id, cf_time_t expires, cf_time_t now);

/* A named server secret shared by every instance using this database: returns the stored value,
 * or stores candidate and returns it if none exists yet (in its own transaction, so concurrent
 * first starts agree on one value). */
int store_acme_secret_get_or_create(Store *s, const char *name, const uint8_t *candidate,
                                    size_t candidate_size, uint8_t **ret, size_t *ret_size);
