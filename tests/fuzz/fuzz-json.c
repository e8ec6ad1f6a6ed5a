/* SPDX-License-Identifier: Apache-2.0 */
/* json_parse_strict() reads every ACME request body: it must never crash, and what it accepts
 * must serialize and parse back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/json-util.h"
#include "shared/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(json_object_putp) json_object *obj = NULL, *again = NULL;
        const char *s;

        if (json_parse_strict((const char *) data, size, 64 * 1024, &obj) < 0)
                return 0;
        s = json_to_string_compact(obj);
        if (json_parse_strict(s, strlen(s), SIZE_MAX, &again) < 0)
                abort();
        if (!json_object_equal(obj, again))
                abort();
        return 0;
}
