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

#define UNION_SYMLOOP_MAX 40
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
        const char *name;
        int r;

        ent->branch = -1;
        ent->wh_branch = -1;
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
        r = union_dircache_get(u, parent, &ent->pstack);
        if (r < 0)
                return r;
        for (unsigned int i = 0; i < ent->pstack.n; i++) {
                int b = ent->pstack.idx[i];

                r = union_bops(u, b)->getattr(union_branch(u, b), path, &ent->st);
                if (r == 0) {
                        ent->branch = b;
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

/* The stat a caller sees: st_ino rewritten, nlink 1 for merged directories. */
static int union_stat_fixup(Union *u, const char *path, const UnionEntry *ent, struct stat *st)
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
                st->st_ino = union_ino(u, ent->branch, st->st_ino);
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

static int union_symlink(LsInstance *inst, const char *target, const char *path,
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
        if (ent.branch == 0)
                return union_bops(u, 0)->unlink(union_branch(u, 0), path);
        return 0;
}

static int union_rmdir(LsInstance *inst, const char *path)
{
        Union *u = to_union(inst);
        char parent[PATH_MAX];
        const char *name;
        UnionEntry ent;
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
        }
        if (r >= 0 && ent.branch == 0) {
                /* the top directory may hold our whiteouts and markers */
                r = union_top_clean_dir(u, path);
                if (r >= 0)
                        r = union_bops(u, 0)->rmdir(union_branch(u, 0), path);
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
        const char *paths[2] = { oldpath, newpath };
        const UnionEntry *ents[2] = { old, new };
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

static int union_rename(LsInstance *inst, const char *oldpath, const char *newpath,
                        unsigned int flags)
{
        Union *u = to_union(inst);
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
        if (S_ISDIR(old.st.st_mode) && strncmp(newpath, oldpath, olen) == 0 &&
            newpath[olen] == '/')
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
                if (new.branch == old.branch && new.st.st_ino == old.st.st_ino)
                        return 0;
                if (S_ISDIR(old.st.st_mode) && !S_ISDIR(new.st.st_mode))
                        return -ENOTDIR;
                if (!S_ISDIR(old.st.st_mode) && S_ISDIR(new.st.st_mode))
                        return -EISDIR;
                if (S_ISDIR(new.st.st_mode)) {
                        r = union_dir_empty(u, newpath);
                        if (r < 0)
                                return r;
                }
        }
        if (S_ISDIR(old.st.st_mode))
                return union_rename_dir(u, oldpath, &old, newpath, &new, new_exists);
        return union_rename_file(u, oldpath, &old, newpath, new_exists ? 0 : flags);
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

static int union_setxattr(LsInstance *inst, const char *path, const char *name,
                          const void *value, size_t size, int flags)
{
        Union *u = to_union(inst);
        int r = union_modify_prepare(u, path, false);

        if (r < 0)
                return r;
        return union_bops(u, 0)->setxattr(union_branch(u, 0), path, name, value, size, flags);
}

static int union_removexattr(LsInstance *inst, const char *path, const char *name)
{
        Union *u = to_union(inst);
        int r = union_modify_prepare(u, path, false);

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
        return union_bops(u, ent.branch)->getxattr(union_branch(u, ent.branch), path, name, value,
                                                   size);
}

static ssize_t union_listxattr(LsInstance *inst, const char *path, char *list, size_t size)
{
        Union *u = to_union(inst);
        UnionEntry ent;
        int r = union_lookup(u, path, &ent);

        if (r < 0)
                return r;
        return union_bops(u, ent.branch)->listxattr(union_branch(u, ent.branch), path, list, size);
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

static int union_open_create(Union *u, const char *path, int flags, mode_t mode,
                             const LsCred *cred, LsFile **childp)
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

static int union_open(LsInstance *inst, const char *path, int flags, mode_t mode,
                      const LsCred *cred, LsFile **filep)
{
        Union *u = to_union(inst);
        bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
        char cur[PATH_MAX], next[PATH_MAX], parent[PATH_MAX];
        LsFile *child = NULL;
        UnionFile *uf;
        UnionEntry ent;
        int b, r;

        if (!ls_path_valid(path))
                return -EINVAL;
        if (strlen(path) >= sizeof(cur))
                return -ENAMETOOLONG;
        strcpy(cur, path);
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
                r = (int)union_bops(u, ent.branch)->readlink(union_branch(u, ent.branch), cur, next,
                                                            sizeof(next) - 1);
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
                }
        }
        r = union_bops(u, b)->open(union_branch(u, b), cur,
                                   (flags & ~(O_CREAT | O_EXCL)) | O_NOFOLLOW, mode, cred, &child);
        if (r < 0)
                return r;
wrap:
        uf = calloc(1, sizeof(*uf));
        if (!uf) {
                child->inst->ops->release(child);
                return -ENOMEM;
        }
        uf->file.inst = inst;
        uf->file.flags = flags;
        uf->child = child;
        uf->branch = b;
        *filep = &uf->file;
        return 0;
}

static inline UnionFile *to_file(LsFile *file)
{
        return (UnionFile *)file;
}

static ssize_t union_pread(LsFile *file, void *buf, size_t size, off_t off)
{
        LsFile *c = to_file(file)->child;

        return c->inst->ops->pread(c, buf, size, off);
}

static ssize_t union_pwrite(LsFile *file, const void *buf, size_t size, off_t off)
{
        LsFile *c = to_file(file)->child;

        return c->inst->ops->pwrite(c, buf, size, off);
}

static int union_fstat(LsFile *file, struct stat *st)
{
        UnionFile *uf = to_file(file);
        LsFile *c = uf->child;
        int r = c->inst->ops->fstat(c, st);

        /* directories too get the branch's number, not the stack's: an open
         * file has no path to find the stack (fronts use getattr for dirs) */
        if (r == 0)
                st->st_ino = union_ino(to_union(file->inst), uf->branch, st->st_ino);
        return r;
}

static int union_ftruncate(LsFile *file, off_t size)
{
        LsFile *c = to_file(file)->child;

        return c->inst->ops->ftruncate(c, size);
}

static int union_fsync(LsFile *file, bool datasync)
{
        LsFile *c = to_file(file)->child;

        return c->inst->ops->fsync(c, datasync);
}

static int union_fallocate(LsFile *file, int mode, off_t off, off_t len)
{
        LsFile *c = to_file(file)->child;

        return c->inst->ops->fallocate(c, mode, off, len);
}

static int union_file_fd(LsFile *file)
{
        LsFile *c = to_file(file)->child;

        if (!c->inst->ops->file_fd)
                return -EOPNOTSUPP;
        return c->inst->ops->file_fd(c);
}

static int union_release(LsFile *file)
{
        UnionFile *uf = to_file(file);
        LsFile *c = uf->child;
        int r = c->inst->ops->release(c);

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
        .file_fd = union_file_fd,
        .release = union_release,
};

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
        for (size_t i = 0; i < UNION_COPYUP_LOCKS; i++)
                pthread_mutex_init(&u->copyup_locks[i], NULL);
        r = union_dircache_new(&u->dircache);
        u->branches = calloc(n_branches, sizeof(*u->branches));
        if (r < 0 || !u->branches) {
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
