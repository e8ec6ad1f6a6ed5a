/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Problem documents (RFC 7807) with the ACME error types of RFC 8555 §6.7 (+ RFC 9773
 * alreadyReplaced). Maps the internal error enum (shared/errors.h). */

#include <json-c/json.h>

#include "shared/errors.h"
#include "shared/macro.h"

/* "urn:ietf:params:acme:error:badNonce" etc.; errors without an ACME type map to
 * "…:malformed" or "…:serverInternal". */
const char *problem_type_for_error(int r);
/* The HTTP status RFC 8555 implies: badNonce 400, unauthorized 403, notFound 404,
 * accountDoesNotExist 400, rateLimited 429, serverInternal 500, unsupportedMediaType 415,
 * methodNotAllowed 405, tooLarge 413, … */
int problem_http_status_for_error(int r);

/* {"type", "detail", "status"}. detail may be NULL. */
int problem_new(int r, const char *detail, json_object **ret);
/* Appends a subproblem (RFC 8555 §6.7.1) with an identifier {"type","value"}. */
int problem_add_subproblem(json_object *problem, int r, const char *detail,
                           const char *identifier_type, const char *identifier_value);

/* Client side: parses a problem document. Unknown types map to CF_E_SERVER_INTERNAL but keep
 * their type string. */
typedef struct Problem {
        CfError error;
        char *type;
        char *detail;              /* NULL if absent */
        int status;                /* 0 if absent */
} Problem;

int problem_parse(const char *body, size_t len, Problem *ret);
void problem_done(Problem *p);
/* The CfError for a problem type URN (or the bare name, "badNonce"); -EINVAL if unknown. */
int problem_error_from_type(const char *type);
