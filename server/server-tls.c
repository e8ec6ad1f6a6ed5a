/* SPDX-License-Identifier: Apache-2.0 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/x509.h>

#include "server/ca/ca.h"
#include "server/server-manager.h"
#include "shared/fileio.h"
#include "shared/key.h"
#include "shared/log.h"
#include "shared/pem.h"
#include "shared/time-util.h"

#define TLS_CA_NAME "default"
#define TLS_VALIDITY (90 * 24 * 3600)
#define TLS_RENEW_BEFORE (7 * 24 * 3600)

/* Reusable: parses, matches its key, was issued by the CA's current issuing certificate and stays
 * valid long enough. Anything else gets a fresh certificate. */
static bool tls_certificate_reusable(const char *cert_path, const char *key_path, X509 *issuer) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        time_t limit = time(NULL) + TLS_RENEW_BEFORE;

        if (cert_load_file(cert_path, &cert) < 0 || private_key_load_file(key_path, &key) < 0)
                return false;
        if (X509_check_private_key(cert, key) != 1)
                return false;
        if (!issuer || X509_check_issued(issuer, cert) != X509_V_OK)
                return false;
        if (X509_cmp_time(X509_get0_notAfter(cert), &limit) <= 0)
                return false;
        return true;
}

static int tls_certificate_issue(CaBackend *ca, const char *cert_path, const char *key_path) {
        /* A profile of its own, so whatever the admin's [RAProfile default] allows, this
         * certificate is exactly these names. */
        char *allowed[] = { (char *) "localhost", (char *) "127.0.0.1/32", (char *) "::1/128", NULL };
        char *algorithms[] = { (char *) "ec", NULL };
        char *ekus[] = { (char *) "serverAuth", NULL };
        char *dns[] = { (char *) "localhost", NULL };
        char *ips[] = { (char *) "127.0.0.1", (char *) "::1", NULL };
        const RaProfile profile = {
                .name = (char *) "tls-listener",
                .ca = (char *) TLS_CA_NAME,
                .enabled = true,
                .allowed_identifiers = allowed,
                .key_algorithms = algorithms,
                .min_rsa_bits = 2048,
                .min_ec_bits = 256,
                .validity = TLS_VALIDITY,
                .max_validity = TLS_VALIDITY,
                .ekus = ekus,
        };
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_free_ char *cert_pem = NULL, *chain_pem = NULL, *all = NULL;
        cf_time_t now = time_now();
        int r;

        r = key_generate(KEY_EC_P256, &key);
        if (r < 0)
                return r;

        CaIssueRequest req = {
                .public_key = key,
                .common_name = "localhost",
                .dns = dns,
                .ips = ips,
                .not_before = now - 60,
                .not_after = now + TLS_VALIDITY - 60,
        };
        r = ca_issue(ca, &profile, &req, &cert, &chain);
        if (r < 0)
                return r;

        r = pem_write_cert(cert, &cert_pem);
        if (r < 0)
                return r;
        if (chain && sk_X509_num(chain) > 0) {
                r = pem_write_chain(chain, &chain_pem);
                if (r < 0)
                        return r;
        }
        if (asprintf(&all, "%s%s", cert_pem, chain_pem ?: "") < 0) {
                all = NULL;
                return -ENOMEM;
        }

        /* Key first: a certificate on disk without its key would be "reusable" for nobody. */
        r = private_key_save_file(key_path, key, (uid_t) -1, (gid_t) -1);
        if (r < 0)
                return r;
        return write_file_atomic(cert_path, all, strlen(all), 0644, (uid_t) -1, (gid_t) -1);
}

int server_default_tls_certificate(const ServerConfig *config, char **ret_cert_path, char **ret_key_path) {
        _cleanup_free_ char *dir = NULL, *cert_path = NULL, *key_path = NULL;
        CaBackend *ca;
        int r;

        if (!config || !ret_cert_path || !ret_key_path)
                return -EINVAL;

        ca = profile_set_get_ca_backend(config->profiles, TLS_CA_NAME);
        if (!ca)
                return log_error_errno(-ENOENT,
                                       "No [HTTPS] Certificate= configured and no [CA " TLS_CA_NAME "] to issue one.");

        if (asprintf(&dir, "%s/tls", config->state_directory) < 0 ||
            asprintf(&cert_path, "%s/server.crt", dir) < 0 ||
            asprintf(&key_path, "%s/server.key", dir) < 0)
                return log_oom();

        if (!tls_certificate_reusable(cert_path, key_path, ca_backend_get0_issuer(ca))) {
                r = mkdir_p(dir, 0700);
                if (r < 0)
                        return log_error_errno(r, "Failed to create '%s': %m", dir);
                r = tls_certificate_issue(ca, cert_path, key_path);
                if (r < 0)
                        return log_error_errno(r, "Failed to issue the listener certificate '%s': %m", cert_path);
                log_info("Issued TLS certificate '%s' for localhost, 127.0.0.1 and ::1 from [CA " TLS_CA_NAME "].",
                         cert_path);
        }

        *ret_cert_path = TAKE_PTR(cert_path);
        *ret_key_path = TAKE_PTR(key_path);
        return 0;
}
