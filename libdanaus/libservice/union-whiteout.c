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
 * our temporaries (".wh..wh..tmp.*").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libservice/union-private.h"

bool union_name_hidden(const char *name)
{
        return strncmp(name, UNION_WH_PREFIX, UNION_WH_PREFIX_LEN) == 0;
}

bool union_xattr_private(const char *name)
{
        return strncmp(name, UNION_XATTR_PREFIX, UNION_XATTR_PREFIX_LEN) == 0;
}

int union_whiteout_name(char *buf, size_t size, const char *name)
{
        int r = snprintf(buf, size, UNION_WH_PREFIX "%s", name);

        if (r < 0 || (size_t)r >= size || (size_t)r > NAME_MAX)
                return -ENAMETOOLONG;
        return 0;
}

int union_exists(LsNode *dir, const char *name)
{
        LsNode *h;
        int r = bops(dir)->lookup(dir, name, &h, NULL);

        if (r == 0) {
                ls_node_unref(h);
                return 1;
        }
        return r == -ENOENT ? 0 : r;
}

int union_whiteout_exists(LsNode *dir, const char *name)
{
        char wh[NAME_MAX + 1];

        if (union_whiteout_name(wh, sizeof(wh), name) < 0)
                return 0; /* no whiteout can exist for such a name */
        return union_exists(dir, wh);
}

int union_opaque_exists(LsNode *dir)
{
        return union_exists(dir, UNION_WH_OPAQUE);
}

int union_marker_create(LsNode *dir, const char *name)
{
        static const LsCred root = {0, 0};
        LsFile *f;
        LsNode *h;
        int r;

        r = bops(dir)->create(dir, name, O_WRONLY | O_CREAT | O_EXCL, 0, &root, &h, NULL, &f);
        if (r == -EEXIST)
                return 0;
        if (r < 0)
                return r;
        ls_node_unref(h);
        return ls_ops(f->node)->release(f);
}

int union_whiteout_create(LsNode *topdir, const char *name)
{
        char wh[NAME_MAX + 1];
        int r = union_whiteout_name(wh, sizeof(wh), name);

        if (r < 0)
                return r;
        return union_marker_create(topdir, wh);
}

int union_whiteout_remove(LsNode *topdir, const char *name)
{
        char wh[NAME_MAX + 1];
        int r = union_whiteout_name(wh, sizeof(wh), name);

        if (r < 0)
                return 0;
        r = bops(topdir)->unlink(topdir, wh);
        return r == -ENOENT ? 0 : r;
}

int union_tmp_name(Union *u, char *buf, size_t size)
{
        unsigned long long n = (unsigned long long)atomic_fetch_add(&u->tmp_counter, 1);
        int r = snprintf(buf, size, UNION_TMP_PREFIX "%d.%lx.%llu", (int)getpid(),
                         (unsigned long)(uintptr_t)u, n);

        return r < 0 || (size_t)r >= size ? -ENAMETOOLONG : 0;
}

int union_lower_has(UnionNode *dir, const char *name)
{
        UnionLayer *pl;
        unsigned pn;
        int r;

        r = union_node_layers(dir, &pl, &pn);
        if (r < 0)
                return r;
        r = 0;
        for (unsigned i = 0; i < pn; i++) {
                if (pl[i].branch == 0)
                        continue;
                r = union_exists(pl[i].node, name);
                if (r != 0)
                        break;
                r = union_whiteout_exists(pl[i].node, name);
                if (r != 0) {
                        r = r < 0 ? r : 0;
                        break;
                }
        }
        union_layers_free(pl, pn);
        return r;
}

/* Empties top directory handle d. Depth is bounded by the heap only. */
static int remove_contents(LsNode *d)
{
        UnionNames l = {0};
        int r;

        r = bops(d)->readdir(d, union_names_fill, &l);
        for (size_t i = 0; r >= 0 && i < l.n; i++)
                r = union_top_remove_tree(d, l.v[i]);
        union_names_free(l.v, l.n);
        return r;
}

int union_top_remove_tree(LsNode *dir, const char *name)
{
        struct stat st;
        LsNode *h;
        int r;

        r = bops(dir)->lookup(dir, name, &h, &st);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        if (S_ISDIR(st.st_mode)) {
                r = remove_contents(h);
                if (r >= 0)
                        r = bops(dir)->rmdir(dir, name);
        } else {
                r = bops(dir)->unlink(dir, name);
        }
        ls_node_unref(h);
        return r == -ENOENT ? 0 : r;
}

void union_names_free(char **names, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}
