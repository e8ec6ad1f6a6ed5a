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

static void respond(int fd, int status, const char *reason, const char *body) {
        char head[256];
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n", status, reason, strlen(body));
        send_all(fd, head, (size_t) n);
        send_all(fd, body, strlen(body));
}

static void serve_connection(void *userdata, int fd) {
        ChallengeHttpServer *s = userdata;
        char buf[CHALLENGE_HTTP_REQUEST_MAX + 1];
        char *line_end, *path, *sp;
        _cleanup_free_ char *answer = NULL;
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
                        respond(fd, 431, "Request Header Fields Too Large", "");
                        return;
                }
        }

        line_end = strpbrk(buf, "\r\n");
        *line_end = 0;
        if (strncmp(buf, "GET ", 4) != 0 && strncmp(buf, "HEAD ", 5) != 0) {
                respond(fd, 405, "Method Not Allowed", "");
                return;
        }
        path = strchr(buf, ' ') + 1;
        sp = strchr(path, ' ');
        if (sp)
                *sp = 0;
        if (strncmp(path, CHALLENGE_PATH_PREFIX, strlen(CHALLENGE_PATH_PREFIX)) != 0) {
                respond(fd, 404, "Not Found", "");
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
                respond(fd, 200, "OK", answer);
        else
                respond(fd, 404, "Not Found", "");
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

int challenge_http_webroot_add(const char *webroot, const char *token, const char *key_authorization) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        int r;

        if (!challenge_token_is_valid(token))
                return -EINVAL;
        if (asprintf(&dir, "%s/.well-known/acme-challenge", webroot) < 0 ||
            asprintf(&path, "%s/%s", dir, token) < 0)
                return -ENOMEM;
        r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        return write_file_atomic(path, key_authorization, strlen(key_authorization), 0644,
                                 (uid_t) -1, (gid_t) -1);
}

int challenge_http_webroot_remove(const char *webroot, const char *token) {
        _cleanup_free_ char *path = NULL;

        if (!challenge_token_is_valid(token))
                return -EINVAL;
        if (asprintf(&path, "%s/.well-known/acme-challenge/%s", webroot, token) < 0)
                return -ENOMEM;
        if (unlink(path) < 0)
                return -errno;
        return 0;
}
