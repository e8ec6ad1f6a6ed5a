/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Certificate signing requests (PKCS#10): build on the client side, inspect on the server. */

#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "shared/key.h"
#include "shared/macro.h"

#define CSR_NAMES_MAX 100         /* SAN entries accepted when inspecting */

typedef struct CsrRequest {
        EVP_PKEY *key;                   /* signs the CSR; the request's public key */
        const char *common_name;         /* NULL: none (defaults to dns[0] if set) */
        char **dns;                      /* strv, may be NULL */
        char **ips;                      /* textual IPv4/IPv6 */
        char **emails;
        char **uris;
        const char *challenge_password;  /* PKCS#9 challengePassword attribute, NULL: none */
} CsrRequest;

/* Signs with SHA-256 (none for Ed25519). Bad IP text etc.: -EINVAL. */
int csr_build(const CsrRequest *req, X509_REQ **ret);

/* The request's public key, decoded from its SubjectPublicKeyInfo (der_read_csr leaves it
 * encoded). Unparsable: -CF_E_BAD_PUBLIC_KEY. */
int csr_public_key(X509_REQ *csr, EVP_PKEY **ret);

typedef struct CsrInfo {
        char *subject;                   /* RFC 2253 one-line form */
        char *common_name;               /* NULL if none */
        char **dns;                      /* SANs, in the CSR's order, lower-cased DNS names */
        char **ips;                      /* canonical text form (inet_ntop) */
        char **emails;
        char **uris;
        char *challenge_password;        /* NULL if none */
        KeyInfo key;
        EVP_PKEY *public_key;            /* owned */
} CsrInfo;

/* Verifies the self-signature first (-CF_E_BAD_CSR if it fails), then extracts. SAN types other
 * than these four, more than CSR_NAMES_MAX names, or an unsupported key: -CF_E_BAD_CSR. */
int csr_inspect(X509_REQ *csr, CsrInfo **ret);
CsrInfo *csr_info_free(CsrInfo *info);
DEFINE_TRIVIAL_CLEANUP_FUNC(CsrInfo *, csr_info_free);
