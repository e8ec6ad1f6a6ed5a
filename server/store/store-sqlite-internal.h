/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the SQLite backend files (store-sqlite*.c) only. Nothing outside server/store/
 * includes this: the rest of the server sees store.h and store-acme.h. */

#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>

#include "server/store/store.h"

#define STORE_SQLITE_STMT_CACHE_MAX 128

typedef struct StoreStmtCacheEntry {
        const char *sql;            /* static string: the cache is keyed by pointer */
        sqlite3_stmt *stmt;
} StoreStmtCacheEntry;

/* One Store (one SQLite connection, one page cache) is shared by every thread of the server:
 * with a connection per thread, each commit by one of them made SQLite drop the others' whole
 * page caches (WAL mode re-reads every page after another connection wrote), so most statements
 * started by reading their pages back through the kernel. lock serializes the connection: every
 * public store function holds it for its duration (recursive, so they nest), and store_begin()
 * holds it until the transaction's commit or rollback, so one thread's transaction never
 * interleaves with another thread's statements. */
struct Store {
        sqlite3 *db;
        pthread_mutex_t lock;
        bool in_transaction;
        pthread_t transaction_owner;
        StoreStmtCacheEntry stmt_cache[STORE_SQLITE_STMT_CACHE_MAX];
        size_t n_stmt_cache;
};

Store *store_sqlite_hold(Store *s);
void store_sqlite_releasep(Store **s);
/* First declaration of every public store function (so that it is released after the
 * function's statements were reset by their own cleanups). */
#define STORE_SQLITE_HOLD(s) \
        _cleanup_(store_sqlite_releasep) _unused_ Store *_store_hold_ = store_sqlite_hold(s)

/* SQLITE_BUSY/LOCKED → -EBUSY, CONSTRAINT → -EEXIST, NOMEM → -ENOMEM, TOOBIG → -E2BIG,
 * NOTFOUND/DONE-without-row → -ENOENT (callers decide), anything else → -EIO. */
int store_sqlite_errno(int rc);

/* A prepared statement for sql (a string literal), cached per connection, reset and with bindings
 * cleared. Use with _cleanup_(store_sqlite_resetp) so it is reset after use. */
int store_sqlite_stmt(Store *s, const char *sql, sqlite3_stmt **ret);
static inline void store_sqlite_resetp(sqlite3_stmt **st) {
        if (*st) {
                sqlite3_reset(*st);
                sqlite3_clear_bindings(*st);
        }
}

/* Steps a statement that returns no rows: 0 when done, else a negative errno. */
int store_sqlite_step_done(sqlite3_stmt *st);
/* Steps to the next row: 0 on a row, -ENOENT when there is none, else a negative errno. */
int store_sqlite_step_row(sqlite3_stmt *st);

/* The JSON array of "type:value" strings that the inventory and the approval queue keep
 * identifiers in (schema versions 1 and 3). from_json never returns NULL on success. */
int store_sqlite_identifiers_to_json(char **identifiers, char **ret);
int store_sqlite_identifiers_from_json(const char *text, char ***ret);

/* Steps st to its end and returns its rows, each made by from_row, as a NULL-terminated array
 * (an empty one when there are none); on failure frees what was made with free_element. */
typedef int (*StoreSqliteRowFunc)(sqlite3_stmt *st, void **ret);
int store_sqlite_collect(sqlite3_stmt *st, StoreSqliteRowFunc from_row, void (*free_element)(void *),
                         void ***ret);

/* Executes a statement with no result rows (BEGIN, DDL). */
int store_sqlite_exec(Store *s, const char *sql);

/* Versioned schema: migrations[i].version == i + 1, applied in order, each in its own
 * transaction, recorded with PRAGMA user_version. Version 1: core + inventory (store-sqlite.c's
 * owner). Version 2: ACME tables (the ACME front end's owner). Version 3: the approval queue
 * (store-sqlite-approval.c). Append only: a released migration is never edited. */
typedef struct StoreMigration {
        int version;
        const char *description;
        const char *sql;
} StoreMigration;

extern const StoreMigration store_sqlite_migrations[];
extern const size_t store_sqlite_n_migrations;
