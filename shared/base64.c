/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "shared/base64.h"
#include "shared/macro.h"

static const char alphabet_std[64] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char alphabet_url[64] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int encode(const char alphabet[static 64], bool pad, const void *data, size_t size, char **ret) {
        const uint8_t *in = data;
        size_t n = 0;
        char *out;

        if (!data && size > 0)
                return -EINVAL;
        if (size > (SIZE_MAX - 1) / 4 * 3 - 3)
                return -E2BIG;

        out = malloc((size + 2) / 3 * 4 + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < size; i += 3) {
                size_t left = size - i;
                uint32_t v = (uint32_t) in[i] << 16;

                if (left > 1)
                        v |= (uint32_t) in[i + 1] << 8;
                if (left > 2)
                        v |= in[i + 2];

                out[n++] = alphabet[(v >> 18) & 63];
                out[n++] = alphabet[(v >> 12) & 63];
                if (left > 1)
                        out[n++] = alphabet[(v >> 6) & 63];
                else if (pad)
                        out[n++] = '=';
                if (left > 2)
                        out[n++] = alphabet[v & 63];
                else if (pad)
                        out[n++] = '=';
        }
        out[n] = 0;
        *ret = out;
        return 0;
}

int base64_encode(const void *data, size_t size, char **ret) {
        return encode(alphabet_std, true, data, size, ret);
}

int base64url_encode(const void *data, size_t size, char **ret) {
        return encode(alphabet_url, false, data, size, ret);
}

static int decode_char(bool url, char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == (url ? '-' : '+'))
                return 62;
        if (c == (url ? '_' : '/'))
                return 63;
        return -EINVAL;
}

/* Decodes len characters (no padding) of which len % 4 is 0, 2 or 3. A final group of 2 or 3
 * characters carries 4 or 2 bits too many; they must be zero, otherwise several encodings would
 * decode to the same bytes (RFC 4648 §3.5). */
static int decode(bool url, const char *s, size_t len, void **ret, size_t *ret_size) {
        size_t out_size, n = 0;
        uint8_t *out;

        if (len % 4 == 1)
                return -EINVAL;

        out_size = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
        out = malloc(out_size + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < len; i += 4) {
                size_t group = MIN(len - i, (size_t) 4);
                uint32_t v = 0;

                for (size_t j = 0; j < 4; j++) {
                        int d = 0;

                        if (j < group) {
                                d = decode_char(url, s[i + j]);
                                if (d < 0) {
                                        free(out);
                                        return -EINVAL;
                                }
                        }
                        v = (v << 6) | (uint32_t) d;
                }

                if ((group == 2 && (v & 0xffff) != 0) || (group == 3 && (v & 0xff) != 0)) {
                        free(out);
                        return -EINVAL;
                }

                out[n++] = (uint8_t) (v >> 16);
                if (group > 2)
                        out[n++] = (uint8_t) (v >> 8);
                if (group > 3)
                        out[n++] = (uint8_t) v;
        }
        out[n] = 0;

        *ret = out;
        if (ret_size)
                *ret_size = n;
        return 0;
}

int base64_decode(const char *s, size_t len, void **ret, size_t *ret_size) {
        if (!s && len > 0)
                return -EINVAL;
        if (len > BASE64_DECODE_MAX)
                return -E2BIG;
        if (len % 4 != 0)
                return -EINVAL;

        /* Padding only at the very end, and exactly as much as the last group needs: strip it and
         * let the unpadded decoder check the rest (which has no '=' in its alphabet). */
        if (len > 0 && s[len - 1] == '=') {
                len--;
                if (s[len - 1] == '=')
                        len--;
        }
        return decode(false, s, len, ret, ret_size);
}

int base64url_decode(const char *s, size_t len, void **ret, size_t *ret_size) {
        if (!s && len > 0)
                return -EINVAL;
        if (len > BASE64_DECODE_MAX)
                return -E2BIG;
        return decode(true, s, len, ret, ret_size);
}
