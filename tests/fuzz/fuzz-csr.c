/* SPDX-License-Identifier: Apache-2.0 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "shared/csr.h"
#include "shared/macro.h"
#include "shared/pem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fuzzed requests almost never carry a valid self-signature, so csr_inspect() would stop at the
 * signature check. Re-signing a copy with our own key lets the fuzzer reach the extraction code
 * with its attributes and extensions intact. */
static EVP_PKEY *resign_key(void) {
        static EVP_PKEY *key = NULL;

        if (!key)
                key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!key)
                abort();
        return key;
}

static void inspect(X509_REQ *csr) {
        _cleanup_(X509_REQ_freep) X509_REQ *copy = NULL, *back = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *pem = NULL;
        size_t len = 0;
        CsrInfo *info = NULL;

        if (csr_inspect(csr, &info) >= 0)
                csr_info_free(info);

        if (der_write_csr(csr, &der, &len) >= 0 && der_read_csr(der, len, &back) < 0)
                abort();   /* what we wrote must read back */
        if (pem_write_csr(csr, &pem) < 0)
                pem = NULL;

        copy = X509_REQ_dup(csr);
        if (copy && X509_REQ_set_pubkey(copy, resign_key()) == 1 &&
            X509_REQ_sign(copy, resign_key(), EVP_sha256()) > 0) {
                info = NULL;
                if (csr_inspect(copy, &info) >= 0)
                        csr_info_free(info);
        }
        ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        X509_REQ *csr = NULL;

        if (der_read_csr(data, size, &csr) >= 0) {
                inspect(csr);
                X509_REQ_free(csr);
                csr = NULL;
        }

        if (pem_read_csr((const char *) data, size, &csr) >= 0) {
                inspect(csr);
                X509_REQ_free(csr);
        }

        /* The readers must not leave errors behind for unrelated callers. */
        if (ERR_peek_error() != 0)
                abort();
        return 0;
}
