/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* json-c helpers. Build JSON with objects, never with printf (DESIGN §4). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define JSON_DEPTH_MAX 32

/* Strict parse of untrusted bytes: the whole buffer must be exactly one JSON value (trailing
 * garbage, embedded NUL, bad UTF-8 → -EBADMSG), nesting deeper than JSON_DEPTH_MAX → -EBADMSG,
 * len above max_size → -E2BIG. A top-level null is refused too (json-c has no object for it). */
int json_parse_strict(const char *data, size_t len, size_t max_size, json_object **ret);

/* Typed getters. Missing key: -ENOENT; wrong type: -EBADMSG. Returned strings are borrowed. */
int json_get_string(json_object *obj, const char *key, const char **ret);
int json_get_bool(json_object *obj, const char *key, bool *ret);
int json_get_int64(json_object *obj, const char *key, int64_t *ret);
int json_get_object(json_object *obj, const char *key, json_object **ret);
int json_get_array(json_object *obj, const char *key, json_object **ret);
/* An array of strings → strv (copied). Any non-string element: -EBADMSG. */
int json_get_strv(json_object *obj, const char *key, char ***ret);

/* Compact serialization, no escaping of '/'. Borrowed from obj (valid while obj lives). */
const char *json_to_string_compact(json_object *obj);
