/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* ACME challenge solvers (RFC 8555 §8.3 http-01, RFC 8737 tls-alpn-01, RFC 8555 §8.4 dns-01).
 *
 * A solver lives for one enrollment job: it is started before the first authorization (so a
 * port that cannot be bound fails the job before anything is asked of the CA), provisions a
 * response before the client POSTs to the challenge and withdraws it once the authorization is
 * final. The standalone listeners run on their own thread. */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "agent/agent-config.h"
#include "shared/macro.h"

#define CHALLENGE_TOKENS_MAX 100            /* responses provisioned at once */
#define CHALLENGE_HTTP_REQUEST_MAX 8192     /* request head accepted by the http-01 listener */
#define CHALLENGE_IO_TIMEOUT_SEC 10

typedef struct AgentChallengeSolver AgentChallengeSolver;

int agent_challenge_solver_new(const CertConfig *c, AgentChallengeSolver **ret);
AgentChallengeSolver *agent_challenge_solver_free(AgentChallengeSolver *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentChallengeSolver *, agent_challenge_solver_free);
AgentChallengeType agent_challenge_solver_type(AgentChallengeSolver *s);
/* identifier: the DNS name of the authorization (without "*." for wildcards). */
int agent_challenge_solver_provision(AgentChallengeSolver *s, const char *identifier,
                                     const char *token, const char *key_authorization);
int agent_challenge_solver_withdraw(AgentChallengeSolver *s, const char *identifier,
                                    const char *token, const char *key_authorization);

/* Parses "ADDR:PORT" / "[ADDR]:PORT" and binds a listening TCP socket (SO_REUSEADDR). */
int challenge_listen(const char *address, int *ret_fd);

/* What the standalone listeners share: a socket bound at start (so a busy port fails the job
 * early) and a thread that serves one connection at a time, with CHALLENGE_IO_TIMEOUT_SEC on
 * every read and write, until stopped. serve() must not close fd. */
typedef void (*ChallengeServeFunc)(void *userdata, int fd);
typedef struct ChallengeListener {
        int listen_fd;
        int stop_fd;                  /* eventfd: written once to stop the thread */
        pthread_t thread;
        bool running;
        ChallengeServeFunc serve;
        void *userdata;
} ChallengeListener;
#define CHALLENGE_LISTENER_NULL ((ChallengeListener) { .listen_fd = -EBADF, .stop_fd = -EBADF })

/* l must be CHALLENGE_LISTENER_NULL; on failure it still needs challenge_listener_stop(). */
int challenge_listener_start(ChallengeListener *l, const char *address, ChallengeServeFunc serve, void *userdata);
/* Joins the thread (if it runs) and closes the sockets; safe on a listener that never started. */
void challenge_listener_stop(ChallengeListener *l);

/* http-01 standalone listener: answers GET /.well-known/acme-challenge/TOKEN. */
typedef struct ChallengeHttpServer ChallengeHttpServer;
int challenge_http_server_start(const char *listen_address, ChallengeHttpServer **ret);
ChallengeHttpServer *challenge_http_server_stop(ChallengeHttpServer *s);
int challenge_http_server_set(ChallengeHttpServer *s, const char *token, const char *key_authorization);
int challenge_http_server_unset(ChallengeHttpServer *s, const char *token);
/* http-01 webroot: WEBROOT/.well-known/acme-challenge/TOKEN (0644; directories created 0755). */
int challenge_http_webroot_add(const char *webroot, const char *token, const char *key_authorization);
int challenge_http_webroot_remove(const char *webroot, const char *token);
/* Tokens are base64url (RFC 8555 §8.1); anything else must never reach a path or a URL match. */
bool challenge_token_is_valid(const char *token);

/* tls-alpn-01 standalone listener (RFC 8737): ALPN "acme-tls/1", SNI picks the identifier. */
typedef struct ChallengeTlsAlpnServer ChallengeTlsAlpnServer;
int challenge_tlsalpn_server_start(const char *listen_address, ChallengeTlsAlpnServer **ret);
ChallengeTlsAlpnServer *challenge_tlsalpn_server_stop(ChallengeTlsAlpnServer *s);
int challenge_tlsalpn_server_set(ChallengeTlsAlpnServer *s, const char *identifier, const char *key_authorization);
int challenge_tlsalpn_server_unset(ChallengeTlsAlpnServer *s, const char *identifier);
/* The self-signed validation certificate: SAN dNSName identifier, critical acmeIdentifier
 * (1.3.6.1.5.5.7.1.31) holding SHA-256(key_authorization). */
int challenge_tlsalpn_make_cert(const char *identifier, const char *key_authorization,
                                X509 **ret_cert, EVP_PKEY **ret_key);

/* dns-01: the TXT value base64url(SHA-256(key_authorization)), and the hook:
 * HOOK set|clear _acme-challenge.IDENTIFIER VALUE, with CERTFLEET_DOMAIN=IDENTIFIER in the
 * environment. A non-zero exit is -EIO. */
int challenge_dns_txt_value(const char *key_authorization, char **ret);
int challenge_dns_run_hook(const char *hook, const char *action, const char *identifier, const char *value);
