/* SPDX-License-Identifier: Apache-2.0 */
/* certfleetctl: the command line of certfleet-agent, over its D-Bus API (docs/dbus-api.md). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <systemd/sd-bus.h>

#include "config.h"
#include "shared/macro.h"
#include "shared/strv.h"
#include "shared/time-util.h"

#define BUS_NAME "org.certfleet.Agent1"
#define MANAGER_PATH "/org/certfleet/Agent1"
#define MANAGER_INTERFACE "org.certfleet.Agent1.Manager"
#define CERT_INTERFACE "org.certfleet.Agent1.Certificate"
#define ERROR_NO_SUCH_CERTIFICATE "org.certfleet.Agent1.NoSuchCertificate"

/* Exit codes scripts rely on (docs/man/certfleetctl.1). */
enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,
        EXIT_USAGE = 2,
        EXIT_NOT_FOUND = 3,
        EXIT_NOT_RUNNING = 4,
        EXIT_ACCESS_DENIED = 5,
};

static bool arg_json;
static bool arg_force;
static bool arg_due;
static bool arg_no_block;
static bool arg_ask_password = true;

/* One certificate object's properties, as read with GetAll. */
typedef struct CertProps {
        char *path;
        char *name, *protocol, *server, *state, *serial, *issuer, *last_error;
        char **names;
        uint64_t not_before, not_after, window_start, window_end, next_renewal, last_attempt, last_success;
        uint32_t failures;
        int ari;
} CertProps;

static void cert_props_done(CertProps *p) {
        free(p->path);
        free(p->name);
        free(p->protocol);
        free(p->server);
        free(p->state);
        free(p->serial);
        free(p->issuer);
        free(p->last_error);
        strv_free(p->names);
        *p = (CertProps) {};
}

static bool errno_means_not_running(int r) {
        return r == -ENOENT || r == -ECONNREFUSED || r == -ECONNRESET || r == -ENOTCONN || r == -EHOSTDOWN;
}

/* Maps a failed call to an exit code and prints why. */
static int error_to_exit(const sd_bus_error *error, int r, const char *what) {
        if (sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                   SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_DISCONNECTED) ||
            (!sd_bus_error_is_set(error) && errno_means_not_running(r))) {
                fprintf(stderr, "certfleetctl: certfleet-agent is not running (%s).\n",
                        error && error->message ? error->message : strerror(-r));
                return EXIT_NOT_RUNNING;
        }
        if (sd_bus_error_has_names(error, SD_BUS_ERROR_ACCESS_DENIED,
                                   SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED) ||
            (!sd_bus_error_is_set(error) && (r == -EACCES || r == -EPERM))) {
                fprintf(stderr, "certfleetctl: %s: access denied%s%s\n", what,
                        error && error->message ? ": " : ".", error && error->message ? error->message : "");
                return EXIT_ACCESS_DENIED;
        }
        if (sd_bus_error_has_names(error, ERROR_NO_SUCH_CERTIFICATE, SD_BUS_ERROR_UNKNOWN_OBJECT)) {
                fprintf(stderr, "certfleetctl: %s\n", error->message ?: "No such certificate.");
                return EXIT_NOT_FOUND;
        }
        fprintf(stderr, "certfleetctl: %s failed: %s\n", what,
                error && error->message ? error->message : strerror(-r));
        return EXIT_FAIL;
}

static int connect_bus(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        /* sd_bus_open_system() honours $DBUS_SYSTEM_BUS_ADDRESS. */
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "certfleetctl: cannot connect to the system bus: %s\n", strerror(-r));
                return EXIT_NOT_RUNNING;
        }
        (void) sd_bus_set_allow_interactive_authorization(bus, arg_ask_password && isatty(STDIN_FILENO));
        *ret = TAKE_PTR(bus);
        return EXIT_OK;
}

/* --- reading ------------------------------------------------------------------------------- */

static int read_string(sd_bus_message *m, char **dst) {
        const char *s;
        int r = sd_bus_message_read(m, "v", "s", &s);
        if (r < 0)
                return r;
        free(*dst);
        *dst = strdup(s);
        if (!*dst)
                return -ENOMEM;
        /* Issuer and LastError quote a CA or an ACME server: never let them drive the terminal
         * (C0 controls, DEL, and C1 controls in their UTF-8 form U+0080..U+009F). */
        for (unsigned char *c = (unsigned char *) *dst; *c; c++)
                if (*c < ' ' || *c == 0x7f)
                        *c = '?';
                else if (*c == 0xc2 && c[1] >= 0x80 && c[1] <= 0x9f)
                        c[0] = c[1] = '?';
        return 0;
}

static int read_props(sd_bus_message *m, CertProps *p) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                struct { const char *key; char **dst; } strings[] = {
                        { "Name", &p->name }, { "Protocol", &p->protocol }, { "Server", &p->server },
                        { "State", &p->state }, { "Serial", &p->serial }, { "Issuer", &p->issuer },
                        { "LastError", &p->last_error },
                };
                struct { const char *key; uint64_t *dst; } times[] = {
                        { "NotBefore", &p->not_before }, { "NotAfter", &p->not_after },
                        { "RenewalWindowStart", &p->window_start }, { "RenewalWindowEnd", &p->window_end },
                        { "NextRenewal", &p->next_renewal }, { "LastAttempt", &p->last_attempt },
                        { "LastSuccess", &p->last_success },
                };
                bool done = false;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                for (size_t i = 0; !done && i < ELEMENTSOF(strings); i++)
                        if (strcmp(key, strings[i].key) == 0) {
                                r = read_string(m, strings[i].dst);
                                done = true;
                        }
                for (size_t i = 0; !done && i < ELEMENTSOF(times); i++)
                        if (strcmp(key, times[i].key) == 0) {
                                r = sd_bus_message_read(m, "v", "t", times[i].dst);
                                done = true;
                        }
                if (!done && strcmp(key, "Names") == 0) {
                        r = sd_bus_message_enter_container(m, 'v', "as");
                        if (r >= 0) {
                                strv_free(p->names);
                                p->names = NULL;
                                r = sd_bus_message_read_strv(m, &p->names);
                        }
                        if (r >= 0)
                                r = sd_bus_message_exit_container(m);
                        done = true;
                }
                if (!done && strcmp(key, "Failures") == 0) {
                        r = sd_bus_message_read(m, "v", "u", &p->failures);
                        done = true;
                }
                if (!done && strcmp(key, "RenewalInfo") == 0) {
                        r = sd_bus_message_read(m, "v", "b", &p->ari);
                        done = true;
                }
                if (!done)
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* Returns 0, or a negative exit code (the error is printed). */
static int get_props(sd_bus *bus, const char *path, CertProps *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        CertProps p = {};
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll", &error,
                               &reply, "s", CERT_INTERFACE);
        if (r < 0) {
                r = error_to_exit(&error, r, "Reading the certificate");
                sd_bus_error_free(&error);
                return -r;
        }
        r = read_props(reply, &p);
        if (r < 0) {
                cert_props_done(&p);
                fprintf(stderr, "certfleetctl: unexpected reply from the agent: %s\n", strerror(-r));
                return -EXIT_FAIL;
        }
        p.path = strdup(path);
        if (!p.path) {
                cert_props_done(&p);
                return -EXIT_FAIL;
        }
        *ret = p;
        return 0;
}

/* Returns the object path of a certificate, or a negative exit code. */
static int get_cert_path(sd_bus *bus, const char *name, char **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *path;
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, "GetCertificate", &error,
                               &reply, "s", name);
        if (r < 0) {
                r = error_to_exit(&error, r, "Looking up the certificate");
                sd_bus_error_free(&error);
                return -r;
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return -EXIT_FAIL;
        *ret = strdup(path);
        return *ret ? 0 : -EXIT_FAIL;
}

/* --- output -------------------------------------------------------------------------------- */

static const char *format_usec(uint64_t usec, char buf[static CF_RFC3339_MAX]) {
        if (usec == 0)
                return NULL;
        return time_format_rfc3339((cf_time_t) (usec / 1000000), buf);
}

static json_object *json_time(uint64_t usec) {
        char buf[CF_RFC3339_MAX];
        const char *s = format_usec(usec, buf);
        return s ? json_object_new_string(s) : NULL;
}

static json_object *json_string_or_null(const char *s) {
        return s && *s ? json_object_new_string(s) : NULL;
}

static json_object *props_to_json(const CertProps *p) {
        json_object *o = json_object_new_object(), *names = json_object_new_array();

        for (char **n = p->names; n && *n; n++)
                json_object_array_add(names, json_object_new_string(*n));
        json_object_object_add(o, "name", json_object_new_string(p->name ?: ""));
        json_object_object_add(o, "state", json_object_new_string(p->state ?: ""));
        json_object_object_add(o, "protocol", json_string_or_null(p->protocol));
        json_object_object_add(o, "server", json_string_or_null(p->server));
        json_object_object_add(o, "names", names);
        json_object_object_add(o, "serial", json_string_or_null(p->serial));
        json_object_object_add(o, "issuer", json_string_or_null(p->issuer));
        json_object_object_add(o, "notBefore", json_time(p->not_before));
        json_object_object_add(o, "notAfter", json_time(p->not_after));
        json_object_object_add(o, "renewalWindowStart", json_time(p->window_start));
        json_object_object_add(o, "renewalWindowEnd", json_time(p->window_end));
        json_object_object_add(o, "renewalInfo", json_object_new_boolean(p->ari));
        json_object_object_add(o, "nextRenewal", json_time(p->next_renewal));
        json_object_object_add(o, "lastAttempt", json_time(p->last_attempt));
        json_object_object_add(o, "lastSuccess", json_time(p->last_success));
        json_object_object_add(o, "lastError", json_string_or_null(p->last_error));
        json_object_object_add(o, "failures", json_object_new_int64(p->failures));
        json_object_object_add(o, "objectPath", json_object_new_string(p->path ?: ""));
        return o;
}

static void print_json(json_object *o) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                               JSON_C_TO_STRING_NOSLASHESCAPE));
}

static const char *or_dash(const char *s) {
        return s && *s ? s : "-";
}

static void print_status(const CertProps *p) {
        char buf[CF_RFC3339_MAX];
        _cleanup_free_ char *names = strv_join(p->names, " ");

        printf("%s\n", p->name);
        printf("        State: %s\n", or_dash(p->state));
        printf("     Protocol: %s\n", or_dash(p->protocol));
        printf("       Server: %s\n", or_dash(p->server));
        printf("        Names: %s\n", or_dash(names));
        printf("       Serial: %s\n", or_dash(p->serial));
        printf("       Issuer: %s\n", or_dash(p->issuer));
        printf("    NotBefore: %s\n", or_dash(format_usec(p->not_before, buf)));
        printf("     NotAfter: %s\n", or_dash(format_usec(p->not_after, buf)));
        printf(" RenewalStart: %s%s\n", or_dash(format_usec(p->window_start, buf)),
               p->window_start && p->ari ? " (ARI)" : "");
        printf("   RenewalEnd: %s\n", or_dash(format_usec(p->window_end, buf)));
        printf("  NextRenewal: %s\n", p->next_renewal ? format_usec(p->next_renewal, buf) : "as soon as possible");
        printf("  LastAttempt: %s\n", or_dash(format_usec(p->last_attempt, buf)));
        printf("  LastSuccess: %s\n", or_dash(format_usec(p->last_success, buf)));
        printf("    LastError: %s\n", or_dash(p->last_error));
        if (p->failures > 0)
                printf("     Failures: %u\n", p->failures);
}

/* --- verbs --------------------------------------------------------------------------------- */

static int verb_list(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *array = json_object_new_array();
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *name, *state, *path;
        size_t n = 0;
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, "ListCertificates", &error,
                               &reply, NULL);
        if (r < 0) {
                r = error_to_exit(&error, r, "Listing certificates");
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(sso)");
        if (r < 0)
                return EXIT_FAIL;
        if (!arg_json)
                printf("%-24s %-10s %-34s %-20s %s\n", "NAME", "STATE", "SERIAL", "NOT AFTER", "NEXT RENEWAL");
        while ((r = sd_bus_message_read(reply, "(sso)", &name, &state, &path)) > 0) {
                CertProps p = {};
                char b1[CF_RFC3339_MAX], b2[CF_RFC3339_MAX];

                r = get_props(bus, path, &p);
                if (r < 0)
                        /* It may have gone away in a reload since the list was made. */
                        continue;
                if (arg_json)
                        json_object_array_add(array, props_to_json(&p));
                else
                        printf("%-24s %-10s %-34s %-20s %s\n", p.name, p.state, or_dash(p.serial),
                               or_dash(format_usec(p.not_after, b1)),
                               p.next_renewal ? format_usec(p.next_renewal, b2) : "now");
                cert_props_done(&p);
                n++;
        }
        if (r < 0)
                return EXIT_FAIL;
        if (arg_json)
                print_json(array);
        else
                printf("\n%zu certificate%s listed.\n", n, n == 1 ? "" : "s");
        return EXIT_OK;
}

static int verb_status(sd_bus *bus, char **args) {
        _cleanup_(json_object_putp) json_object *array = json_object_new_array();
        int ret = EXIT_OK, r;

        for (char **a = args; *a; a++) {
                _cleanup_free_ char *path = NULL;
                CertProps p = {};

                r = get_cert_path(bus, *a, &path);
                if (r >= 0)
                        r = get_props(bus, path, &p);
                if (r < 0) {
                        if (ret == EXIT_OK)
                                ret = -r;
                        continue;
                }
                if (arg_json)
                        json_object_array_add(array, props_to_json(&p));
                else {
                        if (a != args)
                                putchar('\n');
                        print_status(&p);
                }
                cert_props_done(&p);
        }
        if (arg_json) {
                /* One name: the object itself, several: an array. */
                if (strv_length(args) == 1 && json_object_array_length(array) == 1)
                        print_json(json_object_array_get_idx(array, 0));
                else if (strv_length(args) > 1 || json_object_array_length(array) > 0)
                        print_json(array);
        }
        return ret;
}

/* The outcome of one renewal, as the signals tell it. */
typedef enum WaitResult {
        WAIT_PENDING,
        WAIT_RENEWED,
        WAIT_FAILED,
        WAIT_UNCHANGED,          /* the job ran and found nothing to do */
} WaitResult;

typedef struct Wait {
        char *name;
        char *path;
        WaitResult result;
        char *detail;            /* serial or error */
} Wait;

typedef struct Waiter {
        Wait *items;
        size_t n;
        bool agent_gone;
} Waiter;

static Wait *waiter_find(Waiter *w, const char *name, const char *path) {
        for (size_t i = 0; i < w->n; i++)
                if ((name && strcmp(w->items[i].name, name) == 0) || (path && strcmp(w->items[i].path, path) == 0))
                        return &w->items[i];
        return NULL;
}

static int on_outcome(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Waiter *w = userdata;
        const char *name, *path, *detail;
        Wait *item;

        if (sd_bus_message_read(m, "sos", &name, &path, &detail) < 0)
                return 0;
        item = waiter_find(w, name, NULL);
        if (!item || item->result != WAIT_PENDING)
                return 0;
        item->result = sd_bus_message_is_signal(m, MANAGER_INTERFACE, "CertificateRenewed") ? WAIT_RENEWED : WAIT_FAILED;
        free(item->detail);
        item->detail = strdup(detail);
        return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Waiter *w = userdata;
        const char *interface;
        Wait *item;
        int r;

        item = waiter_find(w, NULL, sd_bus_message_get_path(m));
        if (!item || item->result != WAIT_PENDING)
                return 0;
        if (sd_bus_message_read(m, "s", &interface) < 0 || strcmp(interface, CERT_INTERFACE) != 0)
                return 0;
        if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
                return 0;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                int pending;

                if (sd_bus_message_read(m, "s", &key) < 0)
                        return 0;
                if (strcmp(key, "RenewalPending") == 0) {
                        if (sd_bus_message_read(m, "v", "b", &pending) < 0)
                                return 0;
                        /* The agent reports the end of a job after its outcome signal: no signal
                         * before it means the job found nothing to do. */
                        if (!pending)
                                item->result = WAIT_UNCHANGED;
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                if (sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Waiter *w = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 &&
            strcmp(name, BUS_NAME) == 0 && !*new_owner)
                w->agent_gone = true;
        return 0;
}

static int waiter_subscribe(sd_bus *bus, Waiter *w) {
        int r;

        r = sd_bus_match_signal(bus, NULL, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, "CertificateRenewed",
                                on_outcome, w);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, "RenewalFailed",
                                        on_outcome, w);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, BUS_NAME, NULL, "org.freedesktop.DBus.Properties",
                                        "PropertiesChanged", on_properties_changed, w);
        if (r >= 0)
                r = sd_bus_add_match(bus, NULL,
                                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                                     "arg0='" BUS_NAME "'", on_name_owner_changed, w);
        if (r < 0)
                fprintf(stderr, "certfleetctl: cannot subscribe to the agent's signals: %s\n", strerror(-r));
        return r;
}

static int waiter_add(Waiter *w, const char *name, const char *path) {
        Wait *items = realloc(w->items, (w->n + 1) * sizeof *items);

        if (!items)
                return -ENOMEM;
        w->items = items;
        items[w->n] = (Wait) { .name = strdup(name), .path = strdup(path) };
        if (!items[w->n].name || !items[w->n].path)
                return -ENOMEM;
        w->n++;
        return 0;
}

static void waiter_done(Waiter *w) {
        for (size_t i = 0; i < w->n; i++) {
                free(w->items[i].name);
                free(w->items[i].path);
                free(w->items[i].detail);
        }
        free(w->items);
}

static bool waiter_finished(Waiter *w) {
        for (size_t i = 0; i < w->n; i++)
                if (w->items[i].result == WAIT_PENDING)
                        return false;
        return true;
}

/* Runs the bus until every renewal has an outcome; prints them. */
static int waiter_run(sd_bus *bus, Waiter *w) {
        _cleanup_(json_object_putp) json_object *array = json_object_new_array();
        int ret = EXIT_OK, r;

        while (!waiter_finished(w) && !w->agent_gone) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "certfleetctl: lost the bus: %s\n", strerror(-r));
                        return EXIT_NOT_RUNNING;
                }
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0) {
                        fprintf(stderr, "certfleetctl: lost the bus: %s\n", strerror(-r));
                        return EXIT_NOT_RUNNING;
                }
        }
        for (size_t i = 0; i < w->n; i++) {
                Wait *item = &w->items[i];
                static const char *const words[] = {
                        [WAIT_PENDING] = "unknown", [WAIT_RENEWED] = "renewed",
                        [WAIT_FAILED] = "failed", [WAIT_UNCHANGED] = "unchanged",
                };

                if (item->result == WAIT_FAILED || item->result == WAIT_PENDING)
                        ret = EXIT_FAIL;
                if (arg_json) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "name", json_object_new_string(item->name));
                        json_object_object_add(o, "result", json_object_new_string(words[item->result]));
                        json_object_object_add(o, "serial", item->result == WAIT_RENEWED
                                               ? json_string_or_null(item->detail) : NULL);
                        json_object_object_add(o, "error", item->result == WAIT_FAILED
                                               ? json_object_new_string(item->detail ?: "") : NULL);
                        json_object_array_add(array, o);
                } else if (item->result == WAIT_RENEWED)
                        printf("%s: renewed, new serial %s\n", item->name, or_dash(item->detail));
                else if (item->result == WAIT_FAILED)
                        fprintf(stderr, "%s: renewal failed: %s\n", item->name, or_dash(item->detail));
                else if (item->result == WAIT_UNCHANGED)
                        printf("%s: nothing to do, the certificate is not due\n", item->name);
                else
                        fprintf(stderr, "%s: the agent stopped before the renewal finished\n", item->name);
        }
        if (arg_json)
                print_json(array);
        return w->agent_gone && ret == EXIT_FAIL ? EXIT_NOT_RUNNING : ret;
}

static int verb_renew_one(sd_bus *bus, const char *name) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        Waiter w = {};
        int r;

        r = get_cert_path(bus, name, &path);
        if (r < 0)
                return -r;
        if (!arg_no_block) {
                /* Subscribed before the call, so no signal of this renewal can be missed; after the
                 * reply the certificate is queued or running (then that job's end is awaited). */
                if (waiter_subscribe(bus, &w) < 0 || waiter_add(&w, name, path) < 0) {
                        waiter_done(&w);
                        return EXIT_FAIL;
                }
        }

        r = sd_bus_call_method(bus, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, "Renew", &error, &reply,
                               "sb", name, (int) arg_force);
        if (r < 0) {
                r = error_to_exit(&error, r, "Renew");
                sd_bus_error_free(&error);
                waiter_done(&w);
                return r;
        }
        if (arg_no_block) {
                if (arg_json) {
                        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                        json_object_object_add(o, "name", json_object_new_string(name));
                        json_object_object_add(o, "result", json_object_new_string("queued"));
                        print_json(o);
                } else
                        printf("%s: renewal queued\n", name);
                return EXIT_OK;
        }
        r = waiter_run(bus, &w);
        waiter_done(&w);
        return r;
}

static int verb_renew_due(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(strv_freep) char **queued = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        Waiter w = {};
        int r;

        if (!arg_no_block && waiter_subscribe(bus, &w) < 0)
                return EXIT_FAIL;
        r = sd_bus_call_method(bus, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, "RenewDue", &error, &reply, NULL);
        if (r < 0) {
                r = error_to_exit(&error, r, "RenewDue");
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_read_strv(reply, &queued);
        if (r < 0)
                return EXIT_FAIL;
        if (arg_no_block || !queued) {
                if (arg_json) {
                        _cleanup_(json_object_putp) json_object *o = json_object_new_array();
                        for (char **q = queued; q && *q; q++)
                                json_object_array_add(o, json_object_new_string(*q));
                        print_json(o);
                } else if (!queued)
                        printf("Nothing is due.\n");
                else
                        for (char **q = queued; *q; q++)
                                printf("%s: renewal queued\n", *q);
                return EXIT_OK;
        }
        for (char **q = queued; *q; q++) {
                char *path;
                r = sd_bus_path_encode("/org/certfleet/Agent1/certificate", *q, &path);
                if (r < 0 || waiter_add(&w, *q, path) < 0) {
                        free(path);
                        waiter_done(&w);
                        return EXIT_FAIL;
                }
                free(path);
        }
        r = waiter_run(bus, &w);
        waiter_done(&w);
        return r;
}

static int verb_renew(sd_bus *bus, char **args) {
        if (arg_due)
                return verb_renew_due(bus);
        return verb_renew_one(bus, args[0]);
}

static int verb_reload(sd_bus *bus, char **args) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, "Reload", &error, NULL, NULL);
        if (r < 0) {
                r = error_to_exit(&error, r, "Reload");
                sd_bus_error_free(&error);
                return r;
        }
        return EXIT_OK;
}

/* --- command line -------------------------------------------------------------------------- */

static void help(void) {
        printf("%s [OPTIONS…] COMMAND …\n\n"
               "Shows and controls certfleet-agent over D-Bus.\n\n"
               "Commands:\n"
               "  list                   List the tracked certificates\n"
               "  status NAME…           Show a certificate's state\n"
               "  renew NAME [--force]   Renew a certificate and wait for the outcome\n"
               "  renew --due            Renew every certificate that is due\n"
               "  reload                 Reread the agent's configuration\n\n"
               "Options:\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "     --json              Print JSON\n"
               "     --force             renew: even if not due\n"
               "     --due               renew: everything that is due\n"
               "     --no-block          renew: do not wait for the outcome\n"
               "     --no-ask-password   Do not ask for a password (polkit)\n\n"
               "Exit status: 0 success, 1 failure, 2 usage, 3 unknown certificate,\n"
               "4 the agent is not running, 5 access denied.\n",
               program_invocation_short_name);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_JSON, ARG_FORCE, ARG_DUE, ARG_NO_BLOCK, ARG_NO_ASK_PASSWORD };
        static const struct option options[] = {
                { "help",            no_argument, NULL, 'h' },
                { "version",         no_argument, NULL, ARG_VERSION },
                { "json",            no_argument, NULL, ARG_JSON },
                { "force",           no_argument, NULL, ARG_FORCE },
                { "due",             no_argument, NULL, ARG_DUE },
                { "no-block",        no_argument, NULL, ARG_NO_BLOCK },
                { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("certfleetctl %s\n", CERTFLEET_VERSION);
                        return 0;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_FORCE:
                        arg_force = true;
                        break;
                case ARG_DUE:
                        arg_due = true;
                        break;
                case ARG_NO_BLOCK:
                        arg_no_block = true;
                        break;
                case ARG_NO_ASK_PASSWORD:
                        arg_ask_password = false;
                        break;
                default:
                        return -EINVAL;
                }
        return 1;
}

typedef struct Verb {
        const char *name;
        size_t min_args, max_args;   /* after the verb */
        int (*run)(sd_bus *bus, char **args);
} Verb;

int main(int argc, char *argv[]) {
        static const Verb verbs[] = {
                { "list",   0, 0,        verb_list },
                { "status", 1, SIZE_MAX, verb_status },
                { "renew",  0, 1,        verb_renew },
                { "reload", 0, 0,        verb_reload },
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const Verb *verb = NULL;
        size_t n_args;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_OK;
        if (optind >= argc) {
                fprintf(stderr, "certfleetctl: a command is needed (see --help).\n");
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(argv[optind], verbs[i].name) == 0)
                        verb = &verbs[i];
        if (!verb) {
                fprintf(stderr, "certfleetctl: unknown command '%s' (see --help).\n", argv[optind]);
                return EXIT_USAGE;
        }
        n_args = (size_t) (argc - optind - 1);
        if (n_args < verb->min_args || n_args > verb->max_args) {
                fprintf(stderr, "certfleetctl: wrong number of arguments for '%s' (see --help).\n", verb->name);
                return EXIT_USAGE;
        }
        if (verb->run == verb_renew && arg_due == (n_args == 1)) {
                fprintf(stderr, "certfleetctl: renew needs either a NAME or --due.\n");
                return EXIT_USAGE;
        }
        if ((arg_force || arg_no_block || arg_due) && verb->run != verb_renew) {
                fprintf(stderr, "certfleetctl: --force, --due and --no-block go with renew.\n");
                return EXIT_USAGE;
        }
        if (arg_force && arg_due) {
                fprintf(stderr, "certfleetctl: --force goes with renew NAME, not with --due.\n");
                return EXIT_USAGE;
        }

        r = connect_bus(&bus);
        if (r != EXIT_OK)
                return r;
        return verb->run(bus, argv + optind + 1);
}
