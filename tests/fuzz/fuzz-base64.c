/* SPDX-License-Identifier: Apache-2.0 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/base64.h"
#include "shared/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The decoders are strict: exactly one encoding per byte string. So whatever decodes must
 * re-encode to the very same input, or the decoder accepted a non-canonical form. */
static void check(int (*decode)(const char *, size_t, void **, size_t *),
                  int (*encode)(const void *, size_t, char **),
                  const uint8_t *data, size_t size) {
        _cleanup_free_ void *plain = NULL;
        _cleanup_free_ char *again = NULL;
        size_t plain_size;

        if (decode((const char *) data, size, &plain, &plain_size) < 0)
                return;
        if (encode(plain, plain_size, &again) < 0)
                abort();
        if (strlen(again) != size || memcmp(again, data, size) != 0)
                abort();
        if (((const char *) plain)[plain_size] != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        check(base64_decode, base64_encode, data, size);
        check(base64url_decode, base64url_encode, data, size);
        return 0;
}
