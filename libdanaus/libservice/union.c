/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Union libservice: the operations table and every entry point.
 *
 * Branches are directory handles (views of backend instances), top (0, the
 * only one written) to bottom. Semantics in docs/union.md; in short:
 *   lookup    through the parent node's stack, top-down: a real entry wins
 *             over a whiteout in the same branch, a whiteout ends the search
 *             (union-node.c).
 *   ".wh.*"   never found, never listed; creating one is -EINVAL.
 *   modify    a lower entry is copied up first (union-copyup.c).
 *   remove    a whiteout first if a lower branch still shows the name, then
 *             the top entry (union-whiteout.c, union-tree.c).
 *   rename    files: copy-up + whiteout + rename in the top. Directories:
 *             union-tree.c (never -EXDEV).
 * Namespace changes in a directory hold its ns_mu (union-private.h): they
 * are safe against each other and against copy-up without the caller's
 * locks. No lock of ours is held across a backend call except those
 * per-object ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libservice/union-private.h"

static int name_check(const char *name)
{
        if (!name)
                return -EINVAL;
        if (strnlen(name, NAME_MAX + 1) > NAME_MAX)
                return -ENAMETOOLONG;
        return ls_name_valid(name) ? 0 : -EINVAL;
}

/* A name for a new entry: valid and not ours. */
static int new_name_check(const char *name)
{
        int r = name_check(name);

        if (r < 0)
                return r;
        return union_name_hidden(name) ? -EINVAL : 0;
}

static void stat_from_found(UnionNode *n, const UnionFound *f, struct stat *st)
{
        if (!st)
                return;
        *st = f->st;
        pthread_mutex_lock(&n->mu);
        st->st_ino = n->ino;
        if (n->type == S_IFDIR && n->n_layers > 1)
                st->st_nlink = 1;
        pthread_mutex_unlock(&n->mu);
}

static int union_root(LsInstance *inst, LsNode **nodep)
{
        Union *u = to_union(inst);
        UnionFound f = {.branch = 0, .wh_branch = -1, .impure = true};
        struct stat st;
        UnionNode *n;
        int r;

        f.gen = atomic_load(&u->gen);
        f.layers = calloc(u->n_branches, sizeof(*f.layers));
        if (!f.layers)
                return -ENOMEM;
        for (size_t i = 0; i < u->n_branches; i++) {
                LsNode *h = u->roots[i].node;

                r = bops(h)->getattr(h, &st);
                if (r < 0) {
                        union_found_clear(&f);
                        return r;
                }
                if (i == 0)
                        f.st = st;
                f.layers[f.n_layers].branch = (int)i;
                f.layers[f.n_layers].node = ls_node_ref(h);
                f.n_layers++;
                f.ino = union_ino(u, (int)i, st.st_ino);
                if (union_opaque_exists(h) > 0)
                        break;
        }
        n = union_node_new_root(u, &f);
        if (!n)
                return -ENOMEM;
        *nodep = &n->base;
        return 0;
}

static int union_lookup(LsNode *dirn, const char *name, LsNode **nodep, struct stat *stp)
{
        UnionNode *dir = to_unode(dirn), *n;
        Union *u = node_union(dir);
        UnionFound f;
        struct stat st;
        int r;

        r = union_resolve(dir, name, &f);
        if (r < 0)
                return r;
        st = f.st;
        r = union_node_get(u, dir, name, &f, &n);
        if (r < 0)
                return r;
        f.st = st;
        stat_from_found(n, &f, stp);
        *nodep = &n->base;
        return 0;
}

static int union_getattr(LsNode *node, struct stat *st)
{
        return union_node_stat(to_unode(node), st);
}

/* --- creation ------------------------------------------------------------- */

enum { MAKE_NOD, MAKE_DIR, MAKE_LNK, MAKE_REG, MAKE_LINK };

typedef struct Make {
        int kind;
        mode_t mode;
        dev_t rdev;
        const char *target;
        int flags;
        const LsCred *cred;
        LsNode *link_src; /* MAKE_LINK: the top handle */
        bool link_origin; /* MAKE_LINK: it carries an origin */
        LsFile *file;     /* MAKE_REG: the opened top file */
} Make;

static int make_entry(Union *u, UnionNode *dir, LsNode *ptop, const char *name, Make *a,
                      bool opaque, LsNode **hp, struct stat *st)
{
        char tmp[NAME_MAX + 1];
        LsNode *h;
        int r;

        switch (a->kind) {
        case MAKE_NOD:
                return bops(ptop)->mknod(ptop, name, a->mode, a->rdev, a->cred, hp, st);
        case MAKE_LNK:
                return bops(ptop)->symlink(ptop, name, a->target, a->cred, hp, st);
        case MAKE_REG:
                return bops(ptop)->create(ptop, name, a->flags | O_CREAT | O_EXCL, a->mode, a->cred,
                                          hp, st, &a->file);
        case MAKE_LINK:
                if (a->link_origin) {
                        r = union_impure_mark(dir);
                        if (r < 0)
                                return r;
                }
                r = bops(a->link_src)->link(a->link_src, ptop, name, st);
                if (r >= 0)
                        *hp = ls_node_ref(a->link_src);
                return r;
        }
        if (!opaque)
                return bops(ptop)->mkdir(ptop, name, a->mode, a->cred, hp, st);
        /* a whited-out directory below must not merge into the new one:
         * built opaque under a temporary name, then published */
        r = union_tmp_name(u, tmp, sizeof(tmp));
        if (r < 0)
                return r;
        r = bops(ptop)->mkdir(ptop, tmp, a->mode, a->cred, &h, st);
        if (r < 0)
                return r;
        r = union_marker_create(h, UNION_WH_OPAQUE);
        if (r >= 0)
                r = bops(ptop)->rename(ptop, tmp, ptop, name, RENAME_NOREPLACE);
        if (r < 0) {
                ls_node_unref(h);
                union_top_remove_tree(ptop, tmp);
                return r;
        }
        *hp = h;
        return 0;
}

/* Creates name in dir (which is copied up first) under dir's ns_mu: the name
 * must be free in the union; a whiteout of it in the top goes once the real
 * entry exists (until then it keeps the lower entries hidden). */
static int union_make(UnionNode *dir, const char *name, Make *a, LsNode **nodep, struct stat *stp)
{
        Union *u = node_union(dir);
        LsNode *ptop = NULL, *h = NULL;
        UnionFound f;
        struct stat st;
        UnionNode *n;
        bool wh, opaque = false;
        int r;

        if (!u->writable)
                return -EROFS;
        r = new_name_check(name);
        if (r < 0)
                return r;
        if (dir->type != S_IFDIR)
                return -ENOTDIR;
        r = union_copyup_dir(dir);
        if (r >= 0)
                r = union_node_top(dir, &ptop);
        if (r < 0)
                return r;
        pthread_mutex_lock(&dir->ns_mu);
        r = union_resolve(dir, name, &f);
        if (r == 0) {
                union_found_clear(&f);
                r = -EEXIST;
        }
        if (r != -ENOENT)
                goto out;
        wh = f.wh_branch == 0;
        r = 0;
        if (a->kind == MAKE_DIR && wh) {
                r = union_lower_has(dir, name);
                opaque = r > 0;
        }
        if (r >= 0)
                r = make_entry(u, dir, ptop, name, a, opaque, &h, &st);
        if (r < 0)
                goto out;
        if (wh)
                union_whiteout_remove(ptop, name); /* the real entry wins anyway */
        memset(&f, 0, sizeof(f));
        f.branch = 0;
        f.wh_branch = -1;
        f.st = st;
        f.gen = atomic_load(&u->gen);
        f.ino = union_ino(u, 0, st.st_ino);
        if (a->kind == MAKE_LINK && a->link_src) {
                ino_t origin;

                if (union_origin_get(h, &origin))
                        f.ino = origin;
        }
        f.layers = malloc(sizeof(*f.layers));
        if (!f.layers) {
                ls_node_unref(h);
                r = -ENOMEM;
                goto out;
        }
        f.layers[0].branch = 0;
        f.layers[0].node = h;
        f.n_layers = 1;
        r = union_node_get(u, dir, name, &f, &n);
        if (r < 0)
                goto out;
        union_node_touch(dir);
        pthread_mutex_unlock(&dir->ns_mu);
        ls_node_unref(ptop);
        f.st = st;
        stat_from_found(n, &f, stp);
        if (nodep)
                *nodep = &n->base;
        else
                ls_node_unref(&n->base);
        return 0;
out:
        pthread_mutex_unlock(&dir->ns_mu);
        ls_node_unref(ptop);
        if (a->file) {
                ls_ops(a->file->node)->release(a->file);
                a->file = NULL;
        }
        return r;
}

static int union_mknod(LsNode *dir, const char *name, mode_t mode, dev_t rdev, const LsCred *cred,
                       LsNode **nodep, struct stat *stp)
{
        Make a = {.kind = MAKE_NOD, .mode = mode, .rdev = rdev, .cred = cred};

        return union_make(to_unode(dir), name, &a, nodep, stp);
}

static int union_mkdir(LsNode *dir, const char *name, mode_t mode, const LsCred *cred,
                       LsNode **nodep, struct stat *stp)
{
        Make a = {.kind = MAKE_DIR, .mode = mode, .cred = cred};

        return union_make(to_unode(dir), name, &a, nodep, stp);
}

static int union_symlink(LsNode *dir, const char *name, const char *target, const LsCred *cred,
                         LsNode **nodep, struct stat *stp)
{
        Make a = {.kind = MAKE_LNK, .target = target, .cred = cred};

        return union_make(to_unode(dir), name, &a, nodep, stp);
}

static int union_link(LsNode *node, LsNode *newdir, const char *newname, struct stat *stp)
{
        UnionNode *n = to_unode(node);
        Union *u = node_union(n);
        Make a = {.kind = MAKE_LINK};
        struct stat st;
        LsNode *made;
        int r;

        if (!u->writable)
                return -EROFS;
        if (n->type == S_IFDIR)
                return -EPERM;
        r = new_name_check(newname);
        if (r < 0)
                return r;
        /* a link to a lower file is a link to its copy-up */
        r = union_copyup(n, false);
        if (r >= 0)
                r = union_node_top(n, &a.link_src);
        if (r < 0)
                return r;
        r = bops(a.link_src)->getattr(a.link_src, &st);
        a.link_origin = r >= 0 && n->ino != union_ino(u, 0, st.st_ino);
        if (r >= 0)
                r = union_make(to_unode(newdir), newname, &a, &made, NULL);
        ls_node_unref(a.link_src);
        if (r < 0)
                return r;
        ls_node_unref(made);
        return union_node_stat(n, stp);
}

static int union_create(LsNode *dirn, const char *name, int flags, mode_t mode, const LsCred *cred,
                        LsNode **nodep, struct stat *stp, LsFile **filep)
{
        UnionNode *dir = to_unode(dirn);
        LsNode *node;
        int r;

        for (int tries = 0; tries < 8; tries++) {
                Make a = {.kind = MAKE_REG,
                          .mode = mode,
                          .cred = cred,
                          .flags = flags & ~(O_CREAT | O_EXCL | LS_O_NOCOPYUP)};

                if (!(flags & O_EXCL)) {
                        r = union_lookup(dirn, name, &node, stp);
                        if (r == 0) {
                                r = union_open(node, flags & ~(O_CREAT | O_EXCL), filep);
                                if (r < 0) {
                                        ls_node_unref(node);
                                        return r;
                                }
                                *nodep = node;
                                return 0;
                        }
                        if (r != -ENOENT)
                                return r;
                }
                r = union_make(dir, name, &a, &node, stp);
                if (r == -EEXIST && !(flags & O_EXCL))
                        continue; /* a racing creator won: open theirs */
                if (r < 0)
                        return r;
                r = union_file_wrap(to_unode(node), a.file, 0, false, 0, filep);
                if (r < 0) {
                        ls_node_unref(node);
                        return r;
                }
                *nodep = node;
                return 0;
        }
        return -EAGAIN;
}

static int union_tmpfile(LsNode *dirn, int flags, mode_t mode, const LsCred *cred, LsNode **nodep,
                         struct stat *stp, LsFile **filep)
{
        UnionNode *dir = to_unode(dirn), *n;
        Union *u = node_union(dir);
        UnionFound f = {.branch = 0, .wh_branch = -1};
        LsNode *ptop, *h;
        LsFile *child;
        int r;

        if (!u->writable)
                return -EROFS;
        r = union_copyup_dir(dir);
        if (r >= 0)
                r = union_node_top(dir, &ptop);
        if (r < 0)
                return r;
        if (!bops(ptop)->tmpfile) {
                ls_node_unref(ptop);
                return -EOPNOTSUPP;
        }
        r = bops(ptop)->tmpfile(ptop, flags & ~LS_O_NOCOPYUP, mode, cred, &h, &f.st, &child);
        ls_node_unref(ptop);
        if (r < 0)
                return r;
        f.gen = atomic_load(&u->gen);
        f.ino = union_ino(u, 0, f.st.st_ino);
        f.layers = malloc(sizeof(*f.layers));
        if (!f.layers) {
                ls_node_unref(h);
                ls_ops(child->node)->release(child);
                return -ENOMEM;
        }
        f.layers[0].branch = 0;
        f.layers[0].node = h;
        f.n_layers = 1;
        r = union_node_get(u, NULL, NULL, &f, &n);
        if (r < 0) {
                ls_ops(child->node)->release(child);
                return r;
        }
        r = union_file_wrap(n, child, 0, false, 0, filep);
        if (r < 0) {
                ls_node_unref(&n->base);
                return r;
        }
        if (stp)
                union_node_stat(n, stp);
        *nodep = &n->base;
        return 0;
}

/* --- removal -------------------------------------------------------------- */

static int union_unlink(LsNode *dirn, const char *name)
{
        UnionNode *dir = to_unode(dirn), *victim;
        Union *u = node_union(dir);
        LsNode *ptop = NULL;
        UnionFound f;
        int lower, r;

        if (!u->writable)
                return -EROFS;
        r = name_check(name);
        if (r < 0)
                return r;
        if (union_name_hidden(name))
                return -ENOENT;
        r = union_resolve(dir, name, &f);
        if (r < 0)
                return r;
        lower = f.branch != 0;
        union_found_clear(&f);
        /* a whiteout goes into the top part: copied up before any lock */
        if (lower)
                r = union_copyup_dir(dir);
        if (r >= 0)
                r = union_node_top(dir, &ptop);
        if (r < 0)
                return r;
        pthread_mutex_lock(&dir->ns_mu);
        r = union_resolve(dir, name, &f);
        if (r < 0)
                goto out;
        if (S_ISDIR(f.st.st_mode)) {
                r = -EISDIR;
                goto out_found;
        }
        lower = f.branch != 0 ? 1 : union_lower_has(dir, name);
        if (lower < 0) {
                r = lower;
                goto out_found;
        }
        /* whiteout first: invisible while the top entry still exists, so no
         * moment shows the lower file */
        if (lower)
                r = union_whiteout_create(ptop, name);
        if (r >= 0 && f.branch == 0)
                r = bops(ptop)->unlink(ptop, name);
        if (r >= 0) {
                victim = union_node_find(u, f.ino, f.st.st_mode & S_IFMT);
                if (victim) {
                        union_node_unname(victim, dir, name);
                        pthread_mutex_unlock(&dir->ns_mu);
                        ls_node_unref(&victim->base);
                        pthread_mutex_lock(&dir->ns_mu);
                }
                union_node_touch(dir);
                atomic_fetch_add(&u->gen, 1);
        }
out_found:
        union_found_clear(&f);
out:
        pthread_mutex_unlock(&dir->ns_mu);
        ls_node_unref(ptop);
        return r < 0 ? r : 0;
}

static int union_rmdir_op(LsNode *dir, const char *name)
{
        return union_rmdir(dir, name);
}

/* --- rename --------------------------------------------------------------- */

/* Moves (or exchanges) non-directories, and exchanges top-only directories,
 * under both parents' ns_mu. s, t: the nodes (t NULL: no target). */
static int rename_locked(Union *u, UnionNode *p1, const char *n1, UnionNode *s, UnionNode *p2,
                         const char *n2, UnionNode *t, unsigned flags)
{
        LsNode *p1top = NULL, *p2top = NULL;
        UnionNode *nodes[2] = {s, t};
        UnionNode *parents[2] = {p2, p1};
        const char *names[2] = {n2, n1};
        bool exchange = flags & RENAME_EXCHANGE;
        int old_lower = 0, r;

        r = union_node_top(p1, &p1top);
        if (r >= 0)
                r = union_node_top(p2, &p2top);
        if (r < 0)
                goto out;
        /* each moving node lands in the other's parent: mark it impure if
         * the node carries an origin; a moving directory is made opaque if
         * a lower branch shows a directory of its new name */
        for (int i = 0; i < (exchange ? 2 : 1); i++) {
                UnionNode *n = nodes[i];
                LsNode *h;
                struct stat st;

                r = union_node_top(n, &h);
                if (r < 0)
                        goto out;
                r = bops(h)->getattr(h, &st);
                if (r >= 0 && n->type != S_IFDIR && n->ino != union_ino(u, 0, st.st_ino))
                        r = union_impure_mark(parents[i]);
                if (r >= 0 && n->type == S_IFDIR) {
                        r = union_lower_has(parents[i], names[i]);
                        if (r > 0)
                                r = union_marker_create(h, UNION_WH_OPAQUE);
                }
                ls_node_unref(h);
                if (r < 0)
                        goto out;
        }
        if (!exchange) {
                old_lower = union_lower_has(p1, n1);
                if (old_lower < 0) {
                        r = old_lower;
                        goto out;
                }
                /* whiteout first: invisible while the top holds the name */
                if (old_lower) {
                        r = union_whiteout_create(p1top, n1);
                        if (r < 0)
                                goto out;
                }
        }
        r = bops(p1top)->rename(p1top, n1, p2top, n2, flags & (RENAME_NOREPLACE | RENAME_EXCHANGE));
        if (r < 0)
                goto out;
        if (!exchange) {
                union_whiteout_remove(p2top, n2);
                if (t)
                        union_node_unname(t, p2, n2);
                union_node_set_name(s, p2, n2);
        } else {
                union_node_set_name(s, p2, n2);
                union_node_set_name(t, p1, n1);
        }
        union_node_touch(p1);
        union_node_touch(p2);
        atomic_fetch_add(&u->gen, 1);
out:
        ls_node_unref(p1top);
        ls_node_unref(p2top);
        return r;
}

static int lookup_unode(UnionNode *dir, const char *name, UnionNode **np)
{
        LsNode *n;
        int r = union_lookup(&dir->base, name, &n, NULL);

        if (r >= 0)
                *np = to_unode(n);
        return r;
}

static int node_matches(UnionNode *dir, const char *name, UnionNode *n)
{
        UnionFound f;
        int r = union_resolve(dir, name, &f);

        if (r < 0)
                return r == -ENOENT && !n;
        r = n && f.ino == n->ino && (f.st.st_mode & S_IFMT) == n->type && f.layers[0].branch == 0;
        union_found_clear(&f);
        return r;
}

static int union_rename(LsNode *olddir, const char *oldname, LsNode *newdir, const char *newname,
                        unsigned int flags)
{
        UnionNode *p1 = to_unode(olddir), *p2 = to_unode(newdir);
        Union *u = node_union(p1);
        int r;

        if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) ||
            ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)))
                return -EINVAL;
        if (!u->writable)
                return -EROFS;
        r = name_check(oldname);
        if (r >= 0)
                r = new_name_check(newname);
        if (r < 0)
                return r;
        if (union_name_hidden(oldname))
                return -ENOENT;
        if (p1->type != S_IFDIR || p2->type != S_IFDIR)
                return -ENOTDIR;
        for (int tries = 0; tries < 8; tries++) {
                UnionNode *s, *t = NULL, *locks[2] = {p1, p2};
                bool sdir, tdir;

                r = lookup_unode(p1, oldname, &s);
                if (r < 0)
                        return r;
                r = lookup_unode(p2, newname, &t);
                if (r == -ENOENT)
                        t = NULL;
                else if (r < 0)
                        goto done;
                r = 0;
                sdir = s->type == S_IFDIR;
                tdir = t && t->type == S_IFDIR;
                if (p1 == p2 && strcmp(oldname, newname) == 0)
                        goto done;
                if (flags & RENAME_EXCHANGE) {
                        if (!t) {
                                r = -ENOENT;
                                goto done;
                        }
                        /* merged directories would carry their lower views
                         * across, which the top alone cannot express */
                        if ((sdir && union_node_is_lower(s)) || (tdir && union_node_is_lower(t)))
                                r = -EXDEV;
                        else if ((sdir && (s->n_layers != 1)) || (tdir && t->n_layers != 1))
                                r = -EXDEV;
                        if (r >= 0 && ((sdir && union_is_beneath(p2, s)) ||
                                       (tdir && union_is_beneath(p1, t))))
                                r = -EINVAL;
                } else if (t) {
                        if (flags & RENAME_NOREPLACE)
                                r = -EEXIST;
                        else if (t == s)
                                goto done; /* one inode under two names */
                        else if (sdir && !tdir)
                                r = -ENOTDIR;
                        else if (!sdir && tdir)
                                r = -EISDIR;
                }
                if (r < 0)
                        goto done;
                if (sdir && !(flags & RENAME_EXCHANGE)) {
                        if (t)
                                ls_node_unref(&t->base);
                        ls_node_unref(&s->base);
                        return union_rename_dir(u, p1, oldname, p2, newname, flags);
                }
                /* copy-ups before any lock */
                r = union_copyup_any(s, false);
                if (r >= 0 && t)
                        r = union_copyup_any(t, false);
                if (r >= 0)
                        r = union_copyup_dir(p1);
                if (r >= 0)
                        r = union_copyup_dir(p2);
                if (r < 0)
                        goto done;
                union_lock_dirs(locks, 2);
                if (node_matches(p1, oldname, s) > 0 && node_matches(p2, newname, t) > 0)
                        r = rename_locked(u, p1, oldname, s, p2, newname, t,
                                          t ? flags : flags & ~RENAME_EXCHANGE);
                else
                        r = -EAGAIN;
                union_unlock_dirs(locks, 2);
        done:
                if (t)
                        ls_node_unref(&t->base);
                ls_node_unref(&s->base);
                if (r != -EAGAIN)
                        return r < 0 ? r : 0;
        }
        return -EBUSY;
}

/* --- attributes ----------------------------------------------------------- */

static int union_setattr(LsNode *node, const LsSetattr *sa, struct stat *stp)
{
        UnionNode *n = to_unode(node);
        Union *u = node_union(n);
        LsNode *h;
        int r;

        if (!u->writable)
                return -EROFS;
        r = union_copyup_any(n, n->type == S_IFREG && (sa->valid & LS_SET_SIZE) && sa->size == 0);
        if (r >= 0)
                r = union_node_top(n, &h);
        if (r < 0)
                return r;
        r = bops(h)->setattr(h, sa, NULL);
        ls_node_unref(h);
        if (n->type == S_IFDIR)
                union_node_touch(n);
        if (r < 0)
                return r;
        return stp ? union_node_stat(n, stp) : 0;
}

static ssize_t union_readlink(LsNode *node, char *buf, size_t size)
{
        LsNode *h;
        ssize_t r;

        if (to_unode(node)->type != S_IFLNK)
                return -EINVAL;
        r = union_node_first(to_unode(node), &h, NULL);
        if (r < 0)
                return r;
        r = bops(h)->readlink(h, buf, size);
        ls_node_unref(h);
        return r;
}

static int union_setxattr(LsNode *node, const char *name, const void *value, size_t size, int flags)
{
        UnionNode *n = to_unode(node);
        LsNode *h;
        int r;

        /* the union's own marks cannot be forged or removed */
        if (union_xattr_private(name))
                return -EPERM;
        if (!node_union(n)->writable)
                return -EROFS;
        r = union_copyup_any(n, false);
        if (r >= 0)
                r = union_node_top(n, &h);
        if (r < 0)
                return r;
        r = bops(h)->setxattr(h, name, value, size, flags);
        ls_node_unref(h);
        if (n->type == S_IFDIR)
                union_node_touch(n);
        return r;
}

static int union_removexattr(LsNode *node, const char *name)
{
        UnionNode *n = to_unode(node);
        LsNode *h;
        int r;

        if (union_xattr_private(name))
                return -EPERM;
        if (!node_union(n)->writable)
                return -EROFS;
        r = union_copyup_any(n, false);
        if (r >= 0)
                r = union_node_top(n, &h);
        if (r < 0)
                return r;
        r = bops(h)->removexattr(h, name);
        ls_node_unref(h);
        if (n->type == S_IFDIR)
                union_node_touch(n);
        return r;
}

static ssize_t union_getxattr(LsNode *node, const char *name, void *value, size_t size)
{
        LsNode *h;
        ssize_t r;

        if (union_xattr_private(name))
                return -ENODATA; /* as listxattr: not there */
        r = union_node_first(to_unode(node), &h, NULL);
        if (r < 0)
                return r;
        r = bops(h)->getxattr(h, name, value, size);
        ls_node_unref(h);
        return r;
}

/* Removes the union's own names from an xattr name list; the new length. */
static size_t xattr_list_filter(char *list, size_t len)
{
        size_t out = 0;

        for (size_t off = 0; off < len;) {
                size_t n = strnlen(list + off, len - off);

                if (!union_xattr_private(list + off)) {
                        memmove(list + out, list + off, n);
                        out += n;
                        if (off + n < len)
                                list[out++] = '\0';
                }
                off += n + 1;
        }
        return out;
}

static ssize_t union_listxattr(LsNode *node, char *list, size_t size)
{
        char *buf = NULL;
        ssize_t len;
        LsNode *h;
        int r;

        r = union_node_first(to_unode(node), &h, NULL);
        if (r < 0)
                return r;
        /* only the top holds our names; a lower layer that once was a top
         * may too: filter every branch's list */
        for (int tries = 0;; tries++) {
                len = bops(h)->listxattr(h, NULL, 0);
                if (len <= 0)
                        break;
                free(buf);
                buf = malloc((size_t)len);
                if (!buf) {
                        len = -ENOMEM;
                        break;
                }
                len = bops(h)->listxattr(h, buf, (size_t)len);
                if (len != -ERANGE || tries >= 8)
                        break;
        }
        ls_node_unref(h);
        if (len > 0) {
                len = (ssize_t)xattr_list_filter(buf, (size_t)len);
                if (size && (size_t)len > size)
                        len = -ERANGE;
                else if (size)
                        memcpy(list, buf, (size_t)len);
        }
        free(buf);
        return len;
}

static int union_statfs(LsNode *node, struct statvfs *st)
{
        Union *u = node_union(to_unode(node));
        LsNode *top = u->roots[0].node;

        /* space and inodes are what the top can still take */
        return bops(top)->statfs(top, st);
}

static int union_fsyncdir(LsNode *node, bool datasync)
{
        UnionNode *n = to_unode(node);
        bool removed;
        LsNode *h;
        int r;

        /* the top directory, or the lower one (read-only) */
        r = union_node_first(n, &h, NULL);
        if (r == -ENOENT) {
                /* a directory held after its rmdir (or replacement) has
                 * nothing left to sync: 0, as on a plain directory */
                pthread_mutex_lock(&n->mu);
                removed = n->removed;
                pthread_mutex_unlock(&n->mu);
                if (removed)
                        return 0;
        }
        if (r < 0)
                return r;
        r = bops(h)->fsyncdir ? bops(h)->fsyncdir(h, datasync) : 0;
        ls_node_unref(h);
        return r;
}

/* --- the instance --------------------------------------------------------- */

static void union_destroy(LsInstance *inst)
{
        Union *u = to_union(inst);

        union_layers_free(u->roots, (unsigned)u->n_branches);
        union_table_deinit(u);
        free(u);
}

static const LsOps union_ops = {
    .name = "union",
    .destroy = union_destroy,
    .node_free = union_node_free,
    .root = union_root,
    .lookup = union_lookup,
    .mknod = union_mknod,
    .mkdir = union_mkdir,
    .symlink = union_symlink,
    .link = union_link,
    .unlink = union_unlink,
    .rmdir = union_rmdir_op,
    .rename = union_rename,
    .getattr = union_getattr,
    .setattr = union_setattr,
    .readlink = union_readlink,
    .setxattr = union_setxattr,
    .getxattr = union_getxattr,
    .listxattr = union_listxattr,
    .removexattr = union_removexattr,
    .statfs = union_statfs,
    .readdir = union_readdir,
    .fsyncdir = union_fsyncdir,
    .open = union_open,
    .create = union_create,
    .tmpfile = union_tmpfile,
    .pread = union_pread,
    .pwrite = union_pwrite,
    .fsync = union_fsync,
    .fallocate = union_fallocate,
    .lseek = union_lseek,
    .file_fd = union_file_fd,
    .release = union_release,
};

void union_set_copy_up_sync(LsInstance *inst, bool sync)
{
        to_union(inst)->copy_sync = sync;
}

int union_new(const UnionBranch *branches, size_t n, bool top_writable, LsInstance **instp)
{
        Union *u;
        dev_t dev = 0;
        int r;

        if (!branches || n == 0 || n > UNION_BRANCHES_MAX)
                return -EINVAL;
        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        ls_instance_init(&u->inst, &union_ops);
        u->writable = top_writable;
        u->copy_sync = true;
        u->same_dev = true;
        atomic_init(&u->gen, 1);
        atomic_init(&u->tmp_counter, 0);
        u->roots = calloc(n, sizeof(*u->roots));
        r = u->roots ? union_table_init(u) : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                LsNode *h = branches[i].root;
                struct stat st;

                r = h ? bops(h)->getattr(h, &st) : -EINVAL;
                if (r == 0 && !S_ISDIR(st.st_mode))
                        r = -ENOTDIR;
                if (r < 0)
                        break;
                u->roots[i].branch = (int)i;
                u->roots[i].node = ls_node_ref(h);
                u->n_branches = i + 1;
                if (i == 0)
                        dev = st.st_dev;
                else if (st.st_dev != dev)
                        u->same_dev = false;
        }
        if (r < 0) {
                union_layers_free(u->roots, (unsigned)u->n_branches);
                union_table_deinit(u);
                free(u);
                return r;
        }
        *instp = &u->inst;
        return 0;
}
