/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The HTTP(S) server: N worker threads, each with its own event_base and evhttp instances,
 * all accepting on the same listening sockets (each worker gets its own dup of every listener, so
 * the kernel hands a new connection to whichever loop is idle). A handler runs on the worker
 * thread that accepted the connection; nothing else blocks a loop. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "server/http/http.h"

typedef struct HttpServer HttpServer;

/* Per-thread and per-request hooks through which the daemon attaches its ServerWorker (store
 * connection, profile snapshot). All optional; HttpRequest.worker is NULL without thread_start. */
typedef struct HttpWorkerHooks {
        /* On the worker thread before it serves anything; a failure aborts http_server_start(). */
        int (*thread_start)(unsigned index, void *userdata, ServerWorker **ret);
        void (*thread_stop)(ServerWorker *w, void *userdata);
        void (*request_start)(ServerWorker *w, void *userdata);
        void (*request_end)(ServerWorker *w, void *userdata);
        void *userdata;
} HttpWorkerHooks;

typedef struct HttpServerOptions {
        unsigned workers;              /* 0: one per online CPU */
        size_t max_body_size;          /* 0: HTTP_BODY_MAX_DEFAULT */
        size_t max_header_size;        /* 0: HTTP_HEADERS_MAX_DEFAULT */
        uint64_t timeout_usec;         /* idle/read/write timeout per connection, 0: 30 s */
        unsigned max_connections;      /* open HTTPS connections over all workers, 0: unlimited */
        const char *base_url;          /* fixed "https://ca.example", NULL: from the Host header */
        const HttpRoute *routes;       /* copied */
        size_t n_routes;
        HttpWorkerHooks hooks;
} HttpServerOptions;

#define HTTP_HOST_MAX 255
#define HTTP_WORKERS_MAX 256
#define HTTP_LISTENERS_MAX 32

int http_server_new(const HttpServerOptions *options, HttpServer **ret);
/* Stops (if running) and frees. */
HttpServer *http_server_free(HttpServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpServer *, http_server_free);

/* Adds a listening socket (takes ownership of fd, also on failure). */
int http_server_add_listener_fd(HttpServer *s, int fd, bool tls);
/* Binds and listens on "127.0.0.1:8443", "[::1]:8443", "*:8443" (port 0: the kernel picks one). */
int http_server_listen(HttpServer *s, const char *address, bool tls);
size_t http_server_n_listeners(const HttpServer *s);
/* Parses a Listen= word ("127.0.0.1:8443", "[::1]:0", "*:8443"). -EINVAL if malformed. */
int http_parse_listen_address(const char *address, struct sockaddr_storage *ret, socklen_t *ret_len);
/* "https://127.0.0.1:43321" for listener i (the port the kernel chose, if 0 was asked). */
int http_server_listener_url(const HttpServer *s, size_t i, char **ret);

/* The TLS context for new connections (up-ref'd; connections already open keep theirs).
 * Thread-safe: a SIGHUP reload swaps it while the workers run. */
void http_server_set_tls_context(HttpServer *s, SSL_CTX *ctx);

/* Starts the workers; returns once every worker ran thread_start (or one failed). */
int http_server_start(HttpServer *s);
/* Stops accepting, lets the requests in flight finish and their responses flush, closes every
 * connection and joins the workers. Idempotent. */
void http_server_stop(HttpServer *s);

/* http-tls.c: a server SSL_CTX for TLS 1.2 and 1.3 from a PEM certificate chain and key.
 * client_ca_path (optional): request (not require) client certificates and verify them against
 * these roots; HttpRequest.client_cert is set only for a certificate that verified.
 * On failure *ret_error (if non-NULL) says what OpenSSL disliked. */
int http_tls_context_new(const char *cert_path, const char *key_path, const char *client_ca_path,
                         SSL_CTX **ret, char **ret_error);
