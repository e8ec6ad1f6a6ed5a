/* SPDX-License-Identifier: Apache-2.0 */
/* Certificate download (RFC 8555 §7.4.2), the issuing chain behind Link rel="up", and
 * revocation (§7.6) by the owning account, an account authorized for all of the certificate's
 * identifiers, or the certificate's own key. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "server/acme/acme-internal.h"
#include "server/ra/ra.h"
#include "shared/base64.h"
#include "shared/cert.h"
#include "shared/errors.h"
#include "shared/pem.h"

#define ACME_SERIAL_MAX 64

static bool serial_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > ACME_SERIAL_MAX)
                return false;
        return strspn(s, "0123456789abcdef") == n;
}

int acme_cert_handle(AcmeRequest *r, const char *serial) {
        _cleanup_(inventory_cert_freep) InventoryCert *c = NULL;
        _cleanup_free_ char *body = NULL;
        int q;

        if (r->payload)
                return acme_fail(r, -CF_E_MALFORMED, "Certificates are fetched with POST-as-GET");
        if (!serial_is_valid(serial))
                return acme_fail(r, -CF_E_NOT_FOUND, "No such certificate");
        q = store_inventory_get(r->store, serial, &c);
        if (q == -ENOENT || (q >= 0 && (c->account_id != r->account->id || !c->protocol ||
                                        strcmp(c->protocol, "acme") != 0)))
                return acme_fail(r, -CF_E_NOT_FOUND, "No such certificate");
        if (q < 0)
                return q;

        if (asprintf(&body, "%s%s%s", c->pem,
                     c->pem[0] && c->pem[strlen(c->pem) - 1] != '\n' ? "\n" : "",
                     c->chain_pem ?: "") < 0)
                return -ENOMEM;
        q = http_response_add_headerf(r->resp, "Link", "<%sissuer/%s>;rel=\"up\"", r->prefix_url, serial);
        if (q < 0)
                return q;
        return http_response_set_body(r->resp, 200, "application/pem-certificate-chain", body, strlen(body));
}

int acme_issuer_handle(AcmeRequest *r, const char *serial) {
        _cleanup_(inventory_cert_freep) InventoryCert *c = NULL;
        int q;

        if (!serial_is_valid(serial))
                return acme_fail(r, -CF_E_NOT_FOUND, "No such certificate");
        q = store_inventory_get(r->store, serial, &c);
        if (q == -ENOENT || (q >= 0 && (!c->chain_pem || !c->chain_pem[0])))
                return acme_fail(r, -CF_E_NOT_FOUND, "No issuer known for this certificate");
        if (q < 0)
                return q;
        return http_response_set_body(r->resp, 200, "application/pem-certificate-chain",
                                      c->chain_pem, strlen(c->chain_pem));
}

/* RFC 8555 §7.6: besides the issuing account, an account holding valid authorizations (under
 * this profile) for every identifier in the certificate may revoke it. 1: it does, 0: it does not. */
static int account_holds_authorizations(AcmeRequest *r, const InventoryCert *c) {
        cf_time_t now = time_now();

        if (!c->identifiers || !c->identifiers[0])
                return 0;
        for (char **i = c->identifiers; *i; i++) {
                _cleanup_(acme_authz_freep) AcmeAuthz *a = NULL;
                _cleanup_free_ char *type = NULL;
                const char *colon = strchr(*i, ':'), *value;
                bool wildcard;
                int q;

                if (!colon)
                        return 0;
                type = strndup(*i, colon - *i);
                if (!type)
                        return -ENOMEM;
                value = colon + 1;
                wildcard = strcmp(type, "dns") == 0 && strncmp(value, "*.", 2) == 0;
                q = store_acme_authz_find_reusable(r->store, r->account->id, r->route_key, type,
                                                   wildcard ? value + 2 : value, wildcard, now, &a);
                if (q == -ENOENT)
                        return 0;
                if (q < 0)
                        return q;
        }
        return 1;
}

static bool reason_is_valid(int64_t reason) {
        /* RFC 5280 §5.3.1: 7 is unused; 8 (removeFromCRL) is for delta CRLs only. */
        return reason >= 0 && reason <= 10 && reason != 7 && reason != 8;
}

int acme_revoke_handle(AcmeRequest *r) {
        _cleanup_(inventory_cert_freep) InventoryCert *c = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL, *stored = NULL;
        _cleanup_free_ uint8_t *der = NULL, *stored_der = NULL;
        _cleanup_free_ char *serial = NULL;
        size_t n, stored_n;
        json_object *v;
        int64_t reason = 0;
        const char *b64;
        int q;

        if (!r->payload || !json_object_object_get_ex(r->payload, "certificate", &v) ||
            !json_object_is_type(v, json_type_string))
                return acme_fail(r, -CF_E_MALFORMED, "revokeCert needs a certificate");
        b64 = json_object_get_string(v);
        if (strlen(b64) > ACME_CERT_B64_MAX)
                return acme_fail(r, -CF_E_MALFORMED, "certificate is too large");
        if (json_object_object_get_ex(r->payload, "reason", &v)) {
                if (!json_object_is_type(v, json_type_int))
                        return acme_fail(r, -CF_E_BAD_REVOCATION_REASON, "reason must be an integer");
                reason = json_object_get_int64(v);
                if (!reason_is_valid(reason))
                        return acme_fail(r, -CF_E_BAD_REVOCATION_REASON,
                                         "reason must be an RFC 5280 CRLReason (0-6, 9, 10)");
        }
        if (base64url_decode(b64, strlen(b64), (void **) &der, &n) < 0 || der_read_cert(der, n, &cert) < 0)
                return acme_fail(r, -CF_E_MALFORMED, "certificate is not base64url DER");
        q = cert_serial_hex(cert, &serial);
        if (q < 0)
                return acme_fail(r, -CF_E_MALFORMED, "certificate has no usable serial");

        q = store_inventory_get(r->store, serial, &c);
        if (q == -ENOENT)
                return acme_fail(r, -CF_E_NOT_FOUND, "Certificate was not issued here");
        if (q < 0)
                return q;
        /* The same serial could be forged on another certificate: compare the whole encoding. */
        if (pem_read_cert(c->pem, strlen(c->pem), &stored) < 0 ||
            der_write_cert(stored, &stored_der, &stored_n) < 0 || stored_n != n ||
            CRYPTO_memcmp(stored_der, der, n) != 0)
                return acme_fail(r, -CF_E_NOT_FOUND, "Certificate was not issued here");

        if (r->account) {
                bool owner = c->protocol && strcmp(c->protocol, "acme") == 0 &&
                             c->account_id == r->account->id;

                if (!owner) {
                        q = account_holds_authorizations(r, c);
                        if (q < 0)
                                return q;
                        if (q == 0)
                                return acme_fail(r, -CF_E_UNAUTHORIZED,
                                                 "Account neither ordered the certificate nor holds authorizations for all its identifiers");
                }
        } else {
                EVP_PKEY *pk = X509_get0_pubkey(cert);
                if (!pk || !key_public_equal(pk, r->key))
                        return acme_fail(r, -CF_E_UNAUTHORIZED, "JWS key is not the certificate's key");
        }
        if (c->status == CERT_STATUS_REVOKED)
                return acme_fail(r, -CF_E_ALREADY_REVOKED, "Certificate is already revoked");

        q = ra_revoke(r->store, r->profiles, serial, (int) reason);
        if (q == -CF_E_ALREADY_REVOKED)
                return acme_fail(r, q, "Certificate is already revoked");
        if (q == -CF_E_BAD_REVOCATION_REASON)
                return acme_fail(r, q, "Revocation reason is not accepted");
        if (q < 0)
                return q;
        return http_response_set_body(r->resp, 200, NULL, NULL, 0);
}
