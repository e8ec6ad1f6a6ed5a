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
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "shared/errors.h"
#include "shared/key.h"
#include "shared/macro.h"
#include "tests/unit/test-util.h"

/* Runs a shell command and returns its stdout (at most 64 KiB). */
static char *run(const char *cmd) {
        FILE *f = popen(cmd, "r");
        char *buf = calloc(1, 65536);
        size_t n;

        assert_non_null(f);
        assert_non_null(buf);
        n = fread(buf, 1, 65535, f);
        buf[n] = 0;
        assert_int_equal(pclose(f), 0);
        return buf;
}

static void write_public_pem(EVP_PKEY *key, const char *path) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(PEM_write_PUBKEY(f, key), 1);
        assert_int_equal(fclose(f), 0);
}

static EVP_PKEY *read_private_pem(const char *path) {
        FILE *f = fopen(path, "r");
        EVP_PKEY *key;

        assert_non_null(f);
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        assert_non_null(key);
        return key;
}

/* The key's SubjectPublicKeyInfo as OpenSSL itself encodes it, parsed back into an X509_PUBKEY
 * in the default library context. */
static X509_PUBKEY *spki_of(EVP_PKEY *key) {
        unsigned char *der = NULL;
        const unsigned char *p;
        X509_PUBKEY *spki;
        int len = i2d_PUBKEY(key, &der);

        assert_true(len > 0);
        p = der;
        spki = d2i_X509_PUBKEY(NULL, &p, len);
        assert_non_null(spki);
        OPENSSL_free(der);
        return spki;
}

/* A key holding only the public half of key, decoded by OpenSSL. */
static EVP_PKEY *public_copy(EVP_PKEY *key) {
        _cleanup_(X509_PUBKEY_freep) X509_PUBKEY *spki = spki_of(key);
        EVP_PKEY *pub = X509_PUBKEY_get(spki);

        assert_non_null(pub);
        return pub;
}

static void assert_key_info(const KeyInfo *info, KeyAlgorithm algorithm, int bits, const char *curve) {
        assert_int_equal(info->algorithm, algorithm);
        assert_int_equal(info->bits, bits);
        if (curve)
                assert_string_equal(info->curve, curve);
        else
                assert_null(info->curve);
}

static void test_key_type_canonical_names_round_trip(void **state) {
        static const char *const expected[_KEY_TYPE_MAX] = {
                [KEY_EC_P256] = "ec-p256",   [KEY_EC_P384] = "ec-p384",
                [KEY_EC_P521] = "ec-p521",   [KEY_RSA_2048] = "rsa-2048",
                [KEY_RSA_3072] = "rsa-3072", [KEY_RSA_4096] = "rsa-4096",
                [KEY_ED25519] = "ed25519",
        };

        for (KeyType t = 0; t < _KEY_TYPE_MAX; t++) {
                assert_string_equal(key_type_to_string(t), expected[t]);
                assert_int_equal(key_type_from_string(expected[t]), t);
        }
        assert_null(key_type_to_string(_KEY_TYPE_MAX));
        assert_null(key_type_to_string(_KEY_TYPE_INVALID));
}

static void test_key_type_accepts_aliases_case_insensitively(void **state) {
        assert_int_equal(key_type_from_string("EC-P384"), KEY_EC_P384);
        assert_int_equal(key_type_from_string("ecdsa-p256"), KEY_EC_P256);
        assert_int_equal(key_type_from_string("ECDSA-P521"), KEY_EC_P521);
        assert_int_equal(key_type_from_string("rsa2048"), KEY_RSA_2048);
        assert_int_equal(key_type_from_string("RSA4096"), KEY_RSA_4096);
        assert_int_equal(key_type_from_string("rsa"), KEY_RSA_2048);
        assert_int_equal(key_type_from_string("ec"), KEY_EC_P256);
        assert_int_equal(key_type_from_string("Ed25519"), KEY_ED25519);
}

static void test_key_type_rejects_unknown_names(void **state) {
        assert_int_equal(key_type_from_string("rsa-1024"), -EINVAL);
        assert_int_equal(key_type_from_string("dsa"), -EINVAL);
        assert_int_equal(key_type_from_string("ed448"), -EINVAL);
        assert_int_equal(key_type_from_string("ec-p256 "), -EINVAL);
        assert_int_equal(key_type_from_string(""), -EINVAL);
        assert_int_equal(key_type_from_string(NULL), -EINVAL);
}

static void test_key_algorithm_names_round_trip(void **state) {
        assert_string_equal(key_algorithm_to_string(KEY_ALG_RSA), "rsa");
        assert_string_equal(key_algorithm_to_string(KEY_ALG_EC), "ec");
        assert_string_equal(key_algorithm_to_string(KEY_ALG_ED25519), "ed25519");
        assert_null(key_algorithm_to_string(_KEY_ALG_MAX));
        for (KeyAlgorithm a = 0; a < _KEY_ALG_MAX; a++)
                assert_int_equal(key_algorithm_from_string(key_algorithm_to_string(a)), a);
        assert_int_equal(key_algorithm_from_string("EC"), KEY_ALG_EC);
        assert_int_equal(key_algorithm_from_string("dsa"), -EINVAL);
        assert_int_equal(key_algorithm_from_string(NULL), -EINVAL);
}

/* Each generated key is described by us and, independently, by `openssl pkey -text`. */
static void test_key_generate_makes_each_type_as_openssl_sees_it(void **state) {
        static const struct {
                KeyType type;
                KeyAlgorithm algorithm;
                int bits;
                const char *curve;
                const char *openssl_text;   /* what `openssl pkey -pubin -text` must print */
        } cases[] = {
                { KEY_EC_P256,  KEY_ALG_EC,      256,  "P-256", "NIST CURVE: P-256" },
                { KEY_EC_P384,  KEY_ALG_EC,      384,  "P-384", "NIST CURVE: P-384" },
                { KEY_EC_P521,  KEY_ALG_EC,      521,  "P-521", "NIST CURVE: P-521" },
                { KEY_RSA_2048, KEY_ALG_RSA,     2048, NULL,    "Public-Key: (2048 bit)" },
                { KEY_RSA_3072, KEY_ALG_RSA,     3072, NULL,    "Public-Key: (3072 bit)" },
                { KEY_RSA_4096, KEY_ALG_RSA,     4096, NULL,    "Public-Key: (4096 bit)" },
                { KEY_ED25519,  KEY_ALG_ED25519, 255,  NULL,    "ED25519 Public-Key:" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
                _cleanup_free_ char *out = NULL;
                char path[256], cmd[512];
                KeyInfo info;

                assert_int_equal(key_generate(cases[i].type, &key), 0);
                assert_int_equal(key_describe(key, &info), 0);
                assert_key_info(&info, cases[i].algorithm, cases[i].bits, cases[i].curve);

                snprintf(path, sizeof path, "%s/gen-%zu.pem", test_tmpdir, i);
                write_public_pem(key, path);
                snprintf(cmd, sizeof cmd, "openssl pkey -pubin -in '%s' -noout -text", path);
                out = run(cmd);
                if (!strstr(out, cases[i].openssl_text))
                        fail_msg("%s: openssl printed:\n%s", key_type_to_string(cases[i].type), out);
        }
}

static void test_key_generate_rejects_invalid_type(void **state) {
        EVP_PKEY *key = NULL;

        assert_int_equal(key_generate(_KEY_TYPE_MAX, &key), -EINVAL);
        assert_int_equal(key_generate(_KEY_TYPE_INVALID, &key), -EINVAL);
        assert_null(key);
}

/* Keys made by the openssl CLI, not by us: supported ones are described, others refused. */
static void test_key_describe_openssl_generated_keys(void **state) {
        static const struct {
                const char *genpkey_args;
                int expected;                 /* 0 or -EOPNOTSUPP */
                KeyAlgorithm algorithm;
                int bits;
                const char *curve;
        } cases[] = {
                { "-algorithm EC -pkeyopt ec_paramgen_curve:P-384", 0, KEY_ALG_EC, 384, "P-384" },
                { "-algorithm EC -pkeyopt ec_paramgen_curve:secp521r1", 0, KEY_ALG_EC, 521, "P-521" },
                { "-algorithm RSA -pkeyopt rsa_keygen_bits:2560", 0, KEY_ALG_RSA, 2560, NULL },
                { "-algorithm ED25519", 0, KEY_ALG_ED25519, 255, NULL },
                { "-algorithm EC -pkeyopt ec_paramgen_curve:brainpoolP256r1", -EOPNOTSUPP, 0, 0, NULL },
                { "-algorithm EC -pkeyopt ec_paramgen_curve:secp256k1", -EOPNOTSUPP, 0, 0, NULL },
                { "-algorithm ED448", -EOPNOTSUPP, 0, 0, NULL },
                { "-algorithm X25519", -EOPNOTSUPP, 0, 0, NULL },
                { "-algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048", -EOPNOTSUPP, 0, 0, NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
                _cleanup_free_ char *out = NULL;
                char path[256], cmd[512];
                KeyInfo info = { .bits = -1 };

                snprintf(path, sizeof path, "%s/cli-%zu.pem", test_tmpdir, i);
                snprintf(cmd, sizeof cmd, "openssl genpkey %s -out '%s' 2>&1", cases[i].genpkey_args, path);
                out = run(cmd);
                key = read_private_pem(path);

                assert_int_equal(key_describe(key, &info), cases[i].expected);
                if (cases[i].expected < 0) {
                        assert_int_equal(info.bits, -1); /* untouched on failure */
                        continue;
                }
                assert_key_info(&info, cases[i].algorithm, cases[i].bits, cases[i].curve);
        }
}

static void test_key_public_equal_compares_public_parts_only(void **state) {
        for (KeyType t = 0; t < _KEY_TYPE_MAX; t++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *a = NULL, *a_pub = NULL, *b = NULL;

                if (t == KEY_RSA_3072 || t == KEY_RSA_4096)
                        continue; /* slow, and nothing RSA-size specific to test here */
                assert_int_equal(key_generate(t, &a), 0);
                assert_int_equal(key_generate(t, &b), 0);
                a_pub = public_copy(a);

                assert_true(key_public_equal(a, a));
                assert_true(key_public_equal(a, a_pub));
                assert_true(key_public_equal(a_pub, a));
                assert_false(key_public_equal(a, b));
                assert_false(key_public_equal(a_pub, b));
        }
}

static void test_key_public_equal_different_types_or_null(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ec = NULL, *ec384 = NULL, *ed = NULL;

        assert_int_equal(key_generate(KEY_EC_P256, &ec), 0);
        assert_int_equal(key_generate(KEY_EC_P384, &ec384), 0);
        assert_int_equal(key_generate(KEY_ED25519, &ed), 0);
        assert_false(key_public_equal(ec, ec384));
        assert_false(key_public_equal(ec, ed));
        assert_false(key_public_equal(ec, NULL));
        assert_false(key_public_equal(NULL, ec));
        assert_false(key_public_equal(NULL, NULL));
}

static void test_key_from_spki_matches_openssl_decoder(void **state) {
        /* Fast paths (NIST curves, Ed25519) and the generic one (RSA, other curves, Ed448). */
        static const char *const algorithms[] = {
                "-algorithm EC -pkeyopt ec_paramgen_curve:P-256",
                "-algorithm EC -pkeyopt ec_paramgen_curve:P-384",
                "-algorithm EC -pkeyopt ec_paramgen_curve:P-521",
                "-algorithm ED25519",
                "-algorithm RSA -pkeyopt rsa_keygen_bits:2048",
                "-algorithm EC -pkeyopt ec_paramgen_curve:secp256k1",
                "-algorithm ED448",
        };

        for (size_t i = 0; i < ELEMENTSOF(algorithms); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *decoded = NULL;
                _cleanup_(X509_PUBKEY_freep) X509_PUBKEY *spki = NULL;
                _cleanup_free_ char *out = NULL;
                char path[256], cmd[512];

                snprintf(path, sizeof path, "%s/spki-%zu.pem", test_tmpdir, i);
                snprintf(cmd, sizeof cmd, "openssl genpkey %s -out '%s' 2>&1", algorithms[i], path);
                out = run(cmd);
                key = read_private_pem(path);
                spki = spki_of(key);

                assert_int_equal(key_from_spki(spki, &decoded), 0);
                assert_true(key_public_equal(decoded, key));
        }
}

static void test_key_from_spki_compressed_point(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *decoded = NULL;
        _cleanup_(X509_PUBKEY_freep) X509_PUBKEY *spki = NULL;
        const unsigned char *bits;
        int bits_size;

        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
        assert_int_equal(EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                                        "compressed"), 1);
        spki = spki_of(key);
        assert_int_equal(X509_PUBKEY_get0_param(NULL, &bits, &bits_size, NULL, spki), 1);
        assert_int_equal(bits_size, 33);

        assert_int_equal(key_from_spki(spki, &decoded), 0);
        assert_true(key_public_equal(decoded, key));
}

/* An SPKI with the given algorithm, curve (NID_undef: no parameters) and key bits. */
static X509_PUBKEY *spki_raw(int algorithm, int curve, const unsigned char *bits, int size) {
        X509_PUBKEY *spki = X509_PUBKEY_new();
        unsigned char *copy = OPENSSL_memdup(bits, size);

        assert_non_null(spki);
        assert_non_null(copy);
        assert_int_equal(X509_PUBKEY_set0_param(spki, OBJ_nid2obj(algorithm),
                                                curve == NID_undef ? V_ASN1_UNDEF : V_ASN1_OBJECT,
                                                curve == NID_undef ? NULL : OBJ_nid2obj(curve),
                                                copy, size), 1);
        return spki;
}

static void test_key_from_spki_refuses_bad_points(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_PUBKEY_freep) X509_PUBKEY *good = NULL;
        const unsigned char *bits;
        unsigned char point[65] = { POINT_CONVERSION_UNCOMPRESSED }, infinity[1] = { 0 }, ed[31] = { 0 };
        int bits_size;

        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
        good = spki_of(key);
        assert_int_equal(X509_PUBKEY_get0_param(NULL, &bits, &bits_size, NULL, good), 1);
        assert_int_equal(bits_size, 65);

        struct {
                int algorithm, curve;
                const unsigned char *bits;
                int size;
        } cases[] = {
                { NID_X9_62_id_ecPublicKey, NID_X9_62_prime256v1, point, sizeof point },   /* (0, 0) */
                { NID_X9_62_id_ecPublicKey, NID_X9_62_prime256v1, infinity, sizeof infinity },
                { NID_X9_62_id_ecPublicKey, NID_X9_62_prime256v1, bits, bits_size - 1 },  /* cut */
                { NID_X9_62_id_ecPublicKey, NID_secp384r1, bits, bits_size },            /* wrong curve */
                { NID_ED25519, NID_undef, ed, sizeof ed },                                /* 31 bytes */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(X509_PUBKEY_freep) X509_PUBKEY *spki =
                        spki_raw(cases[i].algorithm, cases[i].curve, cases[i].bits, cases[i].size);
                EVP_PKEY *decoded = NULL;

                assert_int_equal(key_from_spki(spki, &decoded), -CF_E_BAD_PUBLIC_KEY);
                assert_null(decoded);
        }

        /* The same point with one bit of y flipped is off the curve. */
        memcpy(point, bits, sizeof point);
        point[64] ^= 1;
        {
                _cleanup_(X509_PUBKEY_freep) X509_PUBKEY *spki =
                        spki_raw(NID_X9_62_id_ecPublicKey, NID_X9_62_prime256v1, point, sizeof point);
                EVP_PKEY *decoded = NULL;

                assert_int_equal(key_from_spki(spki, &decoded), -CF_E_BAD_PUBLIC_KEY);
        }
        assert_int_equal(ERR_peek_error(), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_key_type_canonical_names_round_trip),
                cmocka_unit_test(test_key_type_accepts_aliases_case_insensitively),
                cmocka_unit_test(test_key_type_rejects_unknown_names),
                cmocka_unit_test(test_key_algorithm_names_round_trip),
                cmocka_unit_test(test_key_generate_makes_each_type_as_openssl_sees_it),
                cmocka_unit_test(test_key_generate_rejects_invalid_type),
                cmocka_unit_test(test_key_describe_openssl_generated_keys),
                cmocka_unit_test(test_key_public_equal_compares_public_parts_only),
                cmocka_unit_test(test_key_public_equal_different_types_or_null),
                cmocka_unit_test(test_key_from_spki_matches_openssl_decoder),
                cmocka_unit_test(test_key_from_spki_compressed_point),
                cmocka_unit_test(test_key_from_spki_refuses_bad_points),
        };
        return cmocka_run_group_tests(tests, test_tmpdir_setup, test_tmpdir_teardown);
}
