/* SPDX-License-Identifier: Apache-2.0 */
/* Finalize (RFC 8555 §7.4). The CSR is checked here first (names equal the order's identifiers
 * exactly, key policy) so a bad one changes nothing; then, in one transaction, the order is
 * checked to be still ready (a second concurrent finalize waits on the store's write lock and
 * finds it valid), the RA issues and records the certificate, and the order becomes valid.
 *
 * Issuance is synchronous (the local CA signs in milliseconds): the response is the valid order.
 * When the RA profile requires approval, ra_enroll() queues the request under the order id and
 * answers -CF_E_APPROVAL_PENDING: the order stays processing with the CSR kept, clients get
 * Retry-After, and each later fetch of the order first reads the decision (one small store
 * read, nothing else while it is pending). Once an administrator approved
 * (`certfleet-server request approve`), that fetch issues and the order becomes valid; once
 * rejected, the order becomes invalid with an unauthorized error carrying the reason. */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/acme/acme-internal.h"
#include "server/ra/ra.h"
#include "shared/base64.h"
#include "shared/csr.h"
#include "shared/errors.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/pem.h"
#include "shared/strv.h"

/* The order's identifiers split by type, wildcard values with their "*." prefix. */
static int order_identifiers(const AcmeOrder *o, char ***ret_dns, char ***ret_ips) {
        _cleanup_(json_object_putp) json_object *arr = NULL;
        _cleanup_(strv_freep) char **dns = NULL, **ips = NULL;
        int q;

        q = json_parse_strict(o->identifiers, strlen(o->identifiers), JWS_BODY_MAX, &arr);
        if (q < 0)
                return q;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                const char *type, *value;

                if (json_get_string(e, "type", &type) < 0 || json_get_string(e, "value", &value) < 0)
                        return -EIO;
                q = strv_extend(strcmp(type, "ip") == 0 ? &ips : &dns, value);
                if (q < 0)
                        return q;
        }
        *ret_dns = TAKE_PTR(dns);
        *ret_ips = TAKE_PTR(ips);
        return 0;
}

static bool strv_has_duplicates(char **l) {
        for (size_t i = 0; l && l[i]; i++)
                for (size_t j = i + 1; l[j]; j++)
                        if (strcmp(l[i], l[j]) == 0)
                                return true;
        return false;
}

/* DNS names compare case-insensitively (the order's are lower case); an IP address in the CN
 * may be spelled differently from its canonical SAN text. */
static bool common_name_is_identifier(const char *cn, char **dns, char **ips) {
        unsigned char addr[16];
        char canonical[INET6_ADDRSTRLEN];
        int af;

        for (char **i = dns; i && *i; i++)
                if (strcasecmp(*i, cn) == 0)
                        return true;
        af = strchr(cn, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(af, cn, addr) != 1 || !inet_ntop(af, addr, canonical, sizeof(canonical)))
                return false;
        return strv_contains(ips, canonical);
}

static int csr_check(AcmeRequest *r, X509_REQ *csr, char **dns, char **ips, CsrInfo **ret_info) {
        _cleanup_(csr_info_freep) CsrInfo *info = NULL;
        const char *detail = NULL;
        int q;

        q = csr_inspect(csr, &info);
        if (q < 0)
                return acme_fail(r, -CF_E_BAD_CSR, "CSR is invalid or its signature does not verify");
        if (info->emails || info->uris)
                return acme_fail(r, -CF_E_BAD_CSR, "CSR may only contain DNS names and IP addresses");
        if (strv_has_duplicates(info->dns) || strv_has_duplicates(info->ips) ||
            !strv_equal_unordered(info->dns, dns) || !strv_equal_unordered(info->ips, ips))
                return acme_fail(r, -CF_E_BAD_CSR, "CSR names do not match the order's identifiers exactly");
        if (info->common_name && !common_name_is_identifier(info->common_name, dns, ips))
                return acme_fail(r, -CF_E_BAD_CSR, "CSR common name is not one of the order's identifiers");
        q = ra_check_key(r->ra, info->public_key, &detail);
        if (q < 0)
                return acme_fail(r, -CF_E_BAD_PUBLIC_KEY, "%s", detail ?: "Key is not allowed by this profile");
        if (r->account && r->key && key_public_equal(info->public_key, r->key))
                return acme_fail(r, -CF_E_BAD_CSR, "CSR key must differ from the account key");
        *ret_info = TAKE_PTR(info);
        return 0;
}

/* Inside an open transaction: -CF_E_ORDER_NOT_READY unless the stored order (which a concurrent
 * request may have moved on) is still in state expect. */
static int order_expect(Store *s, int64_t id, AcmeStatus expect) {
        _cleanup_(acme_order_freep) AcmeOrder *cur = NULL;
        int q;

        q = store_acme_order_get(s, id, &cur);
        if (q < 0)
                return q;
        return cur->status == expect ? 0 : -CF_E_ORDER_NOT_READY;
}

/* Inside an open transaction: writes the order's new state. */
static int order_write(Store *s, AcmeOrder *o, AcmeStatus status, const char *serial, int error,
                       const char *detail, bool keep_csr) {
        int q;

        o->status = status;
        if (serial) {
                free(o->cert_serial);
                o->cert_serial = strdup(serial);
                if (!o->cert_serial)
                        return -ENOMEM;
        }
        if (error < 0) {
                free(o->error);
                o->error = NULL;
                q = acme_problem_json(error, detail, &o->error);
                if (q < 0)
                        return q;
        }
        if (!keep_csr) {
                free(o->csr);
                o->csr = NULL;
                o->csr_size = 0;
        }
        return store_acme_order_update(s, o);
}

static int set_order_state(AcmeRequest *r, AcmeOrder *o, AcmeStatus expect, AcmeStatus status,
                           int error, const char *detail) {
        int q;

        /* Also records the request's nonce, if nothing did yet. */
        q = acme_begin(r);
        if (q < 0)
                return q;
        q = order_expect(r->store, o->id, expect);
        if (q >= 0)
                q = order_write(r->store, o, status, NULL, error, detail, false);
        if (q < 0) {
                store_rollback(r->store);
                return q;
        }
        return acme_commit_request(r);
}

/* The order's name in the RA's approval queue. */
static void order_reference(const AcmeOrder *o, char buf[static 24]) {
        snprintf(buf, 24, "%" PRIi64, o->id);
}

/* An administrator rejected the request: the order ends invalid, with the reason. Final: a
 * rejected request is never queued again under the same order. */
static int enroll_rejected(AcmeRequest *r, AcmeOrder *o, AcmeStatus from, const char *reference) {
        _cleanup_free_ char *reason = NULL, *detail = NULL;
        ApprovalState state = APPROVAL_REJECTED;
        int q;

        (void) ra_approval_state(r->store, "acme", reference, &state, &reason);
        if (state == APPROVAL_APPROVED)
                /* The RA's other unauthorized answer: a CSR other than the approved one. */
                q = asprintf(&detail, "The CSR is not the one an administrator approved");
        else
                q = asprintf(&detail, "The request was rejected by an administrator%s%s",
                             reason ? ": " : "", reason ?: "");
        if (q < 0)
                return -ENOMEM;
        q = set_order_state(r, o, from, ACME_STATUS_INVALID, -CF_E_UNAUTHORIZED, detail);
        if (q < 0)
                return q;
        return acme_fail(r, -CF_E_UNAUTHORIZED, "%s", detail);
}

/* Another fetch of the same processing order issued (or recorded a refusal) first: answer with
 * the order as it now is. */
static int reload_order(AcmeRequest *r, AcmeOrder *o) {
        _cleanup_(acme_order_freep) AcmeOrder *cur = NULL;
        AcmeOrder tmp;
        int q;

        q = store_acme_order_get(r->store, o->id, &cur);
        if (q < 0)
                return q;
        tmp = *o;
        *o = *cur;
        *cur = tmp;
        return 0;
}

/* Runs the RA for an order in state from (ready at finalize; processing when an approval was
 * pending) and records the outcome. Issuance and the order's new state share one transaction
 * (with the request's nonce): the inventory row and the valid order commit together or not at
 * all, so a crash never leaves a certificate without its order or the reverse, and a concurrent
 * finalize waits on the store's write lock and then finds the order no longer in state from. */
static int enroll(AcmeRequest *r, AcmeOrder *o, AcmeStatus from, X509_REQ *csr, const CsrInfo *info,
                  char **dns, char **ips) {
        _cleanup_(ra_enroll_result_freep) RaEnrollResult *res = NULL;
        char reference[24];
        RaEnrollRequest req = {
                .protocol = "acme",
                .protocol_profile = r->route_key,
                .ra = r->ra,
                .csr = csr,
                .dns = dns,
                .ips = ips,
                .not_before = o->not_before,
                .not_after = o->not_after,
                .account_id = o->account_id,
                .replaces = o->replaces,
                .csr_info = info,
                .reference = reference,
        };
        int q, e;

        order_reference(o, reference);
        q = acme_begin(r);
        if (q < 0)
                return q;
        q = order_expect(r->store, o->id, from);
        if (q < 0) {
                store_rollback(r->store);
                if (q == -CF_E_ORDER_NOT_READY && from == ACME_STATUS_PROCESSING)
                        return reload_order(r, o);
                return q;
        }

        q = ra_enroll(r->store, r->profiles, &req, &res);
        if (q >= 0 || q == -CF_E_APPROVAL_PENDING) {
                int k = q >= 0 ?
                        order_write(r->store, o, ACME_STATUS_VALID, res->serial, 0, NULL, false) :
                        /* Waits for approval in processing, with the CSR kept for the next try
                         * (and the queued request committed with it). */
                        order_write(r->store, o, ACME_STATUS_PROCESSING, NULL, 0, NULL, true);
                if (k < 0) {
                        store_rollback(r->store);
                        return k;
                }
                return acme_commit_request(r);
        }
        /* Nothing the RA did is kept; the request's nonce is recorded when it ends. */
        store_rollback(r->store);
        if (q == -CF_E_UNAUTHORIZED && r->ra->approval_required)
                return enroll_rejected(r, o, from, reference);

        e = cf_error_is_protocol(q) ? q : -CF_E_SERVER_INTERNAL;
        if (e == -CF_E_BAD_CSR || e == -CF_E_BAD_PUBLIC_KEY || e == -CF_E_REJECTED_IDENTIFIER ||
            e == -CF_E_MALFORMED || e == -CF_E_ALREADY_REPLACED) {
                /* Refused by policy: the order is ready again (it still is, at finalize). */
                if (from != ACME_STATUS_READY) {
                        int k = set_order_state(r, o, from, ACME_STATUS_READY, 0, NULL);
                        if (k < 0)
                                log_warning_errno(k, "Failed to return order %" PRIi64 " to ready: %m", o->id);
                }
                return acme_fail(r, e, "Issuance refused: %s", cf_error_name(q));
        }
        log_error_errno(q, "Issuance for ACME order %" PRIi64 " failed: %m", o->id);
        (void) set_order_state(r, o, from, ACME_STATUS_INVALID, -CF_E_SERVER_INTERNAL, "Issuance failed");
        return acme_fail(r, -CF_E_SERVER_INTERNAL, "Issuance failed");
}

int acme_finalize_retry_pending(AcmeRequest *r, AcmeOrder *o) {
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        _cleanup_(strv_freep) char **dns = NULL, **ips = NULL;
        int q;

        if (r->ra->approval_required) {
                char reference[24];
                ApprovalState state;

                /* Every poll of a waiting client lands here: while the request is pending, one
                 * store read and no CSR parsing. -ENOENT (not queued yet, e.g. an order from
                 * before the queue existed): ra_enroll() queues it below. */
                order_reference(o, reference);
                q = ra_approval_state(r->store, "acme", reference, &state, NULL);
                if (q >= 0 && state == APPROVAL_PENDING)
                        return 0;
                if (q < 0 && q != -ENOENT)
                        return q;
        }

        q = der_read_csr(o->csr, o->csr_size, &csr);
        if (q < 0)
                return q;
        q = order_identifiers(o, &dns, &ips);
        if (q < 0)
                return q;
        q = enroll(r, o, ACME_STATUS_PROCESSING, csr, NULL, dns, ips);
        /* Refusals were recorded in the order; the fetch itself still succeeds. */
        if (q < 0 && q != -CF_E_SERVER_INTERNAL && cf_error_is_protocol(q)) {
                free(r->detail);
                r->detail = NULL;
                return 0;
        }
        return q == -CF_E_SERVER_INTERNAL ? 0 : q;
}

int acme_finalize_handle(AcmeRequest *r, int64_t id) {
        _cleanup_(acme_order_freep) AcmeOrder *o = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        _cleanup_(csr_info_freep) CsrInfo *info = NULL;
        _cleanup_(strv_freep) char **dns = NULL, **ips = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        const char *b64;
        AcmeStatus st;
        size_t n;
        int q;

        q = acme_order_load_owned(r, id, &o);
        if (q < 0)
                return q;
        st = acme_order_effective_status(o, time_now());
        if (st != ACME_STATUS_READY)
                return acme_fail(r, -CF_E_ORDER_NOT_READY, "Order is %s, not ready", acme_status_to_string(st));

        if (!r->payload || json_get_string(r->payload, "csr", &b64) < 0)
                return acme_fail(r, -CF_E_MALFORMED, "finalize needs a csr");
        if (strlen(b64) > ACME_CSR_B64_MAX)
                return acme_fail(r, -CF_E_BAD_CSR, "CSR is too large");
        q = base64url_decode(b64, strlen(b64), (void **) &der, &n);
        if (q < 0)
                return acme_fail(r, -CF_E_MALFORMED, "csr is not base64url");
        q = der_read_csr(der, n, &csr);
        if (q < 0)
                return acme_fail(r, -CF_E_BAD_CSR, "csr is not a DER PKCS#10 request");

        q = order_identifiers(o, &dns, &ips);
        if (q < 0)
                return q;
        q = csr_check(r, csr, dns, ips, &info);
        if (q < 0)
                return q;

        o->csr = TAKE_PTR(der);
        o->csr_size = n;
        /* The CSR was verified and inspected just above: the RA does not do it again. */
        q = enroll(r, o, ACME_STATUS_READY, csr, info, dns, ips);
        if (q == -CF_E_ORDER_NOT_READY)
                return acme_fail(r, q, "Order is being finalized already");
        if (q < 0)
                return q;
        return acme_order_respond(r, 200, o);
}
