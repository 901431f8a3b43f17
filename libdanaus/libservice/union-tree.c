/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Union Trees: removing and moving directories.
 *
 * rmdir: under the parent's and the directory's namespace locks (so nothing
 * is created in it meanwhile through this union) the merged directory must
 * be empty; a whiteout goes first if a lower branch shows the name
 * (invisible while the top directory exists), then the top directory is
 * renamed away to a temporary name in one step, and only then is that
 * temporary tree (our whiteouts and markers) deleted. So the step that can
 * fail comes before any whiteout is deleted: a failed rmdir leaves every
 * deleted name deleted (and takes back the whiteout it made).
 *
 * rename of a directory: one without lower content (its stack is the top
 * alone) is renamed in the top, made opaque first if a lower branch shows a
 * directory of the new name. One with lower content (merged) is copied
 * whole into the top under a temporary name beside the target (files already
 * in the top are hard-linked, not copied; lower files and directories carry
 * their numbers as origins), marked opaque, then renamed onto the target;
 * the old name is whited out and its top part renamed away, then deleted.
 * A target with a top part is replaced by RENAME_EXCHANGE, so its whiteouts
 * are never deleted before the step that can fail.
 *
 * The copy runs without any lock but the nodes' own: lookups and changes
 * elsewhere go on. It records each directory it copied with that directory's
 * change count; the publication then takes, in address order, the namespace
 * locks of both parents, the source, the target and every copied directory,
 * and checks that nothing changed (else the copy is thrown away and made
 * again, at most UNION_MOVE_TRIES times: -EBUSY). Afterwards every copied
 * directory's node is looked up again from its moved parent, so held handles
 * follow the move.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libservice/union-private.h"

#define UNION_MOVE_TRIES 5

/* --- locking many directories ------------------------------------------- */

typedef struct DirSet {
        UnionNode **v;
        uint64_t *mods;   /* change count when recorded (copied directories) */
        bool *renumbered; /* top-only when copied: the copy got a new number */
        size_t n, cap;
} DirSet;

static bool node_has_lower(UnionNode *n)
{
        bool lower;

        pthread_mutex_lock(&n->mu);
        lower = n->n_layers != 1 || n->layers[0].branch != 0;
        pthread_mutex_unlock(&n->mu);
        return lower;
}

static int dirset_add(DirSet *s, UnionNode *n, uint64_t mods)
{
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 16;
                UnionNode **v = realloc(s->v, cap * sizeof(*v));
                uint64_t *m;

                if (!v)
                        return -ENOMEM;
                s->v = v;
                m = realloc(s->mods, cap * sizeof(*m));
                if (!m)
                        return -ENOMEM;
                s->mods = m;
                {
                        bool *b = realloc(s->renumbered, cap * sizeof(*b));

                        if (!b)
                                return -ENOMEM;
                        s->renumbered = b;
                }
                s->cap = cap;
        }
        s->v[s->n] = to_unode(ls_node_ref(&n->base));
        s->mods[s->n] = mods;
        s->renumbered[s->n] = !node_has_lower(n);
        s->n++;
        return 0;
}

static void dirset_clear(DirSet *s)
{
        for (size_t i = 0; i < s->n; i++)
                ls_node_unref(&s->v[i]->base);
        free(s->v);
        free(s->mods);
        free(s->renumbered);
        memset(s, 0, sizeof(*s));
}

static int ptr_cmp(const void *a, const void *b)
{
        uintptr_t x = (uintptr_t) * (UnionNode *const *)a, y = (uintptr_t) * (UnionNode *const *)b;

        return x < y ? -1 : x > y;
}

/* Locks extra[0..n_extra) (NULLs skipped) and every node of s, in address
 * order; *lockedp: the sorted list to unlock. */
static int lock_all(UnionNode **extra, size_t n_extra, const DirSet *s, UnionNode ***lockedp,
                    size_t *np)
{
        UnionNode **v = malloc(sizeof(*v) * (n_extra + s->n + 1));
        size_t n = 0, m = 0;

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n_extra; i++)
                if (extra[i])
                        v[n++] = extra[i];
        for (size_t i = 0; i < s->n; i++)
                v[n++] = s->v[i];
        qsort(v, n, sizeof(*v), ptr_cmp);
        for (size_t i = 0; i < n; i++)
                if (m == 0 || v[m - 1] != v[i])
                        v[m++] = v[i];
        for (size_t i = 0; i < m; i++)
                pthread_mutex_lock(&v[i]->ns_mu);
        *lockedp = v;
        *np = m;
        return 0;
}

static void unlock_all(UnionNode **v, size_t n)
{
        for (size_t i = n; i-- > 0;)
                pthread_mutex_unlock(&v[i]->ns_mu);
        free(v);
}

/* Does name in dir still resolve to node n (or to nothing, for n NULL)? */
static bool still_resolves(UnionNode *dir, const char *name, UnionNode *n)
{
        UnionFound f;
        bool ok;
        int r = union_resolve(dir, name, &f);

        if (r < 0)
                return r == -ENOENT && !n;
        ok = false;
        if (n && f.ino == n->ino && (f.st.st_mode & S_IFMT) == n->type) {
                pthread_mutex_lock(&n->mu);
                ok = !n->removed && n->n_layers > 0 &&
                     (n->type != S_IFDIR || n->layers[0].node == f.layers[0].node);
                pthread_mutex_unlock(&n->mu);
        }
        union_found_clear(&f);
        return ok;
}

static void node_mark_removed(UnionNode *n, UnionNode *parent, const char *name)
{
        pthread_mutex_lock(&n->mu);
        n->removed = true;
        pthread_mutex_unlock(&n->mu);
        union_node_unname(n, parent, name);
}

static int lookup_node(Union *u, UnionNode *dir, const char *name, UnionNode **np)
{
        UnionFound f;
        int r = union_resolve(dir, name, &f);

        if (r < 0)
                return r;
        return union_node_get(u, dir, name, &f, np);
}

/* --- rmdir ---------------------------------------------------------------- */

static int rmdir_locked(Union *u, UnionNode *p, const char *name, UnionNode *d, char *garbage)
{
        LsNode *ptop = NULL, *dtop = NULL;
        bool made_wh = false;
        int r;

        r = union_dir_empty(d);
        if (r < 0)
                return r;
        r = union_node_top(p, &ptop);
        if (r < 0)
                return r;
        if (union_node_top(d, &dtop) < 0)
                dtop = NULL;
        r = union_lower_has(p, name);
        if (r > 0) {
                r = union_whiteout_exists(ptop, name);
                if (r == 0) {
                        r = union_whiteout_create(ptop, name);
                        made_wh = r >= 0;
                }
        }
        if (r >= 0 && dtop) {
                /* the whole top directory goes in one step; its whiteouts
                 * are deleted only once it is no longer visible */
                r = union_tmp_name(u, garbage, NAME_MAX + 1);
                if (r >= 0)
                        r = bops(ptop)->rename(ptop, name, ptop, garbage, RENAME_NOREPLACE);
                if (r < 0) {
                        garbage[0] = '\0';
                        if (made_wh)
                                union_whiteout_remove(ptop, name);
                }
        }
        if (r >= 0) {
                node_mark_removed(d, p, name);
                union_node_touch(p);
                atomic_fetch_add(&u->gen, 1);
        }
        ls_node_unref(dtop);
        ls_node_unref(ptop);
        return r < 0 ? r : 0;
}

int union_rmdir(LsNode *dirn, const char *name)
{
        UnionNode *p = to_unode(dirn);
        Union *u = node_union(p);
        int r = -EBUSY;

        if (!u->writable)
                return -EROFS;
        if (!ls_name_valid(name))
                return strnlen(name, NAME_MAX + 1) > NAME_MAX ? -ENAMETOOLONG : -EINVAL;
        if (union_name_hidden(name))
                return -ENOENT;
        for (int tries = 0; tries < 8; tries++) {
                char garbage[NAME_MAX + 1] = "";
                UnionNode *d, *locks[2];
                LsNode *ptop;

                r = lookup_node(u, p, name, &d);
                if (r < 0)
                        return r;
                if (d->type != S_IFDIR) {
                        ls_node_unref(&d->base);
                        return -ENOTDIR;
                }
                /* the parent must be in the top for the whiteout: before any
                 * lock (copy-up takes the grandparent's) */
                if (node_has_lower(d))
                        r = union_copyup_dir(p);
                if (r < 0) {
                        ls_node_unref(&d->base);
                        return r;
                }
                locks[0] = p;
                locks[1] = d;
                union_lock_dirs(locks, 2);
                if (!still_resolves(p, name, d))
                        r = -EAGAIN;
                else
                        r = rmdir_locked(u, p, name, d, garbage);
                union_unlock_dirs(locks, 2);
                ls_node_unref(&d->base);
                if (garbage[0] && union_node_top(p, &ptop) == 0) {
                        /* invisible by now: failures leave hidden garbage */
                        union_top_remove_tree(ptop, garbage);
                        ls_node_unref(ptop);
                }
                if (r != -EAGAIN)
                        return r;
        }
        return -EBUSY;
}

/* --- the subtree copy ----------------------------------------------------- */

/* Copies merged directory src into top directory tdir as name (recording
 * each directory copied in rec); root: the copy is the moved directory. */
static int copy_tree(Union *u, UnionNode *src, LsNode *tdir, const char *name, DirSet *rec,
                     bool root)
{
        LsNode *h = NULL, *d = NULL;
        char **names = NULL;
        size_t n_names = 0;
        struct stat st;
        int r;

        /* its change count before its listing is read */
        r = dirset_add(rec, src, atomic_load_explicit(&src->mods, memory_order_acquire));
        if (r >= 0)
                r = union_node_first(src, &h, NULL);
        if (r >= 0)
                r = bops(h)->getattr(h, &st);
        if (r >= 0)
                r = union_copy_node(u, h, &st, tdir, name, false, &d);
        if (r < 0)
                goto out;
        /* its entries keep their numbers through origins */
        r = bops(d)->setxattr(d, UNION_XATTR_IMPURE, "", 0, 0);
        if (r < 0 && !union_copy_refused(r))
                goto out;
        r = 0;
        /* and it keeps its own, unless the top alone held it (that number
         * is freed with the old top directory and could come back) */
        if (node_has_lower(src))
                r = union_origin_set(d, src->ino);
        if (r >= 0 && root)
                r = union_marker_create(d, UNION_WH_OPAQUE);
        if (r >= 0)
                r = union_dir_names(src, &names, &n_names);
        for (size_t i = 0; r >= 0 && i < n_names; i++) {
                UnionNode *c;
                LsNode *ch;
                struct stat cst;
                int cb;

                r = lookup_node(u, src, names[i], &c);
                if (r == -ENOENT) {
                        r = 0; /* gone meanwhile: the check before publication sees it */
                        continue;
                }
                if (r < 0)
                        break;
                if (c->type == S_IFDIR) {
                        r = copy_tree(u, c, d, names[i], rec, false);
                        ls_node_unref(&c->base);
                        continue;
                }
                r = union_node_first(c, &ch, &cb);
                if (r >= 0) {
                        /* a top file is linked: same inode, origin and links */
                        if (cb == 0 && bops(ch)->link(ch, d, names[i], NULL) == 0) {
                                ls_node_unref(ch);
                                ls_node_unref(&c->base);
                                continue;
                        }
                        r = bops(ch)->getattr(ch, &cst);
                }
                if (r >= 0) {
                        LsNode *cd;

                        r = union_copy_node(u, ch, &cst, d, names[i], false, &cd);
                        if (r >= 0) {
                                r = union_copy_attrs(ch, &cst, cd);
                                /* lower: the copy keeps the number it had */
                                if (r >= 0 && (cb != 0 || c->ino != union_ino(u, 0, cst.st_ino)) &&
                                    (cst.st_nlink == 1 || cb == 0))
                                        r = union_origin_set(cd, c->ino);
                                if (r >= 0)
                                        r = union_sync_node(u, cd, &cst);
                                ls_node_unref(cd);
                        }
                }
                ls_node_unref(ch);
                ls_node_unref(&c->base);
        }
        union_names_free(names, n_names);
        if (r >= 0)
                r = union_copy_attrs(h, &st, d);
out:
        ls_node_unref(d);
        ls_node_unref(h);
        return r;
}

static bool rec_unchanged(const DirSet *rec)
{
        for (size_t i = 0; i < rec->n; i++)
                if (atomic_load_explicit(&rec->v[i]->mods, memory_order_acquire) != rec->mods[i])
                        return false;
        return true;
}

/* Held handles follow the move: each copied directory is looked up again
 * from its (moved) parent, which updates its node. Preorder: parents
 * first. */
static void rec_revalidate(Union *u, const DirSet *rec)
{
        for (size_t i = 1; i < rec->n; i++) {
                UnionNode *n = rec->v[i], *parent, *again;
                char *name = NULL;

                pthread_mutex_lock(&n->mu);
                parent = n->parent ? to_unode(ls_node_ref(&n->parent->base)) : NULL;
                if (n->name)
                        name = strdup(n->name);
                pthread_mutex_unlock(&n->mu);
                if (rec->renumbered[i]) {
                        /* its top directory went with the old tree: the copy
                         * has another number, which the node takes, so held
                         * handles (kernel dentries) follow it; if that fails,
                         * the node is gone */
                        UnionFound f;
                        int r = parent && name ? union_resolve(parent, name, &f) : -ENOENT;

                        if (r == 0) {
                                r = union_node_renumber(n, &f);
                                union_found_clear(&f);
                        }
                        if (r < 0) {
                                pthread_mutex_lock(&n->mu);
                                n->removed = true;
                                pthread_mutex_unlock(&n->mu);
                                union_node_set_name(n, NULL, NULL);
                        }
                } else if (parent && name && lookup_node(u, parent, name, &again) == 0) {
                        ls_node_unref(&again->base);
                }
                if (parent)
                        ls_node_unref(&parent->base);
                free(name);
        }
}

/* --- rename of a directory ------------------------------------------------ */

typedef struct Move {
        UnionNode *p1, *p2, *s, *t; /* t: the target's node, or NULL */
        const char *n1, *n2;
        bool merged;
        char tmp[NAME_MAX + 1];      /* the copy (merged) */
        char garbage1[NAME_MAX + 1]; /* old top parts, deleted afterwards */
        char garbage2[NAME_MAX + 1];
        LsNode *r_node; /* the copy's handle */
} Move;

/* The moved node's state: the copy, alone (a newer state than any lookup
 * begun before). */
static int move_set_state(Union *u, Move *m)
{
        UnionLayer *l = malloc(sizeof(*l)), *old;
        unsigned n_old;

        if (!l)
                return -ENOMEM;
        l->branch = 0;
        l->node = ls_node_ref(m->r_node);
        pthread_mutex_lock(&m->s->mu);
        old = m->s->layers;
        n_old = m->s->n_layers;
        m->s->layers = l;
        m->s->n_layers = 1;
        m->s->impure = true;
        m->s->gen = atomic_fetch_add(&u->gen, 1) + 1;
        pthread_mutex_unlock(&m->s->mu);
        union_layers_free(old, n_old);
        return 0;
}

static int move_publish(Union *u, Move *m)
{
        LsNode *p1top = NULL, *p2top = NULL, *stop = NULL;
        bool t_top = false, made_wh = false;
        int old_lower, new_lower, r, r2;

        if (m->t) {
                r = union_dir_empty(m->t);
                if (r < 0)
                        return r;
                t_top = !union_node_is_lower(m->t);
        }
        r = union_node_top(m->p2, &p2top);
        if (r < 0)
                return r;
        old_lower = union_lower_has(m->p1, m->n1);
        new_lower = union_lower_has(m->p2, m->n2);
        r = old_lower < 0 ? old_lower : new_lower < 0 ? new_lower : 0;
        if (r >= 0 && (old_lower || !m->merged))
                r = union_node_top(m->p1, &p1top);
        if (r >= 0 && !m->merged)
                r = union_node_top(m->s, &stop);
        if (r < 0)
                goto out;
        if (!m->merged) {
                if (new_lower) {
                        /* a lower directory of the new name must not merge in */
                        r = union_marker_create(stop, UNION_WH_OPAQUE);
                        if (r < 0)
                                goto out;
                }
                if (old_lower && union_whiteout_exists(p1top, m->n1) == 0) {
                        r = union_whiteout_create(p1top, m->n1);
                        if (r < 0)
                                goto out;
                        made_wh = true;
                }
                if (t_top) {
                        r = bops(p1top)->rename(p1top, m->n1, p2top, m->n2, RENAME_EXCHANGE);
                        if (r >= 0 && union_tmp_name(u, m->garbage1, sizeof(m->garbage1)) >= 0 &&
                            bops(p1top)->rename(p1top, m->n1, p1top, m->garbage1,
                                                RENAME_NOREPLACE) < 0)
                                m->garbage1[0] = '\0';
                } else {
                        r = bops(p1top)->rename(p1top, m->n1, p2top, m->n2, RENAME_NOREPLACE);
                }
                if (r < 0) {
                        if (made_wh)
                                union_whiteout_remove(p1top, m->n1);
                        goto out;
                }
                if (new_lower) {
                        pthread_mutex_lock(&m->s->mu);
                        m->s->gen = atomic_fetch_add(&u->gen, 1) + 1;
                        pthread_mutex_unlock(&m->s->mu);
                }
        } else {
                bool s_top = !union_node_is_lower(m->s);

                if (t_top) {
                        r = bops(p2top)->rename(p2top, m->tmp, p2top, m->n2, RENAME_EXCHANGE);
                        if (r >= 0)
                                strcpy(m->garbage2, m->tmp); /* the old target's top */
                } else {
                        r = bops(p2top)->rename(p2top, m->tmp, p2top, m->n2, RENAME_NOREPLACE);
                }
                if (r < 0)
                        goto out;
                m->tmp[0] = '\0';
                /* from here the new name shows the moved tree */
                if (old_lower && union_whiteout_exists(p1top, m->n1) == 0)
                        r = union_whiteout_create(p1top, m->n1);
                if (r >= 0 && s_top) {
                        LsNode *top1;

                        r = union_node_top(m->p1, &top1);
                        if (r >= 0) {
                                r = union_tmp_name(u, m->garbage1, sizeof(m->garbage1));
                                if (r >= 0)
                                        r = bops(top1)->rename(top1, m->n1, top1, m->garbage1,
                                                               RENAME_NOREPLACE);
                                if (r < 0)
                                        m->garbage1[0] = '\0';
                                ls_node_unref(top1);
                        }
                }
                r2 = move_set_state(u, m);
                if (r >= 0)
                        r = r2;
        }
        union_whiteout_remove(p2top, m->n2);
        /* again, now that the old name is gone: a lookup of it while both
         * names showed the tree may have taken the node's state back */
        if (m->merged && r >= 0)
                r = move_set_state(u, m);
        union_node_set_name(m->s, m->p2, m->n2);
        pthread_mutex_lock(&m->s->mu);
        m->s->gen = atomic_fetch_add(&u->gen, 1) + 1;
        pthread_mutex_unlock(&m->s->mu);
        if (m->t)
                node_mark_removed(m->t, m->p2, m->n2);
        union_node_touch(m->p1);
        union_node_touch(m->p2);
        atomic_fetch_add(&u->gen, 1);
out:
        ls_node_unref(stop);
        ls_node_unref(p1top);
        ls_node_unref(p2top);
        return r;
}

bool union_is_beneath(UnionNode *dir, UnionNode *s)
{
        UnionNode *cur = to_unode(ls_node_ref(&dir->base));

        while (cur) {
                UnionNode *next;

                if (cur == s) {
                        ls_node_unref(&cur->base);
                        return true;
                }
                pthread_mutex_lock(&cur->mu);
                next = cur->parent ? to_unode(ls_node_ref(&cur->parent->base)) : NULL;
                pthread_mutex_unlock(&cur->mu);
                ls_node_unref(&cur->base);
                cur = next;
        }
        return false;
}

static void move_cleanup(Move *m)
{
        LsNode *top;

        if (m->tmp[0] && union_node_top(m->p2, &top) == 0) {
                union_top_remove_tree(top, m->tmp);
                ls_node_unref(top);
        }
        if (m->garbage2[0] && union_node_top(m->p2, &top) == 0) {
                union_top_remove_tree(top, m->garbage2);
                ls_node_unref(top);
        }
        if (m->garbage1[0] && union_node_top(m->p1, &top) == 0) {
                union_top_remove_tree(top, m->garbage1);
                ls_node_unref(top);
        }
        m->tmp[0] = m->garbage1[0] = m->garbage2[0] = '\0';
        m->r_node = ls_node_unref(m->r_node);
}

int union_rename_dir(Union *u, UnionNode *p1, const char *n1, UnionNode *p2, const char *n2,
                     unsigned flags)
{
        int r = -EBUSY;

        for (int tries = 0; tries < UNION_MOVE_TRIES; tries++) {
                Move m = {.p1 = p1, .p2 = p2, .n1 = n1, .n2 = n2};
                UnionNode **locked, *extra[4];
                DirSet rec = {0};
                size_t n_locked;
                LsNode *p2top;
                bool ok;

                r = lookup_node(u, p1, n1, &m.s);
                if (r < 0)
                        return r;
                r = lookup_node(u, p2, n2, &m.t);
                if (r == -ENOENT)
                        m.t = NULL;
                else if (r < 0)
                        goto out;
                r = 0;
                if (m.s->type != S_IFDIR)
                        r = -ENOTDIR;
                else if (m.t == m.s)
                        goto out; /* one directory: nothing to do */
                else if (m.t && (flags & RENAME_NOREPLACE))
                        r = -EEXIST;
                else if (m.t && m.t->type != S_IFDIR)
                        r = -ENOTDIR;
                else if (union_is_beneath(p2, m.s))
                        r = -EINVAL;
                if (r < 0)
                        goto out;
                m.merged = node_has_lower(m.s);
                /* parents in the top first, before any lock */
                r = union_copyup_dir(p2);
                if (r >= 0 && m.merged)
                        r = union_copyup_dir(p1);
                if (r >= 0)
                        r = union_node_top(p2, &p2top);
                if (r < 0)
                        goto out;
                if (m.merged) {
                        r = union_tmp_name(u, m.tmp, sizeof(m.tmp));
                        if (r >= 0)
                                r = copy_tree(u, m.s, p2top, m.tmp, &rec, true);
                        if (r >= 0)
                                r = bops(p2top)->lookup(p2top, m.tmp, &m.r_node, NULL);
                }
                ls_node_unref(p2top);
                if (r < 0) {
                        dirset_clear(&rec);
                        goto out;
                }
                extra[0] = p1;
                extra[1] = p2;
                extra[2] = m.s;
                extra[3] = m.t;
                r = lock_all(extra, 4, &rec, &locked, &n_locked);
                if (r < 0) {
                        dirset_clear(&rec);
                        goto out;
                }
                ok = still_resolves(p1, n1, m.s) && still_resolves(p2, n2, m.t) &&
                     rec_unchanged(&rec);
                r = ok ? move_publish(u, &m) : -EAGAIN;
                unlock_all(locked, n_locked);
                if (r >= 0)
                        rec_revalidate(u, &rec);
                dirset_clear(&rec);
        out:
                move_cleanup(&m);
                if (m.t)
                        ls_node_unref(&m.t->base);
                ls_node_unref(&m.s->base);
                if (r != -EAGAIN)
                        return r;
        }
        return -EBUSY;
}
