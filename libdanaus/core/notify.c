/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Change Notifications: after a change, every front that holds the node (or
 * directory) concerned, except the one the change came through, is told
 * (CoreFrontOps). The fronts are read from the node's slots under its lock,
 * each marked active so that core_front_free() waits for its callbacks; the
 * callbacks then run with no lock held. A node no front holds costs one
 * atomic load. Also the entry points for changes the backend reports.
 */
#include <stdlib.h>

#include "core/core-private.h"

#define LIST_INLINE 32

typedef struct FrontList {
        CoreFront **v;
        size_t n;
        CoreFront *inline_v[LIST_INLINE];
} FrontList;

/* The fronts holding n, origin excluded, each marked active. */
static void list_collect(CoreNode *n, CoreFront *origin, FrontList *l)
{
        size_t cap = LIST_INLINE;
        unsigned i;

        l->v = l->inline_v;
        l->n = 0;
        if (atomic_load_explicit(&n->n_fronts, memory_order_relaxed) == 0)
                return;
        pthread_mutex_lock(&n->lock);
        while (n->n_slots > cap) {
                /* many fronts (one per mount sharing the node): room first */
                size_t want = n->n_slots;
                CoreFront **v;

                pthread_mutex_unlock(&n->lock);
                v = malloc(want * sizeof(*v));
                pthread_mutex_lock(&n->lock);
                if (!v)
                        break; /* the first cap fronts are told, the rest not */
                if (l->v != l->inline_v)
                        free(l->v);
                l->v = v;
                cap = want;
        }
        for (i = 0; i < n->n_slots && l->n < cap; i++) {
                CoreFront *f = n->slots[i].front;

                if (f == origin)
                        continue;
                /* seq_cst, paired with core_front_free(): either it sees
                 * this call active, or this sees it closing */
                atomic_fetch_add(&f->n_active, 1);
                if (atomic_load(&f->closing)) {
                        atomic_fetch_sub(&f->n_active, 1);
                        continue;
                }
                l->v[l->n++] = f;
        }
        pthread_mutex_unlock(&n->lock);
}

static void list_release(FrontList *l)
{
        size_t i;

        for (i = 0; i < l->n; i++)
                atomic_fetch_sub(&l->v[i]->n_active, 1);
        if (l->v != l->inline_v)
                free(l->v);
}

static bool list_has(const FrontList *l, const CoreFront *f)
{
        size_t i;

        for (i = 0; i < l->n; i++)
                if (l->v[i] == f)
                        return true;
        return false;
}

void notify_inode(CoreNode *node, CoreFront *origin, off_t off, off_t len)
{
        FrontList l;
        size_t i;

        list_collect(node, origin, &l);
        for (i = 0; i < l.n; i++)
                if (l.v[i]->ops.inval_inode)
                        l.v[i]->ops.inval_inode(l.v[i]->ctx, node, off, len);
        list_release(&l);
}

void notify_entry(CoreNode *dir, const char *name, CoreNode *child, bool deleted, CoreFront *origin)
{
        FrontList d, c = {.n = 0};
        size_t i;

        list_collect(dir, origin, &d);
        if (child)
                list_collect(child, origin, &c);
        else
                c.v = c.inline_v;
        for (i = 0; i < d.n; i++) {
                CoreFront *f = d.v[i];

                if (deleted && list_has(&c, f)) {
                        if (f->ops.delete_entry)
                                f->ops.delete_entry(f->ctx, dir, child, name);
                } else if (f->ops.inval_entry) {
                        f->ops.inval_entry(f->ctx, dir, name);
                }
        }
        /* the child's link count (and ctime) moved */
        for (i = 0; i < c.n; i++) {
                CoreFront *f = c.v[i];

                if ((!deleted || !list_has(&d, f)) && f->ops.inval_inode)
                        f->ops.inval_inode(f->ctx, child, -1, 0);
        }
        list_release(&c);
        list_release(&d);
}

void core_notify_inval_inode(Core *core, LsNode *ls, off_t off, off_t len)
{
        CoreNode *n = node_find(core, ls);

        if (!n)
                return;
        node_sec_changed(n);
        if (S_ISDIR(core_node_type(n)))
                dir_changed(n, NULL);
        else
                node_mtime_changed(n);
        notify_inode(n, NULL, off, len);
        core_node_unref(n);
}

void core_notify_inval_entry(Core *core, LsNode *ls_dir, const char *name)
{
        CoreNode *dir = node_find(core, ls_dir);

        if (!dir)
                return;
        dir_changed(dir, NULL);
        notify_entry(dir, name, NULL, false, NULL);
        core_node_unref(dir);
}

void core_notify_delete(Core *core, LsNode *ls_dir, LsNode *ls_child, const char *name)
{
        CoreNode *dir = node_find(core, ls_dir);
        CoreNode *child = ls_child ? node_find(core, ls_child) : NULL;

        if (child)
                node_sec_changed(child);
        if (dir) {
                dir_changed(dir, NULL);
                notify_entry(dir, name, child, true, NULL);
        } else if (child) {
                notify_inode(child, NULL, -1, 0);
        }
        core_node_unref(child);
        core_node_unref(dir);
}
