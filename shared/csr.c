/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "shared/cert.h"
#include "shared/csr.h"
#include "shared/errors.h"
#include "shared/key.h"
#include "shared/macro.h"
#include "shared/strv.h"

#define CN_MAX 64                  /* ub-common-name, RFC 5280 */
#define CHALLENGE_PASSWORD_MAX 255 /* ub-challenge-password characters, RFC 2985 */

static void extensions_freep(STACK_OF(X509_EXTENSION) **p) {
        if (*p)
                sk_X509_EXTENSION_pop_free(*p, X509_EXTENSION_free);
}

static void openssl_bufp(unsigned char **p) {
        OPENSSL_free(*p);
}

/* dNSName, rfc822Name and URI are IA5Strings: insist on visible ASCII, no spaces. */
static bool ia5_name_valid(const char *s) {
        if (!s || !*s)
                return false;
        for (const char *p = s; *p; p++)
                if (*p < 0x21 || *p > 0x7e)
                        return false;
        return true;
}

static int gens_add_ia5(GENERAL_NAMES *gens, int type, const char *s) {
        GENERAL_NAME *g;
        ASN1_IA5STRING *ia5;

        if (!ia5_name_valid(s))
                return -EINVAL;

        ia5 = ASN1_IA5STRING_new();
        if (!ia5)
                return -ENOMEM;
        if (ASN1_STRING_set(ia5, s, (int) strlen(s)) != 1) {
                ASN1_IA5STRING_free(ia5);
                return -ENOMEM;
        }

        g = GENERAL_NAME_new();
        if (!g) {
                ASN1_IA5STRING_free(ia5);
                return -ENOMEM;
        }
        GENERAL_NAME_set0_value(g, type, ia5);

        if (sk_GENERAL_NAME_push(gens, g) <= 0) {
                GENERAL_NAME_free(g);
                return -ENOMEM;
        }
        return 0;
}

static int gens_add_ip(GENERAL_NAMES *gens, const char *s) {
        unsigned char buf[16];
        ASN1_OCTET_STRING *os;
        GENERAL_NAME *g;
        int len;

        if (!s)
                return -EINVAL;
        if (inet_pton(AF_INET, s, buf) == 1)
                len = 4;
        else if (inet_pton(AF_INET6, s, buf) == 1)
                len = 16;
        else
                return -EINVAL;

        os = ASN1_OCTET_STRING_new();
        if (!os)
                return -ENOMEM;
        if (ASN1_OCTET_STRING_set(os, buf, len) != 1) {
                ASN1_OCTET_STRING_free(os);
                return -ENOMEM;
        }

        g = GENERAL_NAME_new();
        if (!g) {
                ASN1_OCTET_STRING_free(os);
                return -ENOMEM;
        }
        GENERAL_NAME_set0_value(g, GEN_IPADD, os);

        if (sk_GENERAL_NAME_push(gens, g) <= 0) {
                GENERAL_NAME_free(g);
                return -ENOMEM;
        }
        return 0;
}

static int csr_add_san(X509_REQ *csr, const CsrRequest *req, bool critical) {
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = NULL;
        _cleanup_(extensions_freep) STACK_OF(X509_EXTENSION) *exts = NULL;
        _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = NULL;
        size_t n;
        int r;

        n = strv_length(req->dns) + strv_length(req->ips) + strv_length(req->emails) +
                strv_length(req->uris);
        if (n == 0)
                return 0;
        /* Whatever we would refuse when inspecting, refuse to build. */
        if (n > CSR_NAMES_MAX)
                return -E2BIG;

        gens = GENERAL_NAMES_new();
        if (!gens)
                return -ENOMEM;

        for (char **s = req->dns; s && *s; s++) {
                r = gens_add_ia5(gens, GEN_DNS, *s);
                if (r < 0)
                        return r;
        }
        for (char **s = req->ips; s && *s; s++) {
                r = gens_add_ip(gens, *s);
                if (r < 0)
                        return r;
        }
        for (char **s = req->emails; s && *s; s++) {
                r = gens_add_ia5(gens, GEN_EMAIL, *s);
                if (r < 0)
                        return r;
        }
        for (char **s = req->uris; s && *s; s++) {
                r = gens_add_ia5(gens, GEN_URI, *s);
                if (r < 0)
                        return r;
        }

        ext = X509V3_EXT_i2d(NID_subject_alt_name, critical ? 1 : 0, gens);
        if (!ext) {
                ERR_clear_error();
                return -ENOMEM;
        }

        exts = sk_X509_EXTENSION_new_null();
        if (!exts)
                return -ENOMEM;
        if (sk_X509_EXTENSION_push(exts, ext) <= 0)
                return -ENOMEM;
        TAKE_PTR(ext);

        if (X509_REQ_add_extensions(csr, exts) != 1) {
                ERR_clear_error();
                return -ENOMEM;
        }
        return 0;
}

/* Number of UTF-8 characters in s, or -EINVAL if s is not valid UTF-8. */
static int utf8_length(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s;
        int n = 0;

        while (len > 0) {
                unsigned long c;
                int k;

                k = UTF8_getc(p, (int) MIN(len, (size_t) 8), &c);
                if (k <= 0)
                        return -EINVAL;
                p += k;
                len -= (size_t) k;
                n++;
        }
        return n;
}

static int csr_add_challenge_password(X509_REQ *csr, const char *password) {
        size_t len = strlen(password);
        int n, type;

        /* At most 4 bytes a character: refuse huge input before walking it. */
        if (len > 4 * CHALLENGE_PASSWORD_MAX)
                return -EINVAL;
        n = utf8_length(password, len);
        if (n <= 0 || n > CHALLENGE_PASSWORD_MAX)
                return -EINVAL;

        /* PrintableString when it fits: older SCEP servers understand nothing else. */
        type = ASN1_PRINTABLE_type((const unsigned char *) password, (int) len) == V_ASN1_PRINTABLESTRING ?
                V_ASN1_PRINTABLESTRING : V_ASN1_UTF8STRING;

        if (X509_REQ_add1_attr_by_NID(csr, NID_pkcs9_challengePassword, type,
                                      (const unsigned char *) password, (int) len) != 1) {
                ERR_clear_error();
                return -ENOMEM;
        }
        return 0;
}

static bool key_is_pure_signature(EVP_PKEY *key) {
        return EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448");
}

int csr_build(const CsrRequest *req, X509_REQ **ret) {
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        X509_NAME *name;
        const char *cn;
        int r;

        if (!req || !req->key || !ret)
                return -EINVAL;

        csr = X509_REQ_new();
        if (!csr)
                return -ENOMEM;
        if (X509_REQ_set_version(csr, X509_REQ_VERSION_1) != 1)
                return -ENOMEM;

        /* The first DNS name only stands in for a missing CN if it fits in one. */
        cn = req->common_name;
        if (!cn && req->dns && req->dns[0] && strlen(req->dns[0]) <= CN_MAX)
                cn = req->dns[0];
        if (cn) {
                if (strlen(cn) > 4 * CN_MAX)
                        return -EINVAL;
                r = utf8_length(cn, strlen(cn));
                if (r <= 0 || r > CN_MAX)
                        return -EINVAL;

                name = X509_REQ_get_subject_name(csr);
                if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                               (const unsigned char *) cn, -1, -1, 0) != 1) {
                        ERR_clear_error();
                        return -EINVAL;
                }
        }

        /* RFC 5280 §4.2.1.6: with an empty subject the SAN extension must be critical. */
        r = csr_add_san(csr, req, !cn);
        if (r < 0)
                return r;

        if (req->challenge_password) {
                r = csr_add_challenge_password(csr, req->challenge_password);
                if (r < 0)
                        return r;
        }

        if (X509_REQ_set_pubkey(csr, req->key) != 1) {
                ERR_clear_error();
                return -EINVAL;
        }

        if (X509_REQ_sign(csr, req->key, key_is_pure_signature(req->key) ? NULL : EVP_sha256()) <= 0) {
                ERR_clear_error();
                return -EINVAL;
        }

        *ret = TAKE_PTR(csr);
        return 0;
}

CsrInfo *csr_info_free(CsrInfo *info) {
        if (!info)
                return NULL;

        free(info->subject);
        free(info->common_name);
        strv_free(info->dns);
        strv_free(info->ips);
        strv_free(info->emails);
        strv_free(info->uris);
        if (info->challenge_password) {
                explicit_bzero(info->challenge_password, strlen(info->challenge_password));
                free(info->challenge_password);
        }
        EVP_PKEY_free(info->public_key);
        free(info);
        return NULL;
}

static int csr_get_sans(X509_REQ *csr, CsrInfo *info) {
        _cleanup_(extensions_freep) STACK_OF(X509_EXTENSION) *exts = NULL;
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = NULL;
        int crit = -1;

        exts = X509_REQ_get_extensions(csr);
        if (!exts) {
                ERR_clear_error();
                /* OpenSSL returns NULL both for "no extensionRequest" and for one it cannot
                 * decode; only the second is an error. */
                if (X509_REQ_get_attr_by_NID(csr, NID_ext_req, -1) >= 0 ||
                    X509_REQ_get_attr_by_NID(csr, NID_ms_ext_req, -1) >= 0)
                        return -CF_E_BAD_CSR;
                return 0;
        }

        gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
        if (!gens) {
                ERR_clear_error();
                /* -1: absent; -2: present more than once; otherwise it did not decode. */
                return crit == -1 ? 0 : -CF_E_BAD_CSR;
        }

        return general_names_collect(gens, true, CSR_NAMES_MAX,
                                     &info->dns, &info->ips, &info->emails, &info->uris);
}

static int csr_get_challenge_password(X509_REQ *csr, char **ret) {
        _cleanup_(openssl_bufp) unsigned char *utf8 = NULL;
        X509_ATTRIBUTE *attr;
        ASN1_TYPE *value;
        int idx, len;
        char *s;

        idx = X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, -1);
        if (idx < 0) {
                *ret = NULL;
                return 0;
        }
        if (X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, idx) >= 0)
                return -CF_E_BAD_CSR;

        attr = X509_REQ_get_attr(csr, idx);
        if (!attr || X509_ATTRIBUTE_count(attr) != 1)
                return -CF_E_BAD_CSR;

        value = X509_ATTRIBUTE_get0_type(attr, 0);
        if (!value)
                return -CF_E_BAD_CSR;

        /* DirectoryString (RFC 2985), plus IA5String which some clients send. */
        switch (ASN1_TYPE_get(value)) {
        case V_ASN1_PRINTABLESTRING:
        case V_ASN1_UTF8STRING:
        case V_ASN1_IA5STRING:
        case V_ASN1_T61STRING:
        case V_ASN1_BMPSTRING:
        case V_ASN1_UNIVERSALSTRING:
                break;
        default:
                return -CF_E_BAD_CSR;
        }

        len = ASN1_STRING_to_UTF8(&utf8, value->value.asn1_string);
        if (len < 0) {
                ERR_clear_error();
                return -CF_E_BAD_CSR;
        }
        if (len == 0 || memchr(utf8, '\0', (size_t) len)) {
                OPENSSL_cleanse(utf8, (size_t) len);
                return -CF_E_BAD_CSR;
        }

        s = strndup((const char *) utf8, (size_t) len);
        OPENSSL_cleanse(utf8, (size_t) len);
        if (!s)
                return -ENOMEM;

        *ret = s;
        return 0;
}

/* Anything wrong with the request itself is "bad CSR" for the protocol front ends; only
 * resource errors keep their errno. */
static int bad_csr(int r) {
        return r == -ENOMEM ? r : -CF_E_BAD_CSR;
}

int csr_public_key(X509_REQ *csr, EVP_PKEY **ret) {
        if (!csr || !ret)
                return -EINVAL;
        return key_from_spki(X509_REQ_get_X509_PUBKEY(csr), ret);
}

int csr_inspect(X509_REQ *csr, CsrInfo **ret) {
        _cleanup_(csr_info_freep) CsrInfo *info = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r;

        if (!csr)
                return -EINVAL;

        /* Nothing in the request is looked at before its proof of possession checks out. The
         * default library context verifies: the request may come from der_read_csr's keyless one. */
        r = csr_public_key(csr, &key);
        if (r < 0)
                return bad_csr(r);
        if (X509_REQ_verify_ex(csr, key, NULL, NULL) != 1) {
                ERR_clear_error();
                return -CF_E_BAD_CSR;
        }

        if (X509_REQ_get_version(csr) != X509_REQ_VERSION_1)
                return -CF_E_BAD_CSR;

        info = calloc(1, sizeof(*info));
        if (!info)
                return -ENOMEM;

        r = x509_name_to_string(X509_REQ_get_subject_name(csr), &info->subject);
        if (r < 0)
                return bad_csr(r);
        r = x509_name_get_common_name(X509_REQ_get_subject_name(csr), &info->common_name);
        if (r < 0 && r != -ENOENT)
                return bad_csr(r);

        r = csr_get_sans(csr, info);
        if (r < 0)
                return bad_csr(r);

        r = csr_get_challenge_password(csr, &info->challenge_password);
        if (r < 0)
                return bad_csr(r);

        r = key_describe(key, &info->key);
        if (r < 0)
                return bad_csr(r);

        info->public_key = TAKE_PTR(key);

        *ret = TAKE_PTR(info);
        return 0;
}
