/* SPDX-License-Identifier: Apache-2.0 */

/* DNS for the validators: A/AAAA to find the host to connect to, TXT for dns-01.
 *
 * With Resolver= configured, every lookup goes to that one server (private networks, tests;
 * va-dns.c does the exchange); otherwise host names go through getaddrinfo() and TXT queries to
 * the system's resolvers. Each call uses its own resolver state, so worker threads share none. */

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
/* <resolv.h> pulls in <sys/param.h>; shared/macro.h defines its own MIN/MAX. */
#undef MIN
#undef MAX
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/va/va-internal.h"
#include "shared/macro.h"
#include "shared/random-util.h"

bool va_parse_ip(const char *s, VaAddress *ret) {
        unsigned char buf[sizeof(struct in6_addr)];
        int family;

        if (!s || strlen(s) >= sizeof(((VaAddress *) NULL)->text))
                return false;
        if (inet_pton(AF_INET, s, buf) == 1)
                family = AF_INET;
        else if (inet_pton(AF_INET6, s, buf) == 1)
                family = AF_INET6;
        else
                return false;

        if (ret) {
                *ret = (VaAddress) { .family = family };
                /* Canonical text form, so "::0001" and "::1" compare equal later on. */
                if (!inet_ntop(family, buf, ret->text, sizeof(ret->text)))
                        return false;
        }
        return true;
}

int va_reverse_name(const VaAddress *address, char **ret) {
        unsigned char b[sizeof(struct in6_addr)];
        char s[sizeof("x.") * 32 + sizeof("ip6.arpa")], *p = s;

        if (inet_pton(address->family, address->text, b) != 1)
                return -EINVAL;

        if (address->family == AF_INET)
                snprintf(s, sizeof(s), "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
        else {
                for (int i = 15; i >= 0; i--)
                        p += sprintf(p, "%x.%x.", b[i] & 0xf, b[i] >> 4);
                strcpy(p, "ip6.arpa");
        }

        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

typedef struct VaDnsAnswer {
        unsigned char *buf;
        int size;
} VaDnsAnswer;

static void va_dns_answer_done(VaDnsAnswer *a) {
        free(a->buf);
        a->buf = NULL;
}

static const char *va_dns_type_name(int type) {
        return type == ns_t_a ? "A" : type == ns_t_aaaa ? "AAAA" : type == ns_t_txt ? "TXT" : "?";
}

static const char *va_dns_rcode_name(int rcode) {
        switch (rcode) {
        case ns_r_formerr:
                return "FORMERR";
        case ns_r_servfail:
                return "SERVFAIL";
        case ns_r_nxdomain:
                return "NXDOMAIN";
        case ns_r_notimpl:
                return "NOTIMP";
        case ns_r_refused:
                return "REFUSED";
        default:
                return "error response";
        }
}

/* The resolver state only formats the query, so each validation thread sets one up once (it reads
 * resolv.conf) and keeps it. The ID comes from our CSPRNG: glibc derives it from the clock, and an
 * off-path attacker who guesses it can forge the answer that decides a validation. */
static int va_dns_make_query(const char *name, int type, unsigned char *query, size_t size) {
        static __thread struct __res_state state;
        static __thread bool state_ready;
        int qlen;

        if (!state_ready) {
                if (res_ninit(&state) < 0)
                        return -EIO;
                state_ready = true;
        }
        qlen = res_nmkquery(&state, ns_o_query, name, ns_c_in, type, NULL, 0, NULL, query, (int) size);
        if (qlen < NS_HFIXEDSZ)
                return -EINVAL;
        if (random_bytes(query, 2) < 0)
                return -EIO;
        return qlen;
}

/* Asks the configured Resolver= (va-dns.c does the exchange). */
static int va_dns_query_server(const VaConfig *config, const char *name, int type, va_usec_t deadline,
                               VaDnsAnswer *answer, char **ret_detail) {
        struct sockaddr_storage server;
        socklen_t server_len;
        unsigned char query[NS_PACKETSZ];
        size_t n = 0;
        ns_msg msg;
        int qlen, rcode, r;

        r = va_dns_parse_server(config->resolver, &server, &server_len);
        if (r < 0)
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: invalid resolver address '%s'", config->resolver);

        qlen = va_dns_make_query(name, type, query, sizeof query);
        if (qlen < 0)
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: cannot build a query for %s", name);

        r = va_dns_exchange((struct sockaddr *) &server, server_len, query, qlen, deadline, answer->buf,
                            VA_DNS_ANSWER_MAX, &n);
        if (r == -ETIMEDOUT)
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: query timed out looking up %s for %s",
                               va_dns_type_name(type), name);
        if (r == -ECONNREFUSED)
                return va_fail(-CF_E_DNS, ret_detail,
                               "DNS problem: resolver %s refused the connection looking up %s for %s",
                               config->resolver, va_dns_type_name(type), name);
        if (r < 0)
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: looking up %s for %s: %s",
                               va_dns_type_name(type), name, strerror(-r));

        if (ns_initparse(answer->buf, n, &msg) < 0)
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: malformed answer looking up %s for %s",
                               va_dns_type_name(type), name);
        rcode = ns_msg_getflag(msg, ns_f_rcode);
        if (rcode != ns_r_noerror)
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: %s looking up %s for %s",
                               va_dns_rcode_name(rcode), va_dns_type_name(type), name);

        answer->size = n;
        return (int) n;
}

/* Asks the system's resolvers (resolv.conf). */
static int va_dns_query_system(const char *name, int type, va_usec_t deadline, VaDnsAnswer *answer,
                               char **ret_detail) {
        struct __res_state state = {};
        int n, herr, saved_errno;

        if (res_ninit(&state) < 0)
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: cannot initialize the resolver");
        /* Two tries (glibc doubles the wait for the second), within the deadline. */
        state.retry = 2;
        state.retrans = MAX(1, (int) (va_remaining_ms(deadline) / 3000));
        /* No search list: we ask for exactly this name. */
        state.options &= ~(RES_DNSRCH | RES_DEFNAMES);

        errno = 0;
        n = res_nquery(&state, name, ns_c_in, type, answer->buf, VA_DNS_ANSWER_MAX);
        saved_errno = errno;
        herr = state.res_h_errno;
        res_nclose(&state);

        if (n >= 0) {
                answer->size = MIN(n, VA_DNS_ANSWER_MAX);
                return answer->size;
        }

        switch (herr) {
        case HOST_NOT_FOUND:
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: NXDOMAIN looking up %s for %s",
                               va_dns_type_name(type), name);
        case NO_DATA:
                answer->size = 0;
                return 0;
        case TRY_AGAIN:
                if (saved_errno == ETIMEDOUT)
                        return va_fail(-CF_E_DNS, ret_detail, "DNS problem: query timed out looking up %s for %s",
                                       va_dns_type_name(type), name);
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: SERVFAIL looking up %s for %s",
                               va_dns_type_name(type), name);
        default:
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: lookup of %s for %s failed (%s)",
                               va_dns_type_name(type), name, hstrerror(herr));
        }
}

/* Returns the answer size (the name exists; the answer may still hold no record of this type),
 * or -CF_E_DNS with a detail. */
static int va_dns_query(const VaConfig *config, const char *name, int type, va_usec_t deadline,
                        VaDnsAnswer *answer, char **ret_detail) {
        if (va_remaining_ms(deadline) <= 0)
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: query timed out looking up %s for %s",
                               va_dns_type_name(type), name);

        answer->buf = malloc(VA_DNS_ANSWER_MAX);
        if (!answer->buf)
                return -ENOMEM;
        answer->size = 0;

        if (config->resolver)
                return va_dns_query_server(config, name, type, deadline, answer, ret_detail);
        return va_dns_query_system(name, type, deadline, answer, ret_detail);
}

static int va_resolve_getaddrinfo(const char *name, VaAddressList *l, char **ret_detail) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC }, *res = NULL;
        int r;

        r = getaddrinfo(name, NULL, &hints, &res);
        if (r == EAI_NONAME || r == EAI_NODATA)
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: NXDOMAIN looking up A/AAAA for %s", name);
        if (r != 0)
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: looking up A/AAAA for %s: %s", name,
                               gai_strerror(r));

        /* IPv6 first, like the DNS path. */
        for (int pass = 0; pass < 2; pass++)
                for (struct addrinfo *i = res; i; i = i->ai_next) {
                        if (pass == 0 && i->ai_family == AF_INET6)
                                r = va_address_list_add(l, AF_INET6, &((struct sockaddr_in6 *) i->ai_addr)->sin6_addr);
                        else if (pass == 1 && i->ai_family == AF_INET)
                                r = va_address_list_add(l, AF_INET, &((struct sockaddr_in *) i->ai_addr)->sin_addr);
                        else
                                continue;
                        if (r < 0) {
                                freeaddrinfo(res);
                                return r;
                        }
                }
        freeaddrinfo(res);
        return 0;
}

int va_resolve_addresses(const VaConfig *config, const char *name, va_usec_t deadline,
                         VaAddress **ret, size_t *ret_n, char **ret_detail) {
        _cleanup_free_ VaAddress *list = NULL;
        VaAddressList l;
        int r;

        list = calloc(VA_ADDRESSES_MAX, sizeof(VaAddress));
        if (!list)
                return -ENOMEM;
        l = (VaAddressList) { .list = list };

        if (!config->resolver) {
                r = va_resolve_getaddrinfo(name, &l, ret_detail);
                if (r < 0)
                        return r;
        } else {
                _cleanup_free_ char *detail6 = NULL, *detail4 = NULL;
                int r6, r4;

                /* Both queries are asked; one family failing is fine if the other answers. */
                VaDnsAnswer a6 = {}, a4 = {};
                r6 = va_dns_query(config, name, ns_t_aaaa, deadline, &a6, &detail6);
                if (r6 >= 0)
                        r6 = va_dns_answer_addresses(a6.buf, a6.size, ns_t_aaaa, &l);
                va_dns_answer_done(&a6);

                r4 = va_dns_query(config, name, ns_t_a, deadline, &a4, &detail4);
                if (r4 >= 0)
                        r4 = va_dns_answer_addresses(a4.buf, a4.size, ns_t_a, &l);
                va_dns_answer_done(&a4);

                if (r4 == -ENOMEM || r6 == -ENOMEM)
                        return -ENOMEM;
                if (l.n == 0 && (r4 < 0 || r6 < 0)) {
                        if (r4 == -CF_E_DNS && detail4)
                                return va_fail(-CF_E_DNS, ret_detail, "%s", detail4);
                        if (r6 == -CF_E_DNS && detail6)
                                return va_fail(-CF_E_DNS, ret_detail, "%s", detail6);
                        return va_fail(-CF_E_DNS, ret_detail, "DNS problem: malformed answer looking up A/AAAA for %s",
                                       name);
                }
        }

        if (l.n == 0)
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: no valid A or AAAA records found for %s", name);

        *ret = TAKE_PTR(list);
        *ret_n = l.n;
        return 0;
}

int va_resolve_txt(const VaConfig *config, const char *name, va_usec_t deadline,
                   char ***ret, char **ret_detail) {
        _cleanup_(strv_freep) char **records = NULL;
        VaDnsAnswer answer = {};
        VaTxtList l;
        int r;

        records = calloc(VA_TXT_RECORDS_MAX + 1, sizeof(char *));
        if (!records)
                return -ENOMEM;
        l = (VaTxtList) { .records = records };

        r = va_dns_query(config, name, ns_t_txt, deadline, &answer, ret_detail);
        if (r >= 0)
                r = va_dns_answer_txt(answer.buf, answer.size, &l);
        va_dns_answer_done(&answer);
        if (r == -EBADMSG)
                return va_fail(-CF_E_DNS, ret_detail, "DNS problem: malformed answer looking up TXT for %s", name);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(records);
        return 0;
}
