/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "agent/agent-state.h"
#include "shared/cert.h"
#include "shared/fileio.h"
#include "shared/key.h"
#include "shared/pem.h"
#include "tests/unit/test-util.h"

/* A self-signed certificate with the given serial for key, as PEM. */
static char *make_cert(EVP_PKEY *key, long serial) {
        X509 *x = X509_new();
        char *pem = NULL;

        assert_non_null(x);
        assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), serial));
        assert_true(X509_gmtime_adj(X509_getm_notBefore(x), 0));
        assert_true(X509_gmtime_adj(X509_getm_notAfter(x), 90 * 24 * 3600));
        assert_true(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                               (const unsigned char *) "state.test", -1, -1, 0));
        assert_true(X509_set_issuer_name(x, X509_get_subject_name(x)));
        assert_true(X509_set_pubkey(x, key));
        assert_true(X509_sign(x, key, EVP_sha256()) > 0);
        assert_int_equal(pem_write_cert(x, &pem), 0);
        X509_free(x);
        return pem;
}

static char *key_pem(EVP_PKEY *key) {
        char *pem = NULL;
        assert_int_equal(pem_write_private_key(key, &pem), 0);
        return pem;
}

static void test_load_live_without_commit_is_enoent(void **state) {
        AgentLive live = {};
        assert_int_equal(agent_state_load_live(test_tmpdir, "nothing", &live), -ENOENT);
}

static void test_commit_then_load_round_trips(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *cert = NULL, *kpem = NULL, *link = NULL, *keypath = NULL;
        char target[PATH_MAX] = "";
        AgentLive live = {};
        struct stat st;

        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
        cert = make_cert(key, 0x1234);
        kpem = key_pem(key);
        assert_int_equal(agent_state_commit(test_tmpdir, "web", cert, "CHAIN\n", kpem), 0);

        assert_int_equal(agent_state_load_live(test_tmpdir, "web", &live), 0);
        assert_string_equal(live.cert_pem, cert);
        assert_string_equal(live.chain_pem, "CHAIN\n");
        assert_string_equal(live.key_pem, kpem);
        assert_true(key_public_equal(live.key, key));
        agent_live_done(&live);

        assert_true(asprintf(&link, "%s/web/live", test_tmpdir) > 0);
        assert_true(readlink(link, target, sizeof target - 1) > 0);
        assert_string_equal(target, "gen-1234");
        assert_true(asprintf(&keypath, "%s/web/live/key.pem", test_tmpdir) > 0);
        assert_int_equal(stat(keypath, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
}

static bool gen_exists(const char *name, const char *gen) {
        _cleanup_free_ char *p = NULL;
        assert_true(asprintf(&p, "%s/%s/%s", test_tmpdir, name, gen) > 0);
        return access(p, F_OK) == 0;
}

static void test_commit_keeps_previous_generation_only(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k1 = NULL, *k2 = NULL, *k3 = NULL;
        _cleanup_free_ char *c1 = NULL, *c2 = NULL, *c3 = NULL, *p1 = NULL, *p2 = NULL, *p3 = NULL;
        AgentLive live = {};

        assert_int_equal(key_generate(KEY_EC_P256, &k1), 0);
        assert_int_equal(key_generate(KEY_EC_P256, &k2), 0);
        assert_int_equal(key_generate(KEY_EC_P256, &k3), 0);
        c1 = make_cert(k1, 0xa1), c2 = make_cert(k2, 0xa2), c3 = make_cert(k3, 0xa3);
        p1 = key_pem(k1), p2 = key_pem(k2), p3 = key_pem(k3);

        assert_int_equal(agent_state_commit(test_tmpdir, "gc", c1, "", p1), 0);
        assert_int_equal(agent_state_commit(test_tmpdir, "gc", c2, "", p2), 0);
        assert_true(gen_exists("gc", "gen-a1"));
        assert_true(gen_exists("gc", "gen-a2"));
        assert_int_equal(agent_state_commit(test_tmpdir, "gc", c3, "", p3), 0);
        assert_false(gen_exists("gc", "gen-a1"));
        assert_true(gen_exists("gc", "gen-a2"));
        assert_true(gen_exists("gc", "gen-a3"));

        assert_int_equal(agent_state_load_live(test_tmpdir, "gc", &live), 0);
        assert_true(key_public_equal(live.key, k3));
        agent_live_done(&live);
}

/* kill -9 at arbitrary points of a commit: whatever moment the process dies, the live generation
 * is a complete certificate with its own key, either the previous one or the new one. */
#define CRASH_ROUNDS 40
static void test_commit_killed_at_any_moment_leaves_a_valid_live_pair(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k0 = NULL;
        _cleanup_free_ char *c0 = NULL, *p0 = NULL;
        EVP_PKEY *keys[CRASH_ROUNDS] = {};
        char *certs[CRASH_ROUNDS] = {}, *pems[CRASH_ROUNDS] = {};
        long previous = 0x500;
        unsigned killed_early = 0, completed = 0;

        assert_int_equal(key_generate(KEY_EC_P256, &k0), 0);
        c0 = make_cert(k0, previous);
        p0 = key_pem(k0);
        assert_int_equal(agent_state_commit(test_tmpdir, "crash", c0, "", p0), 0);
        for (int i = 0; i < CRASH_ROUNDS; i++) {
                assert_int_equal(key_generate(KEY_EC_P256, &keys[i]), 0);
                certs[i] = make_cert(keys[i], 0x501 + i);
                pems[i] = key_pem(keys[i]);
        }
        srand((unsigned) time(NULL));

        for (int i = 0; i < CRASH_ROUNDS; i++) {
                _cleanup_free_ char *serial = NULL;
                AgentLive live = {};
                long got;
                int status;
                pid_t pid;

                pid = fork();
                assert_true(pid >= 0);
                if (pid == 0)
                        _exit(agent_state_commit(test_tmpdir, "crash", certs[i], "", pems[i]) < 0 ? 1 : 0);
                /* Spread the kill over the whole commit (several fsyncs, a few milliseconds). */
                (void) usleep((useconds_t) (rand() % 8000));
                (void) kill(pid, SIGKILL);
                assert_int_equal(waitpid(pid, &status, 0), pid);
                if (WIFSIGNALED(status))
                        killed_early++;
                else {
                        assert_int_equal(WEXITSTATUS(status), 0);
                        completed++;
                }

                assert_int_equal(agent_state_load_live(test_tmpdir, "crash", &live), 0);
                assert_int_equal(cert_serial_hex(live.cert, &serial), 0);
                got = strtol(serial, NULL, 16);
                assert_true(got == previous || got == 0x501 + i);
                if (!WIFSIGNALED(status))
                        assert_int_equal(got, 0x501 + i);
                assert_true(key_public_equal(live.key, got == previous ? (i == 0 ? k0 : keys[i - 1]) : keys[i]));
                agent_live_done(&live);
                previous = got;
                if (got != 0x501 + i) {
                        /* The next round replaces the survivor; keep the key bookkeeping simple by
                         * completing this round's commit now, as the restarted agent would. */
                        assert_int_equal(agent_state_commit(test_tmpdir, "crash", certs[i], "", pems[i]), 0);
                        previous = 0x501 + i;
                }
        }
        /* Both outcomes happened, so the kills did land inside commits. */
        print_message("%u commits killed, %u completed\n", killed_early, completed);
        assert_true(killed_early > 0);
        for (int i = 0; i < CRASH_ROUNDS; i++) {
                EVP_PKEY_free(keys[i]);
                free(certs[i]);
                free(pems[i]);
        }
}

static void test_load_live_rejects_mismatched_key(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k1 = NULL, *k2 = NULL;
        _cleanup_free_ char *c1 = NULL, *p1 = NULL, *p2 = NULL, *keypath = NULL;
        AgentLive live = {};

        assert_int_equal(key_generate(KEY_EC_P256, &k1), 0);
        assert_int_equal(key_generate(KEY_EC_P256, &k2), 0);
        c1 = make_cert(k1, 0xb1);
        p1 = key_pem(k1);
        p2 = key_pem(k2);
        assert_int_equal(agent_state_commit(test_tmpdir, "mismatch", c1, "", p1), 0);
        /* Someone replaced the key behind our back. */
        assert_true(asprintf(&keypath, "%s/mismatch/live/key.pem", test_tmpdir) > 0);
        assert_int_equal(write_file_atomic(keypath, p2, strlen(p2), 0600, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(agent_state_load_live(test_tmpdir, "mismatch", &live), -EBADMSG);
}

static void test_schedule_round_trips(void **state) {
        AgentSchedule s, t;

        agent_schedule_init(&s);
        s.serial = strdup("abcd");
        s.ari = true;
        s.window_start = 1700000000;
        s.window_end = 1700086400;
        s.explanation_url = strdup("https://ca.test/why");
        s.chosen = 1700040000;
        s.next_renewal = 1700040000;
        s.next_ari_poll = 1700021600;
        s.last_attempt = 1699990000;
        s.last_success = 1699980000;
        s.last_error = strdup("newOrder: the server answered 403 urn:ietf:params:acme:error:unauthorized");
        s.failures = 3;
        s.backoff_until = 1699990300;
        s.renew_requested = true;
        s.force = true;
        s.deployed_serial = strdup("abcc");

        assert_int_equal(agent_state_save_schedule(test_tmpdir, "sched", &s), 0);
        assert_int_equal(agent_state_load_schedule(test_tmpdir, "sched", &t), 0);
        assert_string_equal(t.serial, s.serial);
        assert_true(t.ari);
        assert_int_equal(t.window_start, s.window_start);
        assert_int_equal(t.window_end, s.window_end);
        assert_string_equal(t.explanation_url, s.explanation_url);
        assert_int_equal(t.chosen, s.chosen);
        assert_int_equal(t.next_renewal, s.next_renewal);
        assert_int_equal(t.next_ari_poll, s.next_ari_poll);
        assert_int_equal(t.last_attempt, s.last_attempt);
        assert_int_equal(t.last_success, s.last_success);
        assert_string_equal(t.last_error, s.last_error);
        assert_int_equal(t.failures, 3);
        assert_int_equal(t.backoff_until, s.backoff_until);
        assert_true(t.renew_requested);
        assert_true(t.force);
        assert_string_equal(t.deployed_serial, "abcc");
        agent_schedule_done(&s);
        agent_schedule_done(&t);
}

static void test_schedule_missing_is_empty_and_corrupt_is_error(void **state) {
        _cleanup_free_ char *path = NULL;
        AgentSchedule s;

        assert_int_equal(agent_state_load_schedule(test_tmpdir, "none", &s), 0);
        assert_null(s.serial);
        assert_int_equal(s.next_renewal, CF_TIME_INVALID);
        assert_false(s.renew_requested);
        agent_schedule_done(&s);

        assert_int_equal(agent_state_ensure_dir(test_tmpdir, "corrupt"), 0);
        assert_true(asprintf(&path, "%s/corrupt/schedule.json", test_tmpdir) > 0);
        assert_int_equal(write_file_atomic(path, "{\"serial\":", 10, 0644, (uid_t) -1, (gid_t) -1), 0);
        assert_true(agent_state_load_schedule(test_tmpdir, "corrupt", &s) < 0);
}

static void test_account_is_bound_to_its_directory(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *loaded = NULL, *other = NULL;
        _cleanup_free_ char *url = NULL, *url2 = NULL;
        const char *dir = "https://ca.test/directory";

        assert_int_equal(agent_state_load_account(test_tmpdir, dir, &loaded, &url), -ENOENT);
        assert_int_equal(key_generate(KEY_EC_P256, &key), 0);
        assert_int_equal(agent_state_save_account_key(test_tmpdir, dir, key), 0);
        assert_int_equal(agent_state_load_account(test_tmpdir, dir, &loaded, &url), 0);
        assert_true(key_public_equal(loaded, key));
        assert_null(url);   /* key saved, registration not finished */

        assert_int_equal(agent_state_save_account_url(test_tmpdir, dir, "https://ca.test/acct/7"), 0);
        EVP_PKEY_free(loaded);
        loaded = NULL;
        assert_int_equal(agent_state_load_account(test_tmpdir, dir, &loaded, &url), 0);
        assert_string_equal(url, "https://ca.test/acct/7");

        /* Another directory has its own account. */
        assert_int_equal(agent_state_load_account(test_tmpdir, "https://other.test/dir", &other, &url2), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_load_live_without_commit_is_enoent),
                cmocka_unit_test(test_commit_then_load_round_trips),
                cmocka_unit_test(test_commit_keeps_previous_generation_only),
                cmocka_unit_test(test_load_live_rejects_mismatched_key),
                cmocka_unit_test(test_commit_killed_at_any_moment_leaves_a_valid_live_pair),
                cmocka_unit_test(test_schedule_round_trips),
                cmocka_unit_test(test_schedule_missing_is_empty_and_corrupt_is_error),
                cmocka_unit_test(test_account_is_bound_to_its_directory),
        };
        return cmocka_run_group_tests(tests, test_tmpdir_setup, test_tmpdir_teardown);
}
