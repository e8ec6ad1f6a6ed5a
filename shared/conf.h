/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The config reader: systemd-style INI ([Section], Key=value, '#' and ';' comments), tokenised by
 * libinih, with drop-ins: after PATH, every PATH.d/NAME.conf in lexical order (PATH "x.conf" →
 * directory "x.conf.d/"). Keys are mapped through one table; every unknown section or key and
 * every bad value is an error naming file and line.
 *
 * Sections with a name: "[RAProfile web]" has section "RAProfile" and name "web"; a
 * ConfSectionHandler decides where such a section's values go. */

#include <stdbool.h>
#include <stddef.h>

#define CONF_FILE_MAX (1024u * 1024u)     /* a config file larger than this: -EFBIG */
#define CONF_DROPINS_MAX 256
#define CONF_LINE_MAX 4096u               /* a longer line (after leading blanks): -E2BIG */

typedef struct ConfLocation {
        const char *file;
        unsigned line;
        const char *section;               /* without the name */
        const char *name;                  /* section name, NULL for plain sections */
        const char *key;
} ConfLocation;

/* Parses value into data (a pointer into the target struct). On error returns -EINVAL etc.; the
 * loader turns it into a message with the location. */
typedef int (*ConfParser)(const ConfLocation *loc, const char *value, void *data, void *userdata);

typedef struct ConfItem {
        const char *section;               /* "Certificate" */
        const char *key;                   /* "Names" */
        ConfParser parse;
        size_t offset;                     /* offsetof(target struct, field) */
        void *userdata;                    /* passed to parse (e.g. an enum table) */
} ConfItem;

/* For named sections: returns the item table and the target struct for "[section name]"
 * (creating it on first sight), or -ENOENT if this section is unknown. */
typedef int (*ConfSectionHandler)(const char *section, const char *name, void *userdata,
                                  const ConfItem **ret_table, void **ret_target);

/* Standard parsers. String-like values replace the previous value; strv appends words
 * (whitespace-separated) and an empty value resets the list (systemd semantics). */
int conf_parse_string(const ConfLocation *loc, const char *value, void *data, void *userdata); /* char* */
int conf_parse_path(const ConfLocation *loc, const char *value, void *data, void *userdata);   /* char*, must be absolute */
int conf_parse_bool(const ConfLocation *loc, const char *value, void *data, void *userdata);   /* bool: yes/no/true/false/1/0/on/off */
int conf_parse_int(const ConfLocation *loc, const char *value, void *data, void *userdata);    /* int */
int conf_parse_unsigned(const ConfLocation *loc, const char *value, void *data, void *userdata); /* unsigned */
int conf_parse_duration(const ConfLocation *loc, const char *value, void *data, void *userdata); /* int64_t seconds */
int conf_parse_strv(const ConfLocation *loc, const char *value, void *data, void *userdata);   /* char** */
int conf_parse_mode(const ConfLocation *loc, const char *value, void *data, void *userdata);   /* mode_t, octal, ≤ 07777 */

typedef struct ConfError {
        char *message;                     /* "file:line: Unknown key 'Foo' in section [Bar]" */
} ConfError;
void conf_error_done(ConfError *e);

/* Loads path and its drop-ins into target through table (plain sections) and, for named
 * sections, through section_handler (may be NULL). Unknown section or key, a line that is not
 * Key=value, or a parser failure: the first error is returned negative and described in
 * *ret_error (if non-NULL). A missing main file: -ENOENT unless drop-ins exist. */
int conf_load(const char *path, const ConfItem *table, void *target,
              ConfSectionHandler section_handler, void *handler_userdata, ConfError *ret_error);

/* Same from a memory buffer (for fuzzing and tests); file_name only labels messages. */
int conf_load_string(const char *file_name, const char *text, size_t len,
                     const ConfItem *table, void *target,
                     ConfSectionHandler section_handler, void *handler_userdata,
                     ConfError *ret_error);
