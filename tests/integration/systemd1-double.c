/* SPDX-License-Identifier: Apache-2.0 */
/* A test double of systemd's manager on a private bus: owns org.freedesktop.systemd1, answers
 * ReloadOrRestartUnit with a job path and appends "ReloadOrRestartUnit UNIT MODE UID" to the file
 * given as the first argument. Serves until SIGTERM. Used by test-agent-e2e.py. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-double.h"

static const char *record_path;
static unsigned job_id;

static int method_reload_or_restart(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *unit, *mode;
        char job[64];
        uid_t uid = (uid_t) -1;
        int r;

        r = sd_bus_message_read(m, "ss", &unit, &mode);
        if (r < 0)
                return r;
        if (sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds) >= 0)
                (void) sd_bus_creds_get_euid(creds, &uid);
        r = bus_double_record(error, record_path, "ReloadOrRestartUnit %s %s %d\n", unit, mode, (int) uid);
        if (r < 0)
                return r;
        snprintf(job, sizeof job, "/org/freedesktop/systemd1/job/%u", ++job_id);
        return sd_bus_reply_method_return(m, "o", job);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("ReloadOrRestartUnit", "ss", "o", method_reload_or_restart, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int main(int argc, char *argv[]) {
        if (argc != 2) {
                fprintf(stderr, "Usage: %s RECORD-FILE\n", argv[0]);
                return EXIT_FAILURE;
        }
        record_path = argv[1];

        return bus_double_run("systemd1-double", "/org/freedesktop/systemd1",
                              "org.freedesktop.systemd1.Manager", manager_vtable,
                              "org.freedesktop.systemd1");
}
