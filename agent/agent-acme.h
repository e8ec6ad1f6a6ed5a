/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* ACME client (RFC 8555, RFC 9773 ARI) over libcurl and the shared JOSE code. Synchronous: it
 * runs on the enrollment worker thread, never on the event loop. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "agent/agent-challenge.h"
#include "shared/ari.h"
#include "shared/macro.h"

#define ACME_NONCE_RETRIES 10                /* badNonce retries per request */
#define ACME_POLL_TIMEOUT_SEC (10 * 60)      /* authorization and order polling, each */
#define ACME_POLL_INTERVAL_MIN 1
#define ACME_POLL_INTERVAL_MAX 60
#define ACME_AUTHORIZATIONS_MAX 100
#define ACME_CHALLENGES_MAX 16               /* challenges in one authorization */

typedef struct AcmeClient AcmeClient;

typedef struct AcmeClientOptions {
        const char *directory_url;
        const char *ca_bundle;               /* NULL: the system trust store */
        const char *state_dir;               /* account key and URL are kept here */
        const char *email;                   /* NULL: no contact */
        const char *eab_kid;                 /* NULL: no external account binding */
        const uint8_t *eab_key;
        size_t eab_key_size;
} AcmeClientOptions;

int acme_client_new(const AcmeClientOptions *o, AcmeClient **ret);
AcmeClient *acme_client_free(AcmeClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AcmeClient *, acme_client_free);

/* A human-readable description of the last failure ("newOrder: urn:…:rejectedIdentifier: …"),
 * "" if none. Never contains key material. */
const char *acme_client_error(AcmeClient *c);

/* Fetches the directory (once). */
int acme_client_load_directory(AcmeClient *c);
/* true if the directory advertises renewalInfo (RFC 9773 §3). */
bool acme_client_has_ari(AcmeClient *c);
/* GET renewalInfo/CERTID. *ret_retry_after: seconds from the Retry-After header, -1 if absent. */
int acme_client_renewal_info(AcmeClient *c, X509 *cert, AriRenewalInfo *ret, int64_t *ret_retry_after);

/* Loads the persisted account for this directory or creates one (with EAB if configured). */
int acme_client_ensure_account(AcmeClient *c);

typedef struct AcmeIssueRequest {
        char *const *names;                  /* DNS identifiers ("*.example.com" for wildcards) */
        EVP_PKEY *key;                       /* the certificate key (signs the CSR) */
        X509 *replaces;                      /* the certificate being renewed (ARI), or NULL */
        AgentChallengeSolver *solver;
        const char *profile;                 /* newOrder "profile" (ACME profiles extension), sent only
                                              * if the directory's meta.profiles lists it; NULL: none */
} AcmeIssueRequest;

/* true if identifier (the "identifier.value" of an authorization the server sent) is one of the
 * names we ordered, or the base domain of one of our wildcards (RFC 8555 §7.1.4). The identifier
 * comes from the server: a name we did not order must never reach a DNS hook or a responder. */
bool acme_identifier_was_ordered(char *const *names, const char *identifier);

/* newOrder → authorizations → challenges → finalize → download. Returns the leaf and the rest of
 * the chain as PEM (chain "" if the CA sent none). */
int acme_client_issue(AcmeClient *c, const AcmeIssueRequest *req, char **ret_cert_pem, char **ret_chain_pem);
