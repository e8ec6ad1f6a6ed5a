/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent-challenge.h"
#include "shared/fileio.h"
#include "shared/random-util.h"

#define CHALLENGE_PATH_PREFIX "/.well-known/acme-challenge/"
#define TOKEN_MAX 256

typedef struct HttpToken {
        char *token;
        char *key_authorization;
} HttpToken;

struct ChallengeHttpServer {
        ChallengeListener listener;
        pthread_mutex_t lock;
        HttpToken tokens[CHALLENGE_TOKENS_MAX];
};

bool challenge_token_is_valid(const char *token) {
        size_t n = token ? strlen(token) : 0;

        if (n == 0 || n > TOKEN_MAX)
                return false;
        return strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static void send_all(int fd, const char *data, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, data, n, MSG_NOSIGNAL);
                if (k <= 0)
                        return;
                data += k;
                n -= (size_t) k;
        }
}

/* A HEAD request gets the head a GET would, Content-Length included, and no body (RFC 9110 §9.3.2). */
static void respond(int fd, bool head_only, int status, const char *reason, const char *body) {
        char head[256];
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n", status, reason, strlen(body));
        send_all(fd, head, (size_t) n);
        if (!head_only)
                send_all(fd, body, strlen(body));
}

static void serve_connection(void *userdata, int fd) {
        ChallengeHttpServer *s = userdata;
        char buf[CHALLENGE_HTTP_REQUEST_MAX + 1];
        char *line_end, *path, *sp;
        _cleanup_free_ char *answer = NULL;
        bool head_only;
        size_t n = 0;

        /* Only the request line matters; read until the end of the head or the limit. */
        for (;;) {
                ssize_t k = recv(fd, buf + n, CHALLENGE_HTTP_REQUEST_MAX - n, 0);
                if (k <= 0)
                        return;
                n += (size_t) k;
                buf[n] = 0;
                if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
                        break;
                if (n >= CHALLENGE_HTTP_REQUEST_MAX) {
                        respond(fd, false, 431, "Request Header Fields Too Large", "");
                        return;
                }
        }

        line_end = strpbrk(buf, "\r\n");
        *line_end = 0;
        head_only = strncmp(buf, "HEAD ", 5) == 0;
        if (strncmp(buf, "GET ", 4) != 0 && !head_only) {
                respond(fd, false, 405, "Method Not Allowed", "");
                return;
        }
        path = strchr(buf, ' ') + 1;
        sp = strchr(path, ' ');
        if (sp)
                *sp = 0;
        if (strncmp(path, CHALLENGE_PATH_PREFIX, strlen(CHALLENGE_PATH_PREFIX)) != 0) {
                respond(fd, head_only, 404, "Not Found", "");
                return;
        }
        path += strlen(CHALLENGE_PATH_PREFIX);

        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < CHALLENGE_TOKENS_MAX; i++)
                if (s->tokens[i].token && strcmp(s->tokens[i].token, path) == 0) {
                        answer = strdup(s->tokens[i].key_authorization);
                        break;
                }
        pthread_mutex_unlock(&s->lock);

        if (answer)
                respond(fd, head_only, 200, "OK", answer);
        else
                respond(fd, head_only, 404, "Not Found", "");
}

int challenge_http_server_start(const char *listen_address, ChallengeHttpServer **ret) {
        ChallengeHttpServer *s;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->listener = CHALLENGE_LISTENER_NULL;
        pthread_mutex_init(&s->lock, NULL);

        r = challenge_listener_start(&s->listener, listen_address, serve_connection, s);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        challenge_http_server_stop(s);
        return r;
}

ChallengeHttpServer *challenge_http_server_stop(ChallengeHttpServer *s) {
        if (!s)
                return NULL;
        challenge_listener_stop(&s->listener);
        for (size_t i = 0; i < CHALLENGE_TOKENS_MAX; i++) {
                free(s->tokens[i].token);
                free(s->tokens[i].key_authorization);
        }
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

int challenge_http_server_set(ChallengeHttpServer *s, const char *token, const char *key_authorization) {
        char *t, *k;
        int r = -ENOSPC;

        if (!challenge_token_is_valid(token))
                return -EINVAL;
        t = strdup(token);
        k = strdup(key_authorization);
        if (!t || !k) {
                free(t);
                free(k);
                return -ENOMEM;
        }
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < CHALLENGE_TOKENS_MAX; i++)
                if (!s->tokens[i].token) {
                        s->tokens[i] = (HttpToken) { t, k };
                        t = k = NULL;
                        r = 0;
                        break;
                }
        pthread_mutex_unlock(&s->lock);
        free(t);
        free(k);
        return r;
}

int challenge_http_server_unset(ChallengeHttpServer *s, const char *token) {
        int r = -ENOENT;

        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < CHALLENGE_TOKENS_MAX; i++)
                if (s->tokens[i].token && strcmp(s->tokens[i].token, token) == 0) {
                        free(s->tokens[i].token);
                        free(s->tokens[i].key_authorization);
                        s->tokens[i] = (HttpToken) {};
                        r = 0;
                }
        pthread_mutex_unlock(&s->lock);
        return r;
}

/* Opens WEBROOT/.well-known/acme-challenge, creating what is missing. The webroot itself is the
 * admin's choice and may be a symlink; the two directories below it are often writable by the web
 * server's user, so neither may be a symlink: we run as root and the file name comes from the ACME
 * server, so following one would let them choose where root writes. */
static int open_challenge_dir(const char *webroot, bool create, int *ret_fd) {
        static const char *const components[] = { ".well-known", "acme-challenge" };
        _cleanup_(closep) int fd = -EBADF;

        fd = open(webroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(components); i++) {
                int sub;

                if (create && mkdirat(fd, components[i], 0755) < 0 && errno != EEXIST)
                        return -errno;
                sub = openat(fd, components[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        return -errno;
                close(fd);
                fd = sub;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int challenge_http_webroot_add(const char *webroot, const char *token, const char *key_authorization) {
        _cleanup_(closep) int dir_fd = -EBADF, fd = -EBADF;
        char tmp[TOKEN_MAX + 32];
        size_t left = strlen(key_authorization);
        const char *p = key_authorization;
        uint64_t suffix;
        int r;

        if (!challenge_token_is_valid(token))
                return -EINVAL;
        r = open_challenge_dir(webroot, true, &dir_fd);
        if (r < 0)
                return r;
        r = random_uniform(UINT64_MAX, &suffix);
        if (r < 0)
                return r;
        snprintf(tmp, sizeof tmp, ".#%s.%016llx", token, (unsigned long long) suffix);

        fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        /* Readable by the web server whatever the agent's umask. */
        if (fchmod(fd, 0644) < 0)
                r = -errno;
        while (r >= 0 && left > 0) {
                ssize_t n = write(fd, p, left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        r = -errno;
                else {
                        p += n;
                        left -= (size_t) n;
                }
        }
        if (r >= 0 && renameat(dir_fd, tmp, dir_fd, token) < 0)
                r = -errno;
        if (r < 0)
                (void) unlinkat(dir_fd, tmp, 0);
        return r < 0 ? r : 0;
}

int challenge_http_webroot_remove(const char *webroot, const char *token) {
        _cleanup_(closep) int dir_fd = -EBADF;
        int r;

        if (!challenge_token_is_valid(token))
                return -EINVAL;
        r = open_challenge_dir(webroot, false, &dir_fd);
        if (r < 0)
                return r;
        if (unlinkat(dir_fd, token, 0) < 0)
                return -errno;
        return 0;
}
