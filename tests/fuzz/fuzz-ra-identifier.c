/* SPDX-License-Identifier: Apache-2.0 */
/* ra_check_identifier() judges every identifier a client asks for. Besides never crashing, what it
 * accepts must really be covered by the profile's patterns: checked here independently. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/ra/ra.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), m = strlen(suffix);
        return n > m && strcmp(s + n - m, suffix) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char *allowed[] = { "*.internal.example", "host.example", "10.0.0.0/8", "fd00::/8", NULL };
        RaProfile ra = {
                .name = (char *) "fuzz",
                .enabled = true,
                .allowed_identifiers = allowed,
        };
        char *value;

        if (size > 512)
                return 0;
        value = strndup((const char *) data, size);
        if (!value)
                return 0;

        if (ra_check_identifier(&ra, IDENTIFIER_DNS, value) >= 0) {
                if (!ends_with(value, ".internal.example") && strcmp(value, "host.example") != 0)
                        abort();
        }
        if (ra_check_identifier(&ra, IDENTIFIER_IP, value) >= 0) {
                unsigned char a[16];
                if (inet_pton(AF_INET, value, a) == 1) {
                        if (a[0] != 10)
                                abort();
                } else if (inet_pton(AF_INET6, value, a) == 1) {
                        if (a[0] != 0xfd)
                                abort();
                } else
                        abort();
        }
        free(value);
        return 0;
}
