/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Namespace Operations: lookup, the entries that make new objects, link,
 * unlink, rmdir and rename, one name at a time on directory handles, as the
 * kernel's VFS composes them (perm.h says which checks, in which order).
 * Each change, once the backend made it, forgets the directory's negative
 * entries and current listing (dir-state.c) and is told to the other fronts
 * (notify.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h> /* RENAME_* */
#include <stdlib.h>
#include <string.h>

#include "core/core-private.h"
#include "core/new-entry.h"

int core_name_check(const char *name)
{
        if (!name)
                return -EINVAL;
        if (strnlen(name, NAME_MAX + 1) > NAME_MAX)
                return -ENAMETOOLONG;
        return ls_name_valid(name) ? 0 : -EINVAL;
}

int name_lookup(CoreNode *dir, const char *name, CoreNode **nodep, struct stat *stp)
{
        struct stat st;
        unsigned gen;
        LsNode *ls;
        int r;

        if (dir_neg_has(dir, name))
                return -ENOENT;
        /* before the backend looks: a change landing meanwhile keeps the
         * answer from becoming a negative entry */
        gen = dir_gen(dir);
        r = node_ops(dir)->lookup(dir->ls, name, &ls, &st);
        if (r == -ENOENT)
                dir_neg_add(dir, name, gen);
        if (r < 0)
                return r;
        r = node_enter(dir->core, ls, &st, dir, nodep);
        if (r >= 0 && stp)
                *stp = st;
        return r;
}

/* Hands out node to front (one reference) in place of the caller's internal
 * one. */
static int hand_out(CoreFront *front, CoreNode *node, CoreNode **nodep)
{
        int r = 0;

        if (nodep) {
                r = core_front_hold(front, node, 1);
                if (r >= 0)
                        *nodep = node;
        }
        core_node_unref(node);
        return r;
}

int core_lookup(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name,
                CoreNode **nodep, struct stat *stp)
{
        CoreNode *node;
        int r;

        r = core_name_check(name);
        if (r >= 0 && front_checks(front))
                r = node_permission(dir, NULL, cred, X_OK);
        if (r >= 0)
                r = name_lookup(dir, name, &node, stp);
        if (r < 0)
                return r;
        return hand_out(front, node, nodep);
}

/* The attributes of directory dir, for checks and new entries. */
static int dir_attr(CoreNode *dir, struct stat *st)
{
        int r = node_ops(dir)->getattr(dir->ls, st);

        if (r >= 0)
                node_set_type(dir, st->st_mode);
        if (r >= 0 && !S_ISDIR(st->st_mode))
                r = -ENOTDIR;
        return r;
}

static int may_create(CoreFront *front, const CoreCred *cred, CoreNode *dir, const struct stat *dst)
{
        size_t n;
        void *acl;
        int r;

        if (!front_checks(front))
                return 0;
        r = node_get_acl(dir, false, &acl, &n);
        if (r >= 0)
                r = perm_may_create(dst, acl, n, cred);
        free(acl);
        return r;
}

/* A directory's attributes and access ACL, for the checks of one operation
 * (*aclp: malloc'd or NULL). */
typedef struct DirPerm {
        struct stat st;
        void *acl;
        size_t n;
} DirPerm;

/* The first check of an operation on names in dir, as the kernel's path
 * walk makes it before looking at the name: search permission. dp is
 * filled for the checks that follow (dir_perm_free() it, even on error). */
static int dir_may_search(CoreNode *dir, const CoreCred *cred, DirPerm *dp)
{
        int r;

        dp->acl = NULL;
        dp->n = 0;
        if (!cred)
                return -EINVAL;
        r = dir_attr(dir, &dp->st);
        if (r >= 0)
                r = node_get_acl(dir, false, &dp->acl, &dp->n);
        if (r >= 0)
                r = perm_check(&dp->st, dp->acl, dp->n, cred, X_OK);
        return r;
}

static void dir_perm_free(DirPerm *dp)
{
        free(dp->acl);
        dp->acl = NULL;
}

int new_entry_prepare(CoreFront *front, const CoreCred *cred, CoreNode *dir, mode_t mode,
                      NewEntry *ne)
{
        struct stat dst;
        void *dacl = NULL;
        size_t n = 0;
        int r;

        *ne = (NewEntry){.mode = mode};
        if (front_ro(front))
                return -EROFS;
        if (!cred)
                return -EINVAL;
        r = dir_attr(dir, &dst);
        if (r >= 0)
                r = may_create(front, cred, dir, &dst);
        if (r >= 0)
                r = node_get_acl(dir, true, &dacl, &n);
        if (r >= 0 && dacl && (!(ne->acl = malloc(n)) || !(ne->dacl = malloc(n))))
                r = -ENOMEM;
        if (r >= 0)
                r = perm_new_entry(&dst, dacl, n, cred, &ne->mode, &ne->owner, ne->acl, &ne->n_acl,
                                   ne->dacl, &ne->n_dacl);
        free(dacl);
        if (r < 0)
                new_entry_free(ne);
        return r;
}

void new_entry_free(NewEntry *ne)
{
        free(ne->acl);
        free(ne->dacl);
        ne->acl = ne->dacl = NULL;
}

int new_entry_store_acls(const NewEntry *ne, LsNode *ls)
{
        const LsOps *ops = ls_ops(ls);
        int r = 0;

        if (ne->n_acl > 0)
                r = ops->setxattr(ls, "system.posix_acl_access", ne->acl, ne->n_acl, 0);
        if (r >= 0 && ne->n_dacl > 0)
                r = ops->setxattr(ls, "system.posix_acl_default", ne->dacl, ne->n_dacl, 0);
        return r;
}

/* After a new entry name (handle ls, attributes st) was made in dir: its
 * ACLs stored (or the entry removed again: fail closed), the directory's
 * state and the other fronts told, the node handed out. */
static int new_entry_done(CoreFront *front, CoreNode *dir, const char *name, NewEntry *ne,
                          LsNode *ls, const struct stat *st, CoreNode **nodep, struct stat *stp)
{
        CoreNode *node;
        int r;

        r = new_entry_store_acls(ne, ls);
        new_entry_free(ne);
        if (r < 0) {
                if (S_ISDIR(st->st_mode))
                        node_ops(dir)->rmdir(dir->ls, name);
                else
                        node_ops(dir)->unlink(dir->ls, name);
                ls_node_unref(ls);
                return r;
        }
        dir_changed(dir, NULL);
        notify_entry(dir, name, NULL, false, front);
        r = node_enter(dir->core, ls, st, dir, &node);
        if (r < 0)
                return r;
        if (stp)
                *stp = *st;
        return hand_out(front, node, nodep);
}

int core_mknod(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name, mode_t mode,
               dev_t rdev, CoreNode **nodep, struct stat *stp)
{
        struct stat st;
        NewEntry ne;
        LsNode *ls;
        int r;

        if (!(mode & S_IFMT))
                mode |= S_IFREG; /* mknod(2): 0 means a regular file */
        if (S_ISDIR(mode) || S_ISLNK(mode))
                return -EINVAL;
        r = core_name_check(name);
        if (r >= 0)
                r = new_entry_prepare(front, cred, dir, mode, &ne);
        if (r < 0)
                return r;
        r = node_ops(dir)->mknod(dir->ls, name, ne.mode, rdev, &ne.owner, &ls, &st);
        if (r < 0) {
                new_entry_free(&ne);
                return r;
        }
        return new_entry_done(front, dir, name, &ne, ls, &st, nodep, stp);
}

int core_mkdir(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name, mode_t mode,
               CoreNode **nodep, struct stat *stp)
{
        struct stat st;
        NewEntry ne;
        LsNode *ls;
        int r;

        r = core_name_check(name);
        if (r >= 0)
                r = new_entry_prepare(front, cred, dir, S_IFDIR | (mode & 07777), &ne);
        if (r < 0)
                return r;
        r = node_ops(dir)->mkdir(dir->ls, name, ne.mode & 07777, &ne.owner, &ls, &st);
        if (r < 0) {
                new_entry_free(&ne);
                return r;
        }
        return new_entry_done(front, dir, name, &ne, ls, &st, nodep, stp);
}

int core_symlink(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name,
                 const char *target, CoreNode **nodep, struct stat *stp)
{
        struct stat st;
        NewEntry ne;
        LsNode *ls;
        size_t len;
        int r;

        if (!target)
                return -EINVAL;
        len = strnlen(target, PATH_MAX);
        if (len == 0)
                return -ENOENT; /* symlink(2) refuses an empty target */
        if (len >= PATH_MAX)
                return -ENAMETOOLONG;
        r = core_name_check(name);
        if (r >= 0)
                r = new_entry_prepare(front, cred, dir, S_IFLNK | 0777, &ne);
        if (r < 0)
                return r;
        r = node_ops(dir)->symlink(dir->ls, name, target, &ne.owner, &ls, &st);
        if (r < 0) {
                new_entry_free(&ne);
                return r;
        }
        return new_entry_done(front, dir, name, &ne, ls, &st, nodep, stp);
}

int core_link(CoreFront *front, const CoreCred *cred, CoreNode *node, CoreNode *newdir,
              const char *newname, struct stat *stp)
{
        DirPerm dp = {0};
        struct stat st, tst;
        void *acl = NULL;
        LsNode *tls;
        size_t n;
        int r;

        if (front_ro(front))
                return -EROFS;
        r = core_name_check(newname);
        if (r >= 0)
                r = node_ops(node)->getattr(node->ls, &st);
        if (r >= 0 && front_checks(front)) {
                /* do_linkat()'s order: the new name's directory searched
                 * and the name free (filename_create), then
                 * protected_hardlinks (may_linkat), then may_create, then
                 * the type (vfs_link) */
                r = dir_may_search(newdir, cred, &dp);
                if (r >= 0 && !dir_neg_has(newdir, newname)) {
                        r = node_ops(newdir)->lookup(newdir->ls, newname, &tls, &tst);
                        if (r >= 0) {
                                ls_node_unref(tls);
                                r = -EEXIST;
                        } else if (r == -ENOENT) {
                                r = 0;
                        }
                }
                if (r >= 0)
                        r = node_get_acl(node, false, &acl, &n);
                if (r >= 0)
                        r = perm_may_link(&st, acl, n, cred);
                free(acl);
                if (r >= 0)
                        r = perm_may_create(&dp.st, dp.acl, dp.n, cred);
                dir_perm_free(&dp);
        }
        if (r >= 0 && S_ISDIR(st.st_mode))
                r = -EPERM;
        if (r >= 0)
                r = node_ops(node)->link(node->ls, newdir->ls, newname, &st);
        if (r < 0)
                return r;
        dir_changed(newdir, NULL);
        io_changed(node); /* a union copies a lower file up to link it */
        notify_entry(newdir, newname, node, false, front);
        if (stp)
                *stp = st;
        return core_front_hold(front, node, 1);
}

/* unlink and rmdir */
static int remove_entry(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name,
                        bool isdir)
{
        bool checks = front_checks(front);
        DirPerm dp = {0};
        struct stat vst;
        CoreNode *child;
        LsNode *vls;
        int r;

        if (front_ro(front))
                return -EROFS;
        r = core_name_check(name);
        /* search permission before the name is looked at: in a directory
         * the caller may not search, which names exist is not its to know */
        if (r >= 0 && checks)
                r = dir_may_search(dir, cred, &dp);
        if (r >= 0 && dir_neg_has(dir, name))
                r = -ENOENT;
        if (r >= 0)
                r = node_ops(dir)->lookup(dir->ls, name, &vls, &vst);
        if (r < 0) {
                dir_perm_free(&dp);
                return r;
        }
        /* the node, if some front or request has it: it is told */
        child = node_find(dir->core, vls);
        ls_node_unref(vls);
        /* may_delete()'s order: permission, then the type */
        if (checks)
                r = perm_may_delete(&dp.st, dp.acl, dp.n, &vst, cred);
        dir_perm_free(&dp);
        if (r >= 0 && isdir && !S_ISDIR(vst.st_mode))
                r = -ENOTDIR;
        if (r >= 0 && !isdir && S_ISDIR(vst.st_mode))
                r = -EISDIR;
        if (r >= 0)
                r = isdir ? node_ops(dir)->rmdir(dir->ls, name)
                          : node_ops(dir)->unlink(dir->ls, name);
        if (r >= 0) {
                dir_changed(dir, name);
                if (child && isdir)
                        dir_changed(child, NULL); /* empty now, and dead */
                else if (child)
                        node_mtime_changed(child);
                notify_entry(dir, name, child, true, front);
        }
        core_node_unref(child);
        return r;
}

int core_unlink(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name)
{
        return remove_entry(front, cred, dir, name, false);
}

int core_rmdir(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name)
{
        return remove_entry(front, cred, dir, name, true);
}

/* rename's permission checks after the lookups (perm.h): od/nd the
 * parents' (searched already), sls/dls the handles of the source and the
 * target (NULL: none), looked up for this call: a directory's own write
 * permission is read through its handle whether or not it has a node. */
static int may_rename(const CoreCred *cred, CoreNode *olddir, const DirPerm *od, CoreNode *newdir,
                      const DirPerm *nd, LsNode *sls, const struct stat *src, LsNode *dls,
                      const struct stat *dst, unsigned flags)
{
        int r;

        r = perm_may_delete(&od->st, od->acl, od->n, src, cred);
        if (r >= 0 && dls)
                r = perm_may_delete(&nd->st, nd->acl, nd->n, dst, cred);
        if (r >= 0 && !dls)
                r = perm_may_create(&nd->st, nd->acl, nd->n, cred);
        /* a directory moving to another parent: its ".." changes */
        if (r >= 0 && olddir != newdir && S_ISDIR(src->st_mode))
                r = ls_permission(sls, src, cred, W_OK);
        if (r >= 0 && olddir != newdir && (flags & RENAME_EXCHANGE) && dls && S_ISDIR(dst->st_mode))
                r = ls_permission(dls, dst, cred, W_OK);
        return r;
}

int core_rename(CoreFront *front, const CoreCred *cred, CoreNode *olddir, const char *oldname,
                CoreNode *newdir, const char *newname, unsigned flags)
{
        bool checks = front_checks(front);
        DirPerm od = {0}, nd = {0};
        struct stat src, dst;
        CoreNode *srcn = NULL, *dstn = NULL;
        LsNode *sls = NULL, *dls = NULL;
        int r;

        if (front_ro(front))
                return -EROFS;
        if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
            (flags & (RENAME_NOREPLACE | RENAME_EXCHANGE)) == (RENAME_NOREPLACE | RENAME_EXCHANGE))
                return -EINVAL;
        r = core_name_check(oldname);
        if (r >= 0)
                r = core_name_check(newname);
        /* both parents searched before either name is looked at */
        if (r >= 0 && checks)
                r = dir_may_search(olddir, cred, &od);
        if (r >= 0 && checks)
                r = dir_may_search(newdir, cred, &nd);
        if (r >= 0)
                r = node_ops(olddir)->lookup(olddir->ls, oldname, &sls, &src);
        if (r >= 0) {
                r = node_ops(newdir)->lookup(newdir->ls, newname, &dls, &dst);
                if (r == -ENOENT) {
                        dls = NULL;
                        r = (flags & RENAME_EXCHANGE) ? -ENOENT : 0;
                } else if (r >= 0 && (flags & RENAME_NOREPLACE)) {
                        r = -EEXIST;
                }
        }
        /* The handles are held until the checks are done; the nodes, if
         * something has them: a moved directory's parent changes, and
         * fronts holding them are told. Handles are unique: two names of
         * one file give one node. */
        if (r >= 0 && checks)
                r = may_rename(cred, olddir, &od, newdir, &nd, sls, &src, dls, &dst, flags);
        dir_perm_free(&od);
        dir_perm_free(&nd);
        if (r >= 0) {
                srcn = node_find(olddir->core, sls);
                if (dls)
                        dstn = node_find(newdir->core, dls);
        }
        ls_node_unref(sls);
        ls_node_unref(dls);
        if (r >= 0)
                r = node_ops(olddir)->rename(olddir->ls, oldname, newdir->ls, newname, flags);
        if (r >= 0) {
                dir_changed(olddir, (flags & RENAME_EXCHANGE) ? NULL : oldname);
                if (newdir != olddir)
                        dir_changed(newdir, NULL);
                if (srcn && S_ISDIR(src.st_mode))
                        node_set_parent(srcn, newdir);
                if (dstn && (flags & RENAME_EXCHANGE) && S_ISDIR(dst.st_mode))
                        node_set_parent(dstn, olddir);
                if (flags & RENAME_EXCHANGE) {
                        notify_entry(olddir, oldname, dstn, false, front);
                        notify_entry(newdir, newname, srcn, false, front);
                } else {
                        /* the old name is gone, but src lives on under the
                         * new one: an entry invalidation, never a delete
                         * (which would make another mount's kernel take a
                         * moved directory for removed); the new name names
                         * src now, and what it named lost a link */
                        notify_entry(olddir, oldname, srcn, false, front);
                        notify_entry(newdir, newname, dstn != srcn ? dstn : NULL,
                                     dstn && dstn != srcn, front);
                        if (dstn && dstn != srcn && S_ISDIR(dst.st_mode))
                                dir_changed(dstn, NULL);
                }
        }
        core_node_unref(srcn);
        core_node_unref(dstn);
        return r;
}
