/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include <systemd/sd-journal.h>

#include "shared/errors.h"
#include "shared/log.h"

#define LOG_LINE_MAX 4096

static LogTarget log_target = LOG_TARGET_AUTO;
static int log_max_level = LOG_INFO;
static const char *log_ident;

void log_set_target(LogTarget target) {
        log_target = target;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

void log_set_ident(const char *ident) {
        log_ident = ident;
}

static int level_from_string(const char *s) {
        static const char *const names[] = {
                [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit", [LOG_ERR] = "err",
                [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
        };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcmp(s, names[i]) == 0)
                        return (int) i;
        if (strcmp(s, "error") == 0)
                return LOG_ERR;
        return -EINVAL;
}

void log_parse_environment(void) {
        const char *e = getenv("CERTFLEET_LOG_LEVEL");
        if (e) {
                int l = level_from_string(e);
                if (l >= 0)
                        log_max_level = l;
        }
        e = getenv("CERTFLEET_LOG_TARGET");
        if (e) {
                if (strcmp(e, "journal") == 0)
                        log_target = LOG_TARGET_JOURNAL;
                else if (strcmp(e, "stderr") == 0 || strcmp(e, "console") == 0)
                        log_target = LOG_TARGET_STDERR;
                else
                        log_target = LOG_TARGET_AUTO;
        }
}

/* stderr goes to the journal if $JOURNAL_STREAM names the device:inode of our stderr; then we
 * send to the journal directly, which keeps the structured fields. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

static bool use_journal(void) {
        static int cached = -1;

        if (log_target == LOG_TARGET_JOURNAL)
                return true;
        if (log_target == LOG_TARGET_STDERR)
                return false;
        if (cached < 0)
                cached = stderr_is_journal();
        return cached;
}

static const char *ident(void) {
        return log_ident ?: program_invocation_short_name;
}

static void write_stderr(int level, const char *prefix, const char *message) {
        static const char *const level_tags[] = {
                [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit", [LOG_ERR] = "error",
                [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
        };
        fprintf(stderr, "%s[%s]: %s%s%s\n", ident(), level_tags[level & 7],
                prefix ?: "", prefix ? ": " : "", message);
}

/* "%m" must print the error we were given, which may be a CfError that strerror() doesn't know:
 * replace it before formatting. */
static void expand_percent_m(const char *format, int error, char *out, size_t out_size) {
        const char *name = cf_error_name(error < 0 ? error : -error);
        size_t n = 0;

        for (const char *p = format; *p && n + 1 < out_size; p++) {
                if (p[0] == '%' && p[1] == '%') {
                        if (n + 2 < out_size) {
                                out[n++] = '%';
                                out[n++] = '%';
                        }
                        p++;
                } else if (p[0] == '%' && p[1] == 'm') {
                        for (const char *q = name; *q && n + 2 < out_size; q++) {
                                if (*q == '%')
                                        out[n++] = '%';
                                out[n++] = *q;
                        }
                        p++;
                } else
                        out[n++] = *p;
        }
        out[n] = 0;
}

static int log_dispatch(int level, int error, const char *message_id, const char *certificate,
                        const char *file, int line, const char *func,
                        const char *format, va_list ap) {
        char fmt[LOG_LINE_MAX], message[LOG_LINE_MAX];
        int saved_errno = errno;

        if (error > 0)
                error = -error;
        if ((level & 7) > log_max_level)
                return error < 0 ? error : -EIO;

        expand_percent_m(format, error, fmt, sizeof fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        vsnprintf(message, sizeof message, fmt, ap);
#pragma GCC diagnostic pop

        if (use_journal()) {
                char f_msg[LOG_LINE_MAX + 16], f_prio[32], f_ident[256], f_file[512], f_line[32],
                        f_func[256], f_errno[32], f_id[64], f_cert[512];
                struct iovec iov[10];
                size_t n = 0;

#define FIELD(buf, ...) do {                                            \
                snprintf(buf, sizeof buf, __VA_ARGS__);                 \
                iov[n++] = (struct iovec) { buf, strlen(buf) };         \
        } while (0)
                FIELD(f_msg, "MESSAGE=%s", message);
                FIELD(f_prio, "PRIORITY=%d", level & 7);
                FIELD(f_ident, "SYSLOG_IDENTIFIER=%s", ident());
                FIELD(f_file, "CODE_FILE=%s", file);
                FIELD(f_line, "CODE_LINE=%d", line);
                FIELD(f_func, "CODE_FUNC=%s", func);
                if (error < 0 && !cf_error_is_protocol(error))
                        FIELD(f_errno, "ERRNO=%d", -error);
                if (message_id)
                        FIELD(f_id, "MESSAGE_ID=%s", message_id);
                if (certificate)
                        FIELD(f_cert, "CERTIFICATE=%s", certificate);
#undef FIELD
                sd_journal_sendv(iov, (int) n);
        } else
                write_stderr(level, certificate, message);

        errno = saved_errno;
        /* log.h: "-EIO if 0 was passed", so that `return log_error_errno(0, …)` still fails. */
        return error < 0 ? error : -EIO;
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_dispatch(level, error, NULL, NULL, file, line, func, format, ap);
        va_end(ap);
        return r;
}

int log_event_internal(int level, int error, const char *message_id, const char *certificate,
                       const char *file, int line, const char *func, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_dispatch(level, error, message_id, certificate, file, line, func, format, ap);
        va_end(ap);
        return r;
}
