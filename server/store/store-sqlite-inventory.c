/* SPDX-License-Identifier: Apache-2.0 */
/* The certificate inventory on SQLite. Identifiers are kept as a JSON array of "type:value"
 * strings in one column (see the schema, version 1). */

#include <errno.h>
#include <string.h>

#include <json-c/json.h>

#include "server/store/store-sqlite-internal.h"
#include "shared/errors.h"
#include "shared/json-util.h"
#include "shared/strv.h"

#define INVENTORY_IDENTIFIERS_JSON_MAX (1024u * 1024u)

#define INVENTORY_COLUMNS                                                                   \
        "serial, protocol, protocol_profile, ra_profile, ca, account_id, identifiers, "     \
        "subject, not_before, not_after, issued_at, status, revocation_reason, revoked_at, " \
        "ari_cert_id, replaces, replaced_by, renew_now, pem, chain_pem"

static int bind_text_or_null(sqlite3_stmt *st, int idx, const char *s) {
        int rc;

        if (s)
                rc = sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
        else
                rc = sqlite3_bind_null(st, idx);
        return store_sqlite_errno(rc);
}

static int column_strdup(sqlite3_stmt *st, int col, char **ret) {
        const unsigned char *t;
        char *s;

        if (sqlite3_column_type(st, col) == SQLITE_NULL) {
                *ret = NULL;
                return 0;
        }
        t = sqlite3_column_text(st, col);
        if (!t)
                return -ENOMEM;
        s = strdup((const char *) t);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int store_sqlite_identifiers_to_json(char **identifiers, char **ret) {
        _cleanup_(json_object_putp) json_object *a = NULL;
        const char *text;
        char *s;

        a = json_object_new_array();
        if (!a)
                return -ENOMEM;
        for (char **i = identifiers; i && *i; i++) {
                json_object *v = json_object_new_string(*i);
                if (!v || json_object_array_add(a, v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }
        text = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        s = strdup(text);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int store_sqlite_identifiers_from_json(const char *text, char ***ret) {
        _cleanup_(json_object_putp) json_object *a = NULL;
        _cleanup_(strv_freep) char **l = NULL;
        size_t n;
        int r;

        r = json_parse_strict(text, strlen(text), INVENTORY_IDENTIFIERS_JSON_MAX, &a);
        if (r < 0)
                return r;
        if (!json_object_is_type(a, json_type_array))
                return -EBADMSG;

        n = json_object_array_length(a);
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(a, i);
                if (!json_object_is_type(v, json_type_string))
                        return -EBADMSG;
                r = strv_extend(&l, json_object_get_string(v));
                if (r < 0)
                        return r;
        }
        if (!l) {
                l = calloc(1, sizeof(char *));
                if (!l)
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(l);
        return 0;
}

/* Reads a row selected with INVENTORY_COLUMNS. */
static int inventory_cert_from_row(sqlite3_stmt *st, InventoryCert **ret) {
        _cleanup_(inventory_cert_freep) InventoryCert *c = NULL;
        const char *text;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;

        if ((r = column_strdup(st, 0, &c->serial)) < 0 ||
            (r = column_strdup(st, 1, &c->protocol)) < 0 ||
            (r = column_strdup(st, 2, &c->protocol_profile)) < 0 ||
            (r = column_strdup(st, 3, &c->ra_profile)) < 0 ||
            (r = column_strdup(st, 4, &c->ca)) < 0)
                return r;
        c->account_id = sqlite3_column_int64(st, 5);

        text = (const char *) sqlite3_column_text(st, 6);
        r = store_sqlite_identifiers_from_json(text ?: "[]", &c->identifiers);
        if (r < 0)
                return r;

        r = column_strdup(st, 7, &c->subject);
        if (r < 0)
                return r;
        c->not_before = sqlite3_column_int64(st, 8);
        c->not_after = sqlite3_column_int64(st, 9);
        c->issued_at = sqlite3_column_int64(st, 10);

        text = (const char *) sqlite3_column_text(st, 11);
        c->status = cert_status_from_string(text);
        if (c->status < 0)
                return -EBADMSG;
        c->revocation_reason = sqlite3_column_int(st, 12);
        c->revoked_at = sqlite3_column_int64(st, 13);

        if ((r = column_strdup(st, 14, &c->ari_cert_id)) < 0 ||
            (r = column_strdup(st, 15, &c->replaces)) < 0 ||
            (r = column_strdup(st, 16, &c->replaced_by)) < 0)
                return r;
        c->renew_now = sqlite3_column_int(st, 17) != 0;
        if ((r = column_strdup(st, 18, &c->pem)) < 0 ||
            (r = column_strdup(st, 19, &c->chain_pem)) < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

int store_inventory_insert(Store *s, const InventoryCert *c) {
        STORE_SQLITE_HOLD(s);
        static const char sql[] =
                "INSERT INTO inventory (" INVENTORY_COLUMNS ") VALUES "
                "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)";
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        _cleanup_free_ char *ids = NULL;
        const char *status;
        int r;

        if (!s || !c || !c->serial || !c->protocol || !c->pem)
                return -EINVAL;
        status = cert_status_to_string(c->status);
        if (!status)
                return -EINVAL;

        r = store_sqlite_identifiers_to_json(c->identifiers, &ids);
        if (r < 0)
                return r;

        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;

        if ((r = bind_text_or_null(st, 1, c->serial)) < 0 ||
            (r = bind_text_or_null(st, 2, c->protocol)) < 0 ||
            (r = bind_text_or_null(st, 3, c->protocol_profile)) < 0 ||
            (r = bind_text_or_null(st, 4, c->ra_profile)) < 0 ||
            (r = bind_text_or_null(st, 5, c->ca)) < 0 ||
            (r = store_sqlite_errno(sqlite3_bind_int64(st, 6, c->account_id))) < 0 ||
            (r = bind_text_or_null(st, 7, ids)) < 0 ||
            (r = bind_text_or_null(st, 8, c->subject)) < 0 ||
            (r = store_sqlite_errno(sqlite3_bind_int64(st, 9, c->not_before))) < 0 ||
            (r = store_sqlite_errno(sqlite3_bind_int64(st, 10, c->not_after))) < 0 ||
            (r = store_sqlite_errno(sqlite3_bind_int64(st, 11, c->issued_at))) < 0 ||
            (r = bind_text_or_null(st, 12, status)) < 0 ||
            (r = store_sqlite_errno(sqlite3_bind_int(st, 13, c->status == CERT_STATUS_REVOKED ? c->revocation_reason : -1))) < 0 ||
            (r = store_sqlite_errno(sqlite3_bind_int64(st, 14, c->status == CERT_STATUS_REVOKED ? c->revoked_at : 0))) < 0 ||
            (r = bind_text_or_null(st, 15, c->ari_cert_id)) < 0 ||
            (r = bind_text_or_null(st, 16, c->replaces)) < 0 ||
            (r = bind_text_or_null(st, 17, c->replaced_by)) < 0 ||
            (r = store_sqlite_errno(sqlite3_bind_int(st, 18, c->renew_now))) < 0 ||
            (r = bind_text_or_null(st, 19, c->pem)) < 0 ||
            (r = bind_text_or_null(st, 20, c->chain_pem)) < 0)
                return r;

        return store_sqlite_step_done(st);
}

static int inventory_get_one(Store *s, const char *sql, const char *key, InventoryCert **ret) {
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        if (!s || !key || !ret)
                return -EINVAL;

        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        r = bind_text_or_null(st, 1, key);
        if (r < 0)
                return r;

        r = store_sqlite_step_row(st);
        if (r < 0)
                return r;

        return inventory_cert_from_row(st, ret);
}

int store_inventory_get(Store *s, const char *serial, InventoryCert **ret) {
        STORE_SQLITE_HOLD(s);
        static const char sql[] = "SELECT " INVENTORY_COLUMNS " FROM inventory WHERE serial = ?1";
        return inventory_get_one(s, sql, serial, ret);
}

int store_inventory_get_by_ari_id(Store *s, const char *ari_cert_id, InventoryCert **ret) {
        STORE_SQLITE_HOLD(s);
        static const char sql[] = "SELECT " INVENTORY_COLUMNS " FROM inventory WHERE ari_cert_id = ?1";
        return inventory_get_one(s, sql, ari_cert_id, ret);
}

static int inventory_row(sqlite3_stmt *st, void **ret) {
        InventoryCert *c = NULL;
        int r = inventory_cert_from_row(st, &c);

        *ret = c;
        return r;
}

static void inventory_element_free(void *c) {
        inventory_cert_free(c);
}

int store_inventory_list(Store *s, const InventoryFilter *f, InventoryCert ***ret) {
        STORE_SQLITE_HOLD(s);
        /* One statement for every filter combination (a parameter set to its "any" value
         * disables its condition), so it stays in the statement cache. */
        static const char sql[] =
                "SELECT " INVENTORY_COLUMNS " FROM inventory WHERE "
                "(?1 = 0 OR (not_after < ?1 AND status = 'valid')) AND "
                "(?2 IS NULL OR protocol_profile = ?2 OR ra_profile = ?2) AND "
                "(?3 IS NULL OR protocol = ?3) AND "
                "(?4 = 0 OR account_id = ?4) "
                "ORDER BY not_after ASC, serial ASC LIMIT ?5";
        static const InventoryFilter no_filter = {};
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        if (!s || !ret)
                return -EINVAL;
        if (!f)
                f = &no_filter;

        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        if ((r = store_sqlite_errno(sqlite3_bind_int64(st, 1, f->expiring_before))) < 0 ||
            (r = bind_text_or_null(st, 2, f->profile)) < 0 ||
            (r = bind_text_or_null(st, 3, f->protocol)) < 0 ||
            (r = store_sqlite_errno(sqlite3_bind_int64(st, 4, f->account_id))) < 0 ||
            (r = store_sqlite_errno(sqlite3_bind_int64(st, 5, f->limit > 0 ? (sqlite3_int64) f->limit : -1))) < 0)
                return r;

        return store_sqlite_collect(st, inventory_row, inventory_element_free, (void ***) ret);
}

static int inventory_get_state(Store *s, const char *serial, CertStatus *ret_status,
                               bool *ret_replaced) {
        static const char sql[] =
                "SELECT status, replaced_by IS NOT NULL FROM inventory WHERE serial = ?1";
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        r = bind_text_or_null(st, 1, serial);
        if (r < 0)
                return r;

        r = store_sqlite_step_row(st);
        if (r < 0)
                return r;

        if (ret_status)
                *ret_status = cert_status_from_string((const char *) sqlite3_column_text(st, 0));
        if (ret_replaced)
                *ret_replaced = sqlite3_column_int(st, 1) != 0;
        return 0;
}

int store_inventory_revoke(Store *s, const char *serial, int reason, cf_time_t when) {
        STORE_SQLITE_HOLD(s);
        static const char sql[] =
                "UPDATE inventory SET status = 'revoked', revocation_reason = ?2, revoked_at = ?3 "
                "WHERE serial = ?1 AND status = 'valid'";
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        if (!s || !serial || reason < 0)
                return -EINVAL;

        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        if ((r = bind_text_or_null(st, 1, serial)) < 0 ||
            (r = store_sqlite_errno(sqlite3_bind_int(st, 2, reason))) < 0 ||
            (r = store_sqlite_errno(sqlite3_bind_int64(st, 3, when))) < 0)
                return r;
        r = store_sqlite_step_done(st);
        if (r < 0)
                return r;
        if (sqlite3_changes(s->db) > 0)
                return 0;

        /* Nothing changed: tell "unknown" from "already revoked". */
        r = inventory_get_state(s, serial, NULL, NULL);
        if (r < 0)
                return r;
        return -CF_E_ALREADY_REVOKED;
}

int store_inventory_set_renew_now(Store *s, const char *serial, bool renew_now) {
        STORE_SQLITE_HOLD(s);
        static const char sql[] = "UPDATE inventory SET renew_now = ?2 WHERE serial = ?1";
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        if (!s || !serial)
                return -EINVAL;

        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        if ((r = bind_text_or_null(st, 1, serial)) < 0 ||
            (r = store_sqlite_errno(sqlite3_bind_int(st, 2, renew_now))) < 0)
                return r;
        r = store_sqlite_step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

static int inventory_mark_replaced_locked(Store *s, const char *old_serial, const char *new_serial) {
        static const char sql_old[] =
                "UPDATE inventory SET replaced_by = ?2 WHERE serial = ?1 AND replaced_by IS NULL";
        static const char sql_new[] = "UPDATE inventory SET replaces = ?1 WHERE serial = ?2";
        int r;

        {
                _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;

                r = store_sqlite_stmt(s, sql_old, &st);
                if (r < 0)
                        return r;
                if ((r = bind_text_or_null(st, 1, old_serial)) < 0 ||
                    (r = bind_text_or_null(st, 2, new_serial)) < 0)
                        return r;
                r = store_sqlite_step_done(st);
                if (r < 0)
                        return r;
                if (sqlite3_changes(s->db) == 0) {
                        r = inventory_get_state(s, old_serial, NULL, NULL);
                        return r < 0 ? r : -CF_E_ALREADY_REPLACED;
                }
        }
        {
                _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;

                r = store_sqlite_stmt(s, sql_new, &st);
                if (r < 0)
                        return r;
                if ((r = bind_text_or_null(st, 1, old_serial)) < 0 ||
                    (r = bind_text_or_null(st, 2, new_serial)) < 0)
                        return r;
                r = store_sqlite_step_done(st);
                if (r < 0)
                        return r;
                if (sqlite3_changes(s->db) == 0)
                        return -ENOENT;
        }
        return 0;
}

int store_inventory_mark_replaced(Store *s, const char *old_serial, const char *new_serial) {
        STORE_SQLITE_HOLD(s);
        int r;

        if (!s || !old_serial || !new_serial || strcmp(old_serial, new_serial) == 0)
                return -EINVAL;

        if (s->in_transaction)
                return inventory_mark_replaced_locked(s, old_serial, new_serial);

        /* Two rows change together: never leave one half of the link behind. */
        r = store_begin(s);
        if (r < 0)
                return r;
        r = inventory_mark_replaced_locked(s, old_serial, new_serial);
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        return store_commit(s);
}
