/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shared/macro.h"
#include "shared/strv.h"

size_t strv_length(char *const *l) {
        size_t n = 0;

        if (!l)
                return 0;
        while (l[n])
                n++;
        return n;
}

bool strv_contains(char *const *l, const char *s) {
        for (char *const *i = l; i && *i; i++)
                if (strcmp(*i, s) == 0)
                        return true;
        return false;
}

int strv_consume(char ***l, char *s) {
        size_t n = strv_length(*l);
        char **c;

        if (!s)
                return -ENOMEM;
        c = reallocarray(*l, n + 2, sizeof(char *));
        if (!c) {
                free(s);
                return -ENOMEM;
        }
        c[n] = s;
        c[n + 1] = NULL;
        *l = c;
        return 0;
}

int strv_extend(char ***l, const char *s) {
        return strv_consume(l, strdup(s));
}

char **strv_free(char **l) {
        strv_freep(&l);
        return NULL;
}

char **strv_copy(char *const *l) {
        size_t n = strv_length(l);
        char **c = calloc(n + 1, sizeof(char *));

        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                c[i] = strdup(l[i]);
                if (!c[i])
                        return strv_free(c);
        }
        return c;
}

int strv_split(const char *s, const char *separators, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        const char *p = s;

        /* Always return a vector, possibly empty, so callers can tell "no words" from failure. */
        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        while (*p) {
                size_t skip = strspn(p, separators), len;
                p += skip;
                len = strcspn(p, separators);
                if (len == 0)
                        break;
                if (strv_consume(&l, strndup(p, len)) < 0)
                        return -ENOMEM;
                p += len;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

char *strv_join(char *const *l, const char *separator) {
        size_t n = 0, sep = strlen(separator);
        char *r, *p;

        for (char *const *i = l; i && *i; i++)
                n += strlen(*i) + sep;
        r = malloc(n + 1);
        if (!r)
                return NULL;
        p = r;
        for (char *const *i = l; i && *i; i++) {
                if (i != l)
                        p = stpcpy(p, separator);
                p = stpcpy(p, *i);
        }
        *p = 0;
        return r;
}

static int cmp_strp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

void strv_sort(char **l) {
        qsort(l, strv_length(l), sizeof(char *), cmp_strp);
}

bool strv_equal_unordered(char *const *a, char *const *b) {
        _cleanup_(strv_freep) char **x = NULL, **y = NULL;
        size_t n = strv_length(a);

        if (n != strv_length(b))
                return false;
        if (n == 0)
                return true;
        x = strv_copy(a);
        y = strv_copy(b);
        if (!x || !y)
                return false;
        strv_sort(x);
        strv_sort(y);
        for (size_t i = 0; i < n; i++)
                if (strcmp(x[i], y[i]) != 0)
                        return false;
        return true;
}
