/* SPDX-License-Identifier: Apache-2.0 */
/* A test double of polkit's authority on a private bus: owns org.freedesktop.PolicyKit1 and
 * answers CheckAuthorization with what the decision file says ("yes", "no" or "challenge"),
 * appending "ACTION SUBJECT-KIND SUBJECT-NAME FLAGS" of every question to the record file.
 * Serves until SIGTERM. Used by test-agent-e2e.py. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-double.h"

static const char *record_path;
static const char *decision_path;

static int read_decision(char *buf, size_t size) {
        _cleanup_(fclosep) FILE *f = fopen(decision_path, "re");

        if (!f || !fgets(buf, (int) size, f))
                return -errno ?: -EIO;
        buf[strcspn(buf, "\n")] = 0;
        return 0;
}

static int method_check_authorization(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *kind, *key, *name = "", *action, *cancellation;
        char decision[32];
        uint32_t flags;
        int r;

        /* subject (sa{sv}) */
        r = sd_bus_message_enter_container(m, 'r', "sa{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &kind);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (strcmp(key, "name") == 0)
                        r = sd_bus_message_read(m, "v", "s", &name);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &action);
        if (r >= 0)
                r = sd_bus_message_skip(m, "a{ss}");
        if (r >= 0)
                r = sd_bus_message_read(m, "us", &flags, &cancellation);
        if (r < 0)
                return r;

        r = bus_double_record(error, record_path, "%s %s %s %u\n", action, kind, name, flags);
        if (r < 0)
                return r;

        if (read_decision(decision, sizeof decision) < 0)
                strcpy(decision, "no");
        return sd_bus_reply_method_return(m, "(bba{ss})", strcmp(decision, "yes") == 0,
                                          strcmp(decision, "challenge") == 0, 0);
}

static const sd_bus_vtable authority_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("CheckAuthorization", "(sa{sv})sa{ss}us", "(bba{ss})", method_check_authorization,
                      SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int main(int argc, char *argv[]) {
        if (argc != 3) {
                fprintf(stderr, "Usage: %s RECORD-FILE DECISION-FILE\n", argv[0]);
                return EXIT_FAILURE;
        }
        record_path = argv[1];
        decision_path = argv[2];

        return bus_double_run("polkit-double", "/org/freedesktop/PolicyKit1/Authority",
                              "org.freedesktop.PolicyKit1.Authority", authority_vtable,
                              "org.freedesktop.PolicyKit1");
}
