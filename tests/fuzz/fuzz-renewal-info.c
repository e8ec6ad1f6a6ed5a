/* SPDX-License-Identifier: Apache-2.0 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/ari.h"
#include "shared/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        AriRenewalInfo info = {};
        _cleanup_free_ char *id = NULL;
        uint8_t *aki = NULL, *serial = NULL;
        size_t aki_size, serial_size;

        if (ari_parse_renewal_info((const char *) data, size, &info) >= 0) {
                /* RFC 9773 §4.2: a window that ends before it starts is never accepted. */
                if (info.window_end <= info.window_start)
                        abort();
                ari_renewal_info_done(&info);
        }

        /* The same bytes as a CertID (server side, from the URL path). */
        id = strndup((const char *) data, size);
        if (!id)
                return 0;
        if (ari_cert_id_parse(id, &aki, &aki_size, &serial, &serial_size) >= 0) {
                _cleanup_free_ char *again = NULL;

                /* Accepted CertIDs are canonical: they rebuild to the same string. */
                if (ari_cert_id_from_parts(aki, aki_size, serial, serial_size, &again) < 0 ||
                    strcmp(again, id) != 0)
                        abort();
                free(aki);
                free(serial);
        }
        return 0;
}
