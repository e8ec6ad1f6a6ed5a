/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "agent/agent-deploy.h"
#include "agent/agent-exec.h"
#include "shared/fileio.h"
#include "shared/strv.h"


static int fail(char **ret_error, int r, const char *format, ...) _printf_(3, 4);
static int fail(char **ret_error, int r, const char *format, ...) {
        va_list ap;

        if (ret_error) {
                va_start(ap, format);
                if (vasprintf(ret_error, format, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return r;
}

static int parse_id(const char *s, unsigned long *ret) {
        char *end = NULL;
        unsigned long v;

        if (!*s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v >= (unsigned long) (uid_t) -1)
                return -EINVAL;
        *ret = v;
        return 0;
}

int agent_deploy_resolve_owner(const CertConfig *c, uid_t *ret_uid, gid_t *ret_gid) {
        uid_t uid = (uid_t) -1;
        gid_t gid = (gid_t) -1;
        char buf[16384];
        unsigned long id;

        if (c->owner) {
                struct passwd pw, *p = NULL;
                if (parse_id(c->owner, &id) >= 0)
                        uid = (uid_t) id;
                else if (getpwnam_r(c->owner, &pw, buf, sizeof buf, &p) == 0 && p)
                        uid = p->pw_uid;
                else
                        return -ESRCH;
        }
        if (c->group) {
                struct group gr, *g = NULL;
                if (parse_id(c->group, &id) >= 0)
                        gid = (gid_t) id;
                else if (getgrnam_r(c->group, &gr, buf, sizeof buf, &g) == 0 && g)
                        gid = g->gr_gid;
                else
                        return -ESRCH;
        }
        *ret_uid = uid;
        *ret_gid = gid;
        return 0;
}

typedef struct Target {
        const char *path;
        char *content;                 /* owned */
        mode_t mode;
        int dir_fd;                    /* the path's directory, opened with open_directory_safely() */
        char *staged;                  /* file name + suffix in dir_fd, once written */
} Target;

/* Opens the directory of t->path and writes the staged file in it. Every later step (rename,
 * clean-up) goes through that directory's descriptor, never through the path again, so a
 * directory swapped for a symlink after this cannot redirect the rename. */
static int target_stage(Target *t, uid_t uid, gid_t gid) {
        _cleanup_free_ char *copy = strdup(t->path), *dir_copy = strdup(t->path);
        const char *name;
        int r;

        if (!copy || !dir_copy)
                return -ENOMEM;
        name = basename(copy);
        t->dir_fd = open_directory_safely(dirname(dir_copy));
        if (t->dir_fd < 0)
                return t->dir_fd;
        if (asprintf(&t->staged, "%s%s", name, AGENT_DEPLOY_STAGING_SUFFIX) < 0) {
                t->staged = NULL;
                return -ENOMEM;
        }
        r = write_file_atomic_at(t->dir_fd, t->staged, t->content, strlen(t->content), t->mode, uid, gid);
        if (r < 0) {
                free(t->staged);
                t->staged = NULL;
        }
        return r;
}

static int target_commit(Target *t) {
        _cleanup_free_ char *copy = strdup(t->path);

        if (!copy)
                return -ENOMEM;
        if (renameat(t->dir_fd, t->staged, t->dir_fd, basename(copy)) < 0)
                return -errno;
        free(t->staged);
        t->staged = NULL;
        (void) fsync(t->dir_fd);
        return 0;
}

int agent_deploy_files(const CertConfig *c, const AgentDeployInput *in, char **ret_error) {
        Target t[4] = {
                { c->deploy_certificate, NULL, AGENT_DEPLOY_CERT_MODE, -EBADF, NULL },
                { c->deploy_chain,       NULL, AGENT_DEPLOY_CERT_MODE, -EBADF, NULL },
                { c->deploy_fullchain,   NULL, AGENT_DEPLOY_CERT_MODE, -EBADF, NULL },
                { c->deploy_key,         NULL, c->mode ? c->mode : 0600, -EBADF, NULL },
        };
        uid_t uid;
        gid_t gid;
        int r;

        r = agent_deploy_resolve_owner(c, &uid, &gid);
        if (r < 0)
                return fail(ret_error, r, "unknown Owner=%s or Group=%s", c->owner ?: "", c->group ?: "");

        t[0].content = strdup(in->cert_pem);
        t[1].content = strdup(in->chain_pem);
        if (asprintf(&t[2].content, "%s%s", in->cert_pem, in->chain_pem) < 0)
                t[2].content = NULL;
        t[3].content = strdup(in->key_pem);
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (!t[i].content) {
                        r = fail(ret_error, -ENOMEM, "out of memory");
                        goto finish;
                }

        /* Stage everything first: until all staged files are on disk nothing visible changes. */
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                if (!t[i].path)
                        continue;
                r = target_stage(&t[i], uid, gid);
                if (r == -EPERM)
                        r = fail(ret_error, r, "cannot write %s: a directory on its path is a symbolic link "
                                 "that neither root nor this user owns", t[i].path);
                else if (r < 0)
                        r = fail(ret_error, r, "cannot write %s: %s", t[i].path, strerror(-r));
                if (r < 0)
                        goto finish;
        }
        /* The key goes first, so that a reader between two renames sees the new key with the old
         * certificate only for as long as it takes to rename the next file. */
        for (size_t k = 0; k < ELEMENTSOF(t); k++) {
                size_t i = (k + 3) % ELEMENTSOF(t);
                if (!t[i].staged)
                        continue;
                r = target_commit(&t[i]);
                if (r < 0) {
                        r = fail(ret_error, r, "cannot rename the new %s into place: %s", t[i].path, strerror(-r));
                        goto finish;
                }
        }
        r = 0;
finish:
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                if (t[i].staged)
                        (void) unlinkat(t[i].dir_fd, t[i].staged, 0);
                free(t[i].staged);
                if (t[i].dir_fd >= 0)
                        close(t[i].dir_fd);
                if (t[i].content)
                        explicit_bzero(t[i].content, strlen(t[i].content));
                free(t[i].content);
        }
        return r;
}

int agent_deploy_reload_units(char *const *units, char **ret_error) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (strv_length(units) == 0)
                return 0;
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return fail(ret_error, r, "cannot connect to the system bus: %s", strerror(-r));

        for (char *const *u = units; *u; u++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                sd_bus_error error = SD_BUS_ERROR_NULL;

                r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "ReloadOrRestartUnit",
                                       &error, &reply, "ss", *u, "replace");
                if (r < 0) {
                        r = fail(ret_error, r, "cannot reload %s: %s", *u,
                                 error.message ?: strerror(-r));
                        sd_bus_error_free(&error);
                        return r;
                }
        }
        return 0;
}

static int hook_var(const char *name, const char *deployed, const char *live_dir, const char *file, char **ret) {
        if (deployed)
                return asprintf(ret, "%s=%s", name, deployed) < 0 ? -ENOMEM : 0;
        if (live_dir)
                return asprintf(ret, "%s=%s/%s", name, live_dir, file) < 0 ? -ENOMEM : 0;
        return asprintf(ret, "%s=", name) < 0 ? -ENOMEM : 0;
}

int agent_deploy_run_hooks(const CertConfig *c, const AgentDeployInput *in, char **ret_error) {
        _cleanup_(strv_freep) char **env = NULL;
        char *v = NULL;
        int r;

        if (strv_length(c->exec_deploy) == 0)
                return 0;
        if (hook_var("CERTFLEET_CERTIFICATE", c->deploy_certificate, in->live_dir, "cert.pem", &v) < 0 ||
            strv_consume(&env, v) < 0 ||
            hook_var("CERTFLEET_CHAIN", c->deploy_chain, in->live_dir, "chain.pem", &v) < 0 ||
            strv_consume(&env, v) < 0 ||
            hook_var("CERTFLEET_FULLCHAIN", c->deploy_fullchain, in->live_dir, "fullchain.pem", &v) < 0 ||
            strv_consume(&env, v) < 0 ||
            hook_var("CERTFLEET_KEY", c->deploy_key, in->live_dir, "key.pem", &v) < 0 ||
            strv_consume(&env, v) < 0 ||
            asprintf(&v, "CERTFLEET_NAME=%s", c->name) < 0 ||
            strv_consume(&env, v) < 0)
                return fail(ret_error, -ENOMEM, "out of memory");

        for (char **cmd = c->exec_deploy; *cmd; cmd++) {
                _cleanup_(strv_freep) char **argv = NULL;

                r = agent_exec_split(*cmd, &argv);
                if (r < 0)
                        return fail(ret_error, r, "cannot parse ExecDeploy=%s", *cmd);
                r = agent_exec_run(argv, env, AGENT_EXEC_TIMEOUT_SEC);
                if (r < 0)
                        return fail(ret_error, r, "ExecDeploy=%s: %s", *cmd,
                                    r == -ETIMEDOUT ? "timed out" : r == -ECHILD ? "killed by a signal" : strerror(-r));
                if (r != 0)
                        return fail(ret_error, -EIO, "ExecDeploy=%s exited with status %d", *cmd, r);
        }
        return 0;
}

int agent_deploy(const CertConfig *c, const AgentDeployInput *in, char **ret_error) {
        int r;

        r = agent_deploy_files(c, in, ret_error);
        if (r < 0)
                return r;
        r = agent_deploy_reload_units(c->reload_units, ret_error);
        if (r < 0)
                return r;
        return agent_deploy_run_hooks(c, in, ret_error);
}
