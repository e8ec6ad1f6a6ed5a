/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The one internal error enum of DESIGN §2.
 *
 * Functions return a negative errno on failure (DESIGN §7). Errors that carry protocol meaning
 * ("this CSR is bad", "this nonce was replayed") are returned as -CF_E_…; their values start
 * above every errno so the two never collide. Only front ends translate them: ACME problem
 * documents (shared/problem.h), SCEP failInfo, CMP PKIFailureInfo, HTTP status. */

#include <stdbool.h>

#define CF_ERROR_BASE 4096

typedef enum CfError {
        CF_E_MALFORMED = CF_ERROR_BASE,   /* request is malformed */
        CF_E_BAD_NONCE,                   /* unknown, replayed or expired nonce */
        CF_E_BAD_SIGNATURE_ALGORITHM,     /* JWS alg not supported or not matching the key */
        CF_E_BAD_SIGNATURE,               /* signature does not verify */
        CF_E_BAD_PUBLIC_KEY,              /* key type or size refused by policy */
        CF_E_BAD_CSR,                     /* CSR unparsable, bad signature, or not matching */
        CF_E_BAD_REVOCATION_REASON,
        CF_E_ALREADY_REVOKED,
        CF_E_ALREADY_REPLACED,            /* RFC 9773: replaces names a replaced certificate */
        CF_E_REJECTED_IDENTIFIER,         /* identifier not allowed by the RA profile */
        CF_E_UNSUPPORTED_IDENTIFIER,      /* identifier type not supported */
        CF_E_INVALID_CONTACT,
        CF_E_UNSUPPORTED_CONTACT,
        CF_E_EXTERNAL_ACCOUNT_REQUIRED,
        CF_E_ACCOUNT_DOES_NOT_EXIST,
        CF_E_UNAUTHORIZED,                /* authenticated but not allowed */
        CF_E_ORDER_NOT_READY,
        CF_E_USER_ACTION_REQUIRED,        /* e.g. terms of service changed */
        CF_E_RATE_LIMITED,
        CF_E_CAA,
        CF_E_CONNECTION,                  /* validation: could not connect */
        CF_E_DNS,                         /* validation: DNS lookup failed */
        CF_E_INCORRECT_RESPONSE,          /* validation: answer did not match */
        CF_E_TLS,                         /* validation: TLS handshake or certificate problem */
        CF_E_NOT_FOUND,                   /* resource or profile does not exist */
        CF_E_DISABLED,                    /* profile exists but is disabled or not bound */
        CF_E_CONFLICT,                    /* state conflict (e.g. key already in use) */
        CF_E_TOO_LARGE,                   /* a client-controlled size exceeds its limit */
        CF_E_UNSUPPORTED_MEDIA_TYPE,
        CF_E_METHOD_NOT_ALLOWED,
        CF_E_APPROVAL_PENDING,            /* the RA profile requires an approval first */
        CF_E_SERVER_INTERNAL,
        _CF_E_MAX,
} CfError;

/* true if r (negative) is one of the CfError values rather than an errno. */
static inline bool cf_error_is_protocol(int r) {
        return r <= -CF_ERROR_BASE && r > -_CF_E_MAX;
}

/* A stable name for r ("badCSR" style for CfError, strerror text for errno). Never NULL. */
const char *cf_error_name(int r);

/* Maps any negative return to a CfError: CfError values pass through; errno values become
 * CF_E_MALFORMED (EINVAL, EBADMSG, EPROTO), CF_E_TOO_LARGE (E2BIG, EMSGSIZE), CF_E_NOT_FOUND
 * (ENOENT, ENOKEY) or CF_E_SERVER_INTERNAL. */
CfError cf_error_from_errno(int r);
