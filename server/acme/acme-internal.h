/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between the files of server/acme/ only. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "server/acme/acme.h"
#include "server/ra/ra-profile.h"
#include "server/store/store-acme.h"
#include "server/store/store.h"
#include "server/va/va.h"
#include "shared/jose.h"
#include "shared/macro.h"

#define ACME_NONCE_KEY_SIZE      32
#define ACME_NONCE_LIFETIME      3600          /* seconds a nonce is accepted */
#define ACME_CONTACTS_MAX        10
#define ACME_CONTACT_LENGTH_MAX  320
#define ACME_DNS_NAME_MAX        253
#define ACME_CSR_B64_MAX         (16u * 1024u) /* base64url CSR in finalize */
#define ACME_CERT_B64_MAX        (32u * 1024u) /* base64url certificate in revokeCert */
#define ACME_ORDERS_PAGE_SIZE    100           /* order URLs per page of an orders list */
#define ACME_PROFILE_NAME_MAX    64
#define ACME_TOKEN_BYTES         32
#define ACME_RETRY_AFTER_PROCESSING 3          /* seconds, while validating or issuing */

/* A challenge POST that started a validation and waits for its result (acme-server.c). */
typedef struct AcmeWait AcmeWait;

struct AcmeServer {
        uint8_t nonce_key[ACME_NONCE_KEY_SIZE];
        pthread_mutex_t va_lock;               /* guards va against reload */
        Va *va;                                /* NULL: no validation pool (unit tests) */
        /* Where the pool's threads write results: the workers' shared connection (borrowed),
         * so that no second connection in the process makes SQLite drop its page cache. */
        Store *store;

        /* How long the POST that starts a validation holds its reply for the result
         * ([Validation] ChallengeResponseWait=, bounded by half the validation timeout; 0 in unit
         * tests), and the POSTs doing so, by challenge id. */
        _Atomic uint64_t response_wait_usec;
        pthread_mutex_t wait_lock;
        AcmeWait *waits;
};

/* Creates the server without a validation pool and with the nonce key taken from (or created in)
 * store: what unit tests use; acme_server_new() adds the pool. */
int acme_server_new_with_store(Store *store, AcmeServer **ret);

typedef enum AcmeAuthMode {
        ACME_AUTH_JWK,                         /* newAccount: "jwk" required */
        ACME_AUTH_KID,                         /* everything else: "kid" = account URL */
        ACME_AUTH_ANY,                         /* revokeCert: account or certificate key */
} AcmeAuthMode;

typedef struct AcmeRequest {
        AcmeServer *server;
        const HttpRequest *http;               /* NULL in unit tests */
        HttpResponse *resp;
        Store *store;
        const ProfileSet *profiles;
        const AcmeProfile *acme;
        const RaProfile *ra;
        char *route_key;                       /* "default" or "raProfile/web" */
        char *prefix_url;                      /* "https://host/api/v1/protocols/acme/<key>/" */
        const char *resource;                  /* path below the prefix: "new-order", "order/3" */
        const char *method;
        const char *url;                       /* what a JWS "url" must equal */
        const char *content_type;
        const uint8_t *body;
        size_t body_size;

        /* Filled by acme_jws_authenticate(). */
        Jws *jws;
        AcmeAccount *account;                  /* NULL when authenticated by a jwk */
        EVP_PKEY *key;                         /* the key that signed */
        json_object *payload;                  /* NULL for POST-as-GET */

        char *detail;                          /* problem detail for the error being returned */
        char *location;                        /* Location header to send, NULL: none */

        /* Set by the router for handlers whose every state change is one transaction begun
         * with acme_begin(): acme_jws_authenticate() then only checks the nonce, and its replay
         * record is written in that transaction instead of one of its own (a WAL commit less
         * per request). Whatever is not recorded when the handler returns is recorded by
         * acme_nonce_record_pending() before the response goes out. */
        bool nonce_deferred;
        char *nonce_id;                        /* checked, replay record pending or written */
        cf_time_t nonce_expires;
        bool nonce_in_transaction;             /* the open transaction holds the record */
        bool nonce_recorded;                   /* committed */

        bool deferred;                         /* the reply is held (http_request_defer()) */
} AcmeRequest;

void acme_request_done(AcmeRequest *r);
/* acme-router.c: the end of every response, also of a held one: a problem document for error
 * q < 0, then the common headers; frees r's fields. */
int acme_request_finish(AcmeRequest *r, int q);
/* Sets r->detail and returns error, so handlers can `return acme_fail(r, -CF_E_…, "…")`. */
int acme_fail(AcmeRequest *r, int error, const char *format, ...) _printf_(3, 4);

/* acme-nonce.c */
int acme_nonce_new(const AcmeServer *s, char **ret);
/* Decrypts and checks age: -CF_E_BAD_NONCE. *ret_id identifies it for the replay record. */
int acme_nonce_check(const AcmeServer *s, const char *nonce, cf_time_t now, char **ret_id,
                     cf_time_t *ret_expires);
/* check + replay record in its own transaction: -CF_E_BAD_NONCE if replayed. */
int acme_nonce_consume(const AcmeServer *s, Store *store, const char *nonce, cf_time_t now);
/* store_begin() for a handler, plus the request's deferred replay record if it has not been
 * written yet: -CF_E_BAD_NONCE (detail set, nothing left open) if the nonce was used. */
int acme_begin(AcmeRequest *r);
/* acme_commit(); the deferred replay record counts as written once this succeeds. */
int acme_commit_request(AcmeRequest *r);
/* Writes a deferred replay record that no handler transaction committed, in a transaction of
 * its own: -CF_E_BAD_NONCE (detail set) if the nonce was used. 0 if there is nothing to do. */
int acme_nonce_record_pending(AcmeRequest *r);

/* acme-jws.c */
int acme_jws_authenticate(AcmeRequest *r, AcmeAuthMode mode);
/* The account id in an account URL of this route key, -CF_E_ACCOUNT_DOES_NOT_EXIST otherwise. */
int acme_account_id_from_url(const AcmeRequest *r, const char *url, int64_t *ret);

/* acme-problem.c: responses. */
int acme_respond_json(AcmeRequest *r, int status, json_object *obj);
int acme_respond_problem(AcmeRequest *r, int error);
/* Headers every response gets: a fresh Replay-Nonce, Link rel="index", Location if set. */
int acme_add_common_headers(AcmeRequest *r);
/* A problem document's JSON text for storing in an order or challenge. */
int acme_problem_json(int error, const char *detail, char **ret);
/* "<prefix_url><fmt…>" */
char *acme_url(const AcmeRequest *r, const char *format, ...) _printf_(2, 3);
/* Resource path parsing: "order/12" with prefix "order/" → 12. -ENOENT if not matching. */
int acme_parse_id(const char *resource, const char *prefix, const char *suffix, int64_t *ret);
/* "acct/{id}/orders" (first page, *ret_after_id = 0) or "acct/{id}/orders/{after}" (the page of
 * orders with ids above after). -ENOENT for anything else. */
int acme_parse_orders_page(const char *resource, int64_t *ret_account_id, int64_t *ret_after_id);

/* Handlers: each returns 0 after filling the response or a negative error with r->detail. */
int acme_directory_handle(AcmeRequest *r);
int acme_new_nonce_handle(AcmeRequest *r);
int acme_new_account_handle(AcmeRequest *r);
int acme_account_handle(AcmeRequest *r, int64_t id);
int acme_account_orders_handle(AcmeRequest *r, int64_t id, int64_t after_id);
int acme_key_change_handle(AcmeRequest *r);
int acme_new_order_handle(AcmeRequest *r);
int acme_order_handle(AcmeRequest *r, int64_t id);
int acme_finalize_handle(AcmeRequest *r, int64_t id);
int acme_authz_handle(AcmeRequest *r, int64_t id);
int acme_challenge_handle(AcmeRequest *r, int64_t id);
int acme_cert_handle(AcmeRequest *r, const char *serial);
int acme_issuer_handle(AcmeRequest *r, const char *serial);
int acme_revoke_handle(AcmeRequest *r);
int acme_renewal_info_handle(AcmeRequest *r, const char *cert_id);

/* acme-order.c / acme-authz.c: JSON views and the state machine. */
int acme_order_to_json(AcmeRequest *r, const AcmeOrder *o, json_object **ret);
int acme_authz_to_json(AcmeRequest *r, const AcmeAuthz *a, json_object **ret);
int acme_challenge_to_json(AcmeRequest *r, const AcmeChallenge *c, json_object **ret);

/* What a status is once time is taken into account (nothing is written): a pending/valid
 * authorization past its expiry is expired, a pending/ready order past its expiry invalid. */
AcmeStatus acme_authz_effective_status(const AcmeAuthz *a, cf_time_t now);
AcmeStatus acme_order_effective_status(const AcmeOrder *o, cf_time_t now);

/* Recomputes a pending/ready order from its authorizations (all valid → ready; one invalid,
 * deactivated, expired or revoked → invalid with an error). Caller holds a transaction. */
int acme_order_update_from_authzs(Store *s, int64_t order_id, cf_time_t now);
/* Applies a validation result to a processing challenge, its authorization and every order
 * using it, in one transaction. error 0 = success. */
int acme_challenge_complete(Store *s, int64_t challenge_id, int error, const char *detail,
                            cf_time_t now);
/* Deactivates an authorization (and invalidates its pending orders), caller holds a transaction. */
int acme_authz_deactivate(Store *s, int64_t authz_id, cf_time_t now);

int acme_order_respond(AcmeRequest *r, int status, const AcmeOrder *o);
/* The order if it belongs to the authenticated account under this route key, else notFound. */
int acme_order_load_owned(AcmeRequest *r, int64_t id, AcmeOrder **ret);
/* A processing order whose issuance waited for approval: asks the RA again (acme-finalize.c). */
int acme_finalize_retry_pending(AcmeRequest *r, AcmeOrder *o);
/* store_commit(), rolling back if the commit fails. */
int acme_commit(Store *s);

/* acme-ari.c: the RFC 9773 window as a pure function. */
typedef struct AcmeAriWindow {
        cf_time_t start;
        cf_time_t end;
        int64_t retry_after;           /* seconds */
} AcmeAriWindow;
int acme_ari_window(cf_time_t not_before, cf_time_t not_after, bool revoked, bool renew_now,
                    cf_time_t now, AcmeAriWindow *ret);

/* acme-server.c */
int acme_server_submit_validation(AcmeServer *s, const VaRequest *req);
/* The reply-holding bound now, 0: answer at once. */
uint64_t acme_server_response_wait_usec(AcmeServer *s);
/* Before a validation is submitted: marks challenge_id as awaited, so that a result arriving
 * before the reply is held is not lost. */
int acme_server_wait_register(AcmeServer *s, int64_t challenge_id);
void acme_server_wait_unregister(AcmeServer *s, int64_t challenge_id);
/* After the submit committed: hands over the held reply to be woken by the result (takes the
 * reference d). -EALREADY (d untouched) if the result came first, -ENOENT if not registered;
 * either way the registration is gone. */
int acme_server_wait_attach(AcmeServer *s, int64_t challenge_id, HttpDeferred *d);
