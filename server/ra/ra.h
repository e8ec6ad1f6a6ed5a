/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The registration authority: one enrollment request type for every protocol. Front ends
 * include this header, never ca/ or the store's write side for certificates. */

#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "server/ra/ra-profile.h"
#include "shared/csr.h"
#include "server/store/store.h"
#include "server/store/store-approval.h"
#include "shared/time-util.h"

typedef enum IdentifierType {
        IDENTIFIER_DNS,
        IDENTIFIER_IP,
        _IDENTIFIER_TYPE_MAX,
        _IDENTIFIER_TYPE_INVALID = -22,
} IdentifierType;

const char *identifier_type_to_string(IdentifierType t);     /* "dns" "ip" */
IdentifierType identifier_type_from_string(const char *s);

/* Policy checks, usable before enrollment (ACME newOrder checks identifiers early).
 * Identifier values: DNS names are lower-cased ASCII (A-labels), "*." prefix for wildcards; IPs
 * in canonical text. Syntax errors: -CF_E_MALFORMED; not allowed: -CF_E_REJECTED_IDENTIFIER. */
int ra_check_identifier(const RaProfile *ra, IdentifierType type, const char *value);
/* Key algorithm and size: -CF_E_BAD_PUBLIC_KEY with a detail. */
int ra_check_key(const RaProfile *ra, EVP_PKEY *key, const char **ret_detail);
/* Requested validity: not_after - not_before within max_validity; 0 = defaults. */
int ra_check_validity(const RaProfile *ra, cf_time_t not_before, cf_time_t not_after);

typedef struct RaEnrollRequest {
        const char *protocol;              /* "acme" */
        const char *protocol_profile;
        const RaProfile *ra;
        X509_REQ *csr;
        char **dns;                        /* the identifiers authorised (exactly these go in the cert) */
        char **ips;
        cf_time_t not_before;              /* 0: now */
        cf_time_t not_after;               /* 0: not_before + validity */
        int64_t account_id;                /* 0: none */
        const char *replaces;              /* serial, NULL: none */
        /* Optional: csr_inspect(csr) as the caller already made it (signature verified), so the
         * CSR is not verified and parsed a second time. NULL: ra_enroll inspects the CSR. */
        const CsrInfo *csr_info;
        /* The protocol's own name for this request, stable across the client's retries (ACME:
         * the order id). Needed for ApprovalRequired=yes profiles: it names the request in the
         * approval queue. NULL: the request cannot be queued, so it can never be approved. */
        const char *reference;
} RaEnrollRequest;

typedef struct RaEnrollResult {
        X509 *cert;
        STACK_OF(X509) *chain;             /* issuing chain without the leaf */
        char *serial;
        char *pem_fullchain;               /* leaf + chain */
} RaEnrollResult;

RaEnrollResult *ra_enroll_result_free(RaEnrollResult *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(RaEnrollResult *, ra_enroll_result_free);

/* Checks the request against the RA profile (CSR signature and key policy, the CSR's names equal
 * the authorised identifiers exactly — -CF_E_BAD_CSR otherwise — validity), asks the CA backend to
 * sign, and stores the certificate in the inventory (with the replacement link if replaces is
 * set), all inside one store transaction: nothing is stored if anything fails. That transaction
 * is the caller's when one is open on store (the caller then commits, or rolls back on failure),
 * else ra_enroll() begins and commits its own.
 *
 * ApprovalRequired=yes profiles: the first request for (protocol, reference) that passes the
 * policy checks is queued and answers -CF_E_APPROVAL_PENDING, as does every later one until an
 * administrator decides. Rejected: -CF_E_UNAUTHORIZED (see ra-enroll.c for why). Approved: the
 * request is issued with every policy check run again, and the serial is recorded in the same
 * transaction; a later (or concurrent) call for the same reference returns that certificate
 * instead of issuing another. */
int ra_enroll(Store *store, const ProfileSet *profiles, const RaEnrollRequest *req,
              RaEnrollResult **ret);

/* The decision on the queued request (protocol, reference), -ENOENT if none is queued.
 * ret_reason: the rejection reason, NULL if none. One small store read and nothing else: front
 * ends call it on every poll of a waiting client before doing any expensive work. */
int ra_approval_state(Store *store, const char *protocol, const char *reference,
                      ApprovalState *ret_state, char **ret_reason);

/* Revokes in the CA backend and marks the inventory row revoked. */
int ra_revoke(Store *store, const ProfileSet *profiles, const char *serial, int reason);
