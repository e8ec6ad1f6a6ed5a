/* SPDX-License-Identifier: Apache-2.0 */
/* The tls-alpn-01 validator judges a certificate that a client's server presents. Besides never
 * crashing or leaking: a certificate it accepts really carries the key authorization's digest
 * (checked independently, on the DER), and every refusal comes with a detail. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "server/va/va-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KEY_AUTHORIZATION "fuzzToken.fuzzThumbprint"

static void check(X509 *cert, const uint8_t *der, size_t size, const char *type, const char *identifier,
                  const VaAddress *ip) {
        VaRequest req = {
                .type = CHALLENGE_TLS_ALPN_01,
                .identifier_type = (char *) type,
                .identifier = (char *) identifier,
                .token = (char *) "fuzzToken",
                .key_authorization = (char *) KEY_AUTHORIZATION,
        };
        unsigned char digest[32];
        char *detail = NULL;
        int r;

        r = va_tlsalpn01_check_certificate(cert, &req, ip, &detail);
        if (r < 0 && r != -ENOMEM && !detail)
                abort();
        if (r == 0) {
                if (va_key_authorization_digest(KEY_AUTHORIZATION, digest) < 0 ||
                    !memmem(der, size, digest, sizeof digest))
                        abort();
        }
        free(detail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const unsigned char *p = data;
        VaAddress ip = { .family = AF_INET, .text = "192.0.2.1" };
        X509 *cert;

        if (size > 65536)
                return 0;
        cert = d2i_X509(NULL, &p, (long) size);
        if (cert) {
                check(cert, data, size, "dns", "host.example", NULL);
                check(cert, data, size, "ip", "192.0.2.1", &ip);
                X509_free(cert);
        }
        return 0;
}
