/* SPDX-License-Identifier: Apache-2.0 */

/* The HTTP layer against raw sockets and libcurl: limits, Host handling, HEAD, routing, TLS. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "server/http/http-server.h"

#define BODY_MAX 1024
#define HEADERS_MAX 2048
#define TIMEOUT_USEC (1000u * 1000u)

static atomic_int handler_calls;
static atomic_int handler_b_calls;
static HttpServer *server;
static unsigned plain_port, tls_port;
static char tmpdir[] = "/tmp/test-http-limits-XXXXXX";
static char cert_path[256], key_path[256];

static int handler_echo(const HttpRequest *req, HttpResponse *resp, void *userdata) {
        atomic_fetch_add(&handler_calls, 1);

        assert_int_equal(http_response_add_header(resp, "X-Test", "yes"), 0);
        return http_response_add_headerf(resp, "X-Echo", "%s %s %zu %s %s", req->method, req->path,
                                         req->body_size, req->base_url, req->tls ? "tls" : "plain") ?:
               http_response_set_body(resp, 200, "text/plain", req->url, strlen(req->url));
}

static int handler_b(const HttpRequest *req, HttpResponse *resp, void *userdata) {
        atomic_fetch_add(&handler_b_calls, 1);
        return http_response_set_body(resp, 201, "text/plain", "B", 1);
}

static atomic_int handler_oversize_calls;

/* A front end that refuses oversized bodies in its own protocol. */
static int handler_oversize(const HttpRequest *req, HttpResponse *resp, void *userdata) {
        atomic_fetch_add(&handler_oversize_calls, 1);
        if (req->body_too_large) {
                assert_int_equal(req->body_size, 0);
                return http_response_set_body(resp, 413, "application/problem+json", "{}", 2);
        }
        return http_response_set_body(resp, 200, "text/plain", "small", 5);
}

static int handler_fails(const HttpRequest *req, HttpResponse *resp, void *userdata) {
        return -EIO;
}

/* A self-signed P-256 certificate for 127.0.0.1, written for the server and trusted by curl. */
static void make_cert(void) {
        EVP_PKEY *key = EVP_EC_gen("P-256");
        X509 *x = X509_new();
        X509V3_CTX ctx;
        X509_EXTENSION *ext;
        FILE *f;

        assert_non_null(key);
        assert_non_null(x);
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (const unsigned char *) "127.0.0.1", -1, -1, 0);
        X509_set_issuer_name(x, X509_get_subject_name(x));
        X509_set_pubkey(x, key);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
        assert_non_null(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        assert_true(X509_sign(x, key, EVP_sha256()) > 0);

        snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
        snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
        f = fopen(cert_path, "we");
        assert_non_null(f);
        PEM_write_X509(f, x);
        fclose(f);
        f = fopen(key_path, "we");
        assert_non_null(f);
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
        fclose(f);

        X509_free(x);
        EVP_PKEY_free(key);
}

static unsigned url_port(size_t i) {
        char *url = NULL;
        assert_int_equal(http_server_listener_url(server, i, &url), 0);
        const char *colon = strrchr(url, ':');
        assert_non_null(colon);
        unsigned port = (unsigned) atoi(colon + 1);
        free(url);
        assert_true(port > 0);
        return port;
}

static int setup(void **state) {
        static const HttpRoute routes[] = {
                { .prefix = "/t/", .handler = handler_echo },
                { .prefix = "/t/b/", .handler = handler_b },
                { .prefix = "/fail", .handler = handler_fails },
                { .prefix = "/own413/", .handler = handler_oversize, .accepts_oversized_body = true },
        };
        HttpServerOptions o = {
                .workers = 1,
                .max_body_size = BODY_MAX,
                .max_header_size = HEADERS_MAX,
                .timeout_usec = TIMEOUT_USEC,
                .routes = routes,
                .n_routes = ELEMENTSOF(routes),
        };
        SSL_CTX *ctx = NULL;
        char *error = NULL;

        assert_non_null(mkdtemp(tmpdir));
        make_cert();

        assert_int_equal(http_server_new(&o, &server), 0);
        assert_int_equal(http_server_listen(server, "127.0.0.1:0", false), 0);
        assert_int_equal(http_server_listen(server, "127.0.0.1:0", true), 0);
        assert_int_equal(http_tls_context_new(cert_path, key_path, NULL, &ctx, &error), 0);
        http_server_set_tls_context(server, ctx);
        SSL_CTX_free(ctx);
        assert_int_equal(http_server_start(server), 0);

        plain_port = url_port(0);
        tls_port = url_port(1);
        return 0;
}

static int teardown(void **state) {
        char cmd[512];

        server = http_server_free(server);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        assert_int_equal(system(cmd), 0);
        return 0;
}

static int connect_plain(void) {
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_port = htons(plain_port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        return fd;
}

static void send_all(int fd, const char *data, size_t len) {
        while (len > 0) {
                ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
                if (n < 0)
                        return;    /* the server may close early: reading the answer tells */
                data += n;
                len -= (size_t) n;
        }
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* Reads until EOF (or the deadline); returns the bytes read, NUL-terminated. */
static char *read_until_close(int fd, unsigned timeout_ms, size_t *ret_len) {
        size_t size = 0, alloc = 65536;
        char *buf = malloc(alloc + 1);
        uint64_t deadline = now_usec() + (uint64_t) timeout_ms * 1000u;

        assert_non_null(buf);
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int64_t left = (int64_t) (deadline - now_usec());
                if (left <= 0)
                        break;
                if (poll(&p, 1, (int) (left / 1000) + 1) <= 0)
                        break;
                ssize_t n = recv(fd, buf + size, alloc - size, 0);
                if (n <= 0)
                        break;
                size += (size_t) n;
                if (size == alloc)
                        break;
        }
        buf[size] = 0;
        if (ret_len)
                *ret_len = size;
        return buf;
}

static int status_of(const char *response) {
        int status = -1;
        if (sscanf(response, "HTTP/1.%*d %d", &status) != 1)
                return -1;
        return status;
}

/* Sends one request with "Connection: close" semantics and returns the status line's code. */
static int raw_exchange(const char *request, size_t len, char **ret_response) {
        int fd = connect_plain();
        send_all(fd, request, len);
        char *resp = read_until_close(fd, 5000, NULL);
        close(fd);
        int status = status_of(resp);
        if (ret_response)
                *ret_response = resp;
        else
                free(resp);
        return status;
}

static void test_http_echo_sees_decoded_path_and_base_url(void **state) {
        static const char req[] = "GET /t/%41b?x=1 HTTP/1.1\r\nHost: 127.0.0.1:1234\r\nConnection: close\r\n\r\n";
        char *resp = NULL;

        assert_int_equal(raw_exchange(req, sizeof(req) - 1, &resp), 200);
        assert_non_null(strstr(resp, "X-Echo: GET /t/Ab 0 http://127.0.0.1:1234 plain\r\n"));
        assert_non_null(strstr(resp, "X-Test: yes\r\n"));
        assert_non_null(strstr(resp, "\r\n\r\nhttp://127.0.0.1:1234/t/Ab"));
        free(resp);
}

static void test_http_longest_prefix_wins(void **state) {
        static const char req_b[] = "GET /t/b/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        static const char req_none[] = "GET /nothing HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        int before = atomic_load(&handler_b_calls);
        char *resp = NULL;

        assert_int_equal(raw_exchange(req_b, sizeof(req_b) - 1, NULL), 201);
        assert_int_equal(atomic_load(&handler_b_calls), before + 1);
        assert_int_equal(raw_exchange(req_none, sizeof(req_none) - 1, &resp), 404);
        assert_non_null(strstr(resp, "application/problem+json"));
        free(resp);
}

static void test_http_handler_failure_is_500(void **state) {
        static const char req[] = "GET /fail HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        assert_int_equal(raw_exchange(req, sizeof(req) - 1, NULL), 500);
}

static void test_http_body_over_limit_is_413_without_handler(void **state) {
        size_t body_len = BODY_MAX * 4;
        char *req = NULL;
        int before = atomic_load(&handler_calls);
        int n = asprintf(&req, "POST /t/x HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n", body_len);
        assert_true(n > 0);
        req = realloc(req, (size_t) n + body_len);
        memset(req + n, 'a', body_len);

        assert_int_equal(raw_exchange(req, (size_t) n + body_len, NULL), 413);
        assert_int_equal(atomic_load(&handler_calls), before);
        free(req);
}

static void test_http_chunked_body_over_limit_is_413_without_handler(void **state) {
        static const char head[] = "POST /t/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                                   "Connection: close\r\n\r\n";
        char chunk[600 + 16];
        int before = atomic_load(&handler_calls);
        int fd = connect_plain();

        send_all(fd, head, sizeof(head) - 1);
        /* Each chunk is under the limit; their sum is not. */
        for (int i = 0; i < 4; i++) {
                int n = snprintf(chunk, sizeof(chunk), "%x\r\n", 600);
                memset(chunk + n, 'b', 600);
                memcpy(chunk + n + 600, "\r\n", 2);
                send_all(fd, chunk, (size_t) n + 602);
        }
        send_all(fd, "0\r\n\r\n", 5);
        char *resp = read_until_close(fd, 5000, NULL);
        close(fd);

        assert_int_equal(status_of(resp), 413);
        assert_int_equal(atomic_load(&handler_calls), before);
        free(resp);
}

static void test_http_body_at_limit_is_accepted(void **state) {
        char *req = NULL;
        char *resp = NULL;
        int n = asprintf(&req, "POST /t/x HTTP/1.1\r\nHost: h\r\nContent-Length: %u\r\n"
                         "Connection: close\r\n\r\n", BODY_MAX);
        assert_true(n > 0);
        req = realloc(req, (size_t) n + BODY_MAX);
        memset(req + n, 'c', BODY_MAX);

        assert_int_equal(raw_exchange(req, (size_t) n + BODY_MAX, &resp), 200);
        assert_non_null(strstr(resp, "X-Echo: POST /t/x 1024 "));
        free(req);
        free(resp);
}

static void test_http_headers_over_limit_are_4xx_without_handler(void **state) {
        size_t filler = HEADERS_MAX * 2;
        char *req = malloc(filler + 256);
        int before = atomic_load(&handler_calls);
        int n = snprintf(req, 256, "GET /t/x HTTP/1.1\r\nHost: h\r\nX-Big: ");
        memset(req + n, 'x', filler);
        memcpy(req + n + filler, "\r\n\r\n", 4);

        int status = raw_exchange(req, (size_t) n + filler + 4, NULL);
        assert_true(status >= 400 && status < 500);
        assert_int_equal(atomic_load(&handler_calls), before);
        free(req);
}

static void test_http_missing_host_is_400(void **state) {
        static const char req[] = "GET /t/x HTTP/1.1\r\nConnection: close\r\n\r\n";
        int before = atomic_load(&handler_calls);

        assert_int_equal(raw_exchange(req, sizeof(req) - 1, NULL), 400);
        assert_int_equal(atomic_load(&handler_calls), before);
}

static void test_http_oversized_or_bad_host_is_400(void **state) {
        char req[1024];
        char host[HTTP_HOST_MAX + 2];
        int before = atomic_load(&handler_calls);

        memset(host, 'h', sizeof(host) - 1);
        host[sizeof(host) - 1] = 0;
        snprintf(req, sizeof(req), "GET /t/x HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host);
        assert_int_equal(raw_exchange(req, strlen(req), NULL), 400);

        snprintf(req, sizeof(req), "GET /t/x HTTP/1.1\r\nHost: evil/path\r\nConnection: close\r\n\r\n");
        assert_int_equal(raw_exchange(req, strlen(req), NULL), 400);
        assert_int_equal(atomic_load(&handler_calls), before);
}

static void test_http_encoded_nul_in_path_is_400(void **state) {
        static const char req[] = "GET /t/a%00b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        assert_int_equal(raw_exchange(req, sizeof(req) - 1, NULL), 400);
}

static void test_http_head_sends_no_body(void **state) {
        static const char req[] = "HEAD /t/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        char *resp = NULL;

        assert_int_equal(raw_exchange(req, sizeof(req) - 1, &resp), 200);
        assert_non_null(strstr(resp, "X-Echo: HEAD /t/x 0 "));
        const char *end = strstr(resp, "\r\n\r\n");
        assert_non_null(end);
        assert_string_equal(end + 4, "");
        /* The length GET would have: the echoed URL "http://h/t/x". */
        assert_non_null(strstr(resp, "Content-Length: 12\r\n"));
        free(resp);

        static const char req_404[] = "HEAD /nothing HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        assert_int_equal(raw_exchange(req_404, sizeof(req_404) - 1, &resp), 404);
        end = strstr(resp, "\r\n\r\n");
        assert_non_null(end);
        assert_string_equal(end + 4, "");
        free(resp);
}

static void test_http_slow_client_is_cut_off(void **state) {
        static const char half[] = "GET /t/x HTTP/1.1\r\nHost: h\r\n";
        int fd = connect_plain();
        uint64_t start = now_usec();

        send_all(fd, half, sizeof(half) - 1);
        char *resp = read_until_close(fd, 10000, NULL);
        uint64_t elapsed = now_usec() - start;
        close(fd);

        /* Closed by the server's timeout (1 s), well before our own 10 s deadline. */
        assert_true(elapsed >= TIMEOUT_USEC / 2);
        assert_true(elapsed < 5 * TIMEOUT_USEC);
        /* Whatever was sent, it was not a successful answer to the half request. */
        assert_true(status_of(resp) == -1 || status_of(resp) >= 400);
        free(resp);
}

static void test_http_keepalive_serves_several_requests(void **state) {
        static const char req[] = "GET /t/k HTTP/1.1\r\nHost: h\r\n\r\n";
        static const char last[] = "GET /t/k HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        int fd = connect_plain();
        send_all(fd, req, sizeof(req) - 1);
        send_all(fd, last, sizeof(last) - 1);
        char *resp = read_until_close(fd, 5000, NULL);
        close(fd);

        const char *second = strstr(resp + 1, "HTTP/1.1 200");
        assert_int_equal(status_of(resp), 200);
        assert_non_null(second);
        free(resp);
}

static size_t curl_collect(char *ptr, size_t size, size_t n, void *userdata) {
        char *buf = userdata;
        size_t have = strlen(buf), add = size * n;
        if (have + add >= 4096)
                return 0;
        memcpy(buf + have, ptr, add);
        buf[have + add] = 0;
        return add;
}

static void test_http_tls_request_works(void **state) {
        char url[128], expected[128], body[4096] = "";
        long code = 0, version = 0;
        CURL *c = curl_easy_init();

        assert_non_null(c);
        snprintf(url, sizeof(url), "https://127.0.0.1:%u/t/secure", tls_port);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CAINFO, cert_path);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &version);
        assert_int_equal(code, 200);
        snprintf(expected, sizeof(expected), "https://127.0.0.1:%u/t/secure", tls_port);
        assert_string_equal(body, expected);

        /* TLS 1.1 and older are refused. */
        body[0] = 0;
        curl_easy_setopt(c, CURLOPT_SSLVERSION, (long) (CURL_SSLVERSION_TLSv1_0 | CURL_SSLVERSION_MAX_TLSv1_1));
        assert_int_not_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_cleanup(c);
}

static void test_http_tls_port_refuses_plaintext(void **state) {
        static const char req[] = "GET /t/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_port = htons(tls_port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        int before = atomic_load(&handler_calls);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        send_all(fd, req, sizeof(req) - 1);
        char *resp = read_until_close(fd, 5000, NULL);
        close(fd);

        assert_int_equal(status_of(resp), -1);
        assert_int_equal(atomic_load(&handler_calls), before);
        free(resp);
}

static int tls_client_connect(unsigned port, SSL_CTX *ctx, SSL **ret) {
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        struct timeval tv = { .tv_sec = 5 };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        SSL *ssl;

        assert_true(fd >= 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        ssl = SSL_new(ctx);
        assert_non_null(ssl);
        SSL_set_fd(ssl, fd);
        int r = SSL_connect(ssl);
        *ret = ssl;
        return r;
}

static void tls_client_close(SSL *ssl) {
        int fd = SSL_get_fd(ssl);
        SSL_free(ssl);
        close(fd);
}

static unsigned count_fds(void) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "ls /proc/%d/fd | wc -l", (int) getpid());
        FILE *p = popen(cmd, "r");
        unsigned n = 0;
        assert_non_null(p);
        assert_int_equal(fscanf(p, "%u", &n), 1);
        pclose(p);
        return n;
}

static void test_http_tls_connections_over_limit_are_refused(void **state) {
        static const HttpRoute routes[] = { { .prefix = "/t/", .handler = handler_echo } };
        HttpServerOptions o = {
                .workers = 1,
                .max_connections = 2,
                .routes = routes,
                .n_routes = ELEMENTSOF(routes),
        };
        HttpServer *limited = NULL;
        SSL_CTX *server_ctx = NULL, *client_ctx = SSL_CTX_new(TLS_client_method());
        SSL *c1, *c2, *c3, *c4 = NULL;
        char *url = NULL;
        unsigned port, fds_before;
        int r = -1;

        assert_int_equal(http_server_new(&o, &limited), 0);
        assert_int_equal(http_server_listen(limited, "127.0.0.1:0", true), 0);
        assert_int_equal(http_tls_context_new(cert_path, key_path, NULL, &server_ctx, NULL), 0);
        http_server_set_tls_context(limited, server_ctx);
        SSL_CTX_free(server_ctx);
        assert_int_equal(http_server_start(limited), 0);
        assert_int_equal(http_server_listener_url(limited, 0, &url), 0);
        port = (unsigned) atoi(strrchr(url, ':') + 1);
        free(url);
        fds_before = count_fds();

        assert_int_equal(tls_client_connect(port, client_ctx, &c1), 1);
        assert_int_equal(tls_client_connect(port, client_ctx, &c2), 1);
        /* The third handshake fails at once (an alert, not a timeout). */
        uint64_t start = now_usec();
        assert_true(tls_client_connect(port, client_ctx, &c3) <= 0);
        assert_true(now_usec() - start < 2000000u);
        tls_client_close(c3);

        /* A slot frees when a connection closes. */
        tls_client_close(c1);
        for (int i = 0; i < 50 && r != 1; i++) {
                if (c4)
                        tls_client_close(c4);
                usleep(50000);
                r = tls_client_connect(port, client_ctx, &c4);
        }
        assert_int_equal(r, 1);
        tls_client_close(c4);
        tls_client_close(c2);

        limited = http_server_free(limited);
        SSL_CTX_free(client_ctx);
        /* Every connection's descriptor was closed (the listener's too). */
        assert_true(count_fds() <= fds_before);
}

static pthread_t worker_thread_slow, worker_thread_fast;

/* Holds its event loop until the test releases it, as a handler must never do: only another
 * loop can answer meanwhile. The 30 s cap only keeps a broken test from hanging forever. */
static atomic_int slow_entered, slow_release, slow_returned;

static int handler_slow(const HttpRequest *req, HttpResponse *resp, void *userdata) {
        worker_thread_slow = pthread_self();
        atomic_store(&slow_entered, 1);
        for (int i = 0; i < 3000 && !atomic_load(&slow_release); i++)
                usleep(10 * 1000);
        atomic_store(&slow_returned, 1);
        return http_response_set_body(resp, 200, "text/plain", "slow", 4);
}

static int handler_fast(const HttpRequest *req, HttpResponse *resp, void *userdata) {
        worker_thread_fast = pthread_self();
        return http_response_set_body(resp, 200, "text/plain", "fast", 4);
}

static int connect_port(unsigned port) {
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        return fd;
}

static void test_http_workers_serve_on_separate_event_loops(void **state) {
        static const HttpRoute routes[] = {
                { .prefix = "/slow", .handler = handler_slow },
                { .prefix = "/fast", .handler = handler_fast },
        };
        static const char slow_req[] = "GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        static const char fast_req[] = "GET /fast HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        HttpServerOptions o = {
                .workers = 2,
                .routes = routes,
                .n_routes = ELEMENTSOF(routes),
        };
        HttpServer *two = NULL;
        char *url = NULL, *resp;
        unsigned port;
        int fd_slow, fd_fast;

        assert_int_equal(http_server_new(&o, &two), 0);
        assert_int_equal(http_server_listen(two, "127.0.0.1:0", false), 0);
        assert_int_equal(http_server_start(two), 0);
        assert_int_equal(http_server_listener_url(two, 0, &url), 0);
        port = (unsigned) atoi(strrchr(url, ':') + 1);
        free(url);

        fd_slow = connect_port(port);
        send_all(fd_slow, slow_req, strlen(slow_req));
        for (int i = 0; i < 1000 && !atomic_load(&slow_entered); i++)
                usleep(10 * 1000);
        assert_true(atomic_load(&slow_entered));        /* one loop is now inside handler_slow */
        fd_fast = connect_port(port);
        send_all(fd_fast, fast_req, strlen(fast_req));
        resp = read_until_close(fd_fast, 20000, NULL);
        assert_int_equal(status_of(resp), 200);
        /* Answered while the other loop was still held: causal, not timed. */
        assert_false(atomic_load(&slow_returned));
        free(resp);
        atomic_store(&slow_release, 1);
        resp = read_until_close(fd_slow, 5000, NULL);
        assert_int_equal(status_of(resp), 200);
        free(resp);
        close(fd_fast);
        close(fd_slow);
        assert_false(pthread_equal(worker_thread_slow, worker_thread_fast));

        two = http_server_free(two);
}

static int handler_client_cert(const HttpRequest *req, HttpResponse *resp, void *userdata) {
        char cn[128] = "none";

        if (req->client_cert)
                X509_NAME_get_text_by_NID(X509_get_subject_name(req->client_cert), NID_commonName, cn, sizeof(cn));
        return http_response_set_body(resp, 200, "text/plain", cn, strlen(cn));
}

static void write_self_signed(const char *cn, const char *cert_file, const char *key_file) {
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                 "-subj /CN=%s -keyout '%s' -out '%s' 2>/dev/null", cn, key_file, cert_file);
        assert_int_equal(system(cmd), 0);
}

static long curl_get(const char *url, const char *client_cert, const char *client_key, char body[static 4096]) {
        CURL *c = curl_easy_init();
        long code = 0;

        body[0] = 0;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CAINFO, cert_path);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
        if (client_cert) {
                curl_easy_setopt(c, CURLOPT_SSLCERT, client_cert);
                curl_easy_setopt(c, CURLOPT_SSLKEY, client_key);
        }
        if (curl_easy_perform(c) == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
        return code;
}

static void test_http_client_certificate_is_passed_only_when_verified(void **state) {
        static const HttpRoute routes[] = { { .prefix = "/", .handler = handler_client_cert } };
        HttpServerOptions o = { .workers = 1, .routes = routes, .n_routes = 1 };
        char trusted_crt[300], trusted_key[300], rogue_crt[300], rogue_key[300], url[128], body[4096];
        HttpServer *mtls = NULL;
        SSL_CTX *ctx = NULL;
        char *u = NULL;

        snprintf(trusted_crt, sizeof(trusted_crt), "%s/client.crt", tmpdir);
        snprintf(trusted_key, sizeof(trusted_key), "%s/client.key", tmpdir);
        snprintf(rogue_crt, sizeof(rogue_crt), "%s/rogue.crt", tmpdir);
        snprintf(rogue_key, sizeof(rogue_key), "%s/rogue.key", tmpdir);
        write_self_signed("trusted-client", trusted_crt, trusted_key);
        write_self_signed("rogue-client", rogue_crt, rogue_key);

        assert_int_equal(http_server_new(&o, &mtls), 0);
        assert_int_equal(http_server_listen(mtls, "127.0.0.1:0", true), 0);
        /* Client certificates verify against trusted-client's self-signed certificate. */
        assert_int_equal(http_tls_context_new(cert_path, key_path, trusted_crt, &ctx, NULL), 0);
        http_server_set_tls_context(mtls, ctx);
        SSL_CTX_free(ctx);
        assert_int_equal(http_server_start(mtls), 0);
        assert_int_equal(http_server_listener_url(mtls, 0, &u), 0);
        snprintf(url, sizeof(url), "%s/who", u);
        free(u);

        assert_int_equal(curl_get(url, NULL, NULL, body), 200);
        assert_string_equal(body, "none");
        assert_int_equal(curl_get(url, trusted_crt, trusted_key, body), 200);
        assert_string_equal(body, "trusted-client");
        /* An unverifiable certificate does not fail the handshake; it is just not passed on. */
        assert_int_equal(curl_get(url, rogue_crt, rogue_key, body), 200);
        assert_string_equal(body, "none");

        http_server_free(mtls);
}

static void test_http_response_rejects_header_injection(void **state) {
        HttpResponse resp = {};

        assert_int_equal(http_response_add_header(&resp, "X-A", "ok\r\nSet-Cookie: x"), -EINVAL);
        assert_int_equal(http_response_add_header(&resp, "X A", "ok"), -EINVAL);
        for (unsigned i = 0; i < HTTP_RESPONSE_HEADERS_MAX; i++)
                assert_int_equal(http_response_add_header(&resp, "Link", "<x>"), 0);
        assert_int_equal(http_response_add_header(&resp, "Link", "<x>"), -E2BIG);
        http_response_done(&resp);
        assert_int_equal(resp.n_headers, 0);
}

static char *post_of_size(const char *path, size_t body_len, size_t *ret_len) {
        char *req = NULL;
        int n = asprintf(&req, "POST %s HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n", path, body_len);
        assert_true(n > 0);
        req = realloc(req, (size_t) n + body_len);
        assert_non_null(req);
        memset(req + n, 'o', body_len);
        *ret_len = (size_t) n + body_len;
        return req;
}

static void test_http_oversized_body_reaches_front_end_that_accepts_it(void **state) {
        int before = atomic_load(&handler_oversize_calls);
        char *resp = NULL;
        size_t len;
        char *req = post_of_size("/own413/x", BODY_MAX + 1, &len);

        assert_int_equal(raw_exchange(req, len, &resp), 413);
        assert_non_null(strstr(resp, "application/problem+json"));
        assert_int_equal(atomic_load(&handler_oversize_calls), before + 1);
        free(req);
        free(resp);
}

static void test_http_body_beyond_hard_cap_is_plain_413_even_for_such_front_end(void **state) {
        int before = atomic_load(&handler_oversize_calls);
        size_t len;
        char *req = post_of_size("/own413/x", BODY_MAX * HTTP_BODY_HARD_CAP_FACTOR + 1, &len);

        assert_int_equal(raw_exchange(req, len, NULL), 413);
        assert_int_equal(atomic_load(&handler_oversize_calls), before);
        free(req);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_http_echo_sees_decoded_path_and_base_url),
                cmocka_unit_test(test_http_longest_prefix_wins),
                cmocka_unit_test(test_http_handler_failure_is_500),
                cmocka_unit_test(test_http_body_over_limit_is_413_without_handler),
                cmocka_unit_test(test_http_chunked_body_over_limit_is_413_without_handler),
                cmocka_unit_test(test_http_oversized_body_reaches_front_end_that_accepts_it),
                cmocka_unit_test(test_http_body_beyond_hard_cap_is_plain_413_even_for_such_front_end),
                cmocka_unit_test(test_http_body_at_limit_is_accepted),
                cmocka_unit_test(test_http_headers_over_limit_are_4xx_without_handler),
                cmocka_unit_test(test_http_missing_host_is_400),
                cmocka_unit_test(test_http_oversized_or_bad_host_is_400),
                cmocka_unit_test(test_http_encoded_nul_in_path_is_400),
                cmocka_unit_test(test_http_head_sends_no_body),
                cmocka_unit_test(test_http_slow_client_is_cut_off),
                cmocka_unit_test(test_http_keepalive_serves_several_requests),
                cmocka_unit_test(test_http_tls_request_works),
                cmocka_unit_test(test_http_tls_port_refuses_plaintext),
                cmocka_unit_test(test_http_tls_connections_over_limit_are_refused),
                cmocka_unit_test(test_http_workers_serve_on_separate_event_loops),
                cmocka_unit_test(test_http_client_certificate_is_passed_only_when_verified),
                cmocka_unit_test(test_http_response_rejects_header_injection),
        };

        /* As the daemon does: a peer that hangs up must not kill the writer. */
        signal(SIGPIPE, SIG_IGN);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int r = cmocka_run_group_tests(tests, setup, teardown);
        curl_global_cleanup();
        return r;
}
