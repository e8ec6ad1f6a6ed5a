/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Key generation and description. */

#include <errno.h>
#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

typedef enum KeyType {
        KEY_EC_P256,
        KEY_EC_P384,
        KEY_EC_P521,
        KEY_RSA_2048,
        KEY_RSA_3072,
        KEY_RSA_4096,
        KEY_ED25519,
        _KEY_TYPE_MAX,
        _KEY_TYPE_INVALID = -EINVAL,
} KeyType;

/* "ec-p256" "ec-p384" "ec-p521" "rsa-2048" "rsa-3072" "rsa-4096" "ed25519" (case-insensitive;
 * "ecdsa-p256", "rsa2048", "rsa" (=2048) and "ec" (=p256) also accepted). */
KeyType key_type_from_string(const char *s);
const char *key_type_to_string(KeyType t);

int key_generate(KeyType type, EVP_PKEY **ret);

typedef enum KeyAlgorithm {
        KEY_ALG_RSA,
        KEY_ALG_EC,
        KEY_ALG_ED25519,
        _KEY_ALG_MAX,
        _KEY_ALG_INVALID = -EINVAL,
} KeyAlgorithm;

const char *key_algorithm_to_string(KeyAlgorithm a);   /* "rsa" "ec" "ed25519" */
KeyAlgorithm key_algorithm_from_string(const char *s);

typedef struct KeyInfo {
        KeyAlgorithm algorithm;
        int bits;                 /* RSA modulus bits; EC field bits (256/384/521); 255 for Ed25519 */
        const char *curve;        /* "P-256" "P-384" "P-521" for EC, else NULL (static string) */
} KeyInfo;

/* -EOPNOTSUPP for key types we don't handle (DSA, other curves, …). */
int key_describe(EVP_PKEY *key, KeyInfo *ret);

/* true if a and b are the same public key. */
bool key_public_equal(EVP_PKEY *a, EVP_PKEY *b);

/* A public key from OSSL_PARAMs (EVP_PKEY_fromdata), with the quick public-key check.
 * Refused: -CF_E_BAD_PUBLIC_KEY. */
int key_from_public_params(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **ret);

/* Decodes a SubjectPublicKeyInfo. EC keys on P-256/384/521 and Ed25519 are built from their
 * parameters: OpenSSL 3.0's generic decoder sets up a decoder context on every call (about
 * 80 µs, twenty times the rest of a CSR's parsing). Everything else goes through d2i_PUBKEY.
 * Unparsable or refused: -CF_E_BAD_PUBLIC_KEY. */
int key_from_spki(const X509_PUBKEY *spki, EVP_PKEY **ret);
