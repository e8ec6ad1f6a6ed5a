/* SPDX-License-Identifier: Apache-2.0 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/ssl.h>

#include "server/http/http-server.h"
#include "shared/log.h"

/* How long a stopping worker keeps its loop running after it closed its listeners, so responses
 * already queued reach their clients before the connections are closed. */
#define HTTP_STOP_GRACE_USEC (500u * 1000u)
#define HTTP_TIMEOUT_DEFAULT_USEC (30u * 1000u * 1000u)
#define HTTP_LISTEN_BACKLOG 512
/* Responses up to this size are made one contiguous buffer before they are written, so that
 * bufferevent_openssl, which calls SSL_write() once per buffer chain, sends headers and body as
 * one TLS record and one write(). Larger ones are not copied; they are many records anyway. */
#define HTTP_LINEARIZE_MAX (64u * 1024u)

typedef struct HttpListener {
        int fd;
        bool tls;
        char *url;
} HttpListener;

typedef struct HttpWorker HttpWorker;

/* One evhttp per kind (TLS or plain) on a worker: evhttp's bufferevent callback is per evhttp,
 * not per listener. */
typedef struct HttpFront {
        HttpWorker *worker;
        bool tls;
        struct evhttp *evhttp;
} HttpFront;

struct HttpWorker {
        HttpServer *server;
        unsigned index;
        pthread_t thread;
        bool thread_running;
        struct event_base *base;
        struct event *stop_event;
        HttpFront fronts[2];                     /* [0] plain, [1] TLS */
        struct evhttp_bound_socket *bound[HTTP_LISTENERS_MAX];
        HttpFront *bound_front[HTTP_LISTENERS_MAX];
        size_t n_bound;
        ServerWorker *server_worker;
        HttpDeferred *held;                      /* replies held on this worker */
        bool stopping;
};

/* HttpRequest.impl for requests the layer made. */
typedef struct HttpRequestImpl {
        struct evhttp_request *r;
        HttpWorker *worker;
        HttpDeferred *deferred;                  /* set by http_request_defer() */
} HttpRequestImpl;

struct HttpDeferred {
        atomic_uint n_ref;
        /* Guards event against a wake from another thread while the owner frees it. */
        pthread_mutex_t lock;
        struct event *event;                     /* NULL once finished */

        /* The rest only on the owning worker's thread. */
        HttpWorker *worker;
        struct evhttp_request *r;                /* NULL once the connection is gone */
        HttpDeferred *prev, *next;               /* HttpWorker.held */
        HttpResumeHandler resume;
        void *userdata;
        void (*userdata_free)(void *userdata);
        const char *method;
        char *path, *base_url, *url, *remote_address;
        bool tls;
};

struct HttpServer {
        HttpServerOptions options;
        HttpRoute *routes;
        char *base_url;

        HttpListener listeners[HTTP_LISTENERS_MAX];
        size_t n_listeners;

        pthread_mutex_t tls_lock;
        SSL_CTX *tls_ctx;
        SSL_CTX *refuse_ctx;           /* for connections over max_connections */

        atomic_uint n_connections;     /* open connections, all workers */

        HttpWorker *workers;
        unsigned n_workers;

        pthread_mutex_t start_lock;
        pthread_cond_t start_cond;
        unsigned n_reported;
        int start_error;

        bool running;
};

static int conn_ex_index = -1;
static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp);

static int refuse_client_hello(SSL *ssl, int *alert, void *arg);

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_result;

static void evthread_init(void) {
        /* The main thread wakes the worker loops to stop them; that needs libevent's locking. */
        evthread_result = evthread_use_pthreads();
        conn_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_ex_free);
        if (conn_ex_index < 0)
                evthread_result = -1;
}

int http_server_new(const HttpServerOptions *options, HttpServer **ret) {
        _cleanup_(http_server_freep) HttpServer *s = NULL;

        if (!options || !ret)
                return -EINVAL;
        if (options->workers > HTTP_WORKERS_MAX)
                return -ERANGE;
        if (options->n_routes > 0 && !options->routes)
                return -EINVAL;

        pthread_once(&evthread_once, evthread_init);
        if (evthread_result < 0)
                return -ENOSYS;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        pthread_mutex_init(&s->tls_lock, NULL);
        pthread_mutex_init(&s->start_lock, NULL);
        pthread_cond_init(&s->start_cond, NULL);

        s->options = *options;
        s->refuse_ctx = SSL_CTX_new(TLS_server_method());
        if (!s->refuse_ctx)
                return -ENOMEM;
        SSL_CTX_set_client_hello_cb(s->refuse_ctx, refuse_client_hello, NULL);
        if (s->options.max_body_size == 0)
                s->options.max_body_size = HTTP_BODY_MAX_DEFAULT;
        if (s->options.max_header_size == 0)
                s->options.max_header_size = HTTP_HEADERS_MAX_DEFAULT;
        if (s->options.timeout_usec == 0)
                s->options.timeout_usec = HTTP_TIMEOUT_DEFAULT_USEC;
        if (s->options.workers == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                s->options.workers = n > 0 ? (unsigned) MIN(n, (long) HTTP_WORKERS_MAX) : 1;
        }

        if (options->base_url) {
                s->base_url = strdup(options->base_url);
                if (!s->base_url)
                        return -ENOMEM;
                /* A trailing slash would double up with every path. */
                size_t l = strlen(s->base_url);
                while (l > 0 && s->base_url[l - 1] == '/')
                        s->base_url[--l] = 0;
        }
        s->options.base_url = s->base_url;

        if (options->n_routes > 0) {
                s->routes = calloc(options->n_routes, sizeof(HttpRoute));
                if (!s->routes)
                        return -ENOMEM;
                for (size_t i = 0; i < options->n_routes; i++) {
                        if (!options->routes[i].prefix || options->routes[i].prefix[0] != '/' ||
                            !options->routes[i].handler)
                                return -EINVAL;
                        s->routes[i] = options->routes[i];
                }
        }
        s->options.routes = s->routes;

        *ret = TAKE_PTR(s);
        return 0;
}

HttpServer *http_server_free(HttpServer *s) {
        if (!s)
                return NULL;

        http_server_stop(s);

        for (size_t i = 0; i < s->n_listeners; i++) {
                safe_close(s->listeners[i].fd);
                free(s->listeners[i].url);
        }
        SSL_CTX_free(s->tls_ctx);
        SSL_CTX_free(s->refuse_ctx);
        free(s->workers);
        free(s->routes);
        free(s->base_url);
        pthread_mutex_destroy(&s->tls_lock);
        pthread_mutex_destroy(&s->start_lock);
        pthread_cond_destroy(&s->start_cond);
        free(s);
        return NULL;
}

static int sockaddr_to_url(const struct sockaddr *sa, bool tls, char **ret) {
        char host[INET6_ADDRSTRLEN];
        unsigned port;
        char *url;
        int r;

        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
                port = ntohs(in->sin_port);
                r = asprintf(&url, "%s://%s:%u", tls ? "https" : "http", host, port);
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
                port = ntohs(in6->sin6_port);
                r = asprintf(&url, "%s://[%s]:%u", tls ? "https" : "http", host, port);
        } else
                r = asprintf(&url, "%s://(unix)", tls ? "https" : "http");
        if (r < 0)
                return -ENOMEM;

        *ret = url;
        return 0;
}

int http_server_add_listener_fd(HttpServer *s, int fd, bool tls) {
        _cleanup_(closep) int owned = fd;
        struct sockaddr_storage ss = {};
        socklen_t sl = sizeof(ss);
        char *url = NULL;
        int r;

        if (!s || fd < 0)
                return -EINVAL;
        if (s->running)
                return -EBUSY;
        if (s->n_listeners >= HTTP_LISTENERS_MAX)
                return -E2BIG;

        if (getsockname(fd, (struct sockaddr *) &ss, &sl) < 0)
                return -errno;
        /* Every worker polls this socket and all wake up for one connection; a blocking accept()
         * would park the losers for good. Sockets from systemd arrive blocking. */
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        r = sockaddr_to_url((struct sockaddr *) &ss, tls, &url);
        if (r < 0)
                return r;

        /* Accepted sockets inherit TCP_NODELAY from the listener (Linux). Without it, a response
         * that leaves in two writes (evhttp's headers and body, or two TLS records) waits for the
         * client's delayed ACK: 40 ms on every keep-alive request. */
        if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
                int one = 1;

                if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
                        log_debug_errno(-errno, "Failed to set TCP_NODELAY on a listener, ignoring: %m");
        }

        s->listeners[s->n_listeners++] = (HttpListener) {
                .fd = TAKE_FD(owned),
                .tls = tls,
                .url = url,
        };
        return 0;
}

int http_parse_listen_address(const char *address, struct sockaddr_storage *ret, socklen_t *ret_len) {
        _cleanup_free_ char *host = NULL;
        const char *colon, *port_str;
        unsigned long port;
        char *end;

        if (!address || !ret || !ret_len)
                return -EINVAL;
        if (address[0] == '[') {
                const char *close = strchr(address, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                host = strndup(address + 1, close - address - 1);
                port_str = close + 2;
        } else {
                colon = strrchr(address, ':');
                if (!colon)
                        return -EINVAL;
                host = strndup(address, colon - address);
                port_str = colon + 1;
        }
        if (!host)
                return -ENOMEM;

        errno = 0;
        port = strtoul(port_str, &end, 10);
        if (errno != 0 || end == port_str || *end != 0 || port > 65535)
                return -EINVAL;

        *ret = (struct sockaddr_storage) {};
        if (address[0] == '[' || strchr(host, ':')) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ret;
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
                if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
                        return -EINVAL;
                *ret_len = sizeof(*in6);
        } else {
                struct sockaddr_in *in = (struct sockaddr_in *) ret;
                in->sin_family = AF_INET;
                in->sin_port = htons(port);
                if (strcmp(host, "*") == 0 || host[0] == 0)
                        in->sin_addr.s_addr = htonl(INADDR_ANY);
                else if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
                        return -EINVAL;
                *ret_len = sizeof(*in);
        }
        return 0;
}

int http_server_listen(HttpServer *s, const char *address, bool tls) {
        struct sockaddr_storage ss;
        socklen_t sl;
        _cleanup_(closep) int fd = -EBADF;
        int one = 1, r;

        if (!s || !address)
                return -EINVAL;

        r = http_parse_listen_address(address, &ss, &sl);
        if (r < 0)
                return r;

        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (ss.ss_family == AF_INET6 &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &ss, sl) < 0)
                return -errno;
        if (listen(fd, HTTP_LISTEN_BACKLOG) < 0)
                return -errno;

        return http_server_add_listener_fd(s, TAKE_FD(fd), tls);
}

size_t http_server_n_listeners(const HttpServer *s) {
        return s ? s->n_listeners : 0;
}

int http_server_listener_url(const HttpServer *s, size_t i, char **ret) {
        if (!s || i >= s->n_listeners || !ret)
                return -EINVAL;
        char *u = strdup(s->listeners[i].url);
        if (!u)
                return -ENOMEM;
        *ret = u;
        return 0;
}

void http_server_set_tls_context(HttpServer *s, SSL_CTX *ctx) {
        SSL_CTX *old;

        if (ctx)
                SSL_CTX_up_ref(ctx);
        pthread_mutex_lock(&s->tls_lock);
        old = s->tls_ctx;
        s->tls_ctx = ctx;
        pthread_mutex_unlock(&s->tls_lock);
        SSL_CTX_free(old);
}

/* Connection accounting for MaxConnections. evhttp 2.1 has no hook for "connection closed", so
 * the count rides on an object that dies with the connection: ex_data of its SSL. That covers
 * HTTPS; a plain evhttp connection has no such object (a filter bufferevent would, but evhttp
 * 2.1 cannot hand its socket to one), so plain HTTP is bounded by the timeouts only. */
static void connection_released(HttpServer *s) {
        atomic_fetch_sub(&s->n_connections, 1);
}

static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
        if (ptr)
                connection_released(ptr);
}

static int refuse_client_hello(SSL *ssl, int *alert, void *arg) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
}

/* Over the limit: a TLS connection whose handshake fails at the ClientHello (no key exchange
 * spent), so the client gets an alert and the connection closes at once. Not counted: its SSL
 * carries no ex_data. */
static struct bufferevent *refused_bufferevent_new(HttpServer *s, struct event_base *base) {
        struct bufferevent *bev;
        SSL *ssl;

        ssl = s->refuse_ctx ? SSL_new(s->refuse_ctx) : NULL;
        if (ssl) {
                bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                     BEV_OPT_CLOSE_ON_FREE);
                if (bev)
                        return bev;
                SSL_free(ssl);
        }
        /* evhttp would make a plain one of NULL; this one the request callback refuses. */
        return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

static bool connection_admit(HttpServer *s) {
        unsigned n = atomic_fetch_add(&s->n_connections, 1);

        if (s->options.max_connections == 0 || n < s->options.max_connections)
                return true;
        atomic_fetch_sub(&s->n_connections, 1);
        log_debug("Connection limit (%u) reached, refusing a connection.", s->options.max_connections);
        return false;
}

static struct bufferevent *tls_bufferevent_new(struct event_base *base, void *userdata) {
        HttpServer *s = userdata;
        struct bufferevent *bev;
        SSL *ssl = NULL;

        if (!connection_admit(s))
                return refused_bufferevent_new(s, base);

        pthread_mutex_lock(&s->tls_lock);
        if (s->tls_ctx)
                ssl = SSL_new(s->tls_ctx);
        pthread_mutex_unlock(&s->tls_lock);

        if (!ssl) {
                connection_released(s);
                log_warning("Failed to set up TLS for a new connection, refusing it.");
                return refused_bufferevent_new(s, base);
        }
        /* From here on SSL_free() releases the slot. */
        SSL_set_ex_data(ssl, conn_ex_index, s);

        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
        if (!bev) {
                SSL_free(ssl);
                return refused_bufferevent_new(s, base);
        }
        /* Clients that just close the TCP connection are common and harmless. */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        return bev;
}

/* Host is "name", "name:port", "[v6]" or "[v6]:port". Anything outside that alphabet is either
 * an attack on the URLs we derive from it or garbage. */
static bool host_header_ok(const char *host) {
        size_t l = strlen(host);

        if (l == 0 || l > HTTP_HOST_MAX)
                return false;
        for (const char *p = host; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr(".-:[]_", *p)))
                        return false;
        return true;
}

/* evhttp 2.1 sends the body of a HEAD response too; HEAD gets the length only. */
static void reply(struct evhttp_request *r, int status, const char *reason, const void *body, size_t size) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(r);
        struct evhttp_connection *evcon = evhttp_request_get_connection(r);
        /* Taken before sending: evhttp frees a request whose connection is already gone. The
         * write itself happens later, from the loop, so the connection outlives this call. */
        struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
        struct evbuffer *buf = evbuffer_new();
        char length[32];

        if (evhttp_request_get_command(r) == EVHTTP_REQ_HEAD) {
                snprintf(length, sizeof(length), "%zu", size);
                evhttp_add_header(out, "Content-Length", length);
        } else if (buf && size > 0)
                evbuffer_add(buf, body, size);

        evhttp_send_reply(r, status, reason, buf);
        if (buf)
                evbuffer_free(buf);

        if (bev) {
                struct evbuffer *output = bufferevent_get_output(bev);
                size_t n = evbuffer_get_length(output);

                if (n > 0 && n <= HTTP_LINEARIZE_MAX)
                        (void) evbuffer_pullup(output, -1);
        }
}

static void send_plain(struct evhttp_request *r, int status, const char *reason, bool close) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(r);
        char text[64];
        int n;

        evhttp_add_header(out, "Content-Type", "text/plain; charset=utf-8");
        if (close)
                evhttp_add_header(out, "Connection", "close");
        n = snprintf(text, sizeof(text), "%s\n", reason);
        reply(r, status, reason, text, (size_t) MAX(n, 0));
}

static void send_not_found(struct evhttp_request *r) {
        static const char body[] =
                "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,"
                "\"detail\":\"No such resource\"}";

        evhttp_add_header(evhttp_request_get_output_headers(r), "Content-Type", "application/problem+json");
        reply(r, 404, "Not Found", body, sizeof(body) - 1);
}

static const char *method_name(enum evhttp_cmd_type c) {
        switch (c) {
        case EVHTTP_REQ_GET:     return "GET";
        case EVHTTP_REQ_POST:    return "POST";
        case EVHTTP_REQ_HEAD:    return "HEAD";
        case EVHTTP_REQ_PUT:     return "PUT";
        case EVHTTP_REQ_DELETE:  return "DELETE";
        case EVHTTP_REQ_OPTIONS: return "OPTIONS";
        case EVHTTP_REQ_TRACE:   return "TRACE";
        case EVHTTP_REQ_CONNECT: return "CONNECT";
        case EVHTTP_REQ_PATCH:   return "PATCH";
        }
        return "UNKNOWN";
}

const char *http_request_get_header(const HttpRequest *req, const char *name) {
        const HttpRequestImpl *impl = req ? req->impl : NULL;

        if (!impl || !impl->r || !name)
                return NULL;
        return evhttp_find_header(evhttp_request_get_input_headers(impl->r), name);
}

static const HttpRoute *route_find(const HttpServer *s, const char *path) {
        const HttpRoute *best = NULL;
        size_t best_len = 0;

        for (size_t i = 0; i < s->options.n_routes; i++) {
                size_t l = strlen(s->routes[i].prefix);
                if (l > best_len && strncmp(path, s->routes[i].prefix, l) == 0) {
                        best = &s->routes[i];
                        best_len = l;
                }
        }
        return best;
}

static void send_response(struct evhttp_request *r, const HttpResponse *resp) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(r);

        for (size_t i = 0; i < resp->n_headers; i++)
                evhttp_add_header(out, resp->headers[i].name, resp->headers[i].value);
        if (resp->content_type)
                evhttp_add_header(out, "Content-Type", resp->content_type);

        reply(r, resp->status > 0 ? resp->status : 200, NULL, resp->body, resp->body_size);
}

HttpDeferred *http_deferred_ref(HttpDeferred *d) {
        if (d)
                atomic_fetch_add(&d->n_ref, 1);
        return d;
}

HttpDeferred *http_deferred_unref(HttpDeferred *d) {
        if (!d || atomic_fetch_sub(&d->n_ref, 1) > 1)
                return NULL;
        /* Finished by then: the layer's own reference goes only after the event is freed. */
        if (d->userdata_free)
                d->userdata_free(d->userdata);
        pthread_mutex_destroy(&d->lock);
        free(d->path);
        free(d->base_url);
        free(d->url);
        free(d->remote_address);
        free(d);
        return NULL;
}

void http_deferred_wake(HttpDeferred *d) {
        if (!d)
                return;
        pthread_mutex_lock(&d->lock);
        /* libevent's locking (evthread_use_pthreads) makes this safe from any thread. */
        if (d->event)
                event_active(d->event, EV_TIMEOUT, 0);
        pthread_mutex_unlock(&d->lock);
}

/* On the owning worker: ends the hold (no more wakes, no close notification) and returns the
 * request if it is still to be answered. false if it had already ended. The layer's reference
 * is the caller's to drop. */
static bool deferred_finish(HttpDeferred *d, struct evhttp_request **ret) {
        HttpWorker *w = d->worker;
        struct evhttp_connection *evcon;
        struct event *ev;

        pthread_mutex_lock(&d->lock);
        ev = d->event;
        d->event = NULL;
        pthread_mutex_unlock(&d->lock);
        if (!ev)
                return false;
        event_free(ev);

        if (d->prev)
                d->prev->next = d->next;
        else
                w->held = d->next;
        if (d->next)
                d->next->prev = d->prev;
        d->prev = d->next = NULL;

        evcon = d->r ? evhttp_request_get_connection(d->r) : NULL;
        if (evcon)
                evhttp_connection_set_closecb(evcon, NULL, NULL);
        *ret = d->r;
        d->r = NULL;
        return true;
}

/* On the owning worker: fills and sends the held reply. */
static void deferred_resume(HttpDeferred *d) {
        HttpWorker *w = d->worker;
        HttpServer *s = w->server;
        struct evhttp_request *r = NULL;
        HttpResponse resp = {};
        int q;

        if (!deferred_finish(d, &r))
                return;
        if (!r) {
                http_deferred_unref(d);
                return;
        }
        if (!evhttp_request_get_connection(r)) {
                /* The client left without a close notification: nobody to answer. */
                evhttp_request_free(r);
                http_deferred_unref(d);
                return;
        }

        HttpRequestImpl impl = { .r = r, .worker = w };
        HttpRequest req = {
                .method = d->method,
                .path = d->path,
                .base_url = d->base_url,
                .url = d->url,
                .body = (const uint8_t *) "",
                .tls = d->tls,
                .remote_address = d->remote_address,
                .worker = w->server_worker,
                .impl = &impl,
        };

        if (s->options.hooks.request_start)
                s->options.hooks.request_start(w->server_worker, s->options.hooks.userdata);
        q = d->resume(&req, &resp, d->userdata);
        if (s->options.hooks.request_end)
                s->options.hooks.request_end(w->server_worker, s->options.hooks.userdata);

        if (q < 0) {
                log_error_errno(q, "Resuming %s %s failed: %m", req.method, req.path);
                send_plain(r, 500, "Internal Server Error", false);
        } else
                send_response(r, &resp);
        http_response_done(&resp);
        http_deferred_unref(d);
}

static void on_deferred(evutil_socket_t fd, short what, void *userdata) {
        deferred_resume(userdata);
}

/* evhttp frees a connection the client closed (or that timed out) even while one of its
 * requests is held. A request it had detached (no connection any more) is ours to free; one
 * still queued on the connection goes with it. */
static void deferred_connection_closed(struct evhttp_connection *evcon, void *userdata) {
        HttpDeferred *d = userdata;
        struct evhttp_request *r = NULL;

        if (d->r && evhttp_request_get_connection(d->r))
                d->r = NULL;
        if (!deferred_finish(d, &r))
                return;
        if (r)
                evhttp_request_free(r);
        http_deferred_unref(d);
}

/* On stop every held reply is answered with what its front end has by then. */
static void worker_resume_held(HttpWorker *w) {
        while (w->held)
                deferred_resume(w->held);
}

int http_request_defer(const HttpRequest *req, uint64_t timeout_usec, HttpResumeHandler resume,
                       void *userdata, void (*userdata_free)(void *userdata), HttpDeferred **ret) {
        HttpRequestImpl *impl = req ? req->impl : NULL;
        struct evhttp_connection *evcon;
        HttpDeferred *d;
        HttpWorker *w;
        struct timeval tv = {};

        if (!impl || !impl->r || !impl->worker || !resume || !ret)
                return -EINVAL;
        if (impl->deferred)
                return -EBUSY;
        w = impl->worker;
        evcon = evhttp_request_get_connection(impl->r);
        if (!evcon)
                return -ENOTCONN;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        atomic_init(&d->n_ref, 1);
        pthread_mutex_init(&d->lock, NULL);
        d->worker = w;
        d->method = req->method;
        d->tls = req->tls;
        d->path = strdup(req->path ?: "/");
        d->base_url = strdup(req->base_url ?: "");
        d->url = strdup(req->url ?: "");
        d->remote_address = strdup(req->remote_address ?: "");
        d->event = event_new(w->base, -1, 0, on_deferred, d);
        if (!d->path || !d->base_url || !d->url || !d->remote_address || !d->event) {
                if (d->event)
                        event_free(d->event);
                d->event = NULL;
                http_deferred_unref(d);
                return -ENOMEM;
        }
        /* A stopping worker answers at once: its loop ends after the grace period. */
        if (!w->stopping) {
                tv.tv_sec = (time_t) (timeout_usec / 1000000u);
                tv.tv_usec = (suseconds_t) (timeout_usec % 1000000u);
        }
        if (event_add(d->event, &tv) < 0) {
                event_free(d->event);
                d->event = NULL;
                http_deferred_unref(d);
                return -ENOMEM;
        }

        d->resume = resume;
        d->userdata = userdata;
        d->userdata_free = userdata_free;
        d->r = impl->r;
        evhttp_connection_set_closecb(evcon, deferred_connection_closed, d);
        d->next = w->held;
        if (w->held)
                w->held->prev = d;
        w->held = d;
        impl->deferred = d;

        /* One reference for the layer (dropped when the reply is sent or dropped), one for the
         * caller. */
        *ret = http_deferred_ref(d);
        return 0;
}

static void on_request(struct evhttp_request *r, void *userdata) {
        HttpFront *front = userdata;
        HttpWorker *w = front->worker;
        HttpServer *s = w->server;
        struct evhttp_connection *evcon = evhttp_request_get_connection(r);
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
        struct evbuffer *input = evhttp_request_get_input_buffer(r);
        _cleanup_free_ char *path = NULL, *base_url = NULL, *url = NULL;
        _cleanup_free_ uint8_t *body = NULL;
        HttpResponse resp = {};
        HttpRequestImpl impl = { .r = r, .worker = w };
        X509 *client_cert = NULL;
        const char *host, *raw_path;
        char *peer = NULL;
        ev_uint16_t peer_port = 0;
        size_t path_len, body_size;
        int r_handler;

        if (front->tls) {
                SSL *ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon));
                if (!ssl) {
                        send_plain(r, 500, "Internal Server Error", true);
                        return;
                }
                X509 *peer_cert = SSL_get0_peer_certificate(ssl);
                if (peer_cert && SSL_get_verify_result(ssl) == X509_V_OK)
                        client_cert = peer_cert;
        }

        host = evhttp_find_header(evhttp_request_get_input_headers(r), "Host");
        if (!host || !host_header_ok(host)) {
                send_plain(r, 400, "Bad Request", true);
                return;
        }

        raw_path = uri ? evhttp_uri_get_path(uri) : NULL;
        if (!raw_path || raw_path[0] == 0)
                raw_path = "/";
        path = evhttp_uridecode(raw_path, 0, &path_len);
        /* A decoded NUL would cut the path short for every strcmp() downstream. */
        if (!path || path_len != strlen(path) || path[0] != '/') {
                send_plain(r, 400, "Bad Request", true);
                return;
        }

        const HttpRoute *route = route_find(s, path);
        if (!route) {
                send_not_found(r);
                return;
        }

        /* evhttp enforces the hard cap while reading; the limit itself is enforced here, so that
         * a front end can refuse in its own protocol. */
        body_size = evbuffer_get_length(input);
        bool too_large = body_size > s->options.max_body_size;
        if (too_large) {
                if (!route->accepts_oversized_body) {
                        send_plain(r, 413, "Payload Too Large", true);
                        return;
                }
                body_size = 0;
        }
        body = malloc(body_size + 1);
        if (!body) {
                send_plain(r, 503, "Service Unavailable", true);
                return;
        }
        if (body_size > 0 && evbuffer_copyout(input, body, body_size) != (ev_ssize_t) body_size) {
                send_plain(r, 500, "Internal Server Error", true);
                return;
        }
        body[body_size] = 0;

        if (s->base_url)
                base_url = strdup(s->base_url);
        else if (asprintf(&base_url, "%s://%s", front->tls ? "https" : "http", host) < 0)
                base_url = NULL;
        if (!base_url || asprintf(&url, "%s%s", base_url, path) < 0) {
                url = NULL;
                send_plain(r, 503, "Service Unavailable", true);
                return;
        }

        evhttp_connection_get_peer(evcon, &peer, &peer_port);

        HttpRequest req = {
                .method = method_name(evhttp_request_get_command(r)),
                .path = path,
                .query = uri ? evhttp_uri_get_query(uri) : NULL,
                .base_url = base_url,
                .url = url,
                .body = body,
                .body_size = body_size,
                .tls = front->tls,
                .client_cert = client_cert,
                .remote_address = peer ?: "",
                .worker = w->server_worker,
                .impl = &impl,
                .body_too_large = too_large,
        };

        if (s->options.hooks.request_start)
                s->options.hooks.request_start(w->server_worker, s->options.hooks.userdata);
        r_handler = route->handler(&req, &resp, route->userdata);
        if (s->options.hooks.request_end)
                s->options.hooks.request_end(w->server_worker, s->options.hooks.userdata);

        if (impl.deferred && r_handler < 0) {
                struct evhttp_request *held = NULL;

                /* A handler that fails after holding its reply gets the usual 500 now. */
                if (deferred_finish(impl.deferred, &held))
                        http_deferred_unref(impl.deferred);
        } else if (impl.deferred) {
                http_response_done(&resp);
                return;
        }

        if (r_handler < 0) {
                log_error_errno(r_handler, "Handler for %s %s failed: %m", req.method, path);
                send_plain(r, 500, "Internal Server Error", false);
        } else
                send_response(r, &resp);

        http_response_done(&resp);
}

static void on_stop(evutil_socket_t fd, short what, void *userdata) {
        HttpWorker *w = userdata;
        struct timeval grace = {
                .tv_sec = HTTP_STOP_GRACE_USEC / 1000000,
                .tv_usec = HTTP_STOP_GRACE_USEC % 1000000,
        };

        /* Stop accepting first; open connections stay until the grace period ends, so responses
         * already queued still reach their clients. Held replies are answered now, so that they
         * are among them. */
        for (size_t i = 0; i < w->n_bound; i++)
                evhttp_del_accept_socket(w->bound_front[i]->evhttp, w->bound[i]);
        w->n_bound = 0;
        w->stopping = true;
        worker_resume_held(w);
        event_base_loopexit(w->base, &grace);
}

static int front_setup(HttpWorker *w, bool tls) {
        HttpServer *s = w->server;
        HttpFront *f = &w->fronts[tls];
        struct timeval tv = {
                .tv_sec = s->options.timeout_usec / 1000000,
                .tv_usec = s->options.timeout_usec % 1000000,
        };

        f->worker = w;
        f->tls = tls;
        f->evhttp = evhttp_new(w->base);
        if (!f->evhttp)
                return -ENOMEM;

        evhttp_set_max_body_size(f->evhttp, (ev_ssize_t) s->options.max_body_size * HTTP_BODY_HARD_CAP_FACTOR);
        evhttp_set_max_headers_size(f->evhttp, (ev_ssize_t) s->options.max_header_size);
        evhttp_set_timeout_tv(f->evhttp, &tv);
        evhttp_set_allowed_methods(f->evhttp, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
        evhttp_set_gencb(f->evhttp, on_request, f);
        if (tls)
                evhttp_set_bevcb(f->evhttp, tls_bufferevent_new, s);
        return 0;
}

static int worker_setup(HttpWorker *w) {
        HttpServer *s = w->server;
        int r;

        w->base = event_base_new();
        if (!w->base)
                return -ENOMEM;
        w->stop_event = event_new(w->base, -1, 0, on_stop, w);
        if (!w->stop_event)
                return -ENOMEM;

        for (size_t i = 0; i < s->n_listeners; i++) {
                HttpFront *f = &w->fronts[s->listeners[i].tls];
                struct evconnlistener *l;
                int fd;

                if (!f->evhttp) {
                        r = front_setup(w, s->listeners[i].tls);
                        if (r < 0)
                                return r;
                }

                /* Every worker accepts on its own descriptor of the same socket; the listener
                 * owns (and closes) the duplicate. */
                fd = fcntl(s->listeners[i].fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return -errno;
                l = evconnlistener_new(w->base, NULL, NULL,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
                if (!l) {
                        safe_close(fd);
                        return -ENOMEM;
                }
                w->bound[w->n_bound] = evhttp_bind_listener(f->evhttp, l);
                if (!w->bound[w->n_bound]) {
                        evconnlistener_free(l);
                        return -ENOMEM;
                }
                w->bound_front[w->n_bound++] = f;
        }

        if (s->options.hooks.thread_start) {
                r = s->options.hooks.thread_start(w->index, s->options.hooks.userdata, &w->server_worker);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void worker_teardown(HttpWorker *w) {
        HttpServer *s = w->server;

        /* Replies held after the stop event (a worker that failed to start has none): evhttp_free()
         * would free their requests under them. */
        worker_resume_held(w);
        /* evhttp_free() closes every connection and remaining listener. */
        for (size_t k = 0; k < ELEMENTSOF(w->fronts); k++)
                if (w->fronts[k].evhttp) {
                        evhttp_free(w->fronts[k].evhttp);
                        w->fronts[k].evhttp = NULL;
                }
        w->n_bound = 0;
        if (w->server_worker && s->options.hooks.thread_stop)
                s->options.hooks.thread_stop(w->server_worker, s->options.hooks.userdata);
        w->server_worker = NULL;
        if (w->stop_event) {
                event_free(w->stop_event);
                w->stop_event = NULL;
        }
        if (w->base) {
                event_base_free(w->base);
                w->base = NULL;
        }
}

static void start_report(HttpServer *s, int r) {
        pthread_mutex_lock(&s->start_lock);
        if (r < 0 && s->start_error == 0)
                s->start_error = r;
        s->n_reported++;
        pthread_cond_broadcast(&s->start_cond);
        pthread_mutex_unlock(&s->start_lock);
}

static void *worker_main(void *userdata) {
        HttpWorker *w = userdata;
        HttpServer *s = w->server;
        int r;

        r = worker_setup(w);
        if (r < 0) {
                log_error_errno(r, "HTTP worker %u failed to start: %m", w->index);
                worker_teardown(w);
                start_report(s, r);
                return NULL;
        }
        start_report(s, 0);

        /* Listeners keep the loop alive; the stop event ends it. */
        event_base_dispatch(w->base);

        worker_teardown(w);
        return NULL;
}

int http_server_start(HttpServer *s) {
        int r;

        if (!s)
                return -EINVAL;
        if (s->running)
                return -EBUSY;
        if (s->n_listeners == 0)
                return -ENOTCONN;

        s->n_workers = s->options.workers;
        s->workers = calloc(s->n_workers, sizeof(HttpWorker));
        if (!s->workers)
                return -ENOMEM;
        s->n_reported = 0;
        s->start_error = 0;
        s->running = true;

        for (unsigned i = 0; i < s->n_workers; i++) {
                HttpWorker *w = &s->workers[i];
                w->server = s;
                w->index = i;
                r = pthread_create(&w->thread, NULL, worker_main, w);
                if (r != 0) {
                        start_report(s, -r);
                        continue;
                }
                w->thread_running = true;
        }

        pthread_mutex_lock(&s->start_lock);
        while (s->n_reported < s->n_workers)
                pthread_cond_wait(&s->start_cond, &s->start_lock);
        r = s->start_error;
        pthread_mutex_unlock(&s->start_lock);

        if (r < 0) {
                http_server_stop(s);
                return r;
        }
        return 0;
}

void http_server_stop(HttpServer *s) {
        if (!s || !s->running)
                return;

        for (unsigned i = 0; i < s->n_workers; i++) {
                HttpWorker *w = &s->workers[i];
                if (w->thread_running && w->stop_event)
                        event_active(w->stop_event, EV_READ, 0);
        }
        for (unsigned i = 0; i < s->n_workers; i++) {
                HttpWorker *w = &s->workers[i];
                if (w->thread_running) {
                        pthread_join(w->thread, NULL);
                        w->thread_running = false;
                }
        }

        free(s->workers);
        s->workers = NULL;
        s->n_workers = 0;
        s->running = false;
}
