/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between the files of server/ra/ only. */

#include <stdbool.h>

#include "server/ra/ra.h"
#include "server/store/store-approval.h"

/* An AllowedIdentifiers= entry: "*" (any DNS name), "host.example", "*.zone.example",
 * "10.0.0.0/8", "fd00::/8" or a single address. */
bool ra_identifier_pattern_valid(const char *pattern);

/* DNS name syntax of ra_check_identifier(): lower-case LDH labels, at most 253 characters, a
 * wildcard only as the whole leftmost label, not all-numeric in the last label. */
bool ra_dns_name_valid(const char *name);

/* Queues req (which passed every policy check) as a pending approval request. Returns
 * -CF_E_APPROVAL_PENDING when queued (or already queued by a concurrent attempt), else a
 * negative errno. identifiers: "dns:…"/"ip:…" strings as the inventory keeps them. */
int ra_approval_queue(Store *store, const RaEnrollRequest *req, const CsrInfo *info, char **identifiers);
/* 0 if csr is the one the approval request a was queued with, else -CF_E_UNAUTHORIZED. */
int ra_approval_check_csr(const ApprovalRequest *a, X509_REQ *csr);
/* The result of an earlier issuance for an approved request, rebuilt from the inventory, so a
 * client that polls again (or two that poll at once) get the one certificate issued. */
int ra_approval_issued_result(Store *store, const char *serial, RaEnrollResult **ret);
