/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/agent-config.h"
#include "agent/agent-job.h"
#include "agent/agent-messages.h"
#include "shared/fileio.h"
#include "shared/log.h"
#include "shared/strv.h"
#include "tests/unit/test-util.h"

/* The journal MESSAGE_IDs of agent-messages.h, and the events the agent sends to the journal.
 *
 * The header is read as text (CERTFLEET_SOURCE_ROOT) so that an ID added there without being
 * listed here, or a call site naming something that is not an ID, fails the test. The journal
 * fields are checked for real: in a private mount namespace a datagram socket takes the place of
 * journald's /run/systemd/journal/socket, and the native protocol records the agent sends there
 * are parsed. */

#define MESSAGES_MAX 64
#define JOURNAL_RECORDS_MAX 32
#define JOURNAL_FIELDS_MAX 32

static const struct {
        const char *name;
        const char *id;
} compiled[] = {
#define M(x) { #x, x }
        M(AGENT_MESSAGE_RENEWAL_STARTED),
        M(AGENT_MESSAGE_ISSUED),
        M(AGENT_MESSAGE_DEPLOYED),
        M(AGENT_MESSAGE_FAILED),
        M(AGENT_MESSAGE_SCHEDULE),
        M(AGENT_MESSAGE_STATE_BROKEN),
        M(AGENT_MESSAGE_CONFIG),
        M(AGENT_MESSAGE_EXPIRED),
#undef M
};

typedef struct Message {
        char name[128];
        char id[64];
} Message;

static char *source_path(const char *rel) {
        const char *root = getenv("CERTFLEET_SOURCE_ROOT");
        char *p = NULL;

        assert_non_null(root);
        assert_true(asprintf(&p, "%s/%s", root, rel) > 0);
        return p;
}

static char *read_source(const char *rel) {
        _cleanup_free_ char *path = source_path(rel);
        char *text = NULL;
        size_t size = 0;

        assert_int_equal(read_full_file(path, 4 * 1024 * 1024, &text, &size), 0);
        return text;
}

/* Every `#define AGENT_MESSAGE_X "…"` of the header. */
static size_t parse_header(Message *out, size_t max) {
        _cleanup_free_ char *text = read_source("agent/agent-messages.h");
        size_t n = 0;

        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                char name[128], id[64];

                if (strncmp(line, "#define AGENT_MESSAGE_", 22) != 0)
                        continue;
                assert_int_equal(sscanf(line, "#define %127s \"%63[^\"]\"", name, id), 2);
                assert_true(n < max);
                snprintf(out[n].name, sizeof out[n].name, "%s", name);
                snprintf(out[n].id, sizeof out[n].id, "%s", id);
                n++;
        }
        return n;
}

static void test_message_ids_are_unique_128bit_hex(void **state) {
        Message m[MESSAGES_MAX];
        size_t n = parse_header(m, MESSAGES_MAX);

        assert_int_equal(n, ELEMENTSOF(compiled));
        for (size_t i = 0; i < n; i++) {
                bool found = false;

                /* journalctl MESSAGE_ID= matches the 128-bit ID as 32 lowercase hex digits. */
                assert_int_equal(strlen(m[i].id), 32);
                for (const char *p = m[i].id; *p; p++)
                        assert_true(isdigit((unsigned char) *p) || (*p >= 'a' && *p <= 'f'));
                for (size_t j = 0; j < i; j++) {
                        assert_string_not_equal(m[i].id, m[j].id);
                        assert_string_not_equal(m[i].name, m[j].name);
                }
                for (size_t k = 0; k < ELEMENTSOF(compiled); k++)
                        if (strcmp(compiled[k].name, m[i].name) == 0) {
                                assert_string_equal(compiled[k].id, m[i].id);
                                found = true;
                        }
                assert_true(found);
        }
}

/* Splits the arguments of the call whose "(" is at *p; returns the index-th argument, trimmed. */
static char *call_argument(const char *open, unsigned index) {
        unsigned depth = 0, arg = 0;
        const char *start = open + 1;

        for (const char *p = open + 1; *p; p++) {
                if (*p == '"') {
                        for (p++; *p && *p != '"'; p++)
                                if (*p == '\\' && p[1])
                                        p++;
                        continue;
                }
                if (*p == '(' || *p == '[' || *p == '{')
                        depth++;
                else if ((*p == ')' || *p == ']' || *p == '}') && depth > 0)
                        depth--;
                else if ((*p == ',' && depth == 0) || (*p == ')' && depth == 0)) {
                        if (arg == index) {
                                while (isspace((unsigned char) *start))
                                        start++;
                                size_t len = (size_t) (p - start);
                                while (len > 0 && isspace((unsigned char) start[len - 1]))
                                        len--;
                                return strndup(start, len);
                        }
                        if (*p == ')')
                                return NULL;
                        arg++;
                        start = p + 1;
                }
        }
        return NULL;
}

static void test_every_log_event_call_names_an_agent_message_id(void **state) {
        _cleanup_free_ char *dir_path = source_path("agent");
        Message m[MESSAGES_MAX];
        size_t n = parse_header(m, MESSAGES_MAX), calls = 0;
        struct dirent *de;
        DIR *d;

        d = opendir(dir_path);
        assert_non_null(d);
        while ((de = readdir(d))) {
                _cleanup_free_ char *rel = NULL, *text = NULL;
                size_t len = strlen(de->d_name);

                if (len < 3 || strcmp(de->d_name + len - 2, ".c") != 0)
                        continue;
                assert_true(asprintf(&rel, "agent/%s", de->d_name) > 0);
                text = read_source(rel);
                for (const char *p = text; (p = strstr(p, "log_event")); p++) {
                        _cleanup_free_ char *id = NULL;
                        const char *open;
                        unsigned index;
                        bool known = false;

                        if (p > text && (isalnum((unsigned char) p[-1]) || p[-1] == '_'))
                                continue;
                        if (strncmp(p, "log_event(", 10) == 0) {
                                open = p + 9;
                                index = 1;
                        } else if (strncmp(p, "log_event_errno(", 16) == 0) {
                                open = p + 15;
                                index = 2;
                        } else
                                continue;
                        id = call_argument(open, index);
                        assert_non_null(id);
                        for (size_t i = 0; i < n; i++)
                                if (strcmp(m[i].name, id) == 0)
                                        known = true;
                        if (!known)
                                fail_msg("%s: log_event call with MESSAGE_ID '%s', not one of agent-messages.h",
                                         de->d_name, id);
                        calls++;
                }
        }
        closedir(d);
        /* The scanner found the agent's call sites (job, manager, cert): it is not vacuous. */
        assert_true(calls >= 15);
}

typedef struct JournalRecord {
        size_t n;
        char *fields[JOURNAL_FIELDS_MAX];   /* "KEY=VALUE" */
} JournalRecord;

static const char *record_get(const JournalRecord *r, const char *key) {
        size_t k = strlen(key);

        for (size_t i = 0; i < r->n; i++)
                if (strncmp(r->fields[i], key, k) == 0 && r->fields[i][k] == '=')
                        return r->fields[i] + k + 1;
        return NULL;
}

/* The journal's native protocol: "KEY=VALUE\n", or "KEY\n" + 64-bit little-endian size + data +
 * "\n" for values with a newline. */
static void parse_record(const char *buf, size_t size, JournalRecord *ret) {
        const char *p = buf, *end = buf + size;

        *ret = (JournalRecord) {};
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                const char *eq = memchr(p, '=', (size_t) (end - p));
                assert_non_null(nl);
                assert_true(ret->n < JOURNAL_FIELDS_MAX);
                if (eq && eq < nl) {
                        ret->fields[ret->n++] = strndup(p, (size_t) (nl - p));
                        p = nl + 1;
                } else {
                        uint64_t len = 0;
                        char *f;
                        size_t klen = (size_t) (nl - p);

                        assert_true((size_t) (end - nl - 1) >= 8);
                        for (int i = 7; i >= 0; i--)
                                len = len << 8 | (uint8_t) nl[1 + i];
                        assert_true(len <= (uint64_t) (end - nl - 9));
                        f = malloc(klen + 1 + len + 1);
                        assert_non_null(f);
                        memcpy(f, p, klen);
                        f[klen] = '=';
                        memcpy(f + klen + 1, nl + 9, len);
                        f[klen + 1 + len] = 0;
                        ret->fields[ret->n++] = f;
                        p = nl + 9 + len + 1;
                }
        }
}

static void record_done(JournalRecord *r) {
        for (size_t i = 0; i < r->n; i++)
                free(r->fields[i]);
        r->n = 0;
}

/* A stand-in for journald, visible to this process only. Returns the socket, or -1 to skip. */
static int fake_journal(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = 0, .tv_usec = 200 * 1000 };
        int fd;

        if (unshare(CLONE_NEWNS) < 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0)
                return -1;
        assert_int_equal(mkdir_p("/run/systemd/journal", 0755), 0);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        snprintf(sa.sun_path, sizeof sa.sun_path, "/run/systemd/journal/socket");
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
        return fd;
}

static size_t receive_records(int fd, JournalRecord *out, size_t max) {
        static char buf[256 * 1024];
        size_t n = 0;
        ssize_t k;

        while (n < max && (k = recv(fd, buf, sizeof buf, 0)) > 0)
                parse_record(buf, (size_t) k, &out[n++]);
        return n;
}

static const JournalRecord *find_record(const JournalRecord *r, size_t n, const char *message_id) {
        for (size_t i = 0; i < n; i++) {
                const char *id = record_get(&r[i], "MESSAGE_ID");
                if (id && strcmp(id, message_id) == 0)
                        return &r[i];
        }
        return NULL;
}

/* A failing enrollment (the ACME server refuses connections) logs RENEWAL_STARTED and FAILED,
 * both as journal records with MESSAGE_ID, CERTIFICATE=NAME and PRIORITY. */
static void test_job_events_reach_the_journal_with_message_id_and_certificate(void **state) {
        _cleanup_(cert_config_unrefp) CertConfig *config = NULL;
        _cleanup_(agent_job_freep) AgentJob *job = NULL;
        _cleanup_free_ char *conf = NULL, *text = NULL, *state_dir = NULL, *error = NULL;
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t slen = sizeof sin;
        JournalRecord records[JOURNAL_RECORDS_MAX];
        const JournalRecord *started, *failed;
        AgentSchedule schedule;
        size_t n;
        int fd, closed_port;

        fd = fake_journal();
        if (fd < 0) {
                print_message("no mount namespace here (%s), skipping\n", strerror(errno));
                skip();
        }

        /* A bound socket that never listens: connections to it are refused at once. */
        closed_port = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(closed_port >= 0);
        assert_int_equal(bind(closed_port, (struct sockaddr *) &sin, sizeof sin), 0);
        assert_int_equal(getsockname(closed_port, (struct sockaddr *) &sin, &slen), 0);

        assert_true(asprintf(&conf, "%s/web-1.conf", test_tmpdir) > 0);
        assert_true(asprintf(&text, "[Certificate]\nServer=http://127.0.0.1:%u/dir\nNames=web.example.test\n"
                             "[ACME]\nChallenge=dns-01\nDNSHook=/bin/false\n", ntohs(sin.sin_port)) > 0);
        assert_int_equal(write_file_atomic(conf, text, strlen(text), 0644, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(cert_config_load(conf, NULL, &config, &error), 0);
        assert_true(asprintf(&state_dir, "%s/state", test_tmpdir) > 0);
        agent_schedule_init(&schedule);
        assert_int_equal(agent_job_new(config, state_dir, &schedule, &job), 0);

        log_set_target(LOG_TARGET_JOURNAL);
        log_set_ident("test-agent");
        agent_job_run(job);
        log_set_target(LOG_TARGET_STDERR);
        assert_true(job->result < 0);
        assert_true(job->attempted);

        n = receive_records(fd, records, JOURNAL_RECORDS_MAX);
        started = find_record(records, n, AGENT_MESSAGE_RENEWAL_STARTED);
        failed = find_record(records, n, AGENT_MESSAGE_FAILED);
        assert_non_null(started);
        assert_non_null(failed);
        assert_string_equal(record_get(started, "CERTIFICATE"), "web-1");
        assert_string_equal(record_get(started, "PRIORITY"), "6");
        assert_string_equal(record_get(started, "MESSAGE"), "Enrolling certificate for web.example.test");
        assert_string_equal(record_get(started, "SYSLOG_IDENTIFIER"), "test-agent");
        assert_string_equal(record_get(failed, "CERTIFICATE"), "web-1");
        assert_string_equal(record_get(failed, "PRIORITY"), "3");
        assert_non_null(strstr(record_get(failed, "MESSAGE"), "cannot reach"));
        assert_non_null(strstr(record_get(failed, "MESSAGE"), "attempt 1"));
        assert_non_null(record_get(failed, "CODE_FILE"));
        /* Every record the job sent is an event of agent-messages.h for this certificate. */
        for (size_t i = 0; i < n; i++) {
                assert_non_null(record_get(&records[i], "MESSAGE_ID"));
                assert_string_equal(record_get(&records[i], "CERTIFICATE"), "web-1");
                record_done(&records[i]);
        }
        close(closed_port);
        close(fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_message_ids_are_unique_128bit_hex),
                cmocka_unit_test(test_every_log_event_call_names_an_agent_message_id),
                /* Last: it moves the process into its own mount namespace. */
                cmocka_unit_test(test_job_events_reach_the_journal_with_message_id_and_certificate),
        };
        return cmocka_run_group_tests(tests, test_tmpdir_setup, test_tmpdir_teardown);
}
