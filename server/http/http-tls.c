/* SPDX-License-Identifier: Apache-2.0 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "server/http/http-server.h"
#include "shared/log.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(SSL_CTX *, SSL_CTX_free);

/* The client certificate is requested, never required: the handshake must succeed without one
 * (ACME clients have none), and a certificate that fails verification is simply not passed on
 * (HttpRequest.client_cert stays NULL, see SSL_get_verify_result() in http-server.c). */
static int verify_accept_any(int preverify_ok, X509_STORE_CTX *ctx) {
        return 1;
}

static int tls_error(const char *what, const char *path, char **ret_error) {
        unsigned long e = ERR_peek_last_error();
        char buf[256] = "unknown error";

        if (e != 0)
                ERR_error_string_n(e, buf, sizeof(buf));
        ERR_clear_error();

        if (ret_error) {
                char *m = NULL;

                if (asprintf(&m, "%s '%s': %s", what, path, buf) < 0)
                        m = NULL;
                *ret_error = m;
        }
        return -EBADMSG;
}

int http_tls_context_new(const char *cert_path, const char *key_path, const char *client_ca_path,
                         SSL_CTX **ret, char **ret_error) {
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        static const unsigned char session_id_context[] = "certfleet";

        if (!cert_path || !key_path || !ret)
                return -EINVAL;

        ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx)
                return -ENOMEM;

        if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
            SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
                return tls_error("Failed to set TLS versions for", cert_path, ret_error);

        /* Renegotiation is a DoS lever and has no use for us; compression invites CRIME. */
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
        if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL") != 1)
                return tls_error("Failed to set cipher list for", cert_path, ret_error);

        if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1)
                return tls_error("Failed to load TLS certificate", cert_path, ret_error);
        if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1)
                return tls_error("Failed to load TLS key", key_path, ret_error);
        if (SSL_CTX_check_private_key(ctx) != 1)
                return tls_error("TLS key does not match the certificate", cert_path, ret_error);

        /* Needed for session resumption once a client certificate is part of the session. */
        if (SSL_CTX_set_session_id_context(ctx, session_id_context, sizeof(session_id_context) - 1) != 1)
                return tls_error("Failed to set session id context for", cert_path, ret_error);

        if (client_ca_path) {
                STACK_OF(X509_NAME) *names;

                if (SSL_CTX_load_verify_locations(ctx, client_ca_path, NULL) != 1)
                        return tls_error("Failed to load client CA file", client_ca_path, ret_error);
                names = SSL_load_client_CA_file(client_ca_path);
                if (!names)
                        return tls_error("Failed to read client CA names from", client_ca_path, ret_error);
                SSL_CTX_set_client_CA_list(ctx, names);
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_accept_any);
        }

        *ret = TAKE_PTR(ctx);
        return 0;
}
