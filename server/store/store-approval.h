/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The approval queue: enrollment requests of RA profiles with ApprovalRequired=yes, waiting for
 * (or carrying) an administrator's decision. The RA creates a request the first time a protocol
 * asks to enroll, `certfleet-server request approve|reject` records the decision, and the RA
 * reads it on the protocol's next attempt and records the serial it then issued.
 *
 * A request is named by its id (for administrators) and by (protocol, reference), unique (for
 * the protocol front end: ACME's reference is the order id). Lookups return -ENOENT if absent.
 * Each function is one statement, so each change is atomic on its own; callers may still group
 * them in store_begin()/store_commit(). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/store/store.h"
#include "shared/macro.h"
#include "shared/time-util.h"

typedef enum ApprovalState {
        APPROVAL_PENDING,
        APPROVAL_APPROVED,
        APPROVAL_REJECTED,
        _APPROVAL_STATE_MAX,
        _APPROVAL_STATE_INVALID = -22,
} ApprovalState;

const char *approval_state_to_string(ApprovalState s);     /* "pending" "approved" "rejected" */
ApprovalState approval_state_from_string(const char *s);

/* Longest rejection reason kept; longer ones are refused (-E2BIG), not cut. */
#define APPROVAL_REASON_MAX 1024u

typedef struct ApprovalRequest {
        int64_t id;
        char *protocol;                /* "acme" */
        char *protocol_profile;        /* ACME route key etc. */
        char *ra_profile;
        char *reference;               /* the protocol's name for the request: ACME order id */
        int64_t account_id;            /* 0 if none */
        char **identifiers;            /* "dns:host.example", "ip:10.0.0.1" */
        char *subject;                 /* the CSR's subject, one line */
        char *key;                     /* "EC P-256", "RSA 3072" … */
        uint8_t *csr;                  /* DER: exactly what the decision covers */
        size_t csr_size;
        cf_time_t created;
        ApprovalState state;
        cf_time_t decided;             /* 0 while pending */
        char *reason;                  /* rejection reason, NULL if none */
        char *cert_serial;             /* set once an approved request was issued */
} ApprovalRequest;

ApprovalRequest *approval_request_free(ApprovalRequest *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(ApprovalRequest *, approval_request_free);
void approval_request_list_free(ApprovalRequest **l);      /* NULL-terminated array */

/* Inserts a pending request (a->state, decided, reason and cert_serial are ignored).
 * -EEXIST if (protocol, reference) is already queued. */
int store_approval_insert(Store *s, const ApprovalRequest *a, int64_t *ret_id);
int store_approval_get(Store *s, int64_t id, ApprovalRequest **ret);
int store_approval_get_by_reference(Store *s, const char *protocol, const char *reference,
                                    ApprovalRequest **ret);
/* Only the state, the rejection reason (NULL if none) and the serial (NULL if none): what a
 * front end needs on every poll of a waiting client, without the CSR. */
int store_approval_get_state(Store *s, const char *protocol, const char *reference,
                             ApprovalState *ret_state, char **ret_reason, char **ret_serial);

/* NULL-terminated array ordered by id; pending_only: only requests still waiting. */
int store_approval_list(Store *s, bool pending_only, ApprovalRequest ***ret);

/* pending → approved or rejected (reason only for rejected, may be NULL). -ENOENT if unknown,
 * -EALREADY if already decided (the decision is never changed), -EINVAL for state pending. */
int store_approval_decide(Store *s, int64_t id, ApprovalState state, const char *reason, cf_time_t when);

/* Records the certificate issued for an approved request. -EALREADY if one was recorded already
 * (a concurrent attempt issued first), -EPERM if the request is not approved, -ENOENT if unknown. */
int store_approval_set_issued(Store *s, int64_t id, const char *serial);
