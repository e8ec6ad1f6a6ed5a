/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "shared/ari.h"
#include "shared/cert.h"
#include "shared/errors.h"
#include "shared/fileio.h"
#include "shared/macro.h"
#include "shared/pem.h"
#include "shared/strv.h"
#include "tests/unit/test-util.h"

#define LEAF_SERIAL "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
#define LEAF_SERIAL_HEX "a1b2c3d4e5f60718293a4b5c6d7e8f9"   /* no leading zero */
#define INTER_SERIAL "8badf00d"   /* high bit set: DER adds a 0x00 */

static X509 *load(const char *name) {
        _cleanup_free_ char *path = test_path(name);
        X509 *cert = NULL;

        assert_int_equal(cert_load_file(path, &cert), 0);
        return cert;
}

/* Output of an openssl command, first line, with "prefix" removed. */
static char *openssl_field(const char *cmd, const char *prefix) {
        _cleanup_free_ char *out = NULL;

        assert_int_equal(test_run("%s > field.txt", cmd), 0);
        out = test_read_file("field.txt", NULL);
        assert_true(strncmp(out, prefix, strlen(prefix)) == 0);
        out[strcspn(out, "\n")] = '\0';
        return strdup(out + strlen(prefix));
}

static int setup(void **state) {
        assert_int_equal(test_tmpdir_setup(state), 0);

        test_write_text("ca.ext",
                        "[v3_inter]\n"
                        "basicConstraints = critical,CA:TRUE,pathlen:0\n"
                        "keyUsage = critical,keyCertSign,cRLSign\n"
                        "subjectKeyIdentifier = hash\n"
                        "authorityKeyIdentifier = keyid:always\n"
                        "[v3_leaf]\n"
                        "basicConstraints = CA:FALSE\n"
                        "keyUsage = critical,digitalSignature,keyEncipherment\n"
                        "extendedKeyUsage = serverAuth,clientAuth,1.2.3.4.5\n"
                        "subjectAltName = DNS:Leaf.Example,IP:192.0.2.1,DNS:www.leaf.example,IP:2001:db8::1,"
                        "email:admin@leaf.example,URI:https://leaf.example/\n"
                        "subjectKeyIdentifier = hash\n"
                        "authorityKeyIdentifier = keyid:always\n");

        /* Root: EC P-384, self-signed, no keyUsage extension. */
        assert_int_equal(test_run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes "
                                  "-keyout root.key -out root.pem -subj '/O=Test/CN=Test Root' -days 3650 "
                                  "-set_serial 0x01 2>/dev/null"), 0);
        /* Intermediate: RSA 2048. */
        assert_int_equal(test_run("openssl req -new -newkey rsa:2048 -nodes -keyout inter.key "
                                  "-subj '/O=Test/CN=Test Intermediate' -out inter.csr 2>/dev/null && "
                                  "openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key "
                                  "-set_serial 0x" INTER_SERIAL " -days 1825 -extfile ca.ext -extensions v3_inter "
                                  "-out inter.pem 2>/dev/null"), 0);
        /* Leaf: EC P-256. */
        assert_int_equal(test_run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                                  "-keyout leaf.key -subj '/O=Test/CN=Leaf.Example' -out leaf.csr 2>/dev/null && "
                                  "openssl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key "
                                  "-set_serial 0x" LEAF_SERIAL " -days 90 -extfile ca.ext -extensions v3_leaf "
                                  "-out leaf.pem 2>/dev/null"), 0);
        /* Same name as the intermediate, different key. */
        assert_int_equal(test_run("openssl req -x509 -newkey rsa:2048 -nodes -keyout fake.key -out fake.pem "
                                  "-subj '/O=Test/CN=Test Intermediate' -days 10 2>/dev/null"), 0);
        /* Serial zero. */
        assert_int_equal(test_run("openssl req -x509 -newkey ed25519 -nodes -keyout zero.key -out zero.pem "
                                  "-subj /CN=zero -days 1 -set_serial 0 2>/dev/null"), 0);
        return 0;
}

static void assert_strv(char **l, const char *const *expected, size_t n) {
        assert_int_equal(strv_length(l), n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(l[i], expected[i]);
}

static int64_t openssl_date(const char *file, const char *which) {
        _cleanup_free_ char *cmd = NULL, *prefix = NULL, *date = NULL;
        struct tm tm = {};
        const char *end;

        assert_true(asprintf(&cmd, "openssl x509 -in %s -noout -%sdate", file, which) > 0);
        assert_true(asprintf(&prefix, "not%s=", strcmp(which, "start") == 0 ? "Before" : "After") > 0);
        date = openssl_field(cmd, prefix);
        end = strptime(date, "%b %d %H:%M:%S %Y GMT", &tm);
        assert_non_null(end);
        assert_string_equal(end, "");
        return (int64_t) timegm(&tm);
}

static void hex_to_bytes(const char *hex, uint8_t *out, size_t *ret_n) {
        size_t n = strlen(hex) / 2;

        for (size_t i = 0; i < n; i++)
                assert_int_equal(sscanf(hex + 2 * i, "%2hhx", &out[i]), 1);
        *ret_n = n;
}

static void assert_ski_is_key_hash(X509 *cert, const CertInfo *info) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        /* "subjectKeyIdentifier = hash": SHA-1 of the subjectPublicKey BIT STRING (RFC 5280 §4.2.1.2). */
        assert_int_equal(X509_pubkey_digest(cert, EVP_sha1(), md, &n), 1);
        assert_non_null(info->ski);
        assert_int_equal(info->ski_size, n);
        assert_memory_equal(info->ski, md, n);
}

static void test_cert_inspect_leaf(void **state) {
        _cleanup_(X509_freep) X509 *leaf = load("leaf.pem"), *inter = load("inter.pem");
        _cleanup_(cert_info_freep) CertInfo *info = NULL, *inter_info = NULL;
        _cleanup_free_ char *serial_cli = NULL, *subject_cli = NULL, *issuer_cli = NULL, *hex = NULL;
        uint8_t serial[32];
        size_t serial_size;
        int64_t nb, na;

        assert_int_equal(cert_inspect(leaf, &info), 0);
        assert_int_equal(cert_inspect(inter, &inter_info), 0);

        /* Serial: what we set, what openssl prints, and the INTEGER content octets. */
        assert_string_equal(info->serial_hex, LEAF_SERIAL_HEX);
        serial_cli = openssl_field("openssl x509 -in leaf.pem -noout -serial", "serial=");
        for (char *p = serial_cli; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        assert_string_equal(serial_cli, LEAF_SERIAL);
        assert_string_equal(info->serial_hex, serial_cli + 1);
        hex_to_bytes(LEAF_SERIAL, serial, &serial_size);
        assert_int_equal(info->serial_size, serial_size);
        assert_memory_equal(info->serial, serial, serial_size);
        assert_int_equal(cert_serial_hex(leaf, &hex), 0);
        assert_string_equal(hex, LEAF_SERIAL_HEX);

        subject_cli = openssl_field("openssl x509 -in leaf.pem -noout -subject -nameopt RFC2253", "subject=");
        issuer_cli = openssl_field("openssl x509 -in leaf.pem -noout -issuer -nameopt RFC2253", "issuer=");
        assert_string_equal(info->subject, "CN=Leaf.Example,O=Test");
        assert_string_equal(info->subject, subject_cli);
        assert_string_equal(info->issuer, "CN=Test Intermediate,O=Test");
        assert_string_equal(info->issuer, issuer_cli);
        assert_string_equal(info->common_name, "Leaf.Example");

        assert_strv(info->dns, (const char *const[]) { "leaf.example", "www.leaf.example" }, 2);
        assert_strv(info->ips, (const char *const[]) { "192.0.2.1", "2001:db8::1" }, 2);
        assert_strv(info->emails, (const char *const[]) { "admin@leaf.example" }, 1);
        assert_strv(info->uris, (const char *const[]) { "https://leaf.example/" }, 1);

        nb = openssl_date("leaf.pem", "start");
        na = openssl_date("leaf.pem", "end");
        assert_int_equal(info->not_before, nb);
        assert_int_equal(info->not_after, na);
        assert_int_equal(info->not_after - info->not_before, 90 * 86400);
        /* Issued just now (setup ran moments ago). */
        assert_true(llabs((long long) (info->not_before - (int64_t) time(NULL))) < 600);

        /* AKI is the issuer's SKI. */
        assert_non_null(info->aki);
        assert_int_equal(info->aki_size, inter_info->ski_size);
        assert_memory_equal(info->aki, inter_info->ski, info->aki_size);
        assert_ski_is_key_hash(leaf, info);

        assert_int_equal(info->key_usage, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
        assert_strv(info->ekus, (const char *const[]) { "serverAuth", "clientAuth", "1.2.3.4.5" }, 3);
        assert_false(info->is_ca);

        assert_int_equal(info->key.algorithm, KEY_ALG_EC);
        assert_int_equal(info->key.bits, 256);
        assert_string_equal(info->key.curve, "P-256");
}

static void test_cert_inspect_intermediate(void **state) {
        _cleanup_(X509_freep) X509 *inter = load("inter.pem"), *root = load("root.pem");
        _cleanup_(cert_info_freep) CertInfo *info = NULL, *root_info = NULL;
        static const uint8_t serial[] = { 0x00, 0x8b, 0xad, 0xf0, 0x0d };

        assert_int_equal(cert_inspect(inter, &info), 0);
        assert_int_equal(cert_inspect(root, &root_info), 0);

        assert_string_equal(info->serial_hex, INTER_SERIAL);
        /* As ARI wants it: the content octets with the sign-padding 0x00. */
        assert_int_equal(info->serial_size, sizeof(serial));
        assert_memory_equal(info->serial, serial, sizeof(serial));
        {
                _cleanup_free_ char *id = NULL, *id_parts = NULL;
                assert_int_equal(ari_cert_id(inter, &id), 0);
                assert_int_equal(ari_cert_id_from_parts(info->aki, info->aki_size, info->serial,
                                                        info->serial_size, &id_parts), 0);
                assert_string_equal(id, id_parts);
        }

        assert_string_equal(info->subject, "CN=Test Intermediate,O=Test");
        assert_string_equal(info->issuer, "CN=Test Root,O=Test");
        assert_null(info->dns);
        assert_null(info->ips);
        assert_null(info->emails);
        assert_null(info->uris);
        assert_null(info->ekus);
        assert_true(info->is_ca);
        assert_int_equal(info->key_usage, KU_KEY_CERT_SIGN | KU_CRL_SIGN);
        assert_int_equal(info->not_after - info->not_before, 1825 * 86400);
        assert_int_equal(info->not_after, openssl_date("inter.pem", "end"));

        assert_non_null(info->aki);
        assert_int_equal(info->aki_size, root_info->ski_size);
        assert_memory_equal(info->aki, root_info->ski, info->aki_size);
        assert_ski_is_key_hash(inter, info);

        assert_int_equal(info->key.algorithm, KEY_ALG_RSA);
        assert_int_equal(info->key.bits, 2048);
        assert_null(info->key.curve);
}

static void test_cert_inspect_root(void **state) {
        _cleanup_(X509_freep) X509 *root = load("root.pem");
        _cleanup_(cert_info_freep) CertInfo *info = NULL;

        assert_int_equal(cert_inspect(root, &info), 0);
        assert_string_equal(info->serial_hex, "1");
        assert_int_equal(info->serial_size, 1);
        assert_int_equal(info->serial[0], 0x01);
        assert_string_equal(info->subject, info->issuer);
        assert_string_equal(info->common_name, "Test Root");
        assert_true(info->is_ca);
        assert_int_equal(info->key_usage, UINT32_MAX);
        assert_int_equal(info->not_after - info->not_before, 3650 * 86400);
        assert_int_equal(info->key.algorithm, KEY_ALG_EC);
        assert_int_equal(info->key.bits, 384);
        assert_string_equal(info->key.curve, "P-384");
        assert_ski_is_key_hash(root, info);
}

static void test_cert_serial_zero(void **state) {
        _cleanup_(X509_freep) X509 *zero = load("zero.pem");
        _cleanup_(cert_info_freep) CertInfo *info = NULL;
        _cleanup_free_ char *hex = NULL;

        assert_int_equal(cert_serial_hex(zero, &hex), 0);
        assert_string_equal(hex, "0");
        assert_int_equal(cert_inspect(zero, &info), 0);
        assert_string_equal(info->serial_hex, "0");
        assert_int_equal(info->serial_size, 1);
        assert_int_equal(info->serial[0], 0x00);
        assert_int_equal(info->key.algorithm, KEY_ALG_ED25519);
        assert_int_equal(info->key.bits, 255);
}

static STACK_OF(X509) *chain_of(const char *const *names, size_t n) {
        STACK_OF(X509) *chain = sk_X509_new_null();

        assert_non_null(chain);
        for (size_t i = 0; i < n; i++)
                assert_true(sk_X509_push(chain, load(names[i])) > 0);
        return chain;
}

static void check_order(const char *const *names, size_t n, int expected, size_t expected_index) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = chain_of(names, n);
        size_t bad = SIZE_MAX;

        assert_int_equal(chain_check_order(chain, &bad), expected);
        if (expected < 0)
                assert_int_equal(bad, expected_index);
        else
                assert_int_equal(bad, SIZE_MAX);
        assert_int_equal(ERR_peek_error(), 0);
}

static void test_chain_check_order(void **state) {
        check_order((const char *const[]) { "leaf.pem", "inter.pem", "root.pem" }, 3, 0, 0);
        check_order((const char *const[]) { "leaf.pem", "inter.pem" }, 2, 0, 0);
        check_order((const char *const[]) { "leaf.pem" }, 1, 0, 0);

        check_order((const char *const[]) { "inter.pem", "leaf.pem" }, 2, -CF_E_MALFORMED, 0);
        check_order((const char *const[]) { "leaf.pem", "root.pem" }, 2, -CF_E_MALFORMED, 0);
        check_order((const char *const[]) { "leaf.pem", "inter.pem", "inter.pem" }, 3, -CF_E_MALFORMED, 1);
        check_order((const char *const[]) { "leaf.pem", "inter.pem", "leaf.pem" }, 3, -CF_E_MALFORMED, 1);
        /* The issuer's name matches but its key did not sign the leaf. */
        check_order((const char *const[]) { "leaf.pem", "fake.pem" }, 2, -CF_E_MALFORMED, 0);
}

static void test_chain_check_order_from_pem_file(void **state) {
        _cleanup_free_ char *good = test_path("fullchain.pem"), *reversed = test_path("reversed.pem");
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL, *wrong = NULL;
        size_t bad = SIZE_MAX;

        assert_int_equal(test_run("cat leaf.pem inter.pem > fullchain.pem && "
                                  "cat inter.pem leaf.pem > reversed.pem"), 0);
        assert_int_equal(chain_load_file(good, &chain), 0);
        assert_int_equal(sk_X509_num(chain), 2);
        assert_int_equal(chain_check_order(chain, &bad), 0);

        assert_int_equal(chain_load_file(reversed, &wrong), 0);
        assert_int_equal(chain_check_order(wrong, NULL), -CF_E_MALFORMED);
}

static void test_cert_inspect_rejects_broken_extension(void **state) {
        _cleanup_(X509_freep) X509 *leaf = load("leaf.pem"), *broken = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        CertInfo *info = NULL;
        uint8_t *p;
        size_t len;

        /* Corrupt the SAN extension's inner SEQUENCE tag; the outer DER stays parseable since the
         * extension value is an OCTET STRING. */
        assert_int_equal(der_write_cert(leaf, &der, &len), 0);
        p = memmem(der, len, "\x06\x03\x55\x1d\x11\x04", 6);
        assert_non_null(p);
        assert_int_equal(p[7], 0x30);
        p[7] = 0x31;
        assert_int_equal(der_read_cert(der, len, &broken), 0);
        assert_int_equal(cert_inspect(broken, &info), -EBADMSG);
        assert_null(info);
        assert_int_equal(ERR_peek_error(), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cert_inspect_leaf),
                cmocka_unit_test(test_cert_inspect_intermediate),
                cmocka_unit_test(test_cert_inspect_root),
                cmocka_unit_test(test_cert_serial_zero),
                cmocka_unit_test(test_chain_check_order),
                cmocka_unit_test(test_chain_check_order_from_pem_file),
                cmocka_unit_test(test_cert_inspect_rejects_broken_extension),
        };

        return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
