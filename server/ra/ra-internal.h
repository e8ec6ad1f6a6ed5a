/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared between the files of server/ra/ only. */

#include <stdbool.h>

/* An AllowedIdentifiers= entry: "*" (any DNS name), "host.example", "*.zone.example",
 * "10.0.0.0/8", "fd00::/8" or a single address. */
bool ra_identifier_pattern_valid(const char *pattern);

/* DNS name syntax of ra_check_identifier(): lower-case LDH labels, at most 253 characters, a
 * wildcard only as the whole leftmost label, not all-numeric in the last label. */
bool ra_dns_name_valid(const char *name);
