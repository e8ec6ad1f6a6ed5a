/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Cryptographically strong (OpenSSL RAND_bytes). -EIO if the RNG fails. */
int random_bytes(void *buf, size_t n);
/* Uniform in [0, n) without modulo bias; n > 0. */
int random_uniform(uint64_t n, uint64_t *ret);
/* A token of n random bytes, base64url-encoded. */
int random_token(size_t n, char **ret);
