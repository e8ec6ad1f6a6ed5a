/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <ini.h>

#include "shared/conf.h"
#include "shared/fileio.h"
#include "shared/macro.h"
#include "shared/strv.h"
#include "shared/time-util.h"

/* libinih is our line tokeniser, but several of its build-time options (Debian builds it with the
 * defaults) differ from systemd's syntax, so the reader below decides what a line means and inih
 * only drives it:
 *   - multi-line values: inih continues a value on lines starting with whitespace; systemd has no
 *     such thing. We strip leading whitespace before inih sees a line, so nothing continues.
 *   - inline comments: inih cuts a value at " ;"; systemd keeps it ("Key=a ; b" is "a ; b"). We
 *     take key and value from the raw line instead of inih's copy.
 *   - "Key: value": inih accepts it (configparser style); we require '='.
 *   - line length: inih's buffer is fixed (INI_MAX_LINE, 200 in Debian's build) and it silently
 *     truncates longer lines. Ours is CONF_LINE_MAX: longer lines are an error naming the line,
 *     and values between the two limits are read from the raw line.
 *   - "[Section] trailing text": inih ignores the tail; we refuse it. */

typedef struct ConfParseState {
        const char *file;
        const char *text;
        size_t len;
        size_t pos;
        unsigned line;

        const char *raw;                   /* current line: leading blanks, "\r\n" stripped */
        size_t raw_len;

        const ConfItem *table;             /* for plain sections */
        void *target;
        ConfSectionHandler section_handler;
        void *handler_userdata;

        /* Current section, resolved when its header is read. */
        char *section;
        char *name;
        const ConfItem *section_table;
        void *section_target;

        int error;
        unsigned error_line;
        char *error_message;
} ConfParseState;

void conf_error_done(ConfError *e) {
        if (!e)
                return;
        free(e->message);
        e->message = NULL;
}

_printf_(3, 4)
static int conf_fail(ConfParseState *s, int error, const char *format, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        int k;

        if (s->error < 0)
                return s->error;

        va_start(ap, format);
        k = vasprintf(&m, format, ap);
        va_end(ap);

        s->error = error;
        s->error_line = s->line;
        if (k >= 0 && asprintf(&s->error_message, "%s:%u: %s", s->file, s->line, m) < 0)
                s->error_message = NULL;
        return error;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

static bool item_section_known(const ConfItem *table, const char *section) {
        for (const ConfItem *i = table; i && i->section; i++)
                if (strcmp(i->section, section) == 0)
                        return true;
        return false;
}

static bool valid_section_word(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (is_blank(s[i]) || s[i] == '[' || s[i] == ']' || (unsigned char) s[i] < 0x20)
                        return false;
        return true;
}

/* "[Section]" or "[Section name]", nothing after the ']'. */
static int conf_enter_section(ConfParseState *s, const char *l, size_t n) {
        const char *word, *name = NULL;
        size_t word_len, name_len = 0;
        int r;

        while (n > 0 && is_blank(l[n - 1]))
                n--;
        if (n < 2 || l[n - 1] != ']')
                return conf_fail(s, -EINVAL, "Invalid section header '%.*s'", (int) n, l);

        word = l + 1;
        word_len = n - 2;
        for (size_t i = 0; i < word_len; i++)
                if (is_blank(word[i])) {
                        name = word + i;
                        name_len = word_len - i;
                        word_len = i;
                        break;
                }
        if (name) {
                while (name_len > 0 && is_blank(*name)) {
                        name++;
                        name_len--;
                }
                while (name_len > 0 && is_blank(name[name_len - 1]))
                        name_len--;
        }
        if (!valid_section_word(word, word_len) || (name && !valid_section_word(name, name_len)))
                return conf_fail(s, -EINVAL, "Invalid section header '%.*s'", (int) n, l);

        free(s->section);
        free(s->name);
        s->name = NULL;
        s->section = strndup(word, word_len);
        if (!s->section)
                return conf_fail(s, -ENOMEM, "Out of memory");
        if (name) {
                s->name = strndup(name, name_len);
                if (!s->name)
                        return conf_fail(s, -ENOMEM, "Out of memory");
        }

        if (!s->name) {
                if (!item_section_known(s->table, s->section))
                        return conf_fail(s, -EINVAL, "Unknown section [%s]", s->section);
                s->section_table = s->table;
                s->section_target = s->target;
                return 0;
        }

        if (!s->section_handler)
                return conf_fail(s, -EINVAL, "Unknown section [%s %s]", s->section, s->name);
        r = s->section_handler(s->section, s->name, s->handler_userdata,
                               &s->section_table, &s->section_target);
        if (r == -ENOENT)
                return conf_fail(s, -EINVAL, "Unknown section [%s %s]", s->section, s->name);
        if (r < 0)
                return conf_fail(s, r, "Failed to set up section [%s %s]: %s",
                                 s->section, s->name, strerror(-r));
        return 0;
}

/* The ini_reader: hands inih one line at a time (fgets-style) after checking it. */
static char *conf_reader(char *str, int num, void *stream) {
        ConfParseState *s = stream;
        const char *l, *nl;
        size_t n, avail, give;

        if (s->error < 0 || s->pos >= s->len)
                return NULL;

        l = s->text + s->pos;
        avail = s->len - s->pos;
        nl = memchr(l, '\n', avail);
        n = nl ? (size_t) (nl - l) : avail;
        s->pos += nl ? n + 1 : n;
        s->line++;

        if (s->line == 1 && n >= 3 && memcmp(l, "\xef\xbb\xbf", 3) == 0) {
                l += 3;
                n -= 3;
        }
        if (n > 0 && l[n - 1] == '\r')
                n--;
        if (memchr(l, 0, n)) {
                conf_fail(s, -EBADMSG, "Line contains a NUL byte");
                return NULL;
        }
        while (n > 0 && is_blank(*l)) {
                l++;
                n--;
        }
        if (n > CONF_LINE_MAX) {
                conf_fail(s, -E2BIG, "Line too long (maximum %u characters)", CONF_LINE_MAX);
                return NULL;
        }

        s->raw = l;
        s->raw_len = n;

        if (n > 0 && l[0] == '[') {
                if (conf_enter_section(s, l, n) < 0)
                        return NULL;
        } else if (n > 0 && l[0] != '#' && l[0] != ';' && !memchr(l, '=', n)) {
                conf_fail(s, -EINVAL, "Expected Key=value, a [Section] header or a comment");
                return NULL;
        }

        /* inih's buffer is fixed (it needs room for "\n\0" too; its documentation counts a
         * '\r' we have already dropped). A longer line is handed over only as far as inih needs
         * to classify it: a comment as "#", an assignment up to its '=' (the handler reads key
         * and value from s->raw). */
        give = n;
        if (num < 3 || n > (size_t) num - 3) {
                const char *eq = memchr(l, '=', n);

                if (l[0] == '#' || l[0] == ';')
                        give = 1;
                else if (l[0] != '[' && eq)
                        give = (size_t) (eq - l) + 1;
                if (num < 3 || give > (size_t) num - 3) {
                        conf_fail(s, -E2BIG, "Line too long (maximum %d characters for a %s)",
                                  num < 3 ? 0 : num - 3, l[0] == '[' ? "section header" : "key");
                        return NULL;
                }
        }

        memcpy(str, l, give);
        str[give] = '\n';
        str[give + 1] = 0;
        return str;
}

static const ConfItem *conf_find_item(const ConfItem *table, const char *section, const char *key) {
        for (const ConfItem *i = table; i && i->section; i++)
                if (strcmp(i->section, section) == 0 && strcmp(i->key, key) == 0)
                        return i;
        return NULL;
}

static int conf_handler(void *user, const char *ini_section, const char *ini_name, const char *ini_value) {
        ConfParseState *s = user;
        _cleanup_free_ char *key = NULL, *value = NULL;
        const char *eq, *k, *v;
        size_t kn, vn;
        const ConfItem *item;
        ConfLocation loc;
        int r;

        if (s->error < 0)
                return 0;

        /* Key and value from the raw line (see the top of this file), not from inih. */
        eq = memchr(s->raw, '=', s->raw_len);
        if (!eq) {
                conf_fail(s, -EINVAL, "Expected Key=value");
                return 0;
        }
        k = s->raw;
        kn = (size_t) (eq - s->raw);
        while (kn > 0 && is_blank(k[kn - 1]))
                kn--;
        v = eq + 1;
        vn = s->raw_len - (size_t) (v - s->raw);
        while (vn > 0 && is_blank(*v)) {
                v++;
                vn--;
        }
        while (vn > 0 && is_blank(v[vn - 1]))
                vn--;

        if (kn == 0) {
                conf_fail(s, -EINVAL, "Expected Key=value, the key is empty");
                return 0;
        }
        key = strndup(k, kn);
        value = strndup(v, vn);
        if (!key || !value) {
                conf_fail(s, -ENOMEM, "Out of memory");
                return 0;
        }

        if (!s->section) {
                conf_fail(s, -EINVAL, "Assignment '%s=' outside of any section", key);
                return 0;
        }

        item = conf_find_item(s->section_table, s->section, key);
        if (!item) {
                if (s->name)
                        conf_fail(s, -EINVAL, "Unknown key '%s' in section [%s %s]", key, s->section, s->name);
                else
                        conf_fail(s, -EINVAL, "Unknown key '%s' in section [%s]", key, s->section);
                return 0;
        }

        loc = (ConfLocation) {
                .file = s->file,
                .line = s->line,
                .section = s->section,
                .name = s->name,
                .key = key,
        };
        r = item->parse(&loc, value, (uint8_t *) s->section_target + item->offset, item->userdata);
        if (r < 0) {
                conf_fail(s, r, "Invalid value for %s=: '%s' (%s)", key, value, strerror(-r));
                return 0;
        }
        return 1;
}

static int conf_parse_text(const char *file_name, const char *text, size_t len,
                           const ConfItem *table, void *target,
                           ConfSectionHandler section_handler, void *handler_userdata,
                           ConfError *ret_error) {
        ConfParseState s = {
                .file = file_name ?: "(string)",
                .text = text,
                .len = len,
                .table = table,
                .target = target,
                .section_handler = section_handler,
                .handler_userdata = handler_userdata,
        };
        int r;

        if (!text && len > 0)
                return -EINVAL;
        if (len > CONF_FILE_MAX) {
                s.line = 0;
                conf_fail(&s, -EFBIG, "File larger than %u bytes", CONF_FILE_MAX);
        } else {
                r = ini_parse_stream(conf_reader, &s, conf_handler, &s);
                /* Every line inih could refuse was checked by conf_reader() first; keep this as the
                 * backstop in case its rules are wider than ours think. */
                if (r != 0 && s.error >= 0) {
                        s.line = r > 0 ? (unsigned) r : s.line;
                        conf_fail(&s, r == -2 ? -ENOMEM : -EINVAL, "Syntax error");
                }
        }

        free(s.section);
        free(s.name);

        if (s.error < 0) {
                if (ret_error) {
                        free(ret_error->message);
                        ret_error->message = s.error_message;
                } else
                        free(s.error_message);
                return s.error;
        }
        return 0;
}

int conf_load_string(const char *file_name, const char *text, size_t len,
                     const ConfItem *table, void *target,
                     ConfSectionHandler section_handler, void *handler_userdata,
                     ConfError *ret_error) {
        return conf_parse_text(file_name, text, len, table, target, section_handler,
                               handler_userdata, ret_error);
}

static int set_error(ConfError *ret_error, int r, const char *format, ...) _printf_(3, 4);
static int set_error(ConfError *ret_error, int r, const char *format, ...) {
        va_list ap;

        if (!ret_error)
                return r;
        free(ret_error->message);
        va_start(ap, format);
        if (vasprintf(&ret_error->message, format, ap) < 0)
                ret_error->message = NULL;
        va_end(ap);
        return r;
}

static int cmp_string(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* PATH.d/NAME.conf, sorted by plain byte order (not the locale's: the order must not depend on how
 * the daemon was started). */
static int conf_list_dropins(const char *path, char ***ret) {
        _cleanup_free_ char *dir_path = NULL;
        _cleanup_(strv_freep) char **files = NULL;
        DIR *dir;
        struct dirent *de;
        size_t n = 0;
        int r = 0;

        if (asprintf(&dir_path, "%s.d", path) < 0)
                return -ENOMEM;
        dir = opendir(dir_path);
        if (!dir) {
                if (errno == ENOENT || errno == ENOTDIR) {
                        *ret = NULL;
                        return 0;
                }
                return -errno;
        }

        while ((errno = 0, de = readdir(dir))) {
                size_t l = strlen(de->d_name);
                char *full;

                if (de->d_name[0] == '.' || l < 5 || strcmp(de->d_name + l - 5, ".conf") != 0)
                        continue;
                if (n >= CONF_DROPINS_MAX) {
                        r = -E2BIG;
                        break;
                }
                if (asprintf(&full, "%s/%s", dir_path, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = strv_consume(&files, full);
                if (r < 0)
                        break;
                n++;
        }
        if (r == 0 && errno != 0)
                r = -errno;
        closedir(dir);
        if (r < 0)
                return r;

        if (n > 0)
                qsort(files, n, sizeof(char *), cmp_string);
        *ret = TAKE_PTR(files);
        return 0;
}

static int conf_load_file(const char *path, const ConfItem *table, void *target,
                          ConfSectionHandler section_handler, void *handler_userdata,
                          ConfError *ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r;

        r = read_full_file(path, CONF_FILE_MAX, &text, &size);
        if (r == -EFBIG)
                return set_error(ret_error, r, "%s: File larger than %u bytes", path, CONF_FILE_MAX);
        if (r < 0)
                return set_error(ret_error, r, "%s: Failed to read: %s", path, strerror(-r));

        return conf_parse_text(path, text, size, table, target, section_handler, handler_userdata,
                               ret_error);
}

int conf_load(const char *path, const ConfItem *table, void *target,
              ConfSectionHandler section_handler, void *handler_userdata, ConfError *ret_error) {
        _cleanup_(strv_freep) char **dropins = NULL;
        struct stat st;
        bool have_main;
        int r;

        if (!path)
                return -EINVAL;

        r = conf_list_dropins(path, &dropins);
        if (r < 0)
                return set_error(ret_error, r, "%s.d: Failed to list drop-ins: %s", path, strerror(-r));

        if (stat(path, &st) < 0) {
                if (errno != ENOENT)
                        return set_error(ret_error, -errno, "%s: %s", path, strerror(errno));
                if (!dropins)
                        return set_error(ret_error, -ENOENT, "%s: %s", path, strerror(ENOENT));
                have_main = false;
        } else
                have_main = true;

        if (have_main) {
                r = conf_load_file(path, table, target, section_handler, handler_userdata, ret_error);
                if (r < 0)
                        return r;
        }
        for (char **f = dropins; f && *f; f++) {
                r = conf_load_file(*f, table, target, section_handler, handler_userdata, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Standard parsers. */

int conf_parse_string(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        char **s = data, *copy = NULL;

        /* An empty value resets to unset, as in systemd. */
        if (*value) {
                copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
        }
        free(*s);
        *s = copy;
        return 0;
}

int conf_parse_path(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        if (*value && *value != '/')
                return -EINVAL;
        return conf_parse_string(loc, value, data, userdata);
}

int conf_parse_bool(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        static const char *const yes[] = { "yes", "true", "1", "on" };
        static const char *const no[] = { "no", "false", "0", "off" };
        bool *b = data;

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(value, yes[i]) == 0) {
                        *b = true;
                        return 0;
                }
                if (strcasecmp(value, no[i]) == 0) {
                        *b = false;
                        return 0;
                }
        }
        return -EINVAL;
}

/* Decimal only: "010" is ten, not eight, and "0x10" is refused. */
static int parse_decimal(const char *value, bool allow_sign, long long min, long long max, long long *ret) {
        const char *p = value;
        long long v;
        char *end;

        if (*p == '-' || *p == '+') {
                if (!allow_sign)
                        return -EINVAL;
                p++;
        }
        if (*p < '0' || *p > '9')
                return -EINVAL;
        errno = 0;
        v = strtoll(value, &end, 10);
        if (errno == ERANGE || v < min || v > max)
                return -ERANGE;
        if (errno != 0 || *end != 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

int conf_parse_int(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        long long v;
        int r = parse_decimal(value, true, INT_MIN, INT_MAX, &v);
        if (r < 0)
                return r;
        *(int *) data = (int) v;
        return 0;
}

int conf_parse_unsigned(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        long long v;
        int r = parse_decimal(value, false, 0, UINT_MAX, &v);
        if (r < 0)
                return r;
        *(unsigned *) data = (unsigned) v;
        return 0;
}

int conf_parse_duration(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        int64_t v;
        int r = duration_parse(value, &v);
        if (r < 0)
                return r;
        *(int64_t *) data = v;
        return 0;
}

int conf_parse_strv(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        _cleanup_(strv_freep) char **words = NULL;
        char ***l = data;
        int r;

        if (!*value) {
                *l = strv_free(*l);
                return 0;
        }
        r = strv_split(value, " \t", &words);
        if (r < 0)
                return r;
        for (char **w = words; w && *w; w++) {
                r = strv_extend(l, *w);
                if (r < 0)
                        return r;
        }
        return 0;
}

int conf_parse_mode(const ConfLocation *loc, const char *value, void *data, void *userdata) {
        unsigned long v = 0;
        size_t n = strlen(value);

        if (n == 0 || n > 5)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (value[i] < '0' || value[i] > '7')
                        return -EINVAL;
                v = v * 8 + (unsigned long) (value[i] - '0');
        }
        if (v > 07777)
                return -ERANGE;
        *(mode_t *) data = (mode_t) v;
        return 0;
}
