/* SPDX-License-Identifier: Apache-2.0 */

/* The validation authority against real peers on loopback: pebble-challtestsrv (Debian's pebble)
 * as DNS server and as http-01/tls-alpn-01 responder, plus small HTTP and TLS servers run by the
 * test itself for the cases challtestsrv cannot produce (404, redirects, huge bodies, silence,
 * wrong certificates). Every port is chosen at run time. */

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/va/va-internal.h"
#include "server/va/va.h"
#include "shared/base64.h"
#include "shared/errors.h"
#include "shared/macro.h"

#define THUMBPRINT "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
#define CTS_BINARY "/usr/bin/pebble-challtestsrv"

/* ---- helpers ---- */

static unsigned free_port(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        close(fd);
        return ntohs(sa.sin_port);
}

static int listen_loopback(unsigned *ret_port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 64), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

static bool port_open(unsigned port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok = connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0;

        close(fd);
        return ok;
}

static double now_seconds(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *key_authorization(const char *token) {
        char *s;

        assert_true(asprintf(&s, "%s." THUMBPRINT, token) > 0);
        return s;
}

static char *dns01_value(const char *ka) {
        unsigned char d[32];
        unsigned n = 0;
        char *s = NULL;

        assert_int_equal(EVP_Digest(ka, strlen(ka), d, &n, EVP_sha256(), NULL), 1);
        assert_int_equal(base64url_encode(d, sizeof(d), &s), 0);
        return s;
}

static bool ipv6_loopback(void) {
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        bool ok = fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0;

        if (fd >= 0)
                close(fd);
        return ok;
}

/* ---- pebble-challtestsrv ---- */

static struct {
        pid_t pid;
        unsigned dns, http, tls, management;
        char resolver[64];
        bool available;
} cts;

static void cts_post(const char *path, const char *k1, const char *v1, const char *k2, const char *v2) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        char url[128];
        CURL *c = curl_easy_init();
        long status = 0;

        json_object_object_add(o, k1, json_object_new_string(v1));
        if (k2)
                json_object_object_add(o, k2, json_object_new_string(v2));
        snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", cts.management, path);
        assert_non_null(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROXY, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_object_to_json_string(o));
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        assert_int_equal(status, 200);
}

static void cts_post_addresses(const char *path, const char *host, const char *address) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *a = json_object_new_array();
        char url[128];
        CURL *c = curl_easy_init();
        long status = 0;

        json_object_object_add(o, "host", json_object_new_string(host));
        json_object_array_add(a, json_object_new_string(address));
        json_object_object_add(o, "addresses", a);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", cts.management, path);
        assert_non_null(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROXY, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_object_to_json_string(o));
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        assert_int_equal(status, 200);
}

static bool cts_start_once(void) {
        char dns[64], http[32], tls[32], mgmt[32];
        pid_t pid;

        cts.dns = free_port();
        cts.http = free_port();
        cts.tls = free_port();
        cts.management = free_port();
        if (ipv6_loopback())
                snprintf(dns, sizeof(dns), "127.0.0.1:%u,[::1]:%u", cts.dns, cts.dns);
        else
                snprintf(dns, sizeof(dns), "127.0.0.1:%u", cts.dns);
        snprintf(http, sizeof(http), "127.0.0.1:%u", cts.http);
        snprintf(tls, sizeof(tls), "127.0.0.1:%u", cts.tls);
        snprintf(mgmt, sizeof(mgmt), "127.0.0.1:%u", cts.management);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);

                dup2(null, STDOUT_FILENO);
                dup2(null, STDERR_FILENO);
                execl(CTS_BINARY, CTS_BINARY, "-dns01", dns, "-http01", http, "-https01", "",
                      "-tlsalpn01", tls, "-management", mgmt, (char *) NULL);
                _exit(127);
        }
        cts.pid = pid;

        for (int i = 0; i < 200; i++) {
                int status;

                if (waitpid(pid, &status, WNOHANG) == pid) {
                        cts.pid = 0;
                        return false;          /* lost a port race: try other ports */
                }
                if (port_open(cts.management) && port_open(cts.dns) && port_open(cts.http) &&
                    port_open(cts.tls)) {
                        snprintf(cts.resolver, sizeof(cts.resolver), "127.0.0.1:%u", cts.dns);
                        return true;
                }
                usleep(50 * 1000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cts.pid = 0;
        return false;
}

/* ---- a small HTTP server ---- */

static struct {
        int fd, silent_fd, fd6;
        unsigned port, silent_port, port6;
        pthread_t thread, thread6;
        atomic_size_t huge_sent;
        atomic_bool huge_done;
} web;

#define HUGE_SIZE (64u * 1024u * 1024u)

static void web_reply(int fd, const char *status, const char *extra_headers, const char *body) {
        char buf[2048];
        int n = snprintf(buf, sizeof(buf), "HTTP/1.1 %s\r\nConnection: close\r\nContent-Length: %zu\r\n%s\r\n%s",
                         status, strlen(body), extra_headers, body);

        (void) !send(fd, buf, n, MSG_NOSIGNAL);
}

static void web_handle(int fd) {
        char req[4096], path[1024], location[1200], *token;
        size_t n = 0;

        while (n < sizeof(req) - 1) {
                ssize_t k = recv(fd, req + n, sizeof(req) - 1 - n, 0);

                if (k <= 0)
                        return;
                n += k;
                req[n] = 0;
                if (strstr(req, "\r\n\r\n"))
                        break;
        }
        if (sscanf(req, "GET %1023s ", path) != 1)
                return;
        token = strrchr(path, '/') + 1;

        if (strncmp(token, "ok", 2) == 0) {
                /* The trailing whitespace must be ignored (RFC 8555 §8.3). */
                _cleanup_free_ char *body = NULL;

                assert_true(asprintf(&body, "%s." THUMBPRINT " \r\n", token) > 0);
                web_reply(fd, "200 OK", "", body);
        } else if (strcmp(token, "wrong") == 0)
                web_reply(fd, "200 OK", "", "wrong.not-the-thumbprint");
        else if (strncmp(token, "hop", 3) == 0) {
                /* hopN-T redirects to hop(N-1)-T; hop0-T answers T's key authorization. */
                int hops = atoi(token + 3);
                const char *t = strchr(token, '-') + 1;

                if (hops == 0) {
                        _cleanup_free_ char *body = key_authorization(t);
                        web_reply(fd, "200 OK", "", body);
                } else {
                        snprintf(location, sizeof(location),
                                 "Location: http://localhost.test:%u/.well-known/acme-challenge/hop%d-%s\r\n",
                                 web.port, hops - 1, t);
                        web_reply(fd, "302 Found", location, "");
                }
        } else if (strcmp(token, "badport") == 0) {
                snprintf(location, sizeof(location),
                         "Location: http://127.0.0.1:%u/.well-known/acme-challenge/ok\r\n", web.silent_port);
                web_reply(fd, "302 Found", location, "");
        } else if (strcmp(token, "ftp") == 0)
                web_reply(fd, "302 Found", "Location: ftp://127.0.0.1/ok\r\n", "");
        else if (strcmp(token, "huge") == 0) {
                static const char head[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
                static char chunk[65536];
                size_t sent = 0;

                memset(chunk, 'A', sizeof(chunk));
                (void) !send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL);
                while (sent < HUGE_SIZE) {
                        ssize_t k = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);

                        if (k <= 0)
                                break;
                        sent += k;
                }
                web.huge_sent = sent;
                web.huge_done = true;
        } else
                web_reply(fd, "404 Not Found", "", "not found");
}

static void *web_thread(void *p) {
        int listen_fd = (int) (intptr_t) p;

        for (;;) {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

                if (fd < 0)
                        return NULL;
                web_handle(fd);
                close(fd);
        }
}

/* ---- a small TLS server for tls-alpn-01 certificates challtestsrv will not make ---- */

typedef enum TlsMode {
        TLS_GOOD,                    /* right SAN (IP or DNS), critical extension, ALPN */
        TLS_NO_ALPN,
        TLS_TWO_SANS,
        TLS_NOT_CRITICAL,
} TlsMode;

static struct {
        int fd;
        unsigned port;
        pthread_t thread;
        SSL_CTX *ctx;
        _Atomic TlsMode mode;
        char sni[256];
        pthread_mutex_t lock;
} tls;

static char tls_identifier[64];     /* what TLS_GOOD certificates name */
static char tls_key_authorization[256];

static X509 *make_alpn_cert(EVP_PKEY *key, const char *identifier, TlsMode mode) {
        _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new(), *wrapped = NULL;
        _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = NULL;
        unsigned char digest[32], *der = NULL;
        char san[256];
        unsigned n;
        int len;
        X509 *x = X509_new();
        X509V3_CTX ctx;
        ASN1_OBJECT *oid;

        X509_set_version(x, X509_VERSION_3);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, key);

        if (mode == TLS_TWO_SANS)
                snprintf(san, sizeof(san), "IP:%s,DNS:extra.example", identifier);
        else if (va_parse_ip(identifier, NULL))
                snprintf(san, sizeof(san), "IP:%s", identifier);
        else
                snprintf(san, sizeof(san), "DNS:%s", identifier);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        assert_non_null(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(TAKE_PTR(ext));

        assert_int_equal(EVP_Digest(tls_key_authorization, strlen(tls_key_authorization), digest, &n,
                                    EVP_sha256(), NULL), 1);
        ASN1_OCTET_STRING_set(value, digest, sizeof(digest));
        len = i2d_ASN1_OCTET_STRING(value, &der);
        assert_true(len > 0);
        wrapped = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(wrapped, der, len);
        OPENSSL_free(der);
        oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
        ext = X509_EXTENSION_create_by_OBJ(NULL, oid, mode != TLS_NOT_CRITICAL, wrapped);
        ASN1_OBJECT_free(oid);
        assert_non_null(ext);
        X509_add_ext(x, ext, -1);

        assert_true(X509_sign(x, key, EVP_sha256()) > 0);
        return x;
}

static int tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned inlen, void *arg) {
        if (tls.mode == TLS_NO_ALPN)
                return SSL_TLSEXT_ERR_NOACK;
        for (unsigned i = 0; i + 1 <= inlen; i += 1 + in[i])
                if (in[i] == 10 && i + 11 <= inlen && memcmp(in + i + 1, "acme-tls/1", 10) == 0) {
                        *out = in + i + 1;
                        *outlen = 10;
                        return SSL_TLSEXT_ERR_OK;
                }
        return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Runs while the ClientHello is processed, before the client can see the handshake end. */
static int tls_servername(SSL *ssl, int *alert, void *arg) {
        const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

        pthread_mutex_lock(&tls.lock);
        snprintf(tls.sni, sizeof(tls.sni), "%s", sni ?: "");
        pthread_mutex_unlock(&tls.lock);
        return SSL_TLSEXT_ERR_OK;
}

static void *tls_thread(void *p) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");

        for (;;) {
                int fd = accept4(tls.fd, NULL, NULL, SOCK_CLOEXEC);
                X509 *cert;
                SSL *ssl;

                if (fd < 0)
                        return NULL;
                cert = make_alpn_cert(key, tls_identifier, tls.mode);
                ssl = SSL_new(tls.ctx);
                SSL_use_certificate(ssl, cert);
                SSL_use_PrivateKey(ssl, key);
                SSL_set_fd(ssl, fd);
                if (SSL_accept(ssl) == 1)
                        SSL_shutdown(ssl);
                SSL_free(ssl);
                X509_free(cert);
                close(fd);
        }
}

/* ---- fixture ---- */

static int group_setup(void **state) {
        signal(SIGPIPE, SIG_IGN);
        assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);

        if (access(CTS_BINARY, X_OK) == 0)
                for (int i = 0; i < 5 && !cts.available; i++)
                        cts.available = cts_start_once();

        web.fd = listen_loopback(&web.port);
        web.silent_fd = listen_loopback(&web.silent_port);
        assert_int_equal(pthread_create(&web.thread, NULL, web_thread, (void *) (intptr_t) web.fd), 0);
        web.fd6 = -EBADF;
        if (ipv6_loopback()) {
                struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
                socklen_t len = sizeof(sa);

                web.fd6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
                assert_true(web.fd6 >= 0);
                assert_int_equal(bind(web.fd6, (struct sockaddr *) &sa, sizeof(sa)), 0);
                assert_int_equal(listen(web.fd6, 16), 0);
                assert_int_equal(getsockname(web.fd6, (struct sockaddr *) &sa, &len), 0);
                web.port6 = ntohs(sa.sin6_port);
                assert_int_equal(pthread_create(&web.thread6, NULL, web_thread, (void *) (intptr_t) web.fd6), 0);
        }

        tls.ctx = SSL_CTX_new(TLS_server_method());
        SSL_CTX_set_alpn_select_cb(tls.ctx, tls_alpn_select, NULL);
        SSL_CTX_set_tlsext_servername_callback(tls.ctx, tls_servername);
        pthread_mutex_init(&tls.lock, NULL);
        tls.fd = listen_loopback(&tls.port);
        assert_int_equal(pthread_create(&tls.thread, NULL, tls_thread, NULL), 0);

        return 0;
}

static int group_teardown(void **state) {
        if (cts.pid > 0) {
                kill(cts.pid, SIGTERM);
                waitpid(cts.pid, NULL, 0);
        }
        shutdown(web.fd, SHUT_RDWR);
        shutdown(tls.fd, SHUT_RDWR);
        pthread_join(web.thread, NULL);
        if (web.fd6 >= 0) {
                shutdown(web.fd6, SHUT_RDWR);
                pthread_join(web.thread6, NULL);
                close(web.fd6);
        }
        pthread_join(tls.thread, NULL);
        close(web.fd);
        close(web.silent_fd);
        close(tls.fd);
        SSL_CTX_free(tls.ctx);
        curl_global_cleanup();
        return 0;
}

#define REQUIRE_CTS()                                                           \
        do {                                                                    \
                if (!cts.available) {                                           \
                        fprintf(stderr, "pebble-challtestsrv not available\n"); \
                        skip();                                                 \
                }                                                               \
        } while (0)

static int validate(ChallengeType type, const char *id_type, const char *identifier, const char *token,
                    const char *ka, unsigned http_port, unsigned tls_port, int64_t timeout, char **detail) {
        VaConfig config = {
                .resolver = cts.available ? cts.resolver : NULL,
                .http_port = http_port,
                .tls_port = tls_port,
                .timeout = timeout ?: 5,
        };
        VaRequest req = {
                .type = type,
                .identifier_type = (char *) id_type,
                .identifier = (char *) identifier,
                .token = (char *) token,
                .key_authorization = (char *) ka,
        };
        int r;

        free(*detail);
        *detail = NULL;
        r = va_validate(&config, &req, detail);
        fprintf(stderr, "  %s %s %s → %s%s%s\n", challenge_type_to_string(type), identifier, token,
                r < 0 ? cf_error_name(r) : "valid", *detail ? ": " : "", *detail ?: "");
        if (r < 0)
                assert_non_null(*detail);
        return r;
}

/* ---- tests ---- */

static void test_challenge_type_strings(void **state) {
        assert_string_equal(challenge_type_to_string(CHALLENGE_HTTP_01), "http-01");
        assert_string_equal(challenge_type_to_string(CHALLENGE_DNS_01), "dns-01");
        assert_string_equal(challenge_type_to_string(CHALLENGE_TLS_ALPN_01), "tls-alpn-01");
        assert_null(challenge_type_to_string(_CHALLENGE_TYPE_MAX));
        assert_int_equal(challenge_type_from_string("tls-alpn-01"), CHALLENGE_TLS_ALPN_01);
        assert_int_equal(challenge_type_from_string("dns-01"), CHALLENGE_DNS_01);
        assert_int_equal(challenge_type_from_string("http-01"), CHALLENGE_HTTP_01);
        assert_int_equal(challenge_type_from_string("dns-account-01"), _CHALLENGE_TYPE_INVALID);
        assert_int_equal(challenge_type_from_string(NULL), _CHALLENGE_TYPE_INVALID);
}

static void test_reverse_name_matches_rfc8738(void **state) {
        _cleanup_free_ char *v4 = NULL, *v6 = NULL;
        VaAddress a;

        assert_true(va_parse_ip("1.2.3.4", &a));
        assert_int_equal(va_reverse_name(&a, &v4), 0);
        assert_string_equal(v4, "4.3.2.1.in-addr.arpa");
        /* RFC 3596 §2.5's example address. */
        assert_true(va_parse_ip("4321:0:1:2:3:4:567:89ab", &a));
        assert_int_equal(va_reverse_name(&a, &v6), 0);
        assert_string_equal(v6, "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa");
        assert_false(va_parse_ip("1.2.3", NULL));
        assert_false(va_parse_ip("example.com", NULL));
}

static void test_resolver_setting_syntax(void **state) {
        struct sockaddr_storage ss;
        socklen_t len;

        assert_int_equal(va_dns_parse_server("127.0.0.1:8053", &ss, &len), 0);
        assert_int_equal(ss.ss_family, AF_INET);
        assert_int_equal(ntohs(((struct sockaddr_in *) &ss)->sin_port), 8053);
        assert_int_equal(va_dns_parse_server("192.0.2.1", &ss, &len), 0);
        assert_int_equal(ntohs(((struct sockaddr_in *) &ss)->sin_port), 53);
        assert_int_equal(va_dns_parse_server("[::1]:5353", &ss, &len), 0);
        assert_int_equal(ss.ss_family, AF_INET6);
        assert_int_equal(ntohs(((struct sockaddr_in6 *) &ss)->sin6_port), 5353);
        assert_int_equal(va_dns_parse_server("2001:db8::1", &ss, &len), 0);
        assert_int_equal(ntohs(((struct sockaddr_in6 *) &ss)->sin6_port), 53);
        assert_int_equal(va_dns_parse_server("127.0.0.1:0", &ss, &len), -EINVAL);
        assert_int_equal(va_dns_parse_server("127.0.0.1:65536", &ss, &len), -EINVAL);
        assert_int_equal(va_dns_parse_server("dns.example:53", &ss, &len), -EINVAL);
        assert_int_equal(va_dns_parse_server("[::1]x", &ss, &len), -EINVAL);
        assert_int_equal(va_dns_parse_server("", &ss, &len), -EINVAL);
}

static void test_validate_rejects_bad_requests(void **state) {
        _cleanup_free_ char *detail = NULL;

        /* A token outside base64url could change the URL we fetch. */
        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "127.0.0.1", "a/../b", "x", web.port, 0, 0, &detail),
                         -EINVAL);
        assert_int_equal(validate(CHALLENGE_HTTP_01, "dns", "bad name.example", "ok", "x", web.port, 0, 0, &detail),
                         -EINVAL);
        assert_int_equal(validate(CHALLENGE_HTTP_01, "dns", "*.example.com", "ok", "x", web.port, 0, 0, &detail),
                         -EINVAL);
        /* RFC 8738 §7: no dns-01 for IP addresses. */
        assert_int_equal(validate(CHALLENGE_DNS_01, "ip", "127.0.0.1", "ok", "x", 0, 0, 0, &detail), -EINVAL);
        assert_int_equal(validate(CHALLENGE_HTTP_01, "email", "a@b", "ok", "x", 0, 0, 0, &detail), -EINVAL);
}

static void test_http01_in_test_server_success(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("ok1");

        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "127.0.0.1", "ok1", ka, web.port, 0, 0, &detail), 0);
        assert_null(detail);
}

static void test_http01_ipv6_identifier(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("ok6");

        if (web.fd6 < 0)
                skip();
        /* RFC 8738: the URL carries the address in brackets. */
        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "::1", "ok6", ka, web.port6, 0, 0, &detail), 0);
        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "0:0::1", "missing", ka, web.port6, 0, 0, &detail),
                         -CF_E_UNAUTHORIZED);
        assert_non_null(strstr(detail, "http://[::1]:"));
}

static void test_http01_wrong_body_is_incorrect_response(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("wrong");

        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "127.0.0.1", "wrong", ka, web.port, 0, 0, &detail),
                         -CF_E_INCORRECT_RESPONSE);
        /* A key authorization for another token is wrong too. */
        free(ka);
        ka = key_authorization("ok2");
        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "127.0.0.1", "ok3", ka, web.port, 0, 0, &detail),
                         -CF_E_INCORRECT_RESPONSE);
}

static void test_http01_404_is_unauthorized(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("missing");

        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "127.0.0.1", "missing", ka, web.port, 0, 0, &detail),
                         -CF_E_UNAUTHORIZED);
        assert_non_null(strstr(detail, "404"));
}

static void test_http01_closed_port_is_connection(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("ok");
        unsigned closed = free_port();

        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "127.0.0.1", "ok", ka, closed, 0, 0, &detail),
                         -CF_E_CONNECTION);
}

static void test_http01_follows_redirects_with_our_resolver(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("t");

        REQUIRE_CTS();
        /* localhost.test exists only in challtestsrv's answers (default A 127.0.0.1, AAAA ::1,
         * where nothing listens: the fallback to IPv4 is exercised on every hop). The final body
         * is t's key authorization: redirects do not change what must match. */
        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "127.0.0.1", "hop3-t", ka, web.port, 0, 0, &detail), 0);
        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "127.0.0.1", "hop10-t", ka, web.port, 0, 0, &detail), 0);
        free(ka);
        ka = key_authorization("hop3-t");
        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "127.0.0.1", "hop3-t", ka, web.port, 0, 0, &detail),
                         -CF_E_INCORRECT_RESPONSE);
        /* Eleven redirects are one too many. */
        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "127.0.0.1", "hop11-t", ka, web.port, 0, 0, &detail),
                         -CF_E_CONNECTION);
        assert_non_null(strstr(detail, "Too many redirects"));
}

static void test_http01_refuses_redirect_to_other_port_or_scheme(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("ok");

        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "127.0.0.1", "badport", ka, web.port, 0, 0, &detail),
                         -CF_E_CONNECTION);
        assert_non_null(strstr(detail, "Invalid port"));
        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "127.0.0.1", "ftp", ka, web.port, 0, 0, &detail),
                         -CF_E_CONNECTION);
        assert_non_null(strstr(detail, "scheme"));
}

static void test_http01_huge_body_is_cut_off(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("huge");

        web.huge_done = false;
        assert_int_equal(validate(CHALLENGE_HTTP_01, "ip", "127.0.0.1", "huge", ka, web.port, 0, 0, &detail),
                         -CF_E_INCORRECT_RESPONSE);
        assert_non_null(strstr(detail, "larger than"));
        for (int i = 0; i < 100 && !web.huge_done; i++)
                usleep(50 * 1000);
        assert_true(web.huge_done);
        /* The validator hung up long before the server could send it all. */
        assert_true(web.huge_sent < HUGE_SIZE / 4);
}

static void test_http01_challtestsrv_with_dns_identifier(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("ctsToken1");

        REQUIRE_CTS();
        cts_post("/add-http01", "token", "ctsToken1", "content", ka);
        assert_int_equal(validate(CHALLENGE_HTTP_01, "dns", "web.example", "ctsToken1", ka, cts.http, 0, 0, &detail),
                         0);
        /* challtestsrv answers an unknown token with an empty 200. */
        assert_int_equal(validate(CHALLENGE_HTTP_01, "dns", "web.example", "ctsToken2", ka, cts.http, 0, 0, &detail),
                         -CF_E_INCORRECT_RESPONSE);
        /* The address comes from our resolver: pointing the name elsewhere (127.0.0.2, where
         * nothing listens) makes it fail. */
        cts_post_addresses("/add-a", "elsewhere.example.", "127.0.0.2");
        assert_int_equal(validate(CHALLENGE_HTTP_01, "dns", "elsewhere.example", "ctsToken1", ka, cts.http, 0, 0,
                                  &detail),
                         -CF_E_CONNECTION);
        cts_post("/clear-a", "host", "elsewhere.example.", NULL, NULL);
        assert_int_equal(validate(CHALLENGE_HTTP_01, "dns", "elsewhere.example", "ctsToken1", ka, cts.http, 0, 0,
                                  &detail),
                         0);
        cts_post("/del-http01", "token", "ctsToken1", NULL, NULL);
}

static void test_dns01_challtestsrv(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("dnsToken"), *value = dns01_value(ka);
        _cleanup_free_ char *other = dns01_value("other.key-authorization");

        REQUIRE_CTS();
        cts_post("/set-txt", "host", "_acme-challenge.x.example.", "value", value);
        assert_int_equal(validate(CHALLENGE_DNS_01, "dns", "x.example", "dnsToken", ka, 0, 0, 0, &detail), 0);

        cts_post("/set-txt", "host", "_acme-challenge.y.example.", "value", other);
        assert_int_equal(validate(CHALLENGE_DNS_01, "dns", "y.example", "dnsToken", ka, 0, 0, 0, &detail),
                         -CF_E_INCORRECT_RESPONSE);
        assert_non_null(strstr(detail, other));

        /* challtestsrv answers NOERROR without records (and without AA or RA) for names it has
         * no TXT for. */
        assert_int_equal(validate(CHALLENGE_DNS_01, "dns", "absent.example", "dnsToken", ka, 0, 0, 0, &detail),
                         -CF_E_INCORRECT_RESPONSE);
        assert_non_null(strstr(detail, "No TXT record found at _acme-challenge.absent.example"));

        cts_post("/clear-txt", "host", "_acme-challenge.x.example.", NULL, NULL);
        assert_int_equal(validate(CHALLENGE_DNS_01, "dns", "x.example", "dnsToken", ka, 0, 0, 0, &detail),
                         -CF_E_INCORRECT_RESPONSE);
        cts_post("/clear-txt", "host", "_acme-challenge.y.example.", NULL, NULL);
}

static void test_dns01_finds_value_among_many_records(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("manyToken"), *value = dns01_value(ka);
        char resolver[64];
        VaConfig config = { .resolver = resolver, .timeout = 5 };
        VaRequest req = { .type = CHALLENGE_DNS_01, .identifier_type = "dns", .identifier = "many.example",
                          .token = "manyToken", .key_authorization = ka };

        REQUIRE_CTS();
        /* Twelve records make an answer larger than 512 bytes. */
        for (int i = 0; i < 12; i++) {
                char other[128];

                snprintf(other, sizeof(other), "decoy-%d-padding-padding-padding-padding-padding-padding", i);
                cts_post("/set-txt", "host", "_acme-challenge.many.example.", "value", i == 8 ? value : other);
        }
        snprintf(resolver, sizeof(resolver), "%s", cts.resolver);
        assert_int_equal(va_validate(&config, &req, &detail), 0);

        if (ipv6_loopback()) {
                /* The same server over IPv6. */
                snprintf(resolver, sizeof(resolver), "[::1]:%u", cts.dns);
                assert_int_equal(va_validate(&config, &req, &detail), 0);
        }
        cts_post("/clear-txt", "host", "_acme-challenge.many.example.", NULL, NULL);
        assert_int_equal(va_validate(&config, &req, &detail), -CF_E_INCORRECT_RESPONSE);
}

/* A DNS server that truncates every UDP answer and answers fully over TCP, on the same port. */
static struct {
        int udp, tcp;
        unsigned port;
        pthread_t thread;
        char txt[128];
        atomic_int tcp_queries;
} tc;

static size_t tc_answer(const unsigned char *q, size_t qlen, bool truncate, unsigned char *out) {
        size_t n = qlen, len = strlen(tc.txt);

        memcpy(out, q, qlen);
        out[2] = 0x81 | (truncate ? 0x02 : 0);    /* QR, RD (and TC) */
        out[3] = 0x80;                             /* RA, NOERROR */
        if (truncate)
                return n;
        out[7] = 1;                                /* ANCOUNT */
        memcpy(out + n, "\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x00", 10);   /* name, TXT, IN, TTL */
        n += 10;
        out[n++] = 0;
        out[n++] = len + 1;
        out[n++] = len;
        memcpy(out + n, tc.txt, len);
        return n + len;
}

static void *tc_thread(void *p) {
        for (;;) {
                struct pollfd fds[2] = { { .fd = tc.udp, .events = POLLIN }, { .fd = tc.tcp, .events = POLLIN } };
                unsigned char q[512], out[1024];

                if (poll(fds, 2, -1) < 0 || (fds[1].revents & (POLLHUP | POLLERR | POLLNVAL)))
                        return NULL;
                if (fds[0].revents & POLLIN) {
                        struct sockaddr_storage from;
                        socklen_t fromlen = sizeof(from);
                        ssize_t n = recvfrom(tc.udp, q, sizeof(q), 0, (struct sockaddr *) &from, &fromlen);

                        if (n >= 12)
                                (void) !sendto(tc.udp, out, tc_answer(q, n, true, out), 0,
                                               (struct sockaddr *) &from, fromlen);
                }
                if (fds[1].revents & POLLIN) {
                        int fd = accept4(tc.tcp, NULL, NULL, SOCK_CLOEXEC);
                        unsigned char len[2];
                        size_t n, m;

                        if (fd < 0)
                                return NULL;
                        if (recv(fd, len, 2, MSG_WAITALL) == 2) {
                                n = len[0] << 8 | len[1];
                                if (n >= 12 && n <= sizeof(q) && recv(fd, q, n, MSG_WAITALL) == (ssize_t) n) {
                                        m = tc_answer(q, n, false, out + 2);
                                        out[0] = m >> 8;
                                        out[1] = m & 0xff;
                                        tc.tcp_queries++;
                                        (void) !send(fd, out, m + 2, MSG_NOSIGNAL);
                                }
                        }
                        close(fd);
                }
        }
}

static void test_dns_truncated_answer_is_retried_over_tcp(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("tcToken"), *value = dns01_value(ka);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        char resolver[64];
        VaConfig config = { .resolver = resolver, .timeout = 5 };
        VaRequest req = { .type = CHALLENGE_DNS_01, .identifier_type = "dns", .identifier = "tc.example",
                          .token = "tcToken", .key_authorization = ka };

        tc.tcp = listen_loopback(&tc.port);
        tc.udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sa.sin_port = htons(tc.port);
        assert_int_equal(bind(tc.udp, (struct sockaddr *) &sa, sizeof(sa)), 0);
        snprintf(tc.txt, sizeof(tc.txt), "%s", value);
        assert_int_equal(pthread_create(&tc.thread, NULL, tc_thread, NULL), 0);

        snprintf(resolver, sizeof(resolver), "127.0.0.1:%u", tc.port);
        assert_int_equal(va_validate(&config, &req, &detail), 0);
        assert_int_equal(tc.tcp_queries, 1);

        snprintf(tc.txt, sizeof(tc.txt), "not-the-value");
        assert_int_equal(va_validate(&config, &req, &detail), -CF_E_INCORRECT_RESPONSE);
        assert_int_equal(tc.tcp_queries, 2);

        shutdown(tc.tcp, SHUT_RDWR);
        pthread_join(tc.thread, NULL);
        close(tc.tcp);
        close(tc.udp);
}

static void test_dns_resolver_down_is_dns_error(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("t");
        char resolver[64];
        VaConfig config = { .resolver = resolver, .timeout = 3 };
        VaRequest req = { .type = CHALLENGE_DNS_01, .identifier_type = "dns", .identifier = "x.example",
                          .token = "t", .key_authorization = ka };
        double t0 = now_seconds();

        snprintf(resolver, sizeof(resolver), "127.0.0.1:%u", free_port());
        assert_int_equal(va_validate(&config, &req, &detail), -CF_E_DNS);
        fprintf(stderr, "  %s\n", detail);
        assert_true(now_seconds() - t0 < 4.0);

        /* A malformed resolver setting is reported, not used. */
        config.resolver = "not-an-address";
        assert_int_equal(va_validate(&config, &req, &detail), -CF_E_DNS);
        assert_non_null(strstr(detail, "resolver"));
}

static void test_tlsalpn01_challtestsrv(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("alpnToken");
        _cleanup_free_ char *other = key_authorization("otherToken");

        REQUIRE_CTS();
        cts_post("/add-tlsalpn01", "host", "alpn.example", "content", ka);
        assert_int_equal(validate(CHALLENGE_TLS_ALPN_01, "dns", "alpn.example", "alpnToken", ka, 0, cts.tls, 0,
                                  &detail),
                         0);
        /* Right certificate name, other key authorization. */
        assert_int_equal(validate(CHALLENGE_TLS_ALPN_01, "dns", "alpn.example", "otherToken", other, 0, cts.tls, 0,
                                  &detail),
                         -CF_E_INCORRECT_RESPONSE);
        /* A name challtestsrv has no challenge certificate for. */
        {
                int r = validate(CHALLENGE_TLS_ALPN_01, "dns", "unknown.example", "alpnToken", ka, 0, cts.tls, 0,
                                 &detail);
                assert_true(r == -CF_E_TLS || r == -CF_E_UNAUTHORIZED || r == -CF_E_CONNECTION);
        }
        cts_post("/del-tlsalpn01", "host", "alpn.example", NULL, NULL);
}

static int tls_case(TlsMode mode, const char *id_type, const char *identifier, const char *cert_identifier,
                    char **detail) {
        _cleanup_free_ char *ka = key_authorization("tlsToken");

        snprintf(tls_key_authorization, sizeof(tls_key_authorization), "%s", ka);
        snprintf(tls_identifier, sizeof(tls_identifier), "%s", cert_identifier);
        tls.mode = mode;
        return validate(CHALLENGE_TLS_ALPN_01, id_type, identifier, "tlsToken", ka, 0, tls.port, 0, detail);
}

static void test_tlsalpn01_ip_identifier_uses_reverse_sni(void **state) {
        _cleanup_free_ char *detail = NULL;
        char sni[256];

        assert_int_equal(tls_case(TLS_GOOD, "ip", "127.0.0.1", "127.0.0.1", &detail), 0);
        pthread_mutex_lock(&tls.lock);
        memcpy(sni, tls.sni, sizeof(sni));
        pthread_mutex_unlock(&tls.lock);
        assert_string_equal(sni, "1.0.0.127.in-addr.arpa");
}

static void test_tlsalpn01_certificate_checks(void **state) {
        _cleanup_free_ char *detail = NULL;

        assert_int_equal(tls_case(TLS_NO_ALPN, "ip", "127.0.0.1", "127.0.0.1", &detail), -CF_E_UNAUTHORIZED);
        assert_non_null(strstr(detail, "ALPN"));
        assert_int_equal(tls_case(TLS_TWO_SANS, "ip", "127.0.0.1", "127.0.0.1", &detail), -CF_E_UNAUTHORIZED);
        assert_int_equal(tls_case(TLS_NOT_CRITICAL, "ip", "127.0.0.1", "127.0.0.1", &detail), -CF_E_UNAUTHORIZED);
        assert_non_null(strstr(detail, "critical"));
        /* A certificate for another address. */
        assert_int_equal(tls_case(TLS_GOOD, "ip", "127.0.0.1", "127.0.0.2", &detail), -CF_E_UNAUTHORIZED);
        /* A DNS certificate where an IP address was asked. */
        assert_int_equal(tls_case(TLS_GOOD, "ip", "127.0.0.1", "localhost", &detail), -CF_E_UNAUTHORIZED);
}

static void test_tlsalpn01_plain_http_port_is_tls_error(void **state) {
        _cleanup_free_ char *detail = NULL, *ka = key_authorization("t");

        /* Our HTTP server answers the ClientHello with garbage (a 404 page). */
        int r = validate(CHALLENGE_TLS_ALPN_01, "ip", "127.0.0.1", "t", ka, 0, web.port, 2, &detail);
        assert_true(r == -CF_E_TLS || r == -CF_E_CONNECTION);
}

/* ---- the pool ---- */

#define N_POOL 5

static struct {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int n;
        int64_t ids[64];
        int errors[64];
        double when[64];
} results = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void pool_done(const VaResult *result, void *userdata) {
        assert_ptr_equal(userdata, &results);
        pthread_mutex_lock(&results.lock);
        if (results.n < 64) {
                results.ids[results.n] = result->challenge_id;
                results.errors[results.n] = result->error;
                results.when[results.n] = now_seconds();
                results.n++;
        }
        if (result->error < 0)
                assert_non_null(result->detail);
        else
                assert_null(result->detail);
        pthread_cond_broadcast(&results.cond);
        pthread_mutex_unlock(&results.lock);
}

static void results_reset(void) {
        pthread_mutex_lock(&results.lock);
        results.n = 0;
        pthread_mutex_unlock(&results.lock);
}

static int result_for(int64_t id) {
        for (int i = 0; i < results.n; i++)
                if (results.ids[i] == id)
                        return i;
        return -1;
}

static void wait_results(int n, double timeout) {
        double end = now_seconds() + timeout;

        pthread_mutex_lock(&results.lock);
        while (results.n < n && now_seconds() < end) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 100 * 1000 * 1000;
                if (ts.tv_nsec >= 1000000000) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&results.cond, &results.lock, &ts);
        }
        pthread_mutex_unlock(&results.lock);
}

static void test_pool_reports_each_challenge(void **state) {
        static const struct {
                const char *token;
                bool closed_port;
                int expected;
        } cases[N_POOL] = {
                { "ok-a", false, 0 },
                { "missing", false, -CF_E_UNAUTHORIZED },
                { "ok-b", false, 0 },
                { "wrong", false, -CF_E_INCORRECT_RESPONSE },
                { "ok-c", true, -CF_E_CONNECTION },
        };
        VaConfig config = { .http_port = web.port, .tls_port = free_port(), .workers = 3, .timeout = 5 };
        Va *va = NULL;

        results_reset();
        assert_int_equal(va_new(&config, pool_done, &results, &va), 0);
        for (int i = 0; i < N_POOL; i++) {
                _cleanup_free_ char *ka = key_authorization(cases[i].token);
                VaRequest req = {
                        .type = CHALLENGE_HTTP_01,
                        .identifier_type = "ip",
                        .identifier = "127.0.0.1",
                        .token = (char *) cases[i].token,
                        .key_authorization = ka,
                        .challenge_id = 1000 + i,
                };

                /* tls-alpn-01 goes to tls_port, where nothing listens. */
                if (cases[i].closed_port)
                        req.type = CHALLENGE_TLS_ALPN_01;
                assert_int_equal(va_submit(va, &req), 0);
        }
        wait_results(N_POOL, 20);
        va = va_free(va);
        assert_null(va);

        assert_int_equal(results.n, N_POOL);
        for (int i = 0; i < N_POOL; i++) {
                int k = result_for(1000 + i);

                assert_true(k >= 0);
                assert_int_equal(results.errors[k], cases[i].expected);
        }
}

static void test_pool_silent_peer_times_out(void **state) {
        _cleanup_free_ char *ka = key_authorization("silent");
        VaConfig config = { .http_port = web.silent_port, .tls_port = web.silent_port, .workers = 2, .timeout = 2 };
        VaRequest req = { .type = CHALLENGE_HTTP_01, .identifier_type = "ip", .identifier = "127.0.0.1",
                          .token = "silent", .key_authorization = ka, .challenge_id = 7 };
        Va *va = NULL;
        double t0;
        int k;

        results_reset();
        assert_int_equal(va_new(&config, pool_done, &results, &va), 0);
        t0 = now_seconds();
        assert_int_equal(va_submit(va, &req), 0);
        req.type = CHALLENGE_TLS_ALPN_01;
        req.challenge_id = 8;
        assert_int_equal(va_submit(va, &req), 0);
        wait_results(2, 10);
        va_free(va);

        assert_int_equal(results.n, 2);
        for (int64_t id = 7; id <= 8; id++) {
                k = result_for(id);
                assert_true(k >= 0);
                assert_int_equal(results.errors[k], -CF_E_CONNECTION);
                fprintf(stderr, "  challenge %" PRId64 " ended after %.2f s\n", id, results.when[k] - t0);
                assert_true(results.when[k] - t0 >= 1.5);
                assert_true(results.when[k] - t0 < 3.5);
        }
}

static void test_pool_refuses_bad_settings(void **state) {
        VaConfig config = { .resolver = "resolver.example:53" };
        Va *va = NULL;

        assert_int_equal(va_new(&config, pool_done, &results, &va), -EINVAL);
        config = (VaConfig) { .http_port = 65536 };
        assert_int_equal(va_new(&config, pool_done, &results, &va), -EINVAL);
        config = (VaConfig) { .timeout = -1 };
        assert_int_equal(va_new(&config, pool_done, &results, &va), -EINVAL);
        assert_null(va);
}

static void test_pool_queue_full_is_eagain(void **state) {
        _cleanup_free_ char *ka = key_authorization("silent");
        VaConfig config = { .http_port = web.silent_port, .workers = 1, .timeout = 1, .queue_size = 2 };
        VaRequest req = { .type = CHALLENGE_HTTP_01, .identifier_type = "ip", .identifier = "127.0.0.1",
                          .token = "silent", .key_authorization = ka };
        Va *va = NULL;
        int accepted = 0, r = 0;

        results_reset();
        assert_int_equal(va_new(&config, pool_done, &results, &va), 0);
        /* The worker holds one job for a second; two more wait; the next one is refused. */
        for (int i = 0; i < 10; i++) {
                req.challenge_id = i;
                r = va_submit(va, &req);
                if (r < 0)
                        break;
                accepted++;
                if (i == 0)
                        usleep(200 * 1000);
        }
        assert_int_equal(r, -EAGAIN);
        assert_int_equal(accepted, 3);
        /* va_free finishes what was accepted. */
        va_free(va);
        assert_int_equal(results.n, 3);
        for (int i = 0; i < 3; i++)
                assert_int_equal(results.errors[i], -CF_E_CONNECTION);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_challenge_type_strings),
                cmocka_unit_test(test_reverse_name_matches_rfc8738),
                cmocka_unit_test(test_resolver_setting_syntax),
                cmocka_unit_test(test_validate_rejects_bad_requests),
                cmocka_unit_test(test_http01_in_test_server_success),
                cmocka_unit_test(test_http01_ipv6_identifier),
                cmocka_unit_test(test_http01_wrong_body_is_incorrect_response),
                cmocka_unit_test(test_http01_404_is_unauthorized),
                cmocka_unit_test(test_http01_closed_port_is_connection),
                cmocka_unit_test(test_http01_follows_redirects_with_our_resolver),
                cmocka_unit_test(test_http01_refuses_redirect_to_other_port_or_scheme),
                cmocka_unit_test(test_http01_huge_body_is_cut_off),
                cmocka_unit_test(test_http01_challtestsrv_with_dns_identifier),
                cmocka_unit_test(test_dns01_challtestsrv),
                cmocka_unit_test(test_dns01_finds_value_among_many_records),
                cmocka_unit_test(test_dns_truncated_answer_is_retried_over_tcp),
                cmocka_unit_test(test_dns_resolver_down_is_dns_error),
                cmocka_unit_test(test_tlsalpn01_challtestsrv),
                cmocka_unit_test(test_tlsalpn01_ip_identifier_uses_reverse_sni),
                cmocka_unit_test(test_tlsalpn01_certificate_checks),
                cmocka_unit_test(test_tlsalpn01_plain_http_port_is_tls_error),
                cmocka_unit_test(test_pool_reports_each_challenge),
                cmocka_unit_test(test_pool_silent_peer_times_out),
                cmocka_unit_test(test_pool_refuses_bad_settings),
                cmocka_unit_test(test_pool_queue_full_is_eagain),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
