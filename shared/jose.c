/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "shared/base64.h"
#include "shared/errors.h"
#include "shared/jose.h"
#include "shared/json-util.h"
#include "shared/key.h"
#include "shared/macro.h"

/* RFC 7518 §3.3 sets the floor; the ceiling only bounds the cost of one verification an
 * unauthenticated client can make us do. */
#define JWK_RSA_BITS_MIN 2048
#define JWK_RSA_BITS_MAX 8192
/* Public exponents wider than 64 bits are refused by OpenSSL for large moduli anyway. */
#define JWK_RSA_E_BYTES_MAX 8
#define ED25519_KEY_SIZE 32
#define ED25519_SIG_SIZE 64
#define HS256_SIZE 32

static inline void openssl_freep(void *p) {
        OPENSSL_free(*(void **) p);
}

typedef struct JwsAlgInfo {
        const char *name;
        const char *digest;         /* NULL: EdDSA hashes internally */
        KeyAlgorithm key_algorithm; /* _KEY_ALG_INVALID for HMAC */
        const char *curve;          /* EC only, as key_describe() names it */
        size_t field_size;          /* EC only: bytes of one coordinate, of r and of s */
} JwsAlgInfo;

static const JwsAlgInfo jws_algs[_JWS_ALG_MAX] = {
        [JWS_ALG_ES256] = { "ES256", "SHA256", KEY_ALG_EC, "P-256", 32 },
        [JWS_ALG_ES384] = { "ES384", "SHA384", KEY_ALG_EC, "P-384", 48 },
        [JWS_ALG_ES512] = { "ES512", "SHA512", KEY_ALG_EC, "P-521", 66 },
        [JWS_ALG_RS256] = { "RS256", "SHA256", KEY_ALG_RSA, NULL, 0 },
        [JWS_ALG_EDDSA] = { "EdDSA", NULL, KEY_ALG_ED25519, NULL, 0 },
        [JWS_ALG_HS256] = { "HS256", "SHA256", _KEY_ALG_INVALID, NULL, 0 },
};

/* JWK "crv" names ↔ OpenSSL group names. */
static const struct {
        const char *crv;
        const char *group;
        size_t field_size;
} jwk_curves[] = {
        { "P-256", "prime256v1", 32 },
        { "P-384", "secp384r1",  48 },
        { "P-521", "secp521r1",  66 },
};

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static bool streq_ptr(const char *a, const char *b) {
        return a && b && streq(a, b);
}

/* A string member without embedded NUL ("\u0000" is valid JSON): C code would silently see a
 * shorter value than the one that was signed or hashed. Missing: -ENOENT, anything else wrong:
 * -EBADMSG. */
static int jose_get_string(json_object *obj, const char *key, const char **ret) {
        json_object *v;
        const char *s;

        if (!json_object_object_get_ex(obj, key, &v))
                return -ENOENT;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        s = json_object_get_string(v);
        if (strlen(s) != (size_t) json_object_get_string_len(v))
                return -EBADMSG;
        *ret = s;
        return 0;
}

const char *jws_alg_to_string(JwsAlg a) {
        if (a < 0 || a >= _JWS_ALG_MAX)
                return NULL;
        return jws_algs[a].name;
}

JwsAlg jws_alg_from_string(const char *s) {
        if (!s)
                return _JWS_ALG_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(jws_algs); i++)
                if (strcmp(s, jws_algs[i].name) == 0)
                        return (JwsAlg) i;
        return _JWS_ALG_INVALID;
}

int jws_alg_for_key(EVP_PKEY *key, JwsAlg *ret) {
        KeyInfo info;
        JwsAlg alg;

        if (!key || !ret)
                return -EINVAL;
        if (key_describe(key, &info) < 0)
                return -CF_E_BAD_PUBLIC_KEY;

        switch (info.algorithm) {
        case KEY_ALG_RSA:
                if (info.bits < JWK_RSA_BITS_MIN || info.bits > JWK_RSA_BITS_MAX)
                        return -CF_E_BAD_PUBLIC_KEY;
                alg = JWS_ALG_RS256;
                break;
        case KEY_ALG_EC:
                /* RFC 7518 §3.4 ties each curve to one alg: ES256 is never P-384. */
                alg = _JWS_ALG_INVALID;
                for (size_t i = 0; i < ELEMENTSOF(jws_algs); i++)
                        if (jws_algs[i].key_algorithm == KEY_ALG_EC &&
                            streq_ptr(info.curve, jws_algs[i].curve))
                                alg = (JwsAlg) i;
                if (alg < 0)
                        return -CF_E_BAD_PUBLIC_KEY;
                break;
        case KEY_ALG_ED25519:
                alg = JWS_ALG_EDDSA;
                break;
        default:
                return -CF_E_BAD_PUBLIC_KEY;
        }

        *ret = alg;
        return 0;
}

/* ---- JSON building: json-c returns NULL/-1 on allocation failure, which must not turn into a
 * silently missing member. */

static int json_add(json_object *obj, const char *key, json_object *value) {
        if (!value)
                return -ENOMEM;
        if (json_object_object_add(obj, key, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

static int json_add_string(json_object *obj, const char *key, const char *value) {
        return json_add(obj, key, json_object_new_string(value));
}

static int json_add_string_consume(json_object *obj, const char *key, char *value) {
        _cleanup_free_ char *v = value;

        if (!v)
                return -ENOMEM;
        return json_add_string(obj, key, v);
}

static char *b64url_or_null(const void *data, size_t size) {
        char *s = NULL;

        if (base64url_encode(data, size, &s) < 0)
                return NULL;
        return s;
}

/* ---- JWK ---- */

static int bn_to_b64url(const BIGNUM *bn, size_t pad, char **ret) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n = pad > 0 ? pad : (size_t) BN_num_bytes(bn);

        /* RFC 7518 §6.3.1: zero would be encoded as one zero octet, never as nothing. */
        if (n == 0)
                n = 1;
        buf = malloc(n);
        if (!buf)
                return -ENOMEM;
        if (BN_bn2binpad(bn, buf, (int) n) < 0)
                return -EINVAL;
        return base64url_encode(buf, n, ret);
}

static int jwk_from_ec(EVP_PKEY *key, const char *curve, json_object *jwk) {
        _cleanup_(BN_freep) BIGNUM *x = NULL, *y = NULL;
        _cleanup_free_ char *x64 = NULL, *y64 = NULL;
        size_t field_size = 0;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(jwk_curves); i++)
                if (streq(curve, jwk_curves[i].crv))
                        field_size = jwk_curves[i].field_size;
        if (field_size == 0)
                return -CF_E_BAD_PUBLIC_KEY;

        if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1) {
                ERR_clear_error();
                return -EINVAL;
        }
        /* RFC 7518 §6.2.1.2: coordinates are always the full field size, leading zeros kept. */
        r = bn_to_b64url(x, field_size, &x64);
        if (r < 0)
                return r;
        r = bn_to_b64url(y, field_size, &y64);
        if (r < 0)
                return r;

        /* Members in RFC 7638 order, so the serialized JWK is its own canonical form. */
        if ((r = json_add_string(jwk, "crv", curve)) < 0 ||
            (r = json_add_string(jwk, "kty", "EC")) < 0 ||
            (r = json_add_string(jwk, "x", x64)) < 0 ||
            (r = json_add_string(jwk, "y", y64)) < 0)
                return r;
        return 0;
}

static int jwk_from_rsa(EVP_PKEY *key, json_object *jwk) {
        _cleanup_(BN_freep) BIGNUM *n = NULL, *e = NULL;
        _cleanup_free_ char *n64 = NULL, *e64 = NULL;
        int r;

        if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
                ERR_clear_error();
                return -EINVAL;
        }
        /* RFC 7518 §6.3.1.1/§6.3.1.2: minimal big-endian, no leading zero octets. */
        r = bn_to_b64url(n, 0, &n64);
        if (r < 0)
                return r;
        r = bn_to_b64url(e, 0, &e64);
        if (r < 0)
                return r;

        if ((r = json_add_string(jwk, "e", e64)) < 0 ||
            (r = json_add_string(jwk, "kty", "RSA")) < 0 ||
            (r = json_add_string(jwk, "n", n64)) < 0)
                return r;
        return 0;
}

static int jwk_from_ed25519(EVP_PKEY *key, json_object *jwk) {
        uint8_t raw[ED25519_KEY_SIZE];
        size_t len = sizeof raw;
        _cleanup_free_ char *x64 = NULL;
        int r;

        if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof raw) {
                ERR_clear_error();
                return -EINVAL;
        }
        r = base64url_encode(raw, len, &x64);
        if (r < 0)
                return r;

        if ((r = json_add_string(jwk, "crv", "Ed25519")) < 0 ||
            (r = json_add_string(jwk, "kty", "OKP")) < 0 ||
            (r = json_add_string(jwk, "x", x64)) < 0)
                return r;
        return 0;
}

int jwk_from_key(EVP_PKEY *key, json_object **ret) {
        _cleanup_(json_object_putp) json_object *jwk = NULL;
        KeyInfo info;
        int r;

        if (!key || !ret)
                return -EINVAL;
        r = key_describe(key, &info);
        if (r < 0)
                return -CF_E_BAD_PUBLIC_KEY;

        jwk = json_object_new_object();
        if (!jwk)
                return -ENOMEM;

        switch (info.algorithm) {
        case KEY_ALG_EC:
                r = jwk_from_ec(key, info.curve, jwk);
                break;
        case KEY_ALG_RSA:
                r = jwk_from_rsa(key, jwk);
                break;
        case KEY_ALG_ED25519:
                r = jwk_from_ed25519(key, jwk);
                break;
        default:
                r = -CF_E_BAD_PUBLIC_KEY;
        }
        if (r < 0)
                return r;

        *ret = TAKE_PTR(jwk);
        return 0;
}

/* A required string member that must be base64url; missing, wrong type or bad encoding are all
 * malformed. */
static int jwk_get_b64url(json_object *jwk, const char *member, uint8_t **ret, size_t *ret_size) {
        const char *s;
        void *buf = NULL;
        size_t size = 0;

        if (jose_get_string(jwk, member, &s) < 0)
                return -EBADMSG;
        if (base64url_decode(s, strlen(s), &buf, &size) < 0)
                return -EBADMSG;
        *ret = buf;
        *ret_size = size;
        return 0;
}

static int jwk_to_ec(json_object *jwk, EVP_PKEY **ret) {
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = NULL;
        _cleanup_free_ uint8_t *x = NULL, *y = NULL, *point = NULL;
        size_t x_size, y_size, field_size = 0;
        const char *crv, *group = NULL;
        int r;

        if (jose_get_string(jwk, "crv", &crv) < 0)
                return -EBADMSG;
        for (size_t i = 0; i < ELEMENTSOF(jwk_curves); i++)
                if (streq(crv, jwk_curves[i].crv)) {
                        group = jwk_curves[i].group;
                        field_size = jwk_curves[i].field_size;
                }
        if (!group)
                return -CF_E_BAD_PUBLIC_KEY;

        r = jwk_get_b64url(jwk, "x", &x, &x_size);
        if (r < 0)
                return r;
        r = jwk_get_b64url(jwk, "y", &y, &y_size);
        if (r < 0)
                return r;
        /* RFC 7518 §6.2.1.2/3: exactly the field size, so one key has one JWK (and thumbprint). */
        if (x_size != field_size || y_size != field_size)
                return -CF_E_BAD_PUBLIC_KEY;

        point = malloc(1 + 2 * field_size);
        if (!point)
                return -ENOMEM;
        point[0] = POINT_CONVERSION_UNCOMPRESSED;
        memcpy(point + 1, x, field_size);
        memcpy(point + 1 + field_size, y, field_size);

        bld = OSSL_PARAM_BLD_new();
        if (!bld ||
            OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                             1 + 2 * field_size) != 1)
                return -ENOMEM;

        return key_from_public_params("EC", bld, ret);
}

static int jwk_to_rsa(json_object *jwk, EVP_PKEY **ret) {
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = NULL;
        _cleanup_(BN_freep) BIGNUM *n = NULL, *e = NULL;
        _cleanup_free_ uint8_t *n_raw = NULL, *e_raw = NULL;
        size_t n_size, e_size;
        int r;

        r = jwk_get_b64url(jwk, "n", &n_raw, &n_size);
        if (r < 0)
                return r;
        r = jwk_get_b64url(jwk, "e", &e_raw, &e_size);
        if (r < 0)
                return r;
        /* RFC 7518 §6.3.1: minimal encodings; a leading zero octet would give the same key a
         * second thumbprint. */
        if (n_size == 0 || n_raw[0] == 0 || e_size == 0 || e_raw[0] == 0)
                return -EBADMSG;
        if (e_size > JWK_RSA_E_BYTES_MAX)
                return -CF_E_BAD_PUBLIC_KEY;

        if (n_size > JWK_RSA_BITS_MAX / 8)
                return -CF_E_BAD_PUBLIC_KEY;

        n = BN_bin2bn(n_raw, (int) n_size, NULL);
        e = BN_bin2bn(e_raw, (int) e_size, NULL);
        if (!n || !e)
                return -ENOMEM;
        if (BN_num_bits(n) < JWK_RSA_BITS_MIN || BN_num_bits(n) > JWK_RSA_BITS_MAX)
                return -CF_E_BAD_PUBLIC_KEY;

        bld = OSSL_PARAM_BLD_new();
        if (!bld ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
                return -ENOMEM;

        return key_from_public_params("RSA", bld, ret);
}

static int jwk_to_okp(json_object *jwk, EVP_PKEY **ret) {
        _cleanup_free_ uint8_t *x = NULL;
        const char *crv;
        size_t x_size;
        EVP_PKEY *key;
        int r;

        if (jose_get_string(jwk, "crv", &crv) < 0)
                return -EBADMSG;
        /* RFC 8037 also defines Ed448, X25519 and X448; ACME accounts sign with Ed25519 only. */
        if (!streq(crv, "Ed25519"))
                return -CF_E_BAD_PUBLIC_KEY;
        r = jwk_get_b64url(jwk, "x", &x, &x_size);
        if (r < 0)
                return r;
        if (x_size != ED25519_KEY_SIZE)
                return -CF_E_BAD_PUBLIC_KEY;

        key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, x_size);
        if (!key) {
                ERR_clear_error();
                return -CF_E_BAD_PUBLIC_KEY;
        }
        *ret = key;
        return 0;
}

int jwk_to_key(json_object *jwk, EVP_PKEY **ret) {
        /* RFC 7517/7518 private members: a client that sends them has leaked its key. */
        static const char *const private_members[] = { "d", "p", "q", "dp", "dq", "qi", "oth", "k" };
        const char *kty;

        if (!ret)
                return -EINVAL;
        if (!jwk || !json_object_is_type(jwk, json_type_object))
                return -EBADMSG;
        if (jose_get_string(jwk, "kty", &kty) < 0)
                return -EBADMSG;
        for (size_t i = 0; i < ELEMENTSOF(private_members); i++)
                if (json_object_object_get_ex(jwk, private_members[i], NULL))
                        return -CF_E_BAD_PUBLIC_KEY;

        if (streq(kty, "EC"))
                return jwk_to_ec(jwk, ret);
        if (streq(kty, "RSA"))
                return jwk_to_rsa(jwk, ret);
        if (streq(kty, "OKP"))
                return jwk_to_okp(jwk, ret);
        return -CF_E_BAD_PUBLIC_KEY;
}

/* ---- RFC 7638 thumbprint ---- */

static bool is_b64url(const char *s) {
        if (!s || !*s)
                return false;
        return s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")] == 0;
}

/* RFC 7638 §3.2 requires exactly this byte sequence: the required members in lexicographic order
 * and no whitespace. Writing it by hand is the specification here; every value is checked to be
 * base64url (or one of our fixed names), so nothing needs escaping. */
static int jwk_canonical_json(json_object *jwk, char **ret) {
        const char *kty, *crv = NULL, *a = NULL, *b = NULL;
        char *s = NULL;
        int n;

        if (jose_get_string(jwk, "kty", &kty) < 0)
                return -EBADMSG;

        if (streq(kty, "EC")) {
                if (jose_get_string(jwk, "crv", &crv) < 0 ||
                    jose_get_string(jwk, "x", &a) < 0 ||
                    jose_get_string(jwk, "y", &b) < 0)
                        return -EBADMSG;
                if (!streq(crv, "P-256") && !streq(crv, "P-384") && !streq(crv, "P-521"))
                        return -CF_E_BAD_PUBLIC_KEY;
                if (!is_b64url(a) || !is_b64url(b))
                        return -EBADMSG;
                n = asprintf(&s, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", crv, a, b);
        } else if (streq(kty, "RSA")) {
                if (jose_get_string(jwk, "e", &a) < 0 ||
                    jose_get_string(jwk, "n", &b) < 0)
                        return -EBADMSG;
                if (!is_b64url(a) || !is_b64url(b))
                        return -EBADMSG;
                n = asprintf(&s, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a, b);
        } else if (streq(kty, "OKP")) {
                if (jose_get_string(jwk, "crv", &crv) < 0 ||
                    jose_get_string(jwk, "x", &a) < 0)
                        return -EBADMSG;
                if (!streq(crv, "Ed25519"))
                        return -CF_E_BAD_PUBLIC_KEY;
                if (!is_b64url(a))
                        return -EBADMSG;
                n = asprintf(&s, "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", a);
        } else
                return -CF_E_BAD_PUBLIC_KEY;

        if (n < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int thumbprint_of_canonical(json_object *jwk, char **ret) {
        _cleanup_free_ char *canonical = NULL;
        uint8_t md[EVP_MAX_MD_SIZE];
        size_t md_size = 0;
        int r;

        r = jwk_canonical_json(jwk, &canonical);
        if (r < 0)
                return r;
        if (EVP_Q_digest(NULL, "SHA256", NULL, canonical, strlen(canonical), md, &md_size) != 1) {
                ERR_clear_error();
                return -EIO;
        }
        return base64url_encode(md, md_size, ret);
}

int jwk_thumbprint(json_object *jwk, char **ret) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        /* Full validation first: it also guarantees the member values are in their one canonical
         * encoding (fixed-length coordinates, no leading zeros, canonical base64url), so the
         * thumbprint depends only on the key. */
        r = jwk_to_key(jwk, &key);
        if (r < 0)
                return r;
        return thumbprint_of_canonical(jwk, ret);
}

int jwk_thumbprint_from_key(EVP_PKEY *key, char **ret) {
        _cleanup_(json_object_putp) json_object *jwk = NULL;
        int r;

        if (!key || !ret)
                return -EINVAL;
        r = jwk_from_key(key, &jwk);
        if (r < 0)
                return r;
        return thumbprint_of_canonical(jwk, ret);
}

/* ---- raw signatures ---- */

static int ecdsa_der_to_raw(const uint8_t *der, size_t der_size, size_t field_size,
                            uint8_t **ret, size_t *ret_size) {
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = NULL;
        _cleanup_free_ uint8_t *raw = NULL;
        const unsigned char *p = der;
        const BIGNUM *r, *s;

        sig = d2i_ECDSA_SIG(NULL, &p, (long) der_size);
        if (!sig) {
                ERR_clear_error();
                return -EIO;
        }
        ECDSA_SIG_get0(sig, &r, &s);

        /* RFC 7518 §3.4: R and S each left-padded to the field size and concatenated. */
        raw = malloc(2 * field_size);
        if (!raw)
                return -ENOMEM;
        if (BN_bn2binpad(r, raw, (int) field_size) < 0 ||
            BN_bn2binpad(s, raw + field_size, (int) field_size) < 0)
                return -EIO;

        *ret = TAKE_PTR(raw);
        *ret_size = 2 * field_size;
        return 0;
}

static int ecdsa_raw_to_der(const uint8_t *raw, size_t field_size, uint8_t **ret, size_t *ret_size) {
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = NULL;
        _cleanup_(BN_freep) BIGNUM *r = NULL, *s = NULL;
        unsigned char *der = NULL;
        int len;

        r = BN_bin2bn(raw, (int) field_size, NULL);
        s = BN_bin2bn(raw + field_size, (int) field_size, NULL);
        sig = ECDSA_SIG_new();
        if (!r || !s || !sig)
                return -ENOMEM;
        if (ECDSA_SIG_set0(sig, r, s) != 1)
                return -ENOMEM;
        r = s = NULL; /* owned by sig now */

        len = i2d_ECDSA_SIG(sig, &der);
        if (len <= 0) {
                ERR_clear_error();
                return -ENOMEM;
        }
        *ret = der;
        *ret_size = (size_t) len;
        return 0;
}

static int hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t size,
                       uint8_t out[static HS256_SIZE]) {
        _cleanup_(EVP_MAC_freep) EVP_MAC *mac = NULL;
        _cleanup_(EVP_MAC_CTX_freep) EVP_MAC_CTX *ctx = NULL;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_end(),
        };
        size_t len = 0;

        if (!key || key_len == 0)
                return -EINVAL;
        mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (!mac)
                return -EOPNOTSUPP;
        ctx = EVP_MAC_CTX_new(mac);
        if (!ctx)
                return -ENOMEM;
        if (EVP_MAC_init(ctx, key, key_len, params) != 1 ||
            EVP_MAC_update(ctx, data, size) != 1 ||
            EVP_MAC_final(ctx, out, &len, HS256_SIZE) != 1 ||
            len != HS256_SIZE) {
                ERR_clear_error();
                return -EIO;
        }
        return 0;
}

static int digest_ctx_init(EVP_MD_CTX *ctx, bool sign, EVP_PKEY *key, JwsAlg alg) {
        EVP_PKEY_CTX *pctx = NULL;
        int k;

        if (sign)
                k = EVP_DigestSignInit_ex(ctx, &pctx, jws_algs[alg].digest, NULL, NULL, key, NULL);
        else
                k = EVP_DigestVerifyInit_ex(ctx, &pctx, jws_algs[alg].digest, NULL, NULL, key, NULL);
        if (k != 1)
                return -EIO;
        /* RS256 is RSASSA-PKCS1-v1_5 (RFC 7518 §3.3); never let a default pick PSS. */
        if (alg == JWS_ALG_RS256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
                return -EIO;
        return 0;
}

static int jws_sign_raw(EVP_PKEY *key, JwsAlg alg, const char *input, size_t input_size,
                        uint8_t **ret, size_t *ret_size) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        size_t sig_size = 0;
        int r;

        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        r = digest_ctx_init(ctx, true, key, alg);
        if (r < 0)
                goto fail;
        /* One-shot: Ed25519 cannot be fed incrementally. */
        if (EVP_DigestSign(ctx, NULL, &sig_size, (const unsigned char *) input, input_size) != 1) {
                r = -EIO;
                goto fail;
        }
        sig = malloc(sig_size);
        if (!sig)
                return -ENOMEM;
        if (EVP_DigestSign(ctx, sig, &sig_size, (const unsigned char *) input, input_size) != 1) {
                r = -EIO;
                goto fail;
        }

        if (jws_algs[alg].key_algorithm == KEY_ALG_EC)
                return ecdsa_der_to_raw(sig, sig_size, jws_algs[alg].field_size, ret, ret_size);

        *ret = TAKE_PTR(sig);
        *ret_size = sig_size;
        return 0;

fail:
        ERR_clear_error();
        return r;
}

static int jws_verify_raw(EVP_PKEY *key, JwsAlg alg, const char *input, size_t input_size,
                          const uint8_t *sig, size_t sig_size) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_(openssl_freep) uint8_t *der = NULL;   /* from i2d_ECDSA_SIG() */
        size_t der_size;
        int r, k;

        switch (jws_algs[alg].key_algorithm) {
        case KEY_ALG_EC:
                /* Only raw r||s (RFC 7518 §3.4). A DER signature has a different length. */
                if (sig_size != 2 * jws_algs[alg].field_size)
                        return -CF_E_BAD_SIGNATURE;
                r = ecdsa_raw_to_der(sig, jws_algs[alg].field_size, &der, &der_size);
                if (r < 0)
                        return r;
                sig = der;
                sig_size = der_size;
                break;
        case KEY_ALG_RSA:
                /* RFC 8017 §8.2.2 step 1: exactly k octets. OpenSSL 3.0 checks this as well;
                 * being explicit keeps it true whatever provider does the math. */
                if (EVP_PKEY_get_size(key) <= 0 || sig_size != (size_t) EVP_PKEY_get_size(key))
                        return -CF_E_BAD_SIGNATURE;
                break;
        case KEY_ALG_ED25519:
                if (sig_size != ED25519_SIG_SIZE)
                        return -CF_E_BAD_SIGNATURE;
                break;
        default:
                return -CF_E_BAD_SIGNATURE_ALGORITHM;
        }

        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        r = digest_ctx_init(ctx, false, key, alg);
        if (r < 0) {
                ERR_clear_error();
                return r;
        }
        k = EVP_DigestVerify(ctx, sig, sig_size, (const unsigned char *) input, input_size);
        if (k != 1) {
                ERR_clear_error();
                return -CF_E_BAD_SIGNATURE;
        }
        return 0;
}

/* ---- JWS assembly (client side) ---- */

/* Signs "<b64 header>.<b64 payload>" with key, or with the HMAC key if key is NULL, and returns
 * the flattened serialization as an object. payload NULL means the empty payload. */
static int jws_build(EVP_PKEY *key, const uint8_t *hmac_key, size_t hmac_key_len, JwsAlg alg,
                     json_object *header, const char *payload, json_object **ret) {
        _cleanup_(json_object_putp) json_object *jws = NULL;
        _cleanup_free_ char *protected64 = NULL, *payload64 = NULL, *input = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        const char *header_str;
        size_t sig_size = 0;
        int r;

        header_str = json_to_string_compact(header);
        if (!header_str)
                return -ENOMEM;
        r = base64url_encode(header_str, strlen(header_str), &protected64);
        if (r < 0)
                return r;
        if (payload) {
                r = base64url_encode(payload, strlen(payload), &payload64);
                if (r < 0)
                        return r;
        }
        if (asprintf(&input, "%s.%s", protected64, payload64 ?: "") < 0)
                return -ENOMEM;

        if (key)
                r = jws_sign_raw(key, alg, input, strlen(input), &sig, &sig_size);
        else {
                sig = malloc(HS256_SIZE);
                if (!sig)
                        return -ENOMEM;
                sig_size = HS256_SIZE;
                r = hmac_sha256(hmac_key, hmac_key_len, input, strlen(input), sig);
        }
        if (r < 0)
                return r;

        jws = json_object_new_object();
        if (!jws)
                return -ENOMEM;
        if ((r = json_add_string(jws, "protected", protected64)) < 0 ||
            (r = json_add_string(jws, "payload", payload64 ?: "")) < 0 ||
            (r = json_add_string_consume(jws, "signature", b64url_or_null(sig, sig_size))) < 0)
                return r;

        *ret = TAKE_PTR(jws);
        return 0;
}

static int jws_sign_object(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
                           json_object *payload, json_object **ret) {
        _cleanup_(json_object_putp) json_object *header = NULL;
        const char *payload_str = NULL;
        JwsAlg alg;
        int r;

        if (!key || !url || !ret)
                return -EINVAL;
        r = jws_alg_for_key(key, &alg);
        if (r < 0)
                return r;

        header = json_object_new_object();
        if (!header)
                return -ENOMEM;
        r = json_add_string(header, "alg", jws_alg_to_string(alg));
        if (r >= 0 && nonce)
                r = json_add_string(header, "nonce", nonce);
        if (r >= 0)
                r = json_add_string(header, "url", url);
        if (r < 0)
                return r;
        if (kid)
                r = json_add_string(header, "kid", kid);
        else {
                json_object *jwk = NULL;

                r = jwk_from_key(key, &jwk);
                if (r < 0)
                        return r;
                r = json_add(header, "jwk", jwk);
        }
        if (r < 0)
                return r;

        if (payload) {
                payload_str = json_to_string_compact(payload);
                if (!payload_str)
                        return -ENOMEM;
        }
        return jws_build(key, NULL, 0, alg, header, payload_str, ret);
}

int jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
             json_object *payload, char **ret) {
        _cleanup_(json_object_putp) json_object *jws = NULL;
        const char *s;
        char *copy;
        int r;

        if (!ret)
                return -EINVAL;
        r = jws_sign_object(key, kid, nonce, url, payload, &jws);
        if (r < 0)
                return r;
        s = json_to_string_compact(jws);
        if (!s)
                return -ENOMEM;
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

int jws_sign_eab(const uint8_t *hmac_key, size_t hmac_key_len, const char *eab_kid,
                 const char *url, EVP_PKEY *account_key, json_object **ret) {
        _cleanup_(json_object_putp) json_object *header = NULL, *jwk = NULL;
        const char *payload;
        int r;

        if (!hmac_key || hmac_key_len == 0 || !eab_kid || !url || !account_key || !ret)
                return -EINVAL;

        r = jwk_from_key(account_key, &jwk);
        if (r < 0)
                return r;
        payload = json_to_string_compact(jwk);
        if (!payload)
                return -ENOMEM;

        header = json_object_new_object();
        if (!header)
                return -ENOMEM;
        if ((r = json_add_string(header, "alg", "HS256")) < 0 ||
            (r = json_add_string(header, "kid", eab_kid)) < 0 ||
            (r = json_add_string(header, "url", url)) < 0)
                return r;

        return jws_build(NULL, hmac_key, hmac_key_len, JWS_ALG_HS256, header, payload, ret);
}

int jws_sign_key_change(EVP_PKEY *new_key, EVP_PKEY *old_key, const char *account_url,
                        const char *url, json_object **ret) {
        _cleanup_(json_object_putp) json_object *payload = NULL;
        json_object *old_jwk = NULL;
        int r;

        if (!new_key || !old_key || !account_url || !url || !ret)
                return -EINVAL;

        r = jwk_from_key(old_key, &old_jwk);
        if (r < 0)
                return r;
        payload = json_object_new_object();
        if (!payload) {
                json_object_put(old_jwk);
                return -ENOMEM;
        }
        if ((r = json_add_string(payload, "account", account_url)) < 0) {
                json_object_put(old_jwk);
                return r;
        }
        r = json_add(payload, "oldKey", old_jwk);
        if (r < 0)
                return r;

        /* §7.3.5: the inner JWS carries the new key as "jwk" and has no nonce. */
        return jws_sign_object(new_key, NULL, NULL, url, payload, ret);
}

/* ---- parsing (server side) ---- */

Jws *jws_free(Jws *jws) {
        if (!jws)
                return NULL;
        free(jws->alg_name);
        free(jws->nonce);
        free(jws->url);
        free(jws->kid);
        json_object_put(jws->jwk);
        json_object_put(jws->protected_header);
        free(jws->payload);
        free(jws->signing_input);
        free(jws->signature);
        free(jws);
        return NULL;
}

/* An optional string header member: absent is fine, any other type is malformed. */
static int header_get_optional_string(json_object *header, const char *key, char **ret) {
        const char *v;
        char *s;
        int r;

        r = jose_get_string(header, key, &v);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return -CF_E_MALFORMED;
        s = strdup(v);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int parse_protected_header(Jws *jws, const char *protected64) {
        _cleanup_(json_object_putp) json_object *header = NULL;
        _cleanup_free_ void *raw = NULL;
        json_object *v;
        const char *alg;
        size_t raw_size = 0;
        int r;

        if (base64url_decode(protected64, strlen(protected64), &raw, &raw_size) < 0 || raw_size == 0)
                return -CF_E_MALFORMED;
        if (json_parse_strict(raw, raw_size, JWS_BODY_MAX, &header) < 0 ||
            !json_object_is_type(header, json_type_object))
                return -CF_E_MALFORMED;

        /* We implement no extensions (RFC 7515 §4.1.11), and "b64": false would require one. */
        if (json_object_object_get_ex(header, "crit", NULL))
                return -CF_E_MALFORMED;

        if (jose_get_string(header, "alg", &alg) < 0)
                return -CF_E_MALFORMED;
        jws->alg_name = strdup(alg);
        if (!jws->alg_name)
                return -ENOMEM;
        jws->alg = jws_alg_from_string(jws->alg_name);
        if (jws->alg < 0)
                return -CF_E_BAD_SIGNATURE_ALGORITHM;

        if ((r = header_get_optional_string(header, "nonce", &jws->nonce)) < 0 ||
            (r = header_get_optional_string(header, "url", &jws->url)) < 0 ||
            (r = header_get_optional_string(header, "kid", &jws->kid)) < 0)
                return r;

        if (json_object_object_get_ex(header, "jwk", &v)) {
                if (!json_object_is_type(v, json_type_object))
                        return -CF_E_MALFORMED;
                jws->jwk = json_object_get(v);
        }
        /* RFC 8555 §6.2: exactly one of them identifies the key. */
        if (!!jws->jwk == !!jws->kid)
                return -CF_E_MALFORMED;

        jws->protected_header = TAKE_PTR(header);
        return 0;
}

static int get_member_string(json_object *obj, const char *key, const char **ret) {
        return jose_get_string(obj, key, ret) < 0 ? -CF_E_MALFORMED : 0;
}

int jws_parse(const char *body, size_t len, Jws **ret) {
        _cleanup_(json_object_putp) json_object *top = NULL;
        _cleanup_(jws_freep) Jws *jws = NULL;
        const char *protected64, *payload64, *signature64;
        void *buf = NULL;
        size_t size = 0;
        int r;

        if (!body || !ret)
                return -EINVAL;
        if (len > JWS_BODY_MAX)
                return -E2BIG;

        r = json_parse_strict(body, len, JWS_BODY_MAX, &top);
        if (r == -E2BIG)
                return r;
        if (r < 0 || !json_object_is_type(top, json_type_object))
                return -CF_E_MALFORMED;

        /* Flattened only (RFC 7515 §7.2.2). The general form has "signatures"; an unprotected
         * "header" would carry values the signature does not cover. Other members are ignored
         * as §7.2.1 requires. */
        if (json_object_object_get_ex(top, "signatures", NULL) ||
            json_object_object_get_ex(top, "header", NULL))
                return -CF_E_MALFORMED;

        if (get_member_string(top, "protected", &protected64) < 0 ||
            get_member_string(top, "payload", &payload64) < 0 ||
            get_member_string(top, "signature", &signature64) < 0)
                return -CF_E_MALFORMED;
        if (!*protected64 || !*signature64)
                return -CF_E_MALFORMED;

        jws = calloc(1, sizeof *jws);
        if (!jws)
                return -ENOMEM;
        jws->alg = _JWS_ALG_INVALID;

        r = parse_protected_header(jws, protected64);
        if (r < 0)
                return r;

        if (*payload64) {
                if (base64url_decode(payload64, strlen(payload64), &buf, &size) < 0)
                        return -CF_E_MALFORMED;
                jws->payload = buf;
                jws->payload_size = size;
        } else {
                /* RFC 8555 §6.3 POST-as-GET: distinct from "e30" ({}), so keep a flag. */
                jws->payload = calloc(1, 1);
                if (!jws->payload)
                        return -ENOMEM;
                jws->payload_empty = true;
        }

        if (base64url_decode(signature64, strlen(signature64), &buf, &size) < 0)
                return -CF_E_MALFORMED;
        jws->signature = buf;
        jws->signature_size = size;
        if (size == 0)
                return -CF_E_MALFORMED;

        if (asprintf(&jws->signing_input, "%s.%s", protected64, payload64) < 0) {
                jws->signing_input = NULL;
                return -ENOMEM;
        }

        *ret = TAKE_PTR(jws);
        return 0;
}

int jws_verify(const Jws *jws, EVP_PKEY *key) {
        JwsAlg key_alg;
        int r;

        if (!jws || !key || !jws->signing_input)
                return -EINVAL;

        r = jws_alg_for_key(key, &key_alg);
        if (r < 0)
                return r;
        /* The header's alg must be the one this key signs with (RFC 8555 §6.2), never chosen
         * by the attacker: ES256 with a P-384 key, RS256 with an EC key, HS256 … all refused. */
        if (jws->alg != key_alg)
                return -CF_E_BAD_SIGNATURE_ALGORITHM;

        return jws_verify_raw(key, key_alg, jws->signing_input, strlen(jws->signing_input),
                              jws->signature, jws->signature_size);
}

int jws_verify_hmac(const Jws *jws, const uint8_t *key, size_t key_len) {
        uint8_t mac[HS256_SIZE];
        int r;

        if (!jws || !key || key_len == 0 || !jws->signing_input)
                return -EINVAL;
        if (jws->alg != JWS_ALG_HS256)
                return -CF_E_BAD_SIGNATURE_ALGORITHM;
        if (jws->signature_size != HS256_SIZE)
                return -CF_E_BAD_SIGNATURE;

        r = hmac_sha256(key, key_len, jws->signing_input, strlen(jws->signing_input), mac);
        if (r < 0)
                return r;
        r = CRYPTO_memcmp(mac, jws->signature, HS256_SIZE) == 0 ? 0 : -CF_E_BAD_SIGNATURE;
        OPENSSL_cleanse(mac, sizeof mac);
        return r;
}

int jws_sign_input(EVP_PKEY *key, const char *signing_input, size_t size,
                   uint8_t **ret, size_t *ret_size) {
        JwsAlg alg;
        int r;

        if (!key || !signing_input || !ret || !ret_size)
                return -EINVAL;
        r = jws_alg_for_key(key, &alg);
        if (r < 0)
                return r;
        return jws_sign_raw(key, alg, signing_input, size, ret, ret_size);
}
