/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "agent/agent-state.h"
#include "shared/cert.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/pem.h"

#define SCHEDULE_FILE_MAX (64u * 1024u)
#define ACCOUNT_FILE_MAX (16u * 1024u)

void agent_schedule_init(AgentSchedule *s) {
        *s = (AgentSchedule) {
                .window_start = CF_TIME_INVALID,
                .window_end = CF_TIME_INVALID,
                .chosen = CF_TIME_INVALID,
                .next_renewal = CF_TIME_INVALID,
                .next_ari_poll = CF_TIME_INVALID,
                .last_attempt = CF_TIME_INVALID,
                .last_success = CF_TIME_INVALID,
                .backoff_until = CF_TIME_INVALID,
        };
}

void agent_schedule_done(AgentSchedule *s) {
        free(s->serial);
        free(s->explanation_url);
        free(s->last_error);
        free(s->deployed_serial);
        agent_schedule_init(s);
}

static int strdup_or_null(const char *s, char **ret) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int agent_schedule_copy(const AgentSchedule *s, AgentSchedule *ret) {
        AgentSchedule c = *s;

        c.serial = c.explanation_url = c.last_error = c.deployed_serial = NULL;
        if (strdup_or_null(s->serial, &c.serial) < 0 ||
            strdup_or_null(s->explanation_url, &c.explanation_url) < 0 ||
            strdup_or_null(s->last_error, &c.last_error) < 0 ||
            strdup_or_null(s->deployed_serial, &c.deployed_serial) < 0) {
                agent_schedule_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

void agent_live_done(AgentLive *l) {
        if (l->key_pem) {
                explicit_bzero(l->key_pem, strlen(l->key_pem));
                free(l->key_pem);
        }
        free(l->cert_pem);
        free(l->chain_pem);
        X509_free(l->cert);
        EVP_PKEY_free(l->key);
        *l = (AgentLive) {};
}

static int cert_dir(const char *state_dir, const char *name, char **ret) {
        if (asprintf(ret, "%s/%s", state_dir, name) < 0)
                return -ENOMEM;
        return 0;
}

int agent_state_ensure_dir(const char *state_dir, const char *name) {
        _cleanup_free_ char *dir = NULL;
        int r;

        r = cert_dir(state_dir, name, &dir);
        if (r < 0)
                return r;
        return mkdir_p(dir, 0700);
}

static int read_text(const char *dir, const char *file, size_t max, char **ret) {
        _cleanup_free_ char *path = NULL;
        size_t size;

        if (asprintf(&path, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        return read_full_file(path, max, ret, &size);
}

int agent_state_load_live(const char *state_dir, const char *name, AgentLive *ret) {
        _cleanup_free_ char *live = NULL;
        AgentLive l = {};
        int r;

        if (asprintf(&live, "%s/%s/live", state_dir, name) < 0)
                return -ENOMEM;

        r = read_text(live, "cert.pem", PEM_INPUT_MAX, &l.cert_pem);
        if (r < 0)
                goto fail;
        r = read_text(live, "key.pem", PEM_INPUT_MAX, &l.key_pem);
        if (r < 0)
                goto fail;
        r = read_text(live, "chain.pem", PEM_INPUT_MAX, &l.chain_pem);
        if (r < 0)
                goto fail;
        r = pem_read_cert(l.cert_pem, strlen(l.cert_pem), &l.cert);
        if (r < 0)
                goto fail;
        r = pem_read_private_key(l.key_pem, strlen(l.key_pem), &l.key);
        if (r < 0)
                goto fail;
        if (X509_check_private_key(l.cert, l.key) != 1) {
                r = -EBADMSG;
                goto fail;
        }
        *ret = l;
        return 0;
fail:
        agent_live_done(&l);
        return r;
}

static int fsync_dir(const char *dir) {
        _cleanup_(closep) int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                return -errno;
        return 0;
}

static int write_in(const char *dir, const char *file, const char *text, mode_t mode) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), mode, (uid_t) -1, (gid_t) -1);
}

static int remove_generation(const char *dir, const char *gen) {
        static const char *const files[] = { "key.pem", "cert.pem", "chain.pem", "fullchain.pem" };
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s", dir, gen) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *f = NULL;
                if (asprintf(&f, "%s/%s", path, files[i]) < 0)
                        return -ENOMEM;
                (void) unlink(f);
        }
        if (rmdir(path) < 0)
                return -errno;
        return 0;
}

int agent_state_commit(const char *state_dir, const char *name,
                       const char *cert_pem, const char *chain_pem, const char *key_pem) {
        _cleanup_free_ char *dir = NULL, *gen = NULL, *gen_path = NULL, *fullchain = NULL,
                *live = NULL, *live_tmp = NULL, *serial = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        char previous[PATH_MAX] = "";
        ssize_t n;
        DIR *d;
        int r;

        r = pem_read_cert(cert_pem, strlen(cert_pem), &cert);
        if (r < 0)
                return r;
        r = cert_serial_hex(cert, &serial);
        if (r < 0)
                return r;
        r = cert_dir(state_dir, name, &dir);
        if (r < 0)
                return r;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        if (asprintf(&gen, "gen-%s", serial) < 0 ||
            asprintf(&gen_path, "%s/%s", dir, gen) < 0 ||
            asprintf(&live, "%s/live", dir) < 0 ||
            asprintf(&live_tmp, "%s/.live.tmp", dir) < 0 ||
            asprintf(&fullchain, "%s%s", cert_pem, chain_pem) < 0)
                return -ENOMEM;

        if (mkdir(gen_path, 0700) < 0 && errno != EEXIST)
                return -errno;
        r = write_in(gen_path, "key.pem", key_pem, 0600);
        if (r < 0)
                return r;
        r = write_in(gen_path, "cert.pem", cert_pem, 0644);
        if (r < 0)
                return r;
        r = write_in(gen_path, "chain.pem", chain_pem, 0644);
        if (r < 0)
                return r;
        r = write_in(gen_path, "fullchain.pem", fullchain, 0644);
        if (r < 0)
                return r;
        r = fsync_dir(dir);
        if (r < 0)
                return r;

        n = readlink(live, previous, sizeof previous - 1);
        previous[n > 0 ? n : 0] = 0;

        (void) unlink(live_tmp);
        if (symlink(gen, live_tmp) < 0)
                return -errno;
        if (rename(live_tmp, live) < 0) {
                r = -errno;
                (void) unlink(live_tmp);
                return r;
        }
        r = fsync_dir(dir);
        if (r < 0)
                return r;

        /* Keep the new and the previous generation; anything older is garbage. */
        d = opendir(dir);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (strncmp(de->d_name, "gen-", 4) != 0)
                                continue;
                        if (strcmp(de->d_name, gen) == 0 || strcmp(de->d_name, previous) == 0)
                                continue;
                        (void) remove_generation(dir, de->d_name);
                }
                closedir(d);
        }
        return 0;
}

static int json_add_time(json_object *o, const char *key, cf_time_t t) {
        char buf[CF_RFC3339_MAX];

        if (t == CF_TIME_INVALID)
                return 0;
        return json_object_object_add(o, key, json_object_new_string(time_format_rfc3339(t, buf)));
}

static int json_add_string(json_object *o, const char *key, const char *s) {
        if (!s)
                return 0;
        return json_object_object_add(o, key, json_object_new_string(s));
}

static int schedule_path(const char *state_dir, const char *name, char **ret) {
        if (asprintf(ret, "%s/%s/schedule.json", state_dir, name) < 0)
                return -ENOMEM;
        return 0;
}

int agent_state_save_schedule(const char *state_dir, const char *name, const AgentSchedule *s) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *path = NULL;
        const char *text;
        int r;

        r = agent_state_ensure_dir(state_dir, name);
        if (r < 0)
                return r;
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        if (json_add_string(o, "serial", s->serial) < 0 ||
            json_object_object_add(o, "ari", json_object_new_boolean(s->ari)) < 0 ||
            json_add_time(o, "windowStart", s->window_start) < 0 ||
            json_add_time(o, "windowEnd", s->window_end) < 0 ||
            json_add_string(o, "explanationURL", s->explanation_url) < 0 ||
            json_add_time(o, "chosen", s->chosen) < 0 ||
            json_add_time(o, "nextRenewal", s->next_renewal) < 0 ||
            json_add_time(o, "nextAriPoll", s->next_ari_poll) < 0 ||
            json_add_time(o, "lastAttempt", s->last_attempt) < 0 ||
            json_add_time(o, "lastSuccess", s->last_success) < 0 ||
            json_add_string(o, "lastError", s->last_error) < 0 ||
            json_object_object_add(o, "failures", json_object_new_int64(s->failures)) < 0 ||
            json_add_time(o, "backoffUntil", s->backoff_until) < 0 ||
            json_object_object_add(o, "renewRequested", json_object_new_boolean(s->renew_requested)) < 0 ||
            json_object_object_add(o, "force", json_object_new_boolean(s->force)) < 0 ||
            json_add_string(o, "deployedSerial", s->deployed_serial) < 0)
                return -ENOMEM;

        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        r = schedule_path(state_dir, name, &path);
        if (r < 0)
                return r;
        return write_file_atomic(path, text, strlen(text), 0644, (uid_t) -1, (gid_t) -1);
}

static int get_time(json_object *o, const char *key, cf_time_t *ret) {
        const char *s;
        int r;

        r = json_get_string(o, key, &s);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return time_parse_rfc3339(s, ret);
}

static int get_string(json_object *o, const char *key, char **ret) {
        const char *s;
        int r;

        r = json_get_string(o, key, &s);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        free(*ret);
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int agent_state_load_schedule(const char *state_dir, const char *name, AgentSchedule *ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *path = NULL, *text = NULL;
        AgentSchedule s;
        int64_t failures = 0;
        size_t size;
        int r;

        agent_schedule_init(&s);
        r = schedule_path(state_dir, name, &path);
        if (r < 0)
                return r;
        r = read_full_file(path, SCHEDULE_FILE_MAX, &text, &size);
        if (r == -ENOENT) {
                *ret = s;
                return 0;
        }
        if (r < 0)
                return r;
        r = json_parse_strict(text, size, SCHEDULE_FILE_MAX, &o);
        if (r < 0)
                return r;
        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;

        if ((r = get_string(o, "serial", &s.serial)) < 0 ||
            (r = get_time(o, "windowStart", &s.window_start)) < 0 ||
            (r = get_time(o, "windowEnd", &s.window_end)) < 0 ||
            (r = get_string(o, "explanationURL", &s.explanation_url)) < 0 ||
            (r = get_time(o, "chosen", &s.chosen)) < 0 ||
            (r = get_time(o, "nextRenewal", &s.next_renewal)) < 0 ||
            (r = get_time(o, "nextAriPoll", &s.next_ari_poll)) < 0 ||
            (r = get_time(o, "lastAttempt", &s.last_attempt)) < 0 ||
            (r = get_time(o, "lastSuccess", &s.last_success)) < 0 ||
            (r = get_string(o, "lastError", &s.last_error)) < 0 ||
            (r = get_time(o, "backoffUntil", &s.backoff_until)) < 0 ||
            (r = get_string(o, "deployedSerial", &s.deployed_serial)) < 0)
                goto fail;
        (void) json_get_bool(o, "ari", &s.ari);
        (void) json_get_bool(o, "renewRequested", &s.renew_requested);
        (void) json_get_bool(o, "force", &s.force);
        if (json_get_int64(o, "failures", &failures) >= 0 && failures >= 0 && failures < 1000000)
                s.failures = (unsigned) failures;

        *ret = s;
        return 0;
fail:
        agent_schedule_done(&s);
        return r;
}

static int account_dir(const char *state_dir, const char *directory_url, char **ret) {
        unsigned char md[SHA256_DIGEST_LENGTH];
        char hex[33];

        if (!EVP_Digest(directory_url, strlen(directory_url), md, NULL, EVP_sha256(), NULL))
                return -EIO;
        for (size_t i = 0; i < 16; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
        if (asprintf(ret, "%s/accounts/%s", state_dir, hex) < 0)
                return -ENOMEM;
        return 0;
}

int agent_state_load_account(const char *state_dir, const char *directory_url,
                             EVP_PKEY **ret_key, char **ret_url) {
        _cleanup_free_ char *dir = NULL, *key_path = NULL, *text = NULL, *url = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        size_t size;
        int r;

        r = account_dir(state_dir, directory_url, &dir);
        if (r < 0)
                return r;
        if (asprintf(&key_path, "%s/key.pem", dir) < 0)
                return -ENOMEM;
        r = private_key_load_file(key_path, &key);
        if (r < 0)
                return r;

        r = read_text(dir, "account.json", ACCOUNT_FILE_MAX, &text);
        if (r >= 0) {
                const char *u, *d;
                size = strlen(text);
                r = json_parse_strict(text, size, ACCOUNT_FILE_MAX, &o);
                if (r < 0)
                        return r;
                /* The account belongs to this exact directory; a hash collision or a copied file
                 * must not send our key to another CA's account URL. */
                if (json_get_string(o, "directory", &d) >= 0 && strcmp(d, directory_url) == 0 &&
                    json_get_string(o, "url", &u) >= 0) {
                        url = strdup(u);
                        if (!url)
                                return -ENOMEM;
                }
        } else if (r != -ENOENT)
                return r;

        *ret_key = TAKE_PTR(key);
        *ret_url = TAKE_PTR(url);
        return 0;
}

int agent_state_save_account_key(const char *state_dir, const char *directory_url, EVP_PKEY *key) {
        _cleanup_free_ char *dir = NULL, *key_path = NULL;
        int r;

        r = account_dir(state_dir, directory_url, &dir);
        if (r < 0)
                return r;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        if (asprintf(&key_path, "%s/key.pem", dir) < 0)
                return -ENOMEM;
        return private_key_save_file(key_path, key, (uid_t) -1, (gid_t) -1);
}

int agent_state_save_account_url(const char *state_dir, const char *directory_url, const char *url) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *dir = NULL;
        int r;

        r = account_dir(state_dir, directory_url, &dir);
        if (r < 0)
                return r;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        o = json_object_new_object();
        if (!o ||
            json_object_object_add(o, "directory", json_object_new_string(directory_url)) < 0 ||
            json_object_object_add(o, "url", json_object_new_string(url)) < 0)
                return -ENOMEM;
        return write_in(dir, "account.json",
                        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE),
                        0600);
}
