/* SPDX-License-Identifier: Apache-2.0 */
/* Enrollment and revocation: the one path from any front end to the CA and the inventory. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server/ca/ca.h"
#include "server/ra/ra-internal.h"
#include "server/ra/ra.h"
#include "shared/ari.h"
#include "shared/cert.h"
#include "shared/csr.h"
#include "shared/errors.h"
#include "shared/log.h"
#include "shared/pem.h"
#include "shared/strv.h"

RaEnrollResult *ra_enroll_result_free(RaEnrollResult *r) {
        if (!r)
                return NULL;
        X509_free(r->cert);
        sk_X509_pop_free(r->chain, X509_free);
        free(r->serial);
        free(r->pem_fullchain);
        free(r);
        return NULL;
}

static bool strv_has_duplicates(char **l) {
        for (char **i = l; i && *i; i++)
                for (char **j = i + 1; *j; j++)
                        if (strcmp(*i, *j) == 0)
                                return true;
        return false;
}

/* The authorised identifier the CSR's CN names (in the authorised spelling), NULL if none. */
static const char *common_name_match(const char *cn, char **dns, char **ips) {
        unsigned char addr[16];
        char canonical[INET6_ADDRSTRLEN];

        for (char **i = dns; i && *i; i++)
                if (strcasecmp(*i, cn) == 0)
                        return *i;

        /* An IP address in the CN may be spelled differently from the canonical SAN text. */
        if (inet_pton(AF_INET, cn, addr) == 1)
                inet_ntop(AF_INET, addr, canonical, sizeof canonical);
        else if (inet_pton(AF_INET6, cn, addr) == 1)
                inet_ntop(AF_INET6, addr, canonical, sizeof canonical);
        else
                return NULL;
        for (char **i = ips; i && *i; i++)
                if (strcmp(*i, canonical) == 0)
                        return *i;
        return NULL;
}

/* The CSR must ask for exactly the authorised identifiers: not one more (the client proved
 * control of nothing else), not one less (the order says what the certificate contains). */
static int ra_check_csr_names(const CsrInfo *info, const RaEnrollRequest *req) {
        if (strv_length(info->emails) > 0 || strv_length(info->uris) > 0)
                return -CF_E_BAD_CSR;
        if (strv_has_duplicates(info->dns) || strv_has_duplicates(info->ips))
                return -CF_E_BAD_CSR;
        if (!strv_equal_unordered(info->dns, req->dns) || !strv_equal_unordered(info->ips, req->ips))
                return -CF_E_BAD_CSR;
        if (info->common_name && !common_name_match(info->common_name, req->dns, req->ips))
                return -CF_E_BAD_CSR;
        return 0;
}

static int ra_identifiers(char **dns, char **ips, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        int r;

        for (char **i = dns; i && *i; i++) {
                char *s;
                if (asprintf(&s, "dns:%s", *i) < 0)
                        return -ENOMEM;
                r = strv_consume(&l, s);
                if (r < 0)
                        return r;
        }
        for (char **i = ips; i && *i; i++) {
                char *s;
                if (asprintf(&s, "ip:%s", *i) < 0)
                        return -ENOMEM;
                r = strv_consume(&l, s);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int ra_record(Store *store, const RaEnrollRequest *req, X509 *cert, EVP_PKEY *key,
                     STACK_OF(X509) *chain, char **ret_serial, char **ret_fullchain) {
        _cleanup_(cert_info_freep) CertInfo *ci = NULL;
        _cleanup_free_ char *pem = NULL, *chain_pem = NULL, *ari_id = NULL, *fullchain = NULL;
        _cleanup_(strv_freep) char **identifiers = NULL;
        InventoryCert row;
        int r;

        /* The CA copied the CSR's encoded key: the certificate holds no decoded one. */
        r = cert_inspect_with_key(cert, key, &ci);
        if (r < 0)
                return r;
        r = pem_write_cert(cert, &pem);
        if (r < 0)
                return r;
        if (chain && sk_X509_num(chain) > 0) {
                r = pem_write_chain(chain, &chain_pem);
                if (r < 0)
                        return r;
        }
        r = ari_cert_id(cert, &ari_id);
        if (r < 0)
                return r;
        r = ra_identifiers(req->dns, req->ips, &identifiers);
        if (r < 0)
                return r;

        row = (InventoryCert) {
                .serial = ci->serial_hex,
                .protocol = (char *) req->protocol,
                .protocol_profile = (char *) req->protocol_profile,
                .ra_profile = req->ra->name,
                .ca = req->ra->ca,
                .account_id = req->account_id,
                .identifiers = identifiers,
                .subject = ci->subject,
                .not_before = ci->not_before,
                .not_after = ci->not_after,
                .issued_at = time_now(),
                .status = CERT_STATUS_VALID,
                .revocation_reason = -1,
                .ari_cert_id = ari_id,
                .pem = pem,
                .chain_pem = chain_pem,
        };
        r = store_inventory_insert(store, &row);
        if (r < 0)
                return r;

        if (req->replaces) {
                r = store_inventory_mark_replaced(store, req->replaces, ci->serial_hex);
                if (r < 0)
                        return r;
        }

        if (asprintf(&fullchain, "%s%s", pem, chain_pem ?: "") < 0) {
                fullchain = NULL;
                return -ENOMEM;
        }

        *ret_serial = TAKE_PTR(ci->serial_hex);
        *ret_fullchain = TAKE_PTR(fullchain);
        return 0;
}

int ra_enroll(Store *store, const ProfileSet *profiles, const RaEnrollRequest *req,
              RaEnrollResult **ret) {
        _cleanup_(csr_info_freep) CsrInfo *own_info = NULL;
        const CsrInfo *info;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_free_ char *serial = NULL, *fullchain = NULL;
        _cleanup_(approval_request_freep) ApprovalRequest *approval = NULL;
        const RaProfile *ra;
        const char *detail = NULL;
        CaIssueRequest issue;
        CaBackend *ca;
        cf_time_t not_before, not_after;
        RaEnrollResult *result;
        bool own_transaction = false;
        int r;

        if (!store || !profiles || !req || !req->ra || !req->csr || !req->protocol || !ret)
                return -EINVAL;
        ra = req->ra;

        if (!ra->enabled)
                return -CF_E_DISABLED;
        if (ra->approval_required) {
                /* Without a reference the request could never be named in the queue, so it can
                 * never be approved either. */
                if (!req->reference)
                        return -CF_E_APPROVAL_PENDING;
                /* First, before any CSR work: clients poll while they wait. */
                r = store_approval_get_by_reference(store, req->protocol, req->reference, &approval);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (approval) {
                        switch (approval->state) {
                        case APPROVAL_PENDING:
                                return -CF_E_APPROVAL_PENDING;
                        case APPROVAL_REJECTED:
                                /* unauthorized, not rejectedIdentifier: the identifiers may be
                                 * perfectly allowed, it is this request that an administrator
                                 * refused, and the refusal is final. Front ends treat the
                                 * policy errors (rejectedIdentifier, badCSR …) as "fix the
                                 * request and try again" (ACME returns the order to ready); a
                                 * rejection must end the request instead (RFC 8555 §6.7:
                                 * "the client lacks sufficient authorization"). */
                                return -CF_E_UNAUTHORIZED;
                        case APPROVAL_APPROVED:
                                if (approval->cert_serial)
                                        return ra_approval_issued_result(store, approval->cert_serial, ret);
                                r = ra_approval_check_csr(approval, req->csr);
                                if (r < 0)
                                        return r;
                                break;
                        default:
                                return -EIO;
                        }
                }
        }

        info = req->csr_info;
        if (!info) {
                r = csr_inspect(req->csr, &own_info);
                if (r < 0)
                        return r == -ENOMEM ? r : -CF_E_BAD_CSR;
                info = own_info;
        }

        r = ra_check_key(ra, info->public_key, &detail);
        if (r < 0)
                return log_debug_errno(r, "CSR key refused: %s", detail ?: "?");

        if (strv_length(req->dns) + strv_length(req->ips) == 0)
                return -CF_E_BAD_CSR;
        r = ra_check_csr_names(info, req);
        if (r < 0)
                return log_debug_errno(r, "CSR names do not match the authorised identifiers.");
        for (char **i = req->dns; i && *i; i++) {
                r = ra_check_identifier(ra, IDENTIFIER_DNS, *i);
                if (r < 0)
                        return r;
        }
        for (char **i = req->ips; i && *i; i++) {
                r = ra_check_identifier(ra, IDENTIFIER_IP, *i);
                if (r < 0)
                        return r;
        }

        not_before = req->not_before ?: time_now();
        not_after = req->not_after ?: not_before + ra->validity;
        r = ra_check_validity(ra, not_before, not_after);
        if (r < 0)
                return r;

        if (ra->approval_required && !approval) {
                _cleanup_(strv_freep) char **identifiers = NULL;

                /* Queued only now that every policy check passed: an administrator never
                 * decides on a request the RA would refuse anyway. */
                r = ra_identifiers(req->dns, req->ips, &identifiers);
                if (r < 0)
                        return r;
                return ra_approval_queue(store, req, info, identifiers);
        }

        ca = profile_set_get_ca_backend(profiles, ra->ca);
        if (!ca)
                return log_debug_errno(-CF_E_SERVER_INTERNAL, "CA '%s' of RA profile '%s' is not open.",
                                       ra->ca, ra->name);

        issue = (CaIssueRequest) {
                .public_key = info->public_key,
                /* The CN in the spelling that was authorised and checked, not the CSR's. */
                .common_name = info->common_name ? common_name_match(info->common_name, req->dns, req->ips) : NULL,
                .dns = req->dns,
                .ips = req->ips,
                .not_before = not_before,
                .not_after = not_after,
                .public_key_info = X509_REQ_get_X509_PUBKEY(req->csr),
        };

        /* In the caller's transaction when it has one open (ACME commits the order's new state
         * with the certificate), else in our own. */
        own_transaction = !store_in_transaction(store);
        if (own_transaction) {
                r = store_begin(store);
                if (r < 0)
                        return r;
        }

        if (approval) {
                _cleanup_free_ char *issued = NULL;
                ApprovalState state;

                /* Writers serialize at store_begin(): reading again inside the transaction tells
                 * whether a concurrent attempt for the same request issued while this one ran
                 * its checks. If so, its certificate is the answer; never sign twice. */
                r = store_approval_get_state(store, req->protocol, req->reference, &state, NULL, &issued);
                if (r < 0)
                        goto fail;
                if (state != APPROVAL_APPROVED) {
                        r = -EIO;
                        goto fail;
                }
                if (issued) {
                        /* Nothing written yet: the caller's transaction, if any, stays as it was. */
                        if (own_transaction)
                                store_rollback(store);
                        return ra_approval_issued_result(store, issued, ret);
                }
        }

        r = ca_issue(ca, ra, &issue, &cert, &chain);
        if (r < 0)
                goto fail;
        r = ra_record(store, req, cert, info->public_key, chain, &serial, &fullchain);
        if (r < 0)
                goto fail;
        if (approval) {
                r = store_approval_set_issued(store, approval->id, serial);
                if (r < 0)
                        goto fail;
        }
        if (own_transaction) {
                r = store_commit(store);
                if (r < 0)
                        return r;
        }

        result = calloc(1, sizeof *result);
        if (!result)
                return -ENOMEM;
        *result = (RaEnrollResult) {
                .cert = TAKE_PTR(cert),
                .chain = TAKE_PTR(chain),
                .serial = TAKE_PTR(serial),
                .pem_fullchain = TAKE_PTR(fullchain),
        };
        *ret = result;
        return 0;

fail:
        if (own_transaction)
                store_rollback(store);
        return r;
}

static bool revocation_reason_valid(int reason) {
        /* RFC 5280 §5.3.1 CRLReason; 7 is unused. */
        /* 7 is unassigned; removeFromCRL (8) only appears in delta CRLs (RFC 5280 5.3.1). */
        return reason >= 0 && reason <= 10 && reason != 7 && reason != 8;
}

int ra_revoke(Store *store, const ProfileSet *profiles, const char *serial, int reason) {
        _cleanup_(inventory_cert_freep) InventoryCert *row = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        CaBackend *ca;
        int r;

        if (!store || !profiles || !serial)
                return -EINVAL;
        if (!revocation_reason_valid(reason))
                return -CF_E_BAD_REVOCATION_REASON;

        r = store_begin(store);
        if (r < 0)
                return r;

        r = store_inventory_get(store, serial, &row);
        if (r < 0)
                goto fail;
        if (row->status == CERT_STATUS_REVOKED) {
                r = -CF_E_ALREADY_REVOKED;
                goto fail;
        }
        ca = profile_set_get_ca_backend(profiles, row->ca);
        if (!ca) {
                r = log_debug_errno(-CF_E_SERVER_INTERNAL, "CA '%s' of certificate %s is not configured.",
                                    row->ca ?: "(none)", serial);
                goto fail;
        }
        r = pem_read_cert(row->pem, strlen(row->pem), &cert);
        if (r < 0)
                goto fail;

        r = ca_revoke(ca, cert, reason);
        if (r < 0)
                goto fail;
        r = store_inventory_revoke(store, serial, reason, time_now());
        if (r < 0)
                goto fail;

        return store_commit(store);

fail:
        store_rollback(store);
        return r;
}
