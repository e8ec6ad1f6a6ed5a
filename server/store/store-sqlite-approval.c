/* SPDX-License-Identifier: Apache-2.0 */
/* The approval queue on SQLite (schema version 3). Decisions are conditional UPDATEs (WHERE
 * state = 'pending', WHERE cert_serial IS NULL): two administrators, or two clients polling at
 * once, cannot both win, whatever transaction the caller has open. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/store-approval.h"
#include "server/store/store-sqlite-internal.h"
#include "shared/strv.h"

#define APPROVAL_COLUMNS                                                                    \
        "id, protocol, protocol_profile, ra_profile, reference, account_id, identifiers, "  \
        "subject, key, csr, created, state, decided, reason, cert_serial"

static const char *const approval_state_table[_APPROVAL_STATE_MAX] = {
        [APPROVAL_PENDING] = "pending",
        [APPROVAL_APPROVED] = "approved",
        [APPROVAL_REJECTED] = "rejected",
};

const char *approval_state_to_string(ApprovalState s) {
        if (s < 0 || s >= _APPROVAL_STATE_MAX)
                return NULL;
        return approval_state_table[s];
}

ApprovalState approval_state_from_string(const char *s) {
        if (!s)
                return _APPROVAL_STATE_INVALID;
        for (ApprovalState i = 0; i < _APPROVAL_STATE_MAX; i++)
                if (strcmp(approval_state_table[i], s) == 0)
                        return i;
        return _APPROVAL_STATE_INVALID;
}

ApprovalRequest *approval_request_free(ApprovalRequest *a) {
        if (!a)
                return NULL;
        free(a->protocol);
        free(a->protocol_profile);
        free(a->ra_profile);
        free(a->reference);
        strv_free(a->identifiers);
        free(a->subject);
        free(a->key);
        free(a->csr);
        free(a->reason);
        free(a->cert_serial);
        free(a);
        return NULL;
}

void approval_request_list_free(ApprovalRequest **l) {
        if (!l)
                return;
        for (ApprovalRequest **i = l; *i; i++)
                approval_request_free(*i);
        free(l);
}

static int bind_text(sqlite3_stmt *st, int idx, const char *s) {
        if (!s)
                return store_sqlite_errno(sqlite3_bind_null(st, idx));
        return store_sqlite_errno(sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT));
}

static int bind_int64(sqlite3_stmt *st, int idx, int64_t v) {
        return store_sqlite_errno(sqlite3_bind_int64(st, idx, v));
}

static int column_strdup(sqlite3_stmt *st, int col, char **ret) {
        const unsigned char *t;

        if (sqlite3_column_type(st, col) == SQLITE_NULL) {
                *ret = NULL;
                return 0;
        }
        t = sqlite3_column_text(st, col);
        if (!t)
                return -ENOMEM;
        *ret = strdup((const char *) t);
        return *ret ? 0 : -ENOMEM;
}

/* Reads a row selected with APPROVAL_COLUMNS. */
static int approval_from_row(sqlite3_stmt *st, ApprovalRequest **ret) {
        _cleanup_(approval_request_freep) ApprovalRequest *a = NULL;
        const void *blob;
        int r, n;

        a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;

        a->id = sqlite3_column_int64(st, 0);
        if ((r = column_strdup(st, 1, &a->protocol)) < 0 ||
            (r = column_strdup(st, 2, &a->protocol_profile)) < 0 ||
            (r = column_strdup(st, 3, &a->ra_profile)) < 0 ||
            (r = column_strdup(st, 4, &a->reference)) < 0)
                return r;
        a->account_id = sqlite3_column_int64(st, 5);
        r = store_sqlite_identifiers_from_json((const char *) sqlite3_column_text(st, 6) ?: "[]",
                                               &a->identifiers);
        if (r < 0)
                return r;
        if ((r = column_strdup(st, 7, &a->subject)) < 0 ||
            (r = column_strdup(st, 8, &a->key)) < 0)
                return r;

        blob = sqlite3_column_blob(st, 9);
        n = sqlite3_column_bytes(st, 9);
        if (blob && n > 0) {
                a->csr = malloc((size_t) n);
                if (!a->csr)
                        return -ENOMEM;
                memcpy(a->csr, blob, (size_t) n);
                a->csr_size = (size_t) n;
        }

        a->created = sqlite3_column_int64(st, 10);
        a->state = approval_state_from_string((const char *) sqlite3_column_text(st, 11));
        if (a->state < 0)
                return -EIO;    /* the CHECK constraint makes this a corrupted row */
        a->decided = sqlite3_column_int64(st, 12);
        if ((r = column_strdup(st, 13, &a->reason)) < 0 ||
            (r = column_strdup(st, 14, &a->cert_serial)) < 0)
                return r;

        *ret = TAKE_PTR(a);
        return 0;
}

int store_approval_insert(Store *s, const ApprovalRequest *a, int64_t *ret_id) {
        STORE_SQLITE_HOLD(s);
        static const char sql[] =
                "INSERT INTO approval_requests (protocol, protocol_profile, ra_profile, reference, "
                "account_id, identifiers, subject, key, csr, created, state) VALUES "
                "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending')";
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        _cleanup_free_ char *ids = NULL;
        int r;

        if (!s || !a || !a->protocol || !a->ra_profile || !a->reference || !a->csr || a->csr_size == 0 ||
            a->csr_size > INT32_MAX)
                return -EINVAL;

        r = store_sqlite_identifiers_to_json(a->identifiers, &ids);
        if (r < 0)
                return r;
        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        if ((r = bind_text(st, 1, a->protocol)) < 0 ||
            (r = bind_text(st, 2, a->protocol_profile)) < 0 ||
            (r = bind_text(st, 3, a->ra_profile)) < 0 ||
            (r = bind_text(st, 4, a->reference)) < 0 ||
            (r = bind_int64(st, 5, a->account_id)) < 0 ||
            (r = bind_text(st, 6, ids)) < 0 ||
            (r = bind_text(st, 7, a->subject)) < 0 ||
            (r = bind_text(st, 8, a->key)) < 0 ||
            (r = store_sqlite_errno(sqlite3_bind_blob(st, 9, a->csr, (int) a->csr_size, SQLITE_TRANSIENT))) < 0 ||
            (r = bind_int64(st, 10, a->created)) < 0)
                return r;
        r = store_sqlite_step_done(st);
        if (r < 0)
                return r;

        if (ret_id)
                *ret_id = sqlite3_last_insert_rowid(s->db);
        return 0;
}

int store_approval_get(Store *s, int64_t id, ApprovalRequest **ret) {
        STORE_SQLITE_HOLD(s);
        static const char sql[] = "SELECT " APPROVAL_COLUMNS " FROM approval_requests WHERE id = ?1";
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        if (!s || !ret)
                return -EINVAL;
        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        r = bind_int64(st, 1, id);
        if (r < 0)
                return r;
        r = store_sqlite_step_row(st);
        if (r < 0)
                return r;
        return approval_from_row(st, ret);
}

int store_approval_get_by_reference(Store *s, const char *protocol, const char *reference,
                                    ApprovalRequest **ret) {
        STORE_SQLITE_HOLD(s);
        static const char sql[] =
                "SELECT " APPROVAL_COLUMNS " FROM approval_requests WHERE protocol = ?1 AND reference = ?2";
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        if (!s || !protocol || !reference || !ret)
                return -EINVAL;
        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        if ((r = bind_text(st, 1, protocol)) < 0 ||
            (r = bind_text(st, 2, reference)) < 0)
                return r;
        r = store_sqlite_step_row(st);
        if (r < 0)
                return r;
        return approval_from_row(st, ret);
}

int store_approval_get_state(Store *s, const char *protocol, const char *reference,
                             ApprovalState *ret_state, char **ret_reason, char **ret_serial) {
        STORE_SQLITE_HOLD(s);
        static const char sql[] =
                "SELECT state, reason, cert_serial FROM approval_requests WHERE protocol = ?1 AND reference = ?2";
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        _cleanup_free_ char *reason = NULL, *serial = NULL;
        ApprovalState state;
        int r;

        if (!s || !protocol || !reference)
                return -EINVAL;
        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        if ((r = bind_text(st, 1, protocol)) < 0 ||
            (r = bind_text(st, 2, reference)) < 0)
                return r;
        r = store_sqlite_step_row(st);
        if (r < 0)
                return r;

        state = approval_state_from_string((const char *) sqlite3_column_text(st, 0));
        if (state < 0)
                return -EIO;
        if (ret_reason && (r = column_strdup(st, 1, &reason)) < 0)
                return r;
        if (ret_serial && (r = column_strdup(st, 2, &serial)) < 0)
                return r;

        if (ret_state)
                *ret_state = state;
        if (ret_reason)
                *ret_reason = TAKE_PTR(reason);
        if (ret_serial)
                *ret_serial = TAKE_PTR(serial);
        return 0;
}

static int approval_row(sqlite3_stmt *st, void **ret) {
        ApprovalRequest *a = NULL;
        int r = approval_from_row(st, &a);

        *ret = a;
        return r;
}

static void approval_element_free(void *a) {
        approval_request_free(a);
}

int store_approval_list(Store *s, bool pending_only, ApprovalRequest ***ret) {
        STORE_SQLITE_HOLD(s);
        static const char sql[] =
                "SELECT " APPROVAL_COLUMNS " FROM approval_requests "
                "WHERE (?1 = 0 OR state = 'pending') ORDER BY id ASC";
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        int r;

        if (!s || !ret)
                return -EINVAL;
        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        r = store_sqlite_errno(sqlite3_bind_int(st, 1, pending_only));
        if (r < 0)
                return r;

        return store_sqlite_collect(st, approval_row, approval_element_free, (void ***) ret);
}

/* Nothing changed: -ENOENT if the request does not exist, else 0 with its state. */
static int approval_current(Store *s, int64_t id, ApprovalState *ret_state) {
        static const char sql[] = "SELECT state FROM approval_requests WHERE id = ?1";
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        ApprovalState state;
        int r;

        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        r = bind_int64(st, 1, id);
        if (r < 0)
                return r;
        r = store_sqlite_step_row(st);
        if (r < 0)
                return r;
        state = approval_state_from_string((const char *) sqlite3_column_text(st, 0));
        if (state < 0)
                return -EIO;
        *ret_state = state;
        return 0;
}

int store_approval_decide(Store *s, int64_t id, ApprovalState state, const char *reason, cf_time_t when) {
        STORE_SQLITE_HOLD(s);
        static const char sql[] =
                "UPDATE approval_requests SET state = ?2, reason = ?3, decided = ?4 "
                "WHERE id = ?1 AND state = 'pending'";
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        ApprovalState cur;
        int r;

        if (!s || (state != APPROVAL_APPROVED && state != APPROVAL_REJECTED))
                return -EINVAL;
        if (state != APPROVAL_REJECTED)
                reason = NULL;
        if (reason && strlen(reason) > APPROVAL_REASON_MAX)
                return -E2BIG;

        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        if ((r = bind_int64(st, 1, id)) < 0 ||
            (r = bind_text(st, 2, approval_state_to_string(state))) < 0 ||
            (r = bind_text(st, 3, reason)) < 0 ||
            (r = bind_int64(st, 4, when)) < 0)
                return r;
        r = store_sqlite_step_done(st);
        if (r < 0)
                return r;
        if (sqlite3_changes(s->db) > 0)
                return 0;

        r = approval_current(s, id, &cur);
        return r < 0 ? r : -EALREADY;
}

int store_approval_set_issued(Store *s, int64_t id, const char *serial) {
        STORE_SQLITE_HOLD(s);
        static const char sql[] =
                "UPDATE approval_requests SET cert_serial = ?2 "
                "WHERE id = ?1 AND state = 'approved' AND cert_serial IS NULL";
        _cleanup_(store_sqlite_resetp) sqlite3_stmt *st = NULL;
        ApprovalState cur;
        int r;

        if (!s || !serial)
                return -EINVAL;

        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        if ((r = bind_int64(st, 1, id)) < 0 ||
            (r = bind_text(st, 2, serial)) < 0)
                return r;
        r = store_sqlite_step_done(st);
        if (r < 0)
                return r;
        if (sqlite3_changes(s->db) > 0)
                return 0;

        r = approval_current(s, id, &cur);
        if (r < 0)
                return r;
        return cur == APPROVAL_APPROVED ? -EALREADY : -EPERM;
}
