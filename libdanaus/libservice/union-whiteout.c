/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Union Whiteouts
 *
 * The OCI image-layer convention, so an unpacked layer is a branch as it is:
 *   dir/.wh.<name>       hides <name> in every branch below this one;
 *   dir/.wh..wh..opq     hides everything below this branch in dir.
 * The union writes whiteouts as empty regular files (mode 0, owned by root)
 * in the top branch only. Any name starting ".wh." belongs to the union: it
 * is never listed or found, and cannot be created through the union
 * (-EINVAL), or a tenant could hide files from itself by accident, or fake
 * our temporaries (".wh..wh..tmp.*", see union-copyup.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libservice/union-private.h"

bool union_name_hidden(const char *name)
{
        return strncmp(name, UNION_WH_PREFIX, UNION_WH_PREFIX_LEN) == 0;
}

bool union_path_hidden(const char *path)
{
        const char *p = path;

        while (*p) {
                if (union_name_hidden(p))
                        return true;
                p = strchr(p, '/');
                if (!p)
                        break;
                p++;
        }
        return false;
}

int union_whiteout_path(char *buf, size_t size, const char *dir, const char *name)
{
        char wh[NAME_MAX + 1];
        int r;

        r = snprintf(wh, sizeof(wh), UNION_WH_PREFIX "%s", name);
        if (r < 0 || (size_t)r >= sizeof(wh))
                return -ENAMETOOLONG;
        return ls_path_join(buf, size, dir, wh);
}

static int union_exists(Union *u, int b, const char *path)
{
        struct stat st;
        int r = union_bops(u, b)->getattr(union_branch(u, b), path, &st);

        if (r == 0)
                return 1;
        return r == -ENOENT ? 0 : r;
}

int union_whiteout_exists(Union *u, int b, const char *dir, const char *name)
{
        char path[PATH_MAX];
        int r = union_whiteout_path(path, sizeof(path), dir, name);

        if (r == -ENAMETOOLONG)
                return 0; /* no whiteout can exist for such a name */
        if (r < 0)
                return r;
        return union_exists(u, b, path);
}

static int union_marker_create(Union *u, const char *path)
{
        static const LsCred root = {0, 0};
        LsFile *f;
        int r;

        r = union_bops(u, 0)->open(union_branch(u, 0), path,
                                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0, &root, &f);
        if (r == -EEXIST)
                return 0;
        if (r < 0)
                return r;
        return f->inst->ops->release(f);
}

int union_whiteout_create(Union *u, const char *dir, const char *name)
{
        char path[PATH_MAX];
        int r = union_whiteout_path(path, sizeof(path), dir, name);

        if (r < 0)
                return r;
        /* a whiteout changes where names resolve (union-lookcache.c) */
        union_ns_begin(u);
        r = union_marker_create(u, path);
        union_ns_end(u);
        return r;
}

int union_whiteout_remove(Union *u, const char *dir, const char *name)
{
        char path[PATH_MAX];
        int r = union_whiteout_path(path, sizeof(path), dir, name);

        if (r < 0)
                return r == -ENAMETOOLONG ? 0 : r;
        union_ns_begin(u);
        r = union_bops(u, 0)->unlink(union_branch(u, 0), path);
        union_ns_end(u);
        return r == -ENOENT ? 0 : r;
}

int union_opaque_exists(Union *u, int b, const char *path)
{
        char buf[PATH_MAX];
        int r = ls_path_join(buf, sizeof(buf), path, UNION_WH_OPAQUE);

        if (r < 0)
                return r;
        return union_exists(u, b, buf);
}

int union_opaque_create(Union *u, const char *path)
{
        char buf[PATH_MAX];
        int r = ls_path_join(buf, sizeof(buf), path, UNION_WH_OPAQUE);

        if (r < 0)
                return r;
        union_ns_begin(u);
        r = union_marker_create(u, buf);
        union_ns_end(u);
        return r;
}

typedef struct NameList {
        char **v;
        size_t n, cap;
        bool only_hidden; /* collect only ".wh." names; others set `other` */
        bool other;
} NameList;

static void name_list_clear(NameList *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        l->v = NULL;
        l->n = l->cap = 0;
}

static int name_list_fill(void *ctx, const char *name, ino_t ino, unsigned char d_type)
{
        NameList *l = ctx;

        if (l->only_hidden && !union_name_hidden(name)) {
                l->other = true;
                return 0;
        }
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                char **v = realloc(l->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n] = strdup(name);
        if (!l->v[l->n])
                return -ENOMEM;
        l->n++;
        return 0;
}

/* Removes the listed names of directory path in the top branch, each with
 * everything beneath it. */
static int union_top_remove_names(Union *u, const char *path, NameList *l)
{
        char *child = malloc(PATH_MAX);
        int r = 0;

        if (!child)
                return -ENOMEM;
        for (size_t i = 0; i < l->n && r >= 0; i++) {
                r = ls_path_join(child, PATH_MAX, path, l->v[i]);
                if (r >= 0)
                        r = union_top_remove_tree(u, child);
        }
        free(child);
        return r < 0 ? r : 0;
}

int union_top_clean_dir(Union *u, const char *path)
{
        NameList l = {.only_hidden = true};
        int r;

        r = union_bops(u, 0)->readdir(union_branch(u, 0), path, name_list_fill, &l);
        if (r >= 0 && l.other)
                r = -ENOTEMPTY; /* a real entry: the caller's emptiness check raced */
        if (r >= 0)
                r = union_top_remove_names(u, path, &l);
        name_list_clear(&l);
        return r;
}

int union_top_remove_tree(Union *u, const char *path)
{
        LsInstance *top = union_branch(u, 0);
        NameList l = {0};
        struct stat st;
        int r;

        r = top->ops->getattr(top, path, &st);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        if (!S_ISDIR(st.st_mode)) {
                r = top->ops->unlink(top, path);
                union_origin_forget(u, st.st_ino);
                return r == -ENOENT ? 0 : r;
        }
        /* depth is bounded by PATH_MAX; each level keeps one heap buffer */
        r = top->ops->readdir(top, path, name_list_fill, &l);
        if (r >= 0)
                r = union_top_remove_names(u, path, &l);
        name_list_clear(&l);
        if (r < 0)
                return r;
        r = top->ops->rmdir(top, path);
        return r == -ENOENT ? 0 : r;
}
