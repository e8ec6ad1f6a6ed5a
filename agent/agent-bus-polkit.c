/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>

#include "agent/agent-bus-polkit.h"
#include "shared/log.h"
#include "shared/macro.h"

/* CheckAuthorizationFlags */
#define POLKIT_ALLOW_USER_INTERACTION 1u

typedef struct PolkitQuery {
        sd_bus_message *request;
        AgentBusAuthorizedHandler handler;
        void *userdata;
} PolkitQuery;

static void polkit_query_free(void *p) {
        PolkitQuery *q = p;

        if (!q)
                return;
        sd_bus_message_unref(q->request);
        free(q);
}

static int reply_error(sd_bus_message *request, sd_bus_error *error) {
        int r = sd_bus_reply_method_error(request, error);
        sd_bus_error_free(error);
        return r;
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int authorized = 0, challenge = 0, r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);
                log_debug("polkit did not answer: %s", e && e->message ? e->message : "unknown error");
                sd_bus_error_set(&error, SD_BUS_ERROR_ACCESS_DENIED, "Authorisation through polkit failed.");
                return reply_error(q->request, &error);
        }
        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                sd_bus_error_set(&error, SD_BUS_ERROR_ACCESS_DENIED, "Unexpected answer from polkit.");
                return reply_error(q->request, &error);
        }
        if (!authorized) {
                if (challenge)
                        sd_bus_error_set(&error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                         "Interactive authentication required.");
                else
                        sd_bus_error_set(&error, SD_BUS_ERROR_ACCESS_DENIED, "Not authorised by polkit.");
                return reply_error(q->request, &error);
        }

        r = sd_bus_message_rewind(q->request, true);
        if (r >= 0)
                r = q->handler(q->request, q->userdata, &error);
        if (r < 0) {
                if (!sd_bus_error_is_set(&error))
                        sd_bus_error_set_errno(&error, r);
                return reply_error(q->request, &error);
        }
        return 0;
}

static int sender_uid(sd_bus_message *m, uid_t *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        int r;

        /* Only what the bus itself vouches for (dbus-daemon: SO_PEERCRED of the connection), never
         * SD_BUS_CREDS_AUGMENT: that reads /proc/PID later, and the caller may have exited and its
         * PID been reused by then — not good enough to decide "root, no questions asked". */
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, ret);
        if (r < 0)
                r = sd_bus_creds_get_uid(creds, ret);
        return r;
}

int agent_bus_authorize(sd_bus_message *m, const char *action, AgentBusAuthorizedHandler handler,
                        void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        sd_bus_slot *slot = NULL;
        PolkitQuery *q;
        const char *sender;
        uid_t uid;
        int r;

        r = sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED, "Cannot identify the caller.");
        if (uid == 0)
                return 1;

        sender = sd_bus_message_get_sender(m);
        if (!sender)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED, "Caller without a bus name.");

        r = sd_bus_message_new_method_call(sd_bus_message_get_bus(m), &call, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r >= 0)
                r = sd_bus_message_append(call, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name", "s", sender,
                                          action, 0,
                                          sd_bus_message_get_allow_interactive_authorization(m) > 0
                                                  ? POLKIT_ALLOW_USER_INTERACTION : 0u,
                                          "");
        if (r < 0)
                return sd_bus_error_set_errno(error, r);

        q = calloc(1, sizeof *q);
        if (!q)
                return sd_bus_error_set_errno(error, -ENOMEM);
        q->request = sd_bus_message_ref(m);
        q->handler = handler;
        q->userdata = userdata;

        r = sd_bus_call_async(sd_bus_message_get_bus(m), &slot, call, on_polkit_reply, q, 0);
        if (r < 0) {
                polkit_query_free(q);
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED, "Cannot ask polkit.");
        }
        /* The pending call owns the query from now on and frees it with the slot, whether polkit
         * answers, the call times out or the bus goes away. */
        (void) sd_bus_slot_set_destroy_callback(slot, polkit_query_free);
        (void) sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);
        return 0;
}
