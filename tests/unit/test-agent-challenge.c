/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "agent/agent-acme.h"
#include "agent/agent-challenge.h"
#include "agent/agent-exec.h"
#include "shared/fileio.h"
#include "tests/unit/test-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OBJECT *, ASN1_OBJECT_free);

/* Key authorization and its SHA-256, computed independently (Python hashlib). */
#define KEY_AUTH "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ"
#define KEY_AUTH_SHA256_B64URL "NGwKoXBgCT8JhEa0bK7AwfSqHyu_ZWeugV07fLGIVq0"
static const uint8_t key_auth_sha256[32] = {
        0x34, 0x6c, 0x0a, 0xa1, 0x70, 0x60, 0x09, 0x3f, 0x09, 0x84, 0x46, 0xb4, 0x6c, 0xae, 0xc0, 0xc1,
        0xf4, 0xaa, 0x1f, 0x2b, 0xbf, 0x65, 0x67, 0xae, 0x81, 0x5d, 0x3b, 0x7c, 0xb1, 0x88, 0x56, 0xad,
};

static int free_port(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        close(fd);
        return ntohs(a.sin_port);
}

static int connect_port(int port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *) &a, sizeof a), 0);
        return fd;
}

static void test_dns_txt_value_is_base64url_sha256(void **state) {
        _cleanup_free_ char *v = NULL;

        assert_int_equal(challenge_dns_txt_value(KEY_AUTH, &v), 0);
        assert_string_equal(v, KEY_AUTH_SHA256_B64URL);
}

static void check_acme_identifier(X509 *cert, const char *identifier) {
        _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *sans = NULL;
        const ASN1_OCTET_STRING *value;
        const unsigned char *p;
        X509_EXTENSION *ext;
        GENERAL_NAME *gn;
        int idx;

        idx = X509_get_ext_by_OBJ(cert, oid, -1);
        assert_true(idx >= 0);
        ext = X509_get_ext(cert, idx);
        assert_true(X509_EXTENSION_get_critical(ext));
        value = X509_EXTENSION_get_data(ext);
        /* extnValue = DER of OCTET STRING (SIZE (32)): 04 20 <digest>. */
        assert_int_equal(ASN1_STRING_length(value), 34);
        p = ASN1_STRING_get0_data(value);
        assert_int_equal(p[0], 0x04);
        assert_int_equal(p[1], 0x20);
        assert_memory_equal(p + 2, key_auth_sha256, 32);

        sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
        assert_non_null(sans);
        assert_int_equal(sk_GENERAL_NAME_num(sans), 1);
        gn = sk_GENERAL_NAME_value(sans, 0);
        assert_int_equal(gn->type, GEN_DNS);
        assert_string_equal((const char *) ASN1_STRING_get0_data(gn->d.dNSName), identifier);
}


static void test_tlsalpn_cert_has_critical_acme_identifier(void **state) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;

        assert_int_equal(challenge_tlsalpn_make_cert("alpn.example.test", KEY_AUTH, &cert, &key), 0);
        check_acme_identifier(cert, "alpn.example.test");
        assert_int_equal(X509_check_private_key(cert, key), 1);
        assert_int_equal(X509_verify(cert, key), 1);    /* self-signed */
}

/* Handshake as a validator would: SNI = identifier, ALPN = acme-tls/1. Returns the peer cert. */
static X509 *validator_handshake(int port, const char *sni, bool alpn) {
        static const unsigned char protos[] = "\x0a" "acme-tls/1";
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        const unsigned char *selected = NULL;
        unsigned selected_len = 0;
        X509 *peer = NULL;
        SSL *ssl;
        int fd;

        assert_non_null(ctx);
        if (alpn)
                assert_int_equal(SSL_CTX_set_alpn_protos(ctx, protos, sizeof protos - 1), 0);
        ssl = SSL_new(ctx);
        fd = connect_port(port);
        SSL_set_fd(ssl, fd);
        SSL_set_tlsext_host_name(ssl, sni);
        if (SSL_connect(ssl) == 1) {
                SSL_get0_alpn_selected(ssl, &selected, &selected_len);
                assert_int_equal(selected_len, 10);
                assert_memory_equal(selected, "acme-tls/1", 10);
                peer = SSL_get1_peer_certificate(ssl);
        }
        SSL_free(ssl);
        SSL_CTX_free(ctx);
        close(fd);
        return peer;
}

static void test_tlsalpn_server_answers_with_validation_cert(void **state) {
        ChallengeTlsAlpnServer *s = NULL;
        _cleanup_free_ char *addr = NULL;
        X509 *peer;
        int port = free_port();

        assert_true(asprintf(&addr, "127.0.0.1:%d", port) > 0);
        assert_int_equal(challenge_tlsalpn_server_start(addr, &s), 0);
        assert_int_equal(challenge_tlsalpn_server_set(s, "alpn.example.test", KEY_AUTH), 0);

        peer = validator_handshake(port, "alpn.example.test", true);
        assert_non_null(peer);
        check_acme_identifier(peer, "alpn.example.test");
        X509_free(peer);

        /* No acme-tls/1 offered, or another name: no certificate is handed out. */
        assert_null(validator_handshake(port, "alpn.example.test", false));
        assert_null(validator_handshake(port, "other.example.test", true));

        assert_int_equal(challenge_tlsalpn_server_unset(s, "alpn.example.test"), 0);
        assert_null(validator_handshake(port, "alpn.example.test", true));
        challenge_tlsalpn_server_stop(s);
}

static char *http_request(int port, const char *method, const char *path) {
        char req[512], buf[4096];
        size_t n = 0;
        ssize_t k;
        int fd = connect_port(port);

        snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: web.example.test\r\n\r\n", method, path);
        assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t) strlen(req));
        while ((k = recv(fd, buf + n, sizeof buf - 1 - n, 0)) > 0)
                n += (size_t) k;
        buf[n] = 0;
        close(fd);
        return strdup(buf);
}

static char *http_get(int port, const char *path) {
        return http_request(port, "GET", path);
}

static void test_http_server_serves_key_authorization(void **state) {
        ChallengeHttpServer *s = NULL;
        _cleanup_free_ char *addr = NULL, *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
        const char *token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
        int port = free_port();

        assert_true(asprintf(&addr, "127.0.0.1:%d", port) > 0);
        assert_int_equal(challenge_http_server_start(addr, &s), 0);
        /* A second listener on the same port fails: the job fails before asking the CA anything. */
        {
                ChallengeHttpServer *s2 = NULL;
                assert_int_equal(challenge_http_server_start(addr, &s2), -EADDRINUSE);
        }
        assert_int_equal(challenge_http_server_set(s, token, KEY_AUTH), 0);
        assert_int_equal(challenge_http_server_set(s, "../etc/passwd", KEY_AUTH), -EINVAL);

        r1 = http_get(port, "/.well-known/acme-challenge/evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA");
        assert_non_null(strstr(r1, "HTTP/1.1 200 OK\r\n"));
        assert_non_null(strstr(r1, "\r\n\r\n" KEY_AUTH));
        /* HEAD: the same head (Content-Length of the body it would send), no body. */
        {
                _cleanup_free_ char *h = http_request(port, "HEAD",
                        "/.well-known/acme-challenge/evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA");
                char length[64];

                snprintf(length, sizeof length, "Content-Length: %zu\r\n", strlen(KEY_AUTH));
                assert_non_null(strstr(h, "HTTP/1.1 200 OK\r\n"));
                assert_non_null(strstr(h, length));
                assert_string_equal(strstr(h, "\r\n\r\n"), "\r\n\r\n");
        }
        r2 = http_get(port, "/.well-known/acme-challenge/unknown");
        assert_non_null(strstr(r2, "HTTP/1.1 404 "));
        r3 = http_get(port, "/index.html");
        assert_non_null(strstr(r3, "HTTP/1.1 404 "));
        assert_int_equal(challenge_http_server_unset(s, token), 0);
        r4 = http_get(port, "/.well-known/acme-challenge/evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA");
        assert_non_null(strstr(r4, "HTTP/1.1 404 "));
        challenge_http_server_stop(s);
}

static void test_http_webroot_writes_and_removes(void **state) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t n;

        assert_int_equal(challenge_http_webroot_add(test_tmpdir, "tok_en-1", KEY_AUTH), 0);
        assert_true(asprintf(&path, "%s/.well-known/acme-challenge/tok_en-1", test_tmpdir) > 0);
        assert_int_equal(read_full_file(path, 4096, &text, &n), 0);
        assert_string_equal(text, KEY_AUTH);
        assert_int_equal(challenge_http_webroot_remove(test_tmpdir, "tok_en-1"), 0);
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(challenge_http_webroot_add(test_tmpdir, "../../x", KEY_AUTH), -EINVAL);
}

/* open(O_DIRECTORY|O_NOFOLLOW) on a symlink fails with ENOTDIR (or ELOOP without O_DIRECTORY). */
#define assert_symlink_refused(call)                            \
        do {                                                    \
                int _r = (call);                                \
                assert_true(_r == -ENOTDIR || _r == -ELOOP);    \
        } while (0)

static void test_http_webroot_refuses_symlinked_challenge_dir(void **state) {
        _cleanup_free_ char *check = NULL;

        /* .well-known is a symlink (made by whoever owns the webroot) to a directory root must not
         * write to; then acme-challenge is. The agent must refuse and write nothing there. */
        assert_int_equal(test_run("mkdir -p w1 victim1 && ln -s ../victim1 w1/.well-known"), 0);
        assert_true(asprintf(&check, "%s/w1", test_tmpdir) > 0);
        assert_symlink_refused(challenge_http_webroot_add(check, "passwd", KEY_AUTH));
        assert_int_equal(test_run("test -z \"$(ls -A victim1)\""), 0);
        assert_symlink_refused(challenge_http_webroot_remove(check, "passwd"));

        free(check);
        assert_int_equal(test_run("mkdir -p w2/.well-known victim2 && "
                                            "ln -s ../../victim2 w2/.well-known/acme-challenge && "
                                            "echo keep > victim2/passwd"), 0);
        assert_true(asprintf(&check, "%s/w2", test_tmpdir) > 0);
        assert_symlink_refused(challenge_http_webroot_add(check, "passwd", KEY_AUTH));
        assert_symlink_refused(challenge_http_webroot_remove(check, "passwd"));
        assert_int_equal(test_run("test \"$(cat victim2/passwd)\" = keep && test \"$(ls -A victim2)\" = passwd"), 0);

        /* The webroot itself may be a symlink (the admin's choice), and the file is world-readable
         * whatever the umask. */
        free(check);
        assert_int_equal(test_run("mkdir -p real3 && ln -s real3 w3"), 0);
        assert_true(asprintf(&check, "%s/w3", test_tmpdir) > 0);
        {
                mode_t old = umask(0077);
                assert_int_equal(challenge_http_webroot_add(check, "tok3", KEY_AUTH), 0);
                umask(old);
        }
        assert_int_equal(test_run("test \"$(stat -c %%a real3/.well-known/acme-challenge/tok3)\" = 644 && "
                                            "test \"$(ls -A real3/.well-known/acme-challenge)\" = tok3"), 0);
        assert_int_equal(challenge_http_webroot_remove(check, "tok3"), 0);
        assert_int_equal(test_run("test -z \"$(ls -A real3/.well-known/acme-challenge)\""), 0);
}

static void test_token_validation(void **state) {
        assert_true(challenge_token_is_valid("abcXYZ019-_"));
        assert_false(challenge_token_is_valid(""));
        assert_false(challenge_token_is_valid("a/b"));
        assert_false(challenge_token_is_valid("a.b"));
        assert_false(challenge_token_is_valid("a b"));
        assert_false(challenge_token_is_valid(NULL));
}

static void test_dns_hook_arguments(void **state) {
        _cleanup_free_ char *hook = NULL, *out = NULL, *text = NULL;
        FILE *f;
        size_t n;

        assert_true(asprintf(&hook, "%s/hook.sh", test_tmpdir) > 0);
        assert_true(asprintf(&out, "%s/hook.out", test_tmpdir) > 0);
        f = fopen(hook, "w");
        assert_non_null(f);
        fprintf(f, "#!/bin/sh\necho \"$1|$2|$3|$CERTFLEET_DOMAIN\" >> %s\n[ \"$1\" = set ]\n", out);
        fclose(f);
        assert_int_equal(chmod(hook, 0755), 0);

        assert_int_equal(challenge_dns_run_hook(hook, "set", "example.test", "VALUE"), 0);
        assert_int_equal(challenge_dns_run_hook(hook, "clear", "example.test", "VALUE"), -EIO);
        assert_int_equal(read_full_file(out, 4096, &text, &n), 0);
        assert_string_equal(text, "set|_acme-challenge.example.test|VALUE|example.test\n"
                                  "clear|_acme-challenge.example.test|VALUE|example.test\n");
}

static void test_hook_gets_no_inherited_fds_nor_systemd_env(void **state) {
        /* A descriptor some library left without O_CLOEXEC, and the agent's own systemd variables. */
        int fd = open("/dev/null", O_RDONLY);
        char script[256];
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", script, NULL };
        char *env[] = { (char *) "CERTFLEET_EXTRA=yes", NULL };

        assert_true(fd >= 0);
        assert_int_equal(dup2(fd, 57), 57);
        close(fd);
        assert_int_equal(setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1), 0);
        assert_int_equal(setenv("LISTEN_FDS", "1", 1), 0);
        assert_int_equal(setenv("CERTFLEET_KEPT", "kept", 1), 0);

        /* Exit status says what leaked: 3 the descriptor, 4 NOTIFY_SOCKET, 5 LISTEN_FDS, 6 lost env. */
        snprintf(script, sizeof script,
                 "test -e /proc/$$/fd/57 && exit 3; test -n \"${NOTIFY_SOCKET+x}\" && exit 4; "
                 "test -n \"${LISTEN_FDS+x}\" && exit 5; "
                 "test \"$CERTFLEET_KEPT$CERTFLEET_EXTRA\" = keptyes || exit 6; exit 0");
        assert_int_equal(agent_exec_run(argv, env, 10), 0);

        /* The check itself can fail: the same script sees the descriptor when it is inherited. */
        snprintf(script, sizeof script, "test -e /proc/$$/fd/1 || exit 3; exit 0");
        assert_int_equal(agent_exec_run(argv, env, 10), 0);

        close(57);
        unsetenv("NOTIFY_SOCKET");
        unsetenv("LISTEN_FDS");
        unsetenv("CERTFLEET_KEPT");
}

static void test_hook_timeout_kills_what_the_hook_started(void **state) {
        _cleanup_free_ char *pidfile = NULL, *script = NULL, *text = NULL;
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", NULL, NULL };
        size_t n;
        pid_t child;
        int alive = 1;

        pidfile = test_path("hook-child.pid");
        assert_true(asprintf(&script, "sleep 60 & echo $! > %s; wait", pidfile) > 0);
        argv[2] = script;
        assert_int_equal(agent_exec_run(argv, NULL, 1), -ETIMEDOUT);

        assert_int_equal(read_full_file(pidfile, 64, &text, &n), 0);
        child = (pid_t) atoi(text);
        assert_true(child > 1);
        /* Killed with the hook (reaped by init shortly after). */
        for (int i = 0; i < 50 && alive; i++) {
                _cleanup_free_ char *stat_path = NULL, *st = NULL;
                size_t k;
                assert_true(asprintf(&stat_path, "/proc/%d/stat", (int) child) > 0);
                if (read_full_file(stat_path, 4096, &st, &k) < 0 || strstr(st, ") Z ") || !strstr(st, "(sleep)"))
                        alive = 0;
                else
                        usleep(100 * 1000);
        }
        if (alive)
                kill(child, SIGKILL);
        assert_int_equal(alive, 0);
}

static void test_acme_authorization_must_be_for_an_ordered_name(void **state) {
        char *names[] = { (char *) "www.example.test", (char *) "*.apps.example.test", NULL };

        assert_true(acme_identifier_was_ordered(names, "www.example.test"));
        assert_true(acme_identifier_was_ordered(names, "WWW.Example.Test"));
        /* A wildcard's authorization names the base domain (RFC 8555 §7.1.4). */
        assert_true(acme_identifier_was_ordered(names, "apps.example.test"));

        /* Names the server made up: they would reach DNSHook= or a responder. */
        assert_false(acme_identifier_was_ordered(names, "example.test"));
        assert_false(acme_identifier_was_ordered(names, "evil.test"));
        assert_false(acme_identifier_was_ordered(names, "x.apps.example.test"));
        assert_false(acme_identifier_was_ordered(names, "*.apps.example.test"));
        assert_false(acme_identifier_was_ordered(names, "www.example.test.evil.test"));
        assert_false(acme_identifier_was_ordered(names, "-rf"));
        assert_false(acme_identifier_was_ordered(names, ""));
        assert_false(acme_identifier_was_ordered(names, NULL));
        assert_false(acme_identifier_was_ordered(NULL, "www.example.test"));
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);   /* a refused handshake closes the socket under the client */
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_dns_txt_value_is_base64url_sha256),
                cmocka_unit_test(test_tlsalpn_cert_has_critical_acme_identifier),
                cmocka_unit_test(test_tlsalpn_server_answers_with_validation_cert),
                cmocka_unit_test(test_http_server_serves_key_authorization),
                cmocka_unit_test(test_http_webroot_writes_and_removes),
                cmocka_unit_test(test_http_webroot_refuses_symlinked_challenge_dir),
                cmocka_unit_test(test_token_validation),
                cmocka_unit_test(test_dns_hook_arguments),
                cmocka_unit_test(test_hook_gets_no_inherited_fds_nor_systemd_env),
                cmocka_unit_test(test_hook_timeout_kills_what_the_hook_started),
                cmocka_unit_test(test_acme_authorization_must_be_for_an_ordered_name),
        };
        return cmocka_run_group_tests(tests, test_tmpdir_setup, test_tmpdir_teardown);
}
