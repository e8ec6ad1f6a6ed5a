/* SPDX-License-Identifier: Apache-2.0 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http/http.h"

/* A CR or LF in a header would let a value smuggle in headers or a body of its own. */
static bool header_text_ok(const char *s) {
        for (; *s; s++)
                if (*s == '\r' || *s == '\n')
                        return false;
        return true;
}

static bool header_name_ok(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (*s <= ' ' || *s >= 127 || *s == ':')
                        return false;
        return true;
}

int http_response_add_header(HttpResponse *resp, const char *name, const char *value) {
        if (!resp || !name || !value)
                return -EINVAL;
        if (!header_name_ok(name) || !header_text_ok(value))
                return -EINVAL;
        if (resp->n_headers >= HTTP_RESPONSE_HEADERS_MAX)
                return -E2BIG;

        _cleanup_free_ char *n = strdup(name);
        _cleanup_free_ char *v = strdup(value);
        if (!n || !v)
                return -ENOMEM;

        resp->headers[resp->n_headers++] = (HttpHeader) {
                .name = TAKE_PTR(n),
                .value = TAKE_PTR(v),
        };
        return 0;
}

int http_response_add_headerf(HttpResponse *resp, const char *name, const char *format, ...) {
        _cleanup_free_ char *value = NULL;
        va_list ap;
        int r;

        if (!format)
                return -EINVAL;

        va_start(ap, format);
        r = vasprintf(&value, format, ap);
        va_end(ap);
        if (r < 0) {
                value = NULL;
                return -ENOMEM;
        }

        return http_response_add_header(resp, name, value);
}

int http_response_set_body(HttpResponse *resp, int status, const char *content_type,
                           const void *body, size_t size) {
        _cleanup_free_ char *ct = NULL;
        _cleanup_free_ uint8_t *copy = NULL;

        if (!resp || (size > 0 && !body))
                return -EINVAL;
        if (status < 100 || status > 999)
                return -EINVAL;
        if (content_type && !header_text_ok(content_type))
                return -EINVAL;

        if (content_type) {
                ct = strdup(content_type);
                if (!ct)
                        return -ENOMEM;
        }

        /* One spare byte so even an empty body is a valid allocation. */
        copy = malloc(size + 1);
        if (!copy)
                return -ENOMEM;
        if (size > 0)
                memcpy(copy, body, size);
        copy[size] = 0;

        free(resp->content_type);
        resp->content_type = TAKE_PTR(ct);
        free(resp->body);
        resp->body = TAKE_PTR(copy);
        resp->body_size = size;
        resp->status = status;
        return 0;
}

int http_response_set_json(HttpResponse *resp, int status, const char *content_type,
                           json_object *obj) {
        const char *text;
        size_t len;

        if (!obj)
                return -EINVAL;

        text = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (!text)
                return -ENOMEM;

        return http_response_set_body(resp, status, content_type ?: "application/json", text, len);
}

void http_response_done(HttpResponse *resp) {
        if (!resp)
                return;

        for (size_t i = 0; i < resp->n_headers; i++) {
                free(resp->headers[i].name);
                free(resp->headers[i].value);
        }
        free(resp->content_type);
        free(resp->body);
        *resp = (HttpResponse) {};
}
