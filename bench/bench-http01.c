/* SPDX-License-Identifier: Apache-2.0 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench/bench-http01.h"

#define N_BUCKETS 4096u
#define N_STRIPES 64u
#define REQUEST_MAX 4096u
#define THREADS_MAX 64u
#define CHALLENGE_PREFIX "/.well-known/acme-challenge/"

typedef struct Entry {
        struct Entry *next;
        char *token;
        char *key_authorization;
} Entry;

struct Http01Responder {
        int fd;
        pthread_t threads[THREADS_MAX];
        unsigned n_threads;
        atomic_bool stopping;
        /* Striped locks: validations of different orders rarely share a stripe, so client threads
         * and responder threads don't queue on one mutex. Bucket b is guarded by lock b % N_STRIPES. */
        pthread_mutex_t locks[N_STRIPES];
        Entry *buckets[N_BUCKETS];
        atomic_uint_fast64_t served, not_found, bad_request;
};

static uint32_t hash_token(const char *s, size_t n) {
        uint32_t h = 2166136261u;   /* FNV-1a */

        for (size_t i = 0; i < n; i++) {
                h ^= (uint8_t) s[i];
                h *= 16777619u;
        }
        return h;
}

static Entry *entry_free(Entry *e) {
        if (e) {
                free(e->token);
                free(e->key_authorization);
                free(e);
        }
        return NULL;
}

int http01_responder_put(Http01Responder *r, const char *token, const char *key_authorization) {
        uint32_t h = hash_token(token, strlen(token)) % N_BUCKETS;
        pthread_mutex_t *lock = &r->locks[h % N_STRIPES];
        Entry *e;

        e = calloc(1, sizeof(Entry));
        if (!e)
                return -ENOMEM;
        e->token = strdup(token);
        e->key_authorization = strdup(key_authorization);
        if (!e->token || !e->key_authorization) {
                entry_free(e);
                return -ENOMEM;
        }

        pthread_mutex_lock(lock);
        for (Entry **i = &r->buckets[h]; *i; i = &(*i)->next)
                if (strcmp((*i)->token, token) == 0) {
                        Entry *old = *i;

                        e->next = old->next;
                        *i = e;
                        pthread_mutex_unlock(lock);
                        entry_free(old);
                        return 0;
                }
        e->next = r->buckets[h];
        r->buckets[h] = e;
        pthread_mutex_unlock(lock);
        return 0;
}

void http01_responder_remove(Http01Responder *r, const char *token) {
        uint32_t h = hash_token(token, strlen(token)) % N_BUCKETS;
        pthread_mutex_t *lock = &r->locks[h % N_STRIPES];
        Entry *found = NULL;

        pthread_mutex_lock(lock);
        for (Entry **i = &r->buckets[h]; *i; i = &(*i)->next)
                if (strcmp((*i)->token, token) == 0) {
                        found = *i;
                        *i = found->next;
                        break;
                }
        pthread_mutex_unlock(lock);
        entry_free(found);
}

/* Copies the key authorization for token (length n, not NUL-terminated) into buf. */
static bool lookup(Http01Responder *r, const char *token, size_t n, char *buf, size_t size) {
        uint32_t h = hash_token(token, n) % N_BUCKETS;
        pthread_mutex_t *lock = &r->locks[h % N_STRIPES];
        bool found = false;

        pthread_mutex_lock(lock);
        for (Entry *i = r->buckets[h]; i; i = i->next)
                if (strlen(i->token) == n && memcmp(i->token, token, n) == 0) {
                        found = strlen(i->key_authorization) < size;
                        if (found)
                                strcpy(buf, i->key_authorization);
                        break;
                }
        pthread_mutex_unlock(lock);
        return found;
}

static void send_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                p += k;
                n -= (size_t) k;
        }
}

static void reply(int fd, const char *status, const char *body) {
        char head[256];
        int n;

        /* Connection: close — one validation per connection keeps the responder stateless. */
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", status, strlen(body));
        send_all(fd, head, (size_t) n);
        send_all(fd, body, strlen(body));
}

static void handle_connection(Http01Responder *r, int fd) {
        char req[REQUEST_MAX + 1], keyauth[1024];
        size_t len = 0;
        const char *path, *end;

        for (;;) {
                ssize_t k = recv(fd, req + len, REQUEST_MAX - len, 0);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        r->bad_request++;
                        return;
                }
                len += (size_t) k;
                req[len] = 0;
                if (strstr(req, "\r\n\r\n"))
                        break;
                if (len >= REQUEST_MAX) {
                        r->bad_request++;
                        reply(fd, "431 Request Header Fields Too Large", "");
                        return;
                }
        }

        if (strncmp(req, "GET ", 4) != 0) {
                r->bad_request++;
                reply(fd, "405 Method Not Allowed", "");
                return;
        }
        path = req + 4;
        end = strchr(path, ' ');
        if (!end || strncmp(path, CHALLENGE_PREFIX, strlen(CHALLENGE_PREFIX)) != 0) {
                r->not_found++;
                reply(fd, "404 Not Found", "");
                return;
        }
        path += strlen(CHALLENGE_PREFIX);
        if (!lookup(r, path, (size_t) (end - path), keyauth, sizeof(keyauth))) {
                r->not_found++;
                reply(fd, "404 Not Found", "");
                return;
        }
        r->served++;
        reply(fd, "200 OK", keyauth);
}

static void *responder_thread(void *userdata) {
        Http01Responder *r = userdata;
        struct timeval tv = { .tv_sec = 5 };

        while (!r->stopping) {
                int fd = accept4(r->fd, NULL, NULL, SOCK_CLOEXEC);

                if (fd < 0) {
                        if (r->stopping || (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN))
                                break;
                        continue;
                }
                /* A validator that connects and never sends must not pin this thread. */
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
                handle_connection(r, fd);
                close(fd);
        }
        return NULL;
}

int http01_responder_new(const char *address, uint16_t port, unsigned n_threads, Http01Responder **ret) {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t salen;
        Http01Responder *r;
        int one = 1, family, k;

        if (n_threads == 0 || n_threads > THREADS_MAX)
                return -EINVAL;
        if (inet_pton(AF_INET, address, &sa.in.sin_addr) == 1) {
                family = sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons(port);
                salen = sizeof(sa.in);
        } else if (inet_pton(AF_INET6, address, &sa.in6.sin6_addr) == 1) {
                family = sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons(port);
                salen = sizeof(sa.in6);
        } else
                return -EINVAL;

        r = calloc(1, sizeof(Http01Responder));
        if (!r)
                return -ENOMEM;
        for (unsigned i = 0; i < N_STRIPES; i++)
                pthread_mutex_init(&r->locks[i], NULL);

        r->fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (r->fd < 0) {
                k = -errno;
                http01_responder_free(r);
                return k;
        }
        (void) setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(r->fd, &sa.sa, salen) < 0 || listen(r->fd, 1024) < 0) {
                k = -errno;
                http01_responder_free(r);
                return k;
        }

        for (unsigned i = 0; i < n_threads; i++) {
                k = pthread_create(&r->threads[i], NULL, responder_thread, r);
                if (k != 0) {
                        http01_responder_free(r);
                        return -k;
                }
                r->n_threads++;
        }

        *ret = r;
        return 0;
}

Http01Responder *http01_responder_free(Http01Responder *r) {
        if (!r)
                return NULL;

        r->stopping = true;
        if (r->fd >= 0)
                (void) shutdown(r->fd, SHUT_RDWR);   /* wakes the threads blocked in accept() */
        for (unsigned i = 0; i < r->n_threads; i++)
                pthread_join(r->threads[i], NULL);
        if (r->fd >= 0)
                close(r->fd);

        for (unsigned b = 0; b < N_BUCKETS; b++)
                while (r->buckets[b]) {
                        Entry *e = r->buckets[b];

                        r->buckets[b] = e->next;
                        entry_free(e);
                }
        for (unsigned i = 0; i < N_STRIPES; i++)
                pthread_mutex_destroy(&r->locks[i]);
        free(r);
        return NULL;
}

void http01_responder_get_stats(Http01Responder *r, Http01Stats *ret) {
        *ret = (Http01Stats) {
                .served = r->served,
                .not_found = r->not_found,
                .bad_request = r->bad_request,
        };
}
