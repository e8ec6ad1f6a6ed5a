/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* CA backends behind one interface (issue, revoke). "local" signs with keys in its directory;
 * upstream CAs and a separate signer process come later. A backend re-checks every request
 * against the RA profile before signing, so a compromised front end can't make it sign
 * anything the profile forbids. */

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "server/ra/ra-profile.h"
#include "shared/key.h"
#include "shared/macro.h"
#include "shared/time-util.h"

typedef struct CaBackend CaBackend;

typedef struct CaIssueRequest {
        EVP_PKEY *public_key;
        const char *common_name;           /* NULL: none (subject empty, SAN critical) */
        char **dns;
        char **ips;
        cf_time_t not_before;
        cf_time_t not_after;
        /* Optional: public_key's encoded SubjectPublicKeyInfo (the CSR's). A backend that can
         * copies it into the certificate instead of re-encoding the key, which with OpenSSL 3
         * costs an encoder and a decoder run. The certificate then holds no decoded key:
         * X509_get0_pubkey() on it fails, use public_key. NULL: the key is encoded. */
        const X509_PUBKEY *public_key_info;
} CaIssueRequest;

/* Opens the backend named by the config (loads keys, once; safe to share between threads). */
int ca_backend_open(const CaConfig *config, CaBackend **ret);
CaBackend *ca_backend_unref(CaBackend *ca);
CaBackend *ca_backend_ref(CaBackend *ca);
DEFINE_TRIVIAL_CLEANUP_FUNC(CaBackend *, ca_backend_unref);

/* Random positive 16-byte serial, AKI/SKI, key usage and EKU from the profile, basicConstraints
 * CA:FALSE, SANs, CRL DP / AIA from the CA config. Re-checks identifiers, key and validity against
 * the profile (same errors as ra_check_*). */
int ca_issue(CaBackend *ca, const RaProfile *profile, const CaIssueRequest *req,
             X509 **ret_cert, STACK_OF(X509) **ret_chain);
int ca_revoke(CaBackend *ca, X509 *cert, int reason);

/* The issuing CA certificate and the root (borrowed). */
X509 *ca_backend_get0_issuer(CaBackend *ca);
X509 *ca_backend_get0_root(CaBackend *ca);

/* `certfleet-server ca init`: creates DIR/root.{crt,key} and DIR/issuing.{crt,key} (keys 0600),
 * EC P-256 by default. -EEXIST if DIR already holds a CA (unless force). */
int ca_local_init(const char *directory, KeyType key_type, const char *name_prefix, bool force);
