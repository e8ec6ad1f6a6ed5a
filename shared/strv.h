/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* NULL-terminated string vectors (char **). NULL is a valid empty vector. */

#include <stdbool.h>
#include <stddef.h>

size_t strv_length(char *const *l);
bool strv_contains(char *const *l, const char *s);
/* Appends a copy of s. -ENOMEM. */
int strv_extend(char ***l, const char *s);
/* Appends s, taking ownership (on failure s is freed). */
int strv_consume(char ***l, char *s);
char **strv_copy(char *const *l);
char **strv_free(char **l);
/* Splits on any of the separators, dropping empty words. */
int strv_split(const char *s, const char *separators, char ***ret);
/* Joins with separator; "" for an empty vector. */
char *strv_join(char *const *l, const char *separator);
void strv_sort(char **l);
/* true if both have the same strings, order ignored (the vectors are not modified). */
bool strv_equal_unordered(char *const *a, char *const *b);
