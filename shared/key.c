/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "shared/errors.h"
#include "shared/key.h"
#include "shared/macro.h"

static const char *const key_type_table[_KEY_TYPE_MAX] = {
        [KEY_EC_P256] = "ec-p256",
        [KEY_EC_P384] = "ec-p384",
        [KEY_EC_P521] = "ec-p521",
        [KEY_RSA_2048] = "rsa-2048",
        [KEY_RSA_3072] = "rsa-3072",
        [KEY_RSA_4096] = "rsa-4096",
        [KEY_ED25519] = "ed25519",
};

/* Spellings people write in configuration files besides the canonical ones. */
static const struct {
        const char *name;
        KeyType type;
} key_type_aliases[] = {
        { "ecdsa-p256", KEY_EC_P256 },
        { "ecdsa-p384", KEY_EC_P384 },
        { "ecdsa-p521", KEY_EC_P521 },
        { "ec",         KEY_EC_P256 },
        { "ecdsa",      KEY_EC_P256 },
        { "rsa2048",    KEY_RSA_2048 },
        { "rsa3072",    KEY_RSA_3072 },
        { "rsa4096",    KEY_RSA_4096 },
        { "rsa",        KEY_RSA_2048 },
};

KeyType key_type_from_string(const char *s) {
        if (!s)
                return _KEY_TYPE_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(key_type_table); i++)
                if (strcasecmp(s, key_type_table[i]) == 0)
                        return (KeyType) i;
        for (size_t i = 0; i < ELEMENTSOF(key_type_aliases); i++)
                if (strcasecmp(s, key_type_aliases[i].name) == 0)
                        return key_type_aliases[i].type;
        return _KEY_TYPE_INVALID;
}

const char *key_type_to_string(KeyType t) {
        if (t < 0 || t >= _KEY_TYPE_MAX)
                return NULL;
        return key_type_table[t];
}

static const char *const key_algorithm_table[_KEY_ALG_MAX] = {
        [KEY_ALG_RSA] = "rsa",
        [KEY_ALG_EC] = "ec",
        [KEY_ALG_ED25519] = "ed25519",
};

const char *key_algorithm_to_string(KeyAlgorithm a) {
        if (a < 0 || a >= _KEY_ALG_MAX)
                return NULL;
        return key_algorithm_table[a];
}

KeyAlgorithm key_algorithm_from_string(const char *s) {
        if (!s)
                return _KEY_ALG_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(key_algorithm_table); i++)
                if (strcasecmp(s, key_algorithm_table[i]) == 0)
                        return (KeyAlgorithm) i;
        return _KEY_ALG_INVALID;
}

int key_generate(KeyType type, EVP_PKEY **ret) {
        EVP_PKEY *key;

        if (!ret)
                return -EINVAL;

        switch (type) {
        case KEY_EC_P256:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                break;
        case KEY_EC_P384:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
                break;
        case KEY_EC_P521:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
                break;
        case KEY_RSA_2048:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
                break;
        case KEY_RSA_3072:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 3072);
                break;
        case KEY_RSA_4096:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 4096);
                break;
        case KEY_ED25519:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
                break;
        default:
                return -EINVAL;
        }
        if (!key)
                return -EIO;

        *ret = key;
        return 0;
}

/* OpenSSL reports NIST curves by their SN names; we only speak the three JOSE/ACME ones. */
static const struct {
        const char *openssl_name;
        const char *nist_name;
        int bits;
} ec_curves[] = {
        { "prime256v1", "P-256", 256 },
        { "secp384r1",  "P-384", 384 },
        { "secp521r1",  "P-521", 521 },
};

int key_describe(EVP_PKEY *key, KeyInfo *ret) {
        if (!key || !ret)
                return -EINVAL;

        /* EVP_PKEY_is_a("RSA") is false for RSA-PSS keys, which we don't handle on purpose. */
        if (EVP_PKEY_is_a(key, "RSA")) {
                int bits = EVP_PKEY_get_bits(key);
                if (bits <= 0)
                        return -EINVAL;
                *ret = (KeyInfo) { .algorithm = KEY_ALG_RSA, .bits = bits, .curve = NULL };
                return 0;
        }

        if (EVP_PKEY_is_a(key, "EC")) {
                char group[64];
                size_t len = 0;

                /* Keys with explicit curve parameters have no group name: not ours. */
                if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                                   group, sizeof group, &len) != 1)
                        return -EOPNOTSUPP;
                for (size_t i = 0; i < ELEMENTSOF(ec_curves); i++)
                        if (strcmp(group, ec_curves[i].openssl_name) == 0 ||
                            strcmp(group, ec_curves[i].nist_name) == 0) {
                                *ret = (KeyInfo) {
                                        .algorithm = KEY_ALG_EC,
                                        .bits = ec_curves[i].bits,
                                        .curve = ec_curves[i].nist_name,
                                };
                                return 0;
                        }
                return -EOPNOTSUPP;
        }

        if (EVP_PKEY_is_a(key, "ED25519")) {
                *ret = (KeyInfo) { .algorithm = KEY_ALG_ED25519, .bits = 255, .curve = NULL };
                return 0;
        }

        return -EOPNOTSUPP;
}

bool key_public_equal(EVP_PKEY *a, EVP_PKEY *b) {
        if (!a || !b)
                return false;
        /* EVP_PKEY_eq compares parameters and public components only, never private parts. */
        return EVP_PKEY_eq(a, b) == 1;
}

int key_from_public_params(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **ret) {
        _cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = NULL;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL, *check = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r = -CF_E_BAD_PUBLIC_KEY;

        params = OSSL_PARAM_BLD_to_param(bld);
        if (!params)
                return -ENOMEM;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
        if (!ctx) {
                r = -ENOMEM;
                goto fail;
        }
        /* fromdata already refuses coordinates ≥ p and points off the curve; the quick check adds
         * "not the point at infinity" and the RSA modulus sanity checks. The full check's n·Q = O
         * (an EC_POINT_mul, as costly as a signature verification) proves nothing more on the
         * prime-order curves we accept (P-256/384/521 have cofactor 1). */
        if (EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
                goto fail;
        check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
        if (!check) {
                r = -ENOMEM;
                goto fail;
        }
        if (EVP_PKEY_public_check_quick(check) != 1)
                goto fail;

        *ret = TAKE_PTR(key);
        return 0;

fail:
        ERR_clear_error();
        return r;
}

/* The named NIST curves: the point goes to fromdata as it is (compressed or not). Any other
 * parameters: -EOPNOTSUPP, so the caller takes the generic decoder. */
static int spki_to_ec(const ASN1_OBJECT *curve, const unsigned char *point, int point_size,
                      EVP_PKEY **ret) {
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = NULL;
        const char *group = NULL;
        int nid = OBJ_obj2nid(curve);

        for (size_t i = 0; i < ELEMENTSOF(ec_curves); i++)
                if (nid != NID_undef && strcmp(OBJ_nid2sn(nid), ec_curves[i].openssl_name) == 0)
                        group = ec_curves[i].openssl_name;
        if (!group)
                return -EOPNOTSUPP;

        bld = OSSL_PARAM_BLD_new();
        if (!bld ||
            OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                             (size_t) point_size) != 1)
                return -ENOMEM;
        return key_from_public_params("EC", bld, ret);
}

static int spki_decode_generic(const X509_PUBKEY *spki, EVP_PKEY **ret) {
        _cleanup_free_ unsigned char *der = NULL;
        const unsigned char *p;
        EVP_PKEY *key;
        int len;

        len = i2d_X509_PUBKEY(spki, &der);
        if (len <= 0) {
                ERR_clear_error();
                return -CF_E_BAD_PUBLIC_KEY;
        }
        p = der;
        key = d2i_PUBKEY(NULL, &p, len);
        if (!key || p != der + len) {
                EVP_PKEY_free(key);
                ERR_clear_error();
                return -CF_E_BAD_PUBLIC_KEY;
        }
        *ret = key;
        return 0;
}

int key_from_spki(const X509_PUBKEY *spki, EVP_PKEY **ret) {
        const ASN1_OBJECT *algorithm;
        const unsigned char *bits;
        const void *param;
        X509_ALGOR *alg;
        int bits_size, param_type, nid, r = -EOPNOTSUPP;

        if (!spki || !ret)
                return -EINVAL;
        if (X509_PUBKEY_get0_param(NULL, &bits, &bits_size, &alg, spki) != 1 || !alg)
                return -CF_E_BAD_PUBLIC_KEY;
        X509_ALGOR_get0(&algorithm, &param_type, &param, alg);
        nid = OBJ_obj2nid(algorithm);

        if (nid == NID_X9_62_id_ecPublicKey && param_type == V_ASN1_OBJECT)
                r = spki_to_ec(param, bits, bits_size, ret);
        else if (nid == NID_ED25519 && param_type == V_ASN1_UNDEF) {
                /* RFC 8410 §3: the parameters are absent. */
                *ret = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, bits, (size_t) bits_size);
                r = *ret ? 0 : -CF_E_BAD_PUBLIC_KEY;
                ERR_clear_error();
        }
        return r == -EOPNOTSUPP ? spki_decode_generic(spki, ret) : r;
}
