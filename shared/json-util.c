/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "shared/json-util.h"
#include "shared/macro.h"
#include "shared/strv.h"

/* json-c's strict mode still accepts single-quoted strings, which RFC 8259 does not: refuse a
 * single quote anywhere outside a double-quoted string. */
static bool has_single_quote_outside_strings(const char *data, size_t len) {
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                char ch = data[i];
                if (in_string) {
                        if (ch == '\\')
                                i++;
                        else if (ch == '"')
                                in_string = false;
                } else if (ch == '"')
                        in_string = true;
                else if (ch == '\'')
                        return true;
        }
        return false;
}

/* RFC 8259 has no NaN or Infinity, but json-c reads them as numbers. Depth is bounded by the
 * tokener's JSON_DEPTH_MAX. */
static bool has_non_finite_number(json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_double:
                return !isfinite(json_object_get_double(o));
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        if (has_non_finite_number(json_object_array_get_idx(o, i)))
                                return true;
                return false;
        case json_type_object: {
                json_object_object_foreach(o, key, value) {
                        (void) key;
                        if (has_non_finite_number(value))
                                return true;
                }
                return false;
        }
        default:
                return false;
        }
}

int json_parse_strict(const char *data, size_t len, size_t max_size, json_object **ret) {
        _cleanup_(json_object_putp) json_object *obj = NULL;
        json_tokener *tok;
        enum json_tokener_error err;
        size_t parsed;

        if (len > max_size)
                return -E2BIG;
        if (len == 0 || memchr(data, 0, len) || has_single_quote_outside_strings(data, len))
                return -EBADMSG;

        tok = json_tokener_new_ex(JSON_DEPTH_MAX);
        if (!tok)
                return -ENOMEM;
        /* Strict RFC 8259 plus UTF-8 validation: no comments, single quotes or trailing commas. */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        obj = json_tokener_parse_ex(tok, data, (int) len);
        err = json_tokener_get_error(tok);
        parsed = json_tokener_get_parse_end(tok);
        if (!obj && err == json_tokener_continue) {
                /* A top-level literal or number that ends the buffer ("true", "12") could still
                 * go on as far as the tokener knows: the terminating NUL says it does not. */
                obj = json_tokener_parse_ex(tok, "", 1);
                err = json_tokener_get_error(tok);
                parsed = len;
        }
        json_tokener_free(tok);

        if (err != json_tokener_success || !obj || has_non_finite_number(obj))
                return -EBADMSG;
        /* Only whitespace may follow the value. */
        for (size_t i = parsed; i < len; i++)
                if (!strchr(" \t\r\n", data[i]))
                        return -EBADMSG;
        *ret = TAKE_PTR(obj);
        return 0;
}

static int get_typed(json_object *obj, const char *key, json_type type, json_object **ret) {
        json_object *v;

        if (!obj || !json_object_is_type(obj, json_type_object))
                return -EBADMSG;
        if (!json_object_object_get_ex(obj, key, &v))
                return -ENOENT;
        if (!json_object_is_type(v, type))
                return -EBADMSG;
        *ret = v;
        return 0;
}

int json_get_string(json_object *obj, const char *key, const char **ret) {
        json_object *v;
        int r = get_typed(obj, key, json_type_string, &v);
        if (r < 0)
                return r;
        *ret = json_object_get_string(v);
        return 0;
}

int json_get_bool(json_object *obj, const char *key, bool *ret) {
        json_object *v;
        int r = get_typed(obj, key, json_type_boolean, &v);
        if (r < 0)
                return r;
        *ret = json_object_get_boolean(v);
        return 0;
}

int json_get_int64(json_object *obj, const char *key, int64_t *ret) {
        json_object *v;
        int r = get_typed(obj, key, json_type_int, &v);
        if (r < 0)
                return r;
        errno = 0;
        int64_t x = json_object_get_int64(v);
        if (errno != 0)
                return -ERANGE;
        *ret = x;
        return 0;
}

int json_get_object(json_object *obj, const char *key, json_object **ret) {
        return get_typed(obj, key, json_type_object, ret);
}

int json_get_array(json_object *obj, const char *key, json_object **ret) {
        return get_typed(obj, key, json_type_array, ret);
}

int json_get_strv(json_object *obj, const char *key, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        json_object *a;
        size_t n;
        int r;

        r = json_get_array(obj, key, &a);
        if (r < 0)
                return r;
        n = json_object_array_length(a);
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(a, i);
                if (!json_object_is_type(e, json_type_string))
                        return -EBADMSG;
                l[i] = strdup(json_object_get_string(e));
                if (!l[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

const char *json_to_string_compact(json_object *obj) {
        return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}
