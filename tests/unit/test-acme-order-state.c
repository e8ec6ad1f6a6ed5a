/* SPDX-License-Identifier: Apache-2.0 */
/* The ACME order/authorization/challenge state machine against a real SQLite store:
 * pending → ready → processing → valid, invalid propagation, authorization reuse while valid,
 * deactivation and expiry. */

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
#include "shared/csr.h"
#include "shared/errors.h"
#include "shared/json-util.h"
#include "shared/key.h"
#include "shared/pem.h"

#define PREFIX "https://acme.test/api/v1/protocols/acme/default/"

typedef struct Fixture {
        char dir[64];
        char db[96];
        Store *store;
        AcmeServer *server;
        int64_t account_id;
        int64_t other_account_id;
        RaProfile ra;
        AcmeProfile acme;
} Fixture;

static char *allowed[] = { (char *) "*.example.test", (char *) "example.test",
                           (char *) "127.0.0.0/8", (char *) "::1/128", NULL };
static char *key_algs[] = { (char *) "ec", (char *) "rsa", NULL };

static int64_t add_account(Fixture *f, const char *thumb) {
        AcmeAccount a = {
                .profile = (char *) "default",
                .jwk = (char *) "{\"kty\":\"EC\"}",
                .thumbprint = (char *) thumb,
                .status = ACME_STATUS_VALID,
                .contacts = (char *) "[]",
                .created = time_now(),
        };
        int64_t id;

        assert_int_equal(store_acme_account_insert(f->store, &a, &id), 0);
        return id;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        strcpy(f->dir, "/tmp/test-acme-order-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->db, sizeof(f->db), "%s/db.sqlite", f->dir);
        assert_int_equal(store_open(f->db, &f->store), 0);
        assert_int_equal(acme_server_new_with_store(f->store, &f->server), 0);
        f->account_id = add_account(f, "thumb-one");
        f->other_account_id = add_account(f, "thumb-two");
        f->ra = (RaProfile) {
                .name = (char *) "web", .ca = (char *) "ca", .enabled = true,
                .allowed_identifiers = allowed, .key_algorithms = key_algs,
                .min_rsa_bits = 2048, .min_ec_bits = 256, .validity = 47 * 86400,
                .max_validity = 90 * 86400,
        };
        f->acme = (AcmeProfile) {
                .name = (char *) "default", .enabled = true, .ra_profile = (char *) "web",
                .max_identifiers = 5, .order_lifetime = 7 * 86400, .authz_lifetime = 30 * 86400,
        };
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        acme_server_free(f->server);
        store_close(f->store);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

/* Runs one handler as the given account; returns its result and the response body as JSON. */
typedef int (*Handler)(AcmeRequest *r, int64_t id);

static int run(Fixture *f, int64_t account_id, json_object *payload, Handler h, int64_t id,
               int (*h0)(AcmeRequest *r), json_object **ret_body, char **ret_location) {
        HttpResponse resp = {};
        AcmeRequest r = {
                .server = f->server,
                .resp = &resp,
                .store = f->store,
                .acme = &f->acme,
                .ra = &f->ra,
                .route_key = strdup("default"),
                .prefix_url = strdup(PREFIX),
                .method = "POST",
                .url = PREFIX "x",
                .payload = payload,
        };
        int q;

        assert_int_equal(store_acme_account_get(f->store, account_id, &r.account), 0);
        q = h ? h(&r, id) : h0(&r);
        if (q >= 0 && ret_body) {
                assert_non_null(resp.body);
                assert_int_equal(json_parse_strict((const char *) resp.body, resp.body_size, 1 << 20,
                                                   ret_body), 0);
        }
        if (q >= 0 && ret_location)
                *ret_location = r.location ? strdup(r.location) : NULL;
        acme_request_done(&r);
        http_response_done(&resp);
        return q;
}

static json_object *order_payload(const char *const *types, const char *const *values) {
        json_object *p = json_object_new_object(), *arr = json_object_new_array();

        for (size_t i = 0; values[i]; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "type", json_object_new_string(types[i]));
                json_object_object_add(o, "value", json_object_new_string(values[i]));
                json_object_array_add(arr, o);
        }
        json_object_object_add(p, "identifiers", arr);
        return p;
}

static int64_t id_from_url(const char *url, const char *kind) {
        const char *p = strstr(url, kind);
        assert_non_null(p);
        return strtoll(p + strlen(kind), NULL, 10);
}

static int64_t new_order(Fixture *f, int64_t account, const char *const *types,
                         const char *const *values, json_object **ret_body) {
        _cleanup_free_ char *loc = NULL;
        json_object *body = NULL;

        assert_int_equal(run(f, account, order_payload(types, values), NULL, 0,
                             acme_new_order_handle, &body, &loc), 0);
        assert_non_null(loc);
        if (ret_body)
                *ret_body = body;
        else
                json_object_put(body);
        return id_from_url(loc, "order/");
}

static const char *order_status(Fixture *f, int64_t id) {
        static char buf[32];
        _cleanup_(acme_order_freep) AcmeOrder *o = NULL;

        assert_int_equal(store_acme_order_get(f->store, id, &o), 0);
        snprintf(buf, sizeof(buf), "%s", acme_status_to_string(acme_order_effective_status(o, time_now())));
        return buf;
}

static AcmeStatus authz_status(Fixture *f, int64_t id) {
        _cleanup_(acme_authz_freep) AcmeAuthz *a = NULL;

        assert_int_equal(store_acme_authz_get(f->store, id, &a), 0);
        return acme_authz_effective_status(a, time_now());
}

static int64_t authz_at(Fixture *f, int64_t order, size_t i) {
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;

        assert_int_equal(store_acme_order_get_authz_ids(f->store, order, &ids, &n), 0);
        assert_true(i < n);
        return ids[i];
}

/* Marks the challenge of the given type processing (what a POST does) and returns its id. */
static int64_t start_challenge(Fixture *f, int64_t authz, const char *type) {
        AcmeChallenge **l = NULL;
        int64_t id = 0;

        assert_int_equal(store_acme_challenge_list_by_authz(f->store, authz, &l), 0);
        for (AcmeChallenge **c = l; *c; c++)
                if (strcmp((*c)->type, type) == 0) {
                        (*c)->status = ACME_STATUS_PROCESSING;
                        assert_int_equal(store_acme_challenge_update(f->store, *c), 0);
                        id = (*c)->id;
                }
        acme_challenge_list_free(l);
        assert_true(id > 0);
        return id;
}

static char *challenge_types(Fixture *f, int64_t authz) {
        AcmeChallenge **l = NULL;
        char *s = calloc(1, 128);

        assert_int_equal(store_acme_challenge_list_by_authz(f->store, authz, &l), 0);
        for (AcmeChallenge **c = l; *c; c++) {
                if (s[0])
                        strcat(s, " ");
                strcat(s, (*c)->type);
                assert_int_equal(strlen((*c)->token), 43);   /* 32 random bytes, base64url */
        }
        acme_challenge_list_free(l);
        return s;
}

static int64_t count_rows(Fixture *f, const char *table) {
        sqlite3 *db;
        sqlite3_stmt *st;
        char sql[128];
        int64_t n;

        assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

static void test_order_pending_to_ready_to_processing_gate(void **state) {
        Fixture *f = *state;
        const char *types[] = { "dns", "dns", NULL };
        const char *values[] = { "A.Example.Test", "b.example.test", NULL };
        json_object *body = NULL, *v;
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *b64 = NULL;
        size_t n;
        int64_t order, a1, a2;

        order = new_order(f, f->account_id, types, values, &body);
        assert_string_equal(json_object_get_string(json_object_object_get(body, "status")), "pending");
        v = json_object_object_get(body, "identifiers");
        /* Normalised to lower case. */
        assert_string_equal(json_object_get_string(json_object_object_get(
                json_object_array_get_idx(v, 0), "value")), "a.example.test");
        assert_int_equal(json_object_array_length(json_object_object_get(body, "authorizations")), 2);
        json_object_put(body);

        a1 = authz_at(f, order, 0);
        a2 = authz_at(f, order, 1);
        assert_int_equal(authz_status(f, a1), ACME_STATUS_PENDING);

        /* Finalizing a pending order is refused without touching it. */
        json_object *p = json_object_new_object();
        json_object_object_add(p, "csr", json_object_new_string("AAAA"));
        assert_int_equal(run(f, f->account_id, p, acme_finalize_handle, order, NULL, NULL, NULL),
                         -CF_E_ORDER_NOT_READY);
        assert_string_equal(order_status(f, order), "pending");

        assert_int_equal(acme_challenge_complete(f->store, start_challenge(f, a1, "http-01"), 0, NULL,
                                                 time_now()), 0);
        assert_int_equal(authz_status(f, a1), ACME_STATUS_VALID);
        assert_string_equal(order_status(f, order), "pending");
        assert_int_equal(acme_challenge_complete(f->store, start_challenge(f, a2, "dns-01"), 0, NULL,
                                                 time_now()), 0);
        assert_int_equal(authz_status(f, a2), ACME_STATUS_VALID);
        assert_string_equal(order_status(f, order), "ready");

        /* The valid authorization shows only the challenge used, with a validated time. */
        assert_int_equal(run(f, f->account_id, NULL, acme_authz_handle, a2, NULL, &body, NULL), 0);
        v = json_object_object_get(body, "challenges");
        assert_int_equal(json_object_array_length(v), 1);
        assert_string_equal(json_object_get_string(json_object_object_get(
                json_object_array_get_idx(v, 0), "type")), "dns-01");
        assert_non_null(json_object_object_get(json_object_array_get_idx(v, 0), "validated"));
        json_object_put(body);

        /* A CSR with other names than the order's: badCSR, order stays ready with no CSR. */
        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
        char *dns[] = { (char *) "a.example.test", (char *) "c.example.test", NULL };
        CsrRequest cr = { .key = key, .dns = dns };
        assert_int_equal(csr_build(&cr, &csr), 0);
        assert_int_equal(der_write_csr(csr, &der, &n), 0);
        assert_int_equal(base64url_encode(der, n, &b64), 0);
        p = json_object_new_object();
        json_object_object_add(p, "csr", json_object_new_string(b64));
        assert_int_equal(run(f, f->account_id, p, acme_finalize_handle, order, NULL, NULL, NULL),
                         -CF_E_BAD_CSR);
        assert_string_equal(order_status(f, order), "ready");
        {
                _cleanup_(acme_order_freep) AcmeOrder *o = NULL;
                assert_int_equal(store_acme_order_get(f->store, order, &o), 0);
                assert_null(o->csr);
        }

        /* processing → valid is what issuance writes; processing is reported with Retry-After. */
        {
                _cleanup_(acme_order_freep) AcmeOrder *o = NULL;
                assert_int_equal(store_acme_order_get(f->store, order, &o), 0);
                o->status = ACME_STATUS_PROCESSING;
                assert_int_equal(store_acme_order_update(f->store, o), 0);
                assert_string_equal(order_status(f, order), "processing");
                o->status = ACME_STATUS_VALID;
                o->cert_serial = strdup("0abc");
                assert_int_equal(store_acme_order_update(f->store, o), 0);
        }
        assert_int_equal(run(f, f->account_id, NULL, acme_order_handle, order, NULL, &body, NULL), 0);
        assert_string_equal(json_object_get_string(json_object_object_get(body, "status")), "valid");
        assert_string_equal(json_object_get_string(json_object_object_get(body, "certificate")),
                            PREFIX "cert/0abc");
        json_object_put(body);
}

static void test_order_invalid_propagation(void **state) {
        Fixture *f = *state;
        const char *types[] = { "dns", "dns", NULL };
        const char *values[] = { "c.example.test", "d.example.test", NULL };
        _cleanup_(acme_order_freep) AcmeOrder *o = NULL;
        _cleanup_(acme_challenge_freep) AcmeChallenge *c = NULL;
        int64_t order, a1, ch;

        order = new_order(f, f->account_id, types, values, NULL);
        a1 = authz_at(f, order, 0);
        ch = start_challenge(f, a1, "http-01");
        assert_int_equal(acme_challenge_complete(f->store, ch, -CF_E_INCORRECT_RESPONSE,
                                                 "key authorization mismatch", time_now()), 0);
        assert_int_equal(store_acme_challenge_get(f->store, ch, &c), 0);
        assert_int_equal(c->status, ACME_STATUS_INVALID);
        assert_non_null(strstr(c->error, "urn:ietf:params:acme:error:incorrectResponse"));
        assert_non_null(strstr(c->error, "key authorization mismatch"));
        assert_int_equal(authz_status(f, a1), ACME_STATUS_INVALID);
        assert_string_equal(order_status(f, order), "invalid");
        assert_int_equal(store_acme_order_get(f->store, order, &o), 0);
        assert_non_null(o->error);
        assert_non_null(strstr(o->error, "c.example.test"));

        /* A late second result for the same challenge changes nothing. */
        assert_int_equal(acme_challenge_complete(f->store, ch, 0, NULL, time_now()), 0);
        assert_int_equal(authz_status(f, a1), ACME_STATUS_INVALID);
}

static void test_authz_reused_while_valid(void **state) {
        Fixture *f = *state;
        const char *types[] = { "dns", NULL };
        const char *values[] = { "e.example.test", NULL };
        int64_t o1, o2, o3, o4, a1;
        json_object *body = NULL;

        o1 = new_order(f, f->account_id, types, values, NULL);
        a1 = authz_at(f, o1, 0);
        assert_int_equal(acme_challenge_complete(f->store, start_challenge(f, a1, "tls-alpn-01"), 0,
                                                 NULL, time_now()), 0);
        assert_string_equal(order_status(f, o1), "ready");

        /* Same account, same identifier: reused, and the new order is ready at once. */
        o2 = new_order(f, f->account_id, types, values, &body);
        assert_int_equal(authz_at(f, o2, 0), a1);
        assert_string_equal(json_object_get_string(json_object_object_get(body, "status")), "ready");
        json_object_put(body);

        /* Another account never gets it. */
        o3 = new_order(f, f->other_account_id, types, values, NULL);
        assert_int_not_equal(authz_at(f, o3, 0), a1);
        assert_string_equal(order_status(f, o3), "pending");

        /* Once expired it is not reused either. */
        assert_int_equal(store_acme_authz_update(f->store, a1, ACME_STATUS_VALID, time_now() - 1), 0);
        assert_int_equal(authz_status(f, a1), ACME_STATUS_EXPIRED);
        o4 = new_order(f, f->account_id, types, values, NULL);
        assert_int_not_equal(authz_at(f, o4, 0), a1);
        assert_string_equal(order_status(f, o4), "pending");
}

static void test_authz_deactivation_invalidates_order(void **state) {
        Fixture *f = *state;
        const char *types[] = { "dns", NULL };
        const char *values[] = { "f.example.test", NULL };
        json_object *body = NULL, *p;
        int64_t order, a;

        order = new_order(f, f->account_id, types, values, NULL);
        a = authz_at(f, order, 0);

        /* Another account cannot touch it. */
        p = json_object_new_object();
        json_object_object_add(p, "status", json_object_new_string("deactivated"));
        assert_int_equal(run(f, f->other_account_id, p, acme_authz_handle, a, NULL, NULL, NULL),
                         -CF_E_NOT_FOUND);
        assert_int_equal(authz_status(f, a), ACME_STATUS_PENDING);

        /* Only "deactivated" can be posted. */
        p = json_object_new_object();
        json_object_object_add(p, "status", json_object_new_string("valid"));
        assert_int_equal(run(f, f->account_id, p, acme_authz_handle, a, NULL, NULL, NULL),
                         -CF_E_MALFORMED);
        assert_int_equal(authz_status(f, a), ACME_STATUS_PENDING);

        p = json_object_new_object();
        json_object_object_add(p, "status", json_object_new_string("deactivated"));
        assert_int_equal(run(f, f->account_id, p, acme_authz_handle, a, NULL, &body, NULL), 0);
        assert_string_equal(json_object_get_string(json_object_object_get(body, "status")), "deactivated");
        json_object_put(body);
        assert_int_equal(authz_status(f, a), ACME_STATUS_DEACTIVATED);
        assert_string_equal(order_status(f, order), "invalid");

        /* Twice is an error. */
        p = json_object_new_object();
        json_object_object_add(p, "status", json_object_new_string("deactivated"));
        assert_int_equal(run(f, f->account_id, p, acme_authz_handle, a, NULL, NULL, NULL),
                         -CF_E_MALFORMED);
}

static void test_order_and_authz_expiry(void **state) {
        Fixture *f = *state;
        AcmeOrder o = { .status = ACME_STATUS_PENDING, .expires = 1000 };
        AcmeAuthz a = { .status = ACME_STATUS_PENDING, .expires = 1000 };

        assert_int_equal(acme_order_effective_status(&o, 999), ACME_STATUS_PENDING);
        assert_int_equal(acme_order_effective_status(&o, 1000), ACME_STATUS_INVALID);
        o.status = ACME_STATUS_READY;
        assert_int_equal(acme_order_effective_status(&o, 2000), ACME_STATUS_INVALID);
        o.status = ACME_STATUS_VALID;   /* a finished order keeps its state */
        assert_int_equal(acme_order_effective_status(&o, 2000), ACME_STATUS_VALID);
        assert_int_equal(acme_authz_effective_status(&a, 999), ACME_STATUS_PENDING);
        assert_int_equal(acme_authz_effective_status(&a, 1000), ACME_STATUS_EXPIRED);
        a.status = ACME_STATUS_VALID;
        assert_int_equal(acme_authz_effective_status(&a, 1001), ACME_STATUS_EXPIRED);
        a.status = ACME_STATUS_INVALID;
        assert_int_equal(acme_authz_effective_status(&a, 1001), ACME_STATUS_INVALID);

        /* An order whose reused authorization expired becomes invalid when recomputed. */
        const char *types[] = { "dns", NULL };
        const char *values[] = { "g.example.test", NULL };
        int64_t order = new_order(f, f->account_id, types, values, NULL), az = authz_at(f, order, 0);
        assert_int_equal(store_acme_authz_update(f->store, az, ACME_STATUS_PENDING, time_now() - 10), 0);
        assert_int_equal(store_begin(f->store), 0);
        assert_int_equal(acme_order_update_from_authzs(f->store, order, time_now()), 0);
        assert_int_equal(store_commit(f->store), 0);
        assert_string_equal(order_status(f, order), "invalid");
}

static void test_challenge_types_per_identifier(void **state) {
        Fixture *f = *state;
        const char *types[] = { "dns", "dns", "ip", NULL };
        const char *values[] = { "*.example.test", "h.example.test", "127.0.0.1", NULL };
        _cleanup_free_ char *t0 = NULL, *t1 = NULL, *t2 = NULL;
        _cleanup_(acme_authz_freep) AcmeAuthz *w = NULL;
        json_object *body = NULL;
        int64_t order;

        order = new_order(f, f->account_id, types, values, NULL);
        t0 = challenge_types(f, authz_at(f, order, 0));
        t1 = challenge_types(f, authz_at(f, order, 1));
        t2 = challenge_types(f, authz_at(f, order, 2));
        assert_string_equal(t0, "dns-01");                       /* wildcard: dns-01 only */
        assert_string_equal(t1, "http-01 dns-01 tls-alpn-01");
        assert_string_equal(t2, "http-01 tls-alpn-01");          /* RFC 8738 §7 */
        assert_int_equal(store_acme_authz_get(f->store, authz_at(f, order, 0), &w), 0);
        assert_true(w->wildcard);
        assert_string_equal(w->identifier_value, "example.test");
        assert_int_equal(run(f, f->account_id, NULL, acme_authz_handle, w->id, NULL, &body, NULL), 0);
        assert_true(json_object_get_boolean(json_object_object_get(body, "wildcard")));
        assert_string_equal(json_object_get_string(json_object_object_get(
                json_object_object_get(body, "identifier"), "value")), "example.test");
        json_object_put(body);
}

static void test_new_order_rejections_leave_store_unchanged(void **state) {
        Fixture *f = *state;
        static const struct {
                const char *types[7];
                const char *values[7];
                int error;
        } cases[] = {
                { { "dns", NULL }, { "not-allowed.other.test", NULL }, -CF_E_REJECTED_IDENTIFIER },
                { { "dns", "dns", NULL }, { "i.example.test", "bad.other.test", NULL }, -CF_E_REJECTED_IDENTIFIER },
                { { "email", NULL }, { "a@example.test", NULL }, -CF_E_UNSUPPORTED_IDENTIFIER },
                { { "ip", NULL }, { "10.1.2.3", NULL }, -CF_E_REJECTED_IDENTIFIER },
                { { "ip", NULL }, { "300.1.2.3", NULL }, -CF_E_MALFORMED },
                { { "dns", "dns", "dns", "dns", "dns", "dns", NULL },
                  { "a1.example.test", "a2.example.test", "a3.example.test", "a4.example.test",
                    "a5.example.test", "a6.example.test", NULL }, -CF_E_REJECTED_IDENTIFIER },
                { { NULL }, { NULL }, -CF_E_MALFORMED },
        };
        const char *tables[] = { "acme_orders", "acme_authzs", "acme_challenges", "acme_order_authzs" };
        int64_t before[4];

        for (size_t t = 0; t < 4; t++)
                before[t] = count_rows(f, tables[t]);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_int_equal(run(f, f->account_id, order_payload(cases[i].types, cases[i].values),
                                     NULL, 0, acme_new_order_handle, NULL, NULL), cases[i].error);
        for (size_t t = 0; t < 4; t++)
                assert_int_equal(count_rows(f, tables[t]), before[t]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_order_pending_to_ready_to_processing_gate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_order_invalid_propagation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_authz_reused_while_valid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_authz_deactivation_invalidates_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_order_and_authz_expiry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_challenge_types_per_identifier, setup, teardown),
                cmocka_unit_test_setup_teardown(test_new_order_rejections_leave_store_unchanged, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
