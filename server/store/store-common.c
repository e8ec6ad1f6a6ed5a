/* SPDX-License-Identifier: Apache-2.0 */
/* Backend-independent parts of the store interface. */

#include <string.h>

#include "server/store/store.h"

static const char *const cert_status_table[_CERT_STATUS_MAX] = {
        [CERT_STATUS_VALID] = "valid",
        [CERT_STATUS_REVOKED] = "revoked",
};

const char *cert_status_to_string(CertStatus s) {
        if (s < 0 || s >= _CERT_STATUS_MAX)
                return NULL;
        return cert_status_table[s];
}

CertStatus cert_status_from_string(const char *s) {
        if (!s)
                return _CERT_STATUS_INVALID;
        for (CertStatus i = 0; i < _CERT_STATUS_MAX; i++)
                if (strcmp(cert_status_table[i], s) == 0)
                        return i;
        return _CERT_STATUS_INVALID;
}

InventoryCert *inventory_cert_free(InventoryCert *c) {
        if (!c)
                return NULL;

        free(c->serial);
        free(c->protocol);
        free(c->protocol_profile);
        free(c->ra_profile);
        free(c->ca);
        strv_freep(&c->identifiers);
        free(c->subject);
        free(c->ari_cert_id);
        free(c->replaces);
        free(c->replaced_by);
        free(c->pem);
        free(c->chain_pem);
        free(c);
        return NULL;
}

void inventory_cert_list_free(InventoryCert **l) {
        if (!l)
                return;
        for (InventoryCert **i = l; *i; i++)
                inventory_cert_free(*i);
        free(l);
}
