/* SPDX-License-Identifier: Apache-2.0 */
/* The CA interface: dispatch to the configured backend, and the profile checks every backend
 * gets before it signs. */

#include <errno.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>

#include "server/ca/ca-internal.h"
#include "server/ra/ra.h"
#include "shared/errors.h"
#include "shared/log.h"
#include "shared/random-util.h"

static const CaBackendVTable *const ca_backends[] = {
        &ca_local_vtable,
};

int ca_random_serial(ASN1_INTEGER **ret) {
        unsigned char b[CA_SERIAL_BYTES];
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        ASN1_INTEGER *i;
        int r;

        r = random_bytes(b, sizeof b);
        if (r < 0)
                return r;
        b[0] &= 0x7f;                   /* positive */
        while (b[0] == 0) {             /* exactly 16 bytes, no shorter encoding */
                r = random_bytes(b, 1);
                if (r < 0)
                        return r;
                b[0] &= 0x7f;
        }

        bn = BN_bin2bn(b, sizeof b, NULL);
        explicit_bzero(b, sizeof b);
        if (!bn)
                return -ENOMEM;
        i = BN_to_ASN1_INTEGER(bn, NULL);
        if (!i)
                return -ENOMEM;
        *ret = i;
        return 0;
}

int ca_backend_open(const CaConfig *config, CaBackend **ret) {
        _cleanup_(ca_backend_unrefp) CaBackend *ca = NULL;
        const CaBackendVTable *vt = NULL;
        int r;

        if (!config || !config->name || !ret)
                return -EINVAL;

        for (size_t i = 0; i < ELEMENTSOF(ca_backends); i++)
                if (strcmp(ca_backends[i]->name, config->backend ?: "local") == 0)
                        vt = ca_backends[i];
        if (!vt)
                return -EOPNOTSUPP;

        ca = calloc(1, sizeof *ca);
        if (!ca)
                return -ENOMEM;
        ca->n_ref = 1;
        ca->name = strdup(config->name);
        if (!ca->name)
                return -ENOMEM;

        r = vt->open(ca, config);
        if (r < 0)
                return r;
        ca->vtable = vt;       /* only now: done() runs for opened backends only */

        *ret = TAKE_PTR(ca);
        return 0;
}

CaBackend *ca_backend_ref(CaBackend *ca) {
        if (ca)
                __atomic_add_fetch(&ca->n_ref, 1, __ATOMIC_RELAXED);
        return ca;
}

CaBackend *ca_backend_unref(CaBackend *ca) {
        if (!ca)
                return NULL;
        if (__atomic_sub_fetch(&ca->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;

        if (ca->vtable && ca->vtable->done)
                ca->vtable->done(ca);
        X509_free(ca->issuer);
        X509_free(ca->root);
        free(ca->name);
        free(ca);
        return NULL;
}

X509 *ca_backend_get0_issuer(CaBackend *ca) {
        return ca ? ca->issuer : NULL;
}

X509 *ca_backend_get0_root(CaBackend *ca) {
        return ca ? ca->root : NULL;
}

static bool name_in(char **l, const char *s) {
        for (char **i = l; i && *i; i++)
                if (strcasecmp(*i, s) == 0)
                        return true;
        return false;
}

/* Defence in depth (DESIGN §2): whatever the front end and the RA claim, nothing outside the
 * profile gets signed. */
static int ca_check_request(CaBackend *ca, const RaProfile *profile, const CaIssueRequest *req) {
        const char *detail = NULL;
        size_t n = 0;
        int r;

        if (!profile->enabled)
                return -CF_E_DISABLED;
        if (!profile->ca || strcmp(profile->ca, ca->name) != 0)
                return log_debug_errno(-CF_E_UNAUTHORIZED, "RA profile '%s' does not use CA '%s'.",
                                       profile->name, ca->name);

        for (char **i = req->dns; i && *i; i++, n++) {
                r = ra_check_identifier(profile, IDENTIFIER_DNS, *i);
                if (r < 0)
                        return log_debug_errno(r, "CA '%s' refuses DNS name '%s'.", ca->name, *i);
        }
        for (char **i = req->ips; i && *i; i++, n++) {
                r = ra_check_identifier(profile, IDENTIFIER_IP, *i);
                if (r < 0)
                        return log_debug_errno(r, "CA '%s' refuses IP address '%s'.", ca->name, *i);
        }
        if (n == 0)
                return -CF_E_BAD_CSR;
        if (req->common_name && !name_in(req->dns, req->common_name) && !name_in(req->ips, req->common_name))
                return log_debug_errno(-CF_E_BAD_CSR, "Common name '%s' is not one of the identifiers.",
                                       req->common_name);

        r = ra_check_key(profile, req->public_key, &detail);
        if (r < 0)
                return log_debug_errno(r, "CA '%s' refuses the key: %s", ca->name, detail ?: "?");

        if (req->not_before == 0 || req->not_after == 0)
                return -EINVAL;
        r = ra_check_validity(profile, req->not_before, req->not_after);
        if (r < 0)
                return log_debug_errno(r, "CA '%s' refuses the validity period.", ca->name);
        return 0;
}

int ca_issue(CaBackend *ca, const RaProfile *profile, const CaIssueRequest *req,
             X509 **ret_cert, STACK_OF(X509) **ret_chain) {
        int r;

        if (!ca || !ca->vtable || !profile || !req || !req->public_key || !ret_cert)
                return -EINVAL;

        r = ca_check_request(ca, profile, req);
        if (r < 0)
                return r;

        return ca->vtable->issue(ca, profile, req, ret_cert, ret_chain);
}

int ca_revoke(CaBackend *ca, X509 *cert, int reason) {
        if (!ca || !ca->vtable || !cert)
                return -EINVAL;
        return ca->vtable->revoke(ca, cert, reason);
}
