/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "server/ca/ca.h"
#include "server/ra/ra-profile.h"
#include "server/ra/ra.h"
#include "server/store/store.h"
#include "shared/cert.h"
#include "shared/conf.h"
#include "shared/csr.h"
#include "shared/errors.h"
#include "shared/key.h"
#include "shared/pem.h"
#include "shared/strv.h"

static char tmpdir[] = "/tmp/test-ca-local-XXXXXX";
static char cadir[sizeof tmpdir + 8];
static char otherdir[sizeof tmpdir + 8];
static ProfileSet *profiles;

static const char config_fmt[] =
        "[CA internal]\n"
        "Directory=%s\n"
        "CRLURL=http://crl.test/internal.crl\n"
        "OCSPURL=http://ocsp.test/\n"
        "CAIssuersURL=http://ca.test/issuing.crt\n"
        "[CA other]\n"
        "Directory=%s\n"
        "[RAProfile web]\n"
        "CA=internal\n"
        "AllowedIdentifiers=*.internal.example 10.0.0.0/8\n"
        "ExtendedKeyUsage=serverAuth clientAuth\n"
        "[RAProfile plain]\n"
        "CA=other\n"
        "AllowedIdentifiers=*.internal.example\n"
        "[RAProfile approval]\n"
        "CA=internal\n"
        "AllowedIdentifiers=*.internal.example\n"
        "ApprovalRequired=yes\n";

static int setup(void **state) {
        ConfError err = {};
        char *config = NULL, *error = NULL;
        int r;

        if (!mkdtemp(tmpdir))
                return -1;
        snprintf(cadir, sizeof cadir, "%s/ca", tmpdir);
        snprintf(otherdir, sizeof otherdir, "%s/other", tmpdir);
        if (ca_local_init(cadir, KEY_EC_P256, "test", false) < 0 ||
            ca_local_init(otherdir, KEY_RSA_2048, "other", false) < 0)
                return -1;

        if (asprintf(&config, config_fmt, cadir, otherdir) < 0 || profile_set_new(&profiles) < 0)
                return -1;
        r = conf_load_string("test.conf", config, strlen(config), NULL, NULL, profile_set_section_handler,
                             profiles, &err);
        free(config);
        if (r < 0) {
                fprintf(stderr, "%s\n", err.message);
                return -1;
        }
        conf_error_done(&err);
        r = profile_set_finish(profiles, NULL, &error);
        if (r < 0) {
                fprintf(stderr, "%s\n", error);
                return -1;
        }
        return 0;
}

static int teardown(void **state) {
        char cmd[256];

        profile_set_unref(profiles);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

/* Runs a shell command; returns its exit status and (if out) its stdout+stderr. */
static int run(const char *cmd, char **out) {
        FILE *f;
        char *full, *buf = calloc(1, 65536);
        size_t n;
        int status;

        assert_non_null(buf);
        assert_true(asprintf(&full, "%s 2>&1", cmd) > 0);
        f = popen(full, "r");
        free(full);
        assert_non_null(f);
        n = fread(buf, 1, 65535, f);
        buf[n] = 0;
        status = pclose(f);
        if (out)
                *out = buf;
        else
                free(buf);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *tmp_path(const char *name) {
        char *p;
        assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
        return p;
}

static void test_ca_init_writes_private_keys_0600(void **state) {
        static const char *const files[] = { "root.key", "issuing.key", "root.crt", "issuing.crt" };
        char *dir = tmp_path("init");
        X509 *root = NULL, *issuing = NULL;
        CertInfo *ri = NULL, *ii = NULL;
        char path[512];
        struct stat st;

        assert_int_equal(ca_local_init(dir, KEY_EC_P256, "unit", false), 0);
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                snprintf(path, sizeof path, "%s/%s", dir, files[i]);
                assert_int_equal(stat(path, &st), 0);
                if (i < 2)
                        assert_int_equal(st.st_mode & 0777, 0600);
                else
                        assert_int_equal(st.st_mode & 0777, 0644);
        }
        assert_int_equal(stat(dir, &st), 0);
        assert_int_equal(st.st_mode & 0077, 0);

        /* Refuses to overwrite an existing CA unless forced. */
        assert_int_equal(ca_local_init(dir, KEY_EC_P256, "unit", false), -EEXIST);

        snprintf(path, sizeof path, "%s/root.crt", dir);
        assert_int_equal(cert_load_file(path, &root), 0);
        snprintf(path, sizeof path, "%s/issuing.crt", dir);
        assert_int_equal(cert_load_file(path, &issuing), 0);
        assert_int_equal(cert_inspect(root, &ri), 0);
        assert_int_equal(cert_inspect(issuing, &ii), 0);
        assert_true(ri->is_ca);
        assert_true(ii->is_ca);
        assert_string_equal(ri->common_name, "unit Root CA");
        assert_string_equal(ii->common_name, "unit Issuing CA");
        assert_int_equal(ri->key_usage, KU_KEY_CERT_SIGN | KU_CRL_SIGN);
        assert_int_equal(ii->key_usage, KU_KEY_CERT_SIGN | KU_CRL_SIGN);
        assert_string_equal(ri->key.curve, "P-256");
        /* Issuing AKI = root SKI. */
        assert_non_null(ii->aki);
        assert_int_equal(ii->aki_size, ri->ski_size);
        assert_memory_equal(ii->aki, ri->ski, ri->ski_size);
        /* pathlen 0 on the issuing CA, 10 and 5 years. */
        assert_int_equal(X509_get_pathlen(issuing), 0);
        assert_true(ri->not_after - ri->not_before >= 10 * 365 * 86400);
        assert_true(ii->not_after - ii->not_before >= 5 * 365 * 86400);
        assert_true(ii->not_after - ii->not_before < 6 * 365 * 86400);
        cert_info_free(ri);
        cert_info_free(ii);

        assert_int_equal(ca_local_init(dir, KEY_RSA_2048, "unit", true), 0);
        X509_free(root);
        assert_int_equal(cert_load_file(path, &root), 0);
        assert_int_equal(cert_inspect(root, &ri), 0);
        assert_int_equal(ri->key.algorithm, KEY_ALG_RSA);
        assert_int_equal(ri->key.bits, 2048);
        cert_info_free(ri);

        X509_free(root);
        X509_free(issuing);
        free(dir);
}

static X509 *issue(const char *ra_name, EVP_PKEY *key, const char *cn, char **dns, char **ips,
                   int64_t lifetime, int expected) {
        const RaProfile *ra = profile_set_get_ra(profiles, ra_name);
        CaBackend *ca;
        X509 *cert = NULL;
        STACK_OF(X509) *chain = NULL;
        cf_time_t now = time_now();
        CaIssueRequest req = {
                .public_key = key,
                .common_name = cn,
                .dns = dns,
                .ips = ips,
                .not_before = now,
                .not_after = now + lifetime,
        };

        assert_non_null(ra);
        ca = profile_set_get_ca_backend(profiles, "internal");
        assert_int_equal(ca_issue(ca, ra, &req, &cert, &chain), expected);
        if (expected < 0) {
                assert_null(cert);
                return NULL;
        }
        assert_int_equal(sk_X509_num(chain), 1);
        assert_int_equal(X509_cmp(sk_X509_value(chain, 0), ca_backend_get0_issuer(ca)), 0);
        sk_X509_pop_free(chain, X509_free);
        return cert;
}

static char *openssl_text(X509 *cert) {
        char *path = tmp_path("text.pem"), *cmd, *out;

        assert_int_equal(cert_save_file(path, cert, 0644, (uid_t) -1, (gid_t) -1), 0);
        assert_true(asprintf(&cmd, "openssl x509 -noout -text -in '%s'", path) > 0);
        assert_int_equal(run(cmd, &out), 0);
        free(cmd);
        free(path);
        return out;
}

static void test_ca_issued_cert_verifies_and_has_profile_extensions(void **state) {
        char *dns[] = { (char *) "a.internal.example", (char *) "*.b.internal.example", NULL };
        char *ips[] = { (char *) "10.0.0.5", NULL };
        CaBackend *ca = profile_set_get_ca_backend(profiles, "internal");
        EVP_PKEY *key = NULL;
        X509 *cert;
        CertInfo *ci = NULL, *issuer_info = NULL;
        char *leaf = tmp_path("leaf.pem"), *cmd, *out, *text;
        cf_time_t now = time_now();

        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
        cert = issue("web", key, "a.internal.example", dns, ips, 30 * 86400, 0);
        assert_non_null(cert);

        /* The chain verifies with the openssl CLI, for TLS server use. */
        assert_int_equal(cert_save_file(leaf, cert, 0644, (uid_t) -1, (gid_t) -1), 0);
        assert_true(asprintf(&cmd, "openssl verify -purpose sslserver -CAfile '%s/root.crt' -untrusted '%s/issuing.crt' '%s'",
                             cadir, cadir, leaf) > 0);
        assert_int_equal(run(cmd, &out), 0);
        assert_non_null(strstr(out, ": OK"));
        free(out);
        free(cmd);

        assert_int_equal(cert_inspect(cert, &ci), 0);
        assert_int_equal(ci->serial_size, 16);
        assert_int_equal(ci->serial[0] & 0x80, 0);
        assert_true(ci->serial[0] != 0);
        {
                /* The hex form is the same 16 bytes, without a leading zero nibble. */
                char hex[33];
                for (size_t i = 0; i < 16; i++)
                        snprintf(hex + 2 * i, 3, "%02x", ci->serial[i]);
                assert_string_equal(ci->serial_hex, hex[0] == '0' ? hex + 1 : hex);
        }
        assert_string_equal(ci->common_name, "a.internal.example");
        assert_true(strv_equal_unordered(ci->dns, dns));
        assert_true(strv_equal_unordered(ci->ips, ips));
        assert_false(ci->is_ca);
        assert_int_equal(ci->key_usage, KU_DIGITAL_SIGNATURE);
        assert_int_equal(strv_length(ci->ekus), 2);
        assert_true(strv_contains(ci->ekus, "serverAuth"));
        assert_true(strv_contains(ci->ekus, "clientAuth"));
        assert_true(ci->not_before >= now && ci->not_before <= now + 60);
        assert_int_equal(ci->not_after - ci->not_before, 30 * 86400);
        assert_non_null(ci->ski);
        assert_int_equal(cert_inspect(ca_backend_get0_issuer(ca), &issuer_info), 0);
        assert_non_null(ci->aki);
        assert_int_equal(ci->aki_size, issuer_info->ski_size);
        assert_memory_equal(ci->aki, issuer_info->ski, ci->aki_size);
        assert_string_equal(ci->issuer, issuer_info->subject);

        /* CRL DP and AIA as configured; basicConstraints critical; SAN not critical with a CN. */
        text = openssl_text(cert);
        assert_non_null(strstr(text, "URI:http://crl.test/internal.crl"));
        assert_non_null(strstr(text, "OCSP - URI:http://ocsp.test/"));
        assert_non_null(strstr(text, "CA Issuers - URI:http://ca.test/issuing.crt"));
        assert_non_null(strstr(text, "X509v3 Basic Constraints: critical"));
        assert_non_null(strstr(text, "CA:FALSE"));
        assert_non_null(strstr(text, "X509v3 Key Usage: critical"));
        assert_null(strstr(text, "Subject Alternative Name: critical"));
        free(text);

        /* The backend accepts revocation of its own certificates. */
        assert_int_equal(ca_revoke(ca, cert, 1), 0);

        cert_info_free(ci);
        cert_info_free(issuer_info);
        X509_free(cert);
        EVP_PKEY_free(key);
        free(leaf);
}

static void test_ca_issues_empty_subject_with_critical_san_and_rsa_key_usage(void **state) {
        char *dns[] = { (char *) "c.internal.example", NULL };
        EVP_PKEY *key = NULL;
        X509 *cert;
        CertInfo *ci = NULL;
        int idx;

        assert_int_equal(key_generate(KEY_RSA_2048, &key), 0);
        cert = issue("web", key, NULL, dns, NULL, 86400, 0);
        assert_non_null(cert);
        assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(cert)), 0);
        idx = X509_get_ext_by_NID(cert, NID_subject_alt_name, -1);
        assert_true(idx >= 0);
        assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(cert, idx)), 1);

        assert_int_equal(cert_inspect(cert, &ci), 0);
        assert_null(ci->common_name);
        assert_int_equal(ci->key_usage, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
        cert_info_free(ci);
        X509_free(cert);
        EVP_PKEY_free(key);
}

static void test_ca_refuses_what_the_profile_forbids(void **state) {
        char *good[] = { (char *) "a.internal.example", NULL };
        char *evil[] = { (char *) "a.internal.example", (char *) "www.bank.example", NULL };
        char *bad_ip[] = { (char *) "192.168.1.1", NULL };
        CaBackend *ca = profile_set_get_ca_backend(profiles, "internal");
        EVP_PKEY *key = NULL, *small = NULL, *ed = NULL;
        RaProfile copy;
        X509 *cert = NULL;
        cf_time_t now = time_now();

        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
        assert_int_equal(key_generate(KEY_ED25519, &ed), 0);
        small = EVP_RSA_gen(1024);
        assert_non_null(small);

        issue("web", key, NULL, evil, NULL, 86400, -CF_E_REJECTED_IDENTIFIER);
        issue("web", key, NULL, good, bad_ip, 86400, -CF_E_REJECTED_IDENTIFIER);
        issue("web", small, NULL, good, NULL, 86400, -CF_E_BAD_PUBLIC_KEY);
        issue("web", ed, NULL, good, NULL, 86400, -CF_E_BAD_PUBLIC_KEY);
        issue("web", key, NULL, good, NULL, 91 * 86400, -CF_E_MALFORMED);
        issue("web", key, "www.bank.example", good, NULL, 86400, -CF_E_BAD_CSR);  /* CN outside the SANs */
        issue("web", key, NULL, NULL, NULL, 86400, -CF_E_BAD_CSR);                 /* no names at all */

        /* A profile bound to another CA, or disabled, gets nothing from this one. */
        copy = *profile_set_get_ra(profiles, "plain");
        assert_int_equal(ca_issue(ca, &copy, &(CaIssueRequest) { .public_key = key, .dns = good,
                                  .not_before = now, .not_after = now + 86400 }, &cert, NULL),
                         -CF_E_UNAUTHORIZED);
        copy = *profile_set_get_ra(profiles, "web");
        copy.enabled = false;
        assert_int_equal(ca_issue(ca, &copy, &(CaIssueRequest) { .public_key = key, .dns = good,
                                  .not_before = now, .not_after = now + 86400 }, &cert, NULL),
                         -CF_E_DISABLED);
        assert_null(cert);

        EVP_PKEY_free(key);
        EVP_PKEY_free(small);
        EVP_PKEY_free(ed);
}

static void test_ca_revoke_refuses_foreign_certificate(void **state) {
        char *dns[] = { (char *) "a.internal.example", NULL };
        CaBackend *internal = profile_set_get_ca_backend(profiles, "internal");
        CaBackend *other = profile_set_get_ca_backend(profiles, "other");
        const RaProfile *plain = profile_set_get_ra(profiles, "plain");
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        cf_time_t now = time_now();

        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
        assert_int_equal(ca_issue(other, plain, &(CaIssueRequest) { .public_key = key, .dns = dns,
                                  .not_before = now, .not_after = now + 86400 }, &cert, NULL), 0);
        assert_int_equal(ca_revoke(other, cert, 0), 0);
        assert_int_equal(ca_revoke(internal, cert, 0), -CF_E_UNAUTHORIZED);
        X509_free(cert);
        EVP_PKEY_free(key);
}

static X509_REQ *make_csr(EVP_PKEY *key, const char *cn, char **dns, char **ips) {
        X509_REQ *csr = NULL;
        CsrRequest req = { .key = key, .common_name = cn, .dns = dns, .ips = ips };

        assert_int_equal(csr_build(&req, &csr), 0);
        return csr;
}

static size_t inventory_count(Store *s) {
        InventoryCert **l = NULL;
        size_t n = 0;

        assert_int_equal(store_inventory_list(s, NULL, &l), 0);
        while (l[n])
                n++;
        inventory_cert_list_free(l);
        return n;
}

static void test_ra_enroll_stores_certificate_and_refuses_mismatched_csr(void **state) {
        char *dns[] = { (char *) "a.internal.example", (char *) "b.internal.example", NULL };
        char *dns_rev[] = { (char *) "b.internal.example", (char *) "a.internal.example", NULL };
        char *one[] = { (char *) "a.internal.example", NULL };
        char *extra[] = { (char *) "a.internal.example", (char *) "b.internal.example",
                          (char *) "c.internal.example", NULL };
        char *ips[] = { (char *) "10.1.2.3", NULL };
        char *db = tmp_path("enroll.db");
        const RaProfile *web = profile_set_get_ra(profiles, "web");
        Store *s = NULL;
        EVP_PKEY *key = NULL;
        X509_REQ *csr;
        RaEnrollResult *res = NULL, *res2 = NULL, *bad = NULL;
        InventoryCert *row = NULL;
        char *hex = NULL;
        RaEnrollRequest req;

        assert_int_equal(store_open(db, &s), 0);
        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);

        /* Names in another order than authorised are fine. */
        csr = make_csr(key, "b.internal.example", dns_rev, ips);
        req = (RaEnrollRequest) {
                .protocol = "acme", .protocol_profile = "default", .ra = web, .csr = csr,
                .dns = dns, .ips = ips, .account_id = 9,
        };
        assert_int_equal(ra_enroll(s, profiles, &req, &res), 0);
        X509_REQ_free(csr);
        assert_non_null(res->cert);
        assert_int_equal(cert_serial_hex(res->cert, &hex), 0);
        assert_string_equal(res->serial, hex);
        assert_int_equal(sk_X509_num(res->chain), 1);
        assert_non_null(strstr(res->pem_fullchain, "-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----"));

        assert_int_equal(store_inventory_get(s, res->serial, &row), 0);
        assert_string_equal(row->protocol, "acme");
        assert_string_equal(row->protocol_profile, "default");
        assert_string_equal(row->ra_profile, "web");
        assert_string_equal(row->ca, "internal");
        assert_int_equal(row->account_id, 9);
        assert_int_equal(strv_length(row->identifiers), 3);
        assert_true(strv_contains(row->identifiers, "dns:a.internal.example"));
        assert_true(strv_contains(row->identifiers, "dns:b.internal.example"));
        assert_true(strv_contains(row->identifiers, "ip:10.1.2.3"));
        assert_non_null(row->ari_cert_id);
        assert_non_null(row->chain_pem);
        assert_int_equal(row->status, CERT_STATUS_VALID);
        inventory_cert_free(row);
        free(hex);
        assert_int_equal(inventory_count(s), 1);

        /* CSR with a name too many, one too few, a CN outside the names, an IP missing:
         * -CF_E_BAD_CSR and nothing stored. */
        csr = make_csr(key, NULL, extra, ips);
        req.csr = csr;
        assert_int_equal(ra_enroll(s, profiles, &req, &bad), -CF_E_BAD_CSR);
        X509_REQ_free(csr);
        csr = make_csr(key, NULL, one, ips);
        req.csr = csr;
        assert_int_equal(ra_enroll(s, profiles, &req, &bad), -CF_E_BAD_CSR);
        X509_REQ_free(csr);
        csr = make_csr(key, "c.internal.example", dns, ips);
        req.csr = csr;
        assert_int_equal(ra_enroll(s, profiles, &req, &bad), -CF_E_BAD_CSR);
        X509_REQ_free(csr);
        csr = make_csr(key, NULL, dns, NULL);
        req.csr = csr;
        assert_int_equal(ra_enroll(s, profiles, &req, &bad), -CF_E_BAD_CSR);
        X509_REQ_free(csr);
        assert_null(bad);
        assert_int_equal(inventory_count(s), 1);

        /* Renewal with replaces links both rows; replacing the same one again fails after
         * signing, and the transaction leaves no trace of the second certificate. */
        csr = make_csr(key, NULL, dns, ips);
        req.csr = csr;
        req.replaces = res->serial;
        assert_int_equal(ra_enroll(s, profiles, &req, &res2), 0);
        assert_int_equal(store_inventory_get(s, res->serial, &row), 0);
        assert_string_equal(row->replaced_by, res2->serial);
        inventory_cert_free(row);
        assert_int_equal(store_inventory_get(s, res2->serial, &row), 0);
        assert_string_equal(row->replaces, res->serial);
        inventory_cert_free(row);
        assert_int_equal(ra_enroll(s, profiles, &req, &bad), -CF_E_ALREADY_REPLACED);
        assert_null(bad);
        assert_int_equal(inventory_count(s), 2);
        req.replaces = "0badbad0";
        assert_int_equal(ra_enroll(s, profiles, &req, &bad), -ENOENT);
        assert_int_equal(inventory_count(s), 2);
        req.replaces = NULL;
        X509_REQ_free(csr);

        /* Approval-required profiles don't issue directly. */
        csr = make_csr(key, NULL, one, NULL);
        req = (RaEnrollRequest) { .protocol = "acme", .ra = profile_set_get_ra(profiles, "approval"),
                                  .csr = csr, .dns = one };
        assert_int_equal(ra_enroll(s, profiles, &req, &bad), -CF_E_APPROVAL_PENDING);
        X509_REQ_free(csr);
        assert_int_equal(inventory_count(s), 2);

        /* Revocation through the RA. */
        assert_int_equal(ra_revoke(s, profiles, res->serial, 7), -CF_E_BAD_REVOCATION_REASON);
        assert_int_equal(ra_revoke(s, profiles, res->serial, 4), 0);
        assert_int_equal(ra_revoke(s, profiles, res->serial, 4), -CF_E_ALREADY_REVOKED);
        assert_int_equal(ra_revoke(s, profiles, "0badbad0", 4), -ENOENT);
        assert_int_equal(store_inventory_get(s, res->serial, &row), 0);
        assert_int_equal(row->status, CERT_STATUS_REVOKED);
        assert_int_equal(row->revocation_reason, 4);
        assert_true(row->revoked_at > 0);
        inventory_cert_free(row);

        ra_enroll_result_free(res);
        ra_enroll_result_free(res2);
        EVP_PKEY_free(key);
        store_close(s);
        free(db);
}

static void test_ra_enroll_rejects_identifier_outside_profile(void **state) {
        char *dns[] = { (char *) "a.internal.example", (char *) "www.bank.example", NULL };
        char *db = tmp_path("reject.db");
        Store *s = NULL;
        EVP_PKEY *key = NULL, *small;
        X509_REQ *csr;
        RaEnrollResult *res = NULL;
        RaEnrollRequest req;

        assert_int_equal(store_open(db, &s), 0);
        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);

        /* Even when the front end "authorised" it, a name outside the profile is refused. */
        csr = make_csr(key, NULL, dns, NULL);
        req = (RaEnrollRequest) { .protocol = "acme", .ra = profile_set_get_ra(profiles, "web"),
                                  .csr = csr, .dns = dns };
        assert_int_equal(ra_enroll(s, profiles, &req, &res), -CF_E_REJECTED_IDENTIFIER);
        X509_REQ_free(csr);

        /* A CSR key the profile refuses. */
        small = EVP_RSA_gen(1024);
        assert_non_null(small);
        dns[1] = NULL;
        csr = make_csr(small, NULL, dns, NULL);
        req.csr = csr;
        assert_int_equal(ra_enroll(s, profiles, &req, &res), -CF_E_BAD_PUBLIC_KEY);
        X509_REQ_free(csr);

        /* A validity beyond the ceiling. */
        csr = make_csr(key, NULL, dns, NULL);
        req.csr = csr;
        req.not_after = time_now() + 200 * 86400;
        assert_int_equal(ra_enroll(s, profiles, &req, &res), -CF_E_MALFORMED);
        X509_REQ_free(csr);

        assert_null(res);
        assert_int_equal(inventory_count(s), 0);
        EVP_PKEY_free(key);
        EVP_PKEY_free(small);
        store_close(s);
        free(db);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ca_init_writes_private_keys_0600),
                cmocka_unit_test(test_ca_issued_cert_verifies_and_has_profile_extensions),
                cmocka_unit_test(test_ca_issues_empty_subject_with_critical_san_and_rsa_key_usage),
                cmocka_unit_test(test_ca_refuses_what_the_profile_forbids),
                cmocka_unit_test(test_ca_revoke_refuses_foreign_certificate),
                cmocka_unit_test(test_ra_enroll_stores_certificate_and_refuses_mismatched_csr),
                cmocka_unit_test(test_ra_enroll_rejects_identifier_outside_profile),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
