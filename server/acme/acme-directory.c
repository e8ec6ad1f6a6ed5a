/* SPDX-License-Identifier: Apache-2.0 */
/* The directory (RFC 8555 §7.1.1, RFC 9773 §3) and newNonce (§7.2). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/acme/acme-internal.h"
#include "shared/errors.h"

static int add_url(AcmeRequest *r, json_object *dir, const char *key, const char *resource) {
        _cleanup_free_ char *u = acme_url(r, "%s", resource);
        if (!u)
                return -ENOMEM;
        return json_object_object_add(dir, key, json_object_new_string(u)) < 0 ? -ENOMEM : 0;
}

int acme_directory_handle(AcmeRequest *r) {
        _cleanup_(json_object_putp) json_object *dir = NULL;
        json_object *meta;
        int q;

        dir = json_object_new_object();
        meta = json_object_new_object();
        if (!dir || !meta) {
                json_object_put(meta);
                return -ENOMEM;
        }
        json_object_object_add(dir, "meta", meta);

        if ((q = add_url(r, dir, "newNonce", "new-nonce")) < 0 ||
            (q = add_url(r, dir, "newAccount", "new-account")) < 0 ||
            (q = add_url(r, dir, "newOrder", "new-order")) < 0 ||
            (q = add_url(r, dir, "revokeCert", "revoke-cert")) < 0 ||
            (q = add_url(r, dir, "keyChange", "key-change")) < 0 ||
            (q = add_url(r, dir, "renewalInfo", "renewal-info")) < 0)
                return q;

        if (r->acme->terms_of_service)
                json_object_object_add(meta, "termsOfService",
                                       json_object_new_string(r->acme->terms_of_service));
        if (r->acme->website)
                json_object_object_add(meta, "website", json_object_new_string(r->acme->website));
        json_object_object_add(meta, "externalAccountRequired",
                               json_object_new_boolean(r->acme->eab_required));

        return acme_respond_json(r, 200, dir);
}

int acme_new_nonce_handle(AcmeRequest *r) {
        int q;

        /* The nonce itself is added with every response's headers. */
        q = http_response_add_header(r->resp, "Cache-Control", "no-store");
        if (q < 0)
                return q;
        return http_response_set_body(r->resp, strcmp(r->method, "HEAD") == 0 ? 200 : 204,
                                      NULL, NULL, 0);
}
