/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "agent/agent-challenge.h"

struct AgentChallengeSolver {
        AgentChallengeType type;
        ChallengeHttpServer *http;
        ChallengeTlsAlpnServer *tlsalpn;
        char *webroot;
        char *dns_hook;
};

int challenge_listen(const char *address, int *ret_fd) {
        _cleanup_free_ char *host = NULL;
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
        };
        struct addrinfo *ai = NULL;
        const char *colon = strrchr(address, ':');
        int fd, one = 1, r;

        if (!colon || colon == address)
                return -EINVAL;
        if (address[0] == '[') {
                if (colon[-1] != ']')
                        return -EINVAL;
                host = strndup(address + 1, (size_t) (colon - address - 2));
        } else
                host = strndup(address, (size_t) (colon - address));
        if (!host)
                return -ENOMEM;

        r = getaddrinfo(host, colon + 1, &hints, &ai);
        if (r != 0)
                return -EINVAL;
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                r = -errno;
                freeaddrinfo(ai);
                return r;
        }
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
                r = -errno;
                freeaddrinfo(ai);
                close(fd);
                return r;
        }
        freeaddrinfo(ai);
        *ret_fd = fd;
        return 0;
}

static void *listener_thread(void *userdata) {
        ChallengeListener *l = userdata;

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = l->listen_fd, .events = POLLIN },
                        { .fd = l->stop_fd, .events = POLLIN },
                };
                struct timeval tv = { .tv_sec = CHALLENGE_IO_TIMEOUT_SEC };
                int fd;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                if (!(p[0].revents & POLLIN))
                        continue;
                fd = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                l->serve(l->userdata, fd);
                close(fd);
        }
        return NULL;
}

int challenge_listener_start(ChallengeListener *l, const char *address, ChallengeServeFunc serve, void *userdata) {
        int r;

        l->serve = serve;
        l->userdata = userdata;
        r = challenge_listen(address, &l->listen_fd);
        if (r < 0)
                return r;
        l->stop_fd = eventfd(0, EFD_CLOEXEC);
        if (l->stop_fd < 0)
                return -errno;
        r = -pthread_create(&l->thread, NULL, listener_thread, l);
        if (r < 0)
                return r;
        l->running = true;
        return 0;
}

void challenge_listener_stop(ChallengeListener *l) {
        if (l->running) {
                uint64_t one = 1;
                (void) !write(l->stop_fd, &one, sizeof one);
                pthread_join(l->thread, NULL);
                l->running = false;
        }
        l->listen_fd = safe_close(l->listen_fd);
        l->stop_fd = safe_close(l->stop_fd);
}

int agent_challenge_solver_new(const CertConfig *c, AgentChallengeSolver **ret) {
        _cleanup_(agent_challenge_solver_freep) AgentChallengeSolver *s = NULL;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->type = c->challenge;

        switch (c->challenge) {
        case AGENT_CHALLENGE_HTTP01:
                if (c->webroot) {
                        s->webroot = strdup(c->webroot);
                        if (!s->webroot)
                                return -ENOMEM;
                } else {
                        r = challenge_http_server_start(c->http_listen, &s->http);
                        if (r < 0)
                                return r;
                }
                break;
        case AGENT_CHALLENGE_TLSALPN01:
                r = challenge_tlsalpn_server_start(c->tls_listen, &s->tlsalpn);
                if (r < 0)
                        return r;
                break;
        case AGENT_CHALLENGE_DNS01:
                s->dns_hook = strdup(c->dns_hook);
                if (!s->dns_hook)
                        return -ENOMEM;
                break;
        default:
                return -EINVAL;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

AgentChallengeSolver *agent_challenge_solver_free(AgentChallengeSolver *s) {
        if (!s)
                return NULL;
        challenge_http_server_stop(s->http);
        challenge_tlsalpn_server_stop(s->tlsalpn);
        free(s->webroot);
        free(s->dns_hook);
        free(s);
        return NULL;
}

AgentChallengeType agent_challenge_solver_type(AgentChallengeSolver *s) {
        return s->type;
}

int agent_challenge_solver_provision(AgentChallengeSolver *s, const char *identifier,
                                     const char *token, const char *key_authorization) {
        switch (s->type) {
        case AGENT_CHALLENGE_HTTP01:
                if (s->webroot)
                        return challenge_http_webroot_add(s->webroot, token, key_authorization);
                return challenge_http_server_set(s->http, token, key_authorization);
        case AGENT_CHALLENGE_TLSALPN01:
                return challenge_tlsalpn_server_set(s->tlsalpn, identifier, key_authorization);
        case AGENT_CHALLENGE_DNS01: {
                _cleanup_free_ char *value = NULL;
                int r = challenge_dns_txt_value(key_authorization, &value);
                if (r < 0)
                        return r;
                return challenge_dns_run_hook(s->dns_hook, "set", identifier, value);
        }
        default:
                return -EINVAL;
        }
}

int agent_challenge_solver_withdraw(AgentChallengeSolver *s, const char *identifier,
                                    const char *token, const char *key_authorization) {
        switch (s->type) {
        case AGENT_CHALLENGE_HTTP01:
                if (s->webroot)
                        return challenge_http_webroot_remove(s->webroot, token);
                return challenge_http_server_unset(s->http, token);
        case AGENT_CHALLENGE_TLSALPN01:
                return challenge_tlsalpn_server_unset(s->tlsalpn, identifier);
        case AGENT_CHALLENGE_DNS01: {
                _cleanup_free_ char *value = NULL;
                int r = challenge_dns_txt_value(key_authorization, &value);
                if (r < 0)
                        return r;
                return challenge_dns_run_hook(s->dns_hook, "clear", identifier, value);
        }
        default:
                return -EINVAL;
        }
}
