/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Certificate inspection. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "shared/key.h"
#include "shared/macro.h"
#include "shared/time-util.h"

/* Key usage bits as in X509_get_key_usage() (KU_DIGITAL_SIGNATURE …). */
typedef struct CertInfo {
        char *serial_hex;          /* lower-case hex, no leading zeros beyond one byte pair, no colons */
        uint8_t *serial;           /* big-endian magnitude bytes as encoded (used by ARI) */
        size_t serial_size;
        char *issuer;              /* RFC 2253 one-line */
        char *subject;
        char *common_name;         /* NULL if none */
        char **dns;
        char **ips;
        char **emails;
        char **uris;
        cf_time_t not_before;
        cf_time_t not_after;
        uint8_t *aki;              /* authorityKeyIdentifier keyIdentifier, NULL if absent */
        size_t aki_size;
        uint8_t *ski;              /* subjectKeyIdentifier, NULL if absent */
        size_t ski_size;
        uint32_t key_usage;        /* UINT32_MAX if the extension is absent */
        char **ekus;               /* short names ("serverAuth", "clientAuth", …) or dotted OIDs */
        bool is_ca;
        KeyInfo key;
} CertInfo;

int cert_inspect(X509 *cert, CertInfo **ret);
CertInfo *cert_info_free(CertInfo *info);
DEFINE_TRIVIAL_CLEANUP_FUNC(CertInfo *, cert_info_free);

/* Serial as lower-case hex without leading zeros ("0" for zero). */
int cert_serial_hex(X509 *cert, char **ret);

/* Checks that chain[i] is issued by chain[i+1] (name match and signature) for every i.
 * -CF_E_MALFORMED with the first offending index in *ret_bad_index (if non-NULL). */
int chain_check_order(STACK_OF(X509) *chain, size_t *ret_bad_index);
