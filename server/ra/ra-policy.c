/* SPDX-License-Identifier: Apache-2.0 */
/* RA profile policy: which identifiers, keys and validity periods a profile allows. */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/ra/ra-internal.h"
#include "server/ra/ra.h"
#include "shared/errors.h"
#include "shared/key.h"
#include "shared/strv.h"

#define DNS_NAME_MAX 253
#define DNS_LABEL_MAX 63

static const char *const identifier_type_table[_IDENTIFIER_TYPE_MAX] = {
        [IDENTIFIER_DNS] = "dns",
        [IDENTIFIER_IP] = "ip",
};

const char *identifier_type_to_string(IdentifierType t) {
        if (t < 0 || t >= _IDENTIFIER_TYPE_MAX)
                return NULL;
        return identifier_type_table[t];
}

IdentifierType identifier_type_from_string(const char *s) {
        if (!s)
                return _IDENTIFIER_TYPE_INVALID;
        for (IdentifierType t = 0; t < _IDENTIFIER_TYPE_MAX; t++)
                if (strcmp(identifier_type_table[t], s) == 0)
                        return t;
        return _IDENTIFIER_TYPE_INVALID;
}

bool ra_dns_name_valid(const char *name) {
        const char *label;
        size_t n;
        bool all_digits = true;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > DNS_NAME_MAX)
                return false;

        label = name;
        if (strncmp(name, "*.", 2) == 0)
                label = name + 2;

        for (;;) {
                const char *end = strchr(label, '.');
                size_t len = end ? (size_t) (end - label) : strlen(label);

                if (len == 0 || len > DNS_LABEL_MAX)
                        return false;       /* empty label: "a..b", leading or trailing dot */
                if (label[0] == '-' || label[len - 1] == '-')
                        return false;
                all_digits = true;
                for (size_t i = 0; i < len; i++) {
                        char c = label[i];
                        if (c >= '0' && c <= '9')
                                continue;
                        all_digits = false;
                        if (!((c >= 'a' && c <= 'z') || c == '-'))
                                return false;   /* upper case, '*' elsewhere, '_', non-ASCII */
                }
                if (!end)
                        break;
                label = end + 1;
        }

        /* "10.0.0.1" as a DNS name is an IP address in disguise (RFC 8738 wants type "ip"). */
        return !all_digits;
}

typedef struct IpPrefix {
        int family;
        unsigned char addr[16];
        unsigned bits;
} IpPrefix;

static int ip_prefix_parse(const char *s, IpPrefix *ret) {
        char buf[INET6_ADDRSTRLEN + 8];
        const char *slash;
        IpPrefix p = {};
        unsigned max;

        if (strlen(s) >= sizeof buf)
                return -EINVAL;
        strcpy(buf, s);
        slash = strchr(s, '/');
        if (slash)
                buf[slash - s] = '\0';

        if (inet_pton(AF_INET, buf, p.addr) == 1) {
                p.family = AF_INET;
                max = 32;
        } else if (inet_pton(AF_INET6, buf, p.addr) == 1) {
                p.family = AF_INET6;
                max = 128;
        } else
                return -EINVAL;

        p.bits = max;
        if (slash) {
                char *end;
                unsigned long v;

                if (!isdigit((unsigned char) slash[1]))
                        return -EINVAL;
                errno = 0;
                v = strtoul(slash + 1, &end, 10);
                if (errno != 0 || *end != '\0' || v > max)
                        return -EINVAL;
                p.bits = v;
        }

        *ret = p;
        return 0;
}

static bool ip_prefix_contains(const IpPrefix *p, int family, const unsigned char *addr) {
        unsigned full, rest;

        if (p->family != family)
                return false;
        full = p->bits / 8;
        rest = p->bits % 8;
        if (memcmp(p->addr, addr, full) != 0)
                return false;
        if (rest > 0) {
                unsigned char mask = (unsigned char) (0xff << (8 - rest));
                if ((p->addr[full] & mask) != (addr[full] & mask))
                        return false;
        }
        return true;
}

static bool is_ip_pattern(const char *pattern) {
        /* DNS patterns never contain ':' or '/', and an all-numeric dotted one is invalid. */
        IpPrefix p;
        return ip_prefix_parse(pattern, &p) >= 0;
}

bool ra_identifier_pattern_valid(const char *pattern) {
        _cleanup_free_ char *lower = NULL;

        if (!pattern || pattern[0] == '\0')
                return false;
        if (strcmp(pattern, "*") == 0)
                return true;
        if (is_ip_pattern(pattern))
                return true;

        lower = strdup(pattern);
        if (!lower)
                return false;
        for (char *c = lower; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        return ra_dns_name_valid(lower);
}

/* "*.zone.example" allows every name strictly below zone.example, wildcards included; any other
 * pattern allows exactly itself. */
static bool dns_pattern_matches(const char *pattern, const char *name) {
        size_t pn, nn;

        if (strcmp(pattern, "*") == 0)
                return true;
        if (strcasecmp(pattern, name) == 0)
                return true;
        if (strncmp(pattern, "*.", 2) != 0)
                return false;

        pattern += 1;                       /* ".zone.example" */
        pn = strlen(pattern);
        nn = strlen(name);
        return nn > pn && strcasecmp(name + nn - pn, pattern) == 0;
}

int ra_check_identifier(const RaProfile *ra, IdentifierType type, const char *value) {
        if (!ra || !value)
                return -EINVAL;

        switch (type) {
        case IDENTIFIER_DNS:
                if (!ra_dns_name_valid(value))
                        return -CF_E_MALFORMED;
                for (char **i = ra->allowed_identifiers; i && *i; i++)
                        if (!is_ip_pattern(*i) && dns_pattern_matches(*i, value))
                                return 0;
                return -CF_E_REJECTED_IDENTIFIER;

        case IDENTIFIER_IP: {
                unsigned char addr[16];
                char canonical[INET6_ADDRSTRLEN];
                int family;

                if (inet_pton(AF_INET, value, addr) == 1)
                        family = AF_INET;
                else if (inet_pton(AF_INET6, value, addr) == 1)
                        family = AF_INET6;
                else
                        return -CF_E_MALFORMED;
                /* Only the canonical text, so one address has one spelling in the inventory. */
                if (!inet_ntop(family, addr, canonical, sizeof canonical) || strcmp(canonical, value) != 0)
                        return -CF_E_MALFORMED;

                for (char **i = ra->allowed_identifiers; i && *i; i++) {
                        IpPrefix p;
                        if (ip_prefix_parse(*i, &p) >= 0 && ip_prefix_contains(&p, family, addr))
                                return 0;
                }
                return -CF_E_REJECTED_IDENTIFIER;
        }

        default:
                return -CF_E_UNSUPPORTED_IDENTIFIER;
        }
}

int ra_check_key(const RaProfile *ra, EVP_PKEY *key, const char **ret_detail) {
        static char *const default_algorithms[] = { (char *) "ec", (char *) "rsa", NULL };
        char *const *allowed;
        const char *detail;
        KeyInfo info;
        int r;

        if (!ra || !key)
                return -EINVAL;

        r = key_describe(key, &info);
        if (r < 0) {
                detail = "unsupported key type";
                goto fail;
        }

        allowed = ra->key_algorithms ?: default_algorithms;
        if (!strv_contains(allowed, key_algorithm_to_string(info.algorithm))) {
                detail = "key algorithm not allowed by the profile";
                goto fail;
        }

        switch (info.algorithm) {
        case KEY_ALG_RSA:
                if ((unsigned) info.bits < (ra->min_rsa_bits ?: 2048u)) {
                        detail = "RSA key too short";
                        goto fail;
                }
                break;
        case KEY_ALG_EC:
                if ((unsigned) info.bits < ra->min_ec_bits) {
                        detail = "EC key too short";
                        goto fail;
                }
                break;
        default:
                break;
        }
        return 0;

fail:
        if (ret_detail)
                *ret_detail = detail;
        return -CF_E_BAD_PUBLIC_KEY;
}

int ra_check_validity(const RaProfile *ra, cf_time_t not_before, cf_time_t not_after) {
        cf_time_t now = time_now();

        if (!ra)
                return -EINVAL;
        if (not_before == 0)
                not_before = now;
        if (not_after == 0)
                not_after = not_before + ra->validity;

        if (not_after <= not_before || not_after <= now)
                return -CF_E_MALFORMED;
        if (not_after - not_before > ra->max_validity)
                return -CF_E_MALFORMED;
        return 0;
}
