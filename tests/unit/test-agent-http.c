/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent/agent-acme.h"
#include "agent/agent-http.h"

/* A one-shot HTTP server: answers the next connection with a canned response and records the
 * request head. */
typedef struct Canned {
        int listen_fd;
        int port;
        const char *head;
        size_t body_size;             /* body of 'x' bytes after head */
        char request[8192];
        pthread_t thread;
} Canned;

static void *serve(void *arg) {
        Canned *c = arg;
        char *body;
        size_t n = 0;
        ssize_t k;
        int fd = accept(c->listen_fd, NULL, NULL);

        if (fd < 0)
                return NULL;
        while (n < sizeof c->request - 1 && (k = recv(fd, c->request + n, sizeof c->request - 1 - n, 0)) > 0) {
                n += (size_t) k;
                c->request[n] = 0;
                if (strstr(c->request, "\r\n\r\n")) {
                        /* POST bodies follow the head; read what Content-Length announces. */
                        const char *cl = strcasestr(c->request, "Content-Length:");
                        char *end = strstr(c->request, "\r\n\r\n") + 4;
                        if (!cl || (size_t) (c->request + n - end) >= strtoul(cl + 15, NULL, 10))
                                break;
                }
        }
        (void) !send(fd, c->head, strlen(c->head), MSG_NOSIGNAL);
        body = malloc(c->body_size ?: 1);
        memset(body, 'x', c->body_size);
        for (size_t off = 0; off < c->body_size;) {
                k = send(fd, body + off, c->body_size - off, MSG_NOSIGNAL);
                if (k <= 0)
                        break;
                off += (size_t) k;
        }
        free(body);
        close(fd);
        return NULL;
}

static void canned_start(Canned *c, const char *head, size_t body_size) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;

        memset(c, 0, sizeof *c);
        c->head = head;
        c->body_size = body_size;
        c->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(c->listen_fd >= 0);
        assert_int_equal(bind(c->listen_fd, (struct sockaddr *) &a, sizeof a), 0);
        assert_int_equal(listen(c->listen_fd, 1), 0);
        assert_int_equal(getsockname(c->listen_fd, (struct sockaddr *) &a, &len), 0);
        c->port = ntohs(a.sin_port);
        assert_int_equal(pthread_create(&c->thread, NULL, serve, c), 0);
}

static void canned_stop(Canned *c) {
        pthread_join(c->thread, NULL);
        close(c->listen_fd);
}

static char *url_for(Canned *c, const char *path) {
        char *u;
        assert_true(asprintf(&u, "http://127.0.0.1:%d%s", c->port, path) > 0);
        return u;
}

static void test_http_collects_acme_headers(void **state) {
        _cleanup_(agent_http_freep) AgentHttp *h = NULL;
        _cleanup_free_ char *url = NULL;
        AgentHttpResponse r = {};
        Canned c;

        canned_start(&c, "HTTP/1.1 201 Created\r\n"
                         "Content-Type: Application/JSON; charset=utf-8\r\n"
                         "Replay-Nonce: nonce-abc_123\r\n"
                         "Location: https://ca.test/acme/order/7\r\n"
                         "Retry-After: 17\r\n"
                         "Link: <https://ca.test/dir>;rel=\"index\"\r\n"
                         "Link: <https://ca.test/acme/issuer/1>;rel=\"up\"\r\n"
                         "Content-Length: 5\r\n\r\n", 5);
        url = url_for(&c, "/new-order");
        assert_int_equal(agent_http_new(NULL, &h), 0);
        assert_int_equal(agent_http_post_jose(h, url, "{\"protected\":\"e30\"}", "application/pem-certificate-chain", &r), 0);
        canned_stop(&c);

        assert_int_equal(r.status, 201);
        assert_int_equal(r.body_size, 5);
        assert_string_equal(r.body, "xxxxx");
        assert_string_equal(r.content_type, "application/json");
        assert_string_equal(r.replay_nonce, "nonce-abc_123");
        assert_string_equal(r.location, "https://ca.test/acme/order/7");
        assert_string_equal(r.retry_after, "17");
        assert_string_equal(r.link_up, "https://ca.test/acme/issuer/1");
        assert_non_null(strstr(c.request, "POST /new-order HTTP/1.1\r\n"));
        assert_non_null(strcasestr(c.request, "Content-Type: application/jose+json\r\n"));
        assert_non_null(strcasestr(c.request, "Accept: application/pem-certificate-chain\r\n"));
        assert_non_null(strstr(c.request, "{\"protected\":\"e30\"}"));
        agent_http_response_done(&r);
}

static void test_http_error_status_is_not_a_transport_failure(void **state) {
        _cleanup_(agent_http_freep) AgentHttp *h = NULL;
        _cleanup_free_ char *url = NULL;
        AgentHttpResponse r = {};
        Canned c;

        canned_start(&c, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json\r\n"
                         "Content-Length: 3\r\n\r\n", 3);
        url = url_for(&c, "/x");
        assert_int_equal(agent_http_new(NULL, &h), 0);
        assert_int_equal(agent_http_get(h, url, &r), 0);
        canned_stop(&c);
        assert_int_equal(r.status, 400);
        assert_string_equal(r.content_type, "application/problem+json");
        assert_null(r.replay_nonce);
        agent_http_response_done(&r);
}

static void test_http_body_over_limit_is_refused(void **state) {
        _cleanup_(agent_http_freep) AgentHttp *h = NULL;
        _cleanup_free_ char *url = NULL, *head = NULL;
        AgentHttpResponse r = {};
        Canned c;

        /* Announced and sent: one byte more than the limit. */
        assert_true(asprintf(&head, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", AGENT_HTTP_BODY_MAX + 1) > 0);
        canned_start(&c, head, AGENT_HTTP_BODY_MAX + 1);
        url = url_for(&c, "/big");
        assert_int_equal(agent_http_new(NULL, &h), 0);
        assert_int_equal(agent_http_get(h, url, &r), -E2BIG);
        canned_stop(&c);

        /* Not announced (close-delimited): the stream is cut at the limit. */
        canned_start(&c, "HTTP/1.0 200 OK\r\n\r\n", AGENT_HTTP_BODY_MAX + 4096);
        free(url);
        url = url_for(&c, "/big2");
        assert_int_equal(agent_http_get(h, url, &r), -E2BIG);
        canned_stop(&c);

        /* Exactly the limit is fine. */
        free(head);
        assert_true(asprintf(&head, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", AGENT_HTTP_BODY_MAX) > 0);
        canned_start(&c, head, AGENT_HTTP_BODY_MAX);
        free(url);
        url = url_for(&c, "/limit");
        assert_int_equal(agent_http_get(h, url, &r), 0);
        canned_stop(&c);
        assert_int_equal(r.body_size, AGENT_HTTP_BODY_MAX);
        agent_http_response_done(&r);
}

static char *head_with_headers(unsigned n) {
        char *head = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&head, &size);

        assert_non_null(f);
        fputs("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", f);
        for (unsigned i = 1; i < n; i++)
                fprintf(f, "X-Filler-%u: a\r\n", i);
        fputs("\r\n", f);
        assert_int_equal(fclose(f), 0);
        return head;
}

static void test_http_too_many_headers_is_refused(void **state) {
        _cleanup_(agent_http_freep) AgentHttp *h = NULL;
        _cleanup_free_ char *url = NULL, *head = NULL;
        AgentHttpResponse r = {};
        Canned c;

        assert_int_equal(agent_http_new(NULL, &h), 0);

        /* Exactly the limit (Content-Length counted) is accepted. */
        head = head_with_headers(AGENT_HTTP_HEADERS_MAX);
        canned_start(&c, head, 2);
        url = url_for(&c, "/many");
        assert_int_equal(agent_http_get(h, url, &r), 0);
        canned_stop(&c);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_size, 2);
        agent_http_response_done(&r);

        /* One more header line than the limit: refused, with a reason. */
        free(head);
        head = head_with_headers(AGENT_HTTP_HEADERS_MAX + 1);
        canned_start(&c, head, 2);
        free(url);
        url = url_for(&c, "/too-many");
        assert_int_equal(agent_http_get(h, url, &r), -EMSGSIZE);
        canned_stop(&c);
        assert_non_null(strstr(agent_http_last_error(h), "header lines"));
}

static void test_acme_error_from_server_has_no_control_characters(void **state) {
        static const char body[] =
                "{\"type\":\"urn:ietf:params:acme:error:serverInternal\","
                "\"detail\":\"boom\\u001b[2J\\nFAKE LOG LINE\\r\\u007f\"}";
        _cleanup_(acme_client_freep) AcmeClient *client = NULL;
        _cleanup_free_ char *url = NULL, *head = NULL;
        const char *e;
        Canned c;

        assert_true(asprintf(&head, "HTTP/1.1 500 Internal\r\nContent-Type: application/problem+json\r\n"
                             "Content-Length: %zu\r\n\r\n%s", strlen(body), body) > 0);
        canned_start(&c, head, 0);
        url = url_for(&c, "/directory");
        assert_int_equal(acme_client_new(&(AcmeClientOptions) { .directory_url = url, .state_dir = "/nonexistent" },
                                         &client), 0);
        assert_true(acme_client_load_directory(client) < 0);
        canned_stop(&c);

        e = acme_client_error(client);
        assert_non_null(strstr(e, "boom?[2J?FAKE LOG LINE??"));
        for (const char *p = e; *p; p++)
                assert_true((unsigned char) *p >= ' ' && *p != 0x7f);
}

static void test_http_connection_refused(void **state) {
        _cleanup_(agent_http_freep) AgentHttp *h = NULL;
        AgentHttpResponse r = {};
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        char url[64];
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        /* A port that was just free and has no listener. */
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        close(fd);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(a.sin_port));
        assert_int_equal(agent_http_new(NULL, &h), 0);
        assert_int_equal(agent_http_get(h, url, &r), -ECONNREFUSED);
        assert_true(strlen(agent_http_last_error(h)) > 0);
        /* Only http and https: a file:// URL (say, from a hostile directory) is refused. */
        assert_int_equal(agent_http_get(h, "file:///etc/passwd", &r), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_http_collects_acme_headers),
                cmocka_unit_test(test_http_error_status_is_not_a_transport_failure),
                cmocka_unit_test(test_http_body_over_limit_is_refused),
                cmocka_unit_test(test_http_too_many_headers_is_refused),
                cmocka_unit_test(test_acme_error_from_server_has_no_control_characters),
                cmocka_unit_test(test_http_connection_refused),
        };

        signal(SIGPIPE, SIG_IGN);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
