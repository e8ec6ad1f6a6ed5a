/* SPDX-License-Identifier: Apache-2.0 */

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "server/acme/acme.h"
#include "server/http/http-server.h"
#include "server/server-manager.h"
#include "server/store/store.h"
#include "shared/errors.h"
#include "shared/fileio.h"
#include "shared/log.h"
#include "shared/strv.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(SSL_CTX *, SSL_CTX_free);

struct ServerSnapshot {
        atomic_uint n_ref;
        ServerConfig *config;
};

struct ServerManager {
        char *config_path;
        char *state_directory;         /* override, NULL: none */
        char **https_listen;
        char **http_listen;
        bool config_optional;

        pthread_mutex_t snapshot_lock;
        ServerSnapshot *snapshot;      /* current generation */

        Store *store;                  /* shared by every worker thread (store.h) */
        AcmeServer *acme;
        HttpServer *http;
        int signal_fd;
        bool any_tls;                  /* some listener serves HTTPS: a reload renews its context */
        char *listen_urls;
};

static ServerSnapshot *snapshot_new(ServerConfig *config) {
        ServerSnapshot *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        atomic_init(&s->n_ref, 1);
        s->config = config;
        return s;
}

ServerSnapshot *server_snapshot_unref(ServerSnapshot *s) {
        if (!s)
                return NULL;
        if (atomic_fetch_sub(&s->n_ref, 1) == 1) {
                server_config_free(s->config);
                free(s);
        }
        return NULL;
}

const ServerConfig *server_snapshot_get_config(const ServerSnapshot *s) {
        return s ? s->config : NULL;
}

Store *server_manager_get_store(ServerManager *m) {
        return m ? m->store : NULL;
}

ServerSnapshot *server_manager_snapshot_ref(ServerManager *m) {
        ServerSnapshot *s;

        /* The lock makes "read the pointer, take a ref" atomic against a swap that drops the
         * manager's ref right after. */
        pthread_mutex_lock(&m->snapshot_lock);
        s = m->snapshot;
        if (s)
                atomic_fetch_add(&s->n_ref, 1);
        pthread_mutex_unlock(&m->snapshot_lock);
        return s;
}

static void manager_swap_snapshot(ServerManager *m, ServerSnapshot *s) {
        ServerSnapshot *old;

        pthread_mutex_lock(&m->snapshot_lock);
        old = m->snapshot;
        m->snapshot = s;
        pthread_mutex_unlock(&m->snapshot_lock);
        server_snapshot_unref(old);
}

int server_manager_new(const char *config_path, const ServerConfigOverrides *overrides,
                       ServerManager **ret) {
        _cleanup_(server_manager_freep) ServerManager *m = NULL;

        if (!ret)
                return -EINVAL;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->signal_fd = -EBADF;
        pthread_mutex_init(&m->snapshot_lock, NULL);

        if (config_path && !(m->config_path = strdup(config_path)))
                return -ENOMEM;
        if (overrides) {
                if (overrides->state_directory && !(m->state_directory = strdup(overrides->state_directory)))
                        return -ENOMEM;
                if (overrides->https_listen && !(m->https_listen = strv_copy(overrides->https_listen)))
                        return -ENOMEM;
                if (overrides->http_listen && !(m->http_listen = strv_copy(overrides->http_listen)))
                        return -ENOMEM;
                m->config_optional = overrides->config_optional;
        }

        *ret = TAKE_PTR(m);
        return 0;
}

ServerManager *server_manager_free(ServerManager *m) {
        if (!m)
                return NULL;

        m->http = http_server_free(m->http);
        m->acme = acme_server_free(m->acme);
        m->store = store_close(m->store);
        manager_swap_snapshot(m, NULL);
        safe_close(m->signal_fd);
        pthread_mutex_destroy(&m->snapshot_lock);
        free(m->config_path);
        free(m->state_directory);
        strv_free(m->https_listen);
        strv_free(m->http_listen);
        free(m->listen_urls);
        free(m);
        return NULL;
}

static int manager_load_config(ServerManager *m, ServerConfig **ret) {
        _cleanup_free_ char *error = NULL;
        ServerConfigOverrides o = {
                .state_directory = m->state_directory,
                .https_listen = m->https_listen,
                .http_listen = m->http_listen,
                .config_optional = m->config_optional,
        };
        int r;

        r = server_config_load_full(m->config_path, &o, SERVER_CONFIG_CREATE_MISSING_CA, ret, &error);
        if (r < 0) {
                if (error)
                        log_error("%s", error);
                return log_error_errno(r, "Failed to load configuration%s%s: %m",
                                       m->config_path ? " " : "", m->config_path ?: "");
        }
        return 0;
}

static int manager_tls_context(const ServerConfig *c, SSL_CTX **ret) {
        _cleanup_free_ char *cert = NULL, *key = NULL, *error = NULL;
        int r;

        if (c->tls_certificate) {
                cert = strdup(c->tls_certificate);
                key = strdup(c->tls_key);
                if (!cert || !key)
                        return log_oom();
        } else {
                r = server_default_tls_certificate(c, &cert, &key);
                if (r < 0)
                        return r;
        }

        r = http_tls_context_new(cert, key, c->tls_client_ca, ret, &error);
        if (r < 0)
                return log_error_errno(r, "%s", error ?: "Failed to set up TLS.");
        return 0;
}

/* The fds systemd passed (FileDescriptorName= "https" or "http"), else the configured addresses. */
static int manager_add_listeners(ServerManager *m, const ServerConfig *c, bool *ret_any_tls) {
        _cleanup_(strv_freep) char **names = NULL;
        bool any_tls = false;
        int n, r;

        n = sd_listen_fds_with_names(true, &names);
        if (n < 0)
                return log_error_errno(n, "Failed to get sockets from systemd: %m");

        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names && names[i] ? names[i] : "";
                bool tls;

                if (strcmp(name, "http") == 0)
                        tls = false;
                else {
                        if (strcmp(name, "https") != 0)
                                log_notice("Socket %d from systemd is named '%s', not 'https' or 'http': serving HTTPS on it.",
                                           fd, name);
                        tls = true;
                }
                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
                        safe_close(fd);
                        return log_error_errno(-ENOTSOCK, "File descriptor %d from systemd is not a listening stream socket.", fd);
                }
                r = http_server_add_listener_fd(m->http, fd, tls);
                if (r < 0)
                        return log_error_errno(r, "Failed to use socket %d from systemd: %m", fd);
                any_tls = any_tls || tls;
        }

        if (n == 0) {
                for (char **a = c->https_listen; a && *a; a++) {
                        r = http_server_listen(m->http, *a, true);
                        if (r < 0)
                                return log_error_errno(r, "Failed to listen on %s (HTTPS): %m", *a);
                        any_tls = true;
                }
                for (char **a = c->http_listen; a && *a; a++) {
                        r = http_server_listen(m->http, *a, false);
                        if (r < 0)
                                return log_error_errno(r, "Failed to listen on %s (HTTP): %m", *a);
                }
        }

        if (http_server_n_listeners(m->http) == 0)
                return log_error_errno(-EDESTADDRREQ,
                                       "Nothing to listen on: set [HTTPS] Listen=, [HTTP] Listen=, --listen, or use socket activation.");

        *ret_any_tls = any_tls;
        return 0;
}

static int manager_listen_urls(ServerManager *m) {
        _cleanup_(strv_freep) char **urls = NULL;
        int r;

        for (size_t i = 0; i < http_server_n_listeners(m->http); i++) {
                char *u = NULL;
                r = http_server_listener_url(m->http, i, &u);
                if (r < 0)
                        return r;
                r = strv_consume(&urls, u);
                if (r < 0)
                        return r;
        }
        free(m->listen_urls);
        m->listen_urls = strv_join(urls, " ");
        return m->listen_urls ? 0 : -ENOMEM;
}

static int hook_thread_start(unsigned index, void *userdata, ServerWorker **ret) {
        return server_worker_new(userdata, index, ret);
}

static void hook_thread_stop(ServerWorker *w, void *userdata) {
        server_worker_free(w);
}

static void hook_request_start(ServerWorker *w, void *userdata) {
        server_worker_request_start(w);
}

static void hook_request_end(ServerWorker *w, void *userdata) {
        server_worker_request_end(w);
}

static uint64_t monotonic_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void notify_ready(ServerManager *m, const char *what) {
        /* X_CERTFLEET_LISTEN lets a supervisor (tests) learn ports the kernel chose. */
        sd_notifyf(false, "READY=1\nSTATUS=%s, serving %s\nX_CERTFLEET_LISTEN=%s",
                   what, m->listen_urls, m->listen_urls);
}

static bool strv_same(char **a, char **b) {
        return strv_equal_unordered(a, b) && strv_length(a) == strv_length(b);
}

static void warn_restart_only(const ServerConfig *old, const ServerConfig *new) {
        if (!strv_same(old->https_listen, new->https_listen) || !strv_same(old->http_listen, new->http_listen))
                log_warning("Listen addresses changed: they take effect at the next restart.");
        if (strcmp(old->database, new->database) != 0)
                log_warning("[Store] Database= changed: it takes effect at the next restart.");
        if (old->workers != new->workers || old->max_body_size != new->max_body_size ||
            old->max_header_size != new->max_header_size || old->timeout != new->timeout)
                log_warning("[Server] Workers= or [Limits] changed: they take effect at the next restart.");
}

static int manager_reload(ServerManager *m) {
        _cleanup_(server_config_freep) ServerConfig *c = NULL;
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        _cleanup_(server_snapshot_unrefp) ServerSnapshot *old = NULL;
        ServerSnapshot *s;
        int r;

        log_info("Reloading configuration.");

        r = manager_load_config(m, &c);
        if (r < 0)
                return r;

        old = server_manager_snapshot_ref(m);
        warn_restart_only(server_snapshot_get_config(old), c);

        if (m->any_tls) {
                r = manager_tls_context(c, &ctx);
                if (r < 0)
                        return r;
        }

        r = acme_server_reload(m->acme, c);
        if (r < 0)
                return log_error_errno(r, "Failed to apply the new configuration to the ACME front end: %m");

        s = snapshot_new(c);
        if (!s)
                return log_oom();
        TAKE_PTR(c);
        manager_swap_snapshot(m, s);
        if (ctx)
                http_server_set_tls_context(m->http, ctx);

        log_info("Configuration reloaded.");
        return 0;
}

static int manager_block_signals(ServerManager *m) {
        sigset_t mask;

        /* Blocked before any thread starts, so every thread inherits the mask and only the
         * signalfd on the main thread ever sees these signals. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
                return -errno;
        m->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (m->signal_fd < 0)
                return -errno;
        /* A peer closing a connection mid-write must not kill the daemon. */
        signal(SIGPIPE, SIG_IGN);
        return 0;
}

/* Every request allocates and frees a few hundred KiB on its worker thread (TLS buffers, JSON,
 * SQLite's per-transaction space). With glibc's default trim threshold, each free that empties
 * the top of a thread's heap hands the pages back with madvise() and the next request faults
 * them in again: about 2.5 % of the server's CPU in the ACME benchmark. Keep up to this much
 * free memory per heap instead. */
#define MANAGER_MALLOC_TRIM_THRESHOLD (32 * 1024 * 1024)

static int manager_start(ServerManager *m) {
        _cleanup_(server_config_freep) ServerConfig *c = NULL;
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        bool any_tls = false;
        int r;

        if (mallopt(M_TRIM_THRESHOLD, MANAGER_MALLOC_TRIM_THRESHOLD) != 1)
                log_debug("mallopt(M_TRIM_THRESHOLD) failed; keeping glibc's default.");

        r = manager_load_config(m, &c);
        if (r < 0)
                return r;

        r = mkdir_p(c->state_directory, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create state directory '%s': %m", c->state_directory);

        /* Opening runs the schema migrations, once, before any worker uses the store. One
         * connection for every worker: see struct Store in store-sqlite-internal.h. */
        r = store_open(c->database, &m->store);
        if (r < 0)
                return log_error_errno(r, "Failed to open store '%s': %m", c->database);

        HttpRoute routes[] = {
                { .prefix = ACME_ROUTE_PREFIX, .handler = acme_handle_request, .accepts_oversized_body = true },
        };
        r = acme_server_new(c, m->store, &m->acme);
        if (r < 0)
                return log_error_errno(r, "Failed to start the ACME front end: %m");
        routes[0].userdata = m->acme;

        HttpServerOptions o = {
                .workers = c->workers,
                .max_body_size = c->max_body_size,
                .max_header_size = c->max_header_size,
                .timeout_usec = (uint64_t) c->timeout * 1000000u,
                .max_connections = c->max_connections,
                .base_url = c->base_url,
                .routes = routes,
                .n_routes = ELEMENTSOF(routes),
                .hooks = {
                        .thread_start = hook_thread_start,
                        .thread_stop = hook_thread_stop,
                        .request_start = hook_request_start,
                        .request_end = hook_request_end,
                        .userdata = m,
                },
        };
        r = http_server_new(&o, &m->http);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the HTTP server: %m");

        r = manager_add_listeners(m, c, &any_tls);
        if (r < 0)
                return r;

        m->any_tls = any_tls;
        if (any_tls) {
                r = manager_tls_context(c, &ctx);
                if (r < 0)
                        return r;
                http_server_set_tls_context(m->http, ctx);
        }

        ServerSnapshot *s = snapshot_new(c);
        if (!s)
                return log_oom();
        TAKE_PTR(c);
        manager_swap_snapshot(m, s);

        r = http_server_start(m->http);
        if (r < 0)
                return log_error_errno(r, "Failed to start the HTTP workers: %m");

        r = manager_listen_urls(m);
        if (r < 0)
                return log_oom();
        return 0;
}

int server_manager_run(ServerManager *m) {
        int r;

        if (!m)
                return -EINVAL;

        r = manager_block_signals(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up signal handling: %m");

        r = manager_start(m);
        if (r < 0) {
                sd_notifyf(false, "STATUS=Failed to start: %s\nERRNO=%i", cf_error_name(r),
                           cf_error_is_protocol(r) ? EINVAL : -r);
                return r;
        }

        log_info("Serving on %s.", m->listen_urls);
        notify_ready(m, "Started");

        for (;;) {
                struct signalfd_siginfo si;
                ssize_t n = read(m->signal_fd, &si, sizeof(si));

                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        r = log_error_errno(-errno, "Failed to read signal: %m");
                        break;
                }
                if (n != sizeof(si))
                        continue;

                if (si.ssi_signo == SIGHUP) {
                        sd_notifyf(false, "RELOADING=1\nSTATUS=Reloading configuration\nMONOTONIC_USEC=%llu",
                                   (unsigned long long) monotonic_usec());
                        r = manager_reload(m);
                        notify_ready(m, r < 0 ? "Reload failed, previous configuration kept" : "Reloaded");
                        continue;
                }

                log_info("Received %s, shutting down.", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                r = 0;
                break;
        }

        sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");
        http_server_stop(m->http);
        m->acme = acme_server_free(m->acme);
        log_info("Stopped.");
        return r;
}
