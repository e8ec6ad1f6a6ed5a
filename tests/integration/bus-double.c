/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-event.h>

#include "bus-double.h"

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int bus_double_run(const char *program, const char *path, const char *interface,
                   const sd_bus_vtable *vtable, const char *name) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_default(&e);
        if (r >= 0)
                r = sd_event_add_signal(e, NULL, SIGTERM, on_sigterm, NULL);
        if (r >= 0)
                r = sd_event_add_signal(e, NULL, SIGINT, on_sigterm, NULL);
        if (r >= 0)
                r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, e, 0);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, path, interface, vtable, NULL);
        if (r >= 0)
                r = sd_bus_request_name(bus, name, 0);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", program, strerror(-r));
                return EXIT_FAILURE;
        }
        printf("READY\n");
        fflush(stdout);
        r = sd_event_loop(e);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int bus_double_record(sd_bus_error *error, const char *record_path, const char *format, ...) {
        va_list ap;
        FILE *f;

        f = fopen(record_path, "ae");
        if (!f)
                return sd_bus_error_set_errnof(error, errno, "Cannot record the call: %m");
        va_start(ap, format);
        vfprintf(f, format, ap);
        va_end(ap);
        if (fclose(f) != 0)
                return sd_bus_error_set_errnof(error, errno, "Cannot record the call: %m");
        return 0;
}
