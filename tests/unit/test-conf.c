/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/conf.h"
#include "shared/macro.h"
#include "shared/strv.h"
#include "tests/unit/test-util.h"

typedef struct TestConfig {
        char *name;
        char *path;
        bool enabled;
        int number;
        unsigned count;
        int64_t lifetime;
        char **names;
        mode_t mode;
        char *owner;
} TestConfig;

static const ConfItem test_table[] = {
        { "Certificate", "Name", conf_parse_string, offsetof(TestConfig, name), NULL },
        { "Certificate", "Path", conf_parse_path, offsetof(TestConfig, path), NULL },
        { "Certificate", "Enabled", conf_parse_bool, offsetof(TestConfig, enabled), NULL },
        { "Certificate", "Number", conf_parse_int, offsetof(TestConfig, number), NULL },
        { "Certificate", "Count", conf_parse_unsigned, offsetof(TestConfig, count), NULL },
        { "Certificate", "Lifetime", conf_parse_duration, offsetof(TestConfig, lifetime), NULL },
        { "Certificate", "Names", conf_parse_strv, offsetof(TestConfig, names), NULL },
        { "Deploy", "Mode", conf_parse_mode, offsetof(TestConfig, mode), NULL },
        { "Deploy", "Owner", conf_parse_string, offsetof(TestConfig, owner), NULL },
        {}
};

static void test_config_done(TestConfig *c) {
        free(c->name);
        free(c->path);
        strv_freep(&c->names);
        free(c->owner);
        *c = (TestConfig) {};
}

/* Named sections: [RAProfile NAME]. */
typedef struct Profile {
        char name[32];
        char *ca;
        bool enabled;
} Profile;

typedef struct Profiles {
        Profile p[4];
        size_t n;
        unsigned calls;
} Profiles;

static const ConfItem profile_table[] = {
        { "RAProfile", "CA", conf_parse_string, offsetof(Profile, ca), NULL },
        { "RAProfile", "Enabled", conf_parse_bool, offsetof(Profile, enabled), NULL },
        {}
};

static int profile_handler(const char *section, const char *name, void *userdata,
                           const ConfItem **ret_table, void **ret_target) {
        Profiles *ps = userdata;
        Profile *p = NULL;

        ps->calls++;
        if (strcmp(section, "RAProfile") != 0)
                return -ENOENT;
        for (size_t i = 0; i < ps->n; i++)
                if (strcmp(ps->p[i].name, name) == 0)
                        p = &ps->p[i];
        if (!p) {
                if (ps->n >= ELEMENTSOF(ps->p))
                        return -E2BIG;
                p = &ps->p[ps->n++];
                snprintf(p->name, sizeof p->name, "%s", name);
        }
        *ret_table = profile_table;
        *ret_target = p;
        return 0;
}

static void profiles_done(Profiles *ps) {
        for (size_t i = 0; i < ps->n; i++)
                free(ps->p[i].ca);
}

static int load(const char *text, TestConfig *c, ConfError *e) {
        return conf_load_string("test.conf", text, strlen(text), test_table, c, NULL, NULL, e);
}

/* Loads text that must fail, and checks the returned error and the message. */
static void check_fails(const char *text, int error, const char *message) {
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_(conf_error_done) ConfError e = {};
        int r = load(text, &c, &e);

        if (r != error)
                fail_msg("'%s': got %d, expected %d (%s)", text, r, error, e.message ?: "no message");
        assert_non_null(e.message);
        if (strcmp(e.message, message) != 0)
                fail_msg("message '%s', expected '%s'", e.message, message);
}

static void test_conf_parses_every_type(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_(conf_error_done) ConfError e = {};
        const char *text =
                "# comment\n"
                "; another comment\n"
                "[Certificate]\n"
                "Name = web server  \n"
                "Path=/etc/ssl/web.pem\n"
                "Enabled=yes\n"
                "Number=-42\n"
                "Count=4294967295\n"
                "Lifetime=1d12h\n"
                "Names=a.example b.example\n"
                "\n"
                "[Deploy]\n"
                "Mode=0640\n"
                "Owner=www-data\n";

        assert_int_equal(load(text, &c, &e), 0);
        assert_null(e.message);
        assert_string_equal(c.name, "web server");
        assert_string_equal(c.path, "/etc/ssl/web.pem");
        assert_true(c.enabled);
        assert_int_equal(c.number, -42);
        assert_int_equal(c.count, 4294967295u);
        assert_int_equal(c.lifetime, 86400 + 12 * 3600);
        assert_int_equal(strv_length(c.names), 2);
        assert_string_equal(c.names[0], "a.example");
        assert_string_equal(c.names[1], "b.example");
        assert_int_equal(c.mode, 0640);
        assert_string_equal(c.owner, "www-data");
}

static void test_conf_bool_forms(void **state) {
        static const struct {
                const char *v;
                bool b;
        } forms[] = {
                { "yes", true }, { "no", false }, { "true", true }, { "false", false },
                { "1", true }, { "0", false }, { "on", true }, { "off", false },
                { "YES", true }, { "Off", false }, { "True", true },
        };
        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                _cleanup_(test_config_done) TestConfig c = { .enabled = !forms[i].b };
                char text[64];

                snprintf(text, sizeof text, "[Certificate]\nEnabled=%s\n", forms[i].v);
                assert_int_equal(load(text, &c, NULL), 0);
                assert_int_equal(c.enabled, forms[i].b);
        }
        check_fails("[Certificate]\nEnabled=maybe\n", -EINVAL,
                    "test.conf:2: Invalid value for Enabled=: 'maybe' (Invalid argument)");
        check_fails("[Certificate]\nEnabled=\n", -EINVAL,
                    "test.conf:2: Invalid value for Enabled=: '' (Invalid argument)");
        check_fails("[Certificate]\nEnabled=y es\n", -EINVAL,
                    "test.conf:2: Invalid value for Enabled=: 'y es' (Invalid argument)");
}

static void test_conf_numbers(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};

        assert_int_equal(load("[Certificate]\nNumber=010\nCount=0\n", &c, NULL), 0);
        assert_int_equal(c.number, 10);         /* decimal, not octal */
        assert_int_equal(c.count, 0);

        check_fails("[Certificate]\nNumber=5x\n", -EINVAL,
                    "test.conf:2: Invalid value for Number=: '5x' (Invalid argument)");
        check_fails("[Certificate]\nNumber=0x10\n", -EINVAL,
                    "test.conf:2: Invalid value for Number=: '0x10' (Invalid argument)");
        check_fails("[Certificate]\nNumber=2147483648\n", -ERANGE,
                    "test.conf:2: Invalid value for Number=: '2147483648' (Numerical result out of range)");
        check_fails("[Certificate]\nCount=-1\n", -EINVAL,
                    "test.conf:2: Invalid value for Count=: '-1' (Invalid argument)");
        check_fails("[Certificate]\nCount=4294967296\n", -ERANGE,
                    "test.conf:2: Invalid value for Count=: '4294967296' (Numerical result out of range)");
}

static void test_conf_duration(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};

        assert_int_equal(load("[Certificate]\nLifetime=90d\n", &c, NULL), 0);
        assert_int_equal(c.lifetime, 90 * 86400);
        check_fails("[Certificate]\nLifetime=-1d\n", -EINVAL,
                    "test.conf:2: Invalid value for Lifetime=: '-1d' (Invalid argument)");
        check_fails("[Certificate]\nLifetime=5x\n", -EINVAL,
                    "test.conf:2: Invalid value for Lifetime=: '5x' (Invalid argument)");
}

static void test_conf_strv_appends_and_empty_resets(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_free_ char *joined = NULL;

        assert_int_equal(load("[Certificate]\n"
                              "Names=a b\n"
                              "Names=c\n"
                              "Names=\n"
                              "Names=d\te  f\n"
                              "Names=g\n", &c, NULL), 0);
        joined = strv_join(c.names, ",");
        assert_string_equal(joined, "d,e,f,g");

        assert_int_equal(load("[Certificate]\nNames=\n", &c, NULL), 0);
        assert_null(c.names);
}

static void test_conf_string_replaces_and_empty_resets(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};

        assert_int_equal(load("[Certificate]\nName=first\nName=second\n", &c, NULL), 0);
        assert_string_equal(c.name, "second");
        assert_int_equal(load("[Certificate]\nName=\n", &c, NULL), 0);
        assert_null(c.name);
}

static void test_conf_mode(void **state) {
        static const struct {
                const char *v;
                mode_t m;
        } ok[] = { { "0640", 0640 }, { "640", 0640 }, { "0", 0 }, { "7777", 07777 }, { "04755", 04755 } };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                _cleanup_(test_config_done) TestConfig c = {};
                char text[64];

                snprintf(text, sizeof text, "[Deploy]\nMode=%s\n", ok[i].v);
                assert_int_equal(load(text, &c, NULL), 0);
                assert_int_equal(c.mode, ok[i].m);
        }
        check_fails("[Deploy]\nMode=0800\n", -EINVAL,
                    "test.conf:2: Invalid value for Mode=: '0800' (Invalid argument)");
        check_fails("[Deploy]\nMode=10000\n", -ERANGE,
                    "test.conf:2: Invalid value for Mode=: '10000' (Numerical result out of range)");
        check_fails("[Deploy]\nMode=rw-r--r--\n", -EINVAL,
                    "test.conf:2: Invalid value for Mode=: 'rw-r--r--' (Invalid argument)");
        check_fails("[Deploy]\nMode=\n", -EINVAL,
                    "test.conf:2: Invalid value for Mode=: '' (Invalid argument)");
}

static void test_conf_path_must_be_absolute(void **state) {
        check_fails("[Certificate]\nPath=etc/ssl/web.pem\n", -EINVAL,
                    "test.conf:2: Invalid value for Path=: 'etc/ssl/web.pem' (Invalid argument)");
        check_fails("[Certificate]\nPath=./web.pem\n", -EINVAL,
                    "test.conf:2: Invalid value for Path=: './web.pem' (Invalid argument)");
}

static void test_conf_unknown_key_names_line(void **state) {
        check_fails("# a comment\n"
                    "[Certificate]\n"
                    "Name=x\n"
                    "\n"
                    "Nmae=y\n", -EINVAL,
                    "test.conf:5: Unknown key 'Nmae' in section [Certificate]");
        /* Keys are case-sensitive, as in systemd. */
        check_fails("[Certificate]\nname=x\n", -EINVAL,
                    "test.conf:2: Unknown key 'name' in section [Certificate]");
        /* A key of another section. */
        check_fails("[Certificate]\nOwner=root\n", -EINVAL,
                    "test.conf:2: Unknown key 'Owner' in section [Certificate]");
}

static void test_conf_unknown_section_names_line(void **state) {
        check_fails("[Certificate]\nName=x\n\n[Certificat]\nName=y\n", -EINVAL,
                    "test.conf:4: Unknown section [Certificat]");
        /* Even without keys in it. */
        check_fails("[Certificate]\n[Nope]\n", -EINVAL, "test.conf:2: Unknown section [Nope]");
        /* A named section without a handler. */
        check_fails("[Certificate]\n[RAProfile web]\nCA=x\n", -EINVAL, "test.conf:2: Unknown section [RAProfile web]");
}

static void test_conf_syntax_errors(void **state) {
        check_fails("Name=x\n", -EINVAL, "test.conf:1: Assignment 'Name=' outside of any section");
        check_fails("[Certificate]\nName x\n", -EINVAL,
                    "test.conf:2: Expected Key=value, a [Section] header or a comment");
        /* "Key: value" is configparser, not systemd. */
        check_fails("[Certificate]\nName: x\n", -EINVAL,
                    "test.conf:2: Expected Key=value, a [Section] header or a comment");
        check_fails("[Certificate]\n=x\n", -EINVAL, "test.conf:2: Expected Key=value, the key is empty");
        check_fails("[Certificate\nName=x\n", -EINVAL, "test.conf:1: Invalid section header '[Certificate'");
        check_fails("[Certificate] # c\n", -EINVAL, "test.conf:1: Invalid section header '[Certificate] # c'");
        check_fails("[]\n", -EINVAL, "test.conf:1: Invalid section header '[]'");
        check_fails("[RAProfile a b]\n", -EINVAL, "test.conf:1: Invalid section header '[RAProfile a b]'");
}

static void test_conf_nul_byte_is_an_error(void **state) {
        static const char text[] = "[Certificate]\nName=a\0b\nCount=1\n";
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_(conf_error_done) ConfError e = {};

        assert_int_equal(conf_load_string("test.conf", text, sizeof text - 1, test_table, &c, NULL, NULL, &e), -EBADMSG);
        assert_string_equal(e.message, "test.conf:2: Line contains a NUL byte");
        assert_null(c.name);
}

static void test_conf_first_error_wins_and_stops(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_(conf_error_done) ConfError e = {};

        assert_int_equal(load("[Certificate]\nFoo=1\nBar=2\nName=late\n", &c, &e), -EINVAL);
        assert_string_equal(e.message, "test.conf:2: Unknown key 'Foo' in section [Certificate]");
        /* Nothing after the error was applied. */
        assert_null(c.name);
}

static void test_conf_systemd_semantics_not_inih_defaults(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};

        /* No inline comments: the value keeps " ; b" and " # c". Leading whitespace does not
         * continue the previous value (inih's multi-line mode): it is a line of its own. */
        assert_int_equal(load("[Certificate]\n"
                              "Name=a ; b # c\n"
                              "  Owner=x\n", &c, NULL), -EINVAL);
        test_config_done(&c);
        assert_int_equal(load("[Certificate]\n"
                              "Name=a ; b # c\n"
                              "  Names=x\n"
                              "\tNames=y\n"
                              "Path=/a=b\n", &c, NULL), 0);
        assert_string_equal(c.name, "a ; b # c");
        assert_int_equal(strv_length(c.names), 2);
        assert_string_equal(c.names[1], "y");
        assert_string_equal(c.path, "/a=b");   /* split at the first '=' only */
}

static void test_conf_crlf_and_bom(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};

        assert_int_equal(load("\xef\xbb\xbf[Certificate]\r\nName=x\r\nCount=3\r\n", &c, NULL), 0);
        assert_string_equal(c.name, "x");
        assert_int_equal(c.count, 3);
        test_config_done(&c);
        /* No final newline. */
        assert_int_equal(load("[Certificate]\nName=y", &c, NULL), 0);
        assert_string_equal(c.name, "y");
}

static void test_conf_long_line_is_an_error_not_truncated(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_(conf_error_done) ConfError e = {};
        _cleanup_free_ char *text = malloc(2 * CONF_LINE_MAX), *value = malloc(CONF_LINE_MAX + 1);
        char expect[128];

        assert_non_null(text);
        assert_non_null(value);

        /* Longer than inih's own buffer (200 in Debian's build) but within ours: taken whole,
         * where inih alone would have cut it silently. */
        memset(value, 'a', 1000);
        value[1000] = 0;
        snprintf(text, 2 * CONF_LINE_MAX, "# %s\n[Certificate]\nName=%s\nNames=%s x\n", value, value, value);
        assert_int_equal(load(text, &c, NULL), 0);
        assert_string_equal(c.name, value);
        assert_int_equal(strv_length(c.names), 2);
        assert_string_equal(c.names[0], value);
        test_config_done(&c);

        /* Exactly CONF_LINE_MAX characters ("Name=" + value), leading blanks not counted. */
        memset(value, 'b', CONF_LINE_MAX - 5);
        value[CONF_LINE_MAX - 5] = 0;
        snprintf(text, 2 * CONF_LINE_MAX, "[Certificate]\n   Name=%s\n", value);
        assert_int_equal(load(text, &c, NULL), 0);
        assert_int_equal(strlen(c.name), CONF_LINE_MAX - 5);
        test_config_done(&c);

        /* One more is an error naming the line; nothing of it or after it is applied. */
        snprintf(text, 2 * CONF_LINE_MAX, "[Certificate]\n\nName=%sb\nCount=1\n", value);
        assert_int_equal(load(text, &c, &e), -E2BIG);
        snprintf(expect, sizeof expect, "test.conf:3: Line too long (maximum %u characters)", CONF_LINE_MAX);
        assert_string_equal(e.message, expect);
        assert_null(c.name);
        assert_int_equal(c.count, 0);

        /* Keys and section headers must fit inih's buffer: an error, never a cut key. */
        memset(value, 'K', 300);
        value[300] = 0;
        snprintf(text, 2 * CONF_LINE_MAX, "[Certificate]\n%s=1\n", value);
        assert_int_equal(load(text, &c, &e), -E2BIG);
        assert_true(strncmp(e.message, "test.conf:2: Line too long (maximum ", 36) == 0);
        snprintf(text, 2 * CONF_LINE_MAX, "[%s]\n", value);
        assert_int_equal(load(text, &c, &e), -EINVAL);   /* unknown section, not cut to a known one */
}

static void test_conf_named_sections(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_(conf_error_done) ConfError e = {};
        _cleanup_(profiles_done) Profiles ps = {};
        const char *text =
                "[Certificate]\n"
                "Name=n\n"
                "[RAProfile web]\n"
                "CA=local\n"
                "Enabled=yes\n"
                "[RAProfile  mail ]\n"
                "CA=upstream\n"
                "[RAProfile web]\n"
                "CA=local2\n"
                "[Certificate]\n"
                "Count=9\n";

        assert_int_equal(conf_load_string("p.conf", text, strlen(text), test_table, &c,
                                          profile_handler, &ps, &e), 0);
        assert_string_equal(c.name, "n");
        assert_int_equal(c.count, 9);
        assert_int_equal(ps.calls, 3);
        assert_int_equal(ps.n, 2);
        assert_string_equal(ps.p[0].name, "web");
        assert_string_equal(ps.p[0].ca, "local2");
        assert_true(ps.p[0].enabled);
        assert_string_equal(ps.p[1].name, "mail");
        assert_string_equal(ps.p[1].ca, "upstream");
        assert_false(ps.p[1].enabled);
}

static void test_conf_named_section_errors(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_(conf_error_done) ConfError e = {};
        _cleanup_(profiles_done) Profiles ps = {};
        const char *unknown = "[Certificate]\nName=n\n[Other web]\nCA=x\n";
        const char *bad_key = "[RAProfile web]\nCA=x\nName=n\n";
        const char *bad_value = "[RAProfile web]\nEnabled=perhaps\n";

        assert_int_equal(conf_load_string("p.conf", unknown, strlen(unknown), test_table, &c,
                                          profile_handler, &ps, &e), -EINVAL);
        assert_string_equal(e.message, "p.conf:3: Unknown section [Other web]");

        assert_int_equal(conf_load_string("p.conf", bad_key, strlen(bad_key), test_table, &c,
                                          profile_handler, &ps, &e), -EINVAL);
        assert_string_equal(e.message, "p.conf:3: Unknown key 'Name' in section [RAProfile web]");

        assert_int_equal(conf_load_string("p.conf", bad_value, strlen(bad_value), test_table, &c,
                                          profile_handler, &ps, &e), -EINVAL);
        assert_string_equal(e.message, "p.conf:2: Invalid value for Enabled=: 'perhaps' (Invalid argument)");
}

static void test_conf_string_size_limit(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_(conf_error_done) ConfError e = {};
        _cleanup_free_ char *big = malloc(CONF_FILE_MAX + 1);

        assert_non_null(big);
        /* Comment lines: well-formed, only the size is wrong. */
        for (size_t i = 0; i < CONF_FILE_MAX + 1; i += 64) {
                size_t n = MIN((size_t) 64, CONF_FILE_MAX + 1 - i);
                memset(big + i, '#', n);
                big[i + n - 1] = '\n';
        }
        assert_int_equal(conf_load_string("big.conf", big, CONF_FILE_MAX, test_table, &c, NULL, NULL, &e), 0);
        assert_int_equal(conf_load_string("big.conf", big, CONF_FILE_MAX + 1, test_table, &c, NULL, NULL, &e), -EFBIG);
        assert_non_null(e.message);
        assert_non_null(strstr(e.message, "big.conf"));
}

/* Drop-ins, in a temporary directory. */

static void test_conf_dropins_override_in_lexical_order(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_(conf_error_done) ConfError e = {};
        char path[256];

        test_write_text("main.conf", "[Certificate]\nName=main\nCount=1\nNames=m\n[Deploy]\nOwner=root\n");
        snprintf(path, sizeof path, "%s/main.conf.d", test_tmpdir);
        assert_int_equal(mkdir(path, 0755), 0);
        /* Written out of order: the loader must sort. */
        test_write_text("main.conf.d/20-b.conf", "[Certificate]\nName=twenty\nNames=b\n");
        test_write_text("main.conf.d/10-a.conf", "[Certificate]\nName=ten\nCount=10\nNames=a\n");
        test_write_text("main.conf.d/9-c.conf", "[Certificate]\nCount=9\n");    /* '9' sorts after '2' */
        test_write_text("main.conf.d/30-x.conf.disabled", "[Certificate]\nName=ignored\n");
        test_write_text("main.conf.d/README", "not a config file\n");

        snprintf(path, sizeof path, "%s/main.conf", test_tmpdir);
        assert_int_equal(conf_load(path, test_table, &c, NULL, NULL, &e), 0);
        assert_null(e.message);
        assert_string_equal(c.name, "twenty");
        assert_int_equal(c.count, 9);
        assert_string_equal(c.owner, "root");
        assert_int_equal(strv_length(c.names), 3);
        assert_string_equal(c.names[0], "m");
        assert_string_equal(c.names[1], "a");
        assert_string_equal(c.names[2], "b");
}

static void test_conf_dropin_error_names_dropin_file(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_(conf_error_done) ConfError e = {};
        char path[256], expect[512];

        snprintf(path, sizeof path, "%s/err.conf.d", test_tmpdir);
        assert_int_equal(mkdir(path, 0755), 0);
        test_write_text("err.conf", "[Certificate]\nName=main\n");
        test_write_text("err.conf.d/50-bad.conf", "[Certificate]\n\n\nFoo=1\n");

        snprintf(path, sizeof path, "%s/err.conf", test_tmpdir);
        assert_int_equal(conf_load(path, test_table, &c, NULL, NULL, &e), -EINVAL);
        snprintf(expect, sizeof expect, "%s/err.conf.d/50-bad.conf:4: Unknown key 'Foo' in section [Certificate]", test_tmpdir);
        assert_string_equal(e.message, expect);
}

static void test_conf_missing_main_file(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_(conf_error_done) ConfError e = {};
        char path[256];

        snprintf(path, sizeof path, "%s/absent.conf", test_tmpdir);
        assert_int_equal(conf_load(path, test_table, &c, NULL, NULL, &e), -ENOENT);

        /* Drop-ins alone are enough. */
        snprintf(path, sizeof path, "%s/only-dropins.conf.d", test_tmpdir);
        assert_int_equal(mkdir(path, 0755), 0);
        test_write_text("only-dropins.conf.d/a.conf", "[Certificate]\nName=dropin\n");
        snprintf(path, sizeof path, "%s/only-dropins.conf", test_tmpdir);
        assert_int_equal(conf_load(path, test_table, &c, NULL, NULL, &e), 0);
        assert_string_equal(c.name, "dropin");
}

static void test_conf_file_size_limit(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_(conf_error_done) ConfError e = {};
        _cleanup_free_ char *big = malloc(CONF_FILE_MAX + 1);
        char path[256];

        assert_non_null(big);
        memset(big, '\n', CONF_FILE_MAX + 1);
        test_write_file("big.conf", big, CONF_FILE_MAX + 1);
        snprintf(path, sizeof path, "%s/big.conf", test_tmpdir);
        assert_int_equal(conf_load(path, test_table, &c, NULL, NULL, &e), -EFBIG);
        assert_non_null(e.message);

        test_write_file("big.conf", big, CONF_FILE_MAX);
        assert_int_equal(conf_load(path, test_table, &c, NULL, NULL, NULL), 0);
}

static void test_conf_too_many_dropins(void **state) {
        _cleanup_(test_config_done) TestConfig c = {};
        _cleanup_(conf_error_done) ConfError e = {};
        char path[256];

        snprintf(path, sizeof path, "%s/many.conf.d", test_tmpdir);
        assert_int_equal(mkdir(path, 0755), 0);
        for (unsigned i = 0; i < CONF_DROPINS_MAX; i++) {
                snprintf(path, sizeof path, "many.conf.d/%04u.conf", i);
                test_write_text(path, "[Certificate]\nCount=1\n");
        }
        snprintf(path, sizeof path, "%s/many.conf", test_tmpdir);
        assert_int_equal(conf_load(path, test_table, &c, NULL, NULL, &e), 0);
        assert_int_equal(c.count, 1);

        test_write_text("many.conf.d/zzzz.conf", "[Certificate]\nCount=2\n");
        assert_int_equal(conf_load(path, test_table, &c, NULL, NULL, &e), -E2BIG);
        assert_non_null(e.message);
        assert_int_equal(c.count, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_conf_parses_every_type),
                cmocka_unit_test(test_conf_bool_forms),
                cmocka_unit_test(test_conf_numbers),
                cmocka_unit_test(test_conf_duration),
                cmocka_unit_test(test_conf_strv_appends_and_empty_resets),
                cmocka_unit_test(test_conf_string_replaces_and_empty_resets),
                cmocka_unit_test(test_conf_mode),
                cmocka_unit_test(test_conf_path_must_be_absolute),
                cmocka_unit_test(test_conf_unknown_key_names_line),
                cmocka_unit_test(test_conf_unknown_section_names_line),
                cmocka_unit_test(test_conf_syntax_errors),
                cmocka_unit_test(test_conf_nul_byte_is_an_error),
                cmocka_unit_test(test_conf_first_error_wins_and_stops),
                cmocka_unit_test(test_conf_systemd_semantics_not_inih_defaults),
                cmocka_unit_test(test_conf_crlf_and_bom),
                cmocka_unit_test(test_conf_long_line_is_an_error_not_truncated),
                cmocka_unit_test(test_conf_named_sections),
                cmocka_unit_test(test_conf_named_section_errors),
                cmocka_unit_test(test_conf_string_size_limit),
                cmocka_unit_test(test_conf_dropins_override_in_lexical_order),
                cmocka_unit_test(test_conf_dropin_error_names_dropin_file),
                cmocka_unit_test(test_conf_missing_main_file),
                cmocka_unit_test(test_conf_file_size_limit),
                cmocka_unit_test(test_conf_too_many_dropins),
        };
        return cmocka_run_group_tests(tests, test_tmpdir_setup, test_tmpdir_teardown);
}
