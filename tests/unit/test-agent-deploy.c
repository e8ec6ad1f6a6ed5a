/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "agent/agent-config.h"
#include "agent/agent-deploy.h"
#include "shared/fileio.h"
#include "shared/strv.h"
#include "tests/unit/test-util.h"

#define CERT "-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n"
#define CHAIN "-----BEGIN CERTIFICATE-----\nY2hhaW4=\n-----END CERTIFICATE-----\n"
#define KEY "-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n"

static int setup(void **state) {
        umask(077);   /* modes must be explicit, not inherited from a friendly umask */
        return test_tmpdir_setup(state);
}

static char *path_in(const char *sub, const char *file) {
        char *p;
        assert_true(asprintf(&p, "%s/%s/%s", test_tmpdir, sub, file) > 0);
        return p;
}

static CertConfig *new_config(const char *sub) {
        CertConfig *c = calloc(1, sizeof *c);
        char *dir;

        assert_non_null(c);
        c->n_ref = 1;
        c->name = strdup("web");
        c->mode = 0600;
        c->deploy_certificate = path_in(sub, "cert.pem");
        c->deploy_chain = path_in(sub, "chain.pem");
        c->deploy_fullchain = path_in(sub, "fullchain.pem");
        c->deploy_key = path_in(sub, "key.pem");
        assert_true(asprintf(&dir, "%s/%s", test_tmpdir, sub) > 0);
        assert_int_equal(mkdir_p(dir, 0755), 0);
        free(dir);
        return c;
}

static char *slurp(const char *path) {
        char *s = NULL;
        size_t n;
        assert_int_equal(read_full_file(path, 1 << 20, &s, &n), 0);
        return s;
}

static mode_t mode_of(const char *path) {
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        return st.st_mode & 07777;
}

static size_t count_staged(const char *sub) {
        char *dir;
        DIR *d;
        struct dirent *de;
        size_t n = 0;

        assert_true(asprintf(&dir, "%s/%s", test_tmpdir, sub) > 0);
        d = opendir(dir);
        assert_non_null(d);
        while ((de = readdir(d)))
                if (strstr(de->d_name, AGENT_DEPLOY_STAGING_SUFFIX) || strstr(de->d_name, ".tmp"))
                        n++;
        closedir(d);
        free(dir);
        return n;
}

static const AgentDeployInput input = { CERT, CHAIN, KEY, "/state/web/live" };

static void test_deploy_writes_files_with_modes(void **state) {
        _cleanup_(cert_config_unrefp) CertConfig *c = new_config("modes");
        _cleanup_free_ char *cert = NULL, *chain = NULL, *full = NULL, *key = NULL, *err = NULL;

        assert_int_equal(agent_deploy_files(c, &input, &err), 0);
        cert = slurp(c->deploy_certificate);
        chain = slurp(c->deploy_chain);
        full = slurp(c->deploy_fullchain);
        key = slurp(c->deploy_key);
        assert_string_equal(cert, CERT);
        assert_string_equal(chain, CHAIN);
        assert_string_equal(full, CERT CHAIN);
        assert_string_equal(key, KEY);
        assert_int_equal(mode_of(c->deploy_certificate), 0644);
        assert_int_equal(mode_of(c->deploy_chain), 0644);
        assert_int_equal(mode_of(c->deploy_fullchain), 0644);
        assert_int_equal(mode_of(c->deploy_key), 0600);
        assert_int_equal(count_staged("modes"), 0);
}

static void test_deploy_mode_applies_to_key(void **state) {
        _cleanup_(cert_config_unrefp) CertConfig *c = new_config("keymode");
        _cleanup_free_ char *err = NULL;

        c->mode = 0640;
        assert_int_equal(agent_deploy_files(c, &input, &err), 0);
        assert_int_equal(mode_of(c->deploy_key), 0640);
        assert_int_equal(mode_of(c->deploy_certificate), 0644);
}

static void test_deploy_replaces_symlinks_never_writes_through_them(void **state) {
        _cleanup_(cert_config_unrefp) CertConfig *c = new_config("links");
        _cleanup_free_ char *err = NULL, *victim = NULL, *victim2 = NULL, *staged = NULL, *text = NULL;
        struct stat st;

        /* The agent runs as root: a symlink at a target (or at the predictable staging name),
         * planted by whoever can write the directory, must be replaced, never followed. */
        victim = path_in("links", "../victim-key");
        victim2 = path_in("links", "../victim-staged");
        test_write_text("victim-key", "victim\n");
        test_write_text("victim-staged", "victim2\n");
        assert_int_equal(symlink(victim, c->deploy_key), 0);
        assert_true(asprintf(&staged, "%s%s", c->deploy_certificate, AGENT_DEPLOY_STAGING_SUFFIX) > 0);
        assert_int_equal(symlink(victim2, staged), 0);

        assert_int_equal(agent_deploy_files(c, &input, &err), 0);

        assert_int_equal(lstat(c->deploy_key, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        text = slurp(c->deploy_key);
        assert_string_equal(text, KEY);
        free(text);
        assert_int_equal(lstat(c->deploy_certificate, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        text = slurp(victim);
        assert_string_equal(text, "victim\n");
        free(text);
        text = slurp(victim2);
        assert_string_equal(text, "victim2\n");
        assert_int_equal(lstat(staged, &st), -1);
}

static void test_deploy_refuses_directory_swapped_for_foreign_link(void **state) {
        _cleanup_(cert_config_unrefp) CertConfig *c = NULL;
        _cleanup_free_ char *err = NULL, *dir = NULL, *victim = NULL, *victim_key = NULL;

        if (geteuid() != 0)
                skip();   /* lchown to another user needs root (the agent runs as root) */

        /* The service user may write its own directory and replaces "certs" with a link to
         * somewhere only root may write. Following it would make root write there. */
        c = new_config("swap/certs");
        assert_true(asprintf(&dir, "%s/swap/certs", test_tmpdir) > 0);
        assert_true(asprintf(&victim, "%s/swap-victim", test_tmpdir) > 0);
        assert_int_equal(mkdir_p(victim, 0700), 0);
        assert_int_equal(rmdir(dir), 0);
        assert_int_equal(symlink(victim, dir), 0);
        assert_int_equal(lchown(dir, 65534, 65534), 0);

        assert_int_equal(agent_deploy_files(c, &input, &err), -EPERM);
        assert_non_null(strstr(err, "symbolic link"));
        assert_int_equal(count_staged("swap-victim"), 0);
        assert_true(asprintf(&victim_key, "%s/key.pem", victim) > 0);
        assert_int_equal(access(victim_key, F_OK), -1);
}

static void test_deploy_failing_write_keeps_previous_files(void **state) {
        _cleanup_(cert_config_unrefp) CertConfig *c = new_config("atomic");
        _cleanup_free_ char *err = NULL, *cert = NULL, *key = NULL, *bad = NULL;
        static const AgentDeployInput old = { "old cert\n", "old chain\n", "old key\n", NULL };

        assert_int_equal(agent_deploy_files(c, &old, &err), 0);
        /* The key's directory vanishes: its write fails after the certificate's was staged. */
        bad = path_in("atomic/missing-dir", "key.pem");
        free(c->deploy_key);
        c->deploy_key = TAKE_PTR(bad);

        assert_true(agent_deploy_files(c, &input, &err) < 0);
        assert_non_null(err);
        assert_non_null(strstr(err, "missing-dir/key.pem"));
        cert = slurp(c->deploy_certificate);
        assert_string_equal(cert, "old cert\n");
        free(cert);
        cert = slurp(c->deploy_fullchain);
        assert_string_equal(cert, "old cert\nold chain\n");
        key = path_in("atomic", "key.pem");
        free(cert);
        cert = slurp(key);
        assert_string_equal(cert, "old key\n");
        assert_int_equal(count_staged("atomic"), 0);
}

static void test_deploy_owner_and_group_when_root(void **state) {
        _cleanup_(cert_config_unrefp) CertConfig *c = new_config("owner");
        _cleanup_free_ char *err = NULL;
        struct passwd *pw;
        struct group *gr;
        struct stat st;

        if (geteuid() != 0) {
                skip();
                return;
        }
        pw = getpwnam("nobody");
        gr = getgrnam("nogroup");
        assert_non_null(pw);
        assert_non_null(gr);
        c->owner = strdup("nobody");
        c->group = strdup("nogroup");
        assert_int_equal(agent_deploy_files(c, &input, &err), 0);
        assert_int_equal(stat(c->deploy_key, &st), 0);
        assert_int_equal(st.st_uid, pw->pw_uid);
        assert_int_equal(st.st_gid, gr->gr_gid);
        assert_int_equal(stat(c->deploy_certificate, &st), 0);
        assert_int_equal(st.st_uid, pw->pw_uid);
        /* Numeric ids work too. */
        free(c->owner);
        c->owner = strdup("4242");
        free(c->group);
        c->group = NULL;
        assert_int_equal(agent_deploy_files(c, &input, &err), 0);
        assert_int_equal(stat(c->deploy_chain, &st), 0);
        assert_int_equal(st.st_uid, 4242);
}

static void test_deploy_unknown_owner_fails_before_writing(void **state) {
        _cleanup_(cert_config_unrefp) CertConfig *c = new_config("unknown-owner");
        _cleanup_free_ char *err = NULL;

        c->owner = strdup("no-such-user-certfleet");
        assert_int_equal(agent_deploy_files(c, &input, &err), -ESRCH);
        assert_non_null(strstr(err, "no-such-user-certfleet"));
        assert_int_equal(access(c->deploy_certificate, F_OK), -1);
}

static void test_deploy_hook_gets_environment(void **state) {
        _cleanup_(cert_config_unrefp) CertConfig *c = new_config("hook");
        _cleanup_free_ char *script = NULL, *out = NULL, *env = NULL, *err = NULL, *text = NULL, *expected = NULL;
        FILE *f;

        script = path_in("hook", "hook.sh");
        out = path_in("hook", "env.out");
        f = fopen(script, "w");
        assert_non_null(f);
        fprintf(f, "#!/bin/sh\nfor v in CERTIFICATE CHAIN FULLCHAIN KEY NAME; do eval echo \"$v=\\$CERTFLEET_$v\"; done > %s\necho \"args=$*\" >> %s\n",
                out, out);
        fclose(f);
        assert_int_equal(chmod(script, 0755), 0);
        assert_true(asprintf(&env, "%s one two", script) > 0);
        assert_int_equal(strv_extend(&c->exec_deploy, env), 0);
        /* No [Deploy] Chain=: the hook is pointed at the state directory's copy. */
        free(c->deploy_chain);
        c->deploy_chain = NULL;

        assert_int_equal(agent_deploy_run_hooks(c, &input, &err), 0);
        text = slurp(out);
        assert_true(asprintf(&expected, "CERTIFICATE=%s\nCHAIN=/state/web/live/chain.pem\nFULLCHAIN=%s\nKEY=%s\nNAME=web\nargs=one two\n",
                             c->deploy_certificate, c->deploy_fullchain, c->deploy_key) > 0);
        assert_string_equal(text, expected);
}

static void test_deploy_hook_failure_is_reported(void **state) {
        _cleanup_(cert_config_unrefp) CertConfig *c = new_config("hookfail");

        _cleanup_free_ char *err = NULL;

        assert_int_equal(strv_extend(&c->exec_deploy, "/bin/sh -c exit"), 0);
        assert_int_equal(strv_extend(&c->exec_deploy, "/bin/false"), 0);
        assert_int_equal(agent_deploy_run_hooks(c, &input, &err), -EIO);
        assert_non_null(strstr(err, "/bin/false exited with status 1"));
}

static void test_deploy_reload_without_bus_fails_cleanly(void **state) {
        _cleanup_(strv_freep) char **units = NULL;
        _cleanup_free_ char *err = NULL;
        _cleanup_free_ char *address = NULL;

        assert_true(asprintf(&address, "unix:path=%s/no-bus", test_tmpdir) > 0);
        assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS", address, 1), 0);
        assert_int_equal(agent_deploy_reload_units(NULL, &err), 0);   /* nothing to reload: no bus needed */
        assert_int_equal(strv_extend(&units, "nginx.service"), 0);
        assert_true(agent_deploy_reload_units(units, &err) < 0);
        assert_non_null(err);
        assert_non_null(strstr(err, "system bus"));
}

/* A stand-in for systemd's manager on a private bus: records ReloadOrRestartUnit calls and
 * refuses units whose name starts with "missing". */
typedef struct FakeSystemd {
        sd_bus *bus;
        char calls[512];
        int stop_fd[2];
        pthread_t thread;
} FakeSystemd;

static int method_reload_or_restart(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        FakeSystemd *f = userdata;
        const char *unit, *mode;
        int r;

        r = sd_bus_message_read(m, "ss", &unit, &mode);
        if (r < 0)
                return r;
        if (strncmp(unit, "missing", 7) == 0)
                return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not found.", unit);
        strncat(f->calls, unit, sizeof f->calls - strlen(f->calls) - 1);
        strncat(f->calls, ":", sizeof f->calls - strlen(f->calls) - 1);
        strncat(f->calls, mode, sizeof f->calls - strlen(f->calls) - 1);
        strncat(f->calls, ";", sizeof f->calls - strlen(f->calls) - 1);
        return sd_bus_reply_method_return(m, "o", "/org/freedesktop/systemd1/job/1");
}

static const sd_bus_vtable fake_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("ReloadOrRestartUnit", "ss", "o", method_reload_or_restart, 0),
        SD_BUS_VTABLE_END
};

static void *fake_systemd_run(void *arg) {
        FakeSystemd *f = arg;

        for (;;) {
                struct pollfd p[2] = { { .fd = sd_bus_get_fd(f->bus), .events = (short) sd_bus_get_events(f->bus) },
                                       { .fd = f->stop_fd[0], .events = POLLIN } };
                int r;

                while ((r = sd_bus_process(f->bus, NULL)) > 0)
                        ;
                if (r < 0)
                        break;
                p[0].events = (short) sd_bus_get_events(f->bus);
                if (poll(p, 2, 1000) < 0 && errno != EINTR)
                        break;
                if (p[1].revents)
                        break;
        }
        return NULL;
}

static void test_deploy_reload_units_calls_systemd_manager(void **state) {
        _cleanup_(strv_freep) char **units = NULL, **bad = NULL;
        _cleanup_free_ char *err = NULL, *sock = NULL, *address = NULL, *env = NULL;
        FakeSystemd f = {};
        pid_t daemon;
        int r;

        if (access("/usr/bin/dbus-daemon", X_OK) < 0) {
                skip();
                return;
        }
        assert_true(asprintf(&sock, "%s/system_bus_socket", test_tmpdir) > 0);
        assert_true(asprintf(&address, "--address=unix:path=%s", sock) > 0);
        daemon = fork();
        assert_true(daemon >= 0);
        if (daemon == 0) {
                execlp("dbus-daemon", "dbus-daemon", "--session", "--nofork", "--nopidfile", address, (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 100 && access(sock, F_OK) < 0; i++)
                usleep(20000);
        assert_int_equal(access(sock, F_OK), 0);

        assert_true(asprintf(&env, "unix:path=%s", sock) > 0);
        assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS", env, 1), 0);
        assert_true(sd_bus_open_system(&f.bus) >= 0);
        assert_true(sd_bus_add_object_vtable(f.bus, NULL, "/org/freedesktop/systemd1",
                                             "org.freedesktop.systemd1.Manager", fake_manager_vtable, &f) >= 0);
        assert_true(sd_bus_request_name(f.bus, "org.freedesktop.systemd1", 0) >= 0);
        assert_int_equal(pipe(f.stop_fd), 0);
        assert_int_equal(pthread_create(&f.thread, NULL, fake_systemd_run, &f), 0);

        assert_int_equal(strv_extend(&units, "nginx.service"), 0);
        assert_int_equal(strv_extend(&units, "haproxy.service"), 0);
        r = agent_deploy_reload_units(units, &err);
        if (r < 0)
                fail_msg("reload failed: %s", err);
        assert_int_equal(strv_extend(&bad, "missing.service"), 0);
        assert_true(agent_deploy_reload_units(bad, &err) < 0);
        assert_non_null(strstr(err, "Unit missing.service not found."));

        assert_int_equal(write(f.stop_fd[1], "x", 1), 1);
        pthread_join(f.thread, NULL);
        assert_string_equal(f.calls, "nginx.service:replace;haproxy.service:replace;");
        sd_bus_flush_close_unref(f.bus);
        close(f.stop_fd[0]);
        close(f.stop_fd[1]);
        kill(daemon, SIGTERM);
        waitpid(daemon, NULL, 0);
        unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_deploy_writes_files_with_modes),
                cmocka_unit_test(test_deploy_mode_applies_to_key),
                cmocka_unit_test(test_deploy_replaces_symlinks_never_writes_through_them),
                cmocka_unit_test(test_deploy_refuses_directory_swapped_for_foreign_link),
                cmocka_unit_test(test_deploy_failing_write_keeps_previous_files),
                cmocka_unit_test(test_deploy_owner_and_group_when_root),
                cmocka_unit_test(test_deploy_unknown_owner_fails_before_writing),
                cmocka_unit_test(test_deploy_hook_gets_environment),
                cmocka_unit_test(test_deploy_hook_failure_is_reported),
                cmocka_unit_test(test_deploy_reload_without_bus_fails_cleanly),
                cmocka_unit_test(test_deploy_reload_units_calls_systemd_manager),
        };
        return cmocka_run_group_tests(tests, setup, test_tmpdir_teardown);
}
