/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "shared/csr.h"
#include "shared/fileio.h"
#include "shared/macro.h"
#include "shared/pem.h"
#include "tests/unit/test-util.h"

/* A self-signed EC certificate with the given CN, as NAME.pem (and NAME.key, NAME.der). */
static void make_cert(const char *name, const char *cn) {
        assert_int_equal(test_run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                                  "-nodes -keyout %s.key -out %s.pem -subj /CN=%s -days 1 2>/dev/null && "
                                  "openssl x509 -in %s.pem -outform DER -out %s.der",
                                  name, name, cn, name, name), 0);
}

static int setup(void **state) {
        assert_int_equal(test_tmpdir_setup(state), 0);
        make_cert("a", "alpha");
        make_cert("b", "bravo");
        make_cert("c", "charlie");
        assert_int_equal(test_run("openssl req -new -key a.key -subj /CN=req.example "
                                  "-out req.pem && openssl req -in req.pem -outform DER -out req.der"), 0);
        return 0;
}

static char *cert_cn(X509 *cert) {
        char buf[256];

        assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName,
                                              buf, sizeof(buf)) > 0);
        return strdup(buf);
}

static void test_pem_cert_round_trip(void **state) {
        _cleanup_free_ char *pem = NULL, *out = NULL, *der = NULL, *cn = NULL;
        _cleanup_free_ uint8_t *der_out = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL, *cert2 = NULL;
        size_t pem_size, der_size, der_out_size;

        pem = test_read_file("a.pem", &pem_size);
        der = test_read_file("a.der", &der_size);

        assert_int_equal(pem_read_cert(pem, pem_size, &cert), 0);
        cn = cert_cn(cert);
        assert_string_equal(cn, "alpha");

        /* Same bytes out as the openssl CLI wrote. */
        assert_int_equal(pem_write_cert(cert, &out), 0);
        assert_string_equal(out, pem);

        assert_int_equal(der_write_cert(cert, &der_out, &der_out_size), 0);
        assert_int_equal(der_out_size, der_size);
        assert_memory_equal(der_out, der, der_size);

        assert_int_equal(der_read_cert((const uint8_t *) der, der_size, &cert2), 0);
        assert_int_equal(X509_cmp(cert, cert2), 0);
}

static void test_pem_cert_skips_other_blocks(void **state) {
        _cleanup_free_ char *key = NULL, *pem = NULL, *both = NULL, *cn = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;

        /* A combined key+certificate file, as some servers use: the key block is passed over. */
        key = test_read_file("b.key", NULL);
        pem = test_read_file("b.pem", NULL);
        assert_true(asprintf(&both, "some text\n%s%s", key, pem) > 0);

        assert_int_equal(pem_read_cert(both, strlen(both), &cert), 0);
        cn = cert_cn(cert);
        assert_string_equal(cn, "bravo");

        /* And the other way round: the key behind a certificate. */
        free(both);
        assert_true(asprintf(&both, "%s%s", pem, key) > 0);
        assert_int_equal(pem_read_private_key(both, strlen(both), &k), 0);
        assert_int_equal(EVP_PKEY_eq(k, X509_get0_pubkey(cert)), 1);
}

static void test_pem_chain_order_preserved(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *all = NULL, *out = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        const char *expect[] = { "charlie", "alpha", "bravo" };

        a = test_read_file("a.pem", NULL);
        b = test_read_file("b.pem", NULL);
        c = test_read_file("c.pem", NULL);
        assert_true(asprintf(&all, "%s\n%s%s", c, a, b) > 0);

        assert_int_equal(pem_read_chain(all, strlen(all), &chain), 0);
        assert_int_equal(sk_X509_num(chain), 3);
        for (int i = 0; i < 3; i++) {
                _cleanup_free_ char *cn = cert_cn(sk_X509_value(chain, i));
                assert_string_equal(cn, expect[i]);
        }

        assert_int_equal(pem_write_chain(chain, &out), 0);
        free(all);
        assert_true(asprintf(&all, "%s%s%s", c, a, b) > 0);
        assert_string_equal(out, all);
}

static void test_pem_chain_limit(void **state) {
        _cleanup_free_ char *a = NULL, *many = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        STACK_OF(X509) *too_long = NULL;
        size_t len;

        a = test_read_file("a.pem", &len);
        many = malloc(len * (PEM_CHAIN_MAX + 1) + 1);
        assert_non_null(many);
        for (size_t i = 0; i <= PEM_CHAIN_MAX; i++)
                memcpy(many + i * len, a, len);

        assert_int_equal(pem_read_chain(many, len * PEM_CHAIN_MAX, &chain), 0);
        assert_int_equal(sk_X509_num(chain), PEM_CHAIN_MAX);

        assert_int_equal(pem_read_chain(many, len * (PEM_CHAIN_MAX + 1), &too_long), -E2BIG);
        assert_null(too_long);
}

static void assert_key_round_trip(EVP_PKEY *key) {
        _cleanup_free_ char *pem = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *back = NULL;

        assert_int_equal(pem_write_private_key(key, &pem), 0);
        assert_true(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
        assert_int_equal(pem_read_private_key(pem, strlen(pem), &back), 0);
        assert_int_equal(EVP_PKEY_eq(key, back), 1);
        /* The private half survived too: writing it again gives the same PKCS#8. */
        {
                _cleanup_free_ char *again = NULL;
                assert_int_equal(pem_write_private_key(back, &again), 0);
                assert_string_equal(pem, again);
        }
}

static void test_pem_private_key_round_trip(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ec = NULL, *rsa = NULL, *ed = NULL;

        ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        assert_non_null(ec);
        assert_non_null(rsa);
        assert_non_null(ed);

        assert_key_round_trip(ec);
        assert_key_round_trip(rsa);
        assert_key_round_trip(ed);
}

static void test_pem_private_key_reads_traditional_forms(void **state) {
        _cleanup_free_ char *rsa_pem = NULL, *ec_pem = NULL, *p8 = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *rsa = NULL, *ec = NULL, *ref = NULL;

        assert_int_equal(test_run("openssl genrsa -traditional -out rsa-trad.key 2048 2>/dev/null && "
                                  "openssl ec -in a.key -out ec-trad.key 2>/dev/null"), 0);

        rsa_pem = test_read_file("rsa-trad.key", NULL);
        assert_non_null(strstr(rsa_pem, "-----BEGIN RSA PRIVATE KEY-----"));
        assert_int_equal(pem_read_private_key(rsa_pem, strlen(rsa_pem), &rsa), 0);
        assert_true(EVP_PKEY_is_a(rsa, "RSA"));
        assert_int_equal(EVP_PKEY_get_bits(rsa), 2048);

        ec_pem = test_read_file("ec-trad.key", NULL);
        assert_non_null(strstr(ec_pem, "-----BEGIN EC PRIVATE KEY-----"));
        assert_int_equal(pem_read_private_key(ec_pem, strlen(ec_pem), &ec), 0);

        /* The same key as the PKCS#8 file the certificate was made with. */
        p8 = test_read_file("a.key", NULL);
        assert_int_equal(pem_read_private_key(p8, strlen(p8), &ref), 0);
        assert_int_equal(EVP_PKEY_eq(ec, ref), 1);
}

static void test_private_key_save_file_mode_0600(void **state) {
        _cleanup_free_ char *path = test_path("saved.key");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *back = NULL;
        struct stat st;
        mode_t old;

        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        assert_non_null(key);

        /* An existing world-readable file, and the most permissive umask. */
        test_write_file("saved.key", "old", 3);
        assert_int_equal(chmod(path, 0644), 0);
        old = umask(0);
        assert_int_equal(private_key_save_file(path, key, (uid_t) -1, (gid_t) -1), 0);
        umask(old);

        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        assert_int_equal(test_run("openssl pkey -in %s -noout", path), 0);
        assert_int_equal(private_key_load_file(path, &back), 0);
        assert_int_equal(EVP_PKEY_eq(key, back), 1);
}

static void test_cert_and_chain_files(void **state) {
        _cleanup_free_ char *cpath = test_path("saved.crt"), *chpath = test_path("saved-chain.pem"),
                            *derpath = test_path("a.der"), *pem = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL, *back = NULL, *from_der = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL, *chain_back = NULL, *der_chain = NULL;
        struct stat st;
        mode_t old;

        pem = test_read_file("a.pem", NULL);
        assert_int_equal(pem_read_cert(pem, strlen(pem), &cert), 0);

        /* The mode asked for, not what the umask would leave. */
        old = umask(077);
        assert_int_equal(cert_save_file(cpath, cert, 0644, (uid_t) -1, (gid_t) -1), 0);
        umask(old);
        assert_int_equal(stat(cpath, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(test_run("openssl x509 -in %s -noout", cpath), 0);

        assert_int_equal(cert_load_file(cpath, &back), 0);
        assert_int_equal(X509_cmp(cert, back), 0);

        /* DER files load too. */
        assert_int_equal(cert_load_file(derpath, &from_der), 0);
        assert_int_equal(X509_cmp(cert, from_der), 0);
        assert_int_equal(chain_load_file(derpath, &der_chain), 0);
        assert_int_equal(sk_X509_num(der_chain), 1);

        chain = sk_X509_new_null();
        assert_non_null(chain);
        assert_true(sk_X509_push(chain, X509_dup(cert)) > 0);
        {
                _cleanup_free_ char *b = test_read_file("b.pem", NULL);
                X509 *bc = NULL;
                assert_int_equal(pem_read_cert(b, strlen(b), &bc), 0);
                assert_true(sk_X509_push(chain, bc) > 0);
        }
        assert_int_equal(chain_save_file(chpath, chain, 0640, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(stat(chpath, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_int_equal(chain_load_file(chpath, &chain_back), 0);
        assert_int_equal(sk_X509_num(chain_back), 2);
        for (int i = 0; i < 2; i++)
                assert_int_equal(X509_cmp(sk_X509_value(chain, i), sk_X509_value(chain_back, i)), 0);
}

/* The readers leave the request's key encoded (no OpenSSL decoder runs); csr_public_key()
 * decodes it, and the request's signature verifies under it. */
static void assert_csr_key_left_encoded(X509_REQ *csr) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;

        assert_null(X509_REQ_get0_pubkey(csr));
        ERR_clear_error();
        assert_int_equal(csr_public_key(csr, &key), 0);
        assert_int_equal(X509_REQ_verify_ex(csr, key, NULL, NULL), 1);
}

static void test_pem_csr_round_trip(void **state) {
        _cleanup_free_ char *pem = NULL, *der = NULL, *out = NULL, *derpath = test_path("req.der");
        _cleanup_free_ uint8_t *der_out = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL, *csr2 = NULL, *csr3 = NULL;
        size_t der_size, der_out_size;
        char cn[64];

        pem = test_read_file("req.pem", NULL);
        der = test_read_file("req.der", &der_size);

        assert_int_equal(pem_read_csr(pem, strlen(pem), &csr), 0);
        assert_true(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(csr), NID_commonName,
                                              cn, sizeof(cn)) > 0);
        assert_string_equal(cn, "req.example");

        assert_int_equal(pem_write_csr(csr, &out), 0);
        assert_string_equal(out, pem);

        assert_int_equal(der_write_csr(csr, &der_out, &der_out_size), 0);
        assert_int_equal(der_out_size, der_size);
        assert_memory_equal(der_out, der, der_size);

        assert_int_equal(der_read_csr((const uint8_t *) der, der_size, &csr2), 0);
        assert_int_equal(csr_load_file(derpath, &csr3), 0);
        assert_csr_key_left_encoded(csr2);
        assert_csr_key_left_encoded(csr3);
}

static void test_pem_new_certificate_request_label(void **state) {
        _cleanup_free_ char *pem = NULL, *relabelled = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        const char *body, *end;

        /* Netscape-era label some clients still send. */
        pem = test_read_file("req.pem", NULL);
        body = strchr(pem, '\n');
        end = strstr(pem, "-----END CERTIFICATE REQUEST-----");
        assert_non_null(body);
        assert_non_null(end);
        assert_true(asprintf(&relabelled, "-----BEGIN NEW CERTIFICATE REQUEST-----%.*s"
                             "-----END NEW CERTIFICATE REQUEST-----\n",
                             (int) (end - body), body) > 0);

        assert_int_equal(pem_read_csr(relabelled, strlen(relabelled), &csr), 0);
        assert_csr_key_left_encoded(csr);
}

static void assert_all_readers(const char *pem, size_t len, int expected) {
        X509 *cert = NULL;
        STACK_OF(X509) *chain = NULL;
        X509_REQ *csr = NULL;
        EVP_PKEY *key = NULL;

        assert_int_equal(pem_read_cert(pem, len, &cert), expected);
        assert_int_equal(pem_read_chain(pem, len, &chain), expected);
        assert_int_equal(pem_read_csr(pem, len, &csr), expected);
        assert_int_equal(pem_read_private_key(pem, len, &key), expected);
        assert_null(cert);
        assert_null(chain);
        assert_null(csr);
        assert_null(key);
        /* Nothing left behind for the next OpenSSL caller to trip over. */
        assert_int_equal(ERR_peek_error(), 0);
}

static void assert_der_readers(const uint8_t *der, size_t len, int expected) {
        X509 *cert = NULL;
        X509_REQ *csr = NULL;

        assert_int_equal(der_read_cert(der, len, &cert), expected);
        assert_int_equal(der_read_csr(der, len, &csr), expected);
        assert_null(cert);
        assert_null(csr);
        assert_int_equal(ERR_peek_error(), 0);
}

static void test_pem_rejects_garbage_empty_and_oversized(void **state) {
        static const char garbage[] = "this is not PEM at all\n";
        static const char bad_base64[] = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        static const char empty_block[] = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
        _cleanup_free_ char *big = NULL;

        assert_all_readers(garbage, strlen(garbage), -EBADMSG);
        assert_all_readers(bad_base64, strlen(bad_base64), -EBADMSG);
        assert_int_equal(pem_read_cert(empty_block, strlen(empty_block), &(X509 *){ NULL }), -EBADMSG);
        assert_all_readers("", 0, -ENODATA);
        assert_all_readers(" \n\t\r\n", 5, -ENODATA);

        big = malloc(PEM_INPUT_MAX + 1);
        assert_non_null(big);
        memset(big, '\n', PEM_INPUT_MAX + 1);
        assert_all_readers(big, PEM_INPUT_MAX + 1, -E2BIG);

        assert_der_readers((const uint8_t *) garbage, strlen(garbage), -EBADMSG);
        assert_der_readers((const uint8_t *) "", 0, -ENODATA);
        assert_der_readers((const uint8_t *) big, PEM_INPUT_MAX + 1, -E2BIG);
}

static void test_pem_rejects_truncated_and_trailing(void **state) {
        _cleanup_free_ char *pem = NULL, *der = NULL, *csr_der = NULL, *cut = NULL, *trail = NULL,
                            *b64 = NULL;
        _cleanup_free_ uint8_t *plus = NULL;
        size_t der_size, csr_size;
        X509 *cert = NULL;
        X509_REQ *csr = NULL;

        der = test_read_file("a.der", &der_size);
        csr_der = test_read_file("req.der", &csr_size);

        /* Truncated DER, at several places. */
        assert_der_readers((const uint8_t *) der, der_size - 1, -EBADMSG);
        assert_der_readers((const uint8_t *) der, der_size / 2, -EBADMSG);
        assert_der_readers((const uint8_t *) der, 1, -EBADMSG);
        assert_int_equal(der_read_csr((const uint8_t *) csr_der, csr_size - 1, &csr), -EBADMSG);

        /* A valid object followed by one more byte. */
        plus = malloc(MAX(der_size, csr_size) + 1);
        assert_non_null(plus);
        memcpy(plus, der, der_size);
        plus[der_size] = 0;
        assert_int_equal(der_read_cert(plus, der_size + 1, &cert), -EBADMSG);
        assert_null(cert);
        memcpy(plus, csr_der, csr_size);
        plus[csr_size] = 0;
        assert_int_equal(der_read_csr(plus, csr_size + 1, &csr), -EBADMSG);
        assert_null(csr);
        assert_int_equal(ERR_peek_error(), 0);

        /* The same inside a PEM block: DER with a trailing byte, base64-encoded. */
        memcpy(plus, der, der_size);
        plus[der_size] = 0;
        test_write_file("trailing.der", plus, der_size + 1);
        assert_int_equal(test_run("{ echo '-----BEGIN CERTIFICATE-----'; base64 -w 64 trailing.der; "
                                  "echo '-----END CERTIFICATE-----'; } > trailing.pem"), 0);
        trail = test_read_file("trailing.pem", NULL);
        assert_all_readers(trail, strlen(trail), -EBADMSG);

        /* PEM cut before its END line. */
        pem = test_read_file("a.pem", NULL);
        cut = strndup(pem, strlen(pem) - 30);
        assert_non_null(cut);
        assert_int_equal(pem_read_cert(cut, strlen(cut), &cert), -EBADMSG);
        assert_int_equal(pem_read_chain(cut, strlen(cut), &(STACK_OF(X509) *){ NULL }), -EBADMSG);
        assert_int_equal(ERR_peek_error(), 0);

        /* A good certificate followed by a broken one is not a chain of one. */
        assert_true(asprintf(&b64, "%s%s", pem, cut) > 0);
        assert_int_equal(pem_read_chain(b64, strlen(b64), &(STACK_OF(X509) *){ NULL }), -EBADMSG);
}

static void test_pem_encrypted_key_fails_without_prompt(void **state) {
        _cleanup_free_ char *enc = NULL;
        EVP_PKEY *key = NULL;

        assert_int_equal(test_run("openssl pkey -in a.key -aes256 -passout pass:secret "
                                  "-out enc.key"), 0);
        enc = test_read_file("enc.key", NULL);
        assert_non_null(strstr(enc, "ENCRYPTED PRIVATE KEY"));

        assert_int_equal(pem_read_private_key(enc, strlen(enc), &key), -EBADMSG);
        assert_null(key);
        assert_int_equal(ERR_peek_error(), 0);
}

static void test_pem_readers_want_their_own_type(void **state) {
        _cleanup_free_ char *cert = NULL, *key = NULL, *req = NULL, *pub = NULL;
        X509 *c = NULL;
        X509_REQ *r = NULL;
        EVP_PKEY *k = NULL;

        cert = test_read_file("a.pem", NULL);
        key = test_read_file("a.key", NULL);
        req = test_read_file("req.pem", NULL);

        assert_int_equal(pem_read_cert(key, strlen(key), &c), -EBADMSG);
        assert_int_equal(pem_read_cert(req, strlen(req), &c), -EBADMSG);
        assert_int_equal(pem_read_csr(cert, strlen(cert), &r), -EBADMSG);
        assert_int_equal(pem_read_private_key(cert, strlen(cert), &k), -EBADMSG);

        /* A public key is not a private key. */
        assert_int_equal(test_run("openssl pkey -in a.key -pubout -out a.pub"), 0);
        pub = test_read_file("a.pub", NULL);
        assert_non_null(strstr(pub, "-----BEGIN PUBLIC KEY-----"));
        assert_int_equal(pem_read_private_key(pub, strlen(pub), &k), -EBADMSG);
        assert_null(c);
        assert_null(r);
        assert_null(k);
        assert_int_equal(ERR_peek_error(), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pem_cert_round_trip),
                cmocka_unit_test(test_pem_cert_skips_other_blocks),
                cmocka_unit_test(test_pem_chain_order_preserved),
                cmocka_unit_test(test_pem_chain_limit),
                cmocka_unit_test(test_pem_private_key_round_trip),
                cmocka_unit_test(test_pem_private_key_reads_traditional_forms),
                cmocka_unit_test(test_private_key_save_file_mode_0600),
                cmocka_unit_test(test_cert_and_chain_files),
                cmocka_unit_test(test_pem_csr_round_trip),
                cmocka_unit_test(test_pem_new_certificate_request_label),
                cmocka_unit_test(test_pem_rejects_garbage_empty_and_oversized),
                cmocka_unit_test(test_pem_rejects_truncated_and_trailing),
                cmocka_unit_test(test_pem_encrypted_key_fails_without_prompt),
                cmocka_unit_test(test_pem_readers_want_their_own_type),
        };

        return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
