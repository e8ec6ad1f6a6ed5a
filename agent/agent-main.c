/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "agent/agent-bus.h"
#include "agent/agent-manager.h"
#include "config.h"
#include "shared/log.h"

static const char *arg_config_dir = AGENT_CONFIG_DIR_DEFAULT;
static const char *arg_state_dir;
static const char *arg_name;
static bool arg_once;
static bool arg_force;
static bool arg_no_bus;

static void help(void) {
        printf("%s [OPTIONS…]\n\n"
               "Keeps the certificates of agent.d/*.conf enrolled, renewed and deployed.\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "     --config-dir=DIR    Read agent.conf and agent.d/ from DIR (default %s)\n"
               "     --state-dir=DIR     Keep state in DIR (overrides StateDirectory=)\n"
               "     --once              Enroll or renew what is due, deploy, and exit\n"
               "     --force             With --once: renew even if not due\n"
               "     --name=NAME         With --once: only this certificate\n"
               "     --no-bus            Do not connect to the system bus\n",
               program_invocation_short_name, AGENT_CONFIG_DIR_DEFAULT);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_CONFIG_DIR, ARG_STATE_DIR, ARG_ONCE, ARG_FORCE, ARG_NAME, ARG_NO_BUS };
        static const struct option options[] = {
                { "help",       no_argument,       NULL, 'h' },
                { "version",    no_argument,       NULL, ARG_VERSION },
                { "config-dir", required_argument, NULL, ARG_CONFIG_DIR },
                { "state-dir",  required_argument, NULL, ARG_STATE_DIR },
                { "once",       no_argument,       NULL, ARG_ONCE },
                { "force",      no_argument,       NULL, ARG_FORCE },
                { "name",       required_argument, NULL, ARG_NAME },
                { "no-bus",     no_argument,       NULL, ARG_NO_BUS },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("certfleet-agent %s\n", CERTFLEET_VERSION);
                        return 0;
                case ARG_CONFIG_DIR:
                        arg_config_dir = optarg;
                        break;
                case ARG_STATE_DIR:
                        arg_state_dir = optarg;
                        break;
                case ARG_ONCE:
                        arg_once = true;
                        break;
                case ARG_FORCE:
                        arg_force = true;
                        break;
                case ARG_NAME:
                        arg_name = optarg;
                        break;
                case ARG_NO_BUS:
                        arg_no_bus = true;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                log_error("This program takes no positional arguments.");
                return -EINVAL;
        }
        if ((arg_force || arg_name) && !arg_once) {
                log_error("--force and --name only make sense with --once.");
                return -EINVAL;
        }
        return 1;
}

static void on_idle(AgentManager *m, bool failed, void *userdata) {
        sd_event *e = userdata;

        if (arg_once)
                (void) sd_event_exit(e, failed ? EXIT_FAILURE : EXIT_SUCCESS);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        AgentManager *m = userdata;

        (void) sd_notify(0, "RELOADING=1");
        if (agent_manager_reload(m) < 0)
                log_error("Reloading failed, keeping the previous configuration.");
        (void) sd_notify(0, "READY=1");
        return 0;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) sd_notify(0, "STOPPING=1");
        return sd_event_exit(sd_event_source_get_event(s), EXIT_SUCCESS);
}

static int run_once(AgentManager *m, sd_event *e) {
        int r, queued = 0;

        if (arg_force || arg_name) {
                size_t n;
                AgentCert *const *certs = agent_manager_get_certs(m, &n);

                for (size_t i = 0; i < n; i++) {
                        const char *name = agent_cert_get_name(certs[i]);
                        if (arg_name && strcmp(name, arg_name) != 0)
                                continue;
                        r = agent_manager_renew(m, name, arg_force);
                        if (r < 0 && r != -EBUSY)
                                return log_error_errno(r, "Cannot renew %s: %m", name);
                        queued++;
                }
                if (arg_name && queued == 0)
                        return log_error_errno(-ENOENT, "No certificate named %s.", arg_name);
        } else
                queued = agent_manager_renew_due(m);

        if (queued == 0 && !agent_manager_busy(m)) {
                log_info("Nothing is due.");
                return EXIT_SUCCESS;
        }
        r = sd_event_loop(e);
        return r < 0 ? log_error_errno(r, "Event loop failed: %m") : r;
}

int main(int argc, char *argv[]) {
        _cleanup_(agent_manager_freep) AgentManager *m = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        AgentManagerOptions options = {};
        sigset_t mask;
        int r;

        log_set_ident("certfleet-agent");
        log_parse_environment();
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                log_error("Cannot initialise libcurl.");
                return EXIT_FAILURE;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&e);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate the event loop: %m"), EXIT_FAILURE;
        (void) sd_event_add_signal(e, NULL, SIGTERM, on_sigterm, NULL);
        (void) sd_event_add_signal(e, NULL, SIGINT, on_sigterm, NULL);

        options.config_dir = arg_config_dir;
        options.state_dir = arg_state_dir;
        options.no_timer = arg_once;
        r = agent_manager_new(e, &options, &m);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the agent: %m"), EXIT_FAILURE;
        agent_manager_set_idle_callback(m, on_idle, e);
        (void) sd_event_add_signal(e, NULL, SIGHUP, on_sighup, m);

        r = agent_manager_load(m);
        if (r < 0)
                return log_error_errno(r, "Cannot load the configuration: %m"), EXIT_FAILURE;

        if (arg_once)
                return run_once(m, e);

        if (!arg_no_bus) {
                r = agent_bus_attach(m, e, &bus);
                if (r < 0)
                        log_warning_errno(r, "Cannot attach to the system bus, running without D-Bus: %m");
        }

        (void) sd_notify(0, "READY=1");
        r = sd_event_loop(e);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), EXIT_FAILURE;
        curl_global_cleanup();
        return r;
}
