/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Certificate inspection. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "shared/key.h"
#include "shared/macro.h"
#include "shared/time-util.h"

/* Key usage bits as in X509_get_key_usage() (KU_DIGITAL_SIGNATURE …). */
typedef struct CertInfo {
        char *serial_hex;          /* as cert_serial_hex(): lower-case hex, no leading zeros, no colons */
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
/* The same, with the certificate's public key supplied by the caller (NULL: take the decoded key
 * from the certificate). A certificate assembled from an encoded SubjectPublicKeyInfo (see
 * CaIssueRequest.public_key_info) carries no decoded key, and decoding it only to describe it is
 * what the caller that already has the key avoids. key must be the certificate's key. */
int cert_inspect_with_key(X509 *cert, EVP_PKEY *key, CertInfo **ret);
CertInfo *cert_info_free(CertInfo *info);
DEFINE_TRIVIAL_CLEANUP_FUNC(CertInfo *, cert_info_free);

/* Serial as lower-case hex without leading zeros ("0" for zero). */
int cert_serial_hex(X509 *cert, char **ret);

/* Checks that chain[i] is issued by chain[i+1] (name match and signature) for every i.
 * -CF_E_MALFORMED with the first offending index in *ret_bad_index (if non-NULL). */
int chain_check_order(STACK_OF(X509) *chain, size_t *ret_bad_index);

/* X.509 name helpers, shared with csr.c. */

/* RFC 2253 one-line form (UTF-8 left unescaped). */
int x509_name_to_string(const X509_NAME *name, char **ret);
/* The last (most specific) commonName as UTF-8; -ENOENT if there is none, -EBADMSG if it does not
 * convert or contains a NUL. */
int x509_name_get_common_name(const X509_NAME *name, char **ret);

/* Collects the dNSName (lower-cased), iPAddress (inet_ntop text), rfc822Name and URI entries of
 * gens, each list in order (NULL for an empty list). Other name types are skipped, or -EBADMSG if
 * strict. More than max entries in total, malformed entries (embedded NUL, non-ASCII, bad IP
 * length): -EBADMSG. gens may be NULL (four empty lists). */
int general_names_collect(const GENERAL_NAMES *gens, bool strict, size_t max,
                          char ***ret_dns, char ***ret_ips, char ***ret_emails, char ***ret_uris);
