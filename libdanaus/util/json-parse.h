/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Strict JSON reading for files and requests from outside (pool definitions,
 * the policy): every object is checked against the keys it may hold, every
 * field's type is checked, and errors are one line naming the key with its
 * full path ("mounts[0].branches[1].mode: must be \"rw\" or \"ro\"").
 */
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct JParse {
        char *err;
        size_t n_err;
} JParse;

/* Writes "key: message" into p->err and returns -EINVAL. */
__attribute__((format(printf, 3, 4))) int jparse_fail(JParse *p, const char *key, const char *fmt,
                                                      ...);
/* "parent.key" (or "key" at the top); a too long path is cut. */
void jparse_key_join(char *buf, size_t size, const char *parent, const char *key);
/* Refuses keys not in allowed (NULL-terminated). */
int jparse_check_keys(JParse *p, struct json_object *obj, const char *where,
                      const char *const *allowed);
/* *objp = NULL when absent (or null) and not required. */
int jparse_get_object(JParse *p, struct json_object *parent, const char *where, const char *key,
                      bool required, struct json_object **objp);
/* A string without NUL, shorter than PATH_MAX, strdup'ed; NULL when absent. */
int jparse_get_string(JParse *p, struct json_object *parent, const char *where, const char *key,
                      bool required, char **strp);
/* A size: a positive number of bytes, or a string with a K/M/G/T suffix;
 * 0 when absent. */
int jparse_get_size(JParse *p, struct json_object *parent, const char *where, const char *key,
                    uint64_t *sizep);
/* Parses a whole NUL-terminated text (trailing data refused); errors as
 * "line N: invalid JSON (...)". */
int jparse_text(const char *text, struct json_object **rootp, char *err, size_t n_err);
/* Reads a regular file of at most max bytes without NUL bytes into a
 * malloc'ed string; errors ("cannot open: ...") in err. */
int jparse_read_file(const char *file, size_t max, char **textp, char *err, size_t n_err);
