/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent-acme.h"
#include "agent/agent-http.h"
#include "agent/agent-schedule.h"
#include "agent/agent-state.h"
#include "shared/base64.h"
#include "shared/csr.h"
#include "shared/errors.h"
#include "shared/jose.h"
#include "shared/json-util.h"
#include "shared/key.h"
#include "shared/log.h"
#include "shared/pem.h"
#include "shared/problem.h"
#include "shared/strv.h"

#define ACME_ERROR_MAX 1024

struct AcmeClient {
        AgentHttp *http;
        char *directory_url;
        char *state_dir;
        char *email;
        char *eab_kid;
        SecretBuf eab_key;

        json_object *directory;
        const char *new_nonce_url;    /* borrowed from directory */
        const char *new_account_url;
        const char *new_order_url;
        const char *renewal_info_url;

        char *nonce;
        EVP_PKEY *account_key;
        char *account_url;
        char *thumbprint;

        char error[ACME_ERROR_MAX];
};

static int set_error(AcmeClient *c, int r, const char *format, ...) _printf_(3, 4);
static int set_error(AcmeClient *c, int r, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        vsnprintf(c->error, sizeof c->error, format, ap);
        va_end(ap);
        /* The message quotes the server (problem details, statuses, names) and ends up in the
         * journal, in LastError on the bus and on certfleetctl's terminal: no control characters
         * (escape sequences, fake log lines) get that far. */
        for (char *p = c->error; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f)
                        *p = '?';
        return r < 0 ? r : -EIO;
}

const char *acme_client_error(AcmeClient *c) {
        return c->error;
}

int acme_client_new(const AcmeClientOptions *o, AcmeClient **ret) {
        _cleanup_(acme_client_freep) AcmeClient *c = NULL;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        r = agent_http_new(o->ca_bundle, &c->http);
        if (r < 0)
                return r;
        c->directory_url = strdup(o->directory_url);
        c->state_dir = strdup(o->state_dir);
        if (!c->directory_url || !c->state_dir)
                return -ENOMEM;
        if (o->email && !(c->email = strdup(o->email)))
                return -ENOMEM;
        if (o->eab_kid) {
                c->eab_kid = strdup(o->eab_kid);
                c->eab_key.data = malloc(o->eab_key_size);
                if (!c->eab_kid || !c->eab_key.data)
                        return -ENOMEM;
                memcpy(c->eab_key.data, o->eab_key, o->eab_key_size);
                c->eab_key.size = o->eab_key_size;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

AcmeClient *acme_client_free(AcmeClient *c) {
        if (!c)
                return NULL;
        agent_http_free(c->http);
        free(c->directory_url);
        free(c->state_dir);
        free(c->email);
        free(c->eab_kid);
        secret_buf_done(&c->eab_key);
        json_object_put(c->directory);
        free(c->nonce);
        EVP_PKEY_free(c->account_key);
        free(c->account_url);
        free(c->thumbprint);
        free(c);
        return NULL;
}

static void take_nonce(AcmeClient *c, AgentHttpResponse *resp) {
        if (resp->replay_nonce && *resp->replay_nonce) {
                free(c->nonce);
                c->nonce = TAKE_PTR(resp->replay_nonce);
        }
}

static int transport_error(AcmeClient *c, int r, const char *what, const char *url) {
        if (r == -E2BIG)
                return set_error(c, r, "%s: response from %s exceeds %u bytes", what, url, AGENT_HTTP_BODY_MAX);
        return set_error(c, r, "%s: cannot reach %s: %s", what, url, agent_http_last_error(c->http));
}

/* Describes an error response: the problem document if there is one, else the HTTP status.
 * Returns the problem's error (negative). */
static int response_error(AcmeClient *c, const char *what, const char *url, AgentHttpResponse *resp) {
        Problem p = {};
        int r;

        if (resp->content_type && strcmp(resp->content_type, "application/problem+json") == 0 &&
            problem_parse(resp->body, resp->body_size, &p) >= 0) {
                r = set_error(c, -(int) p.error, "%s: the server answered %ld %s%s%s", what, resp->status,
                              p.type ?: "(no type)", p.detail ? ": " : "", p.detail ?: "");
                problem_done(&p);
                return r;
        }
        return set_error(c, -EPROTO, "%s: unexpected HTTP status %ld from %s", what, resp->status, url);
}

static bool is_bad_nonce(AgentHttpResponse *resp) {
        Problem p = {};
        bool bad;

        if (resp->status != 400 || !resp->content_type ||
            strcmp(resp->content_type, "application/problem+json") != 0)
                return false;
        if (problem_parse(resp->body, resp->body_size, &p) < 0)
                return false;
        bad = p.error == CF_E_BAD_NONCE;
        problem_done(&p);
        return bad;
}

static int parse_json_object(AcmeClient *c, const char *what, AgentHttpResponse *resp, json_object **ret) {
        json_object *o = NULL;
        int r;

        r = json_parse_strict(resp->body, resp->body_size, AGENT_HTTP_BODY_MAX, &o);
        if (r < 0)
                return set_error(c, r, "%s: the server sent invalid JSON", what);
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return set_error(c, -EBADMSG, "%s: the server sent JSON that is not an object", what);
        }
        *ret = o;
        return 0;
}

int acme_client_load_directory(AcmeClient *c) {
        AgentHttpResponse resp = {};
        json_object *d = NULL;
        json_object *meta;
        int r;

        if (c->directory)
                return 0;
        r = agent_http_get(c->http, c->directory_url, &resp);
        if (r < 0)
                return transport_error(c, r, "directory", c->directory_url);
        if (resp.status != 200) {
                r = response_error(c, "directory", c->directory_url, &resp);
                agent_http_response_done(&resp);
                return r;
        }
        r = parse_json_object(c, "directory", &resp, &d);
        agent_http_response_done(&resp);
        if (r < 0)
                return r;
        if (json_get_string(d, "newNonce", &c->new_nonce_url) < 0 ||
            json_get_string(d, "newAccount", &c->new_account_url) < 0 ||
            json_get_string(d, "newOrder", &c->new_order_url) < 0) {
                json_object_put(d);
                c->new_nonce_url = c->new_account_url = c->new_order_url = NULL;
                return set_error(c, -EBADMSG, "directory %s lacks newNonce, newAccount or newOrder",
                                 c->directory_url);
        }
        if (json_get_string(d, "renewalInfo", &c->renewal_info_url) < 0)
                c->renewal_info_url = NULL;
        if (json_get_object(d, "meta", &meta) >= 0) {
                bool eab_required = false;
                if (json_get_bool(meta, "externalAccountRequired", &eab_required) >= 0 &&
                    eab_required && !c->eab_kid)
                        log_debug("%s requires external account binding and none is configured", c->directory_url);
        }
        c->directory = d;
        return 0;
}

bool acme_client_has_ari(AcmeClient *c) {
        return c->directory && c->renewal_info_url;
}

static int fetch_nonce(AcmeClient *c) {
        AgentHttpResponse resp = {};
        int r;

        r = agent_http_head(c->http, c->new_nonce_url, &resp);
        if (r < 0)
                return transport_error(c, r, "newNonce", c->new_nonce_url);
        take_nonce(c, &resp);
        r = resp.status;
        agent_http_response_done(&resp);
        if (!c->nonce)
                return set_error(c, -EPROTO, "newNonce: HTTP %d without a Replay-Nonce header", r);
        return 0;
}

/* Signed POST (payload NULL: POST-as-GET). kid NULL signs with the account key's jwk (newAccount).
 * badNonce is retried with the nonce the error carried. HTTP error statuses are returned to the
 * caller in *ret (status >= 400), not as failures. */
static int post(AcmeClient *c, const char *url, json_object *payload, bool use_kid, const char *accept,
                AgentHttpResponse *ret) {
        for (unsigned attempt = 0;; attempt++) {
                _cleanup_free_ char *body = NULL, *nonce = NULL;
                AgentHttpResponse resp = {};
                int r;

                if (!c->nonce) {
                        r = fetch_nonce(c);
                        if (r < 0)
                                return r;
                }
                nonce = TAKE_PTR(c->nonce);   /* a nonce is single-use */
                r = jws_sign(c->account_key, use_kid ? c->account_url : NULL, nonce, url, payload, &body);
                if (r < 0)
                        return set_error(c, r, "cannot sign the request to %s", url);
                r = agent_http_post_jose(c->http, url, body, accept, &resp);
                if (r < 0)
                        return transport_error(c, r, "POST", url);
                take_nonce(c, &resp);
                if (is_bad_nonce(&resp) && attempt + 1 < ACME_NONCE_RETRIES) {
                        log_debug("badNonce from %s, retrying", url);
                        agent_http_response_done(&resp);
                        continue;
                }
                *ret = resp;
                return 0;
        }
}

/* POST and require a 2xx with a JSON object body. */
static int post_json(AcmeClient *c, const char *what, const char *url, json_object *payload,
                     AgentHttpResponse *ret_resp, json_object **ret) {
        AgentHttpResponse resp = {};
        json_object *o = NULL;
        int r;

        r = post(c, url, payload, true, NULL, &resp);
        if (r < 0)
                return r;
        if (resp.status < 200 || resp.status >= 300) {
                r = response_error(c, what, url, &resp);
                agent_http_response_done(&resp);
                return r;
        }
        r = parse_json_object(c, what, &resp, &o);
        if (r < 0) {
                agent_http_response_done(&resp);
                return r;
        }
        if (ret_resp)
                *ret_resp = resp;
        else
                agent_http_response_done(&resp);
        *ret = o;
        return 0;
}

static int register_account(AcmeClient *c) {
        _cleanup_(json_object_putp) json_object *payload = NULL;
        AgentHttpResponse resp = {};
        int r;

        payload = json_object_new_object();
        if (!payload ||
            json_object_object_add(payload, "termsOfServiceAgreed", json_object_new_boolean(1)) < 0)
                return -ENOMEM;
        if (c->email) {
                _cleanup_free_ char *mailto = NULL;
                json_object *contact = json_object_new_array();
                if (!contact || asprintf(&mailto, "mailto:%s", c->email) < 0 ||
                    json_object_array_add(contact, json_object_new_string(mailto)) < 0 ||
                    json_object_object_add(payload, "contact", contact) < 0) {
                        json_object_put(contact);
                        return -ENOMEM;
                }
        }
        if (c->eab_kid) {
                json_object *eab = NULL;
                r = jws_sign_eab(c->eab_key.data, c->eab_key.size, c->eab_kid, c->new_account_url,
                                 c->account_key, &eab);
                if (r < 0)
                        return set_error(c, r, "cannot build the external account binding");
                if (json_object_object_add(payload, "externalAccountBinding", eab) < 0) {
                        json_object_put(eab);
                        return -ENOMEM;
                }
        }

        r = post(c, c->new_account_url, payload, false, NULL, &resp);
        if (r < 0)
                return r;
        if (resp.status != 200 && resp.status != 201) {
                r = response_error(c, "newAccount", c->new_account_url, &resp);
                if (r == -CF_E_EXTERNAL_ACCOUNT_REQUIRED && !c->eab_kid)
                        (void) set_error(c, r, "newAccount: the server requires external account binding: "
                                         "set [ACME] EABKeyID= and EABKey=");
                agent_http_response_done(&resp);
                return r;
        }
        if (!resp.location) {
                agent_http_response_done(&resp);
                return set_error(c, -EPROTO, "newAccount: no Location header in the response");
        }
        free(c->account_url);
        c->account_url = TAKE_PTR(resp.location);
        agent_http_response_done(&resp);

        r = agent_state_save_account_url(c->state_dir, c->directory_url, c->account_url);
        if (r < 0)
                return set_error(c, r, "cannot save the account URL: %s", strerror(-r));
        log_debug("Registered ACME account %s", c->account_url);
        return 0;
}

int acme_client_ensure_account(AcmeClient *c) {
        int r;

        r = acme_client_load_directory(c);
        if (r < 0)
                return r;
        if (!c->account_key) {
                r = agent_state_load_account(c->state_dir, c->directory_url, &c->account_key, &c->account_url);
                if (r == -ENOENT) {
                        r = key_generate(KEY_EC_P256, &c->account_key);
                        if (r < 0)
                                return set_error(c, r, "cannot generate the account key");
                        r = agent_state_save_account_key(c->state_dir, c->directory_url, c->account_key);
                        if (r < 0)
                                return set_error(c, r, "cannot save the account key: %s", strerror(-r));
                } else if (r < 0)
                        return set_error(c, r, "cannot load the account: %s", strerror(-r));
        }
        if (!c->thumbprint) {
                r = jwk_thumbprint_from_key(c->account_key, &c->thumbprint);
                if (r < 0)
                        return set_error(c, r, "cannot compute the account key thumbprint");
        }
        if (!c->account_url)
                return register_account(c);
        return 0;
}

static int retry_after_seconds(AgentHttpResponse *resp, int64_t fallback) {
        int64_t s;

        if (!resp->retry_after || schedule_parse_retry_after(resp->retry_after, time_now(), &s) < 0)
                s = fallback;
        if (s < ACME_POLL_INTERVAL_MIN)
                s = ACME_POLL_INTERVAL_MIN;
        if (s > ACME_POLL_INTERVAL_MAX)
                s = ACME_POLL_INTERVAL_MAX;
        return (int) s;
}

int acme_client_renewal_info(AcmeClient *c, X509 *cert, AriRenewalInfo *ret, int64_t *ret_retry_after) {
        _cleanup_free_ char *cert_id = NULL, *url = NULL;
        AgentHttpResponse resp = {};
        AriRenewalInfo info = {};
        int64_t retry_after = -1;
        int r;

        r = acme_client_load_directory(c);
        if (r < 0)
                return r;
        if (!c->renewal_info_url)
                return set_error(c, -EOPNOTSUPP, "the server does not offer renewalInfo");
        r = ari_cert_id(cert, &cert_id);
        if (r < 0)
                return set_error(c, r, "cannot compute the ARI CertID (no authorityKeyIdentifier?)");
        if (asprintf(&url, "%s%s%s", c->renewal_info_url,
                     c->renewal_info_url[strlen(c->renewal_info_url) - 1] == '/' ? "" : "/", cert_id) < 0)
                return -ENOMEM;

        r = agent_http_get(c->http, url, &resp);
        if (r < 0)
                return transport_error(c, r, "renewalInfo", url);
        if (resp.status != 200) {
                r = response_error(c, "renewalInfo", url, &resp);
                agent_http_response_done(&resp);
                return r;
        }
        if (resp.retry_after)
                (void) schedule_parse_retry_after(resp.retry_after, time_now(), &retry_after);
        r = ari_parse_renewal_info(resp.body, resp.body_size, &info);
        agent_http_response_done(&resp);
        if (r < 0)
                return set_error(c, r, "renewalInfo: the server sent an invalid suggestedWindow");
        *ret = info;
        *ret_retry_after = retry_after;
        return 0;
}

static int build_identifiers(char *const *names, json_object **ret) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();

        if (!a)
                return -ENOMEM;
        for (char *const *n = names; n && *n; n++) {
                json_object *id = json_object_new_object();
                if (!id ||
                    json_object_object_add(id, "type", json_object_new_string("dns")) < 0 ||
                    json_object_object_add(id, "value", json_object_new_string(*n)) < 0 ||
                    json_object_array_add(a, id) < 0) {
                        json_object_put(id);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(a);
        return 0;
}

/* The profile name if the directory advertises it in meta.profiles, else NULL (a server without
 * the extension may reject an unknown member). */
static const char *advertised_profile(AcmeClient *c, const char *profile) {
        json_object *meta, *profiles;

        if (!profile || !c->directory)
                return NULL;
        if (json_get_object(c->directory, "meta", &meta) < 0 ||
            json_get_object(meta, "profiles", &profiles) < 0 ||
            !json_object_object_get_ex(profiles, profile, NULL)) {
                log_debug("The server does not advertise the profile '%s'; ordering without it", profile);
                return NULL;
        }
        return profile;
}

static int new_order(AcmeClient *c, char *const *names, const char *replaces, const char *profile,
                     char **ret_url, json_object **ret_order) {
        _cleanup_(json_object_putp) json_object *payload = NULL, *order = NULL;
        json_object *ids = NULL;
        AgentHttpResponse resp = {};
        int r;

        payload = json_object_new_object();
        if (!payload)
                return -ENOMEM;
        r = build_identifiers(names, &ids);
        if (r < 0)
                return r;
        if (json_object_object_add(payload, "identifiers", ids) < 0) {
                json_object_put(ids);
                return -ENOMEM;
        }
        if (replaces && json_object_object_add(payload, "replaces", json_object_new_string(replaces)) < 0)
                return -ENOMEM;
        if (profile && json_object_object_add(payload, "profile", json_object_new_string(profile)) < 0)
                return -ENOMEM;

        r = post_json(c, "newOrder", c->new_order_url, payload, &resp, &order);
        if (r < 0)
                return r;
        if (!resp.location) {
                agent_http_response_done(&resp);
                return set_error(c, -EPROTO, "newOrder: no Location header in the response");
        }
        *ret_url = TAKE_PTR(resp.location);
        agent_http_response_done(&resp);
        *ret_order = TAKE_PTR(order);
        return 0;
}

static int describe_challenge_error(AcmeClient *c, const char *identifier, json_object *authz) {
        json_object *challenges, *error;
        int r = -CF_E_UNAUTHORIZED;

        if (json_get_array(authz, "challenges", &challenges) >= 0)
                for (size_t i = 0; i < json_object_array_length(challenges); i++) {
                        json_object *ch = json_object_array_get_idx(challenges, i);
                        const char *json;
                        Problem p = {};

                        if (json_get_object(ch, "error", &error) < 0)
                                continue;
                        json = json_object_to_json_string(error);
                        if (problem_parse(json, strlen(json), &p) >= 0) {
                                r = set_error(c, -(int) p.error, "validation of %s failed: %s%s%s", identifier,
                                              p.type ?: "", p.detail ? ": " : "", p.detail ?: "");
                                problem_done(&p);
                                return r;
                        }
                }
        return set_error(c, r, "validation of %s failed (the server gave no reason)", identifier);
}

/* Polls url (POST-as-GET) until its "status" is not one of the waiting states. */
static int poll_status(AcmeClient *c, const char *what, const char *url, const char *const *waiting,
                       json_object **ret) {
        time_t deadline = time(NULL) + ACME_POLL_TIMEOUT_SEC;

        for (;;) {
                _cleanup_(json_object_putp) json_object *o = NULL;
                AgentHttpResponse resp = {};
                const char *status;
                bool wait = false;
                int r, delay;

                r = post_json(c, what, url, NULL, &resp, &o);
                if (r < 0)
                        return r;
                delay = retry_after_seconds(&resp, 1);
                agent_http_response_done(&resp);
                if (json_get_string(o, "status", &status) < 0)
                        return set_error(c, -EBADMSG, "%s: object without a status", what);
                for (const char *const *w = waiting; *w; w++)
                        if (strcmp(status, *w) == 0)
                                wait = true;
                if (!wait) {
                        *ret = TAKE_PTR(o);
                        return 0;
                }
                if (time(NULL) + delay > deadline)
                        return set_error(c, -ETIMEDOUT, "%s: still \"%s\" after %d s", what, status,
                                         ACME_POLL_TIMEOUT_SEC);
                sleep((unsigned) delay);
        }
}

bool acme_identifier_was_ordered(char *const *names, const char *identifier) {
        if (!identifier || !*identifier)
                return false;
        for (char *const *n = names; n && *n; n++) {
                const char *base = strncmp(*n, "*.", 2) == 0 ? *n + 2 : *n;
                if (strcasecmp(base, identifier) == 0)
                        return true;
        }
        return false;
}

static int authorize(AcmeClient *c, AgentChallengeSolver *solver, char *const *names, const char *authz_url) {
        static const char *const waiting[] = { "pending", "processing", NULL };
        _cleanup_(json_object_putp) json_object *authz = NULL, *final = NULL, *empty = NULL, *ch_resp = NULL;
        _cleanup_free_ char *key_authorization = NULL, *identifier_copy = NULL;
        const char *status, *identifier, *want, *token = NULL, *ch_url = NULL;
        json_object *id, *challenges;
        int r, r2;

        r = post_json(c, "authorization", authz_url, NULL, NULL, &authz);
        if (r < 0)
                return r;
        if (json_get_string(authz, "status", &status) < 0 ||
            json_get_object(authz, "identifier", &id) < 0 ||
            json_get_string(id, "value", &identifier) < 0 ||
            json_get_array(authz, "challenges", &challenges) < 0)
                return set_error(c, -EBADMSG, "authorization %s is malformed", authz_url);
        if (strcmp(status, "valid") == 0)
                return 0;
        if (!acme_identifier_was_ordered(names, identifier))
                return set_error(c, -EBADMSG, "authorization %s is for a name that was not ordered", authz_url);
        if (strcmp(status, "pending") != 0)
                return set_error(c, -CF_E_UNAUTHORIZED, "authorization for %s is \"%s\"", identifier, status);
        if (json_object_array_length(challenges) > ACME_CHALLENGES_MAX)
                return set_error(c, -E2BIG, "authorization for %s has too many challenges (%zu)", identifier,
                                 json_object_array_length(challenges));

        want = agent_challenge_type_to_string(agent_challenge_solver_type(solver));
        for (size_t i = 0; i < json_object_array_length(challenges); i++) {
                json_object *ch = json_object_array_get_idx(challenges, i);
                const char *type;
                if (json_get_string(ch, "type", &type) >= 0 && strcmp(type, want) == 0 &&
                    json_get_string(ch, "token", &token) >= 0 && json_get_string(ch, "url", &ch_url) >= 0)
                        break;
                token = ch_url = NULL;
        }
        if (!token)
                return set_error(c, -CF_E_UNAUTHORIZED, "the server offers no %s challenge for %s", want, identifier);
        if (!challenge_token_is_valid(token))
                return set_error(c, -EBADMSG, "the server sent an invalid challenge token for %s", identifier);
        if (asprintf(&key_authorization, "%s.%s", token, c->thumbprint) < 0)
                return -ENOMEM;
        identifier_copy = strdup(identifier);
        if (!identifier_copy)
                return -ENOMEM;

        r = agent_challenge_solver_provision(solver, identifier, token, key_authorization);
        if (r < 0)
                return set_error(c, r, "cannot provision the %s response for %s: %s", want, identifier,
                                 r == -EIO && agent_challenge_solver_type(solver) == AGENT_CHALLENGE_DNS01
                                 ? "DNSHook= set exited with a non-zero status"
                                 : r == -ETIMEDOUT ? "timed out" : strerror(-r));

        empty = json_object_new_object();
        if (!empty)
                r = -ENOMEM;
        else
                r = post_json(c, "challenge", ch_url, empty, NULL, &ch_resp);
        if (r >= 0)
                r = poll_status(c, "authorization", authz_url, waiting, &final);

        r2 = agent_challenge_solver_withdraw(solver, identifier_copy, token, key_authorization);
        if (r2 < 0)
                log_debug("Withdrawing the %s response for %s failed: %s", want, identifier_copy, strerror(-r2));
        if (r < 0)
                return r;

        if (json_get_string(final, "status", &status) < 0)
                return set_error(c, -EBADMSG, "authorization %s is malformed", authz_url);
        if (strcmp(status, "valid") != 0)
                return describe_challenge_error(c, identifier_copy, final);
        return 0;
}

static int split_chain(AcmeClient *c, const char *pem, size_t len, EVP_PKEY *key,
                       char **ret_cert, char **ret_chain) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_(X509_freep) X509 *leaf = NULL;
        _cleanup_free_ char *cert_pem = NULL, *chain_pem = NULL;
        int r;

        r = pem_read_chain(pem, len, &chain);
        if (r < 0)
                return set_error(c, r, "the server sent an unparsable certificate chain");
        leaf = sk_X509_shift(chain);
        if (!leaf || X509_check_private_key(leaf, key) != 1)
                return set_error(c, -EBADMSG, "the issued certificate does not match our key");
        r = pem_write_cert(leaf, &cert_pem);
        if (r < 0)
                return r;
        if (sk_X509_num(chain) > 0) {
                r = pem_write_chain(chain, &chain_pem);
                if (r < 0)
                        return r;
        } else if (!(chain_pem = strdup("")))
                return -ENOMEM;
        *ret_cert = TAKE_PTR(cert_pem);
        *ret_chain = TAKE_PTR(chain_pem);
        return 0;
}

static int finalize(AcmeClient *c, const AcmeIssueRequest *req, const char *order_url, json_object *order,
                    char **ret_cert, char **ret_chain) {
        static const char *const waiting_ready[] = { "pending", NULL };
        static const char *const waiting_valid[] = { "processing", NULL };
        _cleanup_(json_object_putp) json_object *ready = NULL, *payload = NULL, *fin = NULL, *valid = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *der_b64 = NULL, *finalize_url = NULL;
        const char *status, *url, *cert_url;
        AgentHttpResponse resp = {};
        size_t der_len;
        int r;

        r = poll_status(c, "order", order_url, waiting_ready, &ready);
        if (r < 0)
                return r;
        if (json_get_string(ready, "status", &status) < 0 || json_get_string(ready, "finalize", &url) < 0)
                return set_error(c, -EBADMSG, "order %s is malformed", order_url);
        if (strcmp(status, "ready") != 0 && strcmp(status, "valid") != 0)
                return set_error(c, -CF_E_ORDER_NOT_READY, "order %s is \"%s\", not ready", order_url, status);
        finalize_url = strdup(url);
        if (!finalize_url)
                return -ENOMEM;

        if (strcmp(status, "ready") == 0) {
                CsrRequest creq = {
                        .key = req->key,
                        .common_name = req->names[0][0] == '*' ? NULL : req->names[0],
                        .dns = (char **) req->names,
                };
                r = csr_build(&creq, &csr);
                if (r < 0)
                        return set_error(c, r, "cannot build the CSR");
                r = der_write_csr(csr, &der, &der_len);
                if (r < 0)
                        return r;
                r = base64url_encode(der, der_len, &der_b64);
                if (r < 0)
                        return r;
                payload = json_object_new_object();
                if (!payload || json_object_object_add(payload, "csr", json_object_new_string(der_b64)) < 0)
                        return -ENOMEM;
                r = post_json(c, "finalize", finalize_url, payload, NULL, &fin);
                if (r < 0)
                        return r;
        }

        r = poll_status(c, "order", order_url, waiting_valid, &valid);
        if (r < 0)
                return r;
        if (json_get_string(valid, "status", &status) < 0)
                return set_error(c, -EBADMSG, "order %s is malformed", order_url);
        if (strcmp(status, "valid") != 0) {
                json_object *error;
                if (json_get_object(valid, "error", &error) >= 0) {
                        const char *json = json_object_to_json_string(error);
                        Problem p = {};
                        if (problem_parse(json, strlen(json), &p) >= 0) {
                                r = set_error(c, -(int) p.error, "order %s became \"%s\": %s%s%s", order_url,
                                              status, p.type ?: "", p.detail ? ": " : "", p.detail ?: "");
                                problem_done(&p);
                                return r;
                        }
                }
                return set_error(c, -CF_E_SERVER_INTERNAL, "order %s became \"%s\"", order_url, status);
        }
        if (json_get_string(valid, "certificate", &cert_url) < 0)
                return set_error(c, -EBADMSG, "valid order %s has no certificate URL", order_url);

        r = post(c, cert_url, NULL, true, "application/pem-certificate-chain", &resp);
        if (r < 0)
                return r;
        if (resp.status != 200) {
                r = response_error(c, "certificate download", cert_url, &resp);
                agent_http_response_done(&resp);
                return r;
        }
        r = split_chain(c, resp.body, resp.body_size, req->key, ret_cert, ret_chain);
        agent_http_response_done(&resp);
        return r;
}

int acme_client_issue(AcmeClient *c, const AcmeIssueRequest *req, char **ret_cert_pem, char **ret_chain_pem) {
        _cleanup_(json_object_putp) json_object *order = NULL;
        _cleanup_free_ char *order_url = NULL, *replaces = NULL;
        const char *profile;
        json_object *authzs;
        size_t n;
        int r;

        r = acme_client_ensure_account(c);
        if (r < 0)
                return r;

        if (req->replaces && acme_client_has_ari(c) && ari_cert_id(req->replaces, &replaces) < 0)
                replaces = NULL;

        profile = advertised_profile(c, req->profile);
        r = new_order(c, req->names, replaces, profile, &order_url, &order);
        if (r == -CF_E_ALREADY_REPLACED && replaces) {
                /* Another order already replaced it (a crash after ordering, say): order afresh. */
                log_debug("newOrder: %s; retrying without replaces", c->error);
                r = new_order(c, req->names, NULL, profile, &order_url, &order);
        }
        if (r == -CF_E_ACCOUNT_DOES_NOT_EXIST) {
                /* The server forgot us (a test CA restarted, an account was purged): register anew. */
                free(c->account_url);
                c->account_url = NULL;
                r = register_account(c);
                if (r < 0)
                        return r;
                r = new_order(c, req->names, replaces, profile, &order_url, &order);
        }
        if (r < 0)
                return r;

        if (json_get_array(order, "authorizations", &authzs) < 0)
                return set_error(c, -EBADMSG, "newOrder: the order has no authorizations");
        n = json_object_array_length(authzs);
        if (n > ACME_AUTHORIZATIONS_MAX)
                return set_error(c, -E2BIG, "newOrder: too many authorizations (%zu)", n);
        for (size_t i = 0; i < n; i++) {
                const char *url = json_object_get_string(json_object_array_get_idx(authzs, i));
                if (!url)
                        return set_error(c, -EBADMSG, "newOrder: bad authorization URL");
                r = authorize(c, req->solver, req->names, url);
                if (r < 0)
                        return r;
        }
        return finalize(c, req, order_url, order, ret_cert_pem, ret_chain_pem);
}
