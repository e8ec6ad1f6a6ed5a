/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What the test doubles of system services share: serving one object on the test's private
 * system bus, and recording each call to a file the test reads back. */

#include <systemd/sd-bus.h>

#include "shared/macro.h"

/* Serves vtable as interface at path, owns name, prints "READY" on stdout once the name is ours
 * (the test waits for it) and runs until SIGTERM or SIGINT. Returns main()'s exit status. */
int bus_double_run(const char *program, const char *path, const char *interface,
                   const sd_bus_vtable *vtable, const char *name);

/* Appends one formatted line to record_path; a failure becomes the method's D-Bus error. */
int bus_double_record(sd_bus_error *error, const char *record_path, const char *format, ...) _printf_(3, 4);
