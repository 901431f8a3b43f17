/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Strict JSON reading: key lists, typed getters and errors that name the key.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/json-parse.h"
#include "util/size.h"

int jparse_fail(JParse *p, const char *key, const char *fmt, ...)
{
        va_list ap;
        int n = snprintf(p->err, p->n_err, "%s: ", key);

        if (n >= 0 && (size_t)n < p->n_err) {
                va_start(ap, fmt);
                vsnprintf(p->err + n, p->n_err - (size_t)n, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

/* Key paths are short (bounded by the schema and array sizes); a longer one
 * is cut, which only shortens an error message. */
void jparse_key_join(char *buf, size_t size, const char *parent, const char *key)
{
        int n;

        if (parent && *parent)
                n = snprintf(buf, size, "%s.%s", parent, key);
        else
                n = snprintf(buf, size, "%s", key);
        if (n < 0)
                buf[0] = '\0';
}

int jparse_check_keys(JParse *p, struct json_object *obj, const char *where,
                      const char *const *allowed)
{
        json_object_object_foreach(obj, key, val)
        {
                const char *const *a;
                char full[256];

                (void)val;
                for (a = allowed; *a; a++)
                        if (strcmp(*a, key) == 0)
                                break;
                if (!*a) {
                        jparse_key_join(full, sizeof(full), where, key);
                        return jparse_fail(p, full, "unknown key");
                }
        }
        return 0;
}

int jparse_get_object(JParse *p, struct json_object *parent, const char *where, const char *key,
                      bool required, struct json_object **objp)
{
        struct json_object *o = NULL;
        char full[256];

        jparse_key_join(full, sizeof(full), where, key);
        if (!json_object_object_get_ex(parent, key, &o) || json_object_is_type(o, json_type_null)) {
                *objp = NULL;
                return required ? jparse_fail(p, full, "missing") : 0;
        }
        if (!json_object_is_type(o, json_type_object))
                return jparse_fail(p, full, "must be an object");
        *objp = o;
        return 0;
}

int jparse_get_string(JParse *p, struct json_object *parent, const char *where, const char *key,
                      bool required, char **strp)
{
        struct json_object *o = NULL;
        char full[256];
        const char *s;

        jparse_key_join(full, sizeof(full), where, key);
        *strp = NULL;
        if (!json_object_object_get_ex(parent, key, &o) || json_object_is_type(o, json_type_null))
                return required ? jparse_fail(p, full, "missing") : 0;
        if (!json_object_is_type(o, json_type_string))
                return jparse_fail(p, full, "must be a string");
        s = json_object_get_string(o);
        if (strlen(s) != (size_t)json_object_get_string_len(o))
                return jparse_fail(p, full, "must not contain NUL");
        if (strlen(s) >= PATH_MAX)
                return jparse_fail(p, full, "too long");
        *strp = strdup(s);
        return *strp ? 0 : -ENOMEM;
}

int jparse_get_size(JParse *p, struct json_object *parent, const char *where, const char *key,
                    uint64_t *sizep)
{
        struct json_object *o = NULL;
        char full[256];

        jparse_key_join(full, sizeof(full), where, key);
        *sizep = 0;
        if (!json_object_object_get_ex(parent, key, &o) || json_object_is_type(o, json_type_null))
                return 0;
        if (json_object_is_type(o, json_type_int)) {
                int64_t v = json_object_get_int64(o);

                if (v <= 0)
                        return jparse_fail(p, full, "must be a positive size");
                *sizep = (uint64_t)v;
                return 0;
        }
        if (!json_object_is_type(o, json_type_string))
                return jparse_fail(p, full, "must be a size such as \"4G\"");
        if (size_parse(json_object_get_string(o), sizep) < 0 || *sizep == 0)
                return jparse_fail(p, full,
                                   "\"%s\" is not a size (bytes, or with a K/M/G/T suffix)",
                                   json_object_get_string(o));
        return 0;
}

int jparse_text(const char *text, struct json_object **rootp, char *err, size_t n_err)
{
        struct json_tokener *tok;
        struct json_object *root;

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, text, (int)strlen(text));
        if (!root || json_tokener_get_error(tok) != json_tokener_success ||
            text[tok->char_offset + strspn(text + tok->char_offset, " \t\r\n")] != '\0') {
                enum json_tokener_error e = json_tokener_get_error(tok);
                size_t line = 1, off = tok->char_offset;

                for (size_t i = 0; i < off && text[i]; i++)
                        line += text[i] == '\n';
                snprintf(err, n_err, "line %zu: invalid JSON (%s)", line,
                         e == json_tokener_success    ? "trailing data"
                         : e == json_tokener_continue ? "unexpected end of input"
                                                      : json_tokener_error_desc(e));
                json_object_put(root);
                json_tokener_free(tok);
                return -EINVAL;
        }
        json_tokener_free(tok);
        *rootp = root;
        return 0;
}

int jparse_read_file(const char *file, size_t max, char **textp, char *err, size_t n_err)
{
        struct stat st;
        char *text;
        ssize_t n;
        size_t off = 0;
        int fd, r;

        fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                snprintf(err, n_err, "cannot open: %s", strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
                close(fd);
                snprintf(err, n_err, "not a regular file of at most %zu bytes", max);
                return -EINVAL;
        }
        text = malloc((size_t)st.st_size + 1);
        if (!text) {
                close(fd);
                return -ENOMEM;
        }
        while (off < (size_t)st.st_size) {
                n = read(fd, text + off, (size_t)st.st_size - off);
                if (n <= 0)
                        break;
                off += (size_t)n;
        }
        close(fd);
        text[off] = '\0';
        if (strlen(text) != off) {
                free(text);
                snprintf(err, n_err, "contains a NUL byte");
                return -EINVAL;
        }
        *textp = text;
        return 0;
}
