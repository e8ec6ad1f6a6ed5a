/* SPDX-License-Identifier: Apache-2.0 */
/* The RA's side of the approval queue (RA profiles with ApprovalRequired=yes): queue a request
 * the first time a protocol asks, answer "pending" cheaply while it waits, and refuse or let
 * ra_enroll() issue once an administrator decided (`certfleet-server request …`). */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/ra/ra-internal.h"
#include "server/ra/ra.h"
#include "shared/errors.h"
#include "shared/log.h"
#include "shared/pem.h"

int ra_approval_state(Store *store, const char *protocol, const char *reference,
                      ApprovalState *ret_state, char **ret_reason) {
        if (!store || !protocol || !reference)
                return -EINVAL;
        return store_approval_get_state(store, protocol, reference, ret_state, ret_reason, NULL);
}

/* "EC P-256", "RSA 3072", "Ed25519": what the administrator reads in `request show`. */
static int key_description(const KeyInfo *k, char **ret) {
        int n;

        switch (k->algorithm) {
        case KEY_ALG_EC:
                n = asprintf(ret, "EC %s", k->curve ?: "?");
                break;
        case KEY_ALG_RSA:
                n = asprintf(ret, "RSA %d", k->bits);
                break;
        case KEY_ALG_ED25519:
                n = asprintf(ret, "Ed25519");
                break;
        default:
                n = asprintf(ret, "unknown");
        }
        return n < 0 ? -ENOMEM : 0;
}

int ra_approval_queue(Store *store, const RaEnrollRequest *req, const CsrInfo *info, char **identifiers) {
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *key = NULL;
        ApprovalRequest a;
        size_t n;
        int r;

        r = der_write_csr(req->csr, &der, &n);
        if (r < 0)
                return r;
        r = key_description(&info->key, &key);
        if (r < 0)
                return r;

        a = (ApprovalRequest) {
                .protocol = (char *) req->protocol,
                .protocol_profile = (char *) req->protocol_profile,
                .ra_profile = req->ra->name,
                .reference = (char *) req->reference,
                .account_id = req->account_id,
                .identifiers = identifiers,
                .subject = info->subject,
                .key = key,
                .csr = der,
                .csr_size = n,
                .created = time_now(),
        };
        r = store_approval_insert(store, &a, NULL);
        /* -EEXIST: a concurrent attempt for the same reference queued it first; either way it
         * is now queued and waits for a decision. */
        if (r < 0 && r != -EEXIST)
                return r;
        log_debug("Enrollment %s/%s queued for approval.", req->protocol, req->reference);
        return -CF_E_APPROVAL_PENDING;
}

int ra_approval_check_csr(const ApprovalRequest *a, X509_REQ *csr) {
        _cleanup_free_ uint8_t *der = NULL;
        size_t n;
        int r;

        r = der_write_csr(csr, &der, &n);
        if (r < 0)
                return r;
        /* The decision covers the CSR the administrator was shown, not any later one sent under
         * the same reference. Unauthorized, like a rejection: this request was not approved. */
        if (n != a->csr_size || memcmp(der, a->csr, n) != 0)
                return log_debug_errno(-CF_E_UNAUTHORIZED,
                                       "CSR of %s/%s differs from the approved one.", a->protocol, a->reference);
        return 0;
}

int ra_approval_issued_result(Store *store, const char *serial, RaEnrollResult **ret) {
        _cleanup_(inventory_cert_freep) InventoryCert *row = NULL;
        _cleanup_(ra_enroll_result_freep) RaEnrollResult *res = NULL;
        int r;

        r = store_inventory_get(store, serial, &row);
        if (r < 0)
                return r;

        res = calloc(1, sizeof *res);
        if (!res)
                return -ENOMEM;
        r = pem_read_cert(row->pem, strlen(row->pem), &res->cert);
        if (r < 0)
                return r;
        if (row->chain_pem) {
                r = pem_read_chain(row->chain_pem, strlen(row->chain_pem), &res->chain);
                if (r < 0)
                        return r;
        } else {
                res->chain = sk_X509_new_null();
                if (!res->chain)
                        return -ENOMEM;
        }
        res->serial = TAKE_PTR(row->serial);
        if (asprintf(&res->pem_fullchain, "%s%s", row->pem, row->chain_pem ?: "") < 0) {
                res->pem_fullchain = NULL;
                return -ENOMEM;
        }
        *ret = TAKE_PTR(res);
        return 0;
}
