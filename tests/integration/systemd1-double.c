/* SPDX-License-Identifier: Apache-2.0 */
/* A test double of systemd's manager on a private bus: owns org.freedesktop.systemd1, answers
 * ReloadOrRestartUnit with a job path and appends "ReloadOrRestartUnit UNIT MODE UID" to the file
 * given as the first argument. Serves until SIGTERM. Used by test-agent-e2e.py. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "shared/macro.h"

static const char *record_path;
static unsigned job_id;

static int method_reload_or_restart(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *unit, *mode;
        char job[64];
        uid_t uid = (uid_t) -1;
        FILE *f;
        int r;

        r = sd_bus_message_read(m, "ss", &unit, &mode);
        if (r < 0)
                return r;
        if (sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds) >= 0)
                (void) sd_bus_creds_get_euid(creds, &uid);
        f = fopen(record_path, "ae");
        if (!f)
                return sd_bus_error_set_errnof(error, errno, "Cannot record the call: %m");
        fprintf(f, "ReloadOrRestartUnit %s %s %d\n", unit, mode, (int) uid);
        if (fclose(f) != 0)
                return sd_bus_error_set_errnof(error, errno, "Cannot record the call: %m");
        snprintf(job, sizeof job, "/org/freedesktop/systemd1/job/%u", ++job_id);
        return sd_bus_reply_method_return(m, "o", job);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("ReloadOrRestartUnit", "ss", "o", method_reload_or_restart, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sigset_t mask;
        int r;

        if (argc != 2) {
                fprintf(stderr, "Usage: %s RECORD-FILE\n", argv[0]);
                return EXIT_FAILURE;
        }
        record_path = argv[1];

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
                r = sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/systemd1",
                                             "org.freedesktop.systemd1.Manager", manager_vtable, NULL);
        if (r >= 0)
                r = sd_bus_request_name(bus, "org.freedesktop.systemd1", 0);
        if (r < 0) {
                fprintf(stderr, "systemd1-double: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        /* The test waits for this line before it starts the agent. */
        printf("READY\n");
        fflush(stdout);
        r = sd_event_loop(e);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
