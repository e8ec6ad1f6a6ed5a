/* SPDX-License-Identifier: Apache-2.0 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/problem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Problem p = {};

        if (problem_parse((const char *) data, size, &p) < 0)
                return 0;
        if (!p.type)
                abort();
        if (p.status != 0 && (p.status < 100 || p.status > 599))
                abort();
        if (!cf_error_is_protocol(-(int) p.error))
                abort();
        /* What the client understood must be something the server side can say again. */
        if (!problem_type_for_error(-(int) p.error))
                abort();
        problem_done(&p);
        return 0;
}
