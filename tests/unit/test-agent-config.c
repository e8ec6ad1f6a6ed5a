/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent-config.h"
#include "shared/fileio.h"
#include "shared/strv.h"
#include "tests/unit/test-util.h"

static char *write_conf(const char *file, const char *text) {
        char *path;
        assert_true(asprintf(&path, "%s/%s", test_tmpdir, file) > 0);
        assert_int_equal(write_file_atomic(path, text, strlen(text), 0644, (uid_t) -1, (gid_t) -1), 0);
        return path;
}

static int load(const char *file, const char *text, const AgentConfig *defaults, CertConfig **ret, char **ret_error) {
        _cleanup_free_ char *path = write_conf(file, text);
        return cert_config_load(path, defaults, ret, ret_error);
}

static void test_config_full_certificate(void **state) {
        _cleanup_(cert_config_unrefp) CertConfig *c = NULL;
        _cleanup_free_ char *err = NULL;

        assert_int_equal(load("web.conf",
                              "[Certificate]\n"
                              "Protocol=acme\n"
                              "Server=https://ca.test/directory\n"
                              "Names=www.example.com example.com\n"
                              "KeyType=rsa-3072\n"
                              "ReuseKey=yes\n"
                              "CABundle=/etc/ssl/ca.pem\n"
                              "[ACME]\n"
                              "Email=hostmaster@example.com\n"
                              "EABKeyID=kid-1\n"
                              "EABKey=eab-hmac\n"
                              "Challenge=tls-alpn-01\n"
                              "TLSListen=[::1]:8443\n"
                              "[Deploy]\n"
                              "Certificate=/etc/ssl/web.crt\n"
                              "Key=/etc/ssl/private/web.key\n"
                              "Owner=root\n"
                              "Group=ssl-cert\n"
                              "Mode=0640\n"
                              "ReloadUnits=nginx.service haproxy.service\n"
                              "ExecDeploy=/usr/local/bin/notify one\n"
                              "ExecDeploy=/usr/local/bin/other\n",
                              NULL, &c, &err), 0);
        assert_string_equal(c->name, "web");
        assert_string_equal(c->protocol, "acme");
        assert_string_equal(c->server, "https://ca.test/directory");
        assert_int_equal(strv_length(c->names), 2);
        assert_string_equal(c->names[0], "www.example.com");
        assert_int_equal(c->key_type, KEY_RSA_3072);
        assert_true(c->reuse_key);
        assert_string_equal(c->ca_bundle, "/etc/ssl/ca.pem");
        assert_string_equal(c->eab_kid, "kid-1");
        assert_string_equal(c->eab_key, "eab-hmac");
        assert_int_equal(c->challenge, AGENT_CHALLENGE_TLSALPN01);
        assert_string_equal(c->tls_listen, "[::1]:8443");
        assert_string_equal(c->group, "ssl-cert");
        assert_int_equal(c->mode, 0640);
        assert_int_equal(strv_length(c->reload_units), 2);
        assert_string_equal(c->reload_units[1], "haproxy.service");
        /* One command per ExecDeploy= line, not one word per entry. */
        assert_int_equal(strv_length(c->exec_deploy), 2);
        assert_string_equal(c->exec_deploy[0], "/usr/local/bin/notify one");
}

static void test_config_defaults_and_agent_conf(void **state) {
        _cleanup_(agent_config_freep) AgentConfig *a = NULL;
        _cleanup_(cert_config_unrefp) CertConfig *c = NULL;
        _cleanup_free_ char *err = NULL, *missing = NULL, *agent_path = NULL;

        assert_true(asprintf(&missing, "%s/absent.conf", test_tmpdir) > 0);
        assert_int_equal(agent_config_load(missing, &a, &err), 0);
        assert_string_equal(a->state_directory, "/var/lib/certfleet/agent");
        a = agent_config_free(a);

        agent_path = write_conf("agent.conf", "[Agent]\nStateDirectory=/srv/state\nServer=https://default.test/dir\n");
        assert_int_equal(agent_config_load(agent_path, &a, &err), 0);
        assert_string_equal(a->state_directory, "/srv/state");

        assert_int_equal(load("mail.conf", "[Certificate]\nNames=mail.example.com\n[ACME]\nWebroot=/var/www\n",
                              a, &c, &err), 0);
        assert_string_equal(c->server, "https://default.test/dir");
        assert_int_equal(c->key_type, KEY_EC_P256);
        assert_false(c->reuse_key);
        assert_int_equal(c->challenge, AGENT_CHALLENGE_HTTP01);
        assert_int_equal(c->mode, 0600);
}

static void expect_error(const char *text, const char *needle) {
        _cleanup_(cert_config_unrefp) CertConfig *c = NULL;
        _cleanup_free_ char *err = NULL;

        assert_true(load("bad.conf", text, NULL, &c, &err) < 0);
        assert_null(c);
        assert_non_null(err);
        if (!strstr(err, needle))
                fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_config_rejects_invalid_files(void **state) {
        expect_error("[Certificate]\nServer=https://ca.test/d\n[ACME]\nHTTPListen=0.0.0.0:80\n", "Names=");
        expect_error("[Certificate]\nServer=https://ca.test/d\nNames=a.test\nColour=blue\n", "Colour");
        expect_error("[Certificate]\nProtocol=scep\nServer=https://ca.test/d\nNames=a.test\n", "Protocol=");
        expect_error("[Certificate]\nServer=https://ca.test/d\nNames=a.test\n", "HTTPListen=");
        expect_error("[Certificate]\nServer=https://ca.test/d\nNames=*.a.test\n[ACME]\nHTTPListen=0.0.0.0:80\n",
                     "wildcard");
        expect_error("[Certificate]\nServer=https://ca.test/d\nNames=a.test\n[ACME]\nChallenge=dns-01\n", "DNSHook=");
        expect_error("[Certificate]\nServer=https://ca.test/d\nNames=a.test\n[ACME]\nEABKeyID=k\nWebroot=/w\n",
                     "EABKey=");
        expect_error("[Certificate]\nServer=https://ca.test/d\nNames=a.test\n[ACME]\nHTTPListen=0.0.0.0:99999\n",
                     "HTTPListen");
        expect_error("[Certificate]\nServer=ftp://ca.test/d\nNames=a.test\n[ACME]\nWebroot=/w\n", "Server=");
        expect_error("[Certificate]\nNames=a.test\n[ACME]\nWebroot=/w\n", "Server=");
        expect_error("[Certificate]\nServer=https://ca.test/d\nNames=a.test\nKeyType=dsa\n[ACME]\nWebroot=/w\n",
                     "KeyType");
        expect_error("[Certificate]\nServer=https://ca.test/d\nNames=a.test\n[ACME]\nWebroot=/w\n"
                     "[Deploy]\nExecDeploy=relative/hook\n", "ExecDeploy");
}

static void test_config_name_from_file_name(void **state) {
        _cleanup_(cert_config_unrefp) CertConfig *c = NULL;
        _cleanup_free_ char *err = NULL;

        assert_true(agent_cert_name_is_valid("web-1.example_x"));
        assert_false(agent_cert_name_is_valid(".hidden"));
        assert_false(agent_cert_name_is_valid("a/b"));
        assert_false(agent_cert_name_is_valid(""));
        assert_false(agent_cert_name_is_valid("with space"));
        assert_true(load("bad name.conf", "[Certificate]\nNames=a.test\n", NULL, &c, &err) < 0);
        assert_non_null(strstr(err, "certificate name"));
}

static void test_secret_from_credentials_directory(void **state) {
        _cleanup_free_ char *creds = NULL, *abs = NULL;
        SecretBuf s = {};

        assert_true(asprintf(&creds, "%s/creds", test_tmpdir) > 0);
        assert_int_equal(mkdir_p(creds, 0700), 0);
        free(write_conf("creds/eab", "aGVsbG8td29ybGQ\n"));   /* base64url("hello-world") */

        unsetenv("CREDENTIALS_DIRECTORY");
        assert_int_equal(agent_config_read_secret("eab", &s), -ENOKEY);
        setenv("CREDENTIALS_DIRECTORY", creds, 1);
        assert_int_equal(agent_config_read_secret("eab", &s), 0);
        assert_int_equal(s.size, 11);
        assert_memory_equal(s.data, "hello-world", 11);
        secret_buf_done(&s);

        /* A credential name cannot leave the credentials directory. */
        assert_int_equal(agent_config_read_secret("../creds/eab", &s), -EINVAL);
        assert_int_equal(agent_config_read_secret("..", &s), -EINVAL);
        assert_int_equal(agent_config_read_secret("missing", &s), -ENOENT);

        /* An absolute path works without the directory. */
        unsetenv("CREDENTIALS_DIRECTORY");
        assert_true(asprintf(&abs, "%s/creds/eab", test_tmpdir) > 0);
        assert_int_equal(agent_config_read_secret(abs, &s), 0);
        assert_memory_equal(s.data, "hello-world", 11);
        secret_buf_done(&s);

        /* Not base64url: refused rather than used as raw bytes. */
        free(write_conf("creds/bad", "not base64!\n"));
        setenv("CREDENTIALS_DIRECTORY", creds, 1);
        assert_int_equal(agent_config_read_secret("bad", &s), -EINVAL);
}

static void test_challenge_names(void **state) {
        assert_string_equal(agent_challenge_type_to_string(AGENT_CHALLENGE_HTTP01), "http-01");
        assert_string_equal(agent_challenge_type_to_string(AGENT_CHALLENGE_TLSALPN01), "tls-alpn-01");
        assert_string_equal(agent_challenge_type_to_string(AGENT_CHALLENGE_DNS01), "dns-01");
        assert_int_equal(agent_challenge_type_from_string("DNS-01"), AGENT_CHALLENGE_DNS01);
        assert_int_equal(agent_challenge_type_from_string("dns"), _AGENT_CHALLENGE_INVALID);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_full_certificate),
                cmocka_unit_test(test_config_defaults_and_agent_conf),
                cmocka_unit_test(test_config_rejects_invalid_files),
                cmocka_unit_test(test_config_name_from_file_name),
                cmocka_unit_test(test_secret_from_credentials_directory),
                cmocka_unit_test(test_challenge_names),
        };
        return cmocka_run_group_tests(tests, test_tmpdir_setup, test_tmpdir_teardown);
}
