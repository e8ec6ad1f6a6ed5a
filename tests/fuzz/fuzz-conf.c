/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "shared/conf.h"
#include "shared/macro.h"
#include "shared/strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct FuzzConfig {
        char *name;
        char *path;
        bool enabled;
        int number;
        unsigned count;
        int64_t lifetime;
        char **names;
        mode_t mode;
} FuzzConfig;

static const ConfItem fuzz_table[] = {
        { "Certificate", "Name", conf_parse_string, offsetof(FuzzConfig, name), NULL },
        { "Certificate", "Path", conf_parse_path, offsetof(FuzzConfig, path), NULL },
        { "Certificate", "Enabled", conf_parse_bool, offsetof(FuzzConfig, enabled), NULL },
        { "Certificate", "Number", conf_parse_int, offsetof(FuzzConfig, number), NULL },
        { "Certificate", "Count", conf_parse_unsigned, offsetof(FuzzConfig, count), NULL },
        { "Certificate", "Lifetime", conf_parse_duration, offsetof(FuzzConfig, lifetime), NULL },
        { "Certificate", "Names", conf_parse_strv, offsetof(FuzzConfig, names), NULL },
        { "Deploy", "Mode", conf_parse_mode, offsetof(FuzzConfig, mode), NULL },
        {}
};

typedef struct FuzzProfile {
        char *name;
        char *ca;
        bool enabled;
} FuzzProfile;

typedef struct FuzzProfiles {
        FuzzProfile p[8];
        size_t n;
} FuzzProfiles;

static const ConfItem profile_table[] = {
        { "RAProfile", "CA", conf_parse_string, offsetof(FuzzProfile, ca), NULL },
        { "RAProfile", "Enabled", conf_parse_bool, offsetof(FuzzProfile, enabled), NULL },
        {}
};

static int profile_handler(const char *section, const char *name, void *userdata,
                           const ConfItem **ret_table, void **ret_target) {
        FuzzProfiles *ps = userdata;
        FuzzProfile *p;

        if (strcmp(section, "RAProfile") != 0)
                return -ENOENT;
        for (size_t i = 0; i < ps->n; i++)
                if (strcmp(ps->p[i].name, name) == 0) {
                        *ret_table = profile_table;
                        *ret_target = &ps->p[i];
                        return 0;
                }
        if (ps->n >= ELEMENTSOF(ps->p))
                return -E2BIG;
        p = &ps->p[ps->n];
        p->name = strdup(name);
        if (!p->name)
                return -ENOMEM;
        ps->n++;
        *ret_table = profile_table;
        *ret_target = p;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FuzzConfig c = {};
        FuzzProfiles ps = {};
        ConfError e = {};
        int r;

        r = conf_load_string("fuzz.conf", (const char *) data, size, fuzz_table, &c,
                             profile_handler, &ps, &e);
        /* Every failure is explained, with the file name. */
        if (r < 0 && (!e.message || strncmp(e.message, "fuzz.conf:", 10) != 0) && r != -ENOMEM)
                abort();
        if (r >= 0 && e.message)
                abort();
        if (c.path && c.path[0] != '/')
                abort();
        if (c.mode > 07777)
                abort();

        conf_error_done(&e);
        free(c.name);
        free(c.path);
        strv_free(c.names);
        for (size_t i = 0; i < ps.n; i++) {
                free(ps.p[i].name);
                free(ps.p[i].ca);
        }
        return 0;
}
