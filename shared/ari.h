/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* ACME Renewal Information (RFC 9773). */

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "shared/time-util.h"

#define ARI_RESPONSE_MAX (64u * 1024u)

/* CertID: base64url(AKI keyIdentifier) "." base64url(DER serial number content bytes, i.e. the
 * INTEGER's value octets including a leading 0x00 if present). -ENOENT if the certificate has
 * no AKI keyIdentifier. */
int ari_cert_id(X509 *cert, char **ret);
int ari_cert_id_from_parts(const uint8_t *aki, size_t aki_size,
                           const uint8_t *serial, size_t serial_size, char **ret);
/* Splits a CertID into its decoded parts (server side). Malformed: -CF_E_MALFORMED. */
int ari_cert_id_parse(const char *cert_id, uint8_t **ret_aki, size_t *ret_aki_size,
                      uint8_t **ret_serial, size_t *ret_serial_size);

typedef struct AriRenewalInfo {
        cf_time_t window_start;
        cf_time_t window_end;
        char *explanation_url;     /* NULL if absent */
} AriRenewalInfo;

/* Parses a renewalInfo response body: {"suggestedWindow":{"start":…,"end":…},
 * "explanationURL":…}. end must be after start (RFC 9773 §4.2), else -EBADMSG. */
int ari_parse_renewal_info(const char *body, size_t len, AriRenewalInfo *ret);
void ari_renewal_info_done(AriRenewalInfo *info);

/* A uniformly random time in [start, end] (RFC 9773 §4.2 recommends a random point). */
int ari_pick_renewal_time(cf_time_t start, cf_time_t end, cf_time_t *ret);
