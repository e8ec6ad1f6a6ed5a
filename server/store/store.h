/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The store interface: inventory, plus per-protocol state (ACME: store/store-acme.h).
 * Backends: store-sqlite*.c (default), store-pgsql*.c (later). No SQL outside backend files.
 *
 * A Store is one connection that any number of threads may share: each call holds it for its
 * duration, and a transaction holds it from store_begin() to its commit or rollback, so other
 * threads' calls wait for it (keep transactions short; never wait for another thread inside one).
 * Every state change runs inside store_begin()/store_commit() (or the function does it itself
 * when documented so). */

#include <stdbool.h>
#include <stdint.h>

#include "shared/macro.h"
#include "shared/time-util.h"

typedef struct Store Store;

/* "sqlite:/var/lib/certfleet/server/certfleet.db" or a bare path. Opens (creating the file
 * 0600), sets WAL and busy timeout, and applies pending schema migrations (versioned; each in its
 * own transaction). */
int store_open(const char *url, Store **ret);
Store *store_close(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_close);

/* Immediate-mode transaction (writers serialize here, not at commit). Not nestable. */
int store_begin(Store *s);
int store_commit(Store *s);
void store_rollback(Store *s);    /* no-op if no transaction is open */
/* Whether the calling thread has a transaction open on s. */
bool store_in_transaction(Store *s);

int store_schema_version(Store *s, int *ret);

typedef enum CertStatus {
        CERT_STATUS_VALID,
        CERT_STATUS_REVOKED,
        _CERT_STATUS_MAX,
        _CERT_STATUS_INVALID = -22,
} CertStatus;
const char *cert_status_to_string(CertStatus s);    /* "valid" "revoked" (expiry is computed) */
CertStatus cert_status_from_string(const char *s);

/* One row of the inventory: every certificate, from any protocol. */
typedef struct InventoryCert {
        char *serial;                  /* lower-case hex, primary key */
        char *protocol;                /* "acme" "scep" "cmp" "est" */
        char *protocol_profile;        /* ACME profile name etc. */
        char *ra_profile;
        char *ca;
        int64_t account_id;            /* ACME account, 0 if none */
        char **identifiers;            /* "dns:host.example", "ip:10.0.0.1" */
        char *subject;
        cf_time_t not_before;
        cf_time_t not_after;
        cf_time_t issued_at;
        CertStatus status;
        int revocation_reason;         /* RFC 5280 CRLReason, -1 if not revoked */
        cf_time_t revoked_at;          /* 0 if not revoked */
        char *ari_cert_id;             /* RFC 9773 CertID */
        char *replaces;                /* serial this certificate replaced, NULL */
        char *replaced_by;             /* serial that replaced this one, NULL */
        bool renew_now;                /* an admin asked for renewal (ARI window in the past) */
        char *pem;                     /* leaf certificate PEM */
        char *chain_pem;               /* issuing chain PEM (without the leaf) */
} InventoryCert;

InventoryCert *inventory_cert_free(InventoryCert *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(InventoryCert *, inventory_cert_free);
void inventory_cert_list_free(InventoryCert **l);   /* NULL-terminated array */

int store_inventory_insert(Store *s, const InventoryCert *c);
/* -ENOENT if absent. */
int store_inventory_get(Store *s, const char *serial, InventoryCert **ret);
int store_inventory_get_by_ari_id(Store *s, const char *ari_cert_id, InventoryCert **ret);

typedef struct InventoryFilter {
        cf_time_t expiring_before;     /* 0: no filter; else not_after < this and status valid */
        const char *profile;           /* matches protocol_profile or ra_profile; NULL: any */
        const char *protocol;          /* NULL: any */
        int64_t account_id;            /* 0: any */
        unsigned limit;                /* 0: no limit */
} InventoryFilter;
/* NULL-terminated array, ordered by not_after ascending. */
int store_inventory_list(Store *s, const InventoryFilter *f, InventoryCert ***ret);

/* -CF_E_ALREADY_REVOKED if already revoked, -ENOENT if unknown. */
int store_inventory_revoke(Store *s, const char *serial, int reason, cf_time_t when);
int store_inventory_set_renew_now(Store *s, const char *serial, bool renew_now);
/* Marks old_serial as replaced by new_serial (and new.replaces = old).
 * -CF_E_ALREADY_REPLACED if old is already replaced. */
int store_inventory_mark_replaced(Store *s, const char *old_serial, const char *new_serial);
