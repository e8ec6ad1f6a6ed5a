/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "agent/agent-challenge.h"
#include "shared/key.h"

#define ACME_IDENTIFIER_OID "1.3.6.1.5.5.7.1.31"
static const unsigned char acme_tls_alpn[] = "\x0a" "acme-tls/1";

typedef struct TlsAlpnEntry {
        char *identifier;
        SSL_CTX *ctx;                 /* serves this identifier's validation certificate */
} TlsAlpnEntry;

struct ChallengeTlsAlpnServer {
        ChallengeListener listener;
        SSL_CTX *default_ctx;         /* handshake entry point; SNI switches to an entry's ctx */
        pthread_mutex_t lock;
        TlsAlpnEntry entries[CHALLENGE_TOKENS_MAX];
};

DEFINE_TRIVIAL_CLEANUP_FUNC(SSL_CTX *, SSL_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OBJECT *, ASN1_OBJECT_free);

int challenge_tlsalpn_make_cert(const char *identifier, const char *key_authorization,
                                X509 **ret_cert, EVP_PKEY **ret_key) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *digest = NULL, *ext_value = NULL;
        _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *oid = NULL;
        _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = NULL, *san = NULL;
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *names = NULL;
        unsigned char md[SHA256_DIGEST_LENGTH];
        unsigned char *der = NULL;
        GENERAL_NAME *gn;
        ASN1_IA5STRING *ia5;
        X509_NAME *subject;
        int der_len, r;

        r = key_generate(KEY_EC_P256, &key);
        if (r < 0)
                return r;
        if (!EVP_Digest(key_authorization, strlen(key_authorization), md, NULL, EVP_sha256(), NULL))
                return -EIO;

        cert = X509_new();
        if (!cert)
                return -ENOMEM;
        if (!X509_set_version(cert, X509_VERSION_3) ||
            !ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) ||
            !X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
            !X509_gmtime_adj(X509_getm_notAfter(cert), 7 * 24 * 3600) ||
            !X509_set_pubkey(cert, key))
                return -EIO;
        subject = X509_get_subject_name(cert);
        if (!X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                        (const unsigned char *) "ACME tls-alpn-01 challenge", -1, -1, 0) ||
            !X509_set_issuer_name(cert, subject))
                return -EIO;

        /* subjectAltName: exactly the identifier being validated (RFC 8737 §3). */
        names = GENERAL_NAMES_new();
        gn = GENERAL_NAME_new();
        ia5 = ASN1_IA5STRING_new();
        if (!names || !gn || !ia5 || !ASN1_STRING_set(ia5, identifier, -1)) {
                GENERAL_NAME_free(gn);
                ASN1_IA5STRING_free(ia5);
                return -ENOMEM;
        }
        GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
        if (!sk_GENERAL_NAME_push(names, gn)) {
                GENERAL_NAME_free(gn);
                return -ENOMEM;
        }
        san = X509V3_EXT_i2d(NID_subject_alt_name, 0, names);
        if (!san || !X509_add_ext(cert, san, -1))
                return -EIO;

        /* acmeIdentifier: critical; extnValue is the DER of Authorization ::= OCTET STRING (SIZE (32)). */
        digest = ASN1_OCTET_STRING_new();
        if (!digest || !ASN1_OCTET_STRING_set(digest, md, sizeof md))
                return -ENOMEM;
        der_len = i2d_ASN1_OCTET_STRING(digest, &der);
        if (der_len <= 0)
                return -EIO;
        ext_value = ASN1_OCTET_STRING_new();
        if (!ext_value || !ASN1_OCTET_STRING_set(ext_value, der, der_len)) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        OPENSSL_free(der);
        oid = OBJ_txt2obj(ACME_IDENTIFIER_OID, 1);
        if (!oid)
                return -EIO;
        ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, ext_value);
        if (!ext || !X509_add_ext(cert, ext, -1))
                return -EIO;

        if (X509_sign(cert, key, EVP_sha256()) <= 0)
                return -EIO;

        *ret_cert = TAKE_PTR(cert);
        *ret_key = TAKE_PTR(key);
        return 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
        unsigned char *selected = NULL;

        if (SSL_select_next_proto(&selected, outlen, acme_tls_alpn, sizeof acme_tls_alpn - 1,
                                  in, inlen) != OPENSSL_NPN_NEGOTIATED)
                return SSL_TLSEXT_ERR_ALERT_FATAL;
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
}

/* The validation certificate is only for validators that offer acme-tls/1 (RFC 8737 §3); without
 * ALPN the select callback would never run and the handshake would go on. */
static int client_hello_cb(SSL *ssl, int *alert, void *arg) {
        const unsigned char *ext;
        size_t len, list_len;

        if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &len) ||
            len < 2)
                goto refuse;
        list_len = ((size_t) ext[0] << 8) | ext[1];
        if (list_len != len - 2)
                goto refuse;
        for (size_t i = 2; i < len;) {
                size_t n = ext[i];
                if (i + 1 + n > len)
                        break;
                if (n == sizeof acme_tls_alpn - 2 && memcmp(ext + i + 1, acme_tls_alpn + 1, n) == 0)
                        return SSL_CLIENT_HELLO_SUCCESS;
                i += 1 + n;
        }
refuse:
        *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
        return SSL_CLIENT_HELLO_ERROR;
}

static int servername_cb(SSL *ssl, int *alert, void *arg) {
        ChallengeTlsAlpnServer *s = arg;
        const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        int r = SSL_TLSEXT_ERR_ALERT_FATAL;

        if (!name)
                return r;
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < CHALLENGE_TOKENS_MAX; i++)
                if (s->entries[i].identifier && strcasecmp(s->entries[i].identifier, name) == 0) {
                        if (SSL_set_SSL_CTX(ssl, s->entries[i].ctx))
                                r = SSL_TLSEXT_ERR_OK;
                        break;
                }
        pthread_mutex_unlock(&s->lock);
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return r;
}

static int make_ctx(ChallengeTlsAlpnServer *s, X509 *cert, EVP_PKEY *key, SSL_CTX **ret) {
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

        if (!ctx)
                return -ENOMEM;
        if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
                return -EIO;
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
        if (cert && (!SSL_CTX_use_certificate(ctx, cert) || !SSL_CTX_use_PrivateKey(ctx, key)))
                return -EIO;
        if (!cert) {
                SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, NULL);
                SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
                SSL_CTX_set_tlsext_servername_arg(ctx, s);
        }
        *ret = TAKE_PTR(ctx);
        return 0;
}

static void serve_connection(void *userdata, int fd) {
        ChallengeTlsAlpnServer *s = userdata;
        SSL *ssl;

        ssl = SSL_new(s->default_ctx);
        if (!ssl)
                return;
        if (SSL_set_fd(ssl, fd) && SSL_accept(ssl) == 1)
                /* The validator only looks at the handshake; say goodbye properly. */
                (void) SSL_shutdown(ssl);
        SSL_free(ssl);
        ERR_clear_error();
}

int challenge_tlsalpn_server_start(const char *listen_address, ChallengeTlsAlpnServer **ret) {
        ChallengeTlsAlpnServer *s;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->listener = CHALLENGE_LISTENER_NULL;
        pthread_mutex_init(&s->lock, NULL);

        r = make_ctx(s, NULL, NULL, &s->default_ctx);
        if (r < 0)
                goto fail;
        r = challenge_listener_start(&s->listener, listen_address, serve_connection, s);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        challenge_tlsalpn_server_stop(s);
        return r;
}

ChallengeTlsAlpnServer *challenge_tlsalpn_server_stop(ChallengeTlsAlpnServer *s) {
        if (!s)
                return NULL;
        challenge_listener_stop(&s->listener);
        for (size_t i = 0; i < CHALLENGE_TOKENS_MAX; i++) {
                free(s->entries[i].identifier);
                SSL_CTX_free(s->entries[i].ctx);
        }
        SSL_CTX_free(s->default_ctx);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

int challenge_tlsalpn_server_set(ChallengeTlsAlpnServer *s, const char *identifier, const char *key_authorization) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        _cleanup_free_ char *id = NULL;
        int r;

        r = challenge_tlsalpn_make_cert(identifier, key_authorization, &cert, &key);
        if (r < 0)
                return r;
        r = make_ctx(s, cert, key, &ctx);
        if (r < 0)
                return r;
        id = strdup(identifier);
        if (!id)
                return -ENOMEM;

        r = -ENOSPC;
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < CHALLENGE_TOKENS_MAX; i++)
                if (s->entries[i].identifier && strcasecmp(s->entries[i].identifier, identifier) == 0) {
                        SSL_CTX_free(s->entries[i].ctx);
                        s->entries[i].ctx = TAKE_PTR(ctx);
                        r = 0;
                        break;
                }
        for (size_t i = 0; r < 0 && i < CHALLENGE_TOKENS_MAX; i++)
                if (!s->entries[i].identifier) {
                        s->entries[i] = (TlsAlpnEntry) { TAKE_PTR(id), TAKE_PTR(ctx) };
                        r = 0;
                }
        pthread_mutex_unlock(&s->lock);
        return r;
}

int challenge_tlsalpn_server_unset(ChallengeTlsAlpnServer *s, const char *identifier) {
        int r = -ENOENT;

        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < CHALLENGE_TOKENS_MAX; i++)
                if (s->entries[i].identifier && strcasecmp(s->entries[i].identifier, identifier) == 0) {
                        free(s->entries[i].identifier);
                        SSL_CTX_free(s->entries[i].ctx);
                        s->entries[i] = (TlsAlpnEntry) {};
                        r = 0;
                }
        pthread_mutex_unlock(&s->lock);
        return r;
}
