/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the files of server/ca/ only: the backend vtable behind ca.h. */

#include "server/ca/ca.h"

typedef struct CaBackendVTable {
        const char *name;                   /* Backend= value */
        int (*open)(CaBackend *ca, const CaConfig *config);
        /* Called after the common checks of ca_issue(); the request is within the profile. */
        int (*issue)(CaBackend *ca, const RaProfile *profile, const CaIssueRequest *req,
                     X509 **ret_cert, STACK_OF(X509) **ret_chain);
        int (*revoke)(CaBackend *ca, X509 *cert, int reason);
        void (*done)(CaBackend *ca);
} CaBackendVTable;

struct CaBackend {
        unsigned n_ref;
        const CaBackendVTable *vtable;
        char *name;                         /* the [CA NAME] this backend serves */
        X509 *issuer;                       /* read-only after open: shared between threads */
        X509 *root;
        void *data;                         /* backend-specific */
};

extern const CaBackendVTable ca_local_vtable;

/* A random positive serial of exactly CA_SERIAL_BYTES bytes (top bit clear, first byte non-zero,
 * so DER never adds or drops a byte). */
#define CA_SERIAL_BYTES 16
int ca_random_serial(ASN1_INTEGER **ret);
