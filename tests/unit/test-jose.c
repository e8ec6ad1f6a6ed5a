/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "shared/base64.h"
#include "shared/errors.h"
#include "shared/jose.h"
#include "shared/key.h"
#include "shared/macro.h"
#include "tests/unit/test-util.h"

/* ---- RFC test vectors (copied character by character, cross-checked against several
 * independent implementations' test suites) ---- */

/* RFC 7638 §3.1 */
#define RFC7638_N                                                                              \
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_" \
        "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_" \
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4" \
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
#define RFC7638_THUMBPRINT "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

/* RFC 7515 Appendix A.3 (ES256) */
#define RFC7515_A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define RFC7515_A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define RFC7515_A3_D "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
#define RFC7515_A3_COMPACT                                                                     \
        "eyJhbGciOiJFUzI1NiJ9"                                                                 \
        ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" \
        ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
#define RFC7515_PAYLOAD_TEXT \
        "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"

/* RFC 7515 Appendix A.1 (HS256) */
#define RFC7515_A1_K \
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
#define RFC7515_A1_COMPACT                                                                     \
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"                                             \
        ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" \
        ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

/* RFC 8037 Appendix A */
#define RFC8037_D "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
#define RFC8037_X "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
#define RFC8037_THUMBPRINT "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
#define RFC8037_SIGNING_INPUT "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
#define RFC8037_SIGNATURE \
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"

#define TEST_URL "https://ca.example/acme/new-order"
#define TEST_NONCE "oFvnlFP1wIhRlYS2jTaXbA"

/* Keys are generated once: RSA 4096 generation is slow. */
static EVP_PKEY *keys[_KEY_TYPE_MAX];

static int setup(void **state) {
        if (test_tmpdir_setup(state) < 0)
                return -1;
        for (KeyType t = 0; t < _KEY_TYPE_MAX; t++)
                if (key_generate(t, &keys[t]) < 0)
                        return -1;
        return 0;
}

static int teardown(void **state) {
        for (KeyType t = 0; t < _KEY_TYPE_MAX; t++)
                EVP_PKEY_free(keys[t]);
        return test_tmpdir_teardown(state);
}

/* ---- helpers ---- */

static char *b64u(const void *data, size_t size) {
        char *s = NULL;
        assert_int_equal(base64url_encode(data, size, &s), 0);
        return s;
}

static uint8_t *unb64u(const char *s, size_t *ret_size) {
        void *buf = NULL;
        size_t size = 0;
        assert_int_equal(base64url_decode(s, strlen(s), &buf, &size), 0);
        *ret_size = size;
        return buf;
}

static json_object *json(const char *s) {
        json_object *o = json_tokener_parse(s);
        assert_non_null(o);
        return o;
}

static char *xstrdup(const char *s) {
        char *c = strdup(s);
        assert_non_null(c);
        return c;
}

static const char *jstr(json_object *obj, const char *key) {
        json_object *v;
        assert_true(json_object_object_get_ex(obj, key, &v));
        assert_true(json_object_is_type(v, json_type_string));
        return json_object_get_string(v);
}

static char *body_from_members(const char *protected64, const char *payload64, const char *sig64) {
        char *s = NULL;
        assert_true(asprintf(&s, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}",
                             protected64, payload64, sig64) > 0);
        return s;
}

/* A flattened JWS with any protected header text and payload text (NULL: POST-as-GET), signed
 * by key with jws_sign_input() — lets tests put into the header what jws_sign() never would. */
static char *make_body(EVP_PKEY *key, const char *header, const char *payload) {
        _cleanup_free_ char *h64 = b64u(header, strlen(header));
        _cleanup_free_ char *p64 = payload ? b64u(payload, strlen(payload)) : xstrdup("");
        _cleanup_free_ char *input = NULL, *s64 = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        size_t sig_size;

        assert_true(asprintf(&input, "%s.%s", h64, p64) > 0);
        assert_int_equal(jws_sign_input(key, input, strlen(input), &sig, &sig_size), 0);
        s64 = b64u(sig, sig_size);
        return body_from_members(h64, p64, s64);
}

/* The protected header jws_sign() would write, as text, with alg overridable. */
static char *header_with_jwk(const char *alg, EVP_PKEY *jwk_key) {
        _cleanup_(json_object_putp) json_object *h = json_object_new_object();
        json_object *jwk = NULL;

        assert_int_equal(jwk_from_key(jwk_key, &jwk), 0);
        json_object_object_add(h, "alg", json_object_new_string(alg));
        json_object_object_add(h, "nonce", json_object_new_string(TEST_NONCE));
        json_object_object_add(h, "url", json_object_new_string(TEST_URL));
        json_object_object_add(h, "jwk", jwk);
        return xstrdup(json_object_to_json_string_ext(h, JSON_C_TO_STRING_PLAIN));
}

static int parse_and_verify(const char *body, EVP_PKEY *key) {
        _cleanup_(jws_freep) Jws *jws = NULL;
        int r;

        r = jws_parse(body, strlen(body), &jws);
        if (r < 0)
                return r;
        return jws_verify(jws, key);
}

static int parse_only(const char *body) {
        _cleanup_(jws_freep) Jws *jws = NULL;
        return jws_parse(body, strlen(body), &jws);
}

/* A Jws as jws_parse() would fill it, for RFC examples whose headers carry neither jwk nor kid
 * (which jws_parse() rightly refuses for ACME). */
static Jws *jws_manual(const char *compact) {
        Jws *jws = calloc(1, sizeof *jws);
        const char *dot1 = strchr(compact, '.'), *dot2;
        _cleanup_free_ char *h64 = NULL;
        _cleanup_free_ void *header = NULL;
        _cleanup_(json_object_putp) json_object *h = NULL;
        size_t size;

        assert_non_null(jws);
        assert_non_null(dot1);
        dot2 = strchr(dot1 + 1, '.');
        assert_non_null(dot2);

        h64 = strndup(compact, dot1 - compact);
        header = unb64u(h64, &size);
        h = json(header);
        jws->alg = jws_alg_from_string(jstr(h, "alg"));
        jws->signing_input = strndup(compact, dot2 - compact);
        jws->signature = unb64u(dot2 + 1, &jws->signature_size);
        return jws;
}

static char *flattened_from_compact(const char *compact) {
        _cleanup_free_ char *c = xstrdup(compact);
        char *dot1 = strchr(c, '.'), *dot2;

        assert_non_null(dot1);
        *dot1 = 0;
        dot2 = strchr(dot1 + 1, '.');
        assert_non_null(dot2);
        *dot2 = 0;
        return body_from_members(c, dot1 + 1, dot2 + 1);
}

static EVP_PKEY *rsa_1024(void) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
        assert_non_null(k);
        return k;
}

static EVP_PKEY *ed25519_from_rfc8037_private(void) {
        _cleanup_free_ uint8_t *d = NULL;
        size_t size;
        EVP_PKEY *k;

        d = unb64u(RFC8037_D, &size);
        assert_int_equal(size, 32);
        k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, size);
        assert_non_null(k);
        return k;
}

static size_t ec_field_size(JwsAlg alg) {
        return alg == JWS_ALG_ES256 ? 32 : alg == JWS_ALG_ES384 ? 48 : 66;
}

static uint8_t *raw_to_der(const uint8_t *raw, size_t field, size_t *ret_size) {
        ECDSA_SIG *sig = ECDSA_SIG_new();
        unsigned char *der = NULL;
        int len;

        assert_non_null(sig);
        assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn(raw, (int) field, NULL),
                                        BN_bin2bn(raw + field, (int) field, NULL)), 1);
        len = i2d_ECDSA_SIG(sig, &der);
        ECDSA_SIG_free(sig);
        assert_true(len > 0);
        *ret_size = (size_t) len;
        return der;
}

static uint8_t *der_to_raw(const uint8_t *der, size_t size, size_t field) {
        const unsigned char *p = der;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long) size);
        uint8_t *raw = malloc(2 * field);
        const BIGNUM *r, *s;

        assert_non_null(sig);
        assert_non_null(raw);
        ECDSA_SIG_get0(sig, &r, &s);
        assert_true(BN_bn2binpad(r, raw, (int) field) > 0);
        assert_true(BN_bn2binpad(s, raw + field, (int) field) > 0);
        ECDSA_SIG_free(sig);
        return raw;
}

static char *run(const char *cmd) {
        FILE *f = popen(cmd, "r");
        char *buf = calloc(1, 65536);
        size_t n;
        int status;

        assert_non_null(f);
        assert_non_null(buf);
        n = fread(buf, 1, 65535, f);
        buf[n] = 0;
        status = pclose(f);
        if (status != 0)
                fail_msg("'%s' failed (%d): %s", cmd, status, buf);
        return buf;
}

static void write_file(const char *path, const void *data, size_t size) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, size, f), size);
        assert_int_equal(fclose(f), 0);
}

static uint8_t *read_file(const char *path, size_t *ret_size) {
        FILE *f = fopen(path, "r");
        uint8_t *buf = malloc(65536);
        size_t n;

        assert_non_null(f);
        assert_non_null(buf);
        n = fread(buf, 1, 65536, f);
        fclose(f);
        *ret_size = n;
        return buf;
}

static void write_pem(EVP_PKEY *key, const char *path, bool private) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        if (private)
                assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
        else
                assert_int_equal(PEM_write_PUBKEY(f, key), 1);
        assert_int_equal(fclose(f), 0);
}

/* Replaces one member of a flattened JWS body. */
static char *body_replace(const char *body, const char *member, const char *value) {
        _cleanup_(json_object_putp) json_object *o = json(body);
        json_object_object_add(o, member, json_object_new_string(value));
        return xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
}

static char *body_with_signature(const char *body, const uint8_t *sig, size_t size) {
        _cleanup_free_ char *s64 = b64u(sig, size);
        return body_replace(body, "signature", s64);
}

static uint8_t *body_signature(const char *body, size_t *ret_size) {
        _cleanup_(json_object_putp) json_object *o = json(body);
        return unb64u(jstr(o, "signature"), ret_size);
}

/* ---- algorithm names ---- */

static void test_jws_alg_names_round_trip(void **state) {
        static const char *const names[_JWS_ALG_MAX] = {
                [JWS_ALG_ES256] = "ES256", [JWS_ALG_ES384] = "ES384", [JWS_ALG_ES512] = "ES512",
                [JWS_ALG_RS256] = "RS256", [JWS_ALG_EDDSA] = "EdDSA", [JWS_ALG_HS256] = "HS256",
        };

        for (JwsAlg a = 0; a < _JWS_ALG_MAX; a++) {
                assert_string_equal(jws_alg_to_string(a), names[a]);
                assert_int_equal(jws_alg_from_string(names[a]), a);
        }
        assert_int_equal(jws_alg_from_string("none"), _JWS_ALG_INVALID);
        assert_int_equal(jws_alg_from_string("es256"), _JWS_ALG_INVALID);
        assert_int_equal(jws_alg_from_string("EDDSA"), _JWS_ALG_INVALID);
        assert_int_equal(jws_alg_from_string("PS256"), _JWS_ALG_INVALID);
        assert_int_equal(jws_alg_from_string(""), _JWS_ALG_INVALID);
        assert_int_equal(jws_alg_from_string(NULL), _JWS_ALG_INVALID);
        assert_null(jws_alg_to_string(_JWS_ALG_MAX));
}

static void test_jws_alg_for_key_follows_key_type_and_size(void **state) {
        static const JwsAlg expected[_KEY_TYPE_MAX] = {
                [KEY_EC_P256] = JWS_ALG_ES256, [KEY_EC_P384] = JWS_ALG_ES384,
                [KEY_EC_P521] = JWS_ALG_ES512, [KEY_RSA_2048] = JWS_ALG_RS256,
                [KEY_RSA_3072] = JWS_ALG_RS256, [KEY_RSA_4096] = JWS_ALG_RS256,
                [KEY_ED25519] = JWS_ALG_EDDSA,
        };
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *small = rsa_1024();
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
        JwsAlg alg;

        for (KeyType t = 0; t < _KEY_TYPE_MAX; t++) {
                assert_int_equal(jws_alg_for_key(keys[t], &alg), 0);
                assert_int_equal(alg, expected[t]);
        }
        assert_int_equal(jws_alg_for_key(small, &alg), -CF_E_BAD_PUBLIC_KEY);
        assert_non_null(k1);
        assert_int_equal(jws_alg_for_key(k1, &alg), -CF_E_BAD_PUBLIC_KEY);
}

/* ---- RFC vectors ---- */

static void test_jwk_thumbprint_matches_rfc7638_rsa_example(void **state) {
        _cleanup_(json_object_putp) json_object *jwk = json(
                "{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}");
        _cleanup_(json_object_putp) json_object *back = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *t1 = NULL, *t2 = NULL, *t3 = NULL;

        assert_int_equal(jwk_thumbprint(jwk, &t1), 0);
        assert_string_equal(t1, RFC7638_THUMBPRINT);

        /* The same key through OpenSSL and back gives the same members and thumbprint. */
        assert_int_equal(jwk_to_key(jwk, &key), 0);
        assert_int_equal(EVP_PKEY_get_bits(key), 2048);
        assert_int_equal(jwk_thumbprint_from_key(key, &t2), 0);
        assert_string_equal(t2, RFC7638_THUMBPRINT);
        assert_int_equal(jwk_from_key(key, &back), 0);
        assert_string_equal(json_object_to_json_string_ext(back, JSON_C_TO_STRING_PLAIN),
                            "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\"}");
        assert_int_equal(jwk_thumbprint(back, &t3), 0);
        assert_string_equal(t3, RFC7638_THUMBPRINT);
}

static void test_jws_verifies_rfc7515_a3_es256_example(void **state) {
        _cleanup_(json_object_putp) json_object *jwk = json(
                "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" RFC7515_A3_X "\",\"y\":\"" RFC7515_A3_Y "\"}");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(jws_freep) Jws *jws = jws_manual(RFC7515_A3_COMPACT);
        _cleanup_free_ char *body = flattened_from_compact(RFC7515_A3_COMPACT);
        _cleanup_free_ uint8_t *payload = NULL, *der = NULL;
        _cleanup_free_ char *payload64 = NULL, *saved_input = NULL;
        _cleanup_free_ uint8_t *saved_sig = NULL;
        size_t payload_size, der_size, saved_size;
        char *dot;

        assert_int_equal(jwk_to_key(jwk, &key), 0);
        assert_int_equal(jws->alg, JWS_ALG_ES256);
        assert_int_equal(jws->signature_size, 64);
        assert_int_equal(jws_verify(jws, key), 0);

        /* Its payload is the RFC's (checks our reading of the vector, CRLFs included). */
        dot = strchr(jws->signing_input, '.');
        payload = unb64u(dot + 1, &payload_size);
        assert_int_equal(payload_size, strlen(RFC7515_PAYLOAD_TEXT));
        assert_memory_equal(payload, RFC7515_PAYLOAD_TEXT, payload_size);

        /* One byte of the payload changed. */
        saved_input = xstrdup(jws->signing_input);
        payload[10] ^= 0x01;
        payload64 = b64u(payload, payload_size);
        free(jws->signing_input);
        assert_true(asprintf(&jws->signing_input, "eyJhbGciOiJFUzI1NiJ9.%s", payload64) > 0);
        assert_int_equal(jws_verify(jws, key), -CF_E_BAD_SIGNATURE);
        free(jws->signing_input);
        jws->signing_input = TAKE_PTR(saved_input);
        assert_int_equal(jws_verify(jws, key), 0);

        /* One byte of the signature changed, in r and in s. */
        jws->signature[5] ^= 0x80;
        assert_int_equal(jws_verify(jws, key), -CF_E_BAD_SIGNATURE);
        jws->signature[5] ^= 0x80;
        jws->signature[63] ^= 0x01;
        assert_int_equal(jws_verify(jws, key), -CF_E_BAD_SIGNATURE);
        jws->signature[63] ^= 0x01;
        assert_int_equal(jws_verify(jws, key), 0);

        /* The same signature DER-encoded, as OpenSSL would produce it: refused. */
        der = raw_to_der(jws->signature, 32, &der_size);
        saved_sig = TAKE_PTR(jws->signature);
        saved_size = jws->signature_size;
        jws->signature = TAKE_PTR(der);
        jws->signature_size = der_size;
        assert_int_equal(jws_verify(jws, key), -CF_E_BAD_SIGNATURE);
        free(jws->signature);
        jws->signature = TAKE_PTR(saved_sig);
        jws->signature_size = saved_size;

        /* The example names its key by neither jwk nor kid, which ACME requires. */
        assert_int_equal(parse_only(body), -CF_E_MALFORMED);
}

static void test_jws_verifies_rfc7515_a1_hs256_example(void **state) {
        _cleanup_(jws_freep) Jws *jws = jws_manual(RFC7515_A1_COMPACT);
        _cleanup_free_ uint8_t *k = NULL;
        size_t k_size;

        k = unb64u(RFC7515_A1_K, &k_size);
        assert_int_equal(k_size, 64);
        assert_int_equal(jws->alg, JWS_ALG_HS256);
        assert_int_equal(jws_verify_hmac(jws, k, k_size), 0);

        k[0] ^= 0x01;
        assert_int_equal(jws_verify_hmac(jws, k, k_size), -CF_E_BAD_SIGNATURE);
        k[0] ^= 0x01;
        assert_int_equal(jws_verify_hmac(jws, k, k_size - 1), -CF_E_BAD_SIGNATURE);
        jws->signature[31] ^= 0x01;
        assert_int_equal(jws_verify_hmac(jws, k, k_size), -CF_E_BAD_SIGNATURE);
        jws->signature[31] ^= 0x01;
        jws->signature_size--;
        assert_int_equal(jws_verify_hmac(jws, k, k_size), -CF_E_BAD_SIGNATURE);
        jws->signature_size++;
        assert_int_equal(jws_verify_hmac(jws, k, k_size), 0);

        /* An HS256 JWS never verifies with a public key. */
        assert_int_equal(jws_verify(jws, keys[KEY_EC_P256]), -CF_E_BAD_SIGNATURE_ALGORITHM);
}

static void test_jwk_ed25519_matches_rfc8037_key_and_thumbprint(void **state) {
        _cleanup_(json_object_putp) json_object *jwk = json(
                "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC8037_X "\"}");
        _cleanup_(json_object_putp) json_object *from_private = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL, *priv = ed25519_from_rfc8037_private();
        _cleanup_free_ char *t1 = NULL, *t2 = NULL;
        KeyInfo info;

        /* A.1's private key yields A.2's public key. */
        assert_int_equal(jwk_from_key(priv, &from_private), 0);
        assert_string_equal(json_object_to_json_string_ext(from_private, JSON_C_TO_STRING_PLAIN),
                            "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"" RFC8037_X "\"}");

        assert_int_equal(jwk_to_key(jwk, &pub), 0);
        assert_int_equal(key_describe(pub, &info), 0);
        assert_int_equal(info.algorithm, KEY_ALG_ED25519);
        assert_true(key_public_equal(pub, priv));

        /* A.3 */
        assert_int_equal(jwk_thumbprint(jwk, &t1), 0);
        assert_string_equal(t1, RFC8037_THUMBPRINT);
        assert_int_equal(jwk_thumbprint_from_key(priv, &t2), 0);
        assert_string_equal(t2, RFC8037_THUMBPRINT);
}

static void test_jws_verifies_rfc8037_a4_ed25519_example(void **state) {
        _cleanup_(json_object_putp) json_object *jwk = json(
                "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC8037_X "\"}");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(jws_freep) Jws *jws = jws_manual(RFC8037_SIGNING_INPUT "." RFC8037_SIGNATURE);
        _cleanup_free_ uint8_t *payload = NULL;
        size_t size;

        payload = unb64u(strchr(RFC8037_SIGNING_INPUT, '.') + 1, &size);
        assert_int_equal(size, strlen("Example of Ed25519 signing"));
        assert_memory_equal(payload, "Example of Ed25519 signing", size);

        assert_int_equal(jwk_to_key(jwk, &key), 0);
        assert_int_equal(jws->alg, JWS_ALG_EDDSA);
        assert_int_equal(jws_verify(jws, key), 0);

        jws->signing_input[strlen(jws->signing_input) - 1] ^= 0x01;
        assert_int_equal(jws_verify(jws, key), -CF_E_BAD_SIGNATURE);
        jws->signing_input[strlen(jws->signing_input) - 1] ^= 0x01;
        jws->signature[0] ^= 0x01;
        assert_int_equal(jws_verify(jws, key), -CF_E_BAD_SIGNATURE);
        jws->signature[0] ^= 0x01;
        assert_int_equal(jws_verify(jws, key), 0);
}

static void test_jws_ed25519_signature_equals_rfc8037_a4_byte_for_byte(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *priv = ed25519_from_rfc8037_private();
        _cleanup_free_ uint8_t *sig = NULL;
        _cleanup_free_ char *sig64 = NULL;
        size_t size;

        assert_int_equal(jws_sign_input(priv, RFC8037_SIGNING_INPUT, strlen(RFC8037_SIGNING_INPUT),
                                        &sig, &size), 0);
        assert_int_equal(size, 64);
        sig64 = b64u(sig, size);
        assert_string_equal(sig64, RFC8037_SIGNATURE);
}

/* ---- round trips ---- */

static void check_round_trip(EVP_PKEY *key, JwsAlg alg, size_t sig_size) {
        _cleanup_(json_object_putp) json_object *payload = json("{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.example\"}]}");
        _cleanup_(jws_freep) Jws *jws = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *from_jwk = NULL;
        _cleanup_free_ char *body = NULL, *t1 = NULL, *t2 = NULL;
        const char *payload_str = json_object_to_json_string_ext(payload, JSON_C_TO_STRING_PLAIN);

        assert_int_equal(jws_sign(key, NULL, TEST_NONCE, TEST_URL, payload, &body), 0);
        assert_int_equal(jws_parse(body, strlen(body), &jws), 0);

        assert_int_equal(jws->alg, alg);
        assert_string_equal(jws->alg_name, jws_alg_to_string(alg));
        assert_string_equal(jws->nonce, TEST_NONCE);
        assert_string_equal(jws->url, TEST_URL);
        assert_null(jws->kid);
        assert_non_null(jws->jwk);
        assert_false(jws->payload_empty);
        assert_int_equal(jws->payload_size, strlen(payload_str));
        assert_memory_equal(jws->payload, payload_str, jws->payload_size);
        assert_int_equal(jws->payload[jws->payload_size], 0);
        assert_int_equal(jws->signature_size, sig_size);

        assert_int_equal(jwk_to_key(jws->jwk, &from_jwk), 0);
        assert_true(key_public_equal(from_jwk, key));
        assert_int_equal(jwk_thumbprint(jws->jwk, &t1), 0);
        assert_int_equal(jwk_thumbprint_from_key(key, &t2), 0);
        assert_string_equal(t1, t2);

        assert_int_equal(jws_verify(jws, key), 0);
        assert_int_equal(jws_verify(jws, from_jwk), 0);
}

static void test_jws_sign_parse_verify_round_trip_every_alg_and_size(void **state) {
        check_round_trip(keys[KEY_EC_P256], JWS_ALG_ES256, 64);
        check_round_trip(keys[KEY_EC_P384], JWS_ALG_ES384, 96);
        check_round_trip(keys[KEY_EC_P521], JWS_ALG_ES512, 132);
        check_round_trip(keys[KEY_RSA_2048], JWS_ALG_RS256, 256);
        check_round_trip(keys[KEY_RSA_3072], JWS_ALG_RS256, 384);
        check_round_trip(keys[KEY_RSA_4096], JWS_ALG_RS256, 512);
        check_round_trip(keys[KEY_ED25519], JWS_ALG_EDDSA, 64);
}

static void test_jws_sign_protected_header_has_exactly_acme_fields(void **state) {
        _cleanup_(json_object_putp) json_object *payload = json("{}");
        _cleanup_free_ char *with_jwk = NULL, *with_kid = NULL;
        _cleanup_(jws_freep) Jws *a = NULL, *b = NULL;

        assert_int_equal(jws_sign(keys[KEY_EC_P256], NULL, TEST_NONCE, TEST_URL, payload, &with_jwk), 0);
        assert_int_equal(jws_parse(with_jwk, strlen(with_jwk), &a), 0);
        assert_int_equal(json_object_object_length(a->protected_header), 4);
        assert_int_equal(json_object_object_length(a->jwk), 4); /* crv kty x y, nothing more */

        assert_int_equal(jws_sign(keys[KEY_EC_P256], "https://ca.example/acme/acct/7", NULL, TEST_URL,
                                  payload, &with_kid), 0);
        assert_int_equal(jws_parse(with_kid, strlen(with_kid), &b), 0);
        assert_int_equal(json_object_object_length(b->protected_header), 3); /* no nonce */
        assert_string_equal(b->kid, "https://ca.example/acme/acct/7");
        assert_null(b->jwk);
        assert_null(b->nonce);
        assert_int_equal(b->payload_size, 2);
        assert_memory_equal(b->payload, "{}", 2);
        assert_int_equal(jws_verify(b, keys[KEY_EC_P256]), 0);
}

static void test_jws_post_as_get_has_empty_payload(void **state) {
        _cleanup_free_ char *body = NULL;
        _cleanup_(jws_freep) Jws *jws = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;

        assert_int_equal(jws_sign(keys[KEY_ED25519], "https://ca.example/acme/acct/1", TEST_NONCE,
                                  TEST_URL, NULL, &body), 0);
        o = json(body);
        assert_string_equal(jstr(o, "payload"), "");
        assert_int_equal(jws_parse(body, strlen(body), &jws), 0);
        assert_true(jws->payload_empty);
        assert_int_equal(jws->payload_size, 0);
        assert_non_null(jws->payload);
        assert_int_equal(jws->payload[0], 0);
        assert_int_equal(jws_verify(jws, keys[KEY_ED25519]), 0);
}

static void test_jws_sign_refuses_missing_url_and_small_rsa(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *small = rsa_1024();
        char *body = NULL;

        assert_int_equal(jws_sign(keys[KEY_EC_P256], NULL, TEST_NONCE, NULL, NULL, &body), -EINVAL);
        assert_int_equal(jws_sign(small, NULL, TEST_NONCE, TEST_URL, NULL, &body), -CF_E_BAD_PUBLIC_KEY);
        assert_null(body);
}

static void test_jwk_ec_coordinates_are_left_padded(void **state) {
        bool found = false;

        /* About one P-256 key in 128 has a coordinate with a leading zero octet. */
        for (int i = 0; i < 20000 && !found; i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *back = NULL;
                _cleanup_(BN_freep) BIGNUM *x = NULL, *y = NULL;
                _cleanup_(json_object_putp) json_object *jwk = NULL;
                _cleanup_free_ uint8_t *xr = NULL, *yr = NULL;
                size_t xs, ys;

                assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
                assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
                assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
                if (BN_num_bytes(x) == 32 && BN_num_bytes(y) == 32)
                        continue;
                found = true;

                assert_int_equal(jwk_from_key(key, &jwk), 0);
                xr = unb64u(jstr(jwk, "x"), &xs);
                yr = unb64u(jstr(jwk, "y"), &ys);
                assert_int_equal(xs, 32);
                assert_int_equal(ys, 32);
                assert_true(xr[0] == 0 || yr[0] == 0);
                assert_int_equal(strlen(jstr(jwk, "x")), 43);
                assert_int_equal(strlen(jstr(jwk, "y")), 43);
                assert_int_equal(jwk_to_key(jwk, &back), 0);
                assert_true(key_public_equal(back, key));

                /* Without the leading zero it is the same number, but not the JWK encoding:
                 * accepting it would give one key two thumbprints. */
                {
                        _cleanup_(json_object_putp) json_object *stripped = json_object_get(jwk);
                        _cleanup_(EVP_PKEY_freep) EVP_PKEY *none = NULL;
                        _cleanup_free_ char *s64 = NULL, *t = NULL;
                        bool in_x = xr[0] == 0;

                        s64 = b64u(in_x ? xr + 1 : yr + 1, 31);
                        json_object_object_add(stripped, in_x ? "x" : "y", json_object_new_string(s64));
                        assert_int_equal(jwk_to_key(stripped, &none), -CF_E_BAD_PUBLIC_KEY);
                        assert_int_equal(jwk_thumbprint(stripped, &t), -CF_E_BAD_PUBLIC_KEY);
                }
        }
        assert_true(found);

        /* P-521 coordinates are 521 bits: always 66 octets, the first one 0 or 1. */
        for (int i = 0; i < 8; i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
                _cleanup_(json_object_putp) json_object *jwk = NULL;
                _cleanup_free_ uint8_t *xr = NULL;
                size_t xs;

                assert_int_equal(key_generate(KEY_EC_P521, &key), 0);
                assert_int_equal(jwk_from_key(key, &jwk), 0);
                assert_string_equal(jstr(jwk, "crv"), "P-521");
                assert_int_equal(strlen(jstr(jwk, "x")), 88);
                assert_int_equal(strlen(jstr(jwk, "y")), 88);
                xr = unb64u(jstr(jwk, "x"), &xs);
                assert_int_equal(xs, 66);
                assert_true(xr[0] <= 1);
        }
}

static void test_jws_sign_key_change_builds_rfc8555_inner_jws(void **state) {
        _cleanup_(json_object_putp) json_object *outer_payload = NULL, *inner_payload = NULL;
        _cleanup_(jws_freep) Jws *jws = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *old_back = NULL, *new_back = NULL;
        json_object *old_jwk;
        const char *inner;

        assert_int_equal(jws_sign_key_change(keys[KEY_EC_P384], keys[KEY_RSA_2048],
                                             "https://ca.example/acme/acct/42",
                                             "https://ca.example/acme/key-change", &outer_payload), 0);
        inner = json_object_to_json_string_ext(outer_payload, JSON_C_TO_STRING_PLAIN);
        assert_int_equal(jws_parse(inner, strlen(inner), &jws), 0);

        assert_int_equal(jws->alg, JWS_ALG_ES384);
        assert_null(jws->nonce);
        assert_null(jws->kid);
        assert_string_equal(jws->url, "https://ca.example/acme/key-change");
        assert_int_equal(jwk_to_key(jws->jwk, &new_back), 0);
        assert_true(key_public_equal(new_back, keys[KEY_EC_P384]));

        inner_payload = json((const char *) jws->payload);
        assert_int_equal(json_object_object_length(inner_payload), 2);
        assert_string_equal(jstr(inner_payload, "account"), "https://ca.example/acme/acct/42");
        assert_true(json_object_object_get_ex(inner_payload, "oldKey", &old_jwk));
        assert_int_equal(jwk_to_key(old_jwk, &old_back), 0);
        assert_true(key_public_equal(old_back, keys[KEY_RSA_2048]));

        assert_int_equal(jws_verify(jws, keys[KEY_EC_P384]), 0);
        assert_int_equal(jws_verify(jws, keys[KEY_RSA_2048]), -CF_E_BAD_SIGNATURE_ALGORITHM);
}

static void test_jws_sign_eab_verifies_with_right_key_only(void **state) {
        static const uint8_t hmac_key[] = "a 32-byte MAC key for EAB tests!";
        _cleanup_(json_object_putp) json_object *eab = NULL, *payload = NULL, *account_jwk = NULL;
        _cleanup_(jws_freep) Jws *jws = NULL;
        _cleanup_free_ char *t1 = NULL, *t2 = NULL;
        uint8_t wrong[sizeof hmac_key - 1];
        const char *s;

        assert_int_equal(jws_sign_eab(hmac_key, sizeof hmac_key - 1, "kid-1",
                                      "https://ca.example/acme/new-account", keys[KEY_EC_P256], &eab), 0);
        s = json_object_to_json_string_ext(eab, JSON_C_TO_STRING_PLAIN);
        assert_int_equal(jws_parse(s, strlen(s), &jws), 0);

        assert_int_equal(jws->alg, JWS_ALG_HS256);
        assert_string_equal(jws->kid, "kid-1");
        assert_string_equal(jws->url, "https://ca.example/acme/new-account");
        assert_null(jws->nonce);
        assert_null(jws->jwk);
        assert_int_equal(json_object_object_length(jws->protected_header), 3);

        /* §7.3.4: the payload is the account key's JWK. */
        payload = json((const char *) jws->payload);
        assert_int_equal(jwk_thumbprint(payload, &t1), 0);
        assert_int_equal(jwk_thumbprint_from_key(keys[KEY_EC_P256], &t2), 0);
        assert_string_equal(t1, t2);

        assert_int_equal(jws_verify_hmac(jws, hmac_key, sizeof hmac_key - 1), 0);
        memcpy(wrong, hmac_key, sizeof wrong);
        wrong[31] ^= 0x01;
        assert_int_equal(jws_verify_hmac(jws, wrong, sizeof wrong), -CF_E_BAD_SIGNATURE);
        assert_int_equal(jws_verify(jws, keys[KEY_EC_P256]), -CF_E_BAD_SIGNATURE_ALGORITHM);

        assert_int_equal(jws_sign_eab(hmac_key, 0, "kid-1", TEST_URL, keys[KEY_EC_P256], &account_jwk), -EINVAL);
}

static void test_jws_hmac_matches_openssl_cli(void **state) {
        static const uint8_t hmac_key[] = { 0x00, 0x01, 0xfe, 0xff, 0x10, 0x20, 0x30, 0x40, 0x7f };
        _cleanup_(json_object_putp) json_object *eab = NULL;
        _cleanup_(jws_freep) Jws *jws = NULL;
        _cleanup_free_ char *out = NULL, *hex = NULL;
        char path[256], cmd[512];
        const char *s;

        assert_int_equal(jws_sign_eab(hmac_key, sizeof hmac_key, "kid-2", TEST_URL, keys[KEY_ED25519], &eab), 0);
        s = json_object_to_json_string_ext(eab, JSON_C_TO_STRING_PLAIN);
        assert_int_equal(jws_parse(s, strlen(s), &jws), 0);

        snprintf(path, sizeof path, "%s/hmac-input", test_tmpdir);
        write_file(path, jws->signing_input, strlen(jws->signing_input));
        snprintf(cmd, sizeof cmd,
                 "openssl dgst -sha256 -mac HMAC -macopt hexkey:0001feff102030407f -r '%s'", path);
        out = run(cmd);

        hex = calloc(1, 2 * jws->signature_size + 1);
        assert_non_null(hex);
        for (size_t i = 0; i < jws->signature_size; i++)
                sprintf(hex + 2 * i, "%02x", jws->signature[i]);
        assert_int_equal(strncmp(out, hex, 64), 0);
}

/* ---- parse rejections ---- */

static void test_jws_parse_rejects_alg_none(void **state) {
        _cleanup_free_ char *h = header_with_jwk("none", keys[KEY_EC_P256]);
        _cleanup_free_ char *h64 = b64u(h, strlen(h));
        _cleanup_free_ char *body = body_from_members(h64, "e30", "");
        _cleanup_free_ char *body2 = body_from_members(h64, "e30", "AAAA");

        assert_int_equal(parse_only(body), -CF_E_MALFORMED);   /* empty signature */
        assert_int_equal(parse_only(body2), -CF_E_BAD_SIGNATURE_ALGORITHM);
}

static void test_jws_parse_rejects_unknown_or_miscased_alg(void **state) {
        static const char *const algs[] = { "es256", "HS512", "PS256", "ES256K", "Ed25519", "RS1", "" };

        for (size_t i = 0; i < ELEMENTSOF(algs); i++) {
                _cleanup_free_ char *h = header_with_jwk(algs[i], keys[KEY_EC_P256]);
                _cleanup_free_ char *h64 = b64u(h, strlen(h));
                _cleanup_free_ char *body = body_from_members(h64, "e30", "AAAA");
                _cleanup_(jws_freep) Jws *jws = NULL;

                assert_int_equal(jws_parse(body, strlen(body), &jws), -CF_E_BAD_SIGNATURE_ALGORITHM);
                assert_null(jws);
        }
}

static void test_jws_parse_rejects_both_jwk_and_kid(void **state) {
        _cleanup_(json_object_putp) json_object *h = NULL;
        json_object *jwk = NULL;
        _cleanup_free_ char *body = NULL;

        assert_int_equal(jwk_from_key(keys[KEY_EC_P256], &jwk), 0);
        h = json("{\"alg\":\"ES256\",\"nonce\":\"" TEST_NONCE "\",\"url\":\"" TEST_URL "\","
                 "\"kid\":\"https://ca.example/acme/acct/1\"}");
        json_object_object_add(h, "jwk", jwk);
        body = make_body(keys[KEY_EC_P256], json_object_to_json_string_ext(h, JSON_C_TO_STRING_PLAIN), "{}");
        assert_int_equal(parse_only(body), -CF_E_MALFORMED);
}

static void test_jws_parse_rejects_neither_jwk_nor_kid(void **state) {
        _cleanup_free_ char *body = make_body(keys[KEY_EC_P256],
                "{\"alg\":\"ES256\",\"nonce\":\"" TEST_NONCE "\",\"url\":\"" TEST_URL "\"}", "{}");
        assert_int_equal(parse_only(body), -CF_E_MALFORMED);
}

static void test_jws_parse_rejects_compact_serialization(void **state) {
        _cleanup_free_ char *body = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *compact = NULL;

        assert_int_equal(jws_sign(keys[KEY_EC_P256], NULL, TEST_NONCE, TEST_URL, NULL, &body), 0);
        o = json(body);
        assert_true(asprintf(&compact, "%s.%s.%s", jstr(o, "protected"), jstr(o, "payload"),
                             jstr(o, "signature")) > 0);
        assert_int_equal(parse_only(compact), -CF_E_MALFORMED);
        assert_int_equal(parse_only(RFC7515_A3_COMPACT), -CF_E_MALFORMED);
}

static void test_jws_parse_rejects_general_serialization(void **state) {
        _cleanup_free_ char *body = NULL, *general = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;

        assert_int_equal(jws_sign(keys[KEY_EC_P256], NULL, TEST_NONCE, TEST_URL, NULL, &body), 0);
        o = json(body);
        assert_true(asprintf(&general, "{\"payload\":\"\",\"signatures\":[{\"protected\":\"%s\",\"signature\":\"%s\"}]}",
                             jstr(o, "protected"), jstr(o, "signature")) > 0);
        assert_int_equal(parse_only(general), -CF_E_MALFORMED);
        /* Even with the flattened members present as well. */
        json_object_object_add(o, "signatures", json_object_new_array());
        assert_int_equal(parse_only(json_object_to_json_string(o)), -CF_E_MALFORMED);
}

static void test_jws_parse_rejects_unprotected_header(void **state) {
        _cleanup_free_ char *body = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;

        assert_int_equal(jws_sign(keys[KEY_EC_P256], NULL, TEST_NONCE, TEST_URL, NULL, &body), 0);
        assert_int_equal(parse_and_verify(body, keys[KEY_EC_P256]), 0);
        o = json(body);
        json_object_object_add(o, "header", json("{\"kid\":\"https://ca.example/acme/acct/9\"}"));
        assert_int_equal(parse_only(json_object_to_json_string(o)), -CF_E_MALFORMED);
        json_object_object_add(o, "header", json("{}"));
        assert_int_equal(parse_only(json_object_to_json_string(o)), -CF_E_MALFORMED);
}

static void test_jws_parse_rejects_trailing_garbage(void **state) {
        _cleanup_free_ char *body = NULL, *garbage = NULL, *two = NULL, *spaces = NULL;

        assert_int_equal(jws_sign(keys[KEY_EC_P256], NULL, TEST_NONCE, TEST_URL, NULL, &body), 0);
        assert_true(asprintf(&garbage, "%sx", body) > 0);
        assert_true(asprintf(&two, "%s%s", body, body) > 0);
        assert_true(asprintf(&spaces, "%s \r\n", body) > 0);
        assert_int_equal(parse_only(garbage), -CF_E_MALFORMED);
        assert_int_equal(parse_only(two), -CF_E_MALFORMED);
        /* The body length is the caller's: an embedded NUL is not an end. */
        {
                size_t len = strlen(body);
                _cleanup_free_ char *nul = malloc(len + 3);
                Jws *jws = NULL;

                assert_non_null(nul);
                memcpy(nul, body, len);
                memcpy(nul + len, "\0x", 3);
                assert_int_equal(jws_parse(nul, len + 2, &jws), -CF_E_MALFORMED);
                assert_int_equal(jws_parse(nul, len, &jws), 0);
                jws_free(jws);
        }
        assert_int_equal(parse_and_verify(spaces, keys[KEY_EC_P256]), 0);
}

static void test_jws_parse_rejects_oversized_body(void **state) {
        _cleanup_free_ char *big_payload = NULL, *body = NULL, *huge = NULL;
        _cleanup_(json_object_putp) json_object *payload = NULL;
        size_t n = 150 * 1024;
        Jws *jws = NULL;

        /* A large payload under the limit is fine … */
        big_payload = malloc(n + 16);
        assert_non_null(big_payload);
        strcpy(big_payload, "{\"csr\":\"");
        memset(big_payload + 8, 'A', n);
        strcpy(big_payload + 8 + n, "\"}");
        payload = json(big_payload);
        assert_int_equal(jws_sign(keys[KEY_EC_P256], NULL, TEST_NONCE, TEST_URL, payload, &body), 0);
        assert_true(strlen(body) < JWS_BODY_MAX);
        assert_int_equal(parse_and_verify(body, keys[KEY_EC_P256]), 0);

        /* … one byte over the limit is refused before parsing. */
        huge = malloc(JWS_BODY_MAX + 2);
        assert_non_null(huge);
        memset(huge, ' ', JWS_BODY_MAX + 1);
        memcpy(huge, body, strlen(body));
        huge[JWS_BODY_MAX + 1] = 0;
        assert_int_equal(jws_parse(huge, JWS_BODY_MAX + 1, &jws), -E2BIG);
        assert_null(jws);
        /* At exactly the limit, trailing whitespace is allowed. */
        assert_int_equal(jws_parse(huge, JWS_BODY_MAX, &jws), 0);
        jws_free(jws);
}

static void test_jws_parse_rejects_bad_base64url(void **state) {
        _cleanup_free_ char *body = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *p_plus = NULL, *p_pad = NULL, *s_pad = NULL, *s_bad = NULL, *h_bad = NULL,
                            *p_space = NULL, *p_nonzero_bits = NULL, *h_std = NULL;
        char *s, *std;

        _cleanup_(json_object_putp) json_object *payload = json("{\"a\":\"b\"}");

        assert_int_equal(jws_sign(keys[KEY_EC_P256], NULL, TEST_NONCE, TEST_URL, payload, &body), 0);
        o = json(body);

        assert_true(asprintf(&s, "%s=", jstr(o, "payload")) > 0);
        p_pad = body_replace(body, "payload", s);
        free(s);
        assert_true(asprintf(&s, "%s==", jstr(o, "signature")) > 0);
        s_pad = body_replace(body, "signature", s);
        free(s);
        s_bad = body_replace(body, "signature", "AAAA*AAA");
        p_plus = body_replace(body, "payload", "eyJ+IjoiYiJ9");
        p_space = body_replace(body, "payload", "eyJh IjoiYiJ9");
        /* "e30" is {} (2 octets, 18 bits); "e31" decodes to the same octets with a non-zero
         * trailing bit: a second spelling of one payload. */
        p_nonzero_bits = body_replace(body, "payload", "e31");
        h_bad = body_replace(body, "protected", "!!!!");
        /* The protected header in standard base64 ('+' '/' and padding) instead of base64url. */
        std = xstrdup(jstr(o, "protected"));
        for (char *c = std; *c; c++)
                *c = *c == '-' ? '+' : *c == '_' ? '/' : *c;
        h_std = body_replace(body, "protected", std);
        free(std);

        assert_int_equal(parse_and_verify(body, keys[KEY_EC_P256]), 0);
        assert_int_equal(parse_only(p_pad), -CF_E_MALFORMED);
        assert_int_equal(parse_only(s_pad), -CF_E_MALFORMED);
        assert_int_equal(parse_only(s_bad), -CF_E_MALFORMED);
        assert_int_equal(parse_only(p_plus), -CF_E_MALFORMED);
        assert_int_equal(parse_only(p_space), -CF_E_MALFORMED);
        assert_int_equal(parse_only(p_nonzero_bits), -CF_E_MALFORMED);
        assert_int_equal(parse_only(h_bad), -CF_E_MALFORMED);
        if (strpbrk(jstr(o, "protected"), "-_"))
                assert_int_equal(parse_only(h_std), -CF_E_MALFORMED);
}

static void test_jws_parse_rejects_crit(void **state) {
        _cleanup_free_ char *body = make_body(keys[KEY_EC_P256],
                "{\"alg\":\"ES256\",\"kid\":\"https://ca.example/acme/acct/1\",\"nonce\":\"" TEST_NONCE
                "\",\"url\":\"" TEST_URL "\",\"crit\":[\"b64\"],\"b64\":false}", "{}");
        _cleanup_free_ char *empty_crit = make_body(keys[KEY_EC_P256],
                "{\"alg\":\"ES256\",\"kid\":\"https://ca.example/acme/acct/1\",\"nonce\":\"" TEST_NONCE
                "\",\"url\":\"" TEST_URL "\",\"crit\":[]}", "{}");
        _cleanup_free_ char *fine = make_body(keys[KEY_EC_P256],
                "{\"alg\":\"ES256\",\"kid\":\"https://ca.example/acme/acct/1\",\"nonce\":\"" TEST_NONCE
                "\",\"url\":\"" TEST_URL "\"}", "{}");

        assert_int_equal(parse_and_verify(fine, keys[KEY_EC_P256]), 0);
        assert_int_equal(parse_only(body), -CF_E_MALFORMED);
        assert_int_equal(parse_only(empty_crit), -CF_E_MALFORMED);
}

static void test_jws_parse_rejects_wrongly_typed_members(void **state) {
        static const char *const headers[] = {
                "{\"alg\":\"ES256\",\"kid\":\"k\",\"nonce\":1,\"url\":\"" TEST_URL "\"}",
                "{\"alg\":\"ES256\",\"kid\":\"k\",\"nonce\":\"n\",\"url\":{}}",
                "{\"alg\":\"ES256\",\"kid\":7,\"nonce\":\"n\",\"url\":\"" TEST_URL "\"}",
                "{\"alg\":\"ES256\",\"jwk\":\"not an object\",\"url\":\"" TEST_URL "\"}",
                "{\"alg\":\"ES256\",\"kid\":null,\"url\":\"" TEST_URL "\"}",
                "{\"alg\":256,\"kid\":\"k\",\"url\":\"" TEST_URL "\"}",
                "{\"kid\":\"k\",\"url\":\"" TEST_URL "\"}",
                /* embedded NUL: C would see a different URL from the one signed */
                "{\"alg\":\"ES256\",\"kid\":\"k\",\"url\":\"https://ca.example/\\u0000evil\"}",
                "[\"alg\",\"ES256\"]",
                "\"ES256\"",
                "{\"alg\":\"ES256\",\"kid\":\"k\",\"url\":\"x\"",
                "{\"alg\":\"ES256\",\"kid\":\"k\",\"url\":\"x\"}{}",
                "",
        };

        for (size_t i = 0; i < ELEMENTSOF(headers); i++) {
                _cleanup_free_ char *h64 = b64u(headers[i], strlen(headers[i]));
                _cleanup_free_ char *body = body_from_members(h64, "e30", "AAAA");
                int r = parse_only(body);
                if (r != -CF_E_MALFORMED)
                        fail_msg("header %s: got %d", headers[i], r);
        }

        /* Top-level members missing, of the wrong type, or with NUL. */
        assert_int_equal(parse_only("{\"protected\":\"e30\",\"signature\":\"AAAA\"}"), -CF_E_MALFORMED);
        assert_int_equal(parse_only("{\"protected\":\"e30\",\"payload\":\"\"}"), -CF_E_MALFORMED);
        assert_int_equal(parse_only("{\"payload\":\"\",\"signature\":\"AAAA\"}"), -CF_E_MALFORMED);
        assert_int_equal(parse_only("{\"protected\":1,\"payload\":\"\",\"signature\":\"AAAA\"}"), -CF_E_MALFORMED);
        assert_int_equal(parse_only("{\"protected\":\"e30\",\"payload\":null,\"signature\":\"AAAA\"}"), -CF_E_MALFORMED);
        assert_int_equal(parse_only("[]"), -CF_E_MALFORMED);
        assert_int_equal(parse_only("\"x\""), -CF_E_MALFORMED);
        assert_int_equal(parse_only(""), -CF_E_MALFORMED);
        assert_int_equal(parse_only("{\"protected\":\"\",\"payload\":\"\",\"signature\":\"AAAA\"}"), -CF_E_MALFORMED);
}

static void test_jws_parse_rejects_empty_or_nul_signature(void **state) {
        _cleanup_free_ char *body = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *empty = NULL, *nul = NULL;
        const char *sig;

        assert_int_equal(jws_sign(keys[KEY_EC_P256], NULL, TEST_NONCE, TEST_URL, NULL, &body), 0);
        o = json(body);
        sig = jstr(o, "signature");
        empty = body_replace(body, "signature", "");
        assert_int_equal(parse_only(empty), -CF_E_MALFORMED);
        assert_true(asprintf(&nul, "{\"protected\":\"%s\",\"payload\":\"\",\"signature\":\"%s\\u0000AAAA\"}",
                             jstr(o, "protected"), sig) > 0);
        assert_int_equal(parse_only(nul), -CF_E_MALFORMED);
}

/* ---- verify rejections ---- */

static void test_jws_verify_rejects_alg_key_mismatch(void **state) {
        static const struct {
                const char *header_alg;
                KeyType signer;       /* the key that really signs, and whose JWK is sent */
                KeyType verifier;
        } cases[] = {
                { "ES256", KEY_EC_P384,  KEY_EC_P384 },   /* ES256 header with a P-384 key */
                { "ES384", KEY_EC_P256,  KEY_EC_P256 },
                { "ES512", KEY_EC_P384,  KEY_EC_P384 },
                { "RS256", KEY_EC_P256,  KEY_EC_P256 },   /* RS256 with an EC key */
                { "EdDSA", KEY_RSA_2048, KEY_RSA_2048 },
                { "ES256", KEY_ED25519,  KEY_ED25519 },
                { "HS256", KEY_EC_P256,  KEY_EC_P256 },
                { "ES256", KEY_EC_P256,  KEY_EC_P384 },   /* right alg, key of another curve */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *h = header_with_jwk(cases[i].header_alg, keys[cases[i].signer]);
                _cleanup_free_ char *body = make_body(keys[cases[i].signer], h, "{}");
                int r = parse_and_verify(body, keys[cases[i].verifier]);
                if (r != -CF_E_BAD_SIGNATURE_ALGORITHM)
                        fail_msg("case %zu (%s): got %d", i, cases[i].header_alg, r);
        }
}

static void test_jws_verify_rejects_der_ecdsa_signature(void **state) {
        static const KeyType types[] = { KEY_EC_P256, KEY_EC_P384, KEY_EC_P521 };

        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                EVP_PKEY *key = keys[types[i]];
                _cleanup_free_ char *body = NULL, *der_body = NULL;
                _cleanup_free_ uint8_t *raw = NULL, *der = NULL;
                size_t raw_size, der_size;
                JwsAlg alg;

                assert_int_equal(jws_alg_for_key(key, &alg), 0);
                assert_int_equal(jws_sign(key, NULL, TEST_NONCE, TEST_URL, NULL, &body), 0);
                raw = body_signature(body, &raw_size);
                assert_int_equal(raw_size, 2 * ec_field_size(alg));
                der = raw_to_der(raw, ec_field_size(alg), &der_size);
                der_body = body_with_signature(body, der, der_size);

                assert_int_equal(parse_and_verify(body, key), 0);
                assert_int_equal(parse_and_verify(der_body, key), -CF_E_BAD_SIGNATURE);
        }
}

static void test_jws_verify_rejects_wrong_length_signature(void **state) {
        for (KeyType t = 0; t < _KEY_TYPE_MAX; t++) {
                _cleanup_free_ char *body = NULL, *shorter = NULL, *longer = NULL, *padded = NULL;
                _cleanup_free_ uint8_t *sig = NULL, *big = NULL;
                size_t size;

                assert_int_equal(jws_sign(keys[t], NULL, TEST_NONCE, TEST_URL, NULL, &body), 0);
                sig = body_signature(body, &size);
                shorter = body_with_signature(body, sig, size - 1);
                big = calloc(1, size + 1);
                assert_non_null(big);
                memcpy(big, sig, size);
                longer = body_with_signature(body, big, size + 1);
                /* A leading zero octet keeps the integer value of an RSA signature: still wrong. */
                big[0] = 0;
                memcpy(big + 1, sig, size);
                padded = body_with_signature(body, big, size + 1);

                assert_int_equal(parse_and_verify(body, keys[t]), 0);
                assert_int_equal(parse_and_verify(shorter, keys[t]), -CF_E_BAD_SIGNATURE);
                assert_int_equal(parse_and_verify(longer, keys[t]), -CF_E_BAD_SIGNATURE);
                assert_int_equal(parse_and_verify(padded, keys[t]), -CF_E_BAD_SIGNATURE);
        }
}

/* RFC 8017 §8.2.2 step 1: an RSA signature is exactly k octets. OpenSSL alone would accept a
 * signature whose leading zero octet was dropped, giving one message two valid encodings. */
static void test_jws_verify_rejects_rsa_signature_without_leading_zero(void **state) {
        bool found = false;

        for (int i = 0; i < 5000 && !found; i++) {
                _cleanup_free_ char *body = NULL, *stripped = NULL;
                _cleanup_free_ uint8_t *sig = NULL;
                char nonce[32];
                size_t size;

                snprintf(nonce, sizeof nonce, "nonce-%d", i);
                assert_int_equal(jws_sign(keys[KEY_RSA_2048], NULL, nonce, TEST_URL, NULL, &body), 0);
                sig = body_signature(body, &size);
                assert_int_equal(size, 256);
                if (sig[0] != 0)
                        continue;
                found = true;

                stripped = body_with_signature(body, sig + 1, size - 1);
                assert_int_equal(parse_and_verify(body, keys[KEY_RSA_2048]), 0);
                assert_int_equal(parse_and_verify(stripped, keys[KEY_RSA_2048]), -CF_E_BAD_SIGNATURE);
        }
        assert_true(found);
}

static void test_jws_verify_rejects_modified_payload_signature_or_header(void **state) {
        for (KeyType t = 0; t < _KEY_TYPE_MAX; t++) {
                _cleanup_(json_object_putp) json_object *payload = json("{\"termsOfServiceAgreed\":true}");
                _cleanup_(json_object_putp) json_object *o = NULL;
                _cleanup_free_ char *body = NULL, *bad_payload = NULL, *bad_sig = NULL, *bad_header = NULL;
                _cleanup_free_ uint8_t *sig = NULL;
                _cleanup_free_ char *p64 = NULL, *h = NULL, *h64 = NULL;
                size_t size;

                assert_int_equal(jws_sign(keys[t], NULL, TEST_NONCE, TEST_URL, payload, &body), 0);
                o = json(body);

                p64 = b64u("{\"termsOfServiceAgreed\":false}", strlen("{\"termsOfServiceAgreed\":false}"));
                bad_payload = body_replace(body, "payload", p64);

                sig = body_signature(body, &size);
                sig[size / 2] ^= 0x04;
                bad_sig = body_with_signature(body, sig, size);

                /* Same header with another url: the signature covers the header too. */
                {
                        _cleanup_free_ void *hraw = NULL;
                        size_t hsize;
                        hraw = unb64u(jstr(o, "protected"), &hsize);
                        h = xstrdup(hraw);
                        char *u = strstr(h, "new-order");
                        assert_non_null(u);
                        memcpy(u, "new-authz", 9);
                        h64 = b64u(h, strlen(h));
                        bad_header = body_replace(body, "protected", h64);
                }

                assert_int_equal(parse_and_verify(body, keys[t]), 0);
                assert_int_equal(parse_and_verify(bad_payload, keys[t]), -CF_E_BAD_SIGNATURE);
                assert_int_equal(parse_and_verify(bad_sig, keys[t]), -CF_E_BAD_SIGNATURE);
                assert_int_equal(parse_and_verify(bad_header, keys[t]), -CF_E_BAD_SIGNATURE);
        }
}

static void test_jws_verify_rejects_signature_of_another_key(void **state) {
        for (KeyType t = 0; t < _KEY_TYPE_MAX; t++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *other = NULL;
                _cleanup_free_ char *body = NULL;

                if (t == KEY_RSA_3072 || t == KEY_RSA_4096)
                        continue;
                assert_int_equal(key_generate(t, &other), 0);
                assert_int_equal(jws_sign(keys[t], NULL, TEST_NONCE, TEST_URL, NULL, &body), 0);
                assert_int_equal(parse_and_verify(body, other), -CF_E_BAD_SIGNATURE);
        }
}

static void test_jws_verify_rejects_rsa_1024_key(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *small = rsa_1024();
        _cleanup_(json_object_putp) json_object *jwk = NULL;
        _cleanup_free_ char *h = NULL, *body = NULL, *input = NULL, *h64 = NULL, *s64 = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *back = NULL;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        uint8_t sig[128];
        size_t sig_size = sizeof sig;
        char *t = NULL;

        /* Its JWK can be written (a client may show it), but not be used. */
        assert_int_equal(jwk_from_key(small, &jwk), 0);
        assert_int_equal(jwk_to_key(jwk, &back), -CF_E_BAD_PUBLIC_KEY);
        assert_null(back);
        assert_int_equal(jwk_thumbprint(jwk, &t), -CF_E_BAD_PUBLIC_KEY);

        /* A genuine RS256 signature by the 1024-bit key, made with OpenSSL directly. */
        h = header_with_jwk("RS256", small);
        h64 = b64u(h, strlen(h));
        assert_true(asprintf(&input, "%s.e30", h64) > 0);
        assert_non_null(ctx);
        assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, small, NULL), 1);
        assert_int_equal(EVP_DigestSign(ctx, sig, &sig_size, (const unsigned char *) input, strlen(input)), 1);
        assert_int_equal(sig_size, 128);
        s64 = b64u(sig, sig_size);
        body = body_from_members(h64, "e30", s64);

        assert_int_equal(parse_and_verify(body, small), -CF_E_BAD_PUBLIC_KEY);
}

/* ---- JWK validation ---- */

static int jwk_text_to_key(const char *text) {
        _cleanup_(json_object_putp) json_object *jwk = json(text);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r;

        r = jwk_to_key(jwk, &key);
        if (r >= 0)
                assert_non_null(key);
        else
                assert_null(key);
        return r;
}

static void test_jwk_to_key_rejects_private_members(void **state) {
        assert_int_equal(jwk_text_to_key("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" RFC7515_A3_X
                                         "\",\"y\":\"" RFC7515_A3_Y "\"}"), 0);
        assert_int_equal(jwk_text_to_key("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" RFC7515_A3_X
                                         "\",\"y\":\"" RFC7515_A3_Y "\",\"d\":\"" RFC7515_A3_D "\"}"),
                         -CF_E_BAD_PUBLIC_KEY);
        assert_int_equal(jwk_text_to_key("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" RFC8037_X
                                         "\",\"d\":\"" RFC8037_D "\"}"), -CF_E_BAD_PUBLIC_KEY);
        assert_int_equal(jwk_text_to_key("{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQAB\",\"p\":\"AQAB\"}"),
                         -CF_E_BAD_PUBLIC_KEY);
        assert_int_equal(jwk_text_to_key("{\"kty\":\"oct\",\"k\":\"" RFC7515_A1_K "\"}"), -CF_E_BAD_PUBLIC_KEY);
}

static void test_jwk_to_key_rejects_point_not_on_curve(void **state) {
        _cleanup_free_ uint8_t *y = NULL;
        _cleanup_free_ char *y64 = NULL, *text = NULL;
        size_t size;

        /* RFC 7515 A.3's point with the last bit of y flipped: in the field, off the curve. */
        y = unb64u(RFC7515_A3_Y, &size);
        y[size - 1] ^= 0x01;
        y64 = b64u(y, size);
        assert_true(asprintf(&text, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" RFC7515_A3_X
                             "\",\"y\":\"%s\"}", y64) > 0);
        assert_int_equal(jwk_text_to_key(text), -CF_E_BAD_PUBLIC_KEY);

        /* The right coordinates with the wrong curve name (and size). */
        assert_int_equal(jwk_text_to_key("{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"" RFC7515_A3_X
                                         "\",\"y\":\"" RFC7515_A3_Y "\"}"), -CF_E_BAD_PUBLIC_KEY);
        /* (0, 0) */
        assert_int_equal(jwk_text_to_key("{\"kty\":\"EC\",\"crv\":\"P-256\","
                                         "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
                                         "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}"),
                         -CF_E_BAD_PUBLIC_KEY);
}

static void test_jwk_to_key_rejects_coordinate_above_field_prime(void **state) {
        _cleanup_(BN_freep) BIGNUM *p = NULL, *x = NULL, *y = NULL, *xp = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *x64 = NULL, *y64 = NULL, *text = NULL, *ok = NULL;
        uint8_t buf[32];

        /* x + p is congruent to x, so a lax decoder would accept the same point twice over. */
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        assert_non_null(key);
        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
        assert_int_equal(BN_hex2bn(&p, "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"), 64);
        xp = BN_new();
        assert_non_null(xp);
        assert_int_equal(BN_add(xp, x, p), 1);

        assert_int_equal(BN_bn2binpad(y, buf, 32), 32);
        y64 = b64u(buf, 32);
        assert_int_equal(BN_bn2binpad(x, buf, 32), 32);
        x64 = b64u(buf, 32);
        assert_true(asprintf(&ok, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", x64, y64) > 0);
        assert_int_equal(jwk_text_to_key(ok), 0);

        if (BN_num_bytes(xp) != 32)
                return; /* x + p overflowed 256 bits: still refused, but by length */
        free(x64);
        assert_int_equal(BN_bn2binpad(xp, buf, 32), 32);
        x64 = b64u(buf, 32);
        assert_true(asprintf(&text, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", x64, y64) > 0);
        assert_int_equal(jwk_text_to_key(text), -CF_E_BAD_PUBLIC_KEY);
}

static void test_jwk_to_key_rejects_wrong_coordinate_length(void **state) {
        _cleanup_free_ uint8_t *x = NULL;
        _cleanup_free_ char *short64 = NULL, *long64 = NULL, *t1 = NULL, *t2 = NULL, *t3 = NULL;
        uint8_t longer[33];
        size_t size;

        x = unb64u(RFC7515_A3_X, &size);
        assert_int_equal(size, 32);
        short64 = b64u(x + 1, 31);
        longer[0] = 0;
        memcpy(longer + 1, x, 32);
        long64 = b64u(longer, 33);

        assert_true(asprintf(&t1, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"" RFC7515_A3_Y "\"}", short64) > 0);
        assert_true(asprintf(&t2, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"" RFC7515_A3_Y "\"}", long64) > 0);
        assert_int_equal(jwk_text_to_key(t1), -CF_E_BAD_PUBLIC_KEY);
        assert_int_equal(jwk_text_to_key(t2), -CF_E_BAD_PUBLIC_KEY);

        /* Ed25519: 32 octets exactly. */
        assert_true(asprintf(&t3, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}", short64) > 0);
        assert_int_equal(jwk_text_to_key(t3), -CF_E_BAD_PUBLIC_KEY);
}

static void test_jwk_to_key_rejects_unknown_kty_and_crv(void **state) {
        assert_int_equal(jwk_text_to_key("{\"kty\":\"EC\",\"crv\":\"P-256K\",\"x\":\"" RFC7515_A3_X
                                         "\",\"y\":\"" RFC7515_A3_Y "\"}"), -CF_E_BAD_PUBLIC_KEY);
        assert_int_equal(jwk_text_to_key("{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"" RFC7515_A3_X
                                         "\",\"y\":\"" RFC7515_A3_Y "\"}"), -CF_E_BAD_PUBLIC_KEY);
        assert_int_equal(jwk_text_to_key("{\"kty\":\"ec\",\"crv\":\"P-256\",\"x\":\"" RFC7515_A3_X
                                         "\",\"y\":\"" RFC7515_A3_Y "\"}"), -CF_E_BAD_PUBLIC_KEY);
        assert_int_equal(jwk_text_to_key("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"" RFC8037_X "\"}"),
                         -CF_E_BAD_PUBLIC_KEY);
        assert_int_equal(jwk_text_to_key("{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"" RFC8037_X "\"}"),
                         -CF_E_BAD_PUBLIC_KEY);
        assert_int_equal(jwk_text_to_key("{\"kty\":\"oct\",\"x\":\"AAAA\"}"), -CF_E_BAD_PUBLIC_KEY);
}

static void test_jwk_to_key_rejects_malformed_members(void **state) {
        static const char *const texts[] = {
                "{\"crv\":\"P-256\",\"x\":\"" RFC7515_A3_X "\",\"y\":\"" RFC7515_A3_Y "\"}",
                "{\"kty\":7,\"crv\":\"P-256\",\"x\":\"" RFC7515_A3_X "\",\"y\":\"" RFC7515_A3_Y "\"}",
                "{\"kty\":\"EC\",\"x\":\"" RFC7515_A3_X "\",\"y\":\"" RFC7515_A3_Y "\"}",
                "{\"kty\":\"EC\",\"crv\":\"P-256\",\"y\":\"" RFC7515_A3_Y "\"}",
                "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":[],\"y\":\"" RFC7515_A3_Y "\"}",
                "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" RFC7515_A3_X "=\",\"y\":\"" RFC7515_A3_Y "\"}",
                "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVE+\",\"y\":\"" RFC7515_A3_Y "\"}",
                "{\"kty\":\"OKP\",\"crv\":\"Ed25519\"}",
                "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\\u0000\"}",
                "{\"kty\":\"RSA\",\"e\":\"AQAB\"}",
                "{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\"}",
                "{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"\"}",
                /* leading zero octets: not the minimal encoding of RFC 7518 §6.3.1 */
                "{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AAEAAQ\"}",
                "{\"kty\":\"RSA\",\"n\":\"AA" RFC7638_N "\",\"e\":\"AQAB\"}",
                "[]",
                "\"EC\"",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                int r = jwk_text_to_key(texts[i]);
                if (r != -EBADMSG)
                        fail_msg("%s: got %d", texts[i], r);
        }
}

static void test_jwk_to_key_rejects_weak_rsa(void **state) {
        _cleanup_(json_object_putp) json_object *jwk = NULL;
        _cleanup_free_ uint8_t *n = NULL;
        _cleanup_free_ char *n64 = NULL, *even = NULL, *e1 = NULL;
        size_t size;

        /* e = 1 */
        assert_true(asprintf(&e1, "{\"kty\":\"RSA\",\"n\":\"" RFC7638_N "\",\"e\":\"AQ\"}") > 0);
        assert_int_equal(jwk_text_to_key(e1), -CF_E_BAD_PUBLIC_KEY);

        /* an even modulus */
        n = unb64u(RFC7638_N, &size);
        n[size - 1] &= 0xfe;
        n64 = b64u(n, size);
        assert_true(asprintf(&even, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}", n64) > 0);
        assert_int_equal(jwk_text_to_key(even), -CF_E_BAD_PUBLIC_KEY);

        /* 2047 bits */
        free(n64);
        free(even);
        n[0] = 0x7f;
        n[size - 1] |= 0x01;
        n64 = b64u(n, size);
        assert_true(asprintf(&even, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}", n64) > 0);
        assert_int_equal(jwk_text_to_key(even), -CF_E_BAD_PUBLIC_KEY);
}

static void test_jwk_thumbprint_ignores_member_order_and_extra_members(void **state) {
        static const char *const texts[] = {
                "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" RFC7515_A3_X "\",\"y\":\"" RFC7515_A3_Y "\"}",
                "{\"y\":\"" RFC7515_A3_Y "\",\"x\":\"" RFC7515_A3_X "\",\"crv\":\"P-256\",\"kty\":\"EC\"}",
                "{\"use\":\"sig\",\"kid\":\"1\",\"alg\":\"ES256\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\""
                RFC7515_A3_X "\",\"y\":\"" RFC7515_A3_Y "\",\"key_ops\":[\"verify\"]}",
                "{ \"kty\" : \"EC\" ,\n \"crv\":\"P-256\",\"x\":\"" RFC7515_A3_X "\",\"y\":\"" RFC7515_A3_Y "\"}",
        };
        _cleanup_free_ char *first = NULL, *cli = NULL;
        char path[256], cmd[512];

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                _cleanup_(json_object_putp) json_object *jwk = json(texts[i]);
                _cleanup_free_ char *t = NULL;

                assert_int_equal(jwk_thumbprint(jwk, &t), 0);
                if (!first)
                        first = xstrdup(t);
                assert_string_equal(t, first);
        }

        /* The canonical form of RFC 7638 §3, hashed by the openssl CLI, gives the same value. */
        snprintf(path, sizeof path, "%s/canonical.json", test_tmpdir);
        write_file(path, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" RFC7515_A3_X "\",\"y\":\"" RFC7515_A3_Y "\"}",
                   strlen("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" RFC7515_A3_X "\",\"y\":\"" RFC7515_A3_Y "\"}"));
        snprintf(cmd, sizeof cmd,
                 "openssl dgst -sha256 -binary '%s' | openssl base64 -A | tr '+/' '-_' | tr -d '='", path);
        cli = run(cmd);
        assert_string_equal(cli, first);
}

/* ---- cross-checks with the openssl command line ---- */

static void test_jws_signatures_verify_with_openssl_cli(void **state) {
        static const struct {
                KeyType type;
                const char *digest;
        } cases[] = {
                { KEY_EC_P256, "-sha256" },
                { KEY_EC_P384, "-sha384" },
                { KEY_EC_P521, "-sha512" },
                { KEY_RSA_2048, "-sha256" },
                { KEY_RSA_4096, "-sha256" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                EVP_PKEY *key = keys[cases[i].type];
                _cleanup_(json_object_putp) json_object *payload = json("{\"status\":\"deactivated\"}");
                _cleanup_(jws_freep) Jws *jws = NULL;
                _cleanup_free_ char *body = NULL, *out = NULL;
                _cleanup_free_ uint8_t *der = NULL;
                char input[256], sig[256], pub[256], cmd[1024];
                size_t der_size;
                JwsAlg alg;

                assert_int_equal(jws_sign(key, "https://ca.example/acme/acct/5", TEST_NONCE, TEST_URL, payload, &body), 0);
                assert_int_equal(jws_parse(body, strlen(body), &jws), 0);
                alg = jws->alg;

                snprintf(input, sizeof input, "%s/xin-%zu", test_tmpdir, i);
                snprintf(sig, sizeof sig, "%s/xsig-%zu", test_tmpdir, i);
                snprintf(pub, sizeof pub, "%s/xpub-%zu.pem", test_tmpdir, i);
                write_file(input, jws->signing_input, strlen(jws->signing_input));
                write_pem(key, pub, false);
                if (alg == JWS_ALG_RS256)
                        write_file(sig, jws->signature, jws->signature_size);
                else {
                        der = raw_to_der(jws->signature, ec_field_size(alg), &der_size);
                        write_file(sig, der, der_size);
                }
                snprintf(cmd, sizeof cmd, "openssl dgst %s -verify '%s' -signature '%s' '%s'",
                         cases[i].digest, pub, sig, input);
                out = run(cmd);
                assert_string_equal(out, "Verified OK\n");
        }
}

static void test_jws_ed25519_signature_equals_openssl_cli(void **state) {
        EVP_PKEY *key = keys[KEY_ED25519];
        _cleanup_(jws_freep) Jws *jws = NULL;
        _cleanup_free_ char *body = NULL, *out = NULL, *out2 = NULL;
        _cleanup_free_ uint8_t *cli_sig = NULL;
        char input[256], sig[256], ours[256], priv[256], pub[256], cmd[1024];
        size_t cli_size;

        assert_int_equal(jws_sign(key, NULL, TEST_NONCE, TEST_URL, NULL, &body), 0);
        assert_int_equal(jws_parse(body, strlen(body), &jws), 0);

        snprintf(input, sizeof input, "%s/ed-in", test_tmpdir);
        snprintf(sig, sizeof sig, "%s/ed-sig", test_tmpdir);
        snprintf(ours, sizeof ours, "%s/ed-ours", test_tmpdir);
        snprintf(priv, sizeof priv, "%s/ed-priv.pem", test_tmpdir);
        snprintf(pub, sizeof pub, "%s/ed-pub.pem", test_tmpdir);
        write_file(input, jws->signing_input, strlen(jws->signing_input));
        write_file(ours, jws->signature, jws->signature_size);
        write_pem(key, priv, true);
        write_pem(key, pub, false);

        snprintf(cmd, sizeof cmd, "openssl pkeyutl -sign -rawin -inkey '%s' -in '%s' -out '%s'", priv, input, sig);
        out = run(cmd);
        cli_sig = read_file(sig, &cli_size);
        assert_int_equal(cli_size, 64);
        assert_memory_equal(cli_sig, jws->signature, 64);

        snprintf(cmd, sizeof cmd, "openssl pkeyutl -verify -rawin -pubin -inkey '%s' -in '%s' -sigfile '%s'",
                 pub, input, ours);
        out2 = run(cmd);
        assert_non_null(strstr(out2, "Signature Verified Successfully"));
}

static void test_jws_verifies_signatures_made_by_openssl_cli(void **state) {
        static const struct {
                KeyType type;
                const char *digest;
        } cases[] = {
                { KEY_EC_P256, "-sha256" },
                { KEY_EC_P521, "-sha512" },
                { KEY_RSA_3072, "-sha256" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                EVP_PKEY *key = keys[cases[i].type];
                _cleanup_free_ char *h = header_with_jwk(cases[i].type == KEY_RSA_3072 ? "RS256" :
                                                         cases[i].type == KEY_EC_P256 ? "ES256" : "ES512", key);
                _cleanup_free_ char *h64 = b64u(h, strlen(h));
                _cleanup_free_ char *signing_input = NULL, *out = NULL, *s64 = NULL, *body = NULL;
                _cleanup_free_ uint8_t *cli_sig = NULL, *raw = NULL;
                char input[256], sig[256], priv[256], cmd[1024];
                size_t size;

                assert_true(asprintf(&signing_input, "%s.eyJvbmx5UmV0dXJuVmFsaWQiOnRydWV9", h64) > 0);
                snprintf(input, sizeof input, "%s/cli-in-%zu", test_tmpdir, i);
                snprintf(sig, sizeof sig, "%s/cli-sig-%zu", test_tmpdir, i);
                snprintf(priv, sizeof priv, "%s/cli-priv-%zu.pem", test_tmpdir, i);
                write_file(input, signing_input, strlen(signing_input));
                write_pem(key, priv, true);
                snprintf(cmd, sizeof cmd, "openssl dgst %s -sign '%s' -out '%s' '%s'",
                         cases[i].digest, priv, sig, input);
                out = run(cmd);
                cli_sig = read_file(sig, &size);

                if (cases[i].type == KEY_RSA_3072)
                        s64 = b64u(cli_sig, size);
                else {
                        size_t field = cases[i].type == KEY_EC_P256 ? 32 : 66;
                        raw = der_to_raw(cli_sig, size, field);
                        s64 = b64u(raw, 2 * field);
                        /* OpenSSL's own DER form is refused as it is. */
                        _cleanup_free_ char *der64 = b64u(cli_sig, size);
                        _cleanup_free_ char *der_body = body_from_members(h64, "eyJvbmx5UmV0dXJuVmFsaWQiOnRydWV9", der64);
                        assert_int_equal(parse_and_verify(der_body, key), -CF_E_BAD_SIGNATURE);
                }
                body = body_from_members(h64, "eyJvbmx5UmV0dXJuVmFsaWQiOnRydWV9", s64);
                assert_int_equal(parse_and_verify(body, key), 0);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_jws_alg_names_round_trip),
                cmocka_unit_test(test_jws_alg_for_key_follows_key_type_and_size),
                cmocka_unit_test(test_jwk_thumbprint_matches_rfc7638_rsa_example),
                cmocka_unit_test(test_jws_verifies_rfc7515_a3_es256_example),
                cmocka_unit_test(test_jws_verifies_rfc7515_a1_hs256_example),
                cmocka_unit_test(test_jwk_ed25519_matches_rfc8037_key_and_thumbprint),
                cmocka_unit_test(test_jws_verifies_rfc8037_a4_ed25519_example),
                cmocka_unit_test(test_jws_ed25519_signature_equals_rfc8037_a4_byte_for_byte),
                cmocka_unit_test(test_jws_sign_parse_verify_round_trip_every_alg_and_size),
                cmocka_unit_test(test_jws_sign_protected_header_has_exactly_acme_fields),
                cmocka_unit_test(test_jws_post_as_get_has_empty_payload),
                cmocka_unit_test(test_jws_sign_refuses_missing_url_and_small_rsa),
                cmocka_unit_test(test_jwk_ec_coordinates_are_left_padded),
                cmocka_unit_test(test_jws_sign_key_change_builds_rfc8555_inner_jws),
                cmocka_unit_test(test_jws_sign_eab_verifies_with_right_key_only),
                cmocka_unit_test(test_jws_hmac_matches_openssl_cli),
                cmocka_unit_test(test_jws_parse_rejects_alg_none),
                cmocka_unit_test(test_jws_parse_rejects_unknown_or_miscased_alg),
                cmocka_unit_test(test_jws_parse_rejects_both_jwk_and_kid),
                cmocka_unit_test(test_jws_parse_rejects_neither_jwk_nor_kid),
                cmocka_unit_test(test_jws_parse_rejects_compact_serialization),
                cmocka_unit_test(test_jws_parse_rejects_general_serialization),
                cmocka_unit_test(test_jws_parse_rejects_unprotected_header),
                cmocka_unit_test(test_jws_parse_rejects_trailing_garbage),
                cmocka_unit_test(test_jws_parse_rejects_oversized_body),
                cmocka_unit_test(test_jws_parse_rejects_bad_base64url),
                cmocka_unit_test(test_jws_parse_rejects_crit),
                cmocka_unit_test(test_jws_parse_rejects_wrongly_typed_members),
                cmocka_unit_test(test_jws_parse_rejects_empty_or_nul_signature),
                cmocka_unit_test(test_jws_verify_rejects_alg_key_mismatch),
                cmocka_unit_test(test_jws_verify_rejects_der_ecdsa_signature),
                cmocka_unit_test(test_jws_verify_rejects_wrong_length_signature),
                cmocka_unit_test(test_jws_verify_rejects_rsa_signature_without_leading_zero),
                cmocka_unit_test(test_jws_verify_rejects_modified_payload_signature_or_header),
                cmocka_unit_test(test_jws_verify_rejects_signature_of_another_key),
                cmocka_unit_test(test_jws_verify_rejects_rsa_1024_key),
                cmocka_unit_test(test_jwk_to_key_rejects_private_members),
                cmocka_unit_test(test_jwk_to_key_rejects_point_not_on_curve),
                cmocka_unit_test(test_jwk_to_key_rejects_coordinate_above_field_prime),
                cmocka_unit_test(test_jwk_to_key_rejects_wrong_coordinate_length),
                cmocka_unit_test(test_jwk_to_key_rejects_unknown_kty_and_crv),
                cmocka_unit_test(test_jwk_to_key_rejects_malformed_members),
                cmocka_unit_test(test_jwk_to_key_rejects_weak_rsa),
                cmocka_unit_test(test_jwk_thumbprint_ignores_member_order_and_extra_members),
                cmocka_unit_test(test_jws_signatures_verify_with_openssl_cli),
                cmocka_unit_test(test_jws_ed25519_signature_equals_openssl_cli),
                cmocka_unit_test(test_jws_verifies_signatures_made_by_openssl_cli),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
