/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

#include "shared/fileio.h"
#include "shared/macro.h"
#include "shared/pem.h"

/* Never let OpenSSL fall back to prompting on the controlling terminal for a passphrase: an
 * encrypted block simply fails to decode. */
static int no_password_cb(char *buf, int size, int rwflag, void *u) {
        return -1;
}

static bool is_blank(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (!strchr(" \t\r\n\f\v", s[i]) || s[i] == '\0')
                        return false;
        return true;
}

static int check_input(const void *p, size_t len) {
        if (len == 0)
                return -ENODATA;
        if (len > PEM_INPUT_MAX)
                return -E2BIG;
        if (!p)
                return -EINVAL;
        return 0;
}

/* A failed parse leaves errors on the thread's queue; drop them so they are not reported by
 * whatever unrelated OpenSSL call runs next. */
static int parse_failed(int r) {
        ERR_clear_error();
        return r;
}

static void openssl_freep(unsigned char **p) {
        OPENSSL_free(*p);
}

/* Reads the next PEM block whose type is name (or one of the aliases OpenSSL accepts for it,
 * such as "NEW CERTIFICATE REQUEST"), skipping text and blocks of other types in between, as
 * PEM_read_bio_X509() does. 1 with the decoded bytes, 0 if there is no further block. */
static int pem_next_block(BIO *bio, const char *name, unsigned char **ret, long *ret_len) {
        unsigned char *data = NULL;
        char *found_name = NULL;
        long len = 0;

        if (PEM_bytes_read_bio(&data, &len, &found_name, name, bio, no_password_cb, NULL) != 1) {
                unsigned long e = ERR_peek_last_error();

                ERR_clear_error();
                if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
                        return 0;
                return -EBADMSG;
        }

        OPENSSL_free(found_name);
        if (len <= 0) {
                OPENSSL_free(data);
                return -EBADMSG;
        }

        *ret = data;
        *ret_len = len;
        return 1;
}

static int bio_to_string(BIO *bio, char **ret) {
        char *data = NULL, *s;
        long len;

        len = BIO_get_mem_data(bio, &data);
        if (len <= 0 || !data)
                return -EIO;

        s = malloc((size_t) len + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s, data, (size_t) len);
        s[len] = '\0';

        *ret = s;
        return 0;
}

/* X509 and X509_REQ differ only in their ASN1_ITEM, so one reader and one writer serve both;
 * d2i_X509() and friends are thin wrappers around these same ASN1_item_ calls. */

static int der_read_item_ex(const uint8_t *der, size_t len, const ASN1_ITEM *it,
                            OSSL_LIB_CTX *libctx, ASN1_VALUE **ret) {
        const unsigned char *p = der;
        ASN1_VALUE *v;
        int r;

        r = check_input(der, len);
        if (r < 0)
                return r;

        v = ASN1_item_d2i_ex(NULL, &p, (long) len, it, libctx, NULL);
        if (!v)
                return parse_failed(-EBADMSG);
        if (p != der + len) {
                ASN1_item_free(v, it);
                return -EBADMSG;
        }

        *ret = v;
        return 0;
}

static int der_read_item(const uint8_t *der, size_t len, const ASN1_ITEM *it, ASN1_VALUE **ret) {
        return der_read_item_ex(der, len, it, NULL, ret);
}

/* A library context with only the "null" provider: OpenSSL finds no decoder in it, so the
 * public key of a certificate request parsed in it stays encoded (see der_read_csr). Set up
 * once and kept for the life of the process. */
static OSSL_LIB_CTX *keyless_libctx;
static pthread_once_t keyless_libctx_once = PTHREAD_ONCE_INIT;

static void keyless_libctx_init(void) {
        OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

        if (ctx && !OSSL_PROVIDER_load(ctx, "null")) {
                OSSL_LIB_CTX_free(ctx);
                ctx = NULL;
        }
        keyless_libctx = ctx;
}

/* Where certificate requests are parsed. Should the keyless context fail to set up, the default
 * one (NULL) does the same job more slowly. */
static OSSL_LIB_CTX *csr_libctx(void) {
        if (pthread_once(&keyless_libctx_once, keyless_libctx_init) != 0)
                return NULL;
        return keyless_libctx;
}

static int der_write_item(const ASN1_VALUE *v, const ASN1_ITEM *it, uint8_t **ret, size_t *ret_len) {
        unsigned char *p;
        uint8_t *buf;
        int len;

        if (!v)
                return -EINVAL;

        len = ASN1_item_i2d(v, NULL, it);
        if (len <= 0)
                return parse_failed(-EINVAL);

        /* Our own buffer, so that callers release it with free() and not OPENSSL_free(). */
        buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        p = buf;
        if (ASN1_item_i2d(v, &p, it) != len) {
                free(buf);
                return parse_failed(-EINVAL);
        }

        *ret = buf;
        *ret_len = (size_t) len;
        return 0;
}

int der_read_cert(const uint8_t *der, size_t len, X509 **ret) {
        ASN1_VALUE *v;
        int r;

        r = der_read_item(der, len, ASN1_ITEM_rptr(X509), &v);
        if (r >= 0)
                *ret = (X509 *) v;
        return r;
}

int der_read_csr(const uint8_t *der, size_t len, X509_REQ **ret) {
        ASN1_VALUE *v;
        int r;

        r = der_read_item_ex(der, len, ASN1_ITEM_rptr(X509_REQ), csr_libctx(), &v);
        if (r >= 0)
                *ret = (X509_REQ *) v;
        return r;
}

int der_write_cert(X509 *cert, uint8_t **ret, size_t *ret_len) {
        return der_write_item((const ASN1_VALUE *) cert, ASN1_ITEM_rptr(X509), ret, ret_len);
}

int der_write_csr(X509_REQ *csr, uint8_t **ret, size_t *ret_len) {
        return der_write_item((const ASN1_VALUE *) csr, ASN1_ITEM_rptr(X509_REQ), ret, ret_len);
}

/* The PEM readers decode the base64 block themselves and hand it to the strict DER readers, so
 * that trailing bytes inside a block are refused just like in DER input. */

/* A memory BIO over PEM input that passed the common checks. */
static int pem_open(const char *pem, size_t len, BIO **ret) {
        BIO *bio;
        int r;

        r = check_input(pem, len);
        if (r < 0)
                return r;
        if (is_blank(pem, len))
                return -ENODATA;

        bio = BIO_new_mem_buf(pem, (int) len);
        if (!bio)
                return -ENOMEM;

        *ret = bio;
        return 0;
}

static int pem_read_item_ex(const char *pem, size_t len, const char *name, const ASN1_ITEM *it,
                            OSSL_LIB_CTX *libctx, ASN1_VALUE **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        _cleanup_(openssl_freep) unsigned char *data = NULL;
        long data_len = 0;
        int r;

        r = pem_open(pem, len, &bio);
        if (r < 0)
                return r;

        r = pem_next_block(bio, name, &data, &data_len);
        if (r < 0)
                return r;
        if (r == 0)
                return -EBADMSG;

        r = der_read_item_ex(data, (size_t) data_len, it, libctx, ret);
        return r == -ENODATA ? -EBADMSG : r;
}

static int pem_read_item(const char *pem, size_t len, const char *name, const ASN1_ITEM *it, ASN1_VALUE **ret) {
        return pem_read_item_ex(pem, len, name, it, NULL, ret);
}

int pem_read_cert(const char *pem, size_t len, X509 **ret) {
        ASN1_VALUE *v;
        int r;

        r = pem_read_item(pem, len, PEM_STRING_X509, ASN1_ITEM_rptr(X509), &v);
        if (r >= 0)
                *ret = (X509 *) v;
        return r;
}

int pem_read_chain(const char *pem, size_t len, STACK_OF(X509) **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        int r;

        r = pem_open(pem, len, &bio);
        if (r < 0)
                return r;

        chain = sk_X509_new_null();
        if (!chain)
                return -ENOMEM;

        for (;;) {
                _cleanup_(openssl_freep) unsigned char *data = NULL;
                _cleanup_(X509_freep) X509 *cert = NULL;
                long data_len = 0;

                r = pem_next_block(bio, PEM_STRING_X509, &data, &data_len);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                if (sk_X509_num(chain) >= PEM_CHAIN_MAX)
                        return -E2BIG;

                r = der_read_cert(data, (size_t) data_len, &cert);
                if (r < 0)
                        return r == -ENODATA ? -EBADMSG : r;

                if (sk_X509_push(chain, cert) <= 0)
                        return -ENOMEM;
                TAKE_PTR(cert);
        }

        if (sk_X509_num(chain) == 0)
                return -EBADMSG;

        *ret = TAKE_PTR(chain);
        return 0;
}

int pem_read_csr(const char *pem, size_t len, X509_REQ **ret) {
        ASN1_VALUE *v;
        int r;

        r = pem_read_item_ex(pem, len, PEM_STRING_X509_REQ, ASN1_ITEM_rptr(X509_REQ), csr_libctx(), &v);
        if (r >= 0)
                *ret = (X509_REQ *) v;
        return r;
}

int pem_read_private_key(const char *pem, size_t len, EVP_PKEY **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        EVP_PKEY *key;
        int r;

        r = pem_open(pem, len, &bio);
        if (r < 0)
                return r;

        /* Goes through the OSSL_DECODER machinery: PKCS#8 (plain), and the traditional
         * "RSA PRIVATE KEY" / "EC PRIVATE KEY" forms. Encrypted keys fail (no passphrase). */
        key = PEM_read_bio_PrivateKey_ex(bio, NULL, no_password_cb, NULL, NULL, NULL);
        if (!key)
                return parse_failed(-EBADMSG);

        *ret = key;
        return 0;
}

/* Same bytes as PEM_write_bio_X509() and friends, which also encode to DER and then wrap it
 * with an empty header. */
static int pem_write_item(const ASN1_VALUE *v, const ASN1_ITEM *it, const char *name, char **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        _cleanup_(freep) uint8_t *der = NULL;
        size_t der_len = 0;
        int r;

        r = der_write_item(v, it, &der, &der_len);
        if (r < 0)
                return r;

        bio = BIO_new(BIO_s_mem());
        if (!bio)
                return -ENOMEM;
        if (PEM_write_bio(bio, name, "", der, (long) der_len) <= 0)
                return parse_failed(-EINVAL);

        return bio_to_string(bio, ret);
}

int pem_write_cert(X509 *cert, char **ret) {
        return pem_write_item((const ASN1_VALUE *) cert, ASN1_ITEM_rptr(X509), PEM_STRING_X509, ret);
}

int pem_write_chain(STACK_OF(X509) *chain, char **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;

        if (!chain || sk_X509_num(chain) <= 0)
                return -EINVAL;

        bio = BIO_new(BIO_s_mem());
        if (!bio)
                return -ENOMEM;

        for (int i = 0; i < sk_X509_num(chain); i++)
                if (PEM_write_bio_X509(bio, sk_X509_value(chain, i)) != 1)
                        return parse_failed(-EINVAL);

        return bio_to_string(bio, ret);
}

int pem_write_csr(X509_REQ *csr, char **ret) {
        return pem_write_item((const ASN1_VALUE *) csr, ASN1_ITEM_rptr(X509_REQ), PEM_STRING_X509_REQ, ret);
}

int pem_write_private_key(EVP_PKEY *key, char **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;

        if (!key)
                return -EINVAL;

        /* A memory BIO wipes its buffer when it grows and when it is freed. */
        bio = BIO_new(BIO_s_mem());
        if (!bio)
                return -ENOMEM;
        if (PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
                return parse_failed(-EINVAL);

        return bio_to_string(bio, ret);
}

/* Files */

static bool looks_like_pem(const char *buf, size_t size) {
        return memmem(buf, size, "-----BEGIN ", sizeof("-----BEGIN ") - 1) != NULL;
}

/* A file holds PEM, or else the DER of a single item. */
static int load_file_item(const char *path, const char *name, const ASN1_ITEM *it,
                          OSSL_LIB_CTX *libctx, ASN1_VALUE **ret) {
        _cleanup_(freep) char *buf = NULL;
        size_t size = 0;
        int r;

        r = read_full_file(path, PEM_INPUT_MAX, &buf, &size);
        if (r < 0)
                return r;

        if (size > 0 && !looks_like_pem(buf, size))
                return der_read_item_ex((const uint8_t *) buf, size, it, libctx, ret);

        return pem_read_item_ex(buf, size, name, it, libctx, ret);
}

int cert_load_file(const char *path, X509 **ret) {
        ASN1_VALUE *v;
        int r;

        r = load_file_item(path, PEM_STRING_X509, ASN1_ITEM_rptr(X509), NULL, &v);
        if (r >= 0)
                *ret = (X509 *) v;
        return r;
}

int chain_load_file(const char *path, STACK_OF(X509) **ret) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_(freep) char *buf = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        size_t size = 0;
        int r;

        r = read_full_file(path, PEM_INPUT_MAX, &buf, &size);
        if (r < 0)
                return r;

        if (size == 0 || looks_like_pem(buf, size))
                return pem_read_chain(buf, size, ret);

        /* A DER file holds a single certificate: a chain of one. */
        r = der_read_cert((const uint8_t *) buf, size, &cert);
        if (r < 0)
                return r;

        chain = sk_X509_new_null();
        if (!chain)
                return -ENOMEM;
        if (sk_X509_push(chain, cert) <= 0)
                return -ENOMEM;
        TAKE_PTR(cert);

        *ret = TAKE_PTR(chain);
        return 0;
}

int csr_load_file(const char *path, X509_REQ **ret) {
        ASN1_VALUE *v;
        int r;

        r = load_file_item(path, PEM_STRING_X509_REQ, ASN1_ITEM_rptr(X509_REQ), csr_libctx(), &v);
        if (r >= 0)
                *ret = (X509_REQ *) v;
        return r;
}

int private_key_load_file(const char *path, EVP_PKEY **ret) {
        char *buf = NULL;
        size_t size = 0;
        int r;

        r = read_full_file(path, PEM_INPUT_MAX, &buf, &size);
        if (r < 0)
                return r;

        r = pem_read_private_key(buf, size, ret);

        explicit_bzero(buf, size);
        free(buf);
        return r;
}

int cert_save_file(const char *path, X509 *cert, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_(freep) char *pem = NULL;
        int r;

        r = pem_write_cert(cert, &pem);
        if (r < 0)
                return r;

        return write_file_atomic(path, pem, strlen(pem), mode, uid, gid);
}

int chain_save_file(const char *path, STACK_OF(X509) *chain, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_(freep) char *pem = NULL;
        int r;

        r = pem_write_chain(chain, &pem);
        if (r < 0)
                return r;

        return write_file_atomic(path, pem, strlen(pem), mode, uid, gid);
}

int private_key_save_file(const char *path, EVP_PKEY *key, uid_t uid, gid_t gid) {
        char *pem = NULL;
        size_t len;
        int r;

        r = pem_write_private_key(key, &pem);
        if (r < 0)
                return r;

        len = strlen(pem);
        r = write_file_atomic(path, pem, len, 0600, uid, gid);

        explicit_bzero(pem, len);
        free(pem);
        return r;
}
