/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite implementation of store-acme.h (schema: migration 2 in store-sqlite-schema.c). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/store-acme.h"
#include "server/store/store-sqlite-internal.h"

static const char *const acme_status_table[_ACME_STATUS_MAX] = {
        [ACME_STATUS_PENDING] = "pending",
        [ACME_STATUS_READY] = "ready",
        [ACME_STATUS_PROCESSING] = "processing",
        [ACME_STATUS_VALID] = "valid",
        [ACME_STATUS_INVALID] = "invalid",
        [ACME_STATUS_DEACTIVATED] = "deactivated",
        [ACME_STATUS_EXPIRED] = "expired",
        [ACME_STATUS_REVOKED] = "revoked",
};

const char *acme_status_to_string(AcmeStatus s) {
        if (s < 0 || s >= _ACME_STATUS_MAX)
                return NULL;
        return acme_status_table[s];
}

AcmeStatus acme_status_from_string(const char *s) {
        if (!s)
                return _ACME_STATUS_INVALID;
        for (int i = 0; i < _ACME_STATUS_MAX; i++)
                if (strcmp(acme_status_table[i], s) == 0)
                        return i;
        return _ACME_STATUS_INVALID;
}

AcmeAccount *acme_account_free(AcmeAccount *a) {
        if (!a)
                return NULL;
        free(a->profile);
        free(a->jwk);
        free(a->thumbprint);
        free(a->contacts);
        free(a->eab_kid);
        free(a);
        return NULL;
}

AcmeOrder *acme_order_free(AcmeOrder *o) {
        if (!o)
                return NULL;
        free(o->profile);
        free(o->identifiers);
        free(o->error);
        free(o->csr);
        free(o->cert_serial);
        free(o->replaces);
        free(o);
        return NULL;
}

AcmeAuthz *acme_authz_free(AcmeAuthz *a) {
        if (!a)
                return NULL;
        free(a->profile);
        free(a->identifier_type);
        free(a->identifier_value);
        free(a);
        return NULL;
}

AcmeChallenge *acme_challenge_free(AcmeChallenge *c) {
        if (!c)
                return NULL;
        free(c->type);
        free(c->token);
        free(c->error);
        free(c);
        return NULL;
}

void acme_challenge_list_free(AcmeChallenge **l) {
        if (!l)
                return;
        for (AcmeChallenge **i = l; *i; i++)
                acme_challenge_free(*i);
        free(l);
}

/* NULL-safe text column copy; -ENOMEM is reported through *ok. */
static char *column_strdup(sqlite3_stmt *st, int col, bool *ok) {
        const unsigned char *t = sqlite3_column_text(st, col);
        char *c;

        if (!t)
                return NULL;
        c = strdup((const char *) t);
        if (!c)
                *ok = false;
        return c;
}

static int bind_text_or_null(sqlite3_stmt *st, int idx, const char *v) {
        if (!v)
                return sqlite3_bind_null(st, idx);
        return sqlite3_bind_text(st, idx, v, -1, SQLITE_STATIC);
}

static int bind_status(sqlite3_stmt *st, int idx, AcmeStatus s) {
        const char *t = acme_status_to_string(s);
        if (!t)
                return SQLITE_MISUSE;
        return sqlite3_bind_text(st, idx, t, -1, SQLITE_STATIC);
}

static int status_column(sqlite3_stmt *st, int col, AcmeStatus *ret) {
        AcmeStatus s = acme_status_from_string((const char *) sqlite3_column_text(st, col));
        if (s < 0)
                return -EIO;   /* the schema's CHECK constraints make this a corrupted row */
        *ret = s;
        return 0;
}

static int bind_all_ok(int rc) {
        return rc == SQLITE_OK ? 0 : store_sqlite_errno(rc);
}

/* The common tails: check the bindings accumulated in rc, then run the statement. */
static int finish_step(sqlite3_stmt *st, int rc) {
        int r = bind_all_ok(rc);
        return r < 0 ? r : store_sqlite_step_done(st);
}

static int finish_insert(Store *s, sqlite3_stmt *st, int rc, int64_t *ret_id) {
        int r = finish_step(st, rc);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = sqlite3_last_insert_rowid(s->db);
        return 0;
}

/* Binds the single id parameter and steps to its row (-ENOENT if none). */
static int step_row_by_id(sqlite3_stmt *st, int64_t id) {
        int r = bind_all_ok(sqlite3_bind_int64(st, 1, id));
        return r < 0 ? r : store_sqlite_step_row(st);
}

/* ---- accounts ---- */

#define ACCOUNT_COLUMNS "id, profile, jwk, thumbprint, status, contacts, tos_agreed, eab_kid, created"

static int account_from_row(sqlite3_stmt *st, AcmeAccount **ret) {
        _cleanup_(acme_account_freep) AcmeAccount *a = NULL;
        bool ok = true;
        int r;

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->id = sqlite3_column_int64(st, 0);
        a->profile = column_strdup(st, 1, &ok);
        a->jwk = column_strdup(st, 2, &ok);
        a->thumbprint = column_strdup(st, 3, &ok);
        r = status_column(st, 4, &a->status);
        if (r < 0)
                return r;
        a->contacts = column_strdup(st, 5, &ok);
        a->tos_agreed = sqlite3_column_int(st, 6) != 0;
        a->eab_kid = column_strdup(st, 7, &ok);
        a->created = sqlite3_column_int64(st, 8);
        if (!ok)
                return -ENOMEM;
        *ret = TAKE_PTR(a);
        return 0;
}

int store_acme_account_insert(Store *s, const AcmeAccount *a, int64_t *ret_id) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s,
                "INSERT INTO acme_accounts (profile, jwk, thumbprint, status, contacts, tos_agreed, "
                "eab_kid, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", &st);
        if (r < 0)
                return r;
        rc = rc ?: sqlite3_bind_text(st, 1, a->profile, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_text(st, 2, a->jwk, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_text(st, 3, a->thumbprint, -1, SQLITE_STATIC);
        rc = rc ?: bind_status(st, 4, a->status);
        rc = rc ?: sqlite3_bind_text(st, 5, a->contacts ?: "[]", -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_int(st, 6, a->tos_agreed);
        rc = rc ?: bind_text_or_null(st, 7, a->eab_kid);
        rc = rc ?: sqlite3_bind_int64(st, 8, a->created);
        return finish_insert(s, st, rc, ret_id);
}

int store_acme_account_get(Store *s, int64_t id, AcmeAccount **ret) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_sqlite_stmt(s, "SELECT " ACCOUNT_COLUMNS " FROM acme_accounts WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = step_row_by_id(st, id);
        if (r < 0)
                return r;
        return account_from_row(st, ret);
}

int store_acme_account_get_by_thumbprint(Store *s, const char *profile, const char *thumbprint,
                                         AcmeAccount **ret) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s, "SELECT " ACCOUNT_COLUMNS " FROM acme_accounts "
                                 "WHERE profile = ? AND thumbprint = ?", &st);
        if (r < 0)
                return r;
        rc = rc ?: sqlite3_bind_text(st, 1, profile, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_text(st, 2, thumbprint, -1, SQLITE_STATIC);
        r = bind_all_ok(rc);
        if (r < 0)
                return r;
        r = store_sqlite_step_row(st);
        if (r < 0)
                return r;
        return account_from_row(st, ret);
}

int store_acme_account_update(Store *s, const AcmeAccount *a) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s, "UPDATE acme_accounts SET jwk = ?, thumbprint = ?, status = ?, "
                                 "contacts = ?, tos_agreed = ? WHERE id = ?", &st);
        if (r < 0)
                return r;
        rc = rc ?: sqlite3_bind_text(st, 1, a->jwk, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_text(st, 2, a->thumbprint, -1, SQLITE_STATIC);
        rc = rc ?: bind_status(st, 3, a->status);
        rc = rc ?: sqlite3_bind_text(st, 4, a->contacts ?: "[]", -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_int(st, 5, a->tos_agreed);
        rc = rc ?: sqlite3_bind_int64(st, 6, a->id);
        r = finish_step(st, rc);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

int store_acme_account_count(Store *s, const char *profile, int64_t *ret) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_sqlite_stmt(s, "SELECT COUNT(*) FROM acme_accounts WHERE profile = ?", &st);
        if (r < 0)
                return r;
        r = bind_all_ok(sqlite3_bind_text(st, 1, profile, -1, SQLITE_STATIC));
        if (r < 0)
                return r;
        r = store_sqlite_step_row(st);
        if (r < 0)
                return r;
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

/* ---- orders ---- */

#define ORDER_COLUMNS "id, account_id, profile, status, identifiers, not_before, not_after, " \
                      "expires, error, csr, cert_serial, replaces, created"

static int order_from_row(sqlite3_stmt *st, AcmeOrder **ret) {
        _cleanup_(acme_order_freep) AcmeOrder *o = NULL;
        bool ok = true;
        int r;

        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->id = sqlite3_column_int64(st, 0);
        o->account_id = sqlite3_column_int64(st, 1);
        o->profile = column_strdup(st, 2, &ok);
        r = status_column(st, 3, &o->status);
        if (r < 0)
                return r;
        o->identifiers = column_strdup(st, 4, &ok);
        o->not_before = sqlite3_column_int64(st, 5);
        o->not_after = sqlite3_column_int64(st, 6);
        o->expires = sqlite3_column_int64(st, 7);
        o->error = column_strdup(st, 8, &ok);
        if (sqlite3_column_type(st, 9) == SQLITE_BLOB) {
                int n = sqlite3_column_bytes(st, 9);
                const void *b = sqlite3_column_blob(st, 9);
                if (n > 0 && b) {
                        o->csr = malloc(n);
                        if (!o->csr)
                                return -ENOMEM;
                        memcpy(o->csr, b, n);
                        o->csr_size = n;
                }
        }
        o->cert_serial = column_strdup(st, 10, &ok);
        o->replaces = column_strdup(st, 11, &ok);
        o->created = sqlite3_column_int64(st, 12);
        if (!ok)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int store_acme_order_insert(Store *s, const AcmeOrder *o, int64_t *ret_id) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s,
                "INSERT INTO acme_orders (account_id, profile, status, identifiers, not_before, "
                "not_after, expires, error, replaces, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &st);
        if (r < 0)
                return r;
        rc = rc ?: sqlite3_bind_int64(st, 1, o->account_id);
        rc = rc ?: sqlite3_bind_text(st, 2, o->profile, -1, SQLITE_STATIC);
        rc = rc ?: bind_status(st, 3, o->status);
        rc = rc ?: sqlite3_bind_text(st, 4, o->identifiers, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_int64(st, 5, o->not_before);
        rc = rc ?: sqlite3_bind_int64(st, 6, o->not_after);
        rc = rc ?: sqlite3_bind_int64(st, 7, o->expires);
        rc = rc ?: bind_text_or_null(st, 8, o->error);
        rc = rc ?: bind_text_or_null(st, 9, o->replaces);
        rc = rc ?: sqlite3_bind_int64(st, 10, o->created);
        return finish_insert(s, st, rc, ret_id);
}

int store_acme_order_get(Store *s, int64_t id, AcmeOrder **ret) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_sqlite_stmt(s, "SELECT " ORDER_COLUMNS " FROM acme_orders WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = step_row_by_id(st, id);
        if (r < 0)
                return r;
        return order_from_row(st, ret);
}

int store_acme_order_update(Store *s, const AcmeOrder *o) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s, "UPDATE acme_orders SET status = ?, error = ?, csr = ?, "
                                 "cert_serial = ? WHERE id = ?", &st);
        if (r < 0)
                return r;
        rc = rc ?: bind_status(st, 1, o->status);
        rc = rc ?: bind_text_or_null(st, 2, o->error);
        if (o->csr)
                rc = rc ?: sqlite3_bind_blob(st, 3, o->csr, (int) o->csr_size, SQLITE_STATIC);
        else
                rc = rc ?: sqlite3_bind_null(st, 3);
        rc = rc ?: bind_text_or_null(st, 4, o->cert_serial);
        rc = rc ?: sqlite3_bind_int64(st, 5, o->id);
        r = finish_step(st, rc);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

static int collect_ids(sqlite3_stmt *st, size_t max, int64_t **ret_ids, size_t *ret_n) {
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0, allocated = 0;

        for (;;) {
                int rc = sqlite3_step(st);
                if (rc == SQLITE_DONE)
                        break;
                if (rc != SQLITE_ROW)
                        return store_sqlite_errno(rc);
                if (n >= max)
                        break;
                if (n == allocated) {
                        size_t na = allocated ? allocated * 2 : 8;
                        int64_t *t = reallocarray(ids, na, sizeof(int64_t));
                        if (!t)
                                return -ENOMEM;
                        ids = t;
                        allocated = na;
                }
                ids[n++] = sqlite3_column_int64(st, 0);
        }
        *ret_ids = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}

int store_acme_order_list_by_account(Store *s, int64_t account_id, int64_t after_id, cf_time_t now,
                                     size_t max, int64_t **ret_ids, size_t *ret_n) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s, "SELECT id FROM acme_orders WHERE account_id = ? AND id > ? AND "
                                 "status != 'invalid' AND NOT (status IN ('pending', 'ready') "
                                 "AND expires <= ?) ORDER BY id LIMIT ?", &st);
        if (r < 0)
                return r;
        rc = rc ?: sqlite3_bind_int64(st, 1, account_id);
        rc = rc ?: sqlite3_bind_int64(st, 2, after_id);
        rc = rc ?: sqlite3_bind_int64(st, 3, now);
        rc = rc ?: sqlite3_bind_int64(st, 4, max > INT64_MAX ? INT64_MAX : (int64_t) max);
        r = bind_all_ok(rc);
        if (r < 0)
                return r;
        return collect_ids(st, max, ret_ids, ret_n);
}

int store_acme_order_find_replacing(Store *s, const char *serial, cf_time_t now, int64_t *ret_id) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s, "SELECT id FROM acme_orders WHERE replaces = ? AND "
                                 "status != 'invalid' AND NOT (status IN ('pending', 'ready') "
                                 "AND expires <= ?) ORDER BY id LIMIT 1", &st);
        if (r < 0)
                return r;
        rc = rc ?: sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_int64(st, 2, now);
        r = bind_all_ok(rc);
        if (r < 0)
                return r;
        r = store_sqlite_step_row(st);
        if (r < 0)
                return r;
        *ret_id = sqlite3_column_int64(st, 0);
        return 0;
}

int store_acme_order_cancel_for_account(Store *s, int64_t account_id, const char *error_json) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s, "UPDATE acme_orders SET status = 'invalid', error = ? WHERE account_id = ? "
                                 "AND status IN ('pending', 'ready', 'processing')", &st);
        if (r < 0)
                return r;
        rc = rc ?: bind_text_or_null(st, 1, error_json);
        rc = rc ?: sqlite3_bind_int64(st, 2, account_id);
        r = finish_step(st, rc);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db);
}

int store_acme_order_link_authz(Store *s, int64_t order_id, int64_t authz_id) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s, "INSERT INTO acme_order_authzs (order_id, authz_id) VALUES (?, ?)", &st);
        if (r < 0)
                return r;
        rc = rc ?: sqlite3_bind_int64(st, 1, order_id);
        rc = rc ?: sqlite3_bind_int64(st, 2, authz_id);
        r = bind_all_ok(rc);
        if (r < 0)
                return r;
        return store_sqlite_step_done(st);
}

int store_acme_order_get_authz_ids(Store *s, int64_t order_id, int64_t **ret_ids, size_t *ret_n) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_sqlite_stmt(s, "SELECT authz_id FROM acme_order_authzs WHERE order_id = ? "
                                 "ORDER BY authz_id", &st);
        if (r < 0)
                return r;
        r = bind_all_ok(sqlite3_bind_int64(st, 1, order_id));
        if (r < 0)
                return r;
        return collect_ids(st, SIZE_MAX, ret_ids, ret_n);
}

int store_acme_authz_get_order_ids(Store *s, int64_t authz_id, int64_t **ret_ids, size_t *ret_n) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_sqlite_stmt(s, "SELECT order_id FROM acme_order_authzs WHERE authz_id = ? "
                                 "ORDER BY order_id", &st);
        if (r < 0)
                return r;
        r = bind_all_ok(sqlite3_bind_int64(st, 1, authz_id));
        if (r < 0)
                return r;
        return collect_ids(st, SIZE_MAX, ret_ids, ret_n);
}

/* ---- authorizations ---- */

#define AUTHZ_COLUMNS "id, account_id, profile, identifier_type, identifier_value, wildcard, " \
                      "status, expires, created"

static int authz_from_row(sqlite3_stmt *st, AcmeAuthz **ret) {
        _cleanup_(acme_authz_freep) AcmeAuthz *a = NULL;
        bool ok = true;
        int r;

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->id = sqlite3_column_int64(st, 0);
        a->account_id = sqlite3_column_int64(st, 1);
        a->profile = column_strdup(st, 2, &ok);
        a->identifier_type = column_strdup(st, 3, &ok);
        a->identifier_value = column_strdup(st, 4, &ok);
        a->wildcard = sqlite3_column_int(st, 5) != 0;
        r = status_column(st, 6, &a->status);
        if (r < 0)
                return r;
        a->expires = sqlite3_column_int64(st, 7);
        a->created = sqlite3_column_int64(st, 8);
        if (!ok)
                return -ENOMEM;
        *ret = TAKE_PTR(a);
        return 0;
}

int store_acme_authz_insert(Store *s, const AcmeAuthz *a, int64_t *ret_id) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s,
                "INSERT INTO acme_authzs (account_id, profile, identifier_type, identifier_value, "
                "wildcard, status, expires, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", &st);
        if (r < 0)
                return r;
        rc = rc ?: sqlite3_bind_int64(st, 1, a->account_id);
        rc = rc ?: sqlite3_bind_text(st, 2, a->profile, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_text(st, 3, a->identifier_type, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_text(st, 4, a->identifier_value, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_int(st, 5, a->wildcard);
        rc = rc ?: bind_status(st, 6, a->status);
        rc = rc ?: sqlite3_bind_int64(st, 7, a->expires);
        rc = rc ?: sqlite3_bind_int64(st, 8, a->created);
        return finish_insert(s, st, rc, ret_id);
}

int store_acme_authz_get(Store *s, int64_t id, AcmeAuthz **ret) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_sqlite_stmt(s, "SELECT " AUTHZ_COLUMNS " FROM acme_authzs WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = step_row_by_id(st, id);
        if (r < 0)
                return r;
        return authz_from_row(st, ret);
}

int store_acme_authz_update(Store *s, int64_t id, AcmeStatus status, cf_time_t expires) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s, "UPDATE acme_authzs SET status = ?, expires = ? WHERE id = ?", &st);
        if (r < 0)
                return r;
        rc = rc ?: bind_status(st, 1, status);
        rc = rc ?: sqlite3_bind_int64(st, 2, expires);
        rc = rc ?: sqlite3_bind_int64(st, 3, id);
        r = finish_step(st, rc);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

int store_acme_authz_find_reusable(Store *s, int64_t account_id, const char *profile,
                                   const char *identifier_type, const char *identifier_value,
                                   bool wildcard, cf_time_t now, AcmeAuthz **ret) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s, "SELECT " AUTHZ_COLUMNS " FROM acme_authzs WHERE account_id = ? "
                                 "AND profile = ? AND identifier_type = ? AND identifier_value = ? "
                                 "AND wildcard = ? AND status = 'valid' AND expires > ? "
                                 "ORDER BY expires DESC LIMIT 1", &st);
        if (r < 0)
                return r;
        rc = rc ?: sqlite3_bind_int64(st, 1, account_id);
        rc = rc ?: sqlite3_bind_text(st, 2, profile, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_text(st, 3, identifier_type, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_text(st, 4, identifier_value, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_int(st, 5, wildcard);
        rc = rc ?: sqlite3_bind_int64(st, 6, now);
        r = bind_all_ok(rc);
        if (r < 0)
                return r;
        r = store_sqlite_step_row(st);
        if (r < 0)
                return r;
        return authz_from_row(st, ret);
}

/* ---- challenges ---- */

#define CHALLENGE_COLUMNS "id, authz_id, type, token, status, validated, error"

static int challenge_from_row(sqlite3_stmt *st, AcmeChallenge **ret) {
        _cleanup_(acme_challenge_freep) AcmeChallenge *c = NULL;
        bool ok = true;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->id = sqlite3_column_int64(st, 0);
        c->authz_id = sqlite3_column_int64(st, 1);
        c->type = column_strdup(st, 2, &ok);
        c->token = column_strdup(st, 3, &ok);
        r = status_column(st, 4, &c->status);
        if (r < 0)
                return r;
        c->validated = sqlite3_column_int64(st, 5);
        c->error = column_strdup(st, 6, &ok);
        if (!ok)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

int store_acme_challenge_insert(Store *s, const AcmeChallenge *c, int64_t *ret_id) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s, "INSERT INTO acme_challenges (authz_id, type, token, status, "
                                 "validated, error) VALUES (?, ?, ?, ?, ?, ?)", &st);
        if (r < 0)
                return r;
        rc = rc ?: sqlite3_bind_int64(st, 1, c->authz_id);
        rc = rc ?: sqlite3_bind_text(st, 2, c->type, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_text(st, 3, c->token, -1, SQLITE_STATIC);
        rc = rc ?: bind_status(st, 4, c->status);
        rc = rc ?: sqlite3_bind_int64(st, 5, c->validated);
        rc = rc ?: bind_text_or_null(st, 6, c->error);
        return finish_insert(s, st, rc, ret_id);
}

int store_acme_challenge_get(Store *s, int64_t id, AcmeChallenge **ret) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_sqlite_stmt(s, "SELECT " CHALLENGE_COLUMNS " FROM acme_challenges WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = step_row_by_id(st, id);
        if (r < 0)
                return r;
        return challenge_from_row(st, ret);
}

int store_acme_challenge_update(Store *s, const AcmeChallenge *c) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s, "UPDATE acme_challenges SET status = ?, validated = ?, error = ? "
                                 "WHERE id = ?", &st);
        if (r < 0)
                return r;
        rc = rc ?: bind_status(st, 1, c->status);
        rc = rc ?: sqlite3_bind_int64(st, 2, c->validated);
        rc = rc ?: bind_text_or_null(st, 3, c->error);
        rc = rc ?: sqlite3_bind_int64(st, 4, c->id);
        r = finish_step(st, rc);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

static int challenge_row(sqlite3_stmt *st, void **ret) {
        AcmeChallenge *c = NULL;
        int r = challenge_from_row(st, &c);

        *ret = c;
        return r;
}

static void challenge_element_free(void *c) {
        acme_challenge_free(c);
}

int store_acme_challenge_list_by_authz(Store *s, int64_t authz_id, AcmeChallenge ***ret) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_sqlite_stmt(s, "SELECT " CHALLENGE_COLUMNS " FROM acme_challenges "
                                 "WHERE authz_id = ? ORDER BY id", &st);
        if (r < 0)
                return r;
        r = bind_all_ok(sqlite3_bind_int64(st, 1, authz_id));
        if (r < 0)
                return r;
        return store_sqlite_collect(st, challenge_row, challenge_element_free, (void ***) ret);
}

/* ---- nonces and secrets ---- */

int store_acme_nonce_consume(Store *s, const char *nonce_id, cf_time_t expires, cf_time_t now) {
        STORE_SQLITE_HOLD(s);
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *purge = NULL;
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_OK;

        r = store_sqlite_stmt(s, "DELETE FROM acme_nonces WHERE expires < ?", &purge);
        if (r < 0)
                return r;
        r = bind_all_ok(sqlite3_bind_int64(purge, 1, now));
        if (r < 0)
                return r;
        r = store_sqlite_step_done(purge);
        if (r < 0)
                return r;

        r = store_sqlite_stmt(s, "INSERT INTO acme_nonces (id, expires) VALUES (?, ?)", &st);
        if (r < 0)
                return r;
        rc = rc ?: sqlite3_bind_text(st, 1, nonce_id, -1, SQLITE_STATIC);
        rc = rc ?: sqlite3_bind_int64(st, 2, expires);
        r = bind_all_ok(rc);
        if (r < 0)
                return r;
        return store_sqlite_step_done(st);
}

static int secret_get(Store *s, const char *name, uint8_t **ret, size_t *ret_size) {
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        uint8_t *v;
        int r, n;

        r = store_sqlite_stmt(s, "SELECT value FROM acme_secrets WHERE name = ?", &st);
        if (r < 0)
                return r;
        r = bind_all_ok(sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC));
        if (r < 0)
                return r;
        r = store_sqlite_step_row(st);
        if (r < 0)
                return r;
        n = sqlite3_column_bytes(st, 0);
        if (n <= 0)
                return -EIO;
        v = malloc(n);
        if (!v)
                return -ENOMEM;
        memcpy(v, sqlite3_column_blob(st, 0), n);
        *ret = v;
        *ret_size = n;
        return 0;
}

int store_acme_secret_get_or_create(Store *s, const char *name, const uint8_t *candidate,
                                    size_t candidate_size, uint8_t **ret, size_t *ret_size) {
        STORE_SQLITE_HOLD(s);
        uint8_t *value = NULL;
        size_t size = 0;
        int r;

        r = store_begin(s);
        if (r < 0)
                return r;
        {
                _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
                int rc = SQLITE_OK;

                r = store_sqlite_stmt(s, "INSERT OR IGNORE INTO acme_secrets (name, value) "
                                         "VALUES (?, ?)", &st);
                if (r < 0)
                        goto fail;
                rc = rc ?: sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
                rc = rc ?: sqlite3_bind_blob(st, 2, candidate, (int) candidate_size, SQLITE_STATIC);
                r = bind_all_ok(rc);
                if (r < 0)
                        goto fail;
                r = store_sqlite_step_done(st);
                if (r < 0)
                        goto fail;
        }
        r = secret_get(s, name, &value, &size);
        if (r < 0)
                goto fail;
        r = store_commit(s);
        if (r < 0) {
                explicit_bzero(value, size);
                free(value);
                goto fail;
        }
        *ret = value;
        *ret_size = size;
        return 0;
fail:
        store_rollback(s);
        return r;
}
