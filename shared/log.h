/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Logging to the journal when we run under it, else to stderr (DESIGN §4: sd-journal).
 *
 * Library code (shared/, ra/, ca/, store/) logs at debug level at most; the caller logs once:
 *     return log_error_errno(r, "Failed to load CA key '%s': %m", path);
 * "%m" prints the error of r (errno text or CfError name). log_*_errno() return r, negative. */

#include <stdbool.h>
#include <syslog.h>

#include "shared/macro.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO,     /* journal if stderr is connected to it ($JOURNAL_STREAM), else stderr */
        LOG_TARGET_JOURNAL,
        LOG_TARGET_STDERR,
} LogTarget;

void log_set_target(LogTarget target);
void log_set_max_level(int level);          /* LOG_DEBUG … LOG_ERR; default LOG_INFO */
int log_get_max_level(void);
void log_set_ident(const char *ident);      /* SYSLOG_IDENTIFIER; default program_invocation_short_name */
/* Reads $CERTFLEET_LOG_LEVEL (debug|info|notice|warning|err) and $CERTFLEET_LOG_TARGET. */
void log_parse_environment(void);

/* error: 0, or a negative errno/CfError that "%m" expands to. Returns error (or -EIO if 0 was
 * passed to an _errno variant, so callers can `return log_error_errno(0, …)` safely). */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(6, 7);

/* Structured: an event with a MESSAGE_ID (32 hex chars, or NULL) and the CERTIFICATE= field (the
 * tracked certificate's name, or NULL). On stderr it prints "CERTIFICATE: message". */
int log_event_internal(int level, int error, const char *message_id, const char *certificate,
                       const char *file, int line, const char *func,
                       const char *format, ...) _printf_(8, 9);

#define log_full_errno(level, error, ...) \
        log_internal(level, error, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full(level, ...) (void) log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...)   log_full_errno(LOG_DEBUG, error, __VA_ARGS__)
#define log_info_errno(error, ...)    log_full_errno(LOG_INFO, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...)   log_full_errno(LOG_ERR, error, __VA_ARGS__)

#define log_event(level, message_id, certificate, ...) \
        log_event_internal(level, 0, message_id, certificate, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_event_errno(level, error, message_id, certificate, ...) \
        log_event_internal(level, error, message_id, certificate, __FILE__, __LINE__, __func__, __VA_ARGS__)

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")
