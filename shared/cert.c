/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "shared/cert.h"
#include "shared/errors.h"
#include "shared/macro.h"
#include "shared/strv.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(BASIC_CONSTRAINTS *, BASIC_CONSTRAINTS_free);

static void openssl_strp(char **p) {
        OPENSSL_free(*p);
}

static void openssl_bufp(unsigned char **p) {
        OPENSSL_free(*p);
}

static void *memdup(const void *p, size_t n) {
        void *q;

        q = malloc(n > 0 ? n : 1);
        if (!q)
                return NULL;
        memcpy(q, p, n);
        return q;
}

int x509_name_to_string(const X509_NAME *name, char **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        char *data = NULL, *s;
        long len;

        if (!name)
                return -EINVAL;

        bio = BIO_new(BIO_s_mem());
        if (!bio)
                return -ENOMEM;

        /* RFC 2253 escaping, but multi-byte UTF-8 stays readable instead of becoming \XX. Control
         * characters (NUL included) are still escaped, so the result is a clean C string. */
        if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
                ERR_clear_error();
                return -EBADMSG;
        }

        len = BIO_get_mem_data(bio, &data);
        if (len < 0)
                return -EIO;

        s = strndup(len > 0 ? data : "", (size_t) len);
        if (!s)
                return -ENOMEM;
        if (strlen(s) != (size_t) len) {
                free(s);
                return -EBADMSG;
        }

        *ret = s;
        return 0;
}

int x509_name_get_common_name(const X509_NAME *name, char **ret) {
        _cleanup_(openssl_bufp) unsigned char *utf8 = NULL;
        const ASN1_STRING *value;
        int idx = -1, len;
        char *s;

        if (!name)
                return -EINVAL;

        /* The last CN is the most specific one, as X509_check_host() also assumes. */
        for (int i = -1;;) {
                i = X509_NAME_get_index_by_NID(name, NID_commonName, i);
                if (i < 0)
                        break;
                idx = i;
        }
        if (idx < 0)
                return -ENOENT;

        value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
        if (!value)
                return -EBADMSG;

        len = ASN1_STRING_to_UTF8(&utf8, value);
        if (len < 0) {
                ERR_clear_error();
                return -EBADMSG;
        }
        if (memchr(utf8, '\0', (size_t) len))
                return -EBADMSG;

        s = strndup((const char *) utf8, (size_t) len);
        if (!s)
                return -ENOMEM;

        *ret = s;
        return 0;
}

/* IA5String contents we are willing to hand on: non-empty, printable ASCII. Rejecting control
 * characters keeps names safe to log and to compare as C strings. */
static int ia5_to_string(const ASN1_IA5STRING *s, bool lower, char **ret) {
        const unsigned char *d = ASN1_STRING_get0_data(s);
        int len = ASN1_STRING_length(s);
        char *c;

        if (!d || len <= 0)
                return -EBADMSG;

        c = malloc((size_t) len + 1);
        if (!c)
                return -ENOMEM;

        for (int i = 0; i < len; i++) {
                if (d[i] < 0x20 || d[i] >= 0x7f) {
                        free(c);
                        return -EBADMSG;
                }
                c[i] = lower && d[i] >= 'A' && d[i] <= 'Z' ? (char) (d[i] - 'A' + 'a') : (char) d[i];
        }
        c[len] = '\0';

        *ret = c;
        return 0;
}

static int ip_to_string(const ASN1_OCTET_STRING *s, char **ret) {
        const unsigned char *d = ASN1_STRING_get0_data(s);
        int len = ASN1_STRING_length(s);
        char buf[INET6_ADDRSTRLEN];
        int family;
        char *c;

        if (len == 4)
                family = AF_INET;
        else if (len == 16)
                family = AF_INET6;
        else
                return -EBADMSG;

        if (!inet_ntop(family, d, buf, sizeof(buf)))
                return -EBADMSG;

        c = strdup(buf);
        if (!c)
                return -ENOMEM;

        *ret = c;
        return 0;
}

int general_names_collect(const GENERAL_NAMES *gens, bool strict, size_t max,
                          char ***ret_dns, char ***ret_ips, char ***ret_emails, char ***ret_uris) {
        _cleanup_(strv_freep) char **dns = NULL, **ips = NULL, **emails = NULL, **uris = NULL;
        size_t n = 0;
        int r;

        for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
                const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                char *s = NULL;
                char ***l;

                switch (g->type) {
                case GEN_DNS:
                        r = ia5_to_string(g->d.dNSName, true, &s);
                        l = &dns;
                        break;
                case GEN_IPADD:
                        r = ip_to_string(g->d.iPAddress, &s);
                        l = &ips;
                        break;
                case GEN_EMAIL:
                        r = ia5_to_string(g->d.rfc822Name, false, &s);
                        l = &emails;
                        break;
                case GEN_URI:
                        r = ia5_to_string(g->d.uniformResourceIdentifier, false, &s);
                        l = &uris;
                        break;
                default:
                        if (strict)
                                return -EBADMSG;
                        continue;
                }
                if (r < 0)
                        return r;

                if (++n > max) {
                        free(s);
                        return -EBADMSG;
                }

                r = strv_consume(l, s);
                if (r < 0)
                        return r;
        }

        *ret_dns = TAKE_PTR(dns);
        *ret_ips = TAKE_PTR(ips);
        *ret_emails = TAKE_PTR(emails);
        *ret_uris = TAKE_PTR(uris);
        return 0;
}

/* The INTEGER's content octets exactly as DER encodes them (a leading 0x00 kept), which is what
 * ARI's CertID carries. OpenSSL refuses non-minimal encodings when parsing, so re-encoding gives
 * back the certificate's own bytes. */
static int serial_content_octets(const ASN1_INTEGER *serial, uint8_t **ret, size_t *ret_size) {
        _cleanup_(openssl_bufp) unsigned char *der = NULL;
        const unsigned char *p;
        long content = 0;
        int len, tag, class;
        uint8_t *b;

        len = i2d_ASN1_INTEGER(serial, &der);
        if (len <= 0) {
                ERR_clear_error();
                return -EBADMSG;
        }

        p = der;
        if (ASN1_get_object(&p, &content, &tag, &class, len) & 0x80) {
                ERR_clear_error();
                return -EBADMSG;
        }
        if (tag != V_ASN1_INTEGER || content <= 0 || p + content != der + len)
                return -EBADMSG;

        b = memdup(p, (size_t) content);
        if (!b)
                return -ENOMEM;

        *ret = b;
        *ret_size = (size_t) content;
        return 0;
}

static int serial_to_hex(const ASN1_INTEGER *serial, char **ret) {
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        _cleanup_(openssl_strp) char *hex = NULL;
        const char *p;
        char *s;

        bn = ASN1_INTEGER_to_BN(serial, NULL);
        if (!bn) {
                ERR_clear_error();
                return -EBADMSG;
        }

        /* BN_bn2hex() prints whole bytes ("0A"), "0" for zero, and a '-' for negative values
         * (invalid in RFC 5280 but found in the wild). The inventory's form has no leading zero
         * at all, so that "0a1b" typed by an admin and the stored serial compare equal. */
        hex = BN_bn2hex(bn);
        if (!hex)
                return -ENOMEM;

        p = hex;
        if (*p == '-')
                p++;
        while (p[0] == '0' && p[1] != '\0')
                p++;
        if (asprintf(&s, "%s%s", hex[0] == '-' ? "-" : "", p) < 0)
                return -ENOMEM;
        for (char *c = s; *c; c++)
                if (*c >= 'A' && *c <= 'F')
                        *c = (char) (*c - 'A' + 'a');

        *ret = s;
        return 0;
}

int cert_serial_hex(X509 *cert, char **ret) {
        if (!cert)
                return -EINVAL;

        return serial_to_hex(X509_get0_serialNumber(cert), ret);
}

CertInfo *cert_info_free(CertInfo *info) {
        if (!info)
                return NULL;

        free(info->serial_hex);
        free(info->serial);
        free(info->issuer);
        free(info->subject);
        free(info->common_name);
        strv_free(info->dns);
        strv_free(info->ips);
        strv_free(info->emails);
        strv_free(info->uris);
        free(info->aki);
        free(info->ski);
        strv_free(info->ekus);
        free(info);
        return NULL;
}

static int octets_dup(const ASN1_OCTET_STRING *s, uint8_t **ret, size_t *ret_size) {
        int len = ASN1_STRING_length(s);
        uint8_t *b;

        if (len < 0)
                return -EBADMSG;

        b = memdup(ASN1_STRING_get0_data(s), (size_t) len);
        if (!b)
                return -ENOMEM;

        *ret = b;
        *ret_size = (size_t) len;
        return 0;
}

static int cert_collect_ekus(X509 *cert, char ***ret) {
        _cleanup_(EXTENDED_KEY_USAGE_freep) EXTENDED_KEY_USAGE *eku = NULL;
        _cleanup_(strv_freep) char **l = NULL;
        int crit = -1, r;

        eku = X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, NULL);
        if (!eku) {
                ERR_clear_error();
                if (crit == -1) {
                        *ret = NULL;
                        return 0;
                }
                return -EBADMSG;
        }

        for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
                const ASN1_OBJECT *obj = sk_ASN1_OBJECT_value(eku, i);
                int nid = OBJ_obj2nid(obj);
                char buf[128];

                if (nid != NID_undef) {
                        r = strv_extend(&l, OBJ_nid2sn(nid));
                        if (r < 0)
                                return r;
                        continue;
                }

                /* Unknown purpose: its dotted OID. Longer than any sane OID → malformed. */
                r = OBJ_obj2txt(buf, sizeof(buf), obj, 1);
                if (r <= 0 || (size_t) r >= sizeof(buf))
                        return -EBADMSG;

                r = strv_extend(&l, buf);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(l);
        return 0;
}

static int cert_get_sans(X509 *cert, CertInfo *info) {
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = NULL;
        int crit = -1;

        gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
        if (!gens && crit != -1) {
                ERR_clear_error();
                return -EBADMSG;
        }

        /* Certificates come from CAs we do not control: names we do not model (otherName,
         * directoryName, …) are skipped, not fatal. */
        return general_names_collect(gens, false, SIZE_MAX,
                                     &info->dns, &info->ips, &info->emails, &info->uris);
}

int cert_inspect(X509 *cert, CertInfo **ret) {
        return cert_inspect_with_key(cert, NULL, ret);
}

int cert_inspect_with_key(X509 *cert, EVP_PKEY *key, CertInfo **ret) {
        _cleanup_(cert_info_freep) CertInfo *info = NULL;
        _cleanup_(BASIC_CONSTRAINTS_freep) BASIC_CONSTRAINTS *bc = NULL;
        const ASN1_OCTET_STRING *kid;
        int crit = -1, r;

        if (!cert)
                return -EINVAL;

        /* Also fills OpenSSL's extension cache that the get0 accessors below read; an extension
         * that does not decode, or a duplicated one, marks the certificate invalid. */
        if (X509_get_extension_flags(cert) & EXFLAG_INVALID) {
                ERR_clear_error();
                return -EBADMSG;
        }

        info = calloc(1, sizeof(*info));
        if (!info)
                return -ENOMEM;
        info->key_usage = UINT32_MAX;

        r = serial_to_hex(X509_get0_serialNumber(cert), &info->serial_hex);
        if (r < 0)
                return r;
        r = serial_content_octets(X509_get0_serialNumber(cert), &info->serial, &info->serial_size);
        if (r < 0)
                return r;

        r = x509_name_to_string(X509_get_issuer_name(cert), &info->issuer);
        if (r < 0)
                return r;
        r = x509_name_to_string(X509_get_subject_name(cert), &info->subject);
        if (r < 0)
                return r;
        r = x509_name_get_common_name(X509_get_subject_name(cert), &info->common_name);
        if (r < 0 && r != -ENOENT)
                return r;

        r = cert_get_sans(cert, info);
        if (r < 0)
                return r;

        r = time_from_asn1(X509_get0_notBefore(cert), &info->not_before);
        if (r >= 0)
                r = time_from_asn1(X509_get0_notAfter(cert), &info->not_after);
        if (r < 0) {
                ERR_clear_error();
                return -EBADMSG;
        }

        kid = X509_get0_authority_key_id(cert);
        if (kid) {
                r = octets_dup(kid, &info->aki, &info->aki_size);
                if (r < 0)
                        return r;
        }
        kid = X509_get0_subject_key_id(cert);
        if (kid) {
                r = octets_dup(kid, &info->ski, &info->ski_size);
                if (r < 0)
                        return r;
        }

        if (X509_get_extension_flags(cert) & EXFLAG_KUSAGE)
                info->key_usage = X509_get_key_usage(cert);

        r = cert_collect_ekus(cert, &info->ekus);
        if (r < 0)
                return r;

        bc = X509_get_ext_d2i(cert, NID_basic_constraints, &crit, NULL);
        if (!bc && crit != -1) {
                ERR_clear_error();
                return -EBADMSG;
        }
        info->is_ca = bc && bc->ca;

        if (!key)
                key = X509_get0_pubkey(cert);
        if (!key) {
                ERR_clear_error();
                return -EBADMSG;
        }
        r = key_describe(key, &info->key);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(info);
        return 0;
}

int chain_check_order(STACK_OF(X509) *chain, size_t *ret_bad_index) {
        int n;

        if (!chain)
                return -EINVAL;

        n = sk_X509_num(chain);
        if (n <= 0)
                return -EINVAL;

        for (int i = 0; i + 1 < n; i++) {
                X509 *c = sk_X509_value(chain, i), *issuer = sk_X509_value(chain, i + 1);
                EVP_PKEY *issuer_key = X509_get0_pubkey(issuer);

                if (X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(issuer)) != 0 ||
                    !issuer_key ||
                    X509_verify(c, issuer_key) != 1) {
                        ERR_clear_error();
                        if (ret_bad_index)
                                *ret_bad_index = (size_t) i;
                        return -CF_E_MALFORMED;
                }
        }

        return 0;
}
