/* SPDX-License-Identifier: Apache-2.0 */
/* `certfleet-server request …`: the approval queue of RA profiles with ApprovalRequired=yes.
 * approve and reject only record the decision in the store; the protocol front end acts on it
 * when the client next asks (ACME: its next fetch of the order issues the certificate or makes
 * the order invalid), so no running daemon is needed and nothing is signed here. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "server/server-cli.h"
#include "server/store/store-approval.h"
#include "shared/errors.h"
#include "shared/log.h"
#include "shared/strv.h"
#include "shared/time-util.h"

static void request_usage(void) {
        fprintf(stderr,
                "Usage: certfleet-server request list [--all] [--json]\n"
                "       certfleet-server request show ID [--json]\n"
                "       certfleet-server request approve ID\n"
                "       certfleet-server request reject ID [--reason TEXT]\n"
                "Enrollment requests of RA profiles with ApprovalRequired=yes. list shows the pending\n"
                "ones (--all: every request). approve/reject only record the decision: the client gets\n"
                "its certificate (or the refusal) the next time it asks (ACME: its next order fetch).\n"
                "Every request command also takes --database URL and --state-dir DIR.\n");
}

enum {
        ARG_JSON = 0x100,
        ARG_ALL,
        ARG_REASON,
        ARG_DATABASE,
        ARG_STATE_DIR,
};

typedef struct RequestArgs {
        bool json;
        bool all;
        const char *reason;
        const char *database;
        const char *state_dir;
        int64_t id;                   /* 0: none given */
} RequestArgs;

static int parse_id(const char *s, int64_t *ret) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v <= 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* 1: go on, 0: done (help), negative: usage error (printed). */
static int request_parse_args(int argc, char *argv[], bool want_id, RequestArgs *a) {
        static const struct option options[] = {
                { "json",      no_argument,       NULL, ARG_JSON },
                { "all",       no_argument,       NULL, ARG_ALL },
                { "reason",    required_argument, NULL, ARG_REASON },
                { "database",  required_argument, NULL, ARG_DATABASE },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "help",      no_argument,       NULL, 'h' },
                {}
        };
        int c;

        *a = (RequestArgs) {};

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_JSON:
                        a->json = true;
                        break;
                case ARG_ALL:
                        a->all = true;
                        break;
                case ARG_REASON:
                        if (strlen(optarg) > APPROVAL_REASON_MAX) {
                                fprintf(stderr, "--reason is longer than %u characters.\n", APPROVAL_REASON_MAX);
                                return -EINVAL;
                        }
                        a->reason = optarg;
                        break;
                case ARG_DATABASE:
                        a->database = optarg;
                        break;
                case ARG_STATE_DIR:
                        a->state_dir = optarg;
                        break;
                case 'h':
                        request_usage();
                        return 0;
                default:
                        return -EINVAL;
                }

        if (want_id) {
                if (optind + 1 != argc) {
                        fprintf(stderr, "Expected exactly one request ID.\n");
                        return -EINVAL;
                }
                if (parse_id(argv[optind], &a->id) < 0) {
                        fprintf(stderr, "Invalid request ID '%s' (a positive number expected).\n", argv[optind]);
                        return -EINVAL;
                }
        } else if (optind != argc) {
                fprintf(stderr, "Unexpected argument '%s'.\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static json_object *json_string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static json_object *json_time(cf_time_t t) {
        char buf[CF_RFC3339_MAX];
        return t > 0 ? json_object_new_string(time_format_rfc3339(t, buf)) : NULL;
}

static int request_to_json(const ApprovalRequest *q, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL, *ids = NULL;

        o = json_object_new_object();
        ids = json_object_new_array();
        if (!o || !ids)
                return -ENOMEM;
        for (char **i = q->identifiers; i && *i; i++)
                if (json_object_array_add(ids, json_object_new_string(*i)) < 0)
                        return -ENOMEM;

        json_object_object_add(o, "id", json_object_new_int64(q->id));
        json_object_object_add(o, "state", json_object_new_string(approval_state_to_string(q->state)));
        json_object_object_add(o, "protocol", json_string_or_null(q->protocol));
        json_object_object_add(o, "protocolProfile", json_string_or_null(q->protocol_profile));
        json_object_object_add(o, "raProfile", json_string_or_null(q->ra_profile));
        json_object_object_add(o, "reference", json_string_or_null(q->reference));
        json_object_object_add(o, "accountId", json_object_new_int64(q->account_id));
        json_object_object_add(o, "identifiers", TAKE_PTR(ids));
        json_object_object_add(o, "subject", json_string_or_null(q->subject));
        json_object_object_add(o, "key", json_string_or_null(q->key));
        json_object_object_add(o, "created", json_time(q->created));
        json_object_object_add(o, "decided", json_time(q->decided));
        json_object_object_add(o, "reason", json_string_or_null(q->reason));
        json_object_object_add(o, "certSerial", json_string_or_null(q->cert_serial));

        *ret = TAKE_PTR(o);
        return 0;
}

/* "approved (issued)" once the front end used the approval. */
static const char *request_display_state(const ApprovalRequest *q) {
        if (q->state == APPROVAL_APPROVED && q->cert_serial)
                return "issued";
        return approval_state_to_string(q->state);
}

static int request_list(const RequestArgs *a, Store *store) {
        ApprovalRequest **l = NULL;
        int r;

        r = store_approval_list(store, !a->all, &l);
        if (r < 0)
                return log_error_errno(r, "Failed to list requests: %m");

        if (a->json) {
                _cleanup_(json_object_putp) json_object *arr = json_object_new_array();

                for (ApprovalRequest **i = l; arr && *i; i++) {
                        json_object *o;
                        if (request_to_json(*i, &o) < 0 || json_object_array_add(arr, o) < 0) {
                                approval_request_list_free(l);
                                return log_oom();
                        }
                }
                approval_request_list_free(l);
                if (!arr)
                        return log_oom();
                return server_cli_print_json(arr);
        }

        if (!l[0]) {
                printf(a->all ? "No requests.\n" : "No pending requests.\n");
                approval_request_list_free(l);
                return 0;
        }

        printf("%-6s  %-8s  %-20s  %-8s  %-12s  %-10s  %s\n",
               "ID", "STATE", "CREATED", "PROTOCOL", "RA PROFILE", "REFERENCE", "IDENTIFIERS");
        for (ApprovalRequest **i = l; *i; i++) {
                _cleanup_free_ char *ids = strv_join((*i)->identifiers, ",");
                char t[CF_RFC3339_MAX];

                printf("%-6" PRIi64 "  %-8s  %-20s  %-8s  %-12s  %-10s  %s\n", (*i)->id,
                       request_display_state(*i), time_format_rfc3339((*i)->created, t),
                       (*i)->protocol, (*i)->ra_profile, (*i)->reference, ids ?: "");
        }
        approval_request_list_free(l);
        return 0;
}

static int request_get(Store *store, int64_t id, ApprovalRequest **ret) {
        int r;

        r = store_approval_get(store, id, ret);
        if (r == -ENOENT)
                log_error("No request with ID %" PRIi64 ".", id);
        else if (r < 0)
                log_error_errno(r, "Failed to read request %" PRIi64 ": %m", id);
        return r;
}

static int request_show(const RequestArgs *a, Store *store) {
        _cleanup_(approval_request_freep) ApprovalRequest *q = NULL;
        char t[CF_RFC3339_MAX];
        int r;

        r = request_get(store, a->id, &q);
        if (r < 0)
                return r;

        if (a->json) {
                _cleanup_(json_object_putp) json_object *o = NULL;
                if (request_to_json(q, &o) < 0)
                        return log_oom();
                return server_cli_print_json(o);
        }

        printf("%-16s %" PRIi64 "\n", "ID:", q->id);
        printf("%-16s %s\n", "State:", request_display_state(q));
        printf("%-16s %s\n", "Subject:", q->subject && q->subject[0] ? q->subject : "(empty)");
        for (char **i = q->identifiers; i && *i; i++)
                printf("%-16s %s\n", i == q->identifiers ? "Identifiers:" : "", *i);
        printf("%-16s %s\n", "Key:", q->key ?: "-");
        printf("%-16s %s\n", "Protocol:", q->protocol);
        printf("%-16s %s\n", "Profile:", q->protocol_profile ?: "-");
        printf("%-16s %s\n", "RA profile:", q->ra_profile);
        printf("%-16s %s\n", "Reference:", q->reference);
        if (q->account_id > 0)
                printf("%-16s %" PRIi64 "\n", "Account:", q->account_id);
        printf("%-16s %s\n", "Created:", time_format_rfc3339(q->created, t));
        if (q->decided > 0)
                printf("%-16s %s\n", "Decided:", time_format_rfc3339(q->decided, t));
        if (q->reason)
                printf("%-16s %s\n", "Reason:", q->reason);
        if (q->cert_serial)
                printf("%-16s %s\n", "Certificate:", q->cert_serial);
        return 0;
}

static int request_decide(const RequestArgs *a, Store *store, ApprovalState decision) {
        _cleanup_(approval_request_freep) ApprovalRequest *q = NULL;
        int r;

        r = store_approval_decide(store, a->id, decision, a->reason, time_now());
        if (r == -ENOENT) {
                log_error("No request with ID %" PRIi64 ".", a->id);
                return r;
        }
        if (r == -EALREADY) {
                if (request_get(store, a->id, &q) >= 0)
                        log_error("Request %" PRIi64 " is already %s; a decision is final.",
                                  a->id, approval_state_to_string(q->state));
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to record the decision on request %" PRIi64 ": %m", a->id);

        if (request_get(store, a->id, &q) < 0)
                return 0;   /* recorded; only the message below is lost */
        if (decision == APPROVAL_APPROVED)
                printf("Request %" PRIi64 " approved. The certificate is issued when the client next asks "
                       "(%s: its next fetch of order %s); every policy check runs again then.\n",
                       q->id, q->protocol, q->reference);
        else
                printf("Request %" PRIi64 " rejected%s%s. The client sees the refusal when it next asks "
                       "(%s: order %s becomes invalid).\n",
                       q->id, q->reason ? ": " : "", q->reason ?: "", q->protocol, q->reference);
        return 0;
}

int server_cli_request(int argc, char *argv[], const char *config_path) {
        _cleanup_(store_closep) Store *store = NULL;
        const char *verb;
        ApprovalState decision = _APPROVAL_STATE_INVALID;
        RequestArgs a;
        int r;

        if (argc > 0 && strcmp(argv[0], "request") == 0) {
                argc--;
                argv++;
        }
        if (argc < 1) {
                request_usage();
                return SERVER_CLI_EXIT_USAGE;
        }
        verb = argv[0];

        if (strcmp(verb, "approve") == 0)
                decision = APPROVAL_APPROVED;
        else if (strcmp(verb, "reject") == 0)
                decision = APPROVAL_REJECTED;
        else if (strcmp(verb, "list") != 0 && strcmp(verb, "show") != 0) {
                fprintf(stderr, "Unknown command 'request %s'.\n", verb);
                request_usage();
                return SERVER_CLI_EXIT_USAGE;
        }

        r = request_parse_args(argc, argv, strcmp(verb, "list") != 0, &a);
        if (r < 0) {
                request_usage();
                return SERVER_CLI_EXIT_USAGE;
        }
        if (r == 0)
                return SERVER_CLI_EXIT_OK;
        if (a.reason && decision != APPROVAL_REJECTED) {
                fprintf(stderr, "--reason only goes with 'request reject'.\n");
                return SERVER_CLI_EXIT_USAGE;
        }

        r = server_cli_open_store(config_path, a.state_dir, a.database, &store);
        if (r < 0)
                return SERVER_CLI_EXIT_FAILURE;

        if (strcmp(verb, "list") == 0)
                r = request_list(&a, store);
        else if (strcmp(verb, "show") == 0)
                r = request_show(&a, store);
        else
                r = request_decide(&a, store, decision);

        if (r >= 0)
                return SERVER_CLI_EXIT_OK;
        return r == -ENOENT ? SERVER_CLI_EXIT_NOT_FOUND : SERVER_CLI_EXIT_FAILURE;
}
