/* SPDX-License-Identifier: Apache-2.0 */
/* Reading the records out of a DNS answer. The answer comes off the network, from a resolver an
 * attacker may be able to influence, so this is kept apart from the exchange and fuzzed
 * (tests/fuzz/fuzz-dns-answer.c). glibc's ns_initparse/ns_parserr check the message framing;
 * what they hand us per record (rdata, rdlength) is checked here. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/va/va-internal.h"

/* Calls f for each answer record of the given type and class IN. */
static int va_dns_foreach(const unsigned char *answer, size_t size, int type,
                          int (*f)(const ns_rr *rr, void *userdata), void *userdata) {
        ns_msg msg;
        int count;

        if (size == 0)
                return 0;
        if (ns_initparse(answer, (int) size, &msg) < 0)
                return -EBADMSG;

        count = ns_msg_count(msg, ns_s_an);
        for (int i = 0; i < count; i++) {
                ns_rr rr;
                int r;

                if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
                        return -EBADMSG;
                /* CNAMEs the resolver followed come along in the answer; skip them. */
                if (ns_rr_class(rr) != ns_c_in || (int) ns_rr_type(rr) != type)
                        continue;
                r = f(&rr, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

int va_address_list_add(VaAddressList *l, int family, const void *raw) {
        VaAddress a = { .family = family };

        if (l->n >= VA_ADDRESSES_MAX)
                return 0;
        if (!inet_ntop(family, raw, a.text, sizeof(a.text)))
                return -errno;
        for (size_t i = 0; i < l->n; i++)
                if (l->list[i].family == family && strcmp(l->list[i].text, a.text) == 0)
                        return 0;
        l->list[l->n++] = a;
        return 0;
}

static int va_rr_address(const ns_rr *rr, void *userdata) {
        VaAddressList *l = userdata;

        if (ns_rr_type(*rr) == ns_t_a && ns_rr_rdlen(*rr) == 4)
                return va_address_list_add(l, AF_INET, ns_rr_rdata(*rr));
        if (ns_rr_type(*rr) == ns_t_aaaa && ns_rr_rdlen(*rr) == 16)
                return va_address_list_add(l, AF_INET6, ns_rr_rdata(*rr));
        return 0;
}

int va_dns_answer_addresses(const unsigned char *answer, size_t size, int type, VaAddressList *l) {
        if (type != ns_t_a && type != ns_t_aaaa)
                return -EINVAL;
        return va_dns_foreach(answer, size, type, va_rr_address, l);
}

static int va_rr_txt(const ns_rr *rr, void *userdata) {
        const unsigned char *p = ns_rr_rdata(*rr), *end = p + ns_rr_rdlen(*rr);
        VaTxtList *l = userdata;
        char *s, *q;

        if (l->n >= VA_TXT_RECORDS_MAX)
                return 0;

        /* rdata is a sequence of <length><bytes> character-strings, joined to one value. */
        s = q = malloc(ns_rr_rdlen(*rr) + 1);
        if (!s)
                return -ENOMEM;
        while (p < end) {
                size_t len = *p++;

                if (len > (size_t) (end - p)) {
                        free(s);
                        return -EBADMSG;
                }
                memcpy(q, p, len);
                q += len;
                p += len;
        }
        *q = 0;
        l->records[l->n++] = s;
        return 0;
}

int va_dns_answer_txt(const unsigned char *answer, size_t size, VaTxtList *l) {
        return va_dns_foreach(answer, size, ns_t_txt, va_rr_txt, l);
}
