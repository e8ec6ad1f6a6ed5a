/* SPDX-License-Identifier: Apache-2.0 */
/* The "local" CA backend: a root and an issuing CA created by `certfleet-server ca init`, whose
 * issuing key signs in this process. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "server/ca/ca-internal.h"
#include "shared/cert.h"
#include "shared/errors.h"
#include "shared/fileio.h"
#include "shared/key.h"
#include "shared/log.h"
#include "shared/pem.h"
#include "shared/time-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OBJECT *, ASN1_OBJECT_free);

#define CA_ROOT_LIFETIME (10 * 365 * 24 * 3600LL)
#define CA_ISSUING_LIFETIME (5 * 365 * 24 * 3600LL)
/* A common name longer than X.520's ub-common-name can't be encoded; the SAN carries it. */
#define CA_COMMON_NAME_MAX 64

typedef struct LocalCa {
        EVP_PKEY *key;
        char *crl_url;
        char *ocsp_url;
        char *ca_issuers_url;
} LocalCa;

static const char *const ca_local_files[] = { "root.crt", "root.key", "issuing.crt", "issuing.key" };

/* The digest that matches the key's strength; Ed25519 signs without a separate digest. */
static const EVP_MD *ca_digest_for_key(EVP_PKEY *key) {
        KeyInfo info;

        if (key_describe(key, &info) >= 0) {
                if (info.algorithm == KEY_ALG_ED25519)
                        return NULL;
                if (info.algorithm == KEY_ALG_EC && info.bits > 384)
                        return EVP_sha512();
                if (info.algorithm == KEY_ALG_EC && info.bits > 256)
                        return EVP_sha384();
        }
        return EVP_sha256();
}

static int cert_add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
        _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = NULL;
        X509V3_CTX ctx;

        X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        if (!ext)
                return -EINVAL;
        if (!X509_add_ext(cert, ext, -1))
                return -ENOMEM;
        return 0;
}

static int cert_set_times(X509 *cert, cf_time_t not_before, cf_time_t not_after) {
        if (!ASN1_TIME_set(X509_getm_notBefore(cert), (time_t) not_before) ||
            !ASN1_TIME_set(X509_getm_notAfter(cert), (time_t) not_after))
                return -ERANGE;
        return 0;
}

/* Copies an encoded SubjectPublicKeyInfo into the certificate without decoding or encoding the
 * key. Only the parameter forms of the key types we issue for (RSA: NULL, EC: named curve,
 * Ed25519: absent); -EOPNOTSUPP for anything else, and the caller encodes the key instead. */
static int cert_copy_spki(X509 *cert, const X509_PUBKEY *spki) {
        _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *alg = NULL, *param = NULL;
        unsigned char *bits;
        const ASN1_OBJECT *src_alg;
        const unsigned char *pk;
        const void *pval;
        X509_ALGOR *a;
        int pklen, ptype;

        if (X509_PUBKEY_get0_param(NULL, &pk, &pklen, &a, spki) != 1 || !a || pklen <= 0)
                return -EINVAL;
        X509_ALGOR_get0(&src_alg, &ptype, &pval, a);
        if (ptype == V_ASN1_OBJECT) {
                param = OBJ_dup(pval);
                if (!param)
                        return -ENOMEM;
        } else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
                return -EOPNOTSUPP;

        alg = OBJ_dup(src_alg);
        if (!alg)
                return -ENOMEM;
        bits = OPENSSL_memdup(pk, pklen);
        if (!bits)
                return -ENOMEM;
        /* Fails only before it takes anything (allocating the parameter's ASN1_TYPE). */
        if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), alg, ptype, param, bits, pklen) != 1) {
                OPENSSL_free(bits);
                return -ENOMEM;
        }
        TAKE_PTR(alg);
        TAKE_PTR(param);
        return 0;
}

static int cert_new(EVP_PKEY *public_key, const X509_PUBKEY *spki, X509 **ret) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *serial = NULL;
        int r;

        cert = X509_new();
        if (!cert)
                return -ENOMEM;
        if (!X509_set_version(cert, X509_VERSION_3))
                return -EIO;
        r = ca_random_serial(&serial);
        if (r < 0)
                return r;
        if (!X509_set_serialNumber(cert, serial))
                return -ENOMEM;
        r = spki ? cert_copy_spki(cert, spki) : -EOPNOTSUPP;
        if (r == -EOPNOTSUPP && !X509_set_pubkey(cert, public_key))
                return -ENOMEM;
        if (r < 0 && r != -EOPNOTSUPP)
                return r;

        *ret = TAKE_PTR(cert);
        return 0;
}

static int name_with_cn(const char *cn, X509_NAME **ret) {
        _cleanup_(X509_NAME_freep) X509_NAME *name = NULL;

        name = X509_NAME_new();
        if (!name)
                return -ENOMEM;
        if (cn && !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                              (const unsigned char *) cn, -1, -1, 0))
                return -EINVAL;
        *ret = TAKE_PTR(name);
        return 0;
}

static int ca_make_ca_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                           bool path_len_zero, int64_t lifetime, X509 **ret) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(X509_NAME_freep) X509_NAME *name = NULL;
        cf_time_t now = time_now();
        X509 *signer_cert;
        int r;

        r = cert_new(key, NULL, &cert);
        if (r < 0)
                return r;
        r = name_with_cn(cn, &name);
        if (r < 0)
                return r;
        if (!X509_set_subject_name(cert, name) ||
            !X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name))
                return -ENOMEM;
        /* Back-dated an hour so a host whose clock lags a little accepts a fresh CA. */
        r = cert_set_times(cert, now - 3600, now + lifetime);
        if (r < 0)
                return r;

        /* For the self-signed root the certificate is its own issuer: the AKI then repeats the
         * SKI, which is why the SKI must exist before the AKI is computed. */
        signer_cert = issuer ?: cert;
        if ((r = cert_add_ext(cert, signer_cert, NID_basic_constraints,
                              path_len_zero ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE")) < 0 ||
            (r = cert_add_ext(cert, signer_cert, NID_key_usage, "critical,keyCertSign,cRLSign")) < 0 ||
            (r = cert_add_ext(cert, signer_cert, NID_subject_key_identifier, "hash")) < 0 ||
            (r = cert_add_ext(cert, signer_cert, NID_authority_key_identifier, "keyid:always")) < 0)
                return r;

        if (X509_sign(cert, issuer_key, ca_digest_for_key(issuer_key)) <= 0)
                return -EIO;

        *ret = TAKE_PTR(cert);
        return 0;
}

static int ca_path(const char *directory, const char *file, char **ret) {
        char *p;

        if (asprintf(&p, "%s/%s", directory, file) < 0)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int ca_local_init(const char *directory, KeyType key_type, const char *name_prefix, bool force) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *root_key = NULL, *issuing_key = NULL;
        _cleanup_(X509_freep) X509 *root = NULL, *issuing = NULL;
        _cleanup_free_ char *root_cn = NULL, *issuing_cn = NULL;
        _cleanup_free_ char *root_crt = NULL, *root_keyfile = NULL, *issuing_crt = NULL, *issuing_keyfile = NULL;
        int r;

        if (!directory || directory[0] == '\0' || key_type < 0 || key_type >= _KEY_TYPE_MAX)
                return -EINVAL;
        if (!name_prefix || name_prefix[0] == '\0')
                name_prefix = "certfleet";

        r = mkdir_p(directory, 0700);
        if (r < 0)
                return r;

        if (!force)
                for (size_t i = 0; i < ELEMENTSOF(ca_local_files); i++) {
                        _cleanup_free_ char *p = NULL;

                        r = ca_path(directory, ca_local_files[i], &p);
                        if (r < 0)
                                return r;
                        if (access(p, F_OK) >= 0)
                                return -EEXIST;
                        if (errno != ENOENT)
                                return -errno;
                }

        if (asprintf(&root_cn, "%s Root CA", name_prefix) < 0) {
                root_cn = NULL;
                return -ENOMEM;
        }
        if (asprintf(&issuing_cn, "%s Issuing CA", name_prefix) < 0) {
                issuing_cn = NULL;
                return -ENOMEM;
        }
        if (strlen(root_cn) > CA_COMMON_NAME_MAX || strlen(issuing_cn) > CA_COMMON_NAME_MAX)
                return -ENAMETOOLONG;

        r = key_generate(key_type, &root_key);
        if (r < 0)
                return r;
        r = key_generate(key_type, &issuing_key);
        if (r < 0)
                return r;

        r = ca_make_ca_cert(root_key, root_cn, NULL, root_key, false, CA_ROOT_LIFETIME, &root);
        if (r < 0)
                return r;
        r = ca_make_ca_cert(issuing_key, issuing_cn, root, root_key, true, CA_ISSUING_LIFETIME, &issuing);
        if (r < 0)
                return r;

        if ((r = ca_path(directory, "root.crt", &root_crt)) < 0 ||
            (r = ca_path(directory, "root.key", &root_keyfile)) < 0 ||
            (r = ca_path(directory, "issuing.crt", &issuing_crt)) < 0 ||
            (r = ca_path(directory, "issuing.key", &issuing_keyfile)) < 0)
                return r;

        /* Keys first: a directory with certificates but no keys would look like a usable CA. */
        r = private_key_save_file(root_keyfile, root_key, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                return r;
        r = private_key_save_file(issuing_keyfile, issuing_key, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                return r;
        r = cert_save_file(root_crt, root, 0644, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                return r;
        r = cert_save_file(issuing_crt, issuing, 0644, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                return r;

        return 0;
}

static int ca_local_open(CaBackend *ca, const CaConfig *config) {
        _cleanup_free_ char *root_crt = NULL, *issuing_crt = NULL, *issuing_keyfile = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *root = NULL, *issuing = NULL;
        LocalCa *l;
        int r;

        if (!config->directory)
                return -EINVAL;

        if ((r = ca_path(config->directory, "root.crt", &root_crt)) < 0 ||
            (r = ca_path(config->directory, "issuing.crt", &issuing_crt)) < 0 ||
            (r = ca_path(config->directory, "issuing.key", &issuing_keyfile)) < 0)
                return r;

        r = cert_load_file(root_crt, &root);
        if (r < 0)
                return log_debug_errno(r, "Failed to load '%s': %m", root_crt);
        r = cert_load_file(issuing_crt, &issuing);
        if (r < 0)
                return log_debug_errno(r, "Failed to load '%s': %m", issuing_crt);
        r = private_key_load_file(issuing_keyfile, &key);
        if (r < 0)
                return log_debug_errno(r, "Failed to load '%s': %m", issuing_keyfile);

        if (X509_check_private_key(issuing, key) != 1)
                return log_debug_errno(-EBADMSG, "'%s' does not belong to '%s'.", issuing_keyfile, issuing_crt);
        if (X509_verify(issuing, X509_get0_pubkey(root)) != 1)
                return log_debug_errno(-EBADMSG, "'%s' is not signed by '%s'.", issuing_crt, root_crt);
        if (!X509_get0_subject_key_id(issuing))
                return log_debug_errno(-EBADMSG, "'%s' has no subject key identifier.", issuing_crt);

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        ca->data = l;
        if ((config->crl_url && !(l->crl_url = strdup(config->crl_url))) ||
            (config->ocsp_url && !(l->ocsp_url = strdup(config->ocsp_url))) ||
            (config->ca_issuers_url && !(l->ca_issuers_url = strdup(config->ca_issuers_url))))
                return -ENOMEM;

        l->key = TAKE_PTR(key);
        ca->issuer = TAKE_PTR(issuing);
        ca->root = TAKE_PTR(root);
        return 0;
}

static void ca_local_done(CaBackend *ca) {
        LocalCa *l = ca->data;

        if (!l)
                return;
        EVP_PKEY_free(l->key);
        free(l->crl_url);
        free(l->ocsp_url);
        free(l->ca_issuers_url);
        free(l);
        ca->data = NULL;
}

static int general_names_add(GENERAL_NAMES *gens, int type, const char *value) {
        GENERAL_NAME *gn;

        gn = GENERAL_NAME_new();
        if (!gn)
                return -ENOMEM;

        if (type == GEN_DNS) {
                ASN1_IA5STRING *s = ASN1_IA5STRING_new();
                if (!s || !ASN1_STRING_set(s, value, -1)) {
                        ASN1_IA5STRING_free(s);
                        GENERAL_NAME_free(gn);
                        return -ENOMEM;
                }
                GENERAL_NAME_set0_value(gn, GEN_DNS, s);
        } else {
                ASN1_OCTET_STRING *ip = a2i_IPADDRESS(value);
                if (!ip) {
                        GENERAL_NAME_free(gn);
                        return -EINVAL;
                }
                GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
        }

        if (!sk_GENERAL_NAME_push(gens, gn)) {
                GENERAL_NAME_free(gn);
                return -ENOMEM;
        }
        return 0;
}

static int leaf_add_san(X509 *cert, const CaIssueRequest *req, bool critical) {
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = NULL;
        int r;

        gens = GENERAL_NAMES_new();
        if (!gens)
                return -ENOMEM;
        for (char **i = req->dns; i && *i; i++) {
                r = general_names_add(gens, GEN_DNS, *i);
                if (r < 0)
                        return r;
        }
        for (char **i = req->ips; i && *i; i++) {
                r = general_names_add(gens, GEN_IPADD, *i);
                if (r < 0)
                        return r;
        }
        if (X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, critical, X509V3_ADD_DEFAULT) != 1)
                return -ENOMEM;
        return 0;
}

static int leaf_add_eku(X509 *cert, char **ekus) {
        _cleanup_(EXTENDED_KEY_USAGE_freep) EXTENDED_KEY_USAGE *eku = NULL;
        static char *const default_ekus[] = { (char *) "serverAuth", NULL };

        eku = sk_ASN1_OBJECT_new_null();
        if (!eku)
                return -ENOMEM;
        for (char *const *i = ekus ?: default_ekus; *i; i++) {
                ASN1_OBJECT *o = OBJ_txt2obj(*i, 0);
                if (!o)
                        return -EINVAL;
                if (!sk_ASN1_OBJECT_push(eku, o)) {
                        ASN1_OBJECT_free(o);
                        return -ENOMEM;
                }
        }
        if (X509_add1_ext_i2d(cert, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) != 1)
                return -ENOMEM;
        return 0;
}

static int ca_local_issue(CaBackend *ca, const RaProfile *profile, const CaIssueRequest *req,
                          X509 **ret_cert, STACK_OF(X509) **ret_chain) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(X509_NAME_freep) X509_NAME *subject = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_free_ char *aia = NULL, *crldp = NULL;
        LocalCa *l = ca->data;
        const char *cn = req->common_name;
        KeyInfo info;
        int r;

        if (cn && strlen(cn) > CA_COMMON_NAME_MAX)
                cn = NULL;

        r = key_describe(req->public_key, &info);
        if (r < 0)
                return -CF_E_BAD_PUBLIC_KEY;

        r = cert_new(req->public_key, req->public_key_info, &cert);
        if (r < 0)
                return r;
        r = name_with_cn(cn, &subject);
        if (r < 0)
                return r;
        if (!X509_set_subject_name(cert, subject) ||
            !X509_set_issuer_name(cert, X509_get_subject_name(ca->issuer)))
                return -ENOMEM;
        r = cert_set_times(cert, req->not_before, req->not_after);
        if (r < 0)
                return r;

        if ((r = cert_add_ext(cert, ca->issuer, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
            (r = cert_add_ext(cert, ca->issuer, NID_key_usage,
                              info.algorithm == KEY_ALG_RSA ? "critical,digitalSignature,keyEncipherment"
                                                            : "critical,digitalSignature")) < 0)
                return r;
        r = leaf_add_eku(cert, profile->ekus);
        if (r < 0)
                return r;
        /* RFC 5280 §4.2.1.6: with an empty subject the SAN is the only name, so critical. */
        r = leaf_add_san(cert, req, !cn);
        if (r < 0)
                return r;
        if ((r = cert_add_ext(cert, ca->issuer, NID_subject_key_identifier, "hash")) < 0 ||
            (r = cert_add_ext(cert, ca->issuer, NID_authority_key_identifier, "keyid:always")) < 0)
                return r;

        /* The URLs were checked at config load: plain http(s), nothing that needs escaping. */
        if (l->crl_url) {
                if (asprintf(&crldp, "URI:%s", l->crl_url) < 0) {
                        crldp = NULL;
                        return -ENOMEM;
                }
                r = cert_add_ext(cert, ca->issuer, NID_crl_distribution_points, crldp);
                if (r < 0)
                        return r;
        }
        if (l->ocsp_url || l->ca_issuers_url) {
                if (asprintf(&aia, "%s%s%s%s%s",
                             l->ocsp_url ? "OCSP;URI:" : "", l->ocsp_url ?: "",
                             l->ocsp_url && l->ca_issuers_url ? "," : "",
                             l->ca_issuers_url ? "caIssuers;URI:" : "", l->ca_issuers_url ?: "") < 0) {
                        aia = NULL;
                        return -ENOMEM;
                }
                r = cert_add_ext(cert, ca->issuer, NID_info_access, aia);
                if (r < 0)
                        return r;
        }

        if (X509_sign(cert, l->key, ca_digest_for_key(l->key)) <= 0)
                return -EIO;

        if (ret_chain) {
                chain = sk_X509_new_null();
                if (!chain || !X509_up_ref(ca->issuer))
                        return -ENOMEM;
                if (!sk_X509_push(chain, ca->issuer)) {
                        X509_free(ca->issuer);
                        return -ENOMEM;
                }
                *ret_chain = TAKE_PTR(chain);
        }
        *ret_cert = TAKE_PTR(cert);
        return 0;
}

static int ca_local_revoke(CaBackend *ca, X509 *cert, int reason) {
        const ASN1_OCTET_STRING *aki, *ski;

        /* Revocation state lives in the inventory (the RA writes it; CRLs are built from it),
         * so all the backend does is refuse certificates that are not its own. */
        aki = X509_get0_authority_key_id(cert);
        ski = X509_get0_subject_key_id(ca->issuer);
        if (!aki || !ski || ASN1_OCTET_STRING_cmp(aki, ski) != 0)
                return -CF_E_UNAUTHORIZED;
        if (X509_verify(cert, X509_get0_pubkey(ca->issuer)) != 1)
                return -CF_E_UNAUTHORIZED;
        return 0;
}

const CaBackendVTable ca_local_vtable = {
        .name = "local",
        .open = ca_local_open,
        .issue = ca_local_issue,
        .revoke = ca_local_revoke,
        .done = ca_local_done,
};
