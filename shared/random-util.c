/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>

#include <openssl/rand.h>

#include "shared/base64.h"
#include "shared/macro.h"
#include "shared/random-util.h"

int random_bytes(void *buf, size_t n) {
        if (n > INT_MAX)
                return -EINVAL;
        if (RAND_bytes(buf, (int) n) != 1)
                return -EIO;
        return 0;
}

int random_uniform(uint64_t n, uint64_t *ret) {
        uint64_t x, limit;
        int r;

        if (n == 0)
                return -EINVAL;
        /* Reject the top partial block so every residue is equally likely. */
        limit = UINT64_MAX - (UINT64_MAX % n);
        do {
                r = random_bytes(&x, sizeof x);
                if (r < 0)
                        return r;
        } while (x >= limit);
        *ret = x % n;
        return 0;
}

int random_token(size_t n, char **ret) {
        _cleanup_free_ unsigned char *buf = NULL;
        int r;

        if (n == 0 || n > 1024)
                return -EINVAL;
        buf = malloc(n);
        if (!buf)
                return -ENOMEM;
        r = random_bytes(buf, n);
        if (r < 0)
                return r;
        return base64url_encode(buf, n, ret);
}
