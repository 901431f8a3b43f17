/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * danausctl output and input helpers: tables, sizes, mount specs, files.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "danausctl.h"
#include "util/json-parse.h"

#define CTL_TABLE_COLUMNS_MAX 16
#define CTL_FILE_MAX          (1 << 20)

struct CtlTable {
        unsigned n_columns;
        size_t n_rows, n_alloc;
        char **cells; /* n_rows + 1 (headers) by n_columns */
        size_t width[CTL_TABLE_COLUMNS_MAX];
};

CtlTable *ctl_table_new(unsigned n_columns, const char *const *headers)
{
        CtlTable *t;

        if (n_columns == 0 || n_columns > CTL_TABLE_COLUMNS_MAX)
                return NULL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->n_columns = n_columns;
        ctl_table_add(t, headers);
        return t;
}

void ctl_table_add(CtlTable *t, const char *const *cells)
{
        if (!t)
                return;
        if (t->n_rows == t->n_alloc) {
                size_t n = t->n_alloc ? t->n_alloc * 2 : 16;
                char **c = realloc(t->cells, n * t->n_columns * sizeof(*c));

                if (!c)
                        return;
                t->cells = c;
                t->n_alloc = n;
        }
        for (unsigned i = 0; i < t->n_columns; i++) {
                const char *v = cells[i] ? cells[i] : "-";
                char *copy = strdup(v);
                size_t len = strlen(v);

                t->cells[t->n_rows * t->n_columns + i] = copy;
                if (len > t->width[i])
                        t->width[i] = len;
        }
        t->n_rows++;
}

void ctl_table_print(CtlTable *t)
{
        if (!t)
                return;
        for (size_t r = 0; r < t->n_rows; r++) {
                for (unsigned i = 0; i < t->n_columns; i++) {
                        const char *v = t->cells[r * t->n_columns + i];

                        if (i + 1 < t->n_columns)
                                printf("%-*s  ", (int)t->width[i], v ? v : "");
                        else
                                printf("%s\n", v ? v : "");
                }
        }
        for (size_t k = 0; k < t->n_rows * t->n_columns; k++)
                free(t->cells[k]);
        free(t->cells);
        free(t);
}

void ctl_format_size(int64_t v, char *buf, size_t n)
{
        static const char units[] = "KMGTP";
        double d = (double)v;
        int u = -1;

        if (v < 1024) {
                snprintf(buf, n, "%" PRId64, v);
                return;
        }
        while (d >= 1024 && u < 4) {
                d /= 1024;
                u++;
        }
        if (d == (double)(int64_t)d)
                snprintf(buf, n, "%" PRId64 "%c", (int64_t)d, units[u]);
        else
                snprintf(buf, n, "%.1f%c", d, units[u]);
}

/* "MOUNTPOINT=BRANCH[:rw|:ro][,BRANCH...]": the first branch is rw unless
 * it says :ro, the others ro. */
json_object *ctl_mount_from_spec(const char *spec, char *err, size_t n_err)
{
        const char *eq = strchr(spec, '=');
        json_object *m, *branches;
        char *list, *save = NULL;
        bool first = true;

        if (!eq || eq == spec || !eq[1]) {
                snprintf(err, n_err, "--mount \"%s\": expected MOUNTPOINT=BRANCH[,BRANCH...]",
                         spec);
                return NULL;
        }
        m = json_object_new_object();
        branches = json_object_new_array();
        list = strdup(eq + 1);
        if (!m || !branches || !list) {
                json_object_put(m);
                json_object_put(branches);
                free(list);
                snprintf(err, n_err, "out of memory");
                return NULL;
        }
        json_object_object_add(m, "mountpoint", json_object_new_string_len(spec, (int)(eq - spec)));
        for (char *b = strtok_r(list, ",", &save); b; b = strtok_r(NULL, ",", &save)) {
                json_object *o = json_object_new_object();
                const char *mode = first ? "rw" : "ro";
                size_t len = strlen(b);

                if (len > 3 &&
                    (strcmp(b + len - 3, ":rw") == 0 || strcmp(b + len - 3, ":ro") == 0)) {
                        mode = b + len - 2;
                        b[len - 3] = '\0';
                }
                json_object_object_add(o, "path", json_object_new_string(b));
                json_object_object_add(o, "mode", json_object_new_string(mode));
                json_object_array_add(branches, o);
                first = false;
        }
        free(list);
        json_object_object_add(m, "branches", branches);
        return m;
}

json_object *ctl_read_json_file(const char *path, char *err, size_t n_err)
{
        json_object *o = NULL;
        char *text = NULL;

        if (jparse_read_file(path, CTL_FILE_MAX, &text, err, n_err) < 0)
                return NULL;
        if (jparse_text(text, &o, err, n_err) < 0)
                o = NULL;
        free(text);
        return o;
}
