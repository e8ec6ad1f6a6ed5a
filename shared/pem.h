/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* PEM and DER reading and writing for certificates, chains, private keys and CSRs.
 * Readers take untrusted bytes: malformed input → -EBADMSG, empty input → -ENODATA, input
 * over PEM_INPUT_MAX → -E2BIG. Writers allocate (NUL-terminated for PEM). */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define PEM_INPUT_MAX (1024u * 1024u)
#define PEM_CHAIN_MAX 16          /* certificates in one chain */

int pem_read_cert(const char *pem, size_t len, X509 **ret);
/* All certificates in order; at least one, at most PEM_CHAIN_MAX (-E2BIG). */
int pem_read_chain(const char *pem, size_t len, STACK_OF(X509) **ret);
int pem_read_private_key(const char *pem, size_t len, EVP_PKEY **ret);
int pem_read_csr(const char *pem, size_t len, X509_REQ **ret);   /* key left encoded, as der_read_csr */

int pem_write_cert(X509 *cert, char **ret);
int pem_write_chain(STACK_OF(X509) *chain, char **ret);    /* concatenated PEM blocks */
int pem_write_private_key(EVP_PKEY *key, char **ret);      /* PKCS#8, unencrypted */
int pem_write_csr(X509_REQ *csr, char **ret);

/* DER; readers require the whole buffer to be consumed (trailing bytes → -EBADMSG). */
int der_read_cert(const uint8_t *der, size_t len, X509 **ret);
/* The request's public key stays encoded: OpenSSL 3.0 would set up a generic decoder for it, more
 * than a signature check costs. Use csr_public_key() (shared/csr.h), not X509_REQ_get0_pubkey(),
 * which returns NULL here; verify with X509_REQ_verify_ex(req, key, NULL, NULL). */
int der_read_csr(const uint8_t *der, size_t len, X509_REQ **ret);
int der_write_cert(X509 *cert, uint8_t **ret, size_t *ret_len);
int der_write_csr(X509_REQ *csr, uint8_t **ret, size_t *ret_len);

/* Files. Loading reads at most PEM_INPUT_MAX bytes. Saving is atomic (shared/fileio.h);
 * a private key is always written 0600 whatever the umask. uid/gid (uid_t)-1 = unchanged. */
int cert_load_file(const char *path, X509 **ret);
int chain_load_file(const char *path, STACK_OF(X509) **ret);
int private_key_load_file(const char *path, EVP_PKEY **ret);
int csr_load_file(const char *path, X509_REQ **ret);
int cert_save_file(const char *path, X509 *cert, mode_t mode, uid_t uid, gid_t gid);
int chain_save_file(const char *path, STACK_OF(X509) *chain, mode_t mode, uid_t uid, gid_t gid);
int private_key_save_file(const char *path, EVP_PKEY *key, uid_t uid, gid_t gid);
