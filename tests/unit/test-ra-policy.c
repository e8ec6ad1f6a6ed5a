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

#include "server/ca/ca.h"
#include "server/ra/ra-profile.h"
#include "server/ra/ra.h"
#include "shared/conf.h"
#include "shared/errors.h"
#include "shared/key.h"
#include "shared/strv.h"

static char tmpdir[] = "/tmp/test-ra-policy-XXXXXX";
static char cadir[sizeof tmpdir + 8];

static int setup(void **state) {
        if (!mkdtemp(tmpdir))
                return -1;
        snprintf(cadir, sizeof cadir, "%s/ca", tmpdir);
        return ca_local_init(cadir, KEY_EC_P256, "test", false) < 0 ? -1 : 0;
}

static int teardown(void **state) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static char *patterns[] = {
        (char *) "*.internal.example",
        (char *) "host.example",
        (char *) "10.0.0.0/8",
        (char *) "172.16.0.0/12",
        (char *) "fd00::/8",
        (char *) "192.0.2.7",
        NULL,
};

static RaProfile test_profile(void) {
        return (RaProfile) {
                .name = (char *) "web",
                .ca = (char *) "internal",
                .enabled = true,
                .allowed_identifiers = patterns,
                .min_rsa_bits = 2048,
                .min_ec_bits = 256,
                .validity = 47 * 86400,
                .max_validity = 90 * 86400,
        };
}

static void test_identifier_type_strings(void **state) {
        assert_string_equal(identifier_type_to_string(IDENTIFIER_DNS), "dns");
        assert_string_equal(identifier_type_to_string(IDENTIFIER_IP), "ip");
        assert_null(identifier_type_to_string(_IDENTIFIER_TYPE_MAX));
        assert_int_equal(identifier_type_from_string("dns"), IDENTIFIER_DNS);
        assert_int_equal(identifier_type_from_string("ip"), IDENTIFIER_IP);
        assert_true(identifier_type_from_string("email") < 0);
        assert_true(identifier_type_from_string(NULL) < 0);
}

static void test_ra_allows_names_under_wildcard_pattern(void **state) {
        RaProfile ra = test_profile();
        static const char *const allowed[] = {
                "a.internal.example",
                "b.a.internal.example",
                "*.a.internal.example",
                "*.internal.example",      /* the pattern itself */
                "x-1.internal.example",
                "host.example",
        };

        for (size_t i = 0; i < ELEMENTSOF(allowed); i++) {
                print_message("%s\n", allowed[i]);
                assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_DNS, allowed[i]), 0);
        }
}

static void test_ra_rejects_names_outside_patterns(void **state) {
        RaProfile ra = test_profile();
        static const char *const rejected[] = {
                "internal.example",        /* the zone apex is not below it */
                "xinternal.example",       /* suffix without a label boundary */
                "internal.example.evil",
                "a.host.example",          /* exact pattern allows only itself */
                "*.host.example",
                "other.example",
        };

        for (size_t i = 0; i < ELEMENTSOF(rejected); i++) {
                print_message("%s\n", rejected[i]);
                assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_DNS, rejected[i]), -CF_E_REJECTED_IDENTIFIER);
        }

        /* No patterns: nothing is allowed. */
        ra.allowed_identifiers = NULL;
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_DNS, "a.internal.example"), -CF_E_REJECTED_IDENTIFIER);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "10.0.0.1"), -CF_E_REJECTED_IDENTIFIER);
}

static void test_ra_rejects_malformed_names(void **state) {
        RaProfile ra = test_profile();
        char long_label[128], long_name[300];
        const char *malformed[] = {
                "",
                "A.internal.example",      /* must be lower-cased already */
                "a..internal.example",
                ".a.internal.example",
                "a.internal.example.",
                "-a.internal.example",
                "a-.internal.example",
                "a_b.internal.example",
                "a.*.internal.example",    /* wildcard only as the whole leftmost label */
                "*a.internal.example",
                "**.internal.example",
                "*",
                "a b.internal.example",
                "\xc3\xa4.internal.example",
                "10.0.0.1",                /* an IP address is not a DNS name */
                long_label,
                long_name,
        };

        memset(long_label, 'a', 64);
        strcpy(long_label + 64, ".internal.example");
        /* 254 characters: labels of 9 + dot, then the allowed suffix. */
        long_name[0] = '\0';
        while (strlen(long_name) + 10 + strlen("internal.example") <= 254)
                strcat(long_name, "aaaaaaaaa.");
        strcat(long_name, "internal.example");
        while (strlen(long_name) < 254) {
                memmove(long_name + 1, long_name, strlen(long_name) + 1);
                long_name[0] = 'b';
        }
        assert_int_equal(strlen(long_name), 254);

        for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
                print_message("'%s'\n", malformed[i]);
                assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_DNS, malformed[i]), -CF_E_MALFORMED);
        }

        /* 63-character labels and 253-character names are still fine. */
        long_label[63] = '\0';
        strcat(long_label, ".internal.example");
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_DNS, long_label), 0);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_DNS, long_name + 1), 0);

        assert_int_equal(ra_check_identifier(&ra, (IdentifierType) 7, "x"), -CF_E_UNSUPPORTED_IDENTIFIER);
}

static void test_ra_matches_ip_cidr(void **state) {
        RaProfile ra = test_profile();

        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "10.0.0.1"), 0);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "10.255.255.255"), 0);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "11.0.0.1"), -CF_E_REJECTED_IDENTIFIER);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "172.16.0.1"), 0);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "172.31.255.254"), 0);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "172.32.0.1"), -CF_E_REJECTED_IDENTIFIER);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "172.15.255.255"), -CF_E_REJECTED_IDENTIFIER);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "192.0.2.7"), 0);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "192.0.2.8"), -CF_E_REJECTED_IDENTIFIER);

        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "fd00::1"), 0);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "fdff:ffff::1"), 0);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "fe80::1"), -CF_E_REJECTED_IDENTIFIER);
        /* An IPv4-mapped address is IPv6 and matches no IPv4 prefix. */
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "::ffff:10.0.0.1"), -CF_E_REJECTED_IDENTIFIER);

        /* Only the canonical spelling. */
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "FD00::1"), -CF_E_MALFORMED);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "fd00:0::1"), -CF_E_MALFORMED);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "10.0.0.01"), -CF_E_MALFORMED);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "10.0.0"), -CF_E_MALFORMED);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "10.0.0.1/32"), -CF_E_MALFORMED);
        assert_int_equal(ra_check_identifier(&ra, IDENTIFIER_IP, "a.internal.example"), -CF_E_MALFORMED);
}

static void test_ra_key_policy(void **state) {
        RaProfile ra = test_profile();
        char *ec_rsa[] = { (char *) "ec", (char *) "rsa", NULL };
        char *with_ed[] = { (char *) "ec", (char *) "ed25519", NULL };
        EVP_PKEY *p256 = NULL, *p384 = NULL, *rsa2048 = NULL, *ed = NULL, *rsa1024;
        const char *detail = NULL;

        assert_int_equal(key_generate(KEY_EC_P256, &p256), 0);
        assert_int_equal(key_generate(KEY_EC_P384, &p384), 0);
        assert_int_equal(key_generate(KEY_RSA_2048, &rsa2048), 0);
        assert_int_equal(key_generate(KEY_ED25519, &ed), 0);
        rsa1024 = EVP_RSA_gen(1024);
        assert_non_null(rsa1024);

        ra.key_algorithms = ec_rsa;
        assert_int_equal(ra_check_key(&ra, p256, &detail), 0);
        assert_int_equal(ra_check_key(&ra, rsa2048, &detail), 0);
        assert_int_equal(ra_check_key(&ra, rsa1024, &detail), -CF_E_BAD_PUBLIC_KEY);
        assert_non_null(strstr(detail, "RSA"));
        detail = NULL;
        assert_int_equal(ra_check_key(&ra, ed, &detail), -CF_E_BAD_PUBLIC_KEY);
        assert_non_null(detail);

        /* Ed25519 only when listed; RSA then no longer is. */
        ra.key_algorithms = with_ed;
        assert_int_equal(ra_check_key(&ra, ed, NULL), 0);
        assert_int_equal(ra_check_key(&ra, rsa2048, NULL), -CF_E_BAD_PUBLIC_KEY);

        /* Minimum sizes. */
        ra.key_algorithms = ec_rsa;
        ra.min_ec_bits = 384;
        assert_int_equal(ra_check_key(&ra, p256, NULL), -CF_E_BAD_PUBLIC_KEY);
        assert_int_equal(ra_check_key(&ra, p384, NULL), 0);
        ra.min_rsa_bits = 3072;
        assert_int_equal(ra_check_key(&ra, rsa2048, NULL), -CF_E_BAD_PUBLIC_KEY);

        EVP_PKEY_free(p256);
        EVP_PKEY_free(p384);
        EVP_PKEY_free(rsa2048);
        EVP_PKEY_free(rsa1024);
        EVP_PKEY_free(ed);
}

static void test_ra_validity_ceiling(void **state) {
        RaProfile ra = test_profile();
        cf_time_t now = time_now();

        assert_int_equal(ra_check_validity(&ra, 0, 0), 0);
        assert_int_equal(ra_check_validity(&ra, now, now + 90 * 86400), 0);
        assert_int_equal(ra_check_validity(&ra, now, now + 90 * 86400 + 1), -CF_E_MALFORMED);
        assert_int_equal(ra_check_validity(&ra, 0, now + 91 * 86400), -CF_E_MALFORMED);
        assert_int_equal(ra_check_validity(&ra, now, now - 1), -CF_E_MALFORMED);
        assert_int_equal(ra_check_validity(&ra, now - 100, now - 10), -CF_E_MALFORMED);   /* already expired */
        ra.validity = 100 * 86400;      /* a default above the ceiling is refused too */
        assert_int_equal(ra_check_validity(&ra, 0, 0), -CF_E_MALFORMED);
}

static int load_profiles(const char *text, const char *credentials_dir, ProfileSet **ret, char **ret_error) {
        _cleanup_(profile_set_unrefp) ProfileSet *p = NULL;
        ConfError err = {};
        char *full;
        int r;

        /* Every test config gets the test CA. */
        assert_true(asprintf(&full, "[CA internal]\nDirectory=%s\n%s", cadir, text) > 0);
        assert_int_equal(profile_set_new(&p), 0);
        r = conf_load_string("test.conf", full, strlen(full), NULL, NULL, profile_set_section_handler, p, &err);
        free(full);
        if (r < 0) {
                if (ret_error)
                        *ret_error = err.message ? strdup(err.message) : NULL;
                conf_error_done(&err);
                return r;
        }
        conf_error_done(&err);
        r = profile_set_finish(p, credentials_dir, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

static const char resolution_config[] =
        "[RAProfile web]\n"
        "CA=internal\n"
        "AllowedIdentifiers=*.internal.example 10.0.0.0/8\n"
        "ACMEProfile=default\n"
        "[RAProfile off]\n"
        "CA=internal\n"
        "Enabled=no\n"
        "ACMEProfile=default\n"
        "[RAProfile noacme]\n"
        "CA=internal\n"
        "[RAProfile disabledacme]\n"
        "CA=internal\n"
        "ACMEProfile=disabled\n"
        "[ACMEProfile default]\n"
        "RAProfile=web\n"
        "[ACMEProfile disabled]\n"
        "Enabled=no\n"
        "RAProfile=web\n"
        "[ACMEProfile nora]\n"
        "[ACMEProfile offra]\n"
        "RAProfile=off\n";

static void test_profiles_load_with_defaults(void **state) {
        _cleanup_(profile_set_unrefp) ProfileSet *p = NULL;
        const RaProfile *ra;
        const AcmeProfile *a;
        char *error = NULL;

        assert_int_equal(load_profiles(resolution_config, NULL, &p, &error), 0);
        assert_null(error);

        assert_int_equal(profile_set_n_ca(p), 1);
        assert_string_equal(profile_set_ca_at(p, 0)->name, "internal");
        assert_string_equal(profile_set_ca_at(p, 0)->backend, "local");
        assert_non_null(profile_set_get_ca_backend(p, "internal"));
        assert_non_null(ca_backend_get0_issuer(profile_set_get_ca_backend(p, "internal")));
        assert_null(profile_set_get_ca_backend(p, "other"));

        ra = profile_set_get_ra(p, "web");
        assert_non_null(ra);
        assert_true(ra->enabled);
        assert_int_equal(ra->validity, 47 * 86400);
        assert_int_equal(ra->max_validity, 90 * 86400);
        assert_int_equal(ra->min_rsa_bits, 2048);
        assert_int_equal(ra->min_ec_bits, 256);
        assert_int_equal(strv_length(ra->ekus), 1);
        assert_string_equal(ra->ekus[0], "serverAuth");
        assert_true(strv_contains(ra->key_algorithms, "ec"));
        assert_true(strv_contains(ra->key_algorithms, "rsa"));
        assert_false(strv_contains(ra->key_algorithms, "ed25519"));
        assert_int_equal(strv_length(ra->allowed_identifiers), 2);
        assert_false(ra->approval_required);

        a = profile_set_get_acme(p, "default");
        assert_non_null(a);
        assert_int_equal(a->max_identifiers, 100);
        assert_int_equal(a->order_lifetime, 7 * 86400);
        assert_int_equal(a->authz_lifetime, 30 * 86400);
        assert_false(a->eab_required);

        /* Refcounting: an extra reference keeps it alive. */
        assert_ptr_equal(profile_set_ref(p), p);
        assert_null(profile_set_unref(p));
        assert_non_null(profile_set_get_ra(p, "web"));
}

static void check_resolve(const ProfileSet *p, const char *acme, const char *ra, int expected,
                          const char *expected_acme, const char *expected_ra) {
        const AcmeProfile *a = NULL;
        const RaProfile *r = NULL;
        const char *detail = NULL;

        print_message("acme=%s ra=%s\n", acme ?: "-", ra ?: "-");
        assert_int_equal(profile_set_resolve_acme(p, acme, ra, &a, &r, &detail), expected);
        if (expected == 0) {
                assert_string_equal(a->name, expected_acme);
                assert_string_equal(r->name, expected_ra);
        } else {
                assert_non_null(detail);
                assert_null(a);
                assert_null(r);
        }
}

static void test_profiles_resolve_acme_by_protocol_profile(void **state) {
        _cleanup_(profile_set_unrefp) ProfileSet *p = NULL;

        assert_int_equal(load_profiles(resolution_config, NULL, &p, NULL), 0);
        check_resolve(p, "default", NULL, 0, "default", "web");
        check_resolve(p, "missing", NULL, -CF_E_NOT_FOUND, NULL, NULL);
        check_resolve(p, "disabled", NULL, -CF_E_DISABLED, NULL, NULL);
        check_resolve(p, "nora", NULL, -CF_E_DISABLED, NULL, NULL);      /* no default RA profile */
        check_resolve(p, "offra", NULL, -CF_E_DISABLED, NULL, NULL);     /* default RA profile disabled */
}

static void test_profiles_resolve_acme_by_ra_profile(void **state) {
        _cleanup_(profile_set_unrefp) ProfileSet *p = NULL;

        assert_int_equal(load_profiles(resolution_config, NULL, &p, NULL), 0);
        check_resolve(p, NULL, "web", 0, "default", "web");
        check_resolve(p, NULL, "missing", -CF_E_NOT_FOUND, NULL, NULL);
        check_resolve(p, NULL, "off", -CF_E_DISABLED, NULL, NULL);
        check_resolve(p, NULL, "noacme", -CF_E_DISABLED, NULL, NULL);          /* ACME not enabled */
        check_resolve(p, NULL, "disabledacme", -CF_E_DISABLED, NULL, NULL);    /* its ACME profile is off */
        assert_int_equal(profile_set_resolve_acme(p, NULL, NULL, NULL, NULL, NULL), -EINVAL);
}

static void expect_config_error(const char *text, const char *credentials_dir, const char *needle) {
        ProfileSet *p = NULL;
        char *error = NULL;

        print_message("expecting '%s'\n", needle);
        assert_true(load_profiles(text, credentials_dir, &p, &error) < 0);
        assert_null(p);
        assert_non_null(error);
        if (!strstr(error, needle))
                fail_msg("error '%s' does not mention '%s'", error, needle);
        free(error);
}

static void test_profiles_reject_bad_references_and_values(void **state) {
        expect_config_error("[RAProfile web]\nCA=nope\n", NULL, "nope");
        expect_config_error("[ACMEProfile a]\nRAProfile=ghost\n", NULL, "ghost");
        expect_config_error("[RAProfile web]\nACMEProfile=ghost\n", NULL, "ghost");
        expect_config_error("[RAProfile web]\nValidity=100d\nMaxValidity=90d\n", NULL, "MaxValidity");
        expect_config_error("[RAProfile web]\nKeyAlgorithms=ec dsa\n", NULL, "dsa");
        expect_config_error("[RAProfile web]\nExtendedKeyUsage=serverAuth bogusUsage\n", NULL, "bogusUsage");
        expect_config_error("[RAProfile web]\nAllowedIdentifiers=a..b\n", NULL, "a..b");
        expect_config_error("[RAProfile web]\nAllowedIdentifiers=10.0.0.0/33\n", NULL, "10.0.0.0/33");
        expect_config_error("[RAProfile web]\nMinRSABits=1024\n", NULL, "MinRSABits");
        expect_config_error("[RAProfile web]\nColour=blue\n", NULL, "Colour");
        expect_config_error("[CA second]\nBackend=hsm\nDirectory=/nonexistent\n", NULL, "second");
        expect_config_error("[CA second]\nDirectory=/nonexistent/ca\n", NULL, "second");
        expect_config_error("[CA internal]\nCRLURL=ldap://x/crl\n", NULL, "CRLURL");
        expect_config_error("[ACMEProfile a]\nExternalAccountRequired=yes\n", NULL, "EABKeys");
}

static void write_file(const char *path, const char *content) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(content, f);
        assert_int_equal(fclose(f), 0);
}

static void test_profiles_load_eab_keys_from_credentials(void **state) {
        _cleanup_(profile_set_unrefp) ProfileSet *p = NULL;
        char creds[sizeof tmpdir + 16], path[sizeof tmpdir + 64], config[512];
        const AcmeProfile *a;

        snprintf(creds, sizeof creds, "%s/creds", tmpdir);
        assert_int_equal(mkdir(creds, 0700), 0);
        snprintf(path, sizeof path, "%s/eab-one", creds);
        /* base64url of the 16 bytes "0123456789abcdef", with the newline an editor leaves. */
        write_file(path, "MDEyMzQ1Njc4OWFiY2RlZg\n");
        snprintf(path, sizeof path, "%s/eab-abs", tmpdir);
        write_file(path, "_-_-_-_-_-_-_-_-_-_-_-_-");
        snprintf(path, sizeof path, "%s/eab-short", creds);
        write_file(path, "c2hvcnQ");
        snprintf(path, sizeof path, "%s/eab-bad", creds);
        write_file(path, "not base64!");

        snprintf(config, sizeof config,
                 "[RAProfile web]\nACMEProfile=eab\n"
                 "[ACMEProfile eab]\nRAProfile=web\nExternalAccountRequired=yes\n"
                 "EABKeys=kid-1:eab-one kid-2:%s/eab-abs\n", tmpdir);
        assert_int_equal(load_profiles(config, creds, &p, NULL), 0);
        a = profile_set_get_acme(p, "eab");
        assert_true(a->eab_required);
        assert_int_equal(a->n_eab_keys, 2);
        assert_string_equal(a->eab_keys[0].kid, "kid-1");
        assert_int_equal(a->eab_keys[0].hmac_key.size, 16);
        assert_memory_equal(a->eab_keys[0].hmac_key.data, "0123456789abcdef", 16);
        assert_string_equal(a->eab_keys[1].kid, "kid-2");
        assert_int_equal(a->eab_keys[1].hmac_key.size, 18);
        assert_int_equal(a->eab_keys[1].hmac_key.data[0], 0xff);

        expect_config_error("[ACMEProfile eab]\nEABKeys=kid-1:eab-one\n", NULL, "CREDENTIALS_DIRECTORY");
        expect_config_error("[ACMEProfile eab]\nEABKeys=kid-1:missing\n", creds, "missing");
        expect_config_error("[ACMEProfile eab]\nEABKeys=kid-1:eab-short\n", creds, "shorter");
        expect_config_error("[ACMEProfile eab]\nEABKeys=kid-1:eab-bad\n", creds, "base64url");
        expect_config_error("[ACMEProfile eab]\nEABKeys=kid-1:../eab-abs\n", creds, "credential");
        expect_config_error("[ACMEProfile eab]\nEABKeys=nokid\n", creds, "KID:CREDENTIAL");
        expect_config_error("[ACMEProfile eab]\nEABKeys=k:eab-one k:eab-one\n", creds, "twice");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_identifier_type_strings),
                cmocka_unit_test(test_ra_allows_names_under_wildcard_pattern),
                cmocka_unit_test(test_ra_rejects_names_outside_patterns),
                cmocka_unit_test(test_ra_rejects_malformed_names),
                cmocka_unit_test(test_ra_matches_ip_cidr),
                cmocka_unit_test(test_ra_key_policy),
                cmocka_unit_test(test_ra_validity_ceiling),
                cmocka_unit_test(test_profiles_load_with_defaults),
                cmocka_unit_test(test_profiles_resolve_acme_by_protocol_profile),
                cmocka_unit_test(test_profiles_resolve_acme_by_ra_profile),
                cmocka_unit_test(test_profiles_reject_bad_references_and_values),
                cmocka_unit_test(test_profiles_load_eab_keys_from_credentials),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
