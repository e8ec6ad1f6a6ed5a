/* SPDX-License-Identifier: Apache-2.0 */

/* dns-01 (RFC 8555 §8.4): a TXT record at _acme-challenge.NAME holding
 * base64url(SHA-256(key authorization)). */

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/va/va-internal.h"
#include "shared/base64.h"
#include "shared/macro.h"

int va_key_authorization_digest(const char *key_authorization, unsigned char ret[static 32]) {
        unsigned int n = 0;

        if (EVP_Digest(key_authorization, strlen(key_authorization), ret, &n, EVP_sha256(), NULL) != 1 ||
            n != 32)
                return -EIO;
        return 0;
}

int va_validate_dns01(const VaConfig *config, const VaRequest *req, va_usec_t deadline, char **ret_detail) {
        _cleanup_(strv_freep) char **records = NULL;
        _cleanup_free_ char *name = NULL, *expected = NULL;
        unsigned char digest[32];
        size_t expected_len;
        int r;

        if (strcmp(req->identifier_type, "dns") != 0)
                return -EINVAL;

        r = va_key_authorization_digest(req->key_authorization, digest);
        if (r < 0)
                return r;
        r = base64url_encode(digest, sizeof(digest), &expected);
        if (r < 0)
                return r;
        expected_len = strlen(expected);

        if (asprintf(&name, "_acme-challenge.%s", req->identifier) < 0)
                return -ENOMEM;

        r = va_resolve_txt(config, name, deadline, &records, ret_detail);
        if (r < 0)
                return r;

        if (!records[0])
                return va_fail(-CF_E_INCORRECT_RESPONSE, ret_detail, "No TXT record found at %s", name);

        for (char **i = records; *i; i++)
                if (strlen(*i) == expected_len && CRYPTO_memcmp(*i, expected, expected_len) == 0)
                        return 0;

        return va_fail(-CF_E_INCORRECT_RESPONSE, ret_detail,
                       "Incorrect TXT record \"%.100s\"%s found at %s", records[0],
                       records[1] ? " (and others)" : "", name);
}
