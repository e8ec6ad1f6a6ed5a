/* SPDX-License-Identifier: Apache-2.0 */
/* ACME request authentication (RFC 8555 §6.2–6.5) against a real SQLite store: every rejection
 * returns the right error, maps to the right problem document, and leaves the store unchanged. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "server/acme/acme-internal.h"
#include "shared/base64.h"
#include "shared/errors.h"
#include "shared/json-util.h"
#include "shared/key.h"

#define PREFIX "https://acme.test/api/v1/protocols/acme/default/"
#define URL_ORDER PREFIX "new-order"

typedef struct Fixture {
        char dir[64];
        char db[96];
        Store *store;
        AcmeServer *server;
        EVP_PKEY *key;
        EVP_PKEY *other_key;
        char *kid;
        int64_t account_id;
        AcmeProfile acme;
        RaProfile ra;
} Fixture;

static const char *const tables[] = {
        "acme_accounts", "acme_orders", "acme_authzs", "acme_challenges", "acme_order_authzs",
        "acme_nonces", "inventory",
};
#define N_TABLES ELEMENTSOF(tables)

static void count_rows(Fixture *f, int64_t ret[N_TABLES]) {
        sqlite3 *db;

        assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        for (size_t i = 0; i < N_TABLES; i++) {
                sqlite3_stmt *st;
                char sql[128];

                snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", tables[i]);
                assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
                assert_int_equal(sqlite3_step(st), SQLITE_ROW);
                ret[i] = sqlite3_column_int64(st, 0);
                sqlite3_finalize(st);
        }
        sqlite3_close(db);
}

static int setup(void **state) {
        _cleanup_(json_object_putp) json_object *jwk = NULL;
        _cleanup_free_ char *thumb = NULL;
        Fixture *f = calloc(1, sizeof(*f));
        AcmeAccount a = {};

        assert_non_null(f);
        strcpy(f->dir, "/tmp/test-acme-jws-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->db, sizeof(f->db), "%s/db.sqlite", f->dir);
        assert_int_equal(store_open(f->db, &f->store), 0);
        assert_int_equal(acme_server_new_with_store(f->store, &f->server), 0);
        assert_int_equal(key_generate(KEY_EC_P256, &f->key), 0);
        assert_int_equal(key_generate(KEY_EC_P256, &f->other_key), 0);
        assert_int_equal(jwk_from_key(f->key, &jwk), 0);
        assert_int_equal(jwk_thumbprint(jwk, &thumb), 0);
        a = (AcmeAccount) {
                .profile = (char *) "default",
                .jwk = (char *) json_to_string_compact(jwk),
                .thumbprint = thumb,
                .status = ACME_STATUS_VALID,
                .created = time_now(),
        };
        assert_int_equal(store_acme_account_insert(f->store, &a, &f->account_id), 0);
        assert_true(asprintf(&f->kid, PREFIX "acct/%" PRIi64, f->account_id) > 0);
        f->acme = (AcmeProfile) { .name = (char *) "default", .enabled = true };
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        acme_server_free(f->server);
        store_close(f->store);
        EVP_PKEY_free(f->key);
        EVP_PKEY_free(f->other_key);
        free(f->kid);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static char *fresh_nonce(Fixture *f) {
        char *n = NULL;
        assert_int_equal(acme_nonce_new(f->server, &n), 0);
        return n;
}

static char *sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url, const char *payload) {
        _cleanup_(json_object_putp) json_object *p = NULL;
        char *body = NULL;

        if (payload)
                assert_int_equal(json_parse_strict(payload, strlen(payload), 4096, &p), 0);
        assert_int_equal(jws_sign(key, kid, nonce, url, p, &body), 0);
        return body;
}

/* Authenticates body as a request to url; returns the result, the problem's HTTP status and type
 * (what the client would see) and the account id authenticated. */
static int check(Fixture *f, const char *body, const char *url, const char *content_type,
                 AcmeAuthMode mode, int *ret_status, char **ret_type, int64_t *ret_account) {
        HttpResponse resp = {};
        AcmeRequest r = {
                .server = f->server,
                .resp = &resp,
                .store = f->store,
                .acme = &f->acme,
                .route_key = strdup("default"),
                .prefix_url = strdup(PREFIX),
                .method = "POST",
                .url = url,
                .content_type = content_type,
                .body = (const uint8_t *) body,
                .body_size = strlen(body),
        };
        int q;

        q = acme_jws_authenticate(&r, mode);
        if (q < 0) {
                _cleanup_(json_object_putp) json_object *p = NULL;
                const char *type;

                assert_int_equal(acme_respond_problem(&r, q), 0);
                assert_string_equal(resp.content_type, "application/problem+json");
                assert_int_equal(json_parse_strict((const char *) resp.body, resp.body_size, 65536, &p), 0);
                assert_int_equal(json_get_string(p, "type", &type), 0);
                if (ret_type)
                        *ret_type = strdup(type);
                if (ret_status)
                        *ret_status = resp.status;
        } else if (ret_account)
                *ret_account = r.account ? r.account->id : 0;
        acme_request_done(&r);
        http_response_done(&resp);
        return q;
}

/* A rejected request: expected error, status and problem type, and the store unchanged. */
static void expect_rejected(Fixture *f, const char *body, const char *url, const char *ct,
                            AcmeAuthMode mode, int error, int status, const char *type) {
        int64_t before[N_TABLES], after[N_TABLES];
        _cleanup_free_ char *got_type = NULL;
        int got_status = 0;

        count_rows(f, before);
        assert_int_equal(check(f, body, url, ct, mode, &got_status, &got_type, NULL), error);
        assert_int_equal(got_status, status);
        assert_string_equal(got_type, type);
        count_rows(f, after);
        for (size_t i = 0; i < N_TABLES; i++)
                assert_int_equal(after[i], before[i]);
}

static void test_jws_accepts_valid_request(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *nonce = fresh_nonce(f), *body = sign(f->key, f->kid, nonce, URL_ORDER, "{}");
        int64_t before[N_TABLES], after[N_TABLES], account = 0;

        count_rows(f, before);
        assert_int_equal(check(f, body, URL_ORDER, "application/jose+json", ACME_AUTH_KID, NULL, NULL,
                               &account), 0);
        assert_int_equal(account, f->account_id);
        count_rows(f, after);
        /* Exactly one change: the nonce's replay record. */
        assert_int_equal(after[5], before[5] + 1);
        for (size_t i = 0; i < N_TABLES; i++)
                if (i != 5)
                        assert_int_equal(after[i], before[i]);
}

static void test_jws_rejects_wrong_url(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *nonce = fresh_nonce(f), *body = sign(f->key, f->kid, nonce, PREFIX "new-account", "{}");

        expect_rejected(f, body, URL_ORDER, "application/jose+json", ACME_AUTH_KID, -CF_E_UNAUTHORIZED,
                        403, "urn:ietf:params:acme:error:unauthorized");
}

static void test_jws_rejects_replayed_nonce(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *nonce = fresh_nonce(f), *body = sign(f->key, f->kid, nonce, URL_ORDER, "{}");

        assert_int_equal(check(f, body, URL_ORDER, "application/jose+json", ACME_AUTH_KID, NULL, NULL, NULL), 0);
        expect_rejected(f, body, URL_ORDER, "application/jose+json", ACME_AUTH_KID, -CF_E_BAD_NONCE,
                        400, "urn:ietf:params:acme:error:badNonce");
}

static void test_jws_rejects_forged_nonces(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *nonce = fresh_nonce(f), *b1 = NULL, *b2 = NULL, *b3 = NULL, *b4 = NULL;
        _cleanup_free_ char *tampered = strdup(nonce), *foreign = NULL;
        AcmeServer other = {};

        /* One flipped character: the GCM tag fails. */
        tampered[10] = tampered[10] == 'A' ? 'B' : 'A';
        b1 = sign(f->key, f->kid, tampered, URL_ORDER, "{}");
        expect_rejected(f, b1, URL_ORDER, "application/jose+json", ACME_AUTH_KID, -CF_E_BAD_NONCE,
                        400, "urn:ietf:params:acme:error:badNonce");
        /* A well-formed nonce made with another key (another deployment). */
        memset(other.nonce_key, 0x42, sizeof(other.nonce_key));
        assert_int_equal(acme_nonce_new(&other, &foreign), 0);
        b2 = sign(f->key, f->kid, foreign, URL_ORDER, "{}");
        expect_rejected(f, b2, URL_ORDER, "application/jose+json", ACME_AUTH_KID, -CF_E_BAD_NONCE,
                        400, "urn:ietf:params:acme:error:badNonce");
        b3 = sign(f->key, f->kid, "bm90LWEtbm9uY2U", URL_ORDER, "{}");
        expect_rejected(f, b3, URL_ORDER, "application/jose+json", ACME_AUTH_KID, -CF_E_BAD_NONCE,
                        400, "urn:ietf:params:acme:error:badNonce");
        b4 = sign(f->key, f->kid, NULL, URL_ORDER, "{}");
        expect_rejected(f, b4, URL_ORDER, "application/jose+json", ACME_AUTH_KID, -CF_E_BAD_NONCE,
                        400, "urn:ietf:params:acme:error:badNonce");
}

static void test_nonce_expires(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *nonce = fresh_nonce(f);

        assert_int_equal(acme_nonce_check(f->server, nonce, time_now(), NULL, NULL), 0);
        assert_int_equal(acme_nonce_check(f->server, nonce, time_now() + ACME_NONCE_LIFETIME + 5, NULL, NULL),
                         -CF_E_BAD_NONCE);
}

static void test_nonce_shared_between_instances(void **state) {
        Fixture *f = *state;
        _cleanup_(store_closep) Store *store2 = NULL;
        AcmeServer *second = NULL;
        _cleanup_free_ char *nonce = NULL;

        /* A second instance on the same database gets the same key, created only once. */
        assert_int_equal(store_open(f->db, &store2), 0);
        assert_int_equal(acme_server_new_with_store(store2, &second), 0);
        assert_memory_equal(second->nonce_key, f->server->nonce_key, ACME_NONCE_KEY_SIZE);
        assert_int_equal(acme_nonce_new(second, &nonce), 0);
        assert_int_equal(acme_nonce_check(f->server, nonce, time_now(), NULL, NULL), 0);
        /* Used on one instance, replayed on the other. */
        assert_int_equal(acme_nonce_consume(second, store2, nonce, time_now()), 0);
        assert_int_equal(acme_nonce_consume(f->server, f->store, nonce, time_now()), -CF_E_BAD_NONCE);
        acme_server_free(second);
}

static void test_jws_rejects_unknown_kid(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *n1 = fresh_nonce(f), *n2 = fresh_nonce(f), *n3 = fresh_nonce(f);
        _cleanup_free_ char *b1 = sign(f->key, PREFIX "acct/9999", n1, URL_ORDER, "{}");
        /* The same account number under another profile's URL. */
        _cleanup_free_ char *other_kid = NULL, *b2 = NULL, *b3 = NULL;

        assert_true(asprintf(&other_kid, "https://acme.test/api/v1/protocols/acme/other/acct/%" PRIi64,
                             f->account_id) > 0);
        b2 = sign(f->key, other_kid, n2, URL_ORDER, "{}");
        b3 = sign(f->key, "not a url", n3, URL_ORDER, "{}");
        expect_rejected(f, b1, URL_ORDER, "application/jose+json", ACME_AUTH_KID,
                        -CF_E_ACCOUNT_DOES_NOT_EXIST, 400, "urn:ietf:params:acme:error:accountDoesNotExist");
        expect_rejected(f, b2, URL_ORDER, "application/jose+json", ACME_AUTH_KID,
                        -CF_E_ACCOUNT_DOES_NOT_EXIST, 400, "urn:ietf:params:acme:error:accountDoesNotExist");
        expect_rejected(f, b3, URL_ORDER, "application/jose+json", ACME_AUTH_KID,
                        -CF_E_ACCOUNT_DOES_NOT_EXIST, 400, "urn:ietf:params:acme:error:accountDoesNotExist");
}

static void test_jws_rejects_jwk_on_kid_endpoint(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *n1 = fresh_nonce(f), *n2 = fresh_nonce(f);
        _cleanup_free_ char *b1 = sign(f->key, NULL, n1, URL_ORDER, "{}");
        _cleanup_free_ char *b2 = sign(f->key, f->kid, n2, PREFIX "new-account", "{}");

        expect_rejected(f, b1, URL_ORDER, "application/jose+json", ACME_AUTH_KID, -CF_E_MALFORMED,
                        400, "urn:ietf:params:acme:error:malformed");
        /* And the reverse: newAccount needs a jwk. */
        expect_rejected(f, b2, PREFIX "new-account", "application/jose+json", ACME_AUTH_JWK,
                        -CF_E_MALFORMED, 400, "urn:ietf:params:acme:error:malformed");
}

static void test_jws_rejects_wrong_content_type(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *nonce = fresh_nonce(f), *body = sign(f->key, f->kid, nonce, URL_ORDER, "{}");

        expect_rejected(f, body, URL_ORDER, "application/json", ACME_AUTH_KID,
                        -CF_E_UNSUPPORTED_MEDIA_TYPE, 415, "urn:ietf:params:acme:error:malformed");
        expect_rejected(f, body, URL_ORDER, NULL, ACME_AUTH_KID,
                        -CF_E_UNSUPPORTED_MEDIA_TYPE, 415, "urn:ietf:params:acme:error:malformed");
        /* Parameters after the media type are fine; the nonce is still unused. */
        assert_int_equal(check(f, body, URL_ORDER, "application/jose+json; charset=utf-8", ACME_AUTH_KID,
                               NULL, NULL, NULL), 0);
}

static void test_jws_rejects_alg_none(void **state) {
        Fixture *f = *state;
        _cleanup_(json_object_putp) json_object *hdr = json_object_new_object(), *jws = json_object_new_object();
        _cleanup_free_ char *nonce = fresh_nonce(f), *prot = NULL, *payload = NULL;
        const char *h;

        json_object_object_add(hdr, "alg", json_object_new_string("none"));
        json_object_object_add(hdr, "nonce", json_object_new_string(nonce));
        json_object_object_add(hdr, "url", json_object_new_string(URL_ORDER));
        json_object_object_add(hdr, "kid", json_object_new_string(f->kid));
        h = json_to_string_compact(hdr);
        assert_int_equal(base64url_encode(h, strlen(h), &prot), 0);
        assert_int_equal(base64url_encode("{}", 2, &payload), 0);
        json_object_object_add(jws, "protected", json_object_new_string(prot));
        json_object_object_add(jws, "payload", json_object_new_string(payload));
        json_object_object_add(jws, "signature", json_object_new_string("AAAA"));
        expect_rejected(f, json_to_string_compact(jws), URL_ORDER, "application/jose+json", ACME_AUTH_KID,
                        -CF_E_BAD_SIGNATURE_ALGORITHM, 400,
                        "urn:ietf:params:acme:error:badSignatureAlgorithm");
}

/* A JWS with the protected header built by hand (fields NULL are left out), properly signed. */
static char *sign_header(EVP_PKEY *key, bool with_jwk, const char *kid, const char *nonce, const char *url) {
        _cleanup_(json_object_putp) json_object *hdr = json_object_new_object(), *jws = json_object_new_object();
        _cleanup_free_ char *prot = NULL, *payload = NULL, *input = NULL, *sig64 = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        json_object *jwk = NULL;
        size_t n;
        const char *h;

        json_object_object_add(hdr, "alg", json_object_new_string("ES256"));
        if (with_jwk) {
                assert_int_equal(jwk_from_key(key, &jwk), 0);
                json_object_object_add(hdr, "jwk", jwk);
        }
        if (kid)
                json_object_object_add(hdr, "kid", json_object_new_string(kid));
        if (nonce)
                json_object_object_add(hdr, "nonce", json_object_new_string(nonce));
        if (url)
                json_object_object_add(hdr, "url", json_object_new_string(url));
        h = json_to_string_compact(hdr);
        assert_int_equal(base64url_encode(h, strlen(h), &prot), 0);
        assert_int_equal(base64url_encode("{}", 2, &payload), 0);
        assert_true(asprintf(&input, "%s.%s", prot, payload) > 0);
        assert_int_equal(jws_sign_input(key, input, strlen(input), &sig, &n), 0);
        assert_int_equal(base64url_encode(sig, n, &sig64), 0);
        json_object_object_add(jws, "protected", json_object_new_string(prot));
        json_object_object_add(jws, "payload", json_object_new_string(payload));
        json_object_object_add(jws, "signature", json_object_new_string(sig64));
        return strdup(json_to_string_compact(jws));
}

static void test_jws_rejects_missing_or_conflicting_header_fields(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *nonce = fresh_nonce(f), *both = NULL, *no_nonce = NULL, *no_url = NULL,
                            *neither = NULL, *good = NULL;

        /* RFC 8555 §6.2: "jwk" and "kid" are mutually exclusive, and one is required. */
        both = sign_header(f->key, true, f->kid, nonce, URL_ORDER);
        expect_rejected(f, both, URL_ORDER, "application/jose+json", ACME_AUTH_KID, -CF_E_MALFORMED,
                        400, "urn:ietf:params:acme:error:malformed");
        expect_rejected(f, both, URL_ORDER, "application/jose+json", ACME_AUTH_ANY, -CF_E_MALFORMED,
                        400, "urn:ietf:params:acme:error:malformed");
        neither = sign_header(f->key, false, NULL, nonce, URL_ORDER);
        assert_true(check(f, neither, URL_ORDER, "application/jose+json", ACME_AUTH_ANY, NULL, NULL, NULL) < 0);
        /* §6.5: no nonce is badNonce; §6.4: no url is malformed. */
        no_nonce = sign_header(f->key, false, f->kid, NULL, URL_ORDER);
        expect_rejected(f, no_nonce, URL_ORDER, "application/jose+json", ACME_AUTH_KID, -CF_E_BAD_NONCE,
                        400, "urn:ietf:params:acme:error:badNonce");
        no_url = sign_header(f->key, false, f->kid, nonce, NULL);
        expect_rejected(f, no_url, URL_ORDER, "application/jose+json", ACME_AUTH_KID, -CF_E_MALFORMED,
                        400, "urn:ietf:params:acme:error:malformed");
        /* The hand-built header is otherwise right: the nonce was never burnt, this one passes. */
        good = sign_header(f->key, false, f->kid, nonce, URL_ORDER);
        assert_int_equal(check(f, good, URL_ORDER, "application/jose+json", ACME_AUTH_KID, NULL, NULL, NULL), 0);
}

static void test_jws_rejects_signature_by_another_key(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *nonce = fresh_nonce(f), *body = sign(f->other_key, f->kid, nonce, URL_ORDER, "{}");

        expect_rejected(f, body, URL_ORDER, "application/jose+json", ACME_AUTH_KID, -CF_E_MALFORMED,
                        400, "urn:ietf:params:acme:error:malformed");
        /* The nonce was not burnt by the failed attempt: the real owner can still use it. */
        _cleanup_free_ char *good = sign(f->key, f->kid, nonce, URL_ORDER, "{}");
        assert_int_equal(check(f, good, URL_ORDER, "application/jose+json", ACME_AUTH_KID, NULL, NULL, NULL), 0);
}

static void test_jws_rejects_deactivated_account(void **state) {
        Fixture *f = *state;
        _cleanup_(acme_account_freep) AcmeAccount *a = NULL;
        _cleanup_free_ char *nonce = fresh_nonce(f), *body = sign(f->key, f->kid, nonce, URL_ORDER, "{}");

        assert_int_equal(store_acme_account_get(f->store, f->account_id, &a), 0);
        a->status = ACME_STATUS_DEACTIVATED;
        assert_int_equal(store_acme_account_update(f->store, a), 0);
        expect_rejected(f, body, URL_ORDER, "application/jose+json", ACME_AUTH_KID, -CF_E_UNAUTHORIZED,
                        403, "urn:ietf:params:acme:error:unauthorized");
}

static void test_jws_rejects_malformed_bodies(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *nonce = fresh_nonce(f), *body = sign(f->key, f->kid, nonce, URL_ORDER, "[1]");

        expect_rejected(f, "{not json", URL_ORDER, "application/jose+json", ACME_AUTH_KID,
                        -CF_E_MALFORMED, 400, "urn:ietf:params:acme:error:malformed");
        expect_rejected(f, "", URL_ORDER, "application/jose+json", ACME_AUTH_KID,
                        -CF_E_MALFORMED, 400, "urn:ietf:params:acme:error:malformed");
        /* A payload that is JSON but not an object. */
        expect_rejected(f, body, URL_ORDER, "application/jose+json", ACME_AUTH_KID,
                        -CF_E_MALFORMED, 400, "urn:ietf:params:acme:error:malformed");
}

static void test_jws_post_as_get_has_no_payload(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *nonce = fresh_nonce(f), *body = sign(f->key, f->kid, nonce, URL_ORDER, NULL);
        HttpResponse resp = {};
        AcmeRequest r = {
                .server = f->server, .resp = &resp, .store = f->store, .acme = &f->acme,
                .route_key = strdup("default"), .prefix_url = strdup(PREFIX), .method = "POST",
                .url = URL_ORDER, .content_type = "application/jose+json",
                .body = (const uint8_t *) body, .body_size = strlen(body),
        };

        assert_int_equal(acme_jws_authenticate(&r, ACME_AUTH_KID), 0);
        assert_null(r.payload);
        assert_true(r.jws->payload_empty);
        acme_request_done(&r);
        http_response_done(&resp);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_jws_accepts_valid_request, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jws_rejects_wrong_url, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jws_rejects_replayed_nonce, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jws_rejects_forged_nonces, setup, teardown),
                cmocka_unit_test_setup_teardown(test_nonce_expires, setup, teardown),
                cmocka_unit_test_setup_teardown(test_nonce_shared_between_instances, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jws_rejects_unknown_kid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jws_rejects_jwk_on_kid_endpoint, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jws_rejects_wrong_content_type, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jws_rejects_alg_none, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jws_rejects_missing_or_conflicting_header_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jws_rejects_signature_by_another_key, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jws_rejects_deactivated_account, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jws_rejects_malformed_bodies, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jws_post_as_get_has_no_payload, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
