/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/x509v3.h>

#include "shared/ari.h"
#include "shared/base64.h"
#include "shared/errors.h"
#include "shared/json-util.h"
#include "shared/macro.h"
#include "shared/random-util.h"

/* A CertID longer than this is not one we issued: the AKI is a hash (≤ 64 bytes in practice) and
 * the serial at most 20 octets (RFC 5280 §4.1.2.2), plus its sign byte. */
#define ARI_CERT_ID_MAX 512u

int ari_cert_id_from_parts(const uint8_t *aki, size_t aki_size,
                           const uint8_t *serial, size_t serial_size, char **ret) {
        _cleanup_free_ char *a = NULL, *s = NULL;
        char *id;
        int r;

        if (!aki || aki_size == 0 || !serial || serial_size == 0)
                return -EINVAL;

        r = base64url_encode(aki, aki_size, &a);
        if (r < 0)
                return r;
        r = base64url_encode(serial, serial_size, &s);
        if (r < 0)
                return r;

        if (asprintf(&id, "%s.%s", a, s) < 0)
                return -ENOMEM;
        *ret = id;
        return 0;
}

int ari_cert_id(X509 *cert, char **ret) {
        const ASN1_OCTET_STRING *kid;
        const ASN1_INTEGER *serial;
        _cleanup_free_ unsigned char *der = NULL;
        const unsigned char *p;
        long content_len;
        int der_len, tag, class;

        if (!cert)
                return -EINVAL;

        kid = X509_get0_authority_key_id(cert);
        if (!kid || ASN1_STRING_length(kid) <= 0)
                return -ENOENT;

        /* The CertID carries the INTEGER's DER value octets (two's complement, with the 0x00 sign
         * byte a positive serial with its top bit set needs), not OpenSSL's magnitude bytes. */
        serial = X509_get0_serialNumber(cert);
        der_len = i2d_ASN1_INTEGER(serial, &der);
        if (der_len <= 0)
                return -EINVAL;
        p = der;
        if (ASN1_get_object(&p, &content_len, &tag, &class, der_len) & 0x80)
                return -EINVAL;
        if (tag != V_ASN1_INTEGER || content_len <= 0 || p + content_len != der + der_len)
                return -EINVAL;

        return ari_cert_id_from_parts(ASN1_STRING_get0_data(kid), (size_t) ASN1_STRING_length(kid),
                                      p, (size_t) content_len, ret);
}

int ari_cert_id_parse(const char *cert_id, uint8_t **ret_aki, size_t *ret_aki_size,
                      uint8_t **ret_serial, size_t *ret_serial_size) {
        _cleanup_free_ void *aki = NULL, *serial = NULL;
        size_t len, aki_size, serial_size;
        const char *dot;
        const uint8_t *s;

        if (!cert_id)
                return -CF_E_MALFORMED;
        len = strnlen(cert_id, ARI_CERT_ID_MAX + 1);
        if (len > ARI_CERT_ID_MAX)
                return -CF_E_MALFORMED;

        dot = memchr(cert_id, '.', len);
        if (!dot || dot == cert_id || dot + 1 == cert_id + len || memchr(dot + 1, '.', len - (size_t) (dot + 1 - cert_id)))
                return -CF_E_MALFORMED;

        if (base64url_decode(cert_id, (size_t) (dot - cert_id), &aki, &aki_size) < 0 || aki_size == 0)
                return -CF_E_MALFORMED;
        if (base64url_decode(dot + 1, len - (size_t) (dot + 1 - cert_id), &serial, &serial_size) < 0 || serial_size == 0)
                return -CF_E_MALFORMED;

        /* DER INTEGERs are minimal: a leading 0x00 (0xff) only before a byte with the top bit set
         * (clear). Anything else could name the same serial twice. */
        s = serial;
        if (serial_size > 1 && ((s[0] == 0x00 && s[1] < 0x80) || (s[0] == 0xff && s[1] >= 0x80)))
                return -CF_E_MALFORMED;

        *ret_aki = TAKE_PTR(aki);
        *ret_aki_size = aki_size;
        *ret_serial = TAKE_PTR(serial);
        *ret_serial_size = serial_size;
        return 0;
}

static int parse_time_field(json_object *window, const char *key, cf_time_t *ret) {
        const char *s;

        if (json_get_string(window, key, &s) < 0)
                return -EBADMSG;
        if (time_parse_rfc3339(s, ret) < 0)
                return -EBADMSG;
        return 0;
}

int ari_parse_renewal_info(const char *body, size_t len, AriRenewalInfo *ret) {
        _cleanup_(json_object_putp) json_object *obj = NULL;
        json_object *window, *url;
        cf_time_t start, end;
        char *explanation = NULL;
        int r;

        if (!body && len > 0)
                return -EINVAL;
        r = json_parse_strict(body, len, ARI_RESPONSE_MAX, &obj);
        if (r < 0)
                return r;
        if (!json_object_is_type(obj, json_type_object))
                return -EBADMSG;

        if (json_get_object(obj, "suggestedWindow", &window) < 0)
                return -EBADMSG;
        r = parse_time_field(window, "start", &start);
        if (r < 0)
                return r;
        r = parse_time_field(window, "end", &end);
        if (r < 0)
                return r;
        if (end <= start)
                return -EBADMSG;

        /* explanationURL is optional, but if present it must be a string. */
        if (json_object_object_get_ex(obj, "explanationURL", &url)) {
                if (!json_object_is_type(url, json_type_string))
                        return -EBADMSG;
                explanation = strdup(json_object_get_string(url));
                if (!explanation)
                        return -ENOMEM;
        }

        *ret = (AriRenewalInfo) {
                .window_start = start,
                .window_end = end,
                .explanation_url = explanation,
        };
        return 0;
}

void ari_renewal_info_done(AriRenewalInfo *info) {
        if (!info)
                return;
        free(info->explanation_url);
        info->explanation_url = NULL;
}

int ari_pick_renewal_time(cf_time_t start, cf_time_t end, cf_time_t *ret) {
        uint64_t span, offset;
        int r;

        if (start == CF_TIME_INVALID || end == CF_TIME_INVALID || end < start)
                return -EINVAL;

        /* end - start + 1 values, computed unsigned: with start > INT64_MIN it is at most
         * 2^64 - 1, so it neither overflows nor wraps to 0. */
        span = (uint64_t) end - (uint64_t) start + 1;
        r = random_uniform(span, &offset);
        if (r < 0)
                return r;

        *ret = (cf_time_t) ((uint64_t) start + offset);
        return 0;
}
