/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "shared/csr.h"
#include "shared/errors.h"
#include "shared/fileio.h"
#include "shared/macro.h"
#include "shared/pem.h"
#include "shared/strv.h"
#include "tests/unit/test-util.h"

static void save_csr(X509_REQ *csr, const char *name) {
        _cleanup_free_ char *pem = NULL;

        assert_int_equal(pem_write_csr(csr, &pem), 0);
        test_write_text(name, pem);
}

static X509_REQ *load_csr(const char *name) {
        _cleanup_free_ char *pem = test_read_file(name, NULL);
        X509_REQ *csr = NULL;

        assert_int_equal(pem_read_csr(pem, strlen(pem), &csr), 0);
        return csr;
}

static void assert_strv(char **l, const char *const *expected, size_t n) {
        assert_int_equal(strv_length(l), n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(l[i], expected[i]);
}

/* Builds a CSR with every kind of name, has the openssl CLI check it, and reads it back. */
static void check_build_for_key(EVP_PKEY *key, const char *sigalg, KeyAlgorithm alg, int bits) {
        char *dns[] = { "a.example", "Www.A.Example", NULL };
        char *ips[] = { "10.0.0.1", "2001:0db8:0:0::1", NULL };
        char *emails[] = { "admin@a.example", NULL };
        char *uris[] = { "spiffe://a.example/svc/web", NULL };
        static const char *const dns_out[] = { "a.example", "www.a.example" };
        static const char *const ips_out[] = { "10.0.0.1", "2001:db8::1" };
        const CsrRequest req = {
                .key = key,
                .dns = dns,
                .ips = ips,
                .emails = emails,
                .uris = uris,
                .challenge_password = "s3cret OTP",
        };
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL, *back = NULL;
        _cleanup_(csr_info_freep) CsrInfo *info = NULL;
        _cleanup_free_ char *text = NULL, *asn1 = NULL;

        assert_int_equal(csr_build(&req, &csr), 0);
        save_csr(csr, "built.csr");

        assert_int_equal(test_run("openssl req -in built.csr -noout -verify 2>/dev/null"), 0);
        assert_int_equal(test_run("openssl req -in built.csr -noout -text > built.txt"), 0);
        assert_int_equal(test_run("openssl asn1parse -in built.csr > built.asn1"), 0);
        text = test_read_file("built.txt", NULL);
        asn1 = test_read_file("built.asn1", NULL);

        assert_non_null(strstr(text, "Subject: CN = a.example\n"));
        assert_non_null(strstr(text, "DNS:a.example, DNS:Www.A.Example, IP Address:10.0.0.1, "
                                     "IP Address:2001:DB8:0:0:0:0:0:1, email:admin@a.example, "
                                     "URI:spiffe://a.example/svc/web"));
        assert_non_null(strstr(text, "challengePassword"));
        assert_non_null(strstr(text, ":s3cret OTP"));
        assert_non_null(strstr(text, sigalg));
        /* A subject is present, so the SAN extension is not critical. */
        assert_null(strstr(text, "Alternative Name: critical"));
        assert_non_null(strstr(asn1, "PRINTABLESTRING   :s3cret OTP"));

        back = load_csr("built.csr");
        assert_int_equal(csr_inspect(back, &info), 0);
        assert_string_equal(info->subject, "CN=a.example");
        assert_string_equal(info->common_name, "a.example");
        assert_strv(info->dns, dns_out, 2);
        assert_strv(info->ips, ips_out, 2);
        assert_strv(info->emails, (const char *const[]) { "admin@a.example" }, 1);
        assert_strv(info->uris, (const char *const[]) { "spiffe://a.example/svc/web" }, 1);
        assert_string_equal(info->challenge_password, "s3cret OTP");
        assert_int_equal(info->key.algorithm, alg);
        assert_int_equal(info->key.bits, bits);
        assert_int_equal(EVP_PKEY_eq(info->public_key, key), 1);
}

static void test_csr_build_ec_p256(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

        assert_non_null(key);
        check_build_for_key(key, "Signature Algorithm: ecdsa-with-SHA256", KEY_ALG_EC, 256);
}

static void test_csr_build_rsa_2048(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);

        assert_non_null(key);
        check_build_for_key(key, "Signature Algorithm: sha256WithRSAEncryption", KEY_ALG_RSA, 2048);
}

static void test_csr_build_ed25519(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

        assert_non_null(key);
        check_build_for_key(key, "Signature Algorithm: ED25519", KEY_ALG_ED25519, 255);
}

static void test_csr_build_utf8_challenge_password(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        _cleanup_(csr_info_freep) CsrInfo *info = NULL;
        _cleanup_free_ char *asn1 = NULL;
        /* '_' and 'ä' are both outside PrintableString. */
        const CsrRequest req = {
                .key = key,
                .common_name = "Dev Box",
                .challenge_password = "p\xc3\xa4ss_word",
        };

        assert_non_null(key);
        assert_int_equal(csr_build(&req, &csr), 0);
        save_csr(csr, "utf8.csr");
        assert_int_equal(test_run("openssl req -in utf8.csr -noout -verify 2>/dev/null"), 0);
        assert_int_equal(test_run("openssl asn1parse -in utf8.csr > utf8.asn1"), 0);
        asn1 = test_read_file("utf8.asn1", NULL);
        assert_non_null(strstr(asn1, ":challengePassword"));
        assert_non_null(strstr(asn1, "UTF8STRING"));
        assert_null(strstr(asn1, "PRINTABLESTRING"));

        assert_int_equal(csr_inspect(csr, &info), 0);
        assert_string_equal(info->challenge_password, "p\xc3\xa4ss_word");
        assert_string_equal(info->common_name, "Dev Box");
        assert_null(info->dns);
        assert_null(info->ips);
}

static void test_csr_build_long_dns_name_is_not_cn(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        _cleanup_(csr_info_freep) CsrInfo *info = NULL;
        _cleanup_free_ char *text = NULL;
        char long_name[] = "a-label-that-is-long.another-label-that-is-long.service.example.org";
        char *dns[] = { long_name, NULL };
        const CsrRequest req = { .key = key, .dns = dns };

        assert_true(strlen(long_name) > 64);
        assert_int_equal(csr_build(&req, &csr), 0);
        save_csr(csr, "long.csr");
        assert_int_equal(test_run("openssl req -in long.csr -noout -verify 2>/dev/null"), 0);
        assert_int_equal(test_run("openssl req -in long.csr -noout -text > long.txt"), 0);
        text = test_read_file("long.txt", NULL);
        /* Empty subject: RFC 5280 wants the SAN extension critical. */
        assert_non_null(strstr(text, "X509v3 Subject Alternative Name: critical"));

        assert_int_equal(csr_inspect(csr, &info), 0);
        assert_string_equal(info->subject, "");
        assert_null(info->common_name);
        assert_strv(info->dns, (const char *const[]) { long_name }, 1);
        assert_null(info->challenge_password);
}

static void test_csr_build_rejects_bad_input(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        char *bad_ip4[] = { "10.0.0.256", NULL }, *bad_ip[] = { "not-an-ip", NULL };
        char *bad_dns[] = { "has space.example", NULL }, *empty[] = { "", NULL };
        char *utf8_dns[] = { "b\xc3\xbc" "cher.example", NULL };
        char long_pw[300], long_cn[70];
        X509_REQ *csr = NULL;

        memset(long_pw, 'x', sizeof(long_pw) - 1);
        long_pw[sizeof(long_pw) - 1] = 0;
        memset(long_cn, 'c', sizeof(long_cn) - 1);
        long_cn[sizeof(long_cn) - 1] = 0;

        assert_int_equal(csr_build(&(CsrRequest) { .key = NULL }, &csr), -EINVAL);
        assert_int_equal(csr_build(&(CsrRequest) { .key = key, .ips = bad_ip4 }, &csr), -EINVAL);
        assert_int_equal(csr_build(&(CsrRequest) { .key = key, .ips = bad_ip }, &csr), -EINVAL);
        assert_int_equal(csr_build(&(CsrRequest) { .key = key, .dns = bad_dns }, &csr), -EINVAL);
        assert_int_equal(csr_build(&(CsrRequest) { .key = key, .dns = utf8_dns }, &csr), -EINVAL);
        assert_int_equal(csr_build(&(CsrRequest) { .key = key, .emails = empty }, &csr), -EINVAL);
        assert_int_equal(csr_build(&(CsrRequest) { .key = key, .common_name = long_cn }, &csr), -EINVAL);
        assert_int_equal(csr_build(&(CsrRequest) { .key = key, .common_name = "x",
                                                   .challenge_password = long_pw }, &csr), -EINVAL);
        assert_int_equal(csr_build(&(CsrRequest) { .key = key, .common_name = "x",
                                                   .challenge_password = "\xff\xfe" }, &csr), -EINVAL);
        assert_null(csr);
}

static void test_csr_inspect_openssl_generated(void **state) {
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        _cleanup_(csr_info_freep) CsrInfo *info = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *key_pem = NULL;

        /* The attribute needs a config section; the SANs come from -addext. */
        test_write_text("gen.cnf",
                        "[req]\n"
                        "prompt = no\n"
                        "distinguished_name = dn\n"
                        "attributes = attrs\n"
                        "[dn]\n"
                        "O = Example Org\n"
                        "CN = Host.Example\n"
                        "[attrs]\n"
                        "challengePassword = otp-1234\n");
        assert_int_equal(test_run("openssl req -new -config gen.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-384 "
                                  "-nodes -keyout gen.key -out gen.csr "
                                  "-addext 'subjectAltName=DNS:Host.Example,IP:192.0.2.7,DNS:www.host.example,"
                                  "IP:2001:db8::abcd,email:ops@host.example,URI:spiffe://host.example/svc' "
                                  "2>/dev/null"), 0);

        csr = load_csr("gen.csr");
        assert_int_equal(csr_inspect(csr, &info), 0);

        assert_string_equal(info->subject, "CN=Host.Example,O=Example Org");
        assert_string_equal(info->common_name, "Host.Example");
        assert_strv(info->dns, (const char *const[]) { "host.example", "www.host.example" }, 2);
        assert_strv(info->ips, (const char *const[]) { "192.0.2.7", "2001:db8::abcd" }, 2);
        assert_strv(info->emails, (const char *const[]) { "ops@host.example" }, 1);
        assert_strv(info->uris, (const char *const[]) { "spiffe://host.example/svc" }, 1);
        assert_string_equal(info->challenge_password, "otp-1234");
        assert_int_equal(info->key.algorithm, KEY_ALG_EC);
        assert_int_equal(info->key.bits, 384);
        assert_string_equal(info->key.curve, "P-384");

        key_pem = test_read_file("gen.key", NULL);
        assert_int_equal(pem_read_private_key(key_pem, strlen(key_pem), &key), 0);
        assert_int_equal(EVP_PKEY_eq(info->public_key, key), 1);
}

static void test_csr_inspect_rejects_tampered_signature(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        char *dns[] = { "a.example", NULL };
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL, *sig_flipped = NULL, *tbs_flipped = NULL,
                                            *reencoded = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *pem = NULL;
        const ASN1_BIT_STRING *sig = NULL;
        CsrInfo *info = NULL;
        uint8_t *name;
        size_t len;

        assert_int_equal(csr_build(&(CsrRequest) { .key = key, .dns = dns }, &csr), 0);
        assert_int_equal(der_write_csr(csr, &der, &len), 0);

        /* The signature BIT STRING ends the DER: its last byte belongs to the signature value. */
        der[len - 1] ^= 0x01;
        assert_int_equal(der_read_csr(der, len, &sig_flipped), 0);
        X509_REQ_get0_signature(sig_flipped, &sig, NULL);
        assert_non_null(sig);
        assert_int_equal(csr_inspect(sig_flipped, &info), -CF_E_BAD_CSR);
        assert_null(info);
        assert_int_equal(ERR_peek_error(), 0);

        /* Re-encoded through PEM, still refused. */
        assert_int_equal(pem_write_csr(sig_flipped, &pem), 0);
        assert_int_equal(pem_read_csr(pem, strlen(pem), &reencoded), 0);
        assert_int_equal(csr_inspect(reencoded, &info), -CF_E_BAD_CSR);
        der[len - 1] ^= 0x01;

        /* A signed field changed: the CN "a.example" becomes "b.example". */
        name = memmem(der, len, "a.example", 9);
        assert_non_null(name);
        name[0] = 'b';
        assert_int_equal(der_read_csr(der, len, &tbs_flipped), 0);
        assert_int_equal(csr_inspect(tbs_flipped, &info), -CF_E_BAD_CSR);
        assert_null(info);
}

static void check_openssl_csr_rejected(const char *name, const char *san, const char *extra_sections) {
        _cleanup_free_ char *cnf = NULL, *cnf_name = NULL, *csr_name = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        CsrInfo *info = NULL;

        assert_true(asprintf(&cnf, "[req]\nprompt = no\ndistinguished_name = dn\nreq_extensions = ext\n"
                             "[dn]\nCN = ok.example\n[ext]\nsubjectAltName = %s\n%s",
                             san, extra_sections) > 0);
        assert_true(asprintf(&cnf_name, "%s.cnf", name) > 0);
        assert_true(asprintf(&csr_name, "%s.csr", name) > 0);
        test_write_text(cnf_name, cnf);
        assert_int_equal(test_run("openssl req -new -config %s -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                                  "-nodes -keyout %s.key -out %s 2>/dev/null", cnf_name, name, csr_name), 0);
        /* openssl itself is happy with it. */
        assert_int_equal(test_run("openssl req -in %s -noout -verify 2>/dev/null", csr_name), 0);

        csr = load_csr(csr_name);
        assert_int_equal(csr_inspect(csr, &info), -CF_E_BAD_CSR);
        assert_null(info);
}

static void test_csr_inspect_rejects_other_san_types(void **state) {
        check_openssl_csr_rejected("othername", "DNS:ok.example,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:user@realm", "");
        check_openssl_csr_rejected("dirname", "DNS:ok.example,dirName:dir_sect", "[dir_sect]\nCN = Someone\n");
        check_openssl_csr_rejected("rid", "RID:1.2.3.4", "");
}

/* A correctly signed CSR carrying one hand-made SAN entry that openssl would not write. */
static X509_REQ *csr_with_raw_name(int type, const void *data, int len) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = GENERAL_NAMES_new();
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        ASN1_STRING *str = ASN1_STRING_type_new(type == GEN_IPADD ? V_ASN1_OCTET_STRING : V_ASN1_IA5STRING);
        GENERAL_NAME *g = GENERAL_NAME_new();
        X509_REQ *csr = X509_REQ_new();

        assert_non_null(key);
        assert_non_null(gens);
        assert_non_null(exts);
        assert_non_null(str);
        assert_non_null(g);
        assert_non_null(csr);
        assert_int_equal(X509_REQ_set_version(csr, X509_REQ_VERSION_1), 1);
        assert_int_equal(ASN1_STRING_set(str, data, len), 1);
        GENERAL_NAME_set0_value(g, type, str);
        assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
        assert_true(sk_X509_EXTENSION_push(exts, X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)) > 0);
        assert_int_equal(X509_REQ_add_extensions(csr, exts), 1);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        assert_int_equal(X509_REQ_set_pubkey(csr, key), 1);
        assert_true(X509_REQ_sign(csr, key, EVP_sha256()) > 0);
        assert_int_equal(X509_REQ_verify(csr, key), 1);
        return csr;
}

static void test_csr_inspect_rejects_malformed_names(void **state) {
        static const uint8_t ip_and_mask[8] = { 10, 0, 0, 0, 255, 0, 0, 0 };
        static const char nul_dns[] = "good.example\0.evil.example";
        static const char ok_dns[] = "Good.Example";
        CsrInfo *info = NULL;

        {
                /* An iPAddress that is neither 4 nor 16 octets (name-constraint address/mask). */
                _cleanup_(X509_REQ_freep) X509_REQ *csr = csr_with_raw_name(GEN_IPADD, ip_and_mask, 8);
                assert_int_equal(csr_inspect(csr, &info), -CF_E_BAD_CSR);
        }
        {
                _cleanup_(X509_REQ_freep) X509_REQ *csr = csr_with_raw_name(GEN_DNS, nul_dns, sizeof(nul_dns) - 1);
                assert_int_equal(csr_inspect(csr, &info), -CF_E_BAD_CSR);
        }
        {
                _cleanup_(X509_REQ_freep) X509_REQ *csr = csr_with_raw_name(GEN_DNS, "", 0);
                assert_int_equal(csr_inspect(csr, &info), -CF_E_BAD_CSR);
        }
        assert_null(info);
        {
                /* The helper itself makes acceptable CSRs. */
                _cleanup_(X509_REQ_freep) X509_REQ *csr = csr_with_raw_name(GEN_DNS, ok_dns, sizeof(ok_dns) - 1);
                _cleanup_(csr_info_freep) CsrInfo *good = NULL;
                assert_int_equal(csr_inspect(csr, &good), 0);
                assert_strv(good->dns, (const char *const[]) { "good.example" }, 1);
                assert_null(good->common_name);
        }
        assert_int_equal(ERR_peek_error(), 0);
}

static void test_csr_inspect_names_limit(void **state) {
        _cleanup_free_ char *at_limit = NULL, *over = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL, *csr2 = NULL;
        _cleanup_(csr_info_freep) CsrInfo *info = NULL;
        CsrInfo *info2 = NULL;
        size_t n = 0;
        char buf[16];

        at_limit = strdup("");
        for (unsigned i = 0; i < CSR_NAMES_MAX; i++) {
                char *s = NULL;
                assert_true(asprintf(&s, "%s%sDNS:n%u.example", at_limit, i ? "," : "", i) > 0);
                free(at_limit);
                at_limit = s;
        }
        assert_true(asprintf(&over, "%s,DNS:extra.example", at_limit) > 0);

        assert_int_equal(test_run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                                  "-keyout lim.key -subj /CN=n0.example -addext 'subjectAltName=%s' "
                                  "-out lim.csr 2>/dev/null", at_limit), 0);
        assert_int_equal(test_run("openssl req -new -key lim.key -subj /CN=n0.example "
                                  "-addext 'subjectAltName=%s' -out over.csr 2>/dev/null", over), 0);

        csr = load_csr("lim.csr");
        assert_int_equal(csr_inspect(csr, &info), 0);
        n = strv_length(info->dns);
        assert_int_equal(n, CSR_NAMES_MAX);
        snprintf(buf, sizeof(buf), "n%u.example", CSR_NAMES_MAX - 1);
        assert_string_equal(info->dns[n - 1], buf);

        csr2 = load_csr("over.csr");
        assert_int_equal(csr_inspect(csr2, &info2), -CF_E_BAD_CSR);
        assert_null(info2);
}

static void test_csr_inspect_rejects_unsupported_key(void **state) {
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        CsrInfo *info = NULL;

        /* A valid, self-signed request with a key type we do not issue for. */
        assert_int_equal(test_run("openssl req -new -newkey ed448 -nodes -keyout ed448.key -subj /CN=x "
                                  "-out ed448.csr 2>/dev/null"), 0);
        assert_int_equal(test_run("openssl req -in ed448.csr -noout -verify 2>/dev/null"), 0);
        csr = load_csr("ed448.csr");
        assert_int_equal(csr_inspect(csr, &info), -CF_E_BAD_CSR);
        assert_null(info);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_csr_build_ec_p256),
                cmocka_unit_test(test_csr_build_rsa_2048),
                cmocka_unit_test(test_csr_build_ed25519),
                cmocka_unit_test(test_csr_build_utf8_challenge_password),
                cmocka_unit_test(test_csr_build_long_dns_name_is_not_cn),
                cmocka_unit_test(test_csr_build_rejects_bad_input),
                cmocka_unit_test(test_csr_inspect_openssl_generated),
                cmocka_unit_test(test_csr_inspect_rejects_tampered_signature),
                cmocka_unit_test(test_csr_inspect_rejects_other_san_types),
                cmocka_unit_test(test_csr_inspect_rejects_malformed_names),
                cmocka_unit_test(test_csr_inspect_names_limit),
                cmocka_unit_test(test_csr_inspect_rejects_unsupported_key),
        };

        return cmocka_run_group_tests(tests, test_tmpdir_setup, test_tmpdir_teardown);
}
