/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent-bus-polkit.h"
#include "agent/agent-bus.h"
#include "agent/agent-manager-query.h"
#include "config.h"
#include "shared/log.h"
#include "shared/strv.h"

#define BUS_NAME "org.certfleet.Agent1"
#define MANAGER_PATH "/org/certfleet/Agent1"
#define MANAGER_INTERFACE "org.certfleet.Agent1.Manager"
#define CERT_PATH_PREFIX "/org/certfleet/Agent1/certificate"
#define CERT_INTERFACE "org.certfleet.Agent1.Certificate"
#define ERROR_NO_SUCH_CERTIFICATE "org.certfleet.Agent1.NoSuchCertificate"
#define ERROR_RELOAD_FAILED "org.certfleet.Agent1.ReloadFailed"

typedef struct AgentBus {
        AgentManager *manager;
        sd_bus *bus;                  /* borrowed: the bus owns this structure (slot destroy callback) */
        sd_event_source *defer;
        char **busy;                  /* certificates last exported with RenewalPending=true */
        char **deferred;              /* certificates whose PropertiesChanged waits for the end of the dispatch */
} AgentBus;

static void agent_bus_free(void *p) {
        AgentBus *b = p;

        if (!b)
                return;
        agent_manager_set_change_callback(b->manager, NULL, NULL);
        sd_event_source_disable_unref(b->defer);
        strv_free(b->busy);
        strv_free(b->deferred);
        free(b);
}

static uint64_t usec_from_time(cf_time_t t) {
        /* systemd's convention: 0 means unknown (or, for NextRenewal, "as soon as possible"). */
        if (t == CF_TIME_INVALID || t <= 0)
                return 0;
        return (uint64_t) t * UINT64_C(1000000);
}

static int cert_path(const char *name, char **ret) {
        return sd_bus_path_encode(CERT_PATH_PREFIX, name, ret);
}

static void strv_remove(char **l, const char *s) {
        for (char **p = l; p && *p; p++)
                if (strcmp(*p, s) == 0) {
                        free(*p);
                        memmove(p, p + 1, (strv_length(p + 1) + 1) * sizeof *p);
                        return;
                }
}

/* --- certificate objects ------------------------------------------------------------------- */

static int cert_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                     void **ret_found, sd_bus_error *error) {
        AgentBus *b = userdata;
        _cleanup_free_ char *name = NULL;
        AgentCert *c;
        int r;

        r = sd_bus_path_decode(path, CERT_PATH_PREFIX, &name);
        if (r <= 0)
                return 0;
        c = agent_manager_find_cert(b->manager, name);
        if (!c)
                return 0;
        *ret_found = c;
        return 1;
}

static int cert_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
                          sd_bus_error *error) {
        AgentBus *b = userdata;
        _cleanup_(strv_freep) char **nodes = NULL;
        AgentCert *const *certs;
        size_t n;
        int r;

        certs = agent_manager_get_certs(b->manager, &n);
        for (size_t i = 0; i < n; i++) {
                char *path;

                r = cert_path(agent_cert_get_name(certs[i]), &path);
                if (r < 0)
                        return r;
                r = strv_consume(&nodes, path);
                if (r < 0)
                        return r;
        }
        *ret_nodes = TAKE_PTR(nodes);
        return 0;
}

static int cert_property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        AgentCert *c = userdata;
        AgentCertInfo info;
        int r;

        r = agent_cert_get_info(c, &info);
        if (r < 0)
                return r;

        if (strcmp(property, "Name") == 0)
                return sd_bus_message_append(reply, "s", info.name);
        if (strcmp(property, "Protocol") == 0)
                return sd_bus_message_append(reply, "s", info.protocol ?: "");
        if (strcmp(property, "Server") == 0)
                return sd_bus_message_append(reply, "s", info.server ?: "");
        if (strcmp(property, "State") == 0)
                return sd_bus_message_append(reply, "s", agent_cert_state_to_string(info.state) ?: "");
        if (strcmp(property, "Names") == 0)
                return sd_bus_message_append_strv(reply, (char **) info.names);
        if (strcmp(property, "Serial") == 0)
                return sd_bus_message_append(reply, "s", info.serial ?: "");
        if (strcmp(property, "Issuer") == 0) {
                _cleanup_free_ char *issuer = NULL;
                (void) agent_cert_get_issuer(c, &issuer);
                return sd_bus_message_append(reply, "s", issuer ?: "");
        }
        if (strcmp(property, "NotBefore") == 0)
                return sd_bus_message_append(reply, "t", usec_from_time(info.not_before));
        if (strcmp(property, "NotAfter") == 0)
                return sd_bus_message_append(reply, "t", usec_from_time(info.not_after));
        if (strcmp(property, "RenewalWindowStart") == 0)
                return sd_bus_message_append(reply, "t", usec_from_time(info.renewal_window_start));
        if (strcmp(property, "RenewalWindowEnd") == 0)
                return sd_bus_message_append(reply, "t", usec_from_time(info.renewal_window_end));
        if (strcmp(property, "RenewalInfo") == 0)
                return sd_bus_message_append(reply, "b", info.ari);
        if (strcmp(property, "NextRenewal") == 0)
                return sd_bus_message_append(reply, "t", usec_from_time(info.next_renewal));
        if (strcmp(property, "LastAttempt") == 0)
                return sd_bus_message_append(reply, "t", usec_from_time(info.last_attempt));
        if (strcmp(property, "LastSuccess") == 0)
                return sd_bus_message_append(reply, "t", usec_from_time(info.last_success));
        if (strcmp(property, "RenewalPending") == 0)
                return sd_bus_message_append(reply, "b", agent_cert_is_pending(c));
        if (strcmp(property, "LastError") == 0)
                return sd_bus_message_append(reply, "s", info.last_error ?: "");
        if (strcmp(property, "Failures") == 0)
                return sd_bus_message_append(reply, "u", (uint32_t) info.failures);
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s.", property);
}

#define CERT_PROPERTY(name, sig) \
        SD_BUS_PROPERTY(name, sig, cert_property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)

static const sd_bus_vtable cert_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", cert_property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        CERT_PROPERTY("Protocol", "s"),
        CERT_PROPERTY("Server", "s"),
        CERT_PROPERTY("State", "s"),
        CERT_PROPERTY("Names", "as"),
        CERT_PROPERTY("Serial", "s"),
        CERT_PROPERTY("Issuer", "s"),
        CERT_PROPERTY("NotBefore", "t"),
        CERT_PROPERTY("NotAfter", "t"),
        CERT_PROPERTY("RenewalWindowStart", "t"),
        CERT_PROPERTY("RenewalWindowEnd", "t"),
        CERT_PROPERTY("RenewalInfo", "b"),
        CERT_PROPERTY("NextRenewal", "t"),
        CERT_PROPERTY("LastAttempt", "t"),
        CERT_PROPERTY("LastSuccess", "t"),
        CERT_PROPERTY("RenewalPending", "b"),
        CERT_PROPERTY("LastError", "s"),
        CERT_PROPERTY("Failures", "u"),
        SD_BUS_VTABLE_END,
};

/* --- announcing changes ---------------------------------------------------------------------- */

static void emit_properties(AgentBus *b, const char *name) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = cert_path(name, &path);
        if (r >= 0)
                r = sd_bus_emit_properties_changed_strv(b->bus, path, CERT_INTERFACE, NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot emit PropertiesChanged for %s: %m", name);
}

/* A job's end is reported as PropertiesChanged(RenewalPending=false) after its CertificateRenewed
 * or RenewalFailed signal, not before, so a client waiting for the outcome of a renewal can take
 * "no longer pending" without a signal as "nothing was due". */
static int on_defer(sd_event_source *s, void *userdata) {
        AgentBus *b = userdata;
        _cleanup_(strv_freep) char **deferred = TAKE_PTR(b->deferred);

        for (char **p = deferred; p && *p; p++)
                if (agent_manager_find_cert(b->manager, *p))
                        emit_properties(b, *p);
        return 0;
}

/* Announces the certificate's properties, at once or (when its job just ended) after the
 * outcome signals of this dispatch. */
static void announce(AgentBus *b, AgentCert *c) {
        const char *name = agent_cert_get_name(c);
        bool busy = agent_cert_is_pending(c), was_busy = strv_contains(b->busy, name);

        if (busy && !was_busy)
                (void) strv_extend(&b->busy, name);
        else if (!busy && was_busy) {
                strv_remove(b->busy, name);
                if (strv_contains(b->deferred, name) ||
                    (strv_extend(&b->deferred, name) >= 0 &&
                     sd_event_source_set_enabled(b->defer, SD_EVENT_ONESHOT) >= 0))
                        return;
        }
        /* A deferred emission reads the values when it runs, this change included. */
        if (!strv_contains(b->deferred, name))
                emit_properties(b, name);
}

/* --- manager object ------------------------------------------------------------------------ */

static int manager_property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        AgentBus *b = userdata;

        if (strcmp(property, "Version") == 0)
                return sd_bus_message_append(reply, "s", CERTFLEET_VERSION);
        if (strcmp(property, "Busy") == 0)
                return sd_bus_message_append(reply, "b", agent_manager_busy(b->manager));
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s.", property);
}

static int method_list_certificates(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        AgentBus *b = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        AgentCert *const *certs;
        size_t n;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sso)");
        if (r < 0)
                return r;
        certs = agent_manager_get_certs(b->manager, &n);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                AgentCertInfo info;

                r = agent_cert_get_info(certs[i], &info);
                if (r < 0)
                        return r;
                r = cert_path(info.name, &path);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "(sso)", info.name,
                                          agent_cert_state_to_string(info.state) ?: "", path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int no_such_certificate(sd_bus_error *error, const char *name) {
        return sd_bus_error_setf(error, ERROR_NO_SUCH_CERTIFICATE, "No certificate named '%s'.", name);
}

/* The call's first argument, which must name a configured certificate. */
static int read_cert_name(AgentBus *b, sd_bus_message *m, sd_bus_error *error, const char **ret) {
        const char *name;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        if (!agent_manager_find_cert(b->manager, name))
                return no_such_certificate(error, name);
        *ret = name;
        return 0;
}

static int method_get_certificate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *path = NULL;
        const char *name = NULL;
        int r;

        r = read_cert_name(userdata, m, error, &name);
        if (r < 0)
                return r;
        r = cert_path(name, &path);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "o", path);
}

static int do_renew(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        AgentBus *b = userdata;
        const char *name;
        int force, r;

        r = sd_bus_message_read(m, "sb", &name, &force);
        if (r < 0)
                return r;
        r = agent_manager_renew(b->manager, name, force);
        if (r == -ENOENT)
                return no_such_certificate(error, name);
        /* Already queued or running: what the caller asked for is under way. */
        if (r < 0 && r != -EBUSY)
                return sd_bus_error_set_errnof(error, r, "Cannot renew '%s': %m", name);
        log_info("Renewal of %s requested over D-Bus%s.", name, force ? " (forced)" : "");
        /* Queued (not necessarily started): RenewalPending changes without a word from the manager. */
        if (r >= 0)
                announce(b, agent_manager_find_cert(b->manager, name));
        return sd_bus_reply_method_return(m, NULL);
}

/* Runs handler at once for root; for anyone else when polkit says yes (agent_bus_authorize()
 * replies then). handler reads the arguments from the start, whatever the caller read already. */
static int run_authorized(sd_bus_message *m, AgentBusAuthorizedHandler handler, void *userdata,
                          sd_bus_error *error) {
        int r;

        r = agent_bus_authorize(m, AGENT_POLKIT_ACTION, handler, userdata, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        return handler(m, userdata, error);
}

static int method_renew(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *name = NULL;
        int r;

        /* Unknown names are reported before asking polkit: reading is open to everyone anyway. */
        r = read_cert_name(userdata, m, error, &name);
        if (r < 0)
                return r;
        return run_authorized(m, do_renew, userdata, error);
}

static int do_renew_due(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        AgentBus *b = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(strv_freep) char **idle = NULL, **queued = NULL;
        AgentCert *const *certs;
        size_t n;
        int r;

        /* The manager only counts what it queued; the caller wants the names, to wait for them. */
        certs = agent_manager_get_certs(b->manager, &n);
        for (size_t i = 0; i < n; i++)
                if (!agent_cert_is_pending(certs[i])) {
                        r = strv_extend(&idle, agent_cert_get_name(certs[i]));
                        if (r < 0)
                                return r;
                }
        r = agent_manager_renew_due(b->manager);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot queue due renewals: %m");
        for (char **p = idle; p && *p; p++) {
                AgentCert *c = agent_manager_find_cert(b->manager, *p);
                if (c && agent_cert_is_pending(c)) {
                        r = strv_extend(&queued, *p);
                        if (r < 0)
                                return r;
                        announce(b, c);
                }
        }
        log_info("Due renewals requested over D-Bus: %zu queued.", strv_length(queued));
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(reply, queued);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_renew_due(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_authorized(m, do_renew_due, userdata, error);
}

static int do_reload(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        AgentBus *b = userdata;
        int r;

        r = agent_manager_reload(b->manager);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Reloading the configuration failed: %m");
        return sd_bus_reply_method_return(m, NULL);
}

static int method_reload(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_authorized(m, do_reload, userdata, error);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", manager_property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Busy", "b", manager_property_get, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("ListCertificates", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sso)", certificates),
                                method_list_certificates, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCertificate", SD_BUS_ARGS("s", name),
                                SD_BUS_RESULT("o", certificate),
                                method_get_certificate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Renew", SD_BUS_ARGS("s", name, "b", force), SD_BUS_NO_RESULT,
                                method_renew, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RenewDue", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", queued),
                                method_renew_due, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                                method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("CertificateRenewed",
                                SD_BUS_ARGS("s", name, "o", certificate, "s", serial), 0),
        SD_BUS_SIGNAL_WITH_ARGS("RenewalFailed",
                                SD_BUS_ARGS("s", name, "o", certificate, "s", error), 0),
        SD_BUS_VTABLE_END,
};

/* --- changes from the manager ---------------------------------------------------------------- */

static void on_change(AgentManager *m, AgentCert *c, AgentChange change, void *userdata) {
        AgentBus *b = userdata;
        _cleanup_free_ char *path = NULL;
        const char *name = agent_cert_get_name(c);
        AgentCertInfo info;
        int r;

        r = cert_path(name, &path);
        if (r < 0)
                return;

        switch (change) {
        case AGENT_CHANGE_ADDED:
                r = sd_bus_emit_object_added(b->bus, path);
                if (agent_cert_is_pending(c))
                        (void) strv_extend(&b->busy, name);
                break;
        case AGENT_CHANGE_REMOVED:
                r = sd_bus_emit_object_removed(b->bus, path);
                strv_remove(b->busy, name);
                strv_remove(b->deferred, name);
                break;
        case AGENT_CHANGE_PROPERTIES:
                announce(b, c);
                break;
        case AGENT_CHANGE_RENEWED:
                r = agent_cert_get_info(c, &info);
                if (r >= 0)
                        r = sd_bus_emit_signal(b->bus, MANAGER_PATH, MANAGER_INTERFACE, "CertificateRenewed",
                                               "sos", name, path, info.serial ?: "");
                break;
        case AGENT_CHANGE_FAILED:
                r = agent_cert_get_info(c, &info);
                if (r >= 0)
                        r = sd_bus_emit_signal(b->bus, MANAGER_PATH, MANAGER_INTERFACE, "RenewalFailed",
                                               "sos", name, path, info.last_error ?: "");
                break;
        }
        if (r < 0)
                log_debug_errno(r, "Cannot announce a change of %s on the bus: %m", name);
}

/* --- set-up --------------------------------------------------------------------------------- */

int agent_bus_attach(AgentManager *m, sd_event *e, sd_bus **ret_bus) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        sd_bus_slot *slot = NULL;
        AgentCert *const *certs;
        AgentBus *b;
        size_t n;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        (void) sd_bus_set_description(bus, "certfleet-agent");
        r = sd_bus_attach_event(bus, e, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;

        b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->manager = m;
        b->bus = bus;

        r = sd_bus_add_object_vtable(bus, &slot, MANAGER_PATH, MANAGER_INTERFACE, manager_vtable, b);
        if (r < 0) {
                free(b);
                return r;
        }
        /* From here on the bus owns b: freeing the bus frees it and unhooks the manager. */
        (void) sd_bus_slot_set_destroy_callback(slot, agent_bus_free);
        (void) sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);

        r = sd_bus_add_fallback_vtable(bus, NULL, CERT_PATH_PREFIX, CERT_INTERFACE, cert_vtable, cert_find, b);
        if (r < 0)
                return r;
        r = sd_bus_add_node_enumerator(bus, NULL, CERT_PATH_PREFIX, cert_enumerate, b);
        if (r < 0)
                return r;
        r = sd_bus_add_object_manager(bus, NULL, MANAGER_PATH);
        if (r < 0)
                return r;

        r = sd_event_add_defer(e, &b->defer, on_defer, b);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(b->defer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(b->defer, "agent-bus-properties");

        certs = agent_manager_get_certs(m, &n);
        for (size_t i = 0; i < n; i++)
                if (agent_cert_is_pending(certs[i])) {
                        r = strv_extend(&b->busy, agent_cert_get_name(certs[i]));
                        if (r < 0)
                                return r;
                }
        agent_manager_set_change_callback(m, on_change, b);

        r = sd_bus_request_name(bus, BUS_NAME, 0);
        if (r < 0)
                return r;

        *ret_bus = TAKE_PTR(bus);
        return 0;
}
