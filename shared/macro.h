/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Cleanup helpers in the style of systemd (DESIGN §7): one DEFINE_TRIVIAL_CLEANUP_FUNC per type,
 * `_cleanup_(X509_freep) X509 *cert = NULL;`, ownership handed out with TAKE_PTR(). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _sentinel_ __attribute__((sentinel))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Hand out ownership of a pointer: returns it and leaves NULL behind so cleanup does nothing. */
#define TAKE_PTR(p)                                     \
        ({                                              \
                __typeof__(p) _ptr_ = (p);              \
                (p) = NULL;                             \
                _ptr_;                                  \
        })

#define TAKE_FD(fd)                                     \
        ({                                              \
                int _fd_ = (fd);                        \
                (fd) = -EBADF;                          \
                _fd_;                                   \
        })

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)         \
        static inline void func##p(type *p) {           \
                if (*p)                                 \
                        func(*p);                       \
        }

#define _cleanup_free_ _cleanup_(freep)

static inline void freep(void *p) {
        free(*(void **) p);
}

/* Wipes secrets (keys, HMAC keys, passwords) before freeing; the size must be known. */
typedef struct SecretBuf {
        unsigned char *data;
        size_t size;
} SecretBuf;

static inline void secret_buf_done(SecretBuf *s) {
        if (s->data) {
                explicit_bzero(s->data, s->size);
                free(s->data);
        }
        s->data = NULL;
        s->size = 0;
}

static inline void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

static inline int safe_close(int fd) {
        if (fd >= 0)
                close(fd);
        return -EBADF;
}

static inline void strv_freep(char ***l) {
        if (*l) {
                for (char **i = *l; *i; i++)
                        free(*i);
                free(*l);
        }
}

/* OpenSSL and json-c types used across the tree. */
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_REQ *, X509_REQ_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_NAME *, X509_NAME_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_PUBKEY *, X509_PUBKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_EXTENSION *, X509_EXTENSION_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE *, X509_STORE_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE_CTX *, X509_STORE_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_CRL *, X509_CRL_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MAC *, EVP_MAC_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MAC_CTX *, EVP_MAC_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free_all);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BN_CTX *, BN_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ECDSA_SIG *, ECDSA_SIG_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_INTEGER *, ASN1_INTEGER_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_TIME *, ASN1_TIME_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OCTET_STRING *, ASN1_OCTET_STRING_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(GENERAL_NAMES *, GENERAL_NAMES_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(AUTHORITY_KEYID *, AUTHORITY_KEYID_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EXTENDED_KEY_USAGE *, EXTENDED_KEY_USAGE_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

static inline void sk_X509_pop_freep(STACK_OF(X509) **p) {
        if (*p)
                sk_X509_pop_free(*p, X509_free);
}
