/* SPDX-License-Identifier: Apache-2.0 */
/* jws_parse() on untrusted bytes; when a JWS parses and carries a jwk, the key is decoded and the
 * signature checked with it, as the ACME front end does for newAccount. Must never crash or leak,
 * whatever the result. */
#include <stddef.h>
#include <stdint.h>

#include "shared/jose.h"
#include "shared/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(jws_freep) Jws *jws = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *thumbprint = NULL;
        static const uint8_t hmac_key[] = "fuzz-eab-hmac-key";

        if (jws_parse((const char *) data, size, &jws) < 0)
                return 0;

        if (jws->alg == JWS_ALG_HS256)
                (void) jws_verify_hmac(jws, hmac_key, sizeof hmac_key - 1);

        if (!jws->jwk)
                return 0;
        if (jwk_to_key(jws->jwk, &key) < 0)
                return 0;
        (void) jwk_thumbprint(jws->jwk, &thumbprint);
        (void) jws_verify(jws, key);
        return 0;
}
