/* SPDX-License-Identifier: Apache-2.0 */
/* The SQLite store: connection, statement cache, transactions and schema migrations. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "server/store/store-sqlite-internal.h"
#include "shared/log.h"

/* A writer waiting for another connection's transaction gives up after this long. */
#define STORE_SQLITE_BUSY_TIMEOUT_MS 10000

int store_sqlite_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
                return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_NOTFOUND:
        case SQLITE_DONE:
                return -ENOENT;
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
        case SQLITE_READONLY:
                return -EACCES;
        default:
                return -EIO;
        }
}

int store_sqlite_exec(Store *s, const char *sql) {
        char *err = NULL;
        int rc;

        rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
        if (rc != SQLITE_OK) {
                log_debug("SQLite statement failed: %s", err ? err : sqlite3_errstr(rc));
                sqlite3_free(err);
                return store_sqlite_errno(rc);
        }
        return 0;
}

int store_sqlite_step_done(sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        return rc == SQLITE_DONE ? 0 : store_sqlite_errno(rc);
}

int store_sqlite_step_row(sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                return 0;
        return rc == SQLITE_DONE ? -ENOENT : store_sqlite_errno(rc);
}

int store_sqlite_collect(sqlite3_stmt *st, StoreSqliteRowFunc from_row, void (*free_element)(void *),
                         void ***ret) {
        void **l;
        size_t n = 0, allocated = 1;
        int r;

        l = calloc(allocated, sizeof *l);
        if (!l)
                return -ENOMEM;
        for (;;) {
                r = store_sqlite_step_row(st);
                if (r == -ENOENT)
                        break;
                if (r < 0)
                        goto fail;
                if (n + 2 > allocated) {
                        size_t k = MAX(allocated * 2, (size_t) 16);
                        void **nl = reallocarray(l, k, sizeof *l);
                        if (!nl) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        l = nl;
                        allocated = k;
                }
                r = from_row(st, &l[n]);
                if (r < 0) {
                        l[n] = NULL;
                        goto fail;
                }
                l[++n] = NULL;
        }
        *ret = l;
        return 0;

fail:
        for (size_t i = 0; i < n; i++)
                free_element(l[i]);
        free(l);
        return r;
}

int store_sqlite_stmt(Store *s, const char *sql, sqlite3_stmt **ret) {
        sqlite3_stmt *st = NULL;
        int rc;

        for (size_t i = 0; i < s->n_stmt_cache; i++)
                if (s->stmt_cache[i].sql == sql) {
                        st = s->stmt_cache[i].stmt;
                        sqlite3_reset(st);
                        sqlite3_clear_bindings(st);
                        *ret = st;
                        return 0;
                }

        /* Every statement is a string literal in a backend file, so the number of distinct ones
         * is fixed at build time; running out means the constant must grow, not that we should
         * silently evict a statement a caller may still hold. */
        if (s->n_stmt_cache >= STORE_SQLITE_STMT_CACHE_MAX)
                return log_debug_errno(-E2BIG, "SQLite statement cache is full.");

        rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (rc != SQLITE_OK) {
                log_debug("Failed to prepare SQL '%s': %s", sql, sqlite3_errmsg(s->db));
                return store_sqlite_errno(rc);
        }

        s->stmt_cache[s->n_stmt_cache++] = (StoreStmtCacheEntry) { .sql = sql, .stmt = st };
        *ret = st;
        return 0;
}

/* BEGIN, COMMIT and ROLLBACK run several times per ACME request: through the statement cache
 * rather than sqlite3_exec(), which would parse them anew every time. */
static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";

static int store_sqlite_exec_cached(Store *s, const char *sql) {
        sqlite3_stmt *st;
        int r, rc;

        r = store_sqlite_stmt(s, sql, &st);
        if (r < 0)
                return r;
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
                log_debug("SQLite statement '%s' failed: %s", sql, sqlite3_errmsg(s->db));
                return store_sqlite_errno(rc);
        }
        return 0;
}

Store *store_sqlite_hold(Store *s) {
        if (s)
                pthread_mutex_lock(&s->lock);
        return s;
}

void store_sqlite_releasep(Store **s) {
        if (*s)
                pthread_mutex_unlock(&(*s)->lock);
}

/* Called with s->lock held. */
static bool store_own_transaction(const Store *s) {
        return s->in_transaction && pthread_equal(s->transaction_owner, pthread_self());
}

int store_begin(Store *s) {
        STORE_SQLITE_HOLD(s);
        int r;

        /* Another thread's transaction holds the lock until it ends, so an open one here is ours. */
        if (s->in_transaction)
                return -EBUSY;

        r = store_sqlite_exec_cached(s, sql_begin);
        if (r < 0)
                return r;
        s->in_transaction = true;
        s->transaction_owner = pthread_self();
        /* Held on behalf of the transaction, released by store_transaction_end(). */
        pthread_mutex_lock(&s->lock);
        return 0;
}

static void store_transaction_end(Store *s) {
        s->in_transaction = false;
        pthread_mutex_unlock(&s->lock);
}

int store_commit(Store *s) {
        STORE_SQLITE_HOLD(s);
        int r;

        if (!store_own_transaction(s))
                return -EINVAL;

        r = store_sqlite_exec_cached(s, sql_commit);
        if (r < 0) {
                /* A failed COMMIT may leave the transaction open; never leave it dangling. */
                store_rollback(s);
                return r;
        }
        store_transaction_end(s);
        return 0;
}

void store_rollback(Store *s) {
        STORE_SQLITE_HOLD(s);

        /* Only the calling thread's own transaction: another thread's is not ours to end. */
        if (!s || !store_own_transaction(s))
                return;

        if (sqlite3_get_autocommit(s->db) == 0)
                (void) store_sqlite_exec_cached(s, sql_rollback);
        store_transaction_end(s);
}

bool store_in_transaction(Store *s) {
        STORE_SQLITE_HOLD(s);

        return s && store_own_transaction(s);
}

static int store_get_user_version(Store *s, int *ret) {
        sqlite3_stmt *st = NULL;
        int rc, v;

        /* Not cached: PRAGMA results must be fresh on every read. */
        rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_sqlite_errno(rc);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                sqlite3_finalize(st);
                return rc == SQLITE_DONE ? -EIO : store_sqlite_errno(rc);
        }
        v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);

        *ret = v;
        return 0;
}

int store_schema_version(Store *s, int *ret) {
        return store_get_user_version(s, ret);
}

static int store_migrate(Store *s) {
        int r, version;

        r = store_get_user_version(s, &version);
        if (r < 0)
                return r;
        if (version > (int) store_sqlite_n_migrations)
                return log_debug_errno(-EPROTONOSUPPORT,
                                       "Database schema version %d is newer than this program (%zu).",
                                       version, store_sqlite_n_migrations);

        for (size_t i = 0; i < store_sqlite_n_migrations; i++) {
                const StoreMigration *m = &store_sqlite_migrations[i];
                char pragma[64];

                if (m->version != (int) i + 1)
                        return log_debug_errno(-EINVAL, "Migration %zu has version %d.", i, m->version);
                if (m->version <= version)
                        continue;

                r = store_begin(s);
                if (r < 0)
                        return r;

                /* Another process may have migrated while we waited for the write lock. */
                r = store_get_user_version(s, &version);
                if (r < 0)
                        goto fail;
                if (m->version <= version) {
                        store_rollback(s);
                        continue;
                }

                r = store_sqlite_exec(s, m->sql);
                if (r < 0) {
                        log_debug_errno(r, "Schema migration %d (%s) failed.", m->version, m->description);
                        goto fail;
                }

                snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", m->version);
                r = store_sqlite_exec(s, pragma);
                if (r < 0)
                        goto fail;

                r = store_commit(s);
                if (r < 0)
                        return r;
                version = m->version;
                log_debug("Applied schema migration %d: %s", m->version, m->description);
        }

        return 0;

fail:
        store_rollback(s);
        return r;
}

static int store_create_file(const char *path) {
        int fd;

        /* Created here rather than by SQLite so the database (and, since SQLite copies the
         * database's mode, its -wal and -shm files) is never readable by others.
         * O_EXCL: an existing database must never be opened and closed here. Closing any
         * descriptor of a file drops all of this process's POSIX locks on it, SQLite's included;
         * another process would then think it is the last user, checkpoint and delete the WAL
         * that our open connections still write to, and those writes would be lost. */
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return errno == EEXIST ? 0 : -errno;
        close(fd);
        return 0;
}

static int store_mutex_init(pthread_mutex_t *m) {
        pthread_mutexattr_t a;
        int r;

        r = -pthread_mutexattr_init(&a);
        if (r < 0)
                return r;
        r = -pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
        if (r == 0)
                r = -pthread_mutex_init(m, &a);
        pthread_mutexattr_destroy(&a);
        return r;
}

int store_open(const char *url, Store **ret) {
        _cleanup_(store_closep) Store *s = NULL;
        const char *path;
        int r, rc;

        if (!url || !ret)
                return -EINVAL;

        path = url;
        if (strncmp(path, "sqlite:", 7) == 0)
                path += 7;
        if (path[0] == '\0')
                return -EINVAL;

        if (strcmp(path, ":memory:") != 0) {
                r = store_create_file(path);
                if (r < 0)
                        return log_debug_errno(r, "Failed to create database '%s': %m", path);
        }

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        r = store_mutex_init(&s->lock);
        if (r < 0) {
                free(TAKE_PTR(s));
                return r;
        }

        rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                log_debug("Failed to open database '%s': %s", path,
                          s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
                return store_sqlite_errno(rc);
        }
        sqlite3_extended_result_codes(s->db, 1);

        rc = sqlite3_busy_timeout(s->db, STORE_SQLITE_BUSY_TIMEOUT_MS);
        if (rc != SQLITE_OK)
                return store_sqlite_errno(rc);

        r = store_sqlite_exec(s, "PRAGMA journal_mode = WAL");
        if (r < 0)
                return r;
        /* With WAL, NORMAL syncs only at checkpoints, not on every COMMIT: a committed
         * transaction survives a crash of the server (or any application), and only the last
         * transactions before a power loss or OS crash may roll back; the database stays
         * consistent either way. FULL would add an fsync to every ACME request. */
        r = store_sqlite_exec(s, "PRAGMA synchronous = NORMAL");
        if (r < 0)
                return r;
        r = store_sqlite_exec(s, "PRAGMA foreign_keys = ON");
        if (r < 0)
                return r;

        r = store_migrate(s);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_close(Store *s) {
        if (!s)
                return NULL;

        store_rollback(s);
        for (size_t i = 0; i < s->n_stmt_cache; i++)
                sqlite3_finalize(s->stmt_cache[i].stmt);
        sqlite3_close_v2(s->db);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}
