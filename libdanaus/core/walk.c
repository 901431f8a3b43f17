/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Path Walk: for fronts that receive paths (the fast path), resolved as the
 * kernel's path walk does (fs/namei.c): component by component through the
 * node table, each a one-name lookup (negative entries first), symlinks
 * followed in place, ".." through the directory's parent node. No path
 * string is ever built: a symlink's target is read into a buffer of its own
 * and walked from a stack of "what is left" pointers (the kernel's
 * nd->stack), so a walk that starts at a node deeper than PATH_MAX, or
 * follows 40 links, needs no more than one target buffer per link.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/core-private.h"

typedef struct WalkLevel {
        char *buf;        /* a symlink's target being walked */
        const char *rest; /* what was left after the link, one level down */
} WalkLevel;

typedef struct Walk {
        CoreFront *front;
        const CoreCred *cred;
        CoreNode *root;
        CoreNode *cur; /* internal reference */
        struct stat st;
        bool st_valid;
        const char *p; /* the rest of the string being walked */
        WalkLevel stack[CORE_MAXSYMLINKS];
        unsigned depth, n_links;
} Walk;

static const char *skip_slashes(const char *p)
{
        while (*p == '/')
                p++;
        return p;
}

/* Whether nothing but slashes is left after q, at every level; *trailing:
 * whether any slash is (the last component must be a directory). */
static bool nothing_after(const Walk *w, const char *q, bool *trailing)
{
        const char *e = skip_slashes(q);
        unsigned i;

        *trailing = e != q;
        if (*e)
                return false;
        for (i = w->depth; i-- > 0;) {
                const char *r = w->stack[i].rest;

                e = skip_slashes(r);
                if (*e)
                        return false;
                if (e != r)
                        *trailing = true;
        }
        return true;
}

static void walk_move(Walk *w, CoreNode *to, const struct stat *st)
{
        core_node_unref(w->cur);
        w->cur = to;
        w->st_valid = st != NULL;
        if (st)
                w->st = *st;
}

static int walk_stat(Walk *w)
{
        int r;

        if (w->st_valid)
                return 0;
        r = core_getattr(w->front, w->cur, &w->st);
        w->st_valid = r >= 0;
        return r;
}

/* Search permission on the current directory, for fronts that check. */
static int walk_may_search(Walk *w)
{
        int r;

        if (!front_checks(w->front))
                return 0;
        r = walk_stat(w);
        if (r >= 0 && !S_ISDIR(w->st.st_mode))
                r = -ENOTDIR;
        return r < 0 ? r : node_permission(w->cur, &w->st, w->cred, X_OK);
}

/* Continues in link (a symlink node) with its target. */
static int walk_follow(Walk *w, CoreNode *link, const char *after)
{
        char *buf;
        ssize_t n;

        if (++w->n_links > CORE_MAXSYMLINKS)
                return -ELOOP;
        buf = malloc(PATH_MAX);
        if (!buf)
                return -ENOMEM;
        n = node_ops(link)->readlink(link->ls, buf, PATH_MAX - 1);
        if (n <= 0 || n >= PATH_MAX - 1) {
                free(buf);
                return n < 0 ? (int)n : (n == 0 ? -ENOENT : -ENAMETOOLONG);
        }
        buf[n] = '\0';
        w->stack[w->depth++] = (WalkLevel){.buf = buf, .rest = after};
        w->p = buf;
        if (buf[0] == '/') {
                if (!w->root)
                        return -EXDEV;
                walk_move(w, core_node_ref(w->root), NULL);
        }
        return 0;
}

static void walk_end(Walk *w)
{
        while (w->depth > 0)
                free(w->stack[--w->depth].buf);
        core_node_unref(w->cur);
        w->cur = NULL;
}

static int walk_run(Walk *w, unsigned flags, char *last)
{
        bool want_dir = flags & CORE_WALK_DIRECTORY;
        int r;

        for (;;) {
                const char *name, *after;
                bool is_last, trailing;
                char comp[NAME_MAX + 1];
                struct stat cst;
                CoreNode *child;
                size_t len;

                w->p = skip_slashes(w->p);
                if (!*w->p) {
                        if (w->depth == 0)
                                break;
                        /* the end of a link's target: back to what followed it */
                        w->depth--;
                        free(w->stack[w->depth].buf);
                        w->p = w->stack[w->depth].rest;
                        continue;
                }
                name = w->p;
                len = strcspn(name, "/");
                after = name + len;
                w->p = after;
                if (len > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(comp, name, len);
                comp[len] = '\0';
                is_last = nothing_after(w, after, &trailing);
                if (is_last && trailing)
                        want_dir = true;
                if (is_last && (flags & CORE_WALK_PARENT) &&
                    (!strcmp(comp, ".") || !strcmp(comp, "..")))
                        return -EINVAL;
                if (!strcmp(comp, "."))
                        continue;
                if (!strcmp(comp, "..")) {
                        CoreNode *parent;

                        r = walk_may_search(w);
                        if (r < 0)
                                return r;
                        if (w->cur == w->root)
                                continue; /* ".." of the root is the root */
                        parent = node_get_parent(w->cur);
                        if (!parent)
                                return -EXDEV; /* leaves what the core serves */
                        walk_move(w, parent, NULL);
                        continue;
                }
                if (is_last && (flags & CORE_WALK_PARENT) && !(flags & CORE_WALK_FOLLOW)) {
                        memcpy(last, comp, len + 1);
                        return 0;
                }
                r = walk_may_search(w);
                if (r < 0)
                        return r;
                if (core_node_type(w->cur) && !S_ISDIR(core_node_type(w->cur)))
                        return -ENOTDIR;
                r = name_lookup(w->cur, comp, &child, &cst);
                if (is_last && (flags & CORE_WALK_PARENT)) {
                        /* O_CREAT: a dangling symlink's target is made, so
                         * follow it to the name to create */
                        if (r >= 0 && S_ISLNK(cst.st_mode) && !trailing) {
                                r = walk_follow(w, child, after);
                                core_node_unref(child);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        core_node_unref(r >= 0 ? child : NULL);
                        if (r < 0 && r != -ENOENT)
                                return r;
                        memcpy(last, comp, len + 1);
                        return 0;
                }
                if (r < 0)
                        return r;
                if (S_ISLNK(cst.st_mode) && (!is_last || (flags & CORE_WALK_FOLLOW) || trailing)) {
                        r = walk_follow(w, child, after);
                        core_node_unref(child);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!is_last && !S_ISDIR(cst.st_mode)) {
                        core_node_unref(child);
                        return -ENOTDIR;
                }
                walk_move(w, child, &cst);
        }
        if (flags & CORE_WALK_PARENT)
                return -ENOENT; /* no last name: "/" or only "."s and ".."s */
        r = walk_stat(w);
        if (r >= 0 && want_dir && !S_ISDIR(w->st.st_mode))
                r = -ENOTDIR;
        return r;
}

int core_walk(CoreFront *front, const CoreCred *cred, CoreNode *root, CoreNode *start,
              const char *path, unsigned flags, CoreNode **nodep, char *last, struct stat *stp)
{
        Walk w = {.front = front, .cred = cred, .root = root};
        int r;

        if (!path || ((flags & CORE_WALK_PARENT) && !last))
                return -EINVAL;
        if (strnlen(path, PATH_MAX) >= PATH_MAX)
                return -ENAMETOOLONG;
        if (!*path)
                return -ENOENT;
        if (front_checks(front) && !cred)
                return -EINVAL;
        if (path[0] == '/') {
                if (!root)
                        return -EXDEV;
                w.cur = core_node_ref(root);
        } else {
                if (!start)
                        return -EINVAL;
                w.cur = core_node_ref(start);
        }
        w.p = path;
        r = walk_run(&w, flags, last);
        if (r >= 0 && stp) {
                r = walk_stat(&w);
                if (r >= 0)
                        *stp = w.st;
        }
        if (r >= 0) {
                *nodep = w.cur;
                w.cur = NULL;
        }
        walk_end(&w);
        return r;
}
