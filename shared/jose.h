/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* JOSE for ACME: JWK (RFC 7517/7518, Ed25519 per RFC 8037), JWK thumbprint (RFC 7638),
 * JWS in the flattened JSON serialization (RFC 7515 §7.2.2) with the protected-header fields ACME
 * uses (RFC 8555 §6.2): alg, nonce, url, and exactly one of jwk / kid.
 *
 * Algorithms: ES256 (P-256), ES384 (P-384), ES512 (P-521), RS256 (RSA ≥ 2048), EdDSA (Ed25519),
 * and HS256 for external account binding (RFC 8555 §7.3.4). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "shared/macro.h"

#define JWS_BODY_MAX (256u * 1024u)   /* a flattened JWS larger than this: -E2BIG */

typedef enum JwsAlg {
        JWS_ALG_ES256,
        JWS_ALG_ES384,
        JWS_ALG_ES512,
        JWS_ALG_RS256,
        JWS_ALG_EDDSA,
        JWS_ALG_HS256,
        _JWS_ALG_MAX,
        _JWS_ALG_INVALID = -22, /* -EINVAL */
} JwsAlg;

const char *jws_alg_to_string(JwsAlg a);          /* "ES256" … */
JwsAlg jws_alg_from_string(const char *s);        /* exact, case-sensitive; "none" → invalid */
/* The alg a public key signs with; RSA < 2048 bits and unsupported keys: -CF_E_BAD_PUBLIC_KEY. */
int jws_alg_for_key(EVP_PKEY *key, JwsAlg *ret);

/* Public JWK with only the required members (kty, crv, x, y / n, e), so it can be thumbprinted. */
int jwk_from_key(EVP_PKEY *key, json_object **ret);
/* JWK → public key. Rejects private members ("d"), unknown kty/crv, points not on the curve,
 * RSA under 2048 bits (-CF_E_BAD_PUBLIC_KEY), malformed members (-EBADMSG). */
int jwk_to_key(json_object *jwk, EVP_PKEY **ret);
/* RFC 7638 thumbprint: base64url(SHA-256(canonical JSON of the required members)). */
int jwk_thumbprint(json_object *jwk, char **ret);
int jwk_thumbprint_from_key(EVP_PKEY *key, char **ret);

/* Signing (client side). Protected header: {"alg", "nonce" (omitted if NULL), "url",
 * "jwk" if kid is NULL else "kid"}. payload NULL means POST-as-GET (empty payload "").
 * Returns the flattened JSON serialization as a string. ECDSA signatures are raw r||s. */
int jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
             json_object *payload, char **ret);
/* The JWS Signature over an arbitrary JWS Signing Input ("<b64url header>.<b64url payload>") with
 * the alg of key (jws_alg_for_key); ECDSA as raw r||s. For callers and tests that build their own
 * protected headers. */
int jws_sign_input(EVP_PKEY *key, const char *signing_input, size_t size,
                   uint8_t **ret, size_t *ret_size);
/* RFC 8555 §7.3.4 external account binding: HS256 JWS over the account's public JWK with
 * protected {"alg":"HS256","kid":eab_kid,"url":url}. Returned as a JSON object for newAccount. */
int jws_sign_eab(const uint8_t *hmac_key, size_t hmac_key_len, const char *eab_kid,
                 const char *url, EVP_PKEY *account_key, json_object **ret);
/* RFC 8555 §7.3.5 keyChange: inner JWS signed by new_key with jwk, url, no nonce, payload
 * {"account": account_url, "oldKey": jwk(old_key)}. */
int jws_sign_key_change(EVP_PKEY *new_key, EVP_PKEY *old_key, const char *account_url,
                        const char *url, json_object **ret);

/* A parsed (not yet verified) flattened JWS. All members are owned. */
typedef struct Jws {
        JwsAlg alg;
        char *alg_name;             /* as sent */
        char *nonce;                /* NULL if absent */
        char *url;                  /* NULL if absent */
        char *kid;                  /* NULL if absent */
        json_object *jwk;           /* NULL if absent */
        json_object *protected_header;
        uint8_t *payload;           /* decoded; NUL-terminated; payload_size 0 for POST-as-GET */
        size_t payload_size;
        bool payload_empty;         /* "payload": "" — POST-as-GET */
        char *signing_input;        /* "<protected b64>.<payload b64>" */
        uint8_t *signature;
        size_t signature_size;
} Jws;

/* Parses the flattened JSON serialization only (compact and general serializations,
 * an unprotected "header", "crit", unknown alg or "none", both or neither of jwk/kid, bad
 * base64url → errors). Errors: -CF_E_MALFORMED, -CF_E_BAD_SIGNATURE_ALGORITHM, -E2BIG. */
int jws_parse(const char *body, size_t len, Jws **ret);
Jws *jws_free(Jws *jws);
DEFINE_TRIVIAL_CLEANUP_FUNC(Jws *, jws_free);

/* Verifies with key: the alg must match the key (ES256 ↔ P-256, …, RS256 ↔ RSA ≥ 2048, EdDSA ↔
 * Ed25519) else -CF_E_BAD_SIGNATURE_ALGORITHM; ECDSA signatures must be raw r||s of exactly
 * 2×field bytes (DER → -CF_E_BAD_SIGNATURE); RSA < 2048 → -CF_E_BAD_PUBLIC_KEY; a signature that
 * does not verify → -CF_E_BAD_SIGNATURE. */
int jws_verify(const Jws *jws, EVP_PKEY *key);
/* HS256 with a constant-time comparison. */
int jws_verify_hmac(const Jws *jws, const uint8_t *key, size_t key_len);
