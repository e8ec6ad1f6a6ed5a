/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "shared/ari.h"
#include "shared/errors.h"
#include "shared/macro.h"

/* RFC 9773 §4.1. */
static const uint8_t rfc_aki[] = {
        0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
        0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4,
};
static const uint8_t rfc_serial[] = { 0x00, 0x87, 0x65, 0x43, 0x21 };
#define RFC_CERT_ID "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"

/* A signed certificate with the given AKI keyIdentifier (or none) and serial (big-endian
 * magnitude), passed through DER so that it is what a peer would send. */
static X509 *make_cert(const uint8_t *aki, size_t aki_size, const uint8_t *serial, size_t serial_size) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");
        _cleanup_(X509_freep) X509 *x = X509_new();
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *sn = NULL;
        _cleanup_free_ unsigned char *der = NULL;
        const unsigned char *p;
        X509_NAME *name;
        int der_len;

        assert_non_null(key);
        assert_non_null(x);
        assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);

        bn = BN_bin2bn(serial, (int) serial_size, NULL);
        assert_non_null(bn);
        sn = BN_to_ASN1_INTEGER(bn, NULL);
        assert_non_null(sn);
        assert_int_equal(X509_set_serialNumber(x, sn), 1);

        name = X509_get_subject_name(x);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                    (const unsigned char *) "ari.test", -1, -1, 0), 1);
        assert_int_equal(X509_set_issuer_name(x, name), 1);
        assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
        assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
        assert_int_equal(X509_set_pubkey(x, key), 1);

        if (aki) {
                _cleanup_(AUTHORITY_KEYID_freep) AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
                assert_non_null(akid);
                akid->keyid = ASN1_OCTET_STRING_new();
                assert_non_null(akid->keyid);
                assert_int_equal(ASN1_OCTET_STRING_set(akid->keyid, aki, (int) aki_size), 1);
                assert_int_equal(X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0), 1);
        }
        assert_true(X509_sign(x, key, EVP_sha256()) > 0);

        der_len = i2d_X509(x, &der);
        assert_true(der_len > 0);
        p = der;
        return d2i_X509(NULL, &p, der_len);
}

static void test_ari_cert_id_from_parts_rfc9773_example(void **state) {
        _cleanup_free_ char *id = NULL;

        assert_int_equal(ari_cert_id_from_parts(rfc_aki, sizeof rfc_aki, rfc_serial, sizeof rfc_serial, &id), 0);
        assert_string_equal(id, RFC_CERT_ID);
}

static void test_ari_cert_id_of_real_certificate_rfc9773_example(void **state) {
        /* The serial is 0x87654321: its top bit is set, so DER adds the 0x00 the CertID keeps. */
        _cleanup_(X509_freep) X509 *cert = make_cert(rfc_aki, sizeof rfc_aki, rfc_serial + 1, sizeof rfc_serial - 1);
        _cleanup_free_ char *id = NULL;

        assert_non_null(cert);
        assert_int_equal(ari_cert_id(cert, &id), 0);
        assert_string_equal(id, RFC_CERT_ID);
}

static void test_ari_cert_id_of_serial_without_sign_byte(void **state) {
        static const uint8_t aki[] = { 0xfb, 0xff, 0x01 };
        static const uint8_t serial[] = { 0x01, 0x23, 0x45 };
        _cleanup_(X509_freep) X509 *cert = make_cert(aki, sizeof aki, serial, sizeof serial);
        _cleanup_free_ char *id = NULL;

        assert_non_null(cert);
        assert_int_equal(ari_cert_id(cert, &id), 0);
        /* base64url(fb ff 01) = "-_8B", base64url(01 23 45) = "ASNF". */
        assert_string_equal(id, "-_8B.ASNF");
}

static void test_ari_cert_id_without_aki_is_enoent(void **state) {
        static const uint8_t serial[] = { 0x42 };
        _cleanup_(X509_freep) X509 *cert = make_cert(NULL, 0, serial, sizeof serial);
        char *id = NULL;

        assert_non_null(cert);
        assert_int_equal(ari_cert_id(cert, &id), -ENOENT);
        assert_null(id);
}

static void test_ari_cert_id_parse_rfc9773_example(void **state) {
        _cleanup_free_ uint8_t *aki = NULL, *serial = NULL;
        size_t aki_size, serial_size;

        assert_int_equal(ari_cert_id_parse(RFC_CERT_ID, &aki, &aki_size, &serial, &serial_size), 0);
        assert_int_equal(aki_size, sizeof rfc_aki);
        assert_memory_equal(aki, rfc_aki, sizeof rfc_aki);
        assert_int_equal(serial_size, sizeof rfc_serial);
        assert_memory_equal(serial, rfc_serial, sizeof rfc_serial);
}

static void test_ari_cert_id_parse_rejects_malformed(void **state) {
        static const char *const bad[] = {
                "",
                ".",
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ",               /* no serial */
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ.",
                ".AIdlQyE",
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE.",      /* two dots */
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ..AIdlQyE",
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE",      /* padding */
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE=",
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl+yE",       /* base64, not base64url */
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyF",       /* non-zero trailing bits */
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AAE",           /* 00 01: non-minimal INTEGER */
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ.__8",           /* ff ff: non-minimal INTEGER */
                " aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint8_t *aki = NULL, *serial = NULL;
                size_t aki_size = 0, serial_size = 0;

                if (ari_cert_id_parse(bad[i], &aki, &aki_size, &serial, &serial_size) != -CF_E_MALFORMED)
                        fail_msg("accepted '%s'", bad[i]);
                assert_null(aki);
                assert_null(serial);
        }
}

static void test_ari_cert_id_parse_rejects_overlong(void **state) {
        _cleanup_free_ char *s = malloc(4096);
        uint8_t *aki = NULL, *serial = NULL;
        size_t aki_size, serial_size;

        assert_non_null(s);
        memset(s, 'A', 4000);
        memcpy(s + 2000, ".AQ", 3);
        s[4000] = 0;
        assert_int_equal(ari_cert_id_parse(s, &aki, &aki_size, &serial, &serial_size), -CF_E_MALFORMED);
}

static void test_ari_cert_id_round_trip(void **state) {
        static const uint8_t serial[] = { 0x7f, 0x00, 0xff };
        static const uint8_t aki[] = { 0x01, 0x02, 0x03, 0x04, 0x05 };
        _cleanup_free_ char *id = NULL;
        _cleanup_free_ uint8_t *a = NULL, *s = NULL;
        size_t a_size, s_size;

        assert_int_equal(ari_cert_id_from_parts(aki, sizeof aki, serial, sizeof serial, &id), 0);
        assert_int_equal(ari_cert_id_parse(id, &a, &a_size, &s, &s_size), 0);
        assert_int_equal(a_size, sizeof aki);
        assert_memory_equal(a, aki, sizeof aki);
        assert_int_equal(s_size, sizeof serial);
        assert_memory_equal(s, serial, sizeof serial);
}

static char *read_test_data(const char *name, size_t *ret_size) {
        const char *dir = getenv("CERTFLEET_TEST_DATA");
        char path[4096];
        FILE *f;
        char *buf;
        size_t n;

        assert_non_null(dir);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        f = fopen(path, "re");
        assert_non_null(f);
        buf = malloc(65536);
        assert_non_null(buf);
        n = fread(buf, 1, 65535, f);
        fclose(f);
        buf[n] = 0;
        *ret_size = n;
        return buf;
}

static void test_ari_parse_renewal_info_rfc9773_example(void **state) {
        size_t size;
        _cleanup_free_ char *body = read_test_data("ari-rfc9773-renewal-info.json", &size);
        AriRenewalInfo info = {};

        assert_int_equal(ari_parse_renewal_info(body, size, &info), 0);
        /* date -u -d 2025-01-02T04:00:00Z +%s; date -u -d 2025-01-03T04:00:00Z +%s */
        assert_int_equal(info.window_start, 1735790400);
        assert_int_equal(info.window_end, 1735876800);
        assert_string_equal(info.explanation_url, "https://acme.example.com/docs/ari");
        ari_renewal_info_done(&info);
        assert_null(info.explanation_url);
}

static void test_ari_parse_renewal_info_without_explanation(void **state) {
        const char *body = "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00+01:00\",\"end\":\"2025-01-02T04:00:01+01:00\"}}";
        AriRenewalInfo info = {};

        assert_int_equal(ari_parse_renewal_info(body, strlen(body), &info), 0);
        assert_int_equal(info.window_start, 1735790400 - 3600);
        assert_int_equal(info.window_end, 1735790400 - 3600 + 1);
        assert_null(info.explanation_url);
        ari_renewal_info_done(&info);
}

static void test_ari_parse_renewal_info_rejects_invalid(void **state) {
        static const struct {
                const char *body;
                int error;
        } bad[] = {
                /* end before start, and equal (RFC 9773 §4.2: "equals or precedes" is invalid) */
                { "{\"suggestedWindow\":{\"start\":\"2025-01-03T04:00:00Z\",\"end\":\"2025-01-02T04:00:00Z\"}}", -EBADMSG },
                { "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\",\"end\":\"2025-01-02T04:00:00Z\"}}", -EBADMSG },
                /* missing fields */
                { "{}", -EBADMSG },
                { "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\"}}", -EBADMSG },
                { "{\"suggestedWindow\":{\"end\":\"2025-01-02T04:00:00Z\"}}", -EBADMSG },
                { "{\"explanationURL\":\"https://x\"}", -EBADMSG },
                /* wrong types */
                { "{\"suggestedWindow\":[]}", -EBADMSG },
                { "{\"suggestedWindow\":{\"start\":1735790400,\"end\":1735876800}}", -EBADMSG },
                { "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\",\"end\":\"2025-01-03T04:00:00Z\"},\"explanationURL\":7}", -EBADMSG },
                /* bad times */
                { "{\"suggestedWindow\":{\"start\":\"2025-01-02\",\"end\":\"2025-01-03T04:00:00Z\"}}", -EBADMSG },
                { "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\",\"end\":\"2025-02-30T04:00:00Z\"}}", -EBADMSG },
                { "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00\",\"end\":\"2025-01-03T04:00:00Z\"}}", -EBADMSG },
                /* not JSON, not an object, trailing garbage */
                { "", -EBADMSG },
                { "not json", -EBADMSG },
                { "[1,2]", -EBADMSG },
                { "\"suggestedWindow\"", -EBADMSG },
                { "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\",\"end\":\"2025-01-03T04:00:00Z\"}} x", -EBADMSG },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                AriRenewalInfo info = { .window_start = 42 };
                int r = ari_parse_renewal_info(bad[i].body, strlen(bad[i].body), &info);
                if (r != bad[i].error)
                        fail_msg("'%s': got %d, expected %d", bad[i].body, r, bad[i].error);
                assert_int_equal(info.window_start, 42);
        }
}

static void test_ari_parse_renewal_info_rejects_oversized(void **state) {
        /* A valid document padded with whitespace past the limit. */
        const char *doc = "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\",\"end\":\"2025-01-03T04:00:00Z\"}}";
        size_t len = ARI_RESPONSE_MAX + 1;
        _cleanup_free_ char *body = malloc(len);
        AriRenewalInfo info = {};

        assert_non_null(body);
        memset(body, ' ', len);
        memcpy(body, doc, strlen(doc));
        assert_int_equal(ari_parse_renewal_info(body, len, &info), -E2BIG);
        /* Exactly at the limit is fine. */
        assert_int_equal(ari_parse_renewal_info(body, len - 1, &info), 0);
        ari_renewal_info_done(&info);
}

static void test_ari_pick_renewal_time_uniform_in_window(void **state) {
        const cf_time_t start = 1735790400, end = 1735876800, mid = start + (end - start) / 2;
        unsigned low = 0, high = 0, quarters[4] = {};
        const unsigned draws = 4000;

        for (unsigned i = 0; i < draws; i++) {
                cf_time_t t;
                assert_int_equal(ari_pick_renewal_time(start, end, &t), 0);
                assert_true(t >= start && t <= end);
                if (t < mid)
                        low++;
                else
                        high++;
                quarters[MIN((size_t) ((t - start) * 4 / (end - start)), (size_t) 3)]++;
        }
        /* Binomial(4000, 1/2): sd ≈ 32; a 250 margin is ~8 sd, so this only fails when the draw is
         * not uniform (always the start, always the end, only one half). */
        assert_true(low > draws / 2 - 250 && low < draws / 2 + 250);
        assert_true(high > draws / 2 - 250 && high < draws / 2 + 250);
        for (size_t q = 0; q < 4; q++)
                assert_true(quarters[q] > draws / 4 - 200 && quarters[q] < draws / 4 + 200);
}

static void test_ari_pick_renewal_time_edges(void **state) {
        bool seen[2] = {};
        cf_time_t t = 7;

        assert_int_equal(ari_pick_renewal_time(100, 100, &t), 0);
        assert_int_equal(t, 100);
        /* Both ends of the closed interval are reachable. */
        for (int i = 0; i < 200 && !(seen[0] && seen[1]); i++) {
                assert_int_equal(ari_pick_renewal_time(100, 101, &t), 0);
                assert_true(t == 100 || t == 101);
                seen[t - 100] = true;
        }
        assert_true(seen[0] && seen[1]);

        t = 7;
        assert_int_equal(ari_pick_renewal_time(101, 100, &t), -EINVAL);
        assert_int_equal(t, 7);

        /* The widest window does not overflow. */
        assert_int_equal(ari_pick_renewal_time(INT64_MIN + 1, INT64_MAX, &t), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ari_cert_id_from_parts_rfc9773_example),
                cmocka_unit_test(test_ari_cert_id_of_real_certificate_rfc9773_example),
                cmocka_unit_test(test_ari_cert_id_of_serial_without_sign_byte),
                cmocka_unit_test(test_ari_cert_id_without_aki_is_enoent),
                cmocka_unit_test(test_ari_cert_id_parse_rfc9773_example),
                cmocka_unit_test(test_ari_cert_id_parse_rejects_malformed),
                cmocka_unit_test(test_ari_cert_id_parse_rejects_overlong),
                cmocka_unit_test(test_ari_cert_id_round_trip),
                cmocka_unit_test(test_ari_parse_renewal_info_rfc9773_example),
                cmocka_unit_test(test_ari_parse_renewal_info_without_explanation),
                cmocka_unit_test(test_ari_parse_renewal_info_rejects_invalid),
                cmocka_unit_test(test_ari_parse_renewal_info_rejects_oversized),
                cmocka_unit_test(test_ari_pick_renewal_time_uniform_in_window),
                cmocka_unit_test(test_ari_pick_renewal_time_edges),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
