/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shared/json-util.h"
#include "shared/problem.h"

#define PROBLEM_URN_PREFIX "urn:ietf:params:acme:error:"
/* A problem document is a few hundred bytes; anything far bigger is not one. */
#define PROBLEM_DOCUMENT_MAX (64u * 1024u)

typedef struct ProblemInfo {
        const char *urn;            /* RFC 8555 §6.7 / RFC 9773 type; NULL: no ACME type of its own */
        int status;
} ProblemInfo;

#define P(e) [(e) - CF_ERROR_BASE]
#define T(name) PROBLEM_URN_PREFIX name
static const ProblemInfo problem_table[_CF_E_MAX - CF_ERROR_BASE] = {
        P(CF_E_MALFORMED)                 = { T("malformed"), 400 },
        P(CF_E_BAD_NONCE)                 = { T("badNonce"), 400 },
        P(CF_E_BAD_SIGNATURE_ALGORITHM)   = { T("badSignatureAlgorithm"), 400 },
        /* RFC 8555 has no type for a JWS that doesn't verify: a malformed request. */
        P(CF_E_BAD_SIGNATURE)             = { NULL, 400 },
        P(CF_E_BAD_PUBLIC_KEY)            = { T("badPublicKey"), 400 },
        P(CF_E_BAD_CSR)                   = { T("badCSR"), 400 },
        P(CF_E_BAD_REVOCATION_REASON)     = { T("badRevocationReason"), 400 },
        P(CF_E_ALREADY_REVOKED)           = { T("alreadyRevoked"), 400 },
        P(CF_E_ALREADY_REPLACED)          = { T("alreadyReplaced"), 409 },
        P(CF_E_REJECTED_IDENTIFIER)       = { T("rejectedIdentifier"), 400 },
        P(CF_E_UNSUPPORTED_IDENTIFIER)    = { T("unsupportedIdentifier"), 400 },
        P(CF_E_INVALID_CONTACT)           = { T("invalidContact"), 400 },
        P(CF_E_UNSUPPORTED_CONTACT)       = { T("unsupportedContact"), 400 },
        P(CF_E_EXTERNAL_ACCOUNT_REQUIRED) = { T("externalAccountRequired"), 400 },
        P(CF_E_ACCOUNT_DOES_NOT_EXIST)    = { T("accountDoesNotExist"), 400 },
        P(CF_E_UNAUTHORIZED)              = { T("unauthorized"), 403 },
        P(CF_E_ORDER_NOT_READY)           = { T("orderNotReady"), 403 },
        P(CF_E_USER_ACTION_REQUIRED)      = { T("userActionRequired"), 403 },
        P(CF_E_RATE_LIMITED)              = { T("rateLimited"), 429 },
        P(CF_E_CAA)                       = { T("caa"), 403 },
        P(CF_E_CONNECTION)                = { T("connection"), 400 },
        P(CF_E_DNS)                       = { T("dns"), 400 },
        P(CF_E_INCORRECT_RESPONSE)        = { T("incorrectResponse"), 403 },
        P(CF_E_TLS)                       = { T("tls"), 400 },
        P(CF_E_NOT_FOUND)                 = { NULL, 404 },
        P(CF_E_DISABLED)                  = { NULL, 403 },
        P(CF_E_CONFLICT)                  = { NULL, 409 },
        P(CF_E_TOO_LARGE)                 = { NULL, 413 },
        P(CF_E_UNSUPPORTED_MEDIA_TYPE)    = { NULL, 415 },
        P(CF_E_METHOD_NOT_ALLOWED)        = { NULL, 405 },
        P(CF_E_APPROVAL_PENDING)          = { NULL, 403 },
        P(CF_E_SERVER_INTERNAL)           = { T("serverInternal"), 500 },
};
#undef T
#undef P

/* Types that are not the image of one CfError but that a peer may send. */
static const struct {
        const char *type;
        CfError error;
} problem_extra_types[] = {
        /* Several errors at once (RFC 8555 §6.7.1); the details are in the subproblems. */
        { "compound", CF_E_MALFORMED },
};

/* With "malformed" the HTTP status tells apart the errors that have no ACME type of their own. */
static const struct {
        int status;
        CfError error;
} problem_malformed_by_status[] = {
        { 404, CF_E_NOT_FOUND },
        { 405, CF_E_METHOD_NOT_ALLOWED },
        { 409, CF_E_CONFLICT },
        { 413, CF_E_TOO_LARGE },
        { 415, CF_E_UNSUPPORTED_MEDIA_TYPE },
};

static CfError error_of(int r) {
        if (r > 0)
                r = -r;
        if (r == 0)
                return CF_E_SERVER_INTERNAL;
        return cf_error_from_errno(r);
}

const char *problem_type_for_error(int r) {
        const char *urn = problem_table[error_of(r) - CF_ERROR_BASE].urn;

        /* Everything without a type of its own is the client's fault: server-side failures are
         * CF_E_SERVER_INTERNAL already (cf_error_from_errno()). */
        return urn ?: PROBLEM_URN_PREFIX "malformed";
}

int problem_http_status_for_error(int r) {
        return problem_table[error_of(r) - CF_ERROR_BASE].status;
}

int problem_new(int r, const char *detail, json_object **ret) {
        _cleanup_(json_object_putp) json_object *p = NULL;

        p = json_object_new_object();
        if (!p)
                return -ENOMEM;
        if (json_object_object_add(p, "type", json_object_new_string(problem_type_for_error(r))) < 0)
                return -ENOMEM;
        if (detail &&
            json_object_object_add(p, "detail", json_object_new_string(detail)) < 0)
                return -ENOMEM;
        if (json_object_object_add(p, "status", json_object_new_int(problem_http_status_for_error(r))) < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(p);
        return 0;
}

int problem_add_subproblem(json_object *problem, int r, const char *detail,
                           const char *identifier_type, const char *identifier_value) {
        _cleanup_(json_object_putp) json_object *sub = NULL, *id = NULL;
        json_object *list;

        if (!problem || !json_object_is_type(problem, json_type_object))
                return -EINVAL;
        if (!identifier_type != !identifier_value)
                return -EINVAL;

        if (!json_object_object_get_ex(problem, "subproblems", &list)) {
                list = json_object_new_array();
                if (!list)
                        return -ENOMEM;
                if (json_object_object_add(problem, "subproblems", list) < 0) {
                        json_object_put(list);
                        return -ENOMEM;
                }
        } else if (!json_object_is_type(list, json_type_array))
                return -EINVAL;

        sub = json_object_new_object();
        if (!sub)
                return -ENOMEM;
        if (json_object_object_add(sub, "type", json_object_new_string(problem_type_for_error(r))) < 0)
                return -ENOMEM;
        if (detail && json_object_object_add(sub, "detail", json_object_new_string(detail)) < 0)
                return -ENOMEM;
        if (identifier_type) {
                id = json_object_new_object();
                if (!id)
                        return -ENOMEM;
                if (json_object_object_add(id, "type", json_object_new_string(identifier_type)) < 0 ||
                    json_object_object_add(id, "value", json_object_new_string(identifier_value)) < 0)
                        return -ENOMEM;
                if (json_object_object_add(sub, "identifier", TAKE_PTR(id)) < 0)
                        return -ENOMEM;
        }

        if (json_object_array_add(list, sub) < 0)
                return -ENOMEM;
        TAKE_PTR(sub);
        return 0;
}

int problem_error_from_type(const char *type) {
        const char *name;

        if (!type)
                return -EINVAL;
        name = strncmp(type, PROBLEM_URN_PREFIX, strlen(PROBLEM_URN_PREFIX)) == 0 ?
                type + strlen(PROBLEM_URN_PREFIX) : type;

        for (size_t i = 0; i < ELEMENTSOF(problem_table); i++)
                if (problem_table[i].urn &&
                    strcmp(problem_table[i].urn + strlen(PROBLEM_URN_PREFIX), name) == 0)
                        return (int) (CF_ERROR_BASE + i);
        for (size_t i = 0; i < ELEMENTSOF(problem_extra_types); i++)
                if (strcmp(problem_extra_types[i].type, name) == 0)
                        return problem_extra_types[i].error;
        return -EINVAL;
}

int problem_parse(const char *body, size_t len, Problem *ret) {
        _cleanup_(json_object_putp) json_object *obj = NULL;
        _cleanup_free_ char *type = NULL, *detail = NULL;
        const char *s;
        int64_t status = 0;
        CfError error;
        int r;

        if (!body && len > 0)
                return -EINVAL;
        r = json_parse_strict(body, len, PROBLEM_DOCUMENT_MAX, &obj);
        if (r < 0)
                return r;
        if (!json_object_is_type(obj, json_type_object))
                return -EBADMSG;

        /* RFC 7807 §4.2: a missing "type" means "about:blank". */
        r = json_get_string(obj, "type", &s);
        if (r == -ENOENT)
                s = "about:blank";
        else if (r < 0)
                return -EBADMSG;
        type = strdup(s);
        if (!type)
                return -ENOMEM;

        r = json_get_string(obj, "detail", &s);
        if (r >= 0) {
                detail = strdup(s);
                if (!detail)
                        return -ENOMEM;
        } else if (r != -ENOENT)
                return -EBADMSG;

        r = json_get_int64(obj, "status", &status);
        if (r == -ENOENT)
                status = 0;
        else if (r < 0 || status < 100 || status > 599)
                return -EBADMSG;

        r = problem_error_from_type(type);
        error = r < 0 ? CF_E_SERVER_INTERNAL : (CfError) r;
        if (error == CF_E_MALFORMED)
                for (size_t i = 0; i < ELEMENTSOF(problem_malformed_by_status); i++)
                        if (problem_malformed_by_status[i].status == status)
                                error = problem_malformed_by_status[i].error;

        *ret = (Problem) {
                .error = error,
                .type = TAKE_PTR(type),
                .detail = TAKE_PTR(detail),
                .status = (int) status,
        };
        return 0;
}

void problem_done(Problem *p) {
        if (!p)
                return;
        free(p->type);
        free(p->detail);
        p->type = p->detail = NULL;
}
