/* SPDX-License-Identifier: Apache-2.0 */
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "server/store/store-acme.h"
#include "server/store/store-approval.h"
#include "server/store/store-sqlite-internal.h"
#include "server/store/store.h"
#include "shared/errors.h"
#include "shared/strv.h"

static char tmpdir[] = "/tmp/test-store-sqlite-XXXXXX";
static unsigned db_counter;

static int setup(void **state) {
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

/* A fresh database path per test. */
static char *new_db_path(void) {
        char *p;
        assert_true(asprintf(&p, "%s/db-%u.sqlite", tmpdir, ++db_counter) > 0);
        return p;
}

static Store *open_store(const char *path) {
        Store *s = NULL;
        char *url;

        assert_true(asprintf(&url, "sqlite:%s", path) > 0);
        assert_int_equal(store_open(url, &s), 0);
        free(url);
        assert_non_null(s);
        return s;
}

/* Reads a single integer or text result through an independent SQLite connection. */
static char *raw_query(const char *path, const char *sql) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        char *result = NULL;

        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
                result = strdup((const char *) sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return result;
}

static void make_cert(InventoryCert *c, const char *serial, const char *profile, const char *protocol,
                      int64_t account, cf_time_t not_after) {
        static char *ids[] = { (char *) "dns:a.example", (char *) "ip:10.0.0.1", NULL };
        static char ari_buf[8][64];
        static unsigned ari_n;
        char *ari = ari_buf[ari_n++ % 8];

        snprintf(ari, 64, "aki.%s", serial);
        *c = (InventoryCert) {
                .serial = (char *) serial,
                .protocol = (char *) protocol,
                .protocol_profile = (char *) profile,
                .ra_profile = (char *) "ra-web",
                .ca = (char *) "internal",
                .account_id = account,
                .identifiers = ids,
                .subject = (char *) "CN=a.example",
                .not_before = not_after - 1000,
                .not_after = not_after,
                .issued_at = not_after - 999,
                .status = CERT_STATUS_VALID,
                .revocation_reason = -1,
                .ari_cert_id = ari,
                .pem = (char *) "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
                .chain_pem = NULL,
        };
}

static void test_store_creates_file_0600_in_wal_mode(void **state) {
        char *path = new_db_path();
        Store *s = open_store(path);
        struct stat st;
        char *mode;

        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        mode = raw_query(path, "PRAGMA journal_mode");
        assert_string_equal(mode, "wal");
        free(mode);

        store_close(s);
        free(path);
}

static void test_store_accepts_bare_path(void **state) {
        char *path = new_db_path();
        Store *s = NULL;
        int v;

        assert_int_equal(store_open(path, &s), 0);
        assert_int_equal(store_schema_version(s, &v), 0);
        assert_int_equal(v, (int) store_sqlite_n_migrations);
        store_close(s);
        assert_int_equal(access(path, F_OK), 0);
        free(path);
}

static void test_store_migrations_idempotent_on_reopen(void **state) {
        char *path = new_db_path();
        Store *s = open_store(path);
        InventoryCert c, *got = NULL;
        char *uv, expected[16];
        int v;

        assert_true(store_sqlite_n_migrations >= 1);
        assert_int_equal(store_sqlite_migrations[0].version, 1);
        assert_int_equal(store_schema_version(s, &v), 0);
        assert_int_equal(v, (int) store_sqlite_n_migrations);

        make_cert(&c, "0a1b", "default", "acme", 0, 2000000000);
        assert_int_equal(store_inventory_insert(s, &c), 0);
        store_close(s);

        /* Reopening must neither fail on existing tables nor lose data. */
        s = open_store(path);
        assert_int_equal(store_schema_version(s, &v), 0);
        assert_int_equal(v, (int) store_sqlite_n_migrations);
        assert_int_equal(store_inventory_get(s, "0a1b", &got), 0);
        inventory_cert_free(got);
        store_close(s);

        snprintf(expected, sizeof expected, "%zu", store_sqlite_n_migrations);
        uv = raw_query(path, "PRAGMA user_version");
        assert_string_equal(uv, expected);
        free(uv);
        uv = raw_query(path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'inventory' "
                             "AND name IN ('inventory_not_after', 'inventory_ari_cert_id', "
                             "'inventory_protocol_profile', 'inventory_account_id')");
        assert_string_equal(uv, "4");
        free(uv);
        free(path);
}

static void test_store_refuses_newer_schema(void **state) {
        char *path = new_db_path();
        Store *s = open_store(path);
        char sql[64];

        snprintf(sql, sizeof sql, "PRAGMA user_version = %zu", store_sqlite_n_migrations + 1);
        assert_int_equal(store_sqlite_exec(s, sql), 0);
        store_close(s);

        s = NULL;
        assert_int_equal(store_open(path, &s), -EPROTONOSUPPORT);
        assert_null(s);
        free(path);
}

static void test_store_inventory_round_trip(void **state) {
        char *path = new_db_path();
        Store *s = open_store(path);
        InventoryCert c, *got = NULL;

        make_cert(&c, "7f00aa", "default", "acme", 42, 1900000000);
        c.chain_pem = (char *) "CHAIN";
        c.replaces = (char *) "0123";
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_inventory_insert(s, &c), 0);
        assert_int_equal(store_commit(s), 0);

        assert_int_equal(store_inventory_get(s, "7f00aa", &got), 0);
        assert_string_equal(got->serial, "7f00aa");
        assert_string_equal(got->protocol, "acme");
        assert_string_equal(got->protocol_profile, "default");
        assert_string_equal(got->ra_profile, "ra-web");
        assert_string_equal(got->ca, "internal");
        assert_int_equal(got->account_id, 42);
        assert_int_equal(strv_length(got->identifiers), 2);
        assert_string_equal(got->identifiers[0], "dns:a.example");
        assert_string_equal(got->identifiers[1], "ip:10.0.0.1");
        assert_string_equal(got->subject, "CN=a.example");
        assert_int_equal(got->not_before, 1900000000 - 1000);
        assert_int_equal(got->not_after, 1900000000);
        assert_int_equal(got->issued_at, 1900000000 - 999);
        assert_int_equal(got->status, CERT_STATUS_VALID);
        assert_int_equal(got->revocation_reason, -1);
        assert_int_equal(got->revoked_at, 0);
        assert_string_equal(got->ari_cert_id, "aki.7f00aa");
        assert_string_equal(got->replaces, "0123");
        assert_null(got->replaced_by);
        assert_false(got->renew_now);
        assert_string_equal(got->pem, c.pem);
        assert_string_equal(got->chain_pem, "CHAIN");
        inventory_cert_free(got);

        got = NULL;
        assert_int_equal(store_inventory_get_by_ari_id(s, "aki.7f00aa", &got), 0);
        assert_string_equal(got->serial, "7f00aa");
        inventory_cert_free(got);
        assert_int_equal(store_inventory_get_by_ari_id(s, "aki.nothing", &got), -ENOENT);
        assert_int_equal(store_inventory_get(s, "ffff", &got), -ENOENT);

        /* The serial is the primary key. */
        c.ari_cert_id = (char *) "other";
        assert_int_equal(store_inventory_insert(s, &c), -EEXIST);

        store_close(s);
        free(path);
}

static size_t list_count(Store *s, const InventoryFilter *f, const char *expected_serials) {
        InventoryCert **l = NULL;
        char joined[256] = "";
        size_t n = 0;

        assert_int_equal(store_inventory_list(s, f, &l), 0);
        assert_non_null(l);
        for (InventoryCert **i = l; *i; i++, n++) {
                if (n > 0)
                        strcat(joined, ",");
                strcat(joined, (*i)->serial);
        }
        assert_string_equal(joined, expected_serials);
        inventory_cert_list_free(l);
        return n;
}

static void test_store_inventory_list_filters(void **state) {
        char *path = new_db_path();
        Store *s = open_store(path);
        cf_time_t now = time_now();
        InventoryCert c;

        /* Inserted out of order: the list is ordered by not_after. */
        make_cert(&c, "03", "web", "acme", 7, now + 30 * 86400);
        assert_int_equal(store_inventory_insert(s, &c), 0);
        make_cert(&c, "01", "web", "acme", 7, now + 1 * 86400);
        assert_int_equal(store_inventory_insert(s, &c), 0);
        make_cert(&c, "02", "mdm", "scep", 0, now + 3 * 86400);
        c.ra_profile = (char *) "ra-mdm";
        assert_int_equal(store_inventory_insert(s, &c), 0);
        make_cert(&c, "04", "web", "acme", 8, now + 2 * 86400);
        assert_int_equal(store_inventory_insert(s, &c), 0);
        assert_int_equal(store_inventory_revoke(s, "04", 1, now), 0);

        assert_int_equal(list_count(s, NULL, "01,04,02,03"), 4);
        assert_int_equal(list_count(s, &(InventoryFilter) {}, "01,04,02,03"), 4);
        /* Expiring within a week: revoked certificates are not "expiring". */
        assert_int_equal(list_count(s, &(InventoryFilter) { .expiring_before = now + 7 * 86400 }, "01,02"), 2);
        assert_int_equal(list_count(s, &(InventoryFilter) { .profile = "web" }, "01,04,03"), 3);
        /* The profile filter also matches the RA profile. */
        assert_int_equal(list_count(s, &(InventoryFilter) { .profile = "ra-mdm" }, "02"), 1);
        assert_int_equal(list_count(s, &(InventoryFilter) { .profile = "nope" }, ""), 0);
        assert_int_equal(list_count(s, &(InventoryFilter) { .protocol = "scep" }, "02"), 1);
        assert_int_equal(list_count(s, &(InventoryFilter) { .account_id = 7 }, "01,03"), 2);
        assert_int_equal(list_count(s, &(InventoryFilter) { .limit = 2 }, "01,04"), 2);
        assert_int_equal(list_count(s, &(InventoryFilter) { .profile = "web", .expiring_before = now + 7 * 86400 }, "01"), 1);

        store_close(s);
        free(path);
}

static void test_store_revoke_twice_is_already_revoked(void **state) {
        char *path = new_db_path();
        Store *s = open_store(path);
        InventoryCert c, *got = NULL;

        make_cert(&c, "aa", "web", "acme", 0, 2000000000);
        assert_int_equal(store_inventory_insert(s, &c), 0);

        assert_int_equal(store_inventory_revoke(s, "aa", 4, 1800000000), 0);
        assert_int_equal(store_inventory_revoke(s, "aa", 1, 1800000001), -CF_E_ALREADY_REVOKED);
        assert_int_equal(store_inventory_revoke(s, "bb", 1, 1800000001), -ENOENT);

        assert_int_equal(store_inventory_get(s, "aa", &got), 0);
        assert_int_equal(got->status, CERT_STATUS_REVOKED);
        assert_int_equal(got->revocation_reason, 4);     /* the first revocation stands */
        assert_int_equal(got->revoked_at, 1800000000);
        inventory_cert_free(got);

        store_close(s);
        free(path);
}

static void test_store_mark_replaced_twice_is_already_replaced(void **state) {
        char *path = new_db_path();
        Store *s = open_store(path);
        InventoryCert c, *got = NULL;

        make_cert(&c, "0100", "web", "acme", 0, 2000000000);
        assert_int_equal(store_inventory_insert(s, &c), 0);
        make_cert(&c, "0200", "web", "acme", 0, 2000000001);
        assert_int_equal(store_inventory_insert(s, &c), 0);
        make_cert(&c, "0300", "web", "acme", 0, 2000000002);
        assert_int_equal(store_inventory_insert(s, &c), 0);

        assert_int_equal(store_inventory_mark_replaced(s, "0100", "0200"), 0);
        assert_int_equal(store_inventory_mark_replaced(s, "0100", "0300"), -CF_E_ALREADY_REPLACED);
        assert_int_equal(store_inventory_mark_replaced(s, "0999", "0300"), -ENOENT);
        /* An unknown new serial must not leave half a link behind. */
        assert_int_equal(store_inventory_mark_replaced(s, "0200", "0999"), -ENOENT);

        assert_int_equal(store_inventory_get(s, "0100", &got), 0);
        assert_string_equal(got->replaced_by, "0200");
        inventory_cert_free(got);
        assert_int_equal(store_inventory_get(s, "0200", &got), 0);
        assert_string_equal(got->replaces, "0100");
        assert_null(got->replaced_by);
        inventory_cert_free(got);
        assert_int_equal(store_inventory_get(s, "0300", &got), 0);
        assert_null(got->replaces);
        inventory_cert_free(got);

        store_close(s);
        free(path);
}

static void test_store_renew_now_flag(void **state) {
        char *path = new_db_path();
        Store *s = open_store(path);
        InventoryCert c, *got = NULL;

        make_cert(&c, "0c", "web", "acme", 0, 2000000000);
        assert_int_equal(store_inventory_insert(s, &c), 0);
        assert_int_equal(store_inventory_set_renew_now(s, "0c", true), 0);
        assert_int_equal(store_inventory_set_renew_now(s, "0d", true), -ENOENT);
        assert_int_equal(store_inventory_get(s, "0c", &got), 0);
        assert_true(got->renew_now);
        inventory_cert_free(got);
        assert_int_equal(store_inventory_set_renew_now(s, "0c", false), 0);
        assert_int_equal(store_inventory_get(s, "0c", &got), 0);
        assert_false(got->renew_now);
        inventory_cert_free(got);

        store_close(s);
        free(path);
}

static void test_store_rollback_leaves_nothing(void **state) {
        char *path = new_db_path();
        Store *s = open_store(path);
        InventoryCert c, *got = NULL;
        InventoryCert **l = NULL;

        make_cert(&c, "0e", "web", "acme", 0, 2000000000);
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_begin(s), -EBUSY);        /* not nestable */
        assert_int_equal(store_inventory_insert(s, &c), 0);
        assert_int_equal(store_inventory_get(s, "0e", &got), 0);   /* visible inside */
        inventory_cert_free(got);
        store_rollback(s);
        store_rollback(s);                                /* no-op without a transaction */

        assert_int_equal(store_inventory_get(s, "0e", &got), -ENOENT);
        assert_int_equal(store_inventory_list(s, NULL, &l), 0);
        assert_null(l[0]);
        inventory_cert_list_free(l);
        store_close(s);

        /* Nothing reached the file either. */
        {
                char *n = raw_query(path, "SELECT COUNT(*) FROM inventory");
                assert_string_equal(n, "0");
                free(n);
        }
        free(path);
}

/* A transaction on another thread of the same Store (cmocka asserts only on the main thread). */
typedef struct SharedWriter {
        Store *store;
        InventoryCert cert;
        pthread_mutex_t lock;
        pthread_cond_t began;
        bool begun;
        int r_begin, r_insert, r_commit;
        bool in_transaction;
} SharedWriter;

static void *shared_writer(void *userdata) {
        SharedWriter *w = userdata;

        w->r_begin = store_begin(w->store);
        w->in_transaction = store_in_transaction(w->store);
        pthread_mutex_lock(&w->lock);
        w->begun = true;
        pthread_cond_signal(&w->began);
        pthread_mutex_unlock(&w->lock);
        /* Long enough that the main thread's read would run inside this transaction if nothing
         * serialized the connection. */
        usleep(200 * 1000);
        w->r_insert = store_inventory_insert(w->store, &w->cert);
        w->r_commit = store_commit(w->store);
        return NULL;
}

static uint64_t now_msec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static void test_store_shared_between_threads_waits_for_transactions(void **state) {
        char *path = new_db_path();
        Store *s = open_store(path);
        SharedWriter w = {
                .store = s,
                .lock = PTHREAD_MUTEX_INITIALIZER,
                .began = PTHREAD_COND_INITIALIZER,
        };
        InventoryCert *got = NULL;
        uint64_t start;
        pthread_t t;

        make_cert(&w.cert, "5a", "web", "acme", 0, 2000000000);
        assert_int_equal(pthread_create(&t, NULL, shared_writer, &w), 0);
        pthread_mutex_lock(&w.lock);
        while (!w.begun)
                pthread_cond_wait(&w.began, &w.lock);
        pthread_mutex_unlock(&w.lock);

        /* The other thread's transaction is open: this read waits for its commit, then sees the
         * row (run inside that transaction, before the insert, it would find nothing). */
        start = now_msec();
        assert_int_equal(store_inventory_get(s, "5a", &got), 0);
        assert_true(now_msec() - start >= 100);
        assert_string_equal(got->serial, "5a");
        inventory_cert_free(got);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(w.r_begin, 0);
        assert_true(w.in_transaction);
        assert_int_equal(w.r_insert, 0);
        assert_int_equal(w.r_commit, 0);
        /* Not this thread's transaction, and none is left open. */
        assert_false(store_in_transaction(s));
        assert_int_equal(store_begin(s), 0);
        assert_true(store_in_transaction(s));
        assert_int_equal(store_commit(s), 0);
        store_close(s);
        free(path);
}

/* A database as schema version `version` left it: the first migrations run by hand, then sql
 * (rows of that era), and user_version set. */
static void make_db_at_version(const char *path, size_t version, const char *sql) {
        char pragma[64];
        sqlite3 *db = NULL;

        assert_true(store_sqlite_n_migrations > version);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        for (size_t i = 0; i < version; i++)
                assert_int_equal(sqlite3_exec(db, store_sqlite_migrations[i].sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %zu", version);
        assert_int_equal(sqlite3_exec(db, pragma, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
}

static void test_store_nonce_records_survive_the_expiry_keyed_migration(void **state) {
        char *path = new_db_path();
        Store *s;

        /* Schema version 2, with one used nonce and one long expired. */
        make_db_at_version(path, 2, "INSERT INTO acme_nonces (id, expires) VALUES ('used', 2000000000), "
                                    "('old', 1000);");

        s = open_store(path);
        /* The used nonce stays used; the purge still drops what expired; new ones record once. */
        assert_int_equal(store_acme_nonce_consume(s, "used", 2000000000, 1500000000), -EEXIST);
        assert_int_equal(store_acme_nonce_consume(s, "fresh", 2000000000, 1500000000), 0);
        assert_int_equal(store_acme_nonce_consume(s, "fresh", 2000000000, 1500000000), -EEXIST);
        store_close(s);
        {
                char *n = raw_query(path, "SELECT group_concat(id) FROM (SELECT id FROM acme_nonces ORDER BY id)");
                assert_string_equal(n, "fresh,used");
                free(n);
        }
        free(path);
}

static void test_store_order_links_survive_the_index_migration(void **state) {
        _cleanup_free_ int64_t *authzs = NULL, *orders = NULL;
        char *path = new_db_path(), *plan;
        size_t n = 0;
        int64_t id = 0;
        sqlite3 *db = NULL;
        Store *s;

        /* Schema version 4: order 1 links authorizations 1 and 2, order 2 replaces certificate
         * "ab" and links authorization 2. */
        make_db_at_version(path, 4,
                "INSERT INTO acme_accounts (id, profile, jwk, thumbprint, status, created) "
                "VALUES (1, 'p', '{}', 't', 'valid', 1);"
                "INSERT INTO acme_orders (id, account_id, profile, status, identifiers, expires, replaces, created) "
                "VALUES (1, 1, 'p', 'valid', '[]', 2000000000, NULL, 1), "
                "(2, 1, 'p', 'pending', '[]', 2000000000, 'ab', 1);"
                "INSERT INTO acme_authzs (id, account_id, profile, identifier_type, identifier_value, status, "
                "expires, created) VALUES (1, 1, 'p', 'dns', 'a.example', 'valid', 2000000000, 1), "
                "(2, 1, 'p', 'dns', 'b.example', 'valid', 2000000000, 1);"
                "INSERT INTO acme_order_authzs (order_id, authz_id) VALUES (1, 2), (1, 1), (2, 2);");

        s = open_store(path);
        assert_int_equal(store_acme_order_get_authz_ids(s, 1, &authzs, &n), 0);
        assert_int_equal(n, 2);
        assert_true(authzs[0] == 1 && authzs[1] == 2);
        assert_int_equal(store_acme_authz_get_order_ids(s, 2, &orders, &n), 0);
        assert_int_equal(n, 2);
        assert_true(orders[0] == 1 && orders[1] == 2);
        assert_int_equal(store_acme_order_find_replacing(s, "ab", 1500000000, &id), 0);
        assert_int_equal(id, 2);
        store_close(s);

        /* The links are keyed by their primary key, and a lookup by "replaces" takes the partial
         * index, which holds only the order that replaces something. */
        plan = raw_query(path, "SELECT sql FROM sqlite_schema WHERE name = 'acme_order_authzs'");
        assert_non_null(strstr(plan, "WITHOUT ROWID"));
        free(plan);
        plan = raw_query(path, "SELECT sql FROM sqlite_schema WHERE name = 'acme_orders_replaces'");
        assert_non_null(strstr(plan, "WHERE replaces IS NOT NULL"));
        free(plan);
        {
                sqlite3_stmt *st = NULL;
                bool uses_index = false;

                assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
                assert_int_equal(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT id FROM acme_orders "
                                                        "WHERE replaces = ?", -1, &st, NULL), SQLITE_OK);
                while (sqlite3_step(st) == SQLITE_ROW)
                        if (strstr((const char *) sqlite3_column_text(st, 3), "acme_orders_replaces"))
                                uses_index = true;
                sqlite3_finalize(st);
                sqlite3_close(db);
                assert_true(uses_index);
        }
        free(path);
}

static void test_store_second_connection_sees_committed_data(void **state) {
        char *path = new_db_path();
        Store *a = open_store(path), *b = open_store(path);
        InventoryCert c, *got = NULL;

        make_cert(&c, "0f", "web", "acme", 0, 2000000000);
        assert_int_equal(store_begin(a), 0);
        assert_int_equal(store_inventory_insert(a, &c), 0);

        /* Uncommitted: invisible to the other connection, which can still read (WAL). */
        assert_int_equal(store_inventory_get(b, "0f", &got), -ENOENT);

        assert_int_equal(store_commit(a), 0);
        assert_int_equal(store_inventory_get(b, "0f", &got), 0);
        assert_string_equal(got->serial, "0f");
        inventory_cert_free(got);

        store_close(a);
        store_close(b);
        free(path);
}

/* The server keeps connections open while it opens more (one per validation result) and an admin
 * runs `certfleet-server cert list` in another process. None of that may make the other process
 * believe it is the database's last user: it would checkpoint and delete the WAL that the
 * server's connections still write to, and their later writes would be lost. */
static void test_store_other_process_does_not_lose_our_writes(void **state) {
        _cleanup_free_ char *wal = NULL;
        char *path = new_db_path();
        Store *server = open_store(path);
        InventoryCert c;
        pid_t pid;
        int status;

        /* A second connection in the same process, opened and closed. */
        store_close(open_store(path));

        /* Another process opens and closes the database. */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                Store *s = NULL;
                _exit(store_open(path, &s) < 0 ? 2 : (store_close(s), 0));
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        assert_true(asprintf(&wal, "%s-wal", path) > 0);
        assert_int_equal(access(wal, F_OK), 0);

        /* What the long-lived connection writes now is seen by a fresh process. */
        make_cert(&c, "1234", "web", "acme", 0, 2000000000);
        assert_int_equal(store_inventory_insert(server, &c), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char *count = raw_query(path, "SELECT COUNT(*) FROM inventory WHERE serial = '1234'");
                _exit(count && strcmp(count, "1") == 0 ? 0 : 3);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        store_close(server);
        free(path);
}

static unsigned sqlite_users;

static int find_sqlite_user(const char *path, const struct stat *st, int type, struct FTW *f) {
        const char *base = path + f->base;
        size_t n = strlen(base);
        char line[4096];
        FILE *file;

        if (type != FTW_F || n < 2 || (strcmp(base + n - 2, ".c") != 0 && strcmp(base + n - 2, ".h") != 0))
                return 0;
        if (strncmp(base, "store-sqlite", 12) == 0 && strstr(path, "/server/store/"))
                return 0;
        file = fopen(path, "re");
        assert_non_null(file);
        while (fgets(line, sizeof line, file))
                if (strstr(line, "sqlite3_") || strstr(line, "<sqlite3.h>")) {
                        print_error("SQLite used outside the backend: %s: %s", path, line);
                        sqlite_users++;
                }
        fclose(file);
        return 0;
}

/* The store interface is the only way to the database: no SQLite outside its backend files. */
static void test_store_sqlite_is_confined_to_its_backend(void **state) {
        const char *root = getenv("CERTFLEET_SOURCE_ROOT");
        char *dir;

        if (!root)
                skip();
        for (const char *const *d = (const char *const[]) { "server", "agent", "shared", NULL }; *d; d++) {
                assert_true(asprintf(&dir, "%s/%s", root, *d) > 0);
                assert_int_equal(nftw(dir, find_sqlite_user, 16, FTW_PHYS), 0);
                free(dir);
        }
        assert_int_equal(sqlite_users, 0);
}

/* A public store function that forgets STORE_SQLITE_HOLD would use the shared connection
 * unserialized, racing every other thread: each must hold it first thing. */
static void test_store_every_backend_function_holds_the_connection(void **state) {
        const char *root = getenv("CERTFLEET_SOURCE_ROOT");
        const char *files[] = { "store-sqlite-acme.c", "store-sqlite-inventory.c", "store-sqlite-approval.c" };
        unsigned checked = 0, missing = 0;

        if (!root)
                skip();
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                char *path, line[4096], name[256] = "";
                bool in_header = false;
                FILE *f;

                assert_true(asprintf(&path, "%s/server/store/%s", root, files[i]) > 0);
                f = fopen(path, "re");
                assert_non_null(f);
                while (fgets(line, sizeof line, f)) {
                        if (strncmp(line, "int store_", 10) == 0 && !strstr(line, "store_sqlite_")) {
                                snprintf(name, sizeof name, "%.*s", (int) strcspn(line + 4, "("), line + 4);
                                in_header = true;
                        }
                        if (in_header && strstr(line, ") {")) {
                                in_header = false;
                                if (!fgets(line, sizeof line, f) || !strstr(line, "STORE_SQLITE_HOLD(s);")) {
                                        print_error("%s: %s does not hold the connection first\n", files[i], name);
                                        missing++;
                                }
                                checked++;
                        }
                }
                fclose(f);
                free(path);
        }
        assert_true(checked >= 30);
        assert_int_equal(missing, 0);
}

static void make_approval(ApprovalRequest *a, const char *reference) {
        static char *ids[] = { (char *) "dns:a.example", (char *) "ip:10.0.0.1", NULL };
        static uint8_t csr[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };

        *a = (ApprovalRequest) {
                .protocol = (char *) "acme",
                .protocol_profile = (char *) "gated",
                .ra_profile = (char *) "web",
                .reference = (char *) reference,
                .account_id = 7,
                .identifiers = ids,
                .subject = (char *) "CN=a.example",
                .key = (char *) "EC P-256",
                .csr = csr,
                .csr_size = sizeof csr,
                .created = 1700000000,
                /* Ignored by insert: a new request is always pending and undecided. */
                .state = APPROVAL_APPROVED,
                .decided = 5,
                .reason = (char *) "ignored",
                .cert_serial = (char *) "ignored",
        };
}

static void test_store_approval_round_trip_and_unique_reference(void **state) {
        char *path = new_db_path();
        Store *s = open_store(path);
        ApprovalRequest a, *got = NULL;
        ApprovalState st;
        char *reason = NULL, *serial = NULL, *n;
        int64_t id = 0, id2 = 0;

        assert_string_equal(approval_state_to_string(APPROVAL_PENDING), "pending");
        assert_string_equal(approval_state_to_string(APPROVAL_REJECTED), "rejected");
        assert_null(approval_state_to_string(_APPROVAL_STATE_MAX));
        assert_int_equal(approval_state_from_string("approved"), APPROVAL_APPROVED);
        assert_true(approval_state_from_string("issued") < 0);

        make_approval(&a, "17");
        assert_int_equal(store_approval_insert(s, &a, &id), 0);
        assert_true(id > 0);

        assert_int_equal(store_approval_get(s, id, &got), 0);
        assert_int_equal(got->id, id);
        assert_string_equal(got->protocol, "acme");
        assert_string_equal(got->protocol_profile, "gated");
        assert_string_equal(got->ra_profile, "web");
        assert_string_equal(got->reference, "17");
        assert_int_equal(got->account_id, 7);
        assert_int_equal(strv_length(got->identifiers), 2);
        assert_string_equal(got->identifiers[0], "dns:a.example");
        assert_string_equal(got->identifiers[1], "ip:10.0.0.1");
        assert_string_equal(got->subject, "CN=a.example");
        assert_string_equal(got->key, "EC P-256");
        assert_int_equal(got->csr_size, a.csr_size);
        assert_memory_equal(got->csr, a.csr, a.csr_size);
        assert_int_equal(got->created, 1700000000);
        assert_int_equal(got->state, APPROVAL_PENDING);
        assert_int_equal(got->decided, 0);
        assert_null(got->reason);
        assert_null(got->cert_serial);
        approval_request_free(got);

        assert_int_equal(store_approval_get_by_reference(s, "acme", "17", &got), 0);
        assert_int_equal(got->id, id);
        approval_request_free(got);
        assert_int_equal(store_approval_get_by_reference(s, "scep", "17", &got), -ENOENT);
        assert_int_equal(store_approval_get(s, id + 100, &got), -ENOENT);

        assert_int_equal(store_approval_get_state(s, "acme", "17", &st, &reason, &serial), 0);
        assert_int_equal(st, APPROVAL_PENDING);
        assert_null(reason);
        assert_null(serial);
        assert_int_equal(store_approval_get_state(s, "acme", "18", &st, NULL, NULL), -ENOENT);

        /* One request per (protocol, reference); another protocol may use the same reference. */
        assert_int_equal(store_approval_insert(s, &a, &id2), -EEXIST);
        a.protocol = (char *) "est";
        assert_int_equal(store_approval_insert(s, &a, &id2), 0);
        assert_true(id2 > id);
        n = raw_query(path, "SELECT COUNT(*) FROM approval_requests");
        assert_string_equal(n, "2");
        free(n);

        /* Without a CSR or a reference there is nothing to decide on. */
        make_approval(&a, NULL);
        assert_int_equal(store_approval_insert(s, &a, NULL), -EINVAL);
        make_approval(&a, "19");
        a.csr_size = 0;
        assert_int_equal(store_approval_insert(s, &a, NULL), -EINVAL);

        store_close(s);
        free(path);
}

static void test_store_approval_decisions_are_final(void **state) {
        char *path = new_db_path();
        Store *s = open_store(path);
        ApprovalRequest a, *got = NULL, **l = NULL;
        ApprovalState st;
        char *reason = NULL, *serial = NULL, big[APPROVAL_REASON_MAX + 2];
        int64_t id1, id2, id3;

        make_approval(&a, "1");
        assert_int_equal(store_approval_insert(s, &a, &id1), 0);
        make_approval(&a, "2");
        assert_int_equal(store_approval_insert(s, &a, &id2), 0);
        make_approval(&a, "3");
        assert_int_equal(store_approval_insert(s, &a, &id3), 0);

        assert_int_equal(store_approval_decide(s, id1, APPROVAL_PENDING, NULL, 100), -EINVAL);
        assert_int_equal(store_approval_decide(s, id1 + 100, APPROVAL_APPROVED, NULL, 100), -ENOENT);
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        assert_int_equal(store_approval_decide(s, id2, APPROVAL_REJECTED, big, 100), -E2BIG);

        /* Approve: a reason is not kept. Approving or rejecting again is -EALREADY and changes
         * nothing. */
        assert_int_equal(store_approval_decide(s, id1, APPROVAL_APPROVED, "why not", 100), 0);
        assert_int_equal(store_approval_decide(s, id1, APPROVAL_APPROVED, NULL, 200), -EALREADY);
        assert_int_equal(store_approval_decide(s, id1, APPROVAL_REJECTED, "late", 200), -EALREADY);
        assert_int_equal(store_approval_get(s, id1, &got), 0);
        assert_int_equal(got->state, APPROVAL_APPROVED);
        assert_int_equal(got->decided, 100);
        assert_null(got->reason);
        approval_request_free(got);

        assert_int_equal(store_approval_decide(s, id2, APPROVAL_REJECTED, "not ours", 150), 0);
        assert_int_equal(store_approval_decide(s, id2, APPROVAL_APPROVED, NULL, 200), -EALREADY);
        assert_int_equal(store_approval_get_state(s, "acme", "2", &st, &reason, NULL), 0);
        assert_int_equal(st, APPROVAL_REJECTED);
        assert_string_equal(reason, "not ours");
        free(reason);

        /* The serial is recorded once, only for an approved request. */
        assert_int_equal(store_approval_set_issued(s, id3, "0a"), -EPERM);
        assert_int_equal(store_approval_set_issued(s, id2, "0a"), -EPERM);
        assert_int_equal(store_approval_set_issued(s, id1 + 100, "0a"), -ENOENT);
        assert_int_equal(store_approval_set_issued(s, id1, "0a"), 0);
        assert_int_equal(store_approval_set_issued(s, id1, "0b"), -EALREADY);
        assert_int_equal(store_approval_get_state(s, "acme", "1", &st, NULL, &serial), 0);
        assert_int_equal(st, APPROVAL_APPROVED);
        assert_string_equal(serial, "0a");
        free(serial);

        /* Pending only by default, everything in id order on request. */
        assert_int_equal(store_approval_list(s, true, &l), 0);
        assert_non_null(l[0]);
        assert_int_equal(l[0]->id, id3);
        assert_null(l[1]);
        approval_request_list_free(l);
        assert_int_equal(store_approval_list(s, false, &l), 0);
        assert_int_equal(l[0]->id, id1);
        assert_int_equal(l[1]->id, id2);
        assert_int_equal(l[2]->id, id3);
        assert_null(l[3]);
        assert_string_equal(l[0]->cert_serial, "0a");
        approval_request_list_free(l);

        store_close(s);
        free(path);
}

static void test_store_approval_decision_races_with_second_connection(void **state) {
        char *path = new_db_path();
        Store *s = open_store(path), *t = open_store(path);
        ApprovalRequest a;
        int64_t id;

        /* Two administrators at once: exactly one decision wins, whichever connection. */
        make_approval(&a, "1");
        assert_int_equal(store_approval_insert(s, &a, &id), 0);
        assert_int_equal(store_approval_decide(t, id, APPROVAL_REJECTED, "no", 100), 0);
        assert_int_equal(store_approval_decide(s, id, APPROVAL_APPROVED, NULL, 101), -EALREADY);

        store_close(t);
        store_close(s);
        free(path);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_store_creates_file_0600_in_wal_mode),
                cmocka_unit_test(test_store_accepts_bare_path),
                cmocka_unit_test(test_store_migrations_idempotent_on_reopen),
                cmocka_unit_test(test_store_refuses_newer_schema),
                cmocka_unit_test(test_store_inventory_round_trip),
                cmocka_unit_test(test_store_inventory_list_filters),
                cmocka_unit_test(test_store_revoke_twice_is_already_revoked),
                cmocka_unit_test(test_store_mark_replaced_twice_is_already_replaced),
                cmocka_unit_test(test_store_renew_now_flag),
                cmocka_unit_test(test_store_rollback_leaves_nothing),
                cmocka_unit_test(test_store_shared_between_threads_waits_for_transactions),
                cmocka_unit_test(test_store_nonce_records_survive_the_expiry_keyed_migration),
                cmocka_unit_test(test_store_order_links_survive_the_index_migration),
                cmocka_unit_test(test_store_second_connection_sees_committed_data),
                cmocka_unit_test(test_store_other_process_does_not_lose_our_writes),
                cmocka_unit_test(test_store_sqlite_is_confined_to_its_backend),
                cmocka_unit_test(test_store_every_backend_function_holds_the_connection),
                cmocka_unit_test(test_store_approval_round_trip_and_unique_reference),
                cmocka_unit_test(test_store_approval_decisions_are_final),
                cmocka_unit_test(test_store_approval_decision_races_with_second_connection),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
