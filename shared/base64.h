/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Base64 and base64url (RFC 4648 §4, §5), strict.
 *
 * Encoders allocate a NUL-terminated string. base64 pads with '='; base64url never pads
 * (RFC 7515 §2). Decoders reject characters outside the alphabet (including whitespace), wrong
 * or misplaced padding, and non-zero trailing bits (non-canonical input): -EINVAL.
 * base64_decode() requires padding; base64url_decode() rejects padding.
 * The decoded buffer gets a trailing NUL byte (not counted in *ret_size) for convenience. */

#include <stddef.h>

#define BASE64_DECODE_MAX (64u * 1024u * 1024u)   /* inputs longer than this: -E2BIG */

int base64_encode(const void *data, size_t size, char **ret);
int base64url_encode(const void *data, size_t size, char **ret);
int base64_decode(const char *s, size_t len, void **ret, size_t *ret_size);
int base64url_decode(const char *s, size_t len, void **ret, size_t *ret_size);
