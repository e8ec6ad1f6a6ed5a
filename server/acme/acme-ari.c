/* SPDX-License-Identifier: Apache-2.0 */
/* ACME Renewal Information (RFC 9773 §4).
 *
 * The suggested window is centred on the point where the last third of the validity begins
 * (the last half for certificates valid under 10 days, so short-lived ones still get a useful
 * margin), and is 2 days wide, or a tenth of the validity if that is shorter. A revoked
 * certificate, or one an admin marked for renewal (inventory renew_now), gets a window that
 * already ended: clients renew at once (RFC 9773 §4.2). Retry-After is 6 hours, or the time
 * until the window opens if that is sooner (at least 1 hour). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/acme/acme-internal.h"
#include "shared/ari.h"
#include "shared/errors.h"

#define ARI_SHORT_VALIDITY   (10 * 86400)
#define ARI_HALF_WIDTH_MAX   86400
#define ARI_RETRY_AFTER      (6 * 3600)
#define ARI_RETRY_AFTER_MIN  3600
#define ARI_CERT_ID_MAX      512

int acme_ari_window(cf_time_t not_before, cf_time_t not_after, bool revoked, bool renew_now,
                    cf_time_t now, AcmeAriWindow *ret) {
        cf_time_t validity, ideal, half;
        AcmeAriWindow w;

        if (not_after <= not_before)
                return -EINVAL;

        if (revoked || renew_now) {
                w.start = now - 86400;
                w.end = now - 60;
                w.retry_after = ARI_RETRY_AFTER;
                *ret = w;
                return 0;
        }

        validity = not_after - not_before;
        ideal = not_after - (validity < ARI_SHORT_VALIDITY ? validity / 2 : validity / 3);
        half = MIN(ARI_HALF_WIDTH_MAX, validity / 20);
        if (half < 1)
                half = 1;
        w.start = ideal - half;
        w.end = ideal + half;
        if (w.start > now)
                w.retry_after = MAX(ARI_RETRY_AFTER_MIN, MIN(ARI_RETRY_AFTER, w.start - now));
        else
                w.retry_after = ARI_RETRY_AFTER;
        *ret = w;
        return 0;
}

int acme_renewal_info_handle(AcmeRequest *r, const char *cert_id) {
        _cleanup_(inventory_cert_freep) InventoryCert *c = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ uint8_t *aki = NULL, *serial = NULL;
        char b1[CF_RFC3339_MAX], b2[CF_RFC3339_MAX];
        size_t naki, nserial;
        AcmeAriWindow w;
        json_object *win;
        int q;

        if (strlen(cert_id) > ARI_CERT_ID_MAX ||
            ari_cert_id_parse(cert_id, &aki, &naki, &serial, &nserial) < 0)
                return acme_fail(r, -CF_E_MALFORMED, "Invalid CertID");
        q = store_inventory_get_by_ari_id(r->store, cert_id, &c);
        if (q == -ENOENT)
                return acme_fail(r, -CF_E_NOT_FOUND, "Unknown certificate");
        if (q < 0)
                return q;

        q = acme_ari_window(c->not_before, c->not_after, c->status == CERT_STATUS_REVOKED,
                            c->renew_now, time_now(), &w);
        if (q < 0)
                return acme_fail(r, -CF_E_SERVER_INTERNAL, "Certificate has no valid validity period");

        o = json_object_new_object();
        win = json_object_new_object();
        if (!o || !win) {
                json_object_put(win);
                return -ENOMEM;
        }
        json_object_object_add(win, "start", json_object_new_string(time_format_rfc3339(w.start, b1)));
        json_object_object_add(win, "end", json_object_new_string(time_format_rfc3339(w.end, b2)));
        json_object_object_add(o, "suggestedWindow", win);
        q = http_response_add_headerf(r->resp, "Retry-After", "%" PRIi64, w.retry_after);
        if (q < 0)
                return q;
        return acme_respond_json(r, 200, o);
}
