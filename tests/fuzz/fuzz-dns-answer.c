/* SPDX-License-Identifier: Apache-2.0 */
/* The validation authority reads A, AAAA and TXT records out of DNS answers that come off the
 * network. Besides never crashing or leaking: no more records than the limits, every address
 * is a valid address of its family, and every TXT value fits in the answer it came from. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/va/va-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_addresses(const uint8_t *data, size_t size) {
        VaAddress list[VA_ADDRESSES_MAX];
        VaAddressList l = { .list = list };
        unsigned char raw[sizeof(struct in6_addr)];

        (void) va_dns_answer_addresses(data, size, ns_t_aaaa, &l);
        (void) va_dns_answer_addresses(data, size, ns_t_a, &l);
        if (l.n > VA_ADDRESSES_MAX)
                abort();
        for (size_t i = 0; i < l.n; i++) {
                if (list[i].family != AF_INET && list[i].family != AF_INET6)
                        abort();
                if (inet_pton(list[i].family, list[i].text, raw) != 1)
                        abort();
                for (size_t j = 0; j < i; j++)
                        if (list[j].family == list[i].family && strcmp(list[j].text, list[i].text) == 0)
                                abort();   /* duplicates are dropped */
        }
}

static void check_txt(const uint8_t *data, size_t size) {
        char *records[VA_TXT_RECORDS_MAX + 1] = {};
        VaTxtList l = { .records = records };

        (void) va_dns_answer_txt(data, size, &l);
        if (l.n > VA_TXT_RECORDS_MAX || records[l.n])
                abort();
        for (size_t i = 0; i < l.n; i++) {
                if (strlen(records[i]) >= size && size > 0)
                        abort();   /* a value is made of bytes of the answer */
                free(records[i]);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > VA_DNS_ANSWER_MAX)
                return 0;
        check_addresses(data, size);
        check_txt(data, size);
        return 0;
}
