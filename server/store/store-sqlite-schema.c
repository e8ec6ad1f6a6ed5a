/* SPDX-License-Identifier: Apache-2.0 */
/* The versioned SQLite schema. Append only: a released migration is never edited; a change is a
 * new entry. migrations[i].version must be i + 1. */

#include "server/store/store-sqlite-internal.h"

const StoreMigration store_sqlite_migrations[] = {
        {
                .version = 1,
                .description = "meta and certificate inventory",
                /* identifiers: a JSON array of "type:value" strings ("dns:a.example",
                 * "ip:10.0.0.1"). Nothing queries inside it, so a child table would only cost
                 * joins; if a search by identifier is ever needed, a migration adds one.
                 * replaces/replaced_by carry no foreign key: the replaced certificate may come
                 * from an import with no row here, and the RA checks the link itself. */
                .sql =
                "CREATE TABLE meta (\n"
                "        key TEXT PRIMARY KEY NOT NULL,\n"
                "        value TEXT NOT NULL\n"
                ");\n"
                "INSERT INTO meta (key, value) VALUES ('created', CAST(strftime('%s', 'now') AS TEXT));\n"
                "CREATE TABLE inventory (\n"
                "        serial TEXT PRIMARY KEY NOT NULL,\n"
                "        protocol TEXT NOT NULL,\n"
                "        protocol_profile TEXT,\n"
                "        ra_profile TEXT,\n"
                "        ca TEXT,\n"
                "        account_id INTEGER NOT NULL DEFAULT 0,\n"
                "        identifiers TEXT NOT NULL DEFAULT '[]',\n"
                "        subject TEXT,\n"
                "        not_before INTEGER NOT NULL,\n"
                "        not_after INTEGER NOT NULL,\n"
                "        issued_at INTEGER NOT NULL,\n"
                "        status TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),\n"
                "        revocation_reason INTEGER NOT NULL DEFAULT -1,\n"
                "        revoked_at INTEGER NOT NULL DEFAULT 0,\n"
                "        ari_cert_id TEXT,\n"
                "        replaces TEXT,\n"
                "        replaced_by TEXT,\n"
                "        renew_now INTEGER NOT NULL DEFAULT 0,\n"
                "        pem TEXT NOT NULL,\n"
                "        chain_pem TEXT\n"
                ");\n"
                "CREATE INDEX inventory_not_after ON inventory (not_after);\n"
                "CREATE UNIQUE INDEX inventory_ari_cert_id ON inventory (ari_cert_id);\n"
                "CREATE INDEX inventory_protocol_profile ON inventory (protocol_profile);\n"
                "CREATE INDEX inventory_ra_profile ON inventory (ra_profile);\n"
                "CREATE INDEX inventory_account_id ON inventory (account_id);\n",
        },
        {
                .version = 2,
                .description = "ACME accounts, orders, authorizations, challenges, nonces",
                /* profile is the ACME route key ("default" or "raProfile/web"): accounts are
                 * separate per URL namespace. identifiers/error/contacts are JSON texts only
                 * the front end reads. acme_nonces holds replay records (single-use nonces
                 * shared by every instance); acme_secrets the nonce key. */
                .sql =
                "CREATE TABLE acme_accounts (\n"
                "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                "        profile TEXT NOT NULL,\n"
                "        jwk TEXT NOT NULL,\n"
                "        thumbprint TEXT NOT NULL,\n"
                "        status TEXT NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),\n"
                "        contacts TEXT NOT NULL DEFAULT '[]',\n"
                "        tos_agreed INTEGER NOT NULL DEFAULT 0,\n"
                "        eab_kid TEXT,\n"
                "        created INTEGER NOT NULL,\n"
                "        UNIQUE (profile, thumbprint)\n"
                ");\n"
                "CREATE TABLE acme_orders (\n"
                "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                "        account_id INTEGER NOT NULL REFERENCES acme_accounts (id),\n"
                "        profile TEXT NOT NULL,\n"
                "        status TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),\n"
                "        identifiers TEXT NOT NULL,\n"
                "        not_before INTEGER NOT NULL DEFAULT 0,\n"
                "        not_after INTEGER NOT NULL DEFAULT 0,\n"
                "        expires INTEGER NOT NULL,\n"
                "        error TEXT,\n"
                "        csr BLOB,\n"
                "        cert_serial TEXT,\n"
                "        replaces TEXT,\n"
                "        created INTEGER NOT NULL\n"
                ");\n"
                "CREATE INDEX acme_orders_account ON acme_orders (account_id);\n"
                "CREATE INDEX acme_orders_replaces ON acme_orders (replaces);\n"
                "CREATE TABLE acme_authzs (\n"
                "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                "        account_id INTEGER NOT NULL REFERENCES acme_accounts (id),\n"
                "        profile TEXT NOT NULL,\n"
                "        identifier_type TEXT NOT NULL CHECK (identifier_type IN ('dns', 'ip')),\n"
                "        identifier_value TEXT NOT NULL,\n"
                "        wildcard INTEGER NOT NULL DEFAULT 0,\n"
                "        status TEXT NOT NULL CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked')),\n"
                "        expires INTEGER NOT NULL,\n"
                "        created INTEGER NOT NULL\n"
                ");\n"
                "CREATE INDEX acme_authzs_reuse ON acme_authzs (account_id, identifier_type, identifier_value);\n"
                "CREATE TABLE acme_challenges (\n"
                "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                "        authz_id INTEGER NOT NULL REFERENCES acme_authzs (id),\n"
                "        type TEXT NOT NULL CHECK (type IN ('http-01', 'dns-01', 'tls-alpn-01')),\n"
                "        token TEXT NOT NULL,\n"
                "        status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),\n"
                "        validated INTEGER NOT NULL DEFAULT 0,\n"
                "        error TEXT\n"
                ");\n"
                "CREATE INDEX acme_challenges_authz ON acme_challenges (authz_id);\n"
                "CREATE TABLE acme_order_authzs (\n"
                "        order_id INTEGER NOT NULL REFERENCES acme_orders (id),\n"
                "        authz_id INTEGER NOT NULL REFERENCES acme_authzs (id),\n"
                "        PRIMARY KEY (order_id, authz_id)\n"
                ");\n"
                "CREATE INDEX acme_order_authzs_authz ON acme_order_authzs (authz_id);\n"
                "CREATE TABLE acme_nonces (\n"
                "        id TEXT PRIMARY KEY NOT NULL,\n"
                "        expires INTEGER NOT NULL\n"
                ");\n"
                "CREATE INDEX acme_nonces_expires ON acme_nonces (expires);\n"
                "CREATE TABLE acme_secrets (\n"
                "        name TEXT PRIMARY KEY NOT NULL,\n"
                "        value BLOB NOT NULL\n"
                ");\n",
        },
        {
                .version = 3,
                .description = "ACME nonce replay records keyed by (expires, id)",
                /* Every ACME request records its nonce. Keyed by the random id, each record went
                 * to a random leaf of the key's index plus the table and the expiry index: three
                 * pages written per request, and three more to purge an expired record. A
                 * nonce's expiry follows from its id (the id holds its timestamp), so (expires,
                 * id) is as unique as id; ordered by it, one table holds everything, records are
                 * appended at one end and purged from the other: about one page per request.
                 * The records of the old table are kept, so no nonce becomes reusable. */
                .sql =
                "CREATE TABLE acme_nonces_by_expiry (\n"
                "        expires INTEGER NOT NULL,\n"
                "        id TEXT NOT NULL,\n"
                "        PRIMARY KEY (expires, id)\n"
                ") WITHOUT ROWID;\n"
                "INSERT INTO acme_nonces_by_expiry (expires, id) SELECT expires, id FROM acme_nonces;\n"
                "DROP TABLE acme_nonces;\n"
                "ALTER TABLE acme_nonces_by_expiry RENAME TO acme_nonces;\n",
        },
        {
                .version = 4,
                .description = "approval queue for RA profiles with ApprovalRequired=yes",
                /* One row per enrollment request that needs an administrator's decision.
                 * reference is the protocol's own name for the request (ACME: the order id),
                 * UNIQUE with protocol so a request is queued once however often the client
                 * polls. subject/key/identifiers are what the administrator decides on, copied
                 * from the CSR when it arrived; csr is kept so the issuance checks the very CSR
                 * that was approved. cert_serial is set in the issuing transaction: a second
                 * concurrent attempt sees it and does not issue again. No foreign keys: the
                 * queue serves every protocol, not only ACME's tables. */
                .sql =
                "CREATE TABLE approval_requests (\n"
                "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                "        protocol TEXT NOT NULL,\n"
                "        protocol_profile TEXT,\n"
                "        ra_profile TEXT NOT NULL,\n"
                "        reference TEXT NOT NULL,\n"
                "        account_id INTEGER NOT NULL DEFAULT 0,\n"
                "        identifiers TEXT NOT NULL DEFAULT '[]',\n"
                "        subject TEXT,\n"
                "        key TEXT,\n"
                "        csr BLOB NOT NULL,\n"
                "        created INTEGER NOT NULL,\n"
                "        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected')),\n"
                "        decided INTEGER NOT NULL DEFAULT 0,\n"
                "        reason TEXT,\n"
                "        cert_serial TEXT,\n"
                "        UNIQUE (protocol, reference)\n"
                ");\n"
                "CREATE INDEX approval_requests_state ON approval_requests (state);\n",
        },
        {
                .version = 5,
                .description = "fewer index pages written per ACME order",
                /* Counted in the WAL under load: each b-tree an insert touches is one more 4 KiB
                 * page written per transaction. Almost no order replaces another, yet every
                 * order added a NULL to the replaces index: it now holds only the orders that
                 * do (SQLite uses a partial index for "replaces = ?", which implies NOT NULL).
                 * The order-authorization links were a rowid table plus an index for their
                 * primary key; keyed by that key (WITHOUT ROWID) they are one b-tree less.
                 * Nothing refers to the link table, so rebuilding it is safe; its rows are
                 * copied. Together: 2 of about 30 pages per order. */
                .sql =
                "DROP INDEX acme_orders_replaces;\n"
                "CREATE INDEX acme_orders_replaces ON acme_orders (replaces) WHERE replaces IS NOT NULL;\n"
                "CREATE TABLE acme_order_authzs_by_key (\n"
                "        order_id INTEGER NOT NULL REFERENCES acme_orders (id),\n"
                "        authz_id INTEGER NOT NULL REFERENCES acme_authzs (id),\n"
                "        PRIMARY KEY (order_id, authz_id)\n"
                ") WITHOUT ROWID;\n"
                "INSERT INTO acme_order_authzs_by_key (order_id, authz_id)\n"
                "        SELECT order_id, authz_id FROM acme_order_authzs;\n"
                "DROP TABLE acme_order_authzs;\n"
                "ALTER TABLE acme_order_authzs_by_key RENAME TO acme_order_authzs;\n"
                "CREATE INDEX acme_order_authzs_authz ON acme_order_authzs (authz_id);\n",
        },
};

const size_t store_sqlite_n_migrations = ELEMENTSOF(store_sqlite_migrations);
