/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Union libservice: the operations table and every entry point.
 *
 * Branches are libservice instances, top (0, the only one written) to
 * bottom. Semantics in docs/union.md; in short:
 *   lookup    the parent's stack (union-dircache.c), then the name in each of
 *             its branches top-down: a real entry wins over a whiteout in the
 *             same branch, a whiteout ends the search (-ENOENT).
 *   ".wh.*"   never found, never listed; creating one is -EINVAL.
 *   modify    a lower entry is copied up first (union-copyup.c).
 *   remove    from the top, then a whiteout if a lower branch still shows
 *             the name (union-whiteout.c).
 *   rename    files: copy-up + rename in the top + whiteout. Directories:
 *             a plain rename in the top when they have no lower content,
 *             else the merged tree is copied up under the new name (opaque)
 *             and the old one whited out: never -EXDEV.
 *   ino       passed through when every branch is on one st_dev, else the
 *             branch index + 1 is tagged into bits 56-63; a directory reports
 *             its bottom branch's number (unchanged by copy-up); a merged
 *             directory (more than one branch) reports st_nlink 1.
 * No lock is held across branch I/O except a copy-up's stripe lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libservice/union-private.h"

#define UNION_SYMLOOP_MAX   40
#define UNION_INO_TAG_SHIFT 56

static inline Union *to_union(LsInstance *inst)
{
        return (Union *)inst;
}

ino_t union_ino(Union *u, int branch, ino_t ino)
{
        if (u->same_dev || branch < 0)
                return ino;
        /* numbers at or past 2^56 cannot be tagged; they are passed through
         * (ext4, xfs, btrfs, tmpfs and CephFS hand out far smaller ones) */
        if ((uint64_t)ino >> UNION_INO_TAG_SHIFT)
                return ino;
        return (ino_t)((uint64_t)ino | ((uint64_t)(branch + 1) << UNION_INO_TAG_SHIFT));
}

int union_lookup(Union *u, const char *path, UnionEntry *ent)
{
        char parent[PATH_MAX];
        UnionLookStamp stamp;
        const char *name;
        int r, cached;

        ent->branch = -1;
        ent->wh_branch = -1;
        ent->ns_started = atomic_load(&u->ns_started);
        if (!*path) {
                int b;

                r = union_dircache_get(u, "", &ent->pstack);
                if (r < 0)
                        return r;
                b = ent->pstack.idx[0];
                r = union_bops(u, b)->getattr(union_branch(u, b), "", &ent->st);
                if (r == 0)
                        ent->branch = b;
                return r;
        }
        if (!ls_path_valid(path))
                return -EINVAL;
        if (union_path_hidden(path))
                return -ENOENT;
        name = ls_path_split(path, parent, sizeof(parent));
        if (!name)
                return -ENAMETOOLONG;
        union_look_stamp(u, &stamp);
        r = union_dircache_get(u, parent, &ent->pstack);
        if (r < 0)
                return r;
        cached = union_lookcache_get(u, path, &stamp);
        if (cached > 0 &&
            union_bops(u, cached)->getattr(union_branch(u, cached), path, &ent->st) == 0) {
                ent->branch = cached;
                return 0;
        }
        for (unsigned int i = 0; i < ent->pstack.n; i++) {
                int b = ent->pstack.idx[i];

                r = union_bops(u, b)->getattr(union_branch(u, b), path, &ent->st);
                if (r == 0) {
                        ent->branch = b;
                        union_lookcache_put(u, path, b, &stamp);
                        return 0;
                }
                if (r != -ENOENT)
                        return r;
                r = union_whiteout_exists(u, b, parent, name);
                if (r < 0)
                        return r;
                if (r > 0) {
                        ent->wh_branch = b;
                        return -ENOENT;
                }
        }
        return -ENOENT;
}

int union_lower_has(Union *u, const UnionStack *pstack, const char *dir, const char *name)
{
        char path[PATH_MAX];
        struct stat st;
        int r;

        r = ls_path_join(path, sizeof(path), dir, name);
        if (r < 0)
                return r;
        for (unsigned int i = 0; i < pstack->n; i++) {
                int b = pstack->idx[i];

                if (b == 0)
                        continue;
                r = union_bops(u, b)->getattr(union_branch(u, b), path, &st);
                if (r == 0)
                        return 1;
                if (r != -ENOENT)
                        return r;
                r = union_whiteout_exists(u, b, dir, name);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        return 0;
}

/* The inode number of a non-directory: a copy-up's origin (only looked for in
 * impure top directories, see union-private.h), else the branch's number. */
static ino_t union_entry_ino(Union *u, const char *path, UnionEntry *ent)
{
        char parent[PATH_MAX];
        ino_t ino;

        if (ent->branch != 0 || u->n_branches == 1 || ent->pstack.idx[0] != 0)
                return union_ino(u, ent->branch, ent->st.st_ino);
        if (ent->pstack.impure != 0 && ls_path_split(path, parent, sizeof(parent)) &&
            union_dir_impure(u, parent, &ent->pstack)) {
                if (union_origin_cached(u, path, ent->st.st_ino, &ino))
                        return ino;
        } else if (atomic_load(&u->ns_started) != ent->ns_started &&
                   union_origin_get(u, path, &ino)) {
                /* A copy-up marks the parent impure, then publishes the copy
                 * (between ns brackets): the stack read as "not impure" may
                 * predate the mark while the entry found is the new copy. */
                return ino;
        }
        return union_ino(u, ent->branch, ent->st.st_ino);
}

/* The stat a caller sees: st_ino rewritten, nlink 1 for merged directories. */
static int union_stat_fixup(Union *u, const char *path, UnionEntry *ent, struct stat *st)
{
        *st = ent->st;
        if (S_ISDIR(st->st_mode)) {
                UnionStack stack;
                int r = union_dircache_get(u, path, &stack);

                if (r < 0)
                        return r;
                st->st_ino = stack.ino;
                if (stack.n > 1)
                        st->st_nlink = 1;
        } else {
                st->st_ino = union_entry_ino(u, path, ent);
        }
        return 0;
}

static int union_getattr(LsInstance *inst, const char *path, struct stat *st)
{
        Union *u = to_union(inst);
        UnionEntry ent;
        int r;

        r = union_lookup(u, path, &ent);
        if (r < 0)
                return r;
        return union_stat_fixup(u, path, &ent, st);
}

static ssize_t union_readlink(LsInstance *inst, const char *path, char *buf, size_t size)
{
        Union *u = to_union(inst);
        UnionEntry ent;
        int r;

        r = union_lookup(u, path, &ent);
        if (r < 0)
                return r;
        if (!S_ISLNK(ent.st.st_mode))
                return -EINVAL;
        return union_bops(u, ent.branch)->readlink(union_branch(u, ent.branch), path, buf, size);
}

/*
 * Creation: the name must be free in the union, its parent is copied up, and
 * *whp tells whether the top holds a whiteout for it (to be removed once the
 * real entry exists: until then the whiteout keeps lower entries hidden).
 */
static int union_create_prepare(Union *u, const char *path, char *parent, size_t size,
                                const char **namep, UnionEntry *ent, bool *whp)
{
        const char *name;
        int r;

        /* set on every path: gcc -O3 cannot see that callers read them only
         * after success */
        *namep = NULL;
        *whp = false;
        if (!u->writable)
                return -EROFS;
        if (!*path)
                return -EEXIST;
        if (!ls_path_valid(path))
                return -EINVAL;
        name = ls_path_split(path, parent, size);
        if (!name)
                return -ENAMETOOLONG;
        if (union_name_hidden(name))
                return -EINVAL;
        r = union_lookup(u, path, ent);
        if (r == 0)
                return -EEXIST;
        if (r != -ENOENT)
                return r;
        r = union_copyup_dir(u, parent);
        if (r < 0)
                return r;
        *whp = ent->wh_branch == 0;
        *namep = name;
        return 0;
}

static int union_create_finish(Union *u, const char *parent, const char *name, bool wh)
{
        return wh ? union_whiteout_remove(u, parent, name) : 0;
}

static int union_mknod(LsInstance *inst, const char *path, mode_t mode, dev_t rdev,
                       const LsCred *cred)
{
        Union *u = to_union(inst);
        char parent[PATH_MAX];
        const char *name;
        UnionEntry ent;
        bool wh;
        int r;

        r = union_create_prepare(u, path, parent, sizeof(parent), &name, &ent, &wh);
        if (r < 0)
                return r;
        r = union_bops(u, 0)->mknod(union_branch(u, 0), path, mode, rdev, cred);
        if (r < 0)
                return r;
        return union_create_finish(u, parent, name, wh);
}

static int union_mkdir(LsInstance *inst, const char *path, mode_t mode, const LsCred *cred)
{
        Union *u = to_union(inst);
        LsInstance *top = union_branch(u, 0);
        char parent[PATH_MAX], tmp[PATH_MAX];
        const char *name;
        UnionEntry ent;
        bool wh;
        int r;

        r = union_create_prepare(u, path, parent, sizeof(parent), &name, &ent, &wh);
        if (r < 0)
                return r;
        r = wh ? union_lower_has(u, &ent.pstack, parent, name) : 0;
        if (r < 0)
                return r;
        if (r == 0) {
                r = top->ops->mkdir(top, path, mode, cred);
                if (r < 0)
                        return r;
        } else {
                /* a whited-out directory below must not merge into the new
                 * one: build it opaque under a temporary name, then publish */
                r = union_tmp_name(u, tmp, sizeof(tmp), parent);
                if (r >= 0)
                        r = top->ops->mkdir(top, tmp, mode, cred);
                if (r < 0)
                        return r;
                r = union_opaque_create(u, tmp);
                if (r >= 0)
                        r = top->ops->rename(top, tmp, path, 0);
                if (r < 0) {
                        union_top_remove_tree(u, tmp);
                        return r;
                }
        }
        r = union_create_finish(u, parent, name, wh);
        union_dircache_bump(u);
        return r;
}

static int union_symlink(LsInstance *inst, const char *target, const char *path, const LsCred *cred)
{
        Union *u = to_union(inst);
        char parent[PATH_MAX];
        const char *name;
        UnionEntry ent;
        bool wh;
        int r;

        r = union_create_prepare(u, path, parent, sizeof(parent), &name, &ent, &wh);
        if (r < 0)
                return r;
        r = union_bops(u, 0)->symlink(union_branch(u, 0), target, path, cred);
        if (r < 0)
                return r;
        return union_create_finish(u, parent, name, wh);
}

static int union_link(LsInstance *inst, const char *oldpath, const char *newpath)
{
        Union *u = to_union(inst);
        char parent[PATH_MAX];
        const char *name;
        UnionEntry old, ent;
        bool wh;
        int r;

        if (!u->writable)
                return -EROFS;
        r = union_lookup(u, oldpath, &old);
        if (r < 0)
                return r;
        if (S_ISDIR(old.st.st_mode))
                return -EPERM;
        r = union_create_prepare(u, newpath, parent, sizeof(parent), &name, &ent, &wh);
        if (r < 0)
                return r;
        /* a link to a lower file is a link to its copy-up */
        r = union_copyup(u, oldpath, false);
        if (r >= 0)
                r = union_origin_moving(u, oldpath, parent);
        if (r < 0)
                return r;
        r = union_bops(u, 0)->link(union_branch(u, 0), oldpath, newpath);
        if (r < 0)
                return r;
        return union_create_finish(u, parent, name, wh);
}

static int union_unlink(LsInstance *inst, const char *path)
{
        Union *u = to_union(inst);
        char parent[PATH_MAX];
        const char *name;
        UnionEntry ent;
        int r;

        if (!u->writable)
                return -EROFS;
        r = union_lookup(u, path, &ent);
        if (r < 0)
                return r;
        if (S_ISDIR(ent.st.st_mode))
                return -EISDIR;
        name = ls_path_split(path, parent, sizeof(parent));
        r = union_lower_has(u, &ent.pstack, parent, name);
        if (r < 0)
                return r;
        if (r > 0) {
                /* whiteout first: invisible while the top entry still exists,
                 * so no moment shows the lower file */
                r = union_copyup_dir(u, parent);
                if (r >= 0)
                        r = union_whiteout_create(u, parent, name);
                if (r < 0)
                        return r;
        }
        if (ent.branch == 0) {
                union_ns_begin(u);
                r = union_bops(u, 0)->unlink(union_branch(u, 0), path);
                union_origin_forget(u, ent.st.st_ino);
                union_ns_end(u);
                return r;
        }
        return 0;
}

static int union_rmdir(LsInstance *inst, const char *path)
{
        Union *u = to_union(inst);
        char parent[PATH_MAX];
        const char *name;
        UnionEntry ent;
        bool wh = false;
        int r;

        if (!u->writable)
                return -EROFS;
        if (!*path)
                return -EBUSY;
        r = union_lookup(u, path, &ent);
        if (r < 0)
                return r;
        if (!S_ISDIR(ent.st.st_mode))
                return -ENOTDIR;
        r = union_dir_empty(u, path);
        if (r < 0)
                return r;
        name = ls_path_split(path, parent, sizeof(parent));
        r = union_lower_has(u, &ent.pstack, parent, name);
        if (r > 0) {
                r = union_copyup_dir(u, parent);
                if (r >= 0)
                        r = union_whiteout_create(u, parent, name);
                wh = r >= 0;
        }
        if (r >= 0 && ent.branch == 0) {
                /* the top directory may hold our whiteouts and markers */
                r = union_top_clean_dir(u, path);
                if (r >= 0)
                        r = union_bops(u, 0)->rmdir(union_branch(u, 0), path);
                /* The whiteout went first so the lower directory never shows
                 * through; if the top one stays (something was created in it
                 * meanwhile, past the FUSE kernel's locks), it goes again. */
                if (r < 0 && wh)
                        union_whiteout_remove(u, parent, name);
        }
        union_dircache_bump(u);
        return r < 0 ? r : 0;
}

/* Modification of an existing entry: copy it up first (no_data: the caller
 * is about to truncate it to nothing). */
static int union_modify_prepare(Union *u, const char *path, bool no_data)
{
        UnionEntry ent;
        int r;

        if (!u->writable)
                return -EROFS;
        r = union_lookup(u, path, &ent);
        if (r < 0 || ent.branch == 0)
                return r;
        if (S_ISDIR(ent.st.st_mode))
                return union_copyup_dir(u, path);
        return union_copyup(u, path, no_data);
}

/*
 * Rename of a directory. Upper-only (its stack is the top alone): a plain
 * rename in the top. With lower content: the merged tree is copied to a
 * temporary name beside the target, marked opaque, and renamed into place;
 * the source is then whited out and its top part removed. Not atomic as a
 * whole, but every step leaves a consistent tree: until the final rename
 * only an invisible temporary exists, after it both names show the content.
 */
static int union_rename_dir(Union *u, const char *oldpath, const UnionEntry *old,
                            const char *newpath, const UnionEntry *new, bool new_exists)
{
        LsInstance *top = union_branch(u, 0);
        char oparent[PATH_MAX], nparent[PATH_MAX], tmp[PATH_MAX];
        const char *oname, *nname;
        UnionStack stack;
        int old_lower, new_lower, r;

        oname = ls_path_split(oldpath, oparent, sizeof(oparent));
        nname = ls_path_split(newpath, nparent, sizeof(nparent));
        r = union_dircache_get(u, oldpath, &stack);
        if (r < 0)
                return r;
        old_lower = union_lower_has(u, &old->pstack, oparent, oname);
        if (old_lower < 0)
                return old_lower;
        /* the old name's whiteout goes into its parent's top part */
        r = old_lower ? union_copyup_dir(u, oparent) : 0;
        if (r >= 0)
                r = union_copyup_dir(u, nparent);
        if (r < 0)
                return r;
        /* the new name's parent stack, now that the parent is in the top */
        r = union_dircache_get(u, nparent, &stack);
        if (r < 0)
                return r;
        new_lower = union_lower_has(u, &stack, nparent, nname);
        if (new_lower < 0)
                return new_lower;
        if (new_exists && new->branch == 0) {
                /* an empty merged target: only our markers may be in its top */
                r = union_top_clean_dir(u, newpath);
                if (r < 0)
                        return r;
        }
        r = union_dircache_get(u, oldpath, &stack);
        if (r < 0)
                return r;

        if (stack.n == 1 && stack.idx[0] == 0) {
                /* upper-only: a lower directory of the new name would merge
                 * in, unless the moved one is opaque */
                if (new_lower) {
                        r = union_opaque_create(u, oldpath);
                        if (r < 0)
                                return r;
                }
                if (old_lower) {
                        r = union_whiteout_create(u, oparent, oname);
                        if (r < 0)
                                return r;
                }
                r = top->ops->rename(top, oldpath, newpath, 0);
        } else {
                r = union_tmp_name(u, tmp, sizeof(tmp), nparent);
                if (r >= 0)
                        r = union_copy_tree(u, oldpath, tmp);
                if (r < 0)
                        return r;
                r = top->ops->rename(top, tmp, newpath, 0);
                if (r < 0) {
                        union_top_remove_tree(u, tmp);
                        return r;
                }
                if (old_lower)
                        r = union_whiteout_create(u, oparent, oname);
                if (r >= 0 && old->branch == 0)
                        r = union_top_remove_tree(u, oldpath);
        }
        if (r >= 0)
                r = union_whiteout_remove(u, nparent, nname);
        union_dircache_bump(u);
        return r < 0 ? r : 0;
}

static int union_rename_file(Union *u, const char *oldpath, const UnionEntry *old,
                             const char *newpath, unsigned int flags)
{
        LsInstance *top = union_branch(u, 0);
        char oparent[PATH_MAX], nparent[PATH_MAX];
        const char *oname, *nname;
        int old_lower, r;

        oname = ls_path_split(oldpath, oparent, sizeof(oparent));
        nname = ls_path_split(newpath, nparent, sizeof(nparent));
        old_lower = union_lower_has(u, &old->pstack, oparent, oname);
        if (old_lower < 0)
                return old_lower;
        r = union_copyup(u, oldpath, false);
        if (r >= 0)
                r = union_copyup_dir(u, nparent);
        if (r >= 0)
                r = union_origin_moving(u, oldpath, nparent);
        /* whiteout first: invisible while the top still holds the name */
        if (r >= 0 && old_lower)
                r = union_whiteout_create(u, oparent, oname);
        if (r >= 0)
                r = top->ops->rename(top, oldpath, newpath, flags);
        if (r >= 0)
                r = union_whiteout_remove(u, nparent, nname);
        return r < 0 ? r : 0;
}

/* RENAME_EXCHANGE: both names stay, so no whiteout is needed; files are
 * copied up first. Directories with lower content would carry their merged
 * views across, which the top alone cannot express: -EXDEV. */
static int union_rename_exchange(Union *u, const char *oldpath, const UnionEntry *old,
                                 const char *newpath, const UnionEntry *new)
{
        const char *paths[2] = {oldpath, newpath};
        const UnionEntry *ents[2] = {old, new};
        char parent[PATH_MAX];
        int r;

        for (int i = 0; i < 2; i++) {
                if (S_ISDIR(ents[i]->st.st_mode)) {
                        UnionStack stack;

                        r = union_dircache_get(u, paths[i], &stack);
                        if (r < 0)
                                return r;
                        if (stack.n != 1 || stack.idx[0] != 0)
                                return -EXDEV;
                }
        }
        for (int i = 0; i < 2; i++) {
                if (S_ISDIR(ents[i]->st.st_mode))
                        continue;
                r = union_copyup(u, paths[i], false);
                if (r < 0)
                        return r;
        }
        /* each file gets the other's parent */
        for (int i = 0; i < 2; i++) {
                if (S_ISDIR(ents[i]->st.st_mode))
                        continue;
                if (!ls_path_split(paths[1 - i], parent, sizeof(parent)))
                        return -EINVAL;
                r = union_origin_moving(u, paths[i], parent);
                if (r < 0)
                        return r;
        }
        /* a moved directory must not merge with a lower one of its new name */
        for (int i = 0; i < 2; i++) {
                const char *name;
                UnionEntry other;

                if (!S_ISDIR(ents[i]->st.st_mode))
                        continue;
                name = ls_path_split(paths[1 - i], parent, sizeof(parent));
                r = union_lookup(u, paths[1 - i], &other);
                if (r < 0)
                        return r;
                r = union_lower_has(u, &other.pstack, parent, name);
                if (r > 0)
                        r = union_opaque_create(u, paths[i]);
                if (r < 0)
                        return r;
        }
        r = union_bops(u, 0)->rename(union_branch(u, 0), oldpath, newpath, RENAME_EXCHANGE);
        union_dircache_bump(u);
        return r;
}

static int union_rename_locked(Union *u, const char *oldpath, const char *newpath,
                               unsigned int flags)
{
        size_t olen = strlen(oldpath);
        char parent[PATH_MAX];
        UnionEntry old, new;
        const char *nname;
        bool new_exists;
        int r;

        if (!u->writable)
                return -EROFS;
        if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) ||
            ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)))
                return -EINVAL;
        if (!*oldpath || !*newpath)
                return -EBUSY;
        if (!ls_path_valid(newpath))
                return -EINVAL;
        nname = ls_path_split(newpath, parent, sizeof(parent));
        if (!nname)
                return -ENAMETOOLONG;
        if (union_name_hidden(nname))
                return -EINVAL;
        {
                UnionStack pstack; /* the target's parent must be a directory */

                r = union_dircache_get(u, parent, &pstack);
                if (r < 0)
                        return r;
        }
        r = union_lookup(u, oldpath, &old);
        if (r < 0)
                return r;
        r = union_lookup(u, newpath, &new);
        if (r < 0 && r != -ENOENT)
                return r;
        new_exists = r == 0;
        if (strcmp(oldpath, newpath) == 0)
                return 0;
        /* moving a directory beneath itself */
        if (S_ISDIR(old.st.st_mode) && strncmp(newpath, oldpath, olen) == 0 && newpath[olen] == '/')
                return -EINVAL;
        if (flags & RENAME_EXCHANGE) {
                if (!new_exists)
                        return -ENOENT;
                return union_rename_exchange(u, oldpath, &old, newpath, &new);
        }
        if (new_exists) {
                if (flags & RENAME_NOREPLACE)
                        return -EEXIST;
                /* one inode under two names: rename(2) does nothing */
                if (new.branch == old.branch &&new.st.st_ino == old.st.st_ino)
                        return 0;
                if (S_ISDIR(old.st.st_mode) && !S_ISDIR(new.st.st_mode))
                        return -ENOTDIR;
                if (!S_ISDIR(old.st.st_mode) && S_ISDIR(new.st.st_mode))
                        return -EISDIR;
                if (S_ISDIR(new.st.st_mode)) {
                        r = union_dir_empty(u, newpath);
                        if (r < 0)
                                return r;
                } else if (new.branch == 0) {
                        /* replaced: its inode may be freed, its number reused */
                        union_origin_forget(u, new.st.st_ino);
                }
        }
        if (S_ISDIR(old.st.st_mode))
                return union_rename_dir(u, oldpath, &old, newpath, &new, new_exists);
        return union_rename_file(u, oldpath, &old, newpath, new_exists ? 0 : flags);
}

/* A rename changes which top inode paths name (both names, and every path
 * beneath a directory): the origin cache must not store across it. */
static int union_rename(LsInstance *inst, const char *oldpath, const char *newpath,
                        unsigned int flags)
{
        Union *u = to_union(inst);
        int r;

        union_ns_begin(u);
        r = union_rename_locked(u, oldpath, newpath, flags);
        union_ns_end(u);
        return r;
}

static int union_chmod(LsInstance *inst, const char *path, mode_t mode)
{
        Union *u = to_union(inst);
        int r = union_modify_prepare(u, path, false);

        return r < 0 ? r : union_bops(u, 0)->chmod(union_branch(u, 0), path, mode);
}

static int union_chown(LsInstance *inst, const char *path, uid_t uid, gid_t gid)
{
        Union *u = to_union(inst);
        int r = union_modify_prepare(u, path, false);

        return r < 0 ? r : union_bops(u, 0)->chown(union_branch(u, 0), path, uid, gid);
}

static int union_truncate(LsInstance *inst, const char *path, off_t size)
{
        Union *u = to_union(inst);
        int r = union_modify_prepare(u, path, size == 0);

        return r < 0 ? r : union_bops(u, 0)->truncate(union_branch(u, 0), path, size);
}

static int union_utimens(LsInstance *inst, const char *path, const struct timespec ts[2])
{
        Union *u = to_union(inst);
        int r = union_modify_prepare(u, path, false);

        return r < 0 ? r : union_bops(u, 0)->utimens(union_branch(u, 0), path, ts);
}

static int union_setxattr(LsInstance *inst, const char *path, const char *name, const void *value,
                          size_t size, int flags)
{
        Union *u = to_union(inst);
        int r;

        /* the union's own marks cannot be forged or removed */
        if (union_xattr_private(name))
                return -EPERM;
        r = union_modify_prepare(u, path, false);

        if (r < 0)
                return r;
        return union_bops(u, 0)->setxattr(union_branch(u, 0), path, name, value, size, flags);
}

static int union_removexattr(LsInstance *inst, const char *path, const char *name)
{
        Union *u = to_union(inst);
        int r;

        if (union_xattr_private(name))
                return -EPERM;
        r = union_modify_prepare(u, path, false);

        return r < 0 ? r : union_bops(u, 0)->removexattr(union_branch(u, 0), path, name);
}

static ssize_t union_getxattr(LsInstance *inst, const char *path, const char *name, void *value,
                              size_t size)
{
        Union *u = to_union(inst);
        UnionEntry ent;
        int r = union_lookup(u, path, &ent);

        if (r < 0)
                return r;
        if (union_xattr_private(name))
                return -ENODATA; /* as listxattr: not there */
        return union_bops(u, ent.branch)
            ->getxattr(union_branch(u, ent.branch), path, name, value, size);
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

static ssize_t union_listxattr(LsInstance *inst, const char *path, char *list, size_t size)
{
        Union *u = to_union(inst);
        const LsOps *ops;
        LsInstance *b;
        UnionEntry ent;
        char *buf = NULL;
        ssize_t len;
        int r = union_lookup(u, path, &ent);

        if (r < 0)
                return r;
        b = union_branch(u, ent.branch);
        ops = b->ops;
        /* only the top holds our names; a lower layer that once was a top
         * may too: filter every branch's list */
        for (int tries = 0;; tries++) {
                len = ops->listxattr(b, path, NULL, 0);
                if (len <= 0)
                        return len;
                free(buf);
                buf = malloc((size_t)len);
                if (!buf)
                        return -ENOMEM;
                len = ops->listxattr(b, path, buf, (size_t)len);
                if (len != -ERANGE || tries >= 8)
                        break;
        }
        if (len >= 0) {
                len = (ssize_t)xattr_list_filter(buf, (size_t)len);
                if (size && (size_t)len > size)
                        len = -ERANGE;
                else if (size)
                        memcpy(list, buf, (size_t)len);
        }
        free(buf);
        return len;
}

static int union_statfs(LsInstance *inst, const char *path, struct statvfs *st)
{
        Union *u = to_union(inst);
        UnionEntry ent;
        int r = union_lookup(u, path, &ent);

        if (r < 0)
                return r;
        /* space and inodes are what the top can still take */
        return union_bops(u, 0)->statfs(union_branch(u, 0), "", st);
}

/* Joins a symlink target onto the directory holding the link, inside the
 * union's root: ".." stops at the root and an absolute target starts there,
 * as a container sees its root filesystem. */
static int union_symlink_resolve(const char *dir, const char *target, char *out, size_t size)
{
        char buf[PATH_MAX * 2];
        size_t len = 0;
        int r;

        r = snprintf(buf, sizeof(buf), "%s/%s", target[0] == '/' ? "" : dir, target);
        if (r < 0 || (size_t)r >= sizeof(buf))
                return -ENAMETOOLONG;
        for (char *save = NULL, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                size_t n = strlen(c);

                if (strcmp(c, ".") == 0)
                        continue;
                if (strcmp(c, "..") == 0) {
                        while (len > 0 && out[len - 1] != '/')
                                len--;
                        if (len > 0)
                                len--;
                        continue;
                }
                if (len + (len ? 1 : 0) + n + 1 > size)
                        return -ENAMETOOLONG;
                if (len)
                        out[len++] = '/';
                memcpy(out + len, c, n);
                len += n;
        }
        out[len] = '\0';
        return 0;
}

static int union_open_create(Union *u, const char *path, int flags, mode_t mode, const LsCred *cred,
                             LsFile **childp)
{
        char parent[PATH_MAX];
        const char *name;
        UnionEntry ent;
        bool wh;
        int r;

        r = union_create_prepare(u, path, parent, sizeof(parent), &name, &ent, &wh);
        if (r < 0)
                return r;
        r = union_bops(u, 0)->open(union_branch(u, 0), path, flags | O_CREAT | O_EXCL, mode, cred,
                                   childp);
        if (r < 0)
                return r;
        r = union_create_finish(u, parent, name, wh);
        if (r < 0) {
                (*childp)->inst->ops->release(*childp);
                return r;
        }
        return 0;
}

/* Wraps child, opened in branch b; on failure child is released. */
static UnionFile *union_file_new(LsInstance *inst, LsFile *child, int b, ino_t ino, int flags)
{
        UnionFile *uf = calloc(1, sizeof(*uf));

        if (!uf) {
                child->inst->ops->release(child);
                return NULL;
        }
        uf->file.inst = inst;
        uf->file.flags = flags;
        atomic_init(&uf->child, child);
        uf->branch = b;
        uf->ino = ino;
        pthread_mutex_init(&uf->lock, NULL);
        return uf;
}

/* O_TMPFILE: a nameless file of the writable branch, in directory path
 * (which must be there already: nothing is copied up for it). */
static int union_open_tmpfile(Union *u, const char *path, int flags, mode_t mode,
                              const LsCred *cred, LsFile **filep)
{
        LsFile *child;
        UnionFile *uf;
        int r;

        if (!u->writable)
                return -EROFS;
        r = union_bops(u, 0)->open(union_branch(u, 0), path, flags, mode, cred, &child);
        if (r < 0)
                return r;
        uf = union_file_new(&u->inst, child, 0, 0, flags);
        if (!uf)
                return -ENOMEM;
        *filep = &uf->file;
        return 0;
}

static int union_open(LsInstance *inst, const char *path, int flags, mode_t mode,
                      const LsCred *cred, LsFile **filep)
{
        Union *u = to_union(inst);
        bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
        char cur[PATH_MAX], next[PATH_MAX], parent[PATH_MAX];
        LsFile *child = NULL;
        uint64_t copyups;
        bool copied = false;
        UnionFile *uf;
        UnionEntry ent;
        ino_t ino = 0;
        int b, r;

        if (!ls_path_valid(path))
                return -EINVAL;
        if (strlen(path) >= sizeof(cur))
                return -ENAMETOOLONG;
        if ((flags & __O_TMPFILE) == __O_TMPFILE)
                return union_open_tmpfile(u, path, flags, mode, cred, filep);
        strcpy(cur, path);
        copyups = atomic_load(&u->copyups);
        for (int hops = 0;; hops++) {
                r = union_lookup(u, cur, &ent);
                if (r == -ENOENT && (flags & O_CREAT)) {
                        r = union_open_create(u, cur, flags & ~(O_CREAT | O_EXCL), mode, cred,
                                              &child);
                        if (r == -EEXIST && !(flags & O_EXCL) && hops < UNION_SYMLOOP_MAX)
                                continue; /* a racing creator won: open theirs */
                        if (r < 0)
                                return r;
                        b = 0;
                        goto wrap;
                }
                if (r < 0)
                        return r;
                if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
                        return -EEXIST;
                if (!S_ISLNK(ent.st.st_mode) || (flags & O_NOFOLLOW))
                        break;
                /* the union, not the branch, follows a final symlink: its
                 * target may live in another branch */
                if (hops >= UNION_SYMLOOP_MAX)
                        return -ELOOP;
                r = (int)union_bops(u, ent.branch)
                        ->readlink(union_branch(u, ent.branch), cur, next, sizeof(next) - 1);
                if (r < 0)
                        return r;
                next[r] = '\0';
                if (!ls_path_split(cur, parent, sizeof(parent)))
                        parent[0] = '\0';
                r = union_symlink_resolve(parent, next, cur, sizeof(cur));
                if (r < 0)
                        return r;
        }
        b = ent.branch;
        if (write && (flags & LS_O_NOCOPYUP) && (b != 0 || !u->writable)) {
                flags = (flags & ~(O_ACCMODE | O_TRUNC)) | O_RDONLY;
                write = false;
        }
        flags &= ~LS_O_NOCOPYUP;
        if (write) {
                if (!u->writable)
                        return -EROFS;
                if (S_ISDIR(ent.st.st_mode))
                        return -EISDIR;
                if (b != 0) {
                        r = union_copyup(u, cur, (flags & O_TRUNC) != 0);
                        if (r < 0)
                                return r;
                        b = 0;
                        copied = true;
                }
        }
        if (!S_ISDIR(ent.st.st_mode)) {
                /* the number fstat reports, as getattr does; a copy made just
                 * now has its origin, whatever the parent's cached mark says */
                if (b == 0 && copied) {
                        if (!union_origin_get(u, cur, &ino))
                                ino = 0;
                } else if (b == 0) {
                        ino = union_entry_ino(u, cur, &ent);
                } else {
                        ino = union_ino(u, b, ent.st.st_ino);
                }
        }
        r = union_bops(u, b)->open(union_branch(u, b), cur,
                                   (flags & ~(O_CREAT | O_EXCL)) | O_NOFOLLOW, mode, cred, &child);
        if (r < 0)
                return r;
wrap:
        uf = union_file_new(inst, child, b, ino, flags);
        if (!uf)
                return -ENOMEM;
        /* read-only below: a later copy-up must show through this file */
        if (b != 0 && S_ISREG(ent.st.st_mode) && u->writable) {
                /* the counter before the open: a copy-up racing with it is
                 * looked for at the first read */
                atomic_init(&uf->copyups_seen, copyups);
                uf->path = strdup(cur);
                atomic_init(&uf->may_follow, uf->path != NULL);
        }
        *filep = &uf->file;
        return 0;
}

static inline UnionFile *to_file(LsFile *file)
{
        return (UnionFile *)file;
}

/*
 * A file opened read-only in a lower branch before a copy-up of its path goes
 * on with the copy, as overlayfs does: on the next call after the union's
 * copy-up counter moved, the path is looked up again; if the top now holds it
 * and that entry's origin is this file's inode number, the top file is opened
 * read-only and replaces the lower one (which stays open, unused, until
 * release: a call in flight, or a kernel fd a front splices from, may still
 * hold it). Limits: the path is the one it was opened at (a rename after the
 * open is not followed), and a top that refused the origin xattr never
 * matches, so such files keep the lower data.
 */
static void union_file_follow(UnionFile *uf, uint64_t copyups)
{
        Union *u = to_union(uf->file.inst);
        LsInstance *top = union_branch(u, 0);
        static const LsCred nobody = {0, 0}; /* unused: nothing is created */
        LsFile *child;
        UnionEntry ent;
        ino_t origin;

        pthread_mutex_lock(&uf->lock);
        if (!atomic_load(&uf->may_follow) || atomic_load(&uf->copyups_seen) == copyups)
                goto out;
        /* before the lookup: a copy-up after it moves the counter again */
        atomic_store(&uf->copyups_seen, copyups);
        if (union_lookup(u, uf->path, &ent) < 0 || ent.branch != 0 || !S_ISREG(ent.st.st_mode) ||
            !union_origin_get(u, uf->path, &origin) || origin != uf->ino)
                goto out;
        if (top->ops->open(top, uf->path,
                           (uf->file.flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_ACCMODE)) | O_RDONLY |
                               O_NOFOLLOW,
                           0, &nobody, &child) < 0)
                goto out; /* keep the lower data; try again after the next copy-up */
        uf->lower = atomic_load(&uf->child);
        atomic_store(&uf->child, child);
        atomic_store(&uf->may_follow, false);
        free(uf->path);
        uf->path = NULL;
out:
        pthread_mutex_unlock(&uf->lock);
}

/* The branch file to use: one atomic load per call, plus, for a file opened
 * below, one of the union's copy-up counter. */
static inline LsFile *union_file_child(LsFile *file)
{
        UnionFile *uf = to_file(file);

        if (atomic_load_explicit(&uf->may_follow, memory_order_relaxed)) {
                Union *u = to_union(file->inst);
                uint64_t c = atomic_load_explicit(&u->copyups, memory_order_acquire);

                if (c != atomic_load_explicit(&uf->copyups_seen, memory_order_relaxed))
                        union_file_follow(uf, c);
        }
        return atomic_load_explicit(&uf->child, memory_order_acquire);
}

static ssize_t union_pread(LsFile *file, void *buf, size_t size, off_t off)
{
        LsFile *c = union_file_child(file);

        return c->inst->ops->pread(c, buf, size, off);
}

static ssize_t union_pwrite(LsFile *file, const void *buf, size_t size, off_t off)
{
        LsFile *c = union_file_child(file);

        return c->inst->ops->pwrite(c, buf, size, off);
}

static int union_fstat(LsFile *file, struct stat *st)
{
        UnionFile *uf = to_file(file);
        LsFile *c = union_file_child(file);
        int r = c->inst->ops->fstat(c, st);

        /* directories get the branch's number, not the stack's: an open file
         * has no path to find the stack (fronts use getattr for dirs) */
        if (r == 0)
                st->st_ino =
                    uf->ino ? uf->ino : union_ino(to_union(file->inst), uf->branch, st->st_ino);
        return r;
}

static int union_ftruncate(LsFile *file, off_t size)
{
        LsFile *c = union_file_child(file);

        return c->inst->ops->ftruncate(c, size);
}

static int union_fsync(LsFile *file, bool datasync)
{
        LsFile *c = union_file_child(file);

        return c->inst->ops->fsync(c, datasync);
}

static int union_fallocate(LsFile *file, int mode, off_t off, off_t len)
{
        LsFile *c = union_file_child(file);

        return c->inst->ops->fallocate(c, mode, off, len);
}

/* Attribute changes through a handle: only a file open in the top branch
 * may change in place; one open below needs the copy-up the path form does. */
static LsFile *union_file_top_child(LsFile *file)
{
        LsFile *c = union_file_child(file);

        return to_file(file)->branch == 0 && c->inst == union_branch(to_union(file->inst), 0)
                   ? c
                   : NULL;
}

static int union_fchmod(LsFile *file, mode_t mode)
{
        LsFile *c = union_file_top_child(file);

        return c && c->inst->ops->fchmod ? c->inst->ops->fchmod(c, mode) : -EOPNOTSUPP;
}

static int union_fchown(LsFile *file, uid_t uid, gid_t gid)
{
        LsFile *c = union_file_top_child(file);

        return c && c->inst->ops->fchown ? c->inst->ops->fchown(c, uid, gid) : -EOPNOTSUPP;
}

static int union_futimens(LsFile *file, const struct timespec ts[2])
{
        LsFile *c = union_file_top_child(file);

        return c && c->inst->ops->futimens ? c->inst->ops->futimens(c, ts) : -EOPNOTSUPP;
}

static int union_file_fd(LsFile *file)
{
        LsFile *c = union_file_child(file);

        if (!c->inst->ops->file_fd)
                return -EOPNOTSUPP;
        return c->inst->ops->file_fd(c);
}

static int union_release(LsFile *file)
{
        UnionFile *uf = to_file(file);
        LsFile *c = atomic_load(&uf->child);
        int r = c->inst->ops->release(c);

        if (uf->lower)
                uf->lower->inst->ops->release(uf->lower);
        free(uf->path);
        pthread_mutex_destroy(&uf->lock);
        free(uf);
        return r;
}

static void union_destroy(LsInstance *inst)
{
        Union *u = to_union(inst);

        for (size_t i = 0; i < u->n_branches; i++)
                ls_instance_free(u->branches[i]);
        free(u->branches);
        u->dircache = union_dircache_free(u->dircache);
        for (size_t i = 0; i < UNION_COPYUP_LOCKS; i++)
                pthread_mutex_destroy(&u->copyup_locks[i]);
        for (size_t i = 0; i < UNION_ORIGIN_LOCKS; i++)
                pthread_mutex_destroy(&u->origin_locks[i]);
        free(u->origin_slots);
        union_lookcache_free(u->lookcache);
        free(u);
}

static const LsOps union_ops = {
    .name = "union",
    .destroy = union_destroy,
    .getattr = union_getattr,
    .readlink = union_readlink,
    .mknod = union_mknod,
    .mkdir = union_mkdir,
    .symlink = union_symlink,
    .link = union_link,
    .unlink = union_unlink,
    .rmdir = union_rmdir,
    .rename = union_rename,
    .chmod = union_chmod,
    .chown = union_chown,
    .truncate = union_truncate,
    .utimens = union_utimens,
    .setxattr = union_setxattr,
    .getxattr = union_getxattr,
    .listxattr = union_listxattr,
    .removexattr = union_removexattr,
    .statfs = union_statfs,
    .readdir = union_readdir,
    .open = union_open,
    .pread = union_pread,
    .pwrite = union_pwrite,
    .fstat = union_fstat,
    .ftruncate = union_ftruncate,
    .fsync = union_fsync,
    .fallocate = union_fallocate,
    .fchmod = union_fchmod,
    .fchown = union_fchown,
    .futimens = union_futimens,
    .file_fd = union_file_fd,
    .release = union_release,
};

void union_set_copy_up_sync(LsInstance *inst, bool sync)
{
        to_union(inst)->copy_sync = sync;
}

int union_new(LsInstance **branches, size_t n_branches, bool top_writable, LsInstance **instp)
{
        Union *u;
        dev_t dev = 0;
        int r;

        if (n_branches == 0 || n_branches > UNION_BRANCHES_MAX) {
                r = -EINVAL;
                goto fail;
        }
        u = calloc(1, sizeof(*u));
        if (!u) {
                r = -ENOMEM;
                goto fail;
        }
        u->inst.ops = &union_ops;
        u->writable = top_writable;
        u->same_dev = true;
        atomic_init(&u->tmp_counter, 0);
        atomic_init(&u->copyups, 0);
        u->copy_sync = true;
        atomic_init(&u->ns_started, 0);
        atomic_init(&u->ns_finished, 0);
        for (size_t i = 0; i < UNION_COPYUP_LOCKS; i++)
                pthread_mutex_init(&u->copyup_locks[i], NULL);
        for (size_t i = 0; i < UNION_ORIGIN_LOCKS; i++)
                pthread_mutex_init(&u->origin_locks[i], NULL);
        /* one branch: nothing is ever copied up */
        if (n_branches > 1)
                u->origin_slots = calloc(UNION_ORIGIN_SLOTS, sizeof(*u->origin_slots));
        r = union_dircache_new(&u->dircache);
        if (r >= 0 && n_branches > 1)
                r = union_lookcache_new(&u->lookcache);
        u->branches = calloc(n_branches, sizeof(*u->branches));
        if (r < 0 || !u->branches || (n_branches > 1 && !u->origin_slots)) {
                union_destroy(&u->inst);
                r = -ENOMEM;
                goto fail;
        }
        /* from here the union owns the branches */
        memcpy(u->branches, branches, n_branches * sizeof(*branches));
        u->n_branches = n_branches;
        for (size_t i = 0; i < n_branches; i++) {
                struct stat st;

                r = branches[i]->ops->getattr(branches[i], "", &st);
                if (r == 0 && !S_ISDIR(st.st_mode))
                        r = -ENOTDIR;
                if (r < 0) {
                        union_destroy(&u->inst);
                        return r;
                }
                if (i == 0)
                        dev = st.st_dev;
                else if (st.st_dev != dev)
                        u->same_dev = false;
        }
        *instp = &u->inst;
        return 0;
fail:
        for (size_t i = 0; i < n_branches; i++)
                ls_instance_free(branches[i]);
        return r;
}
