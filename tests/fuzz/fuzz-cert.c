/* SPDX-License-Identifier: Apache-2.0 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "shared/cert.h"
#include "shared/macro.h"
#include "shared/pem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inspect(X509 *cert) {
        _cleanup_free_ char *hex = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_(X509_freep) X509 *back = NULL;
        CertInfo *info = NULL;
        size_t len = 0;

        if (cert_inspect(cert, &info) >= 0)
                cert_info_free(info);
        if (cert_serial_hex(cert, &hex) >= 0 && hex[0] == '\0')
                abort();
        if (der_write_cert(cert, &der, &len) >= 0 && der_read_cert(der, len, &back) < 0)
                abort();   /* what we wrote must read back */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        X509 *cert = NULL;

        if (der_read_cert(data, size, &cert) >= 0) {
                inspect(cert);
                X509_free(cert);
        } else if (ERR_peek_error() != 0)
                abort();   /* a failed parse must not leave errors for unrelated callers */
        ERR_clear_error();

        if (pem_read_chain((const char *) data, size, &chain) < 0) {
                if (ERR_peek_error() != 0)
                        abort();
        } else {
                size_t bad;

                if (sk_X509_num(chain) < 1 || sk_X509_num(chain) > PEM_CHAIN_MAX)
                        abort();
                for (int i = 0; i < sk_X509_num(chain); i++)
                        inspect(sk_X509_value(chain, i));
                (void) chain_check_order(chain, &bad);
        }

        ERR_clear_error();
        return 0;
}
