/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "shared/errors.h"
#include "shared/macro.h"

static const char *const error_names[_CF_E_MAX - CF_ERROR_BASE] = {
        [CF_E_MALFORMED - CF_ERROR_BASE] = "malformed",
        [CF_E_BAD_NONCE - CF_ERROR_BASE] = "badNonce",
        [CF_E_BAD_SIGNATURE_ALGORITHM - CF_ERROR_BASE] = "badSignatureAlgorithm",
        [CF_E_BAD_SIGNATURE - CF_ERROR_BASE] = "badSignature",
        [CF_E_BAD_PUBLIC_KEY - CF_ERROR_BASE] = "badPublicKey",
        [CF_E_BAD_CSR - CF_ERROR_BASE] = "badCSR",
        [CF_E_BAD_REVOCATION_REASON - CF_ERROR_BASE] = "badRevocationReason",
        [CF_E_ALREADY_REVOKED - CF_ERROR_BASE] = "alreadyRevoked",
        [CF_E_ALREADY_REPLACED - CF_ERROR_BASE] = "alreadyReplaced",
        [CF_E_REJECTED_IDENTIFIER - CF_ERROR_BASE] = "rejectedIdentifier",
        [CF_E_UNSUPPORTED_IDENTIFIER - CF_ERROR_BASE] = "unsupportedIdentifier",
        [CF_E_INVALID_CONTACT - CF_ERROR_BASE] = "invalidContact",
        [CF_E_UNSUPPORTED_CONTACT - CF_ERROR_BASE] = "unsupportedContact",
        [CF_E_EXTERNAL_ACCOUNT_REQUIRED - CF_ERROR_BASE] = "externalAccountRequired",
        [CF_E_ACCOUNT_DOES_NOT_EXIST - CF_ERROR_BASE] = "accountDoesNotExist",
        [CF_E_UNAUTHORIZED - CF_ERROR_BASE] = "unauthorized",
        [CF_E_ORDER_NOT_READY - CF_ERROR_BASE] = "orderNotReady",
        [CF_E_USER_ACTION_REQUIRED - CF_ERROR_BASE] = "userActionRequired",
        [CF_E_RATE_LIMITED - CF_ERROR_BASE] = "rateLimited",
        [CF_E_CAA - CF_ERROR_BASE] = "caa",
        [CF_E_CONNECTION - CF_ERROR_BASE] = "connection",
        [CF_E_DNS - CF_ERROR_BASE] = "dns",
        [CF_E_INCORRECT_RESPONSE - CF_ERROR_BASE] = "incorrectResponse",
        [CF_E_TLS - CF_ERROR_BASE] = "tls",
        [CF_E_NOT_FOUND - CF_ERROR_BASE] = "notFound",
        [CF_E_DISABLED - CF_ERROR_BASE] = "disabled",
        [CF_E_CONFLICT - CF_ERROR_BASE] = "conflict",
        [CF_E_TOO_LARGE - CF_ERROR_BASE] = "tooLarge",
        [CF_E_UNSUPPORTED_MEDIA_TYPE - CF_ERROR_BASE] = "unsupportedMediaType",
        [CF_E_METHOD_NOT_ALLOWED - CF_ERROR_BASE] = "methodNotAllowed",
        [CF_E_APPROVAL_PENDING - CF_ERROR_BASE] = "approvalPending",
        [CF_E_SERVER_INTERNAL - CF_ERROR_BASE] = "serverInternal",
};

const char *cf_error_name(int r) {
        if (r >= 0)
                return "success";
        if (cf_error_is_protocol(r)) {
                const char *n = error_names[-r - CF_ERROR_BASE];
                return n ? n : "unknown";
        }
        return strerror(-r);
}

CfError cf_error_from_errno(int r) {
        if (cf_error_is_protocol(r))
                return (CfError) -r;
        switch (-r) {
        case EINVAL:
        case EBADMSG:
        case EPROTO:
        case EILSEQ:
        case ERANGE:
                return CF_E_MALFORMED;
        case E2BIG:
        case EMSGSIZE:
        case EFBIG:
                return CF_E_TOO_LARGE;
        case ENOENT:
        case ENOKEY:
        case ENXIO:
                return CF_E_NOT_FOUND;
        default:
                return CF_E_SERVER_INTERNAL;
        }
}
