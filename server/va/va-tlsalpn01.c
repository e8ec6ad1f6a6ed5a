/* SPDX-License-Identifier: Apache-2.0 */

/* tls-alpn-01 (RFC 8737): a TLS handshake with ALPN "acme-tls/1" whose certificate names
 * exactly the identifier and carries the critical acmeIdentifier extension with
 * SHA-256(key authorization). For IP identifiers (RFC 8738 §6) SNI is the reverse-mapping name. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/va/va-internal.h"
#include "shared/macro.h"

#define ACME_TLS_1 "acme-tls/1"
#define OID_ACME_IDENTIFIER "1.3.6.1.5.5.7.1.31"

DEFINE_TRIVIAL_CLEANUP_FUNC(SSL_CTX *, SSL_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(SSL *, SSL_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OBJECT *, ASN1_OBJECT_free);

static int va_wait_fd(int fd, short events, va_usec_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int64_t left = va_remaining_ms(deadline);
                int r;

                if (left <= 0)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int) MIN(left, (int64_t) 60000));
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r > 0)
                        return 0;
        }
}

static int va_connect(const VaAddress *a, unsigned port, va_usec_t deadline, int *ret_fd) {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t salen;
        _cleanup_(closep) int fd = -EBADF;
        int err = 0, r;
        socklen_t errlen = sizeof(err);

        if (a->family == AF_INET) {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons(port);
                if (inet_pton(AF_INET, a->text, &sa.in.sin_addr) != 1)
                        return -EINVAL;
                salen = sizeof(sa.in);
        } else {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons(port);
                if (inet_pton(AF_INET6, a->text, &sa.in6.sin6_addr) != 1)
                        return -EINVAL;
                salen = sizeof(sa.in6);
        }

        fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, &sa.sa, salen) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;
                r = va_wait_fd(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
                        return -errno;
                if (err != 0)
                        return -err;
        }

        *ret_fd = TAKE_FD(fd);
        return 0;
}

static char *va_openssl_error(char *buf, size_t size) {
        unsigned long e = ERR_get_error();

        if (e == 0)
                snprintf(buf, size, "handshake failed");
        else
                ERR_error_string_n(e, buf, size);
        ERR_clear_error();
        return buf;
}

static int va_tls_handshake(SSL *ssl, va_usec_t deadline, const char *where, char **ret_detail) {
        char err[256];

        ERR_clear_error();
        for (;;) {
                int r = SSL_connect(ssl), e;

                if (r == 1)
                        return 0;
                e = SSL_get_error(ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                        r = va_wait_fd(SSL_get_fd(ssl), e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
                        if (r == -ETIMEDOUT)
                                return va_fail(-CF_E_CONNECTION, ret_detail,
                                               "%s: Timeout during TLS handshake", where);
                        if (r < 0)
                                return va_fail(-CF_E_CONNECTION, ret_detail, "%s: %s", where, strerror(-r));
                        continue;
                }
                if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
                        return va_fail(-CF_E_CONNECTION, ret_detail,
                                       "%s: Connection reset during TLS handshake", where);
                return va_fail(-CF_E_TLS, ret_detail, "%s: TLS handshake failed: %s", where,
                               va_openssl_error(err, sizeof(err)));
        }
}

/* Exactly one subjectAltName entry, equal to the identifier. */
static int va_check_san(X509 *cert, const VaRequest *req, const VaAddress *ip, char **ret_detail) {
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *names = NULL;
        const GENERAL_NAME *name;
        int crit = -1;

        names = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
        if (!names)
                return va_fail(-CF_E_UNAUTHORIZED, ret_detail,
                               "Incorrect validation certificate for tls-alpn-01 challenge: %s",
                               crit == -2 ? "more than one subjectAltName extension" : "no subjectAltName extension");
        if (sk_GENERAL_NAME_num(names) != 1)
                return va_fail(-CF_E_UNAUTHORIZED, ret_detail,
                               "Incorrect validation certificate for tls-alpn-01 challenge: "
                               "%d subjectAltName entries, expected exactly one for %s",
                               sk_GENERAL_NAME_num(names), req->identifier);

        name = sk_GENERAL_NAME_value(names, 0);
        if (!ip) {
                const ASN1_IA5STRING *dns;

                if (name->type == GEN_DNS) {
                        dns = name->d.dNSName;
                        if ((size_t) ASN1_STRING_length(dns) == strlen(req->identifier) &&
                            strncasecmp((const char *) ASN1_STRING_get0_data(dns), req->identifier,
                                        strlen(req->identifier)) == 0)
                                return 0;
                }
        } else if (name->type == GEN_IPADD) {
                unsigned char raw[16];
                size_t len = ip->family == AF_INET ? 4 : 16;

                if (inet_pton(ip->family, ip->text, raw) == 1 &&
                    (size_t) ASN1_STRING_length(name->d.iPAddress) == len &&
                    memcmp(ASN1_STRING_get0_data(name->d.iPAddress), raw, len) == 0)
                        return 0;
        }

        return va_fail(-CF_E_UNAUTHORIZED, ret_detail,
                       "Incorrect validation certificate for tls-alpn-01 challenge: "
                       "its subjectAltName does not name %s", req->identifier);
}

static int va_check_acme_identifier(X509 *cert, const VaRequest *req, char **ret_detail) {
        _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *oid = NULL;
        _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *value = NULL;
        const ASN1_OCTET_STRING *data;
        const unsigned char *p;
        X509_EXTENSION *ext;
        unsigned char digest[32];
        int i, r;

        oid = OBJ_txt2obj(OID_ACME_IDENTIFIER, 1);
        if (!oid)
                return -ENOMEM;

        i = X509_get_ext_by_OBJ(cert, oid, -1);
        if (i < 0)
                return va_fail(-CF_E_UNAUTHORIZED, ret_detail,
                               "Incorrect validation certificate for tls-alpn-01 challenge: "
                               "missing acmeIdentifier extension");
        if (X509_get_ext_by_OBJ(cert, oid, i) >= 0)
                return va_fail(-CF_E_UNAUTHORIZED, ret_detail,
                               "Incorrect validation certificate for tls-alpn-01 challenge: "
                               "more than one acmeIdentifier extension");

        ext = X509_get_ext(cert, i);
        /* RFC 8737 §3: the extension MUST be critical. */
        if (!X509_EXTENSION_get_critical(ext))
                return va_fail(-CF_E_UNAUTHORIZED, ret_detail,
                               "Incorrect validation certificate for tls-alpn-01 challenge: "
                               "acmeIdentifier extension is not critical");

        /* extnValue holds the DER of an OCTET STRING (the Authorization ::= OCTET STRING (SIZE (32))). */
        data = X509_EXTENSION_get_data(ext);
        p = ASN1_STRING_get0_data(data);
        value = d2i_ASN1_OCTET_STRING(NULL, &p, ASN1_STRING_length(data));
        if (!value || p != ASN1_STRING_get0_data(data) + ASN1_STRING_length(data) ||
            ASN1_STRING_length(value) != 32)
                return va_fail(-CF_E_UNAUTHORIZED, ret_detail,
                               "Incorrect validation certificate for tls-alpn-01 challenge: "
                               "malformed acmeIdentifier extension");

        r = va_key_authorization_digest(req->key_authorization, digest);
        if (r < 0)
                return r;
        if (CRYPTO_memcmp(ASN1_STRING_get0_data(value), digest, sizeof(digest)) != 0)
                return va_fail(-CF_E_INCORRECT_RESPONSE, ret_detail,
                               "Incorrect validation certificate for tls-alpn-01 challenge: "
                               "acmeIdentifier extension value does not match the key authorization");
        return 0;
}

int va_tlsalpn01_check_certificate(X509 *cert, const VaRequest *req, const VaAddress *ip, char **ret_detail) {
        int r;

        r = va_check_san(cert, req, ip, ret_detail);
        if (r < 0)
                return r;
        return va_check_acme_identifier(cert, req, ret_detail);
}

static int va_tlsalpn01_one(const VaRequest *req, const VaAddress *address, unsigned port,
                            const char *sni, const VaAddress *ip, va_usec_t deadline, char **ret_detail) {
        static const unsigned char alpn[] = "\x0a" ACME_TLS_1;
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        _cleanup_(SSL_freep) SSL *ssl = NULL;
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_free_ char *where = NULL;
        const unsigned char *selected = NULL;
        unsigned selected_len = 0;
        X509 *cert;
        int r;

        if (asprintf(&where, address->family == AF_INET6 ? "[%s]:%u" : "%s:%u", address->text, port) < 0)
                return -ENOMEM;

        r = va_connect(address, port, deadline, &fd);
        if (r == -ETIMEDOUT)
                return va_fail(-CF_E_CONNECTION, ret_detail, "%s: Timeout during connect", where);
        if (r < 0)
                return va_fail(-CF_E_CONNECTION, ret_detail, "%s: Connection failed: %s", where, strerror(-r));

        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx)
                return -ENOMEM;
        /* RFC 8737 §4: TLS 1.2 or newer; the certificate is self-signed by design, so the chain is
         * not verified: the proof is the acmeIdentifier extension. */
        if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
                return -EIO;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);

        ssl = SSL_new(ctx);
        if (!ssl)
                return -ENOMEM;
        if (SSL_set_fd(ssl, fd) != 1 ||
            SSL_set_tlsext_host_name(ssl, sni) != 1 ||
            SSL_set_alpn_protos(ssl, alpn, sizeof(alpn) - 1) != 0)
                return -EIO;

        r = va_tls_handshake(ssl, deadline, where, ret_detail);
        if (r < 0)
                return r;

        SSL_get0_alpn_selected(ssl, &selected, &selected_len);
        if (selected_len != strlen(ACME_TLS_1) || memcmp(selected, ACME_TLS_1, selected_len) != 0)
                return va_fail(-CF_E_UNAUTHORIZED, ret_detail,
                               "%s: Cannot negotiate ALPN protocol \"" ACME_TLS_1 "\" for tls-alpn-01 challenge",
                               where);

        cert = SSL_get0_peer_certificate(ssl);
        if (!cert)
                return va_fail(-CF_E_UNAUTHORIZED, ret_detail, "%s: No certificate presented", where);

        return va_tlsalpn01_check_certificate(cert, req, ip, ret_detail);
}

int va_validate_tlsalpn01(const VaConfig *config, const VaRequest *req, va_usec_t deadline, char **ret_detail) {
        _cleanup_free_ VaAddress *addresses = NULL;
        _cleanup_free_ char *sni = NULL;
        VaAddress ip;
        bool is_ip = strcmp(req->identifier_type, "ip") == 0;
        size_t n = 0;
        int r = -CF_E_CONNECTION;

        if (is_ip) {
                if (!va_parse_ip(req->identifier, &ip))
                        return -EINVAL;
                r = va_reverse_name(&ip, &sni);
                if (r < 0)
                        return r;
                addresses = malloc(sizeof(VaAddress));
                if (!addresses)
                        return -ENOMEM;
                addresses[0] = ip;
                n = 1;
        } else {
                sni = strdup(req->identifier);
                if (!sni)
                        return -ENOMEM;
                r = va_resolve_addresses(config, req->identifier, deadline, &addresses, &n, ret_detail);
                if (r < 0)
                        return r;
        }

        /* Like curl for http-01: the next address only if this one could not be reached. */
        for (size_t i = 0; i < n; i++) {
                r = va_tlsalpn01_one(req, &addresses[i], va_tls_port(config), sni, is_ip ? &ip : NULL,
                                     deadline, ret_detail);
                if (r != -CF_E_CONNECTION || va_remaining_ms(deadline) <= 0)
                        break;
        }
        return r;
}
