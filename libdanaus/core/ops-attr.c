/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Attribute Operations: getattr, setattr, readlink, xattrs, statfs and
 * fsyncdir on handles, with the checks of the kernel's notify_change() and
 * xattr_permission() for fronts that ask for them, and the ACL rules for
 * every front: a chmod rewrites the access ACL (posix_acl_chmod), an ACL
 * xattr is validated and updates the mode (set_posix_acl). All work on a
 * node whose names are gone: the handle keeps the object.
 */
#include <errno.h>
#include <linux/limits.h> /* XATTR_NAME_MAX, XATTR_SIZE_MAX */
#include <linux/xattr.h>
#include <stdlib.h>
#include <string.h>

#include "core/core-private.h"

#define ACL_ACCESS  "system.posix_acl_access"
#define ACL_DEFAULT "system.posix_acl_default"
#define ACL_PROBE   256 /* most ACLs fit: one backend call */

int ls_get_acl(LsNode *ls, bool is_default, void **aclp, size_t *np)
{
        const LsOps *ops = ls_ops(ls);
        const char *name = is_default ? ACL_DEFAULT : ACL_ACCESS;
        char probe[ACL_PROBE];
        ssize_t n;
        int tries;

        *aclp = NULL;
        *np = 0;
        n = ops->getxattr(ls, name, probe, sizeof(probe));
        for (tries = 0; n == -ERANGE && tries < 4; tries++) {
                /* larger than the probe: ask the size, fetch; it may grow
                 * meanwhile, hence the loop */
                void *buf;

                n = ops->getxattr(ls, name, NULL, 0);
                if (n <= 0)
                        break;
                if ((size_t)n > PERM_ACL_SIZE_MAX)
                        return -EINVAL;
                buf = malloc((size_t)n);
                if (!buf)
                        return -ENOMEM;
                n = ops->getxattr(ls, name, buf, (size_t)n);
                if (n >= 0) {
                        *aclp = buf;
                        *np = (size_t)n;
                        return 0;
                }
                free(buf);
        }
        if (n == -ENODATA || n == -EOPNOTSUPP || n == 0)
                return 0; /* none */
        if (n < 0)
                return (int)n;
        *aclp = malloc((size_t)n);
        if (!*aclp)
                return -ENOMEM;
        memcpy(*aclp, probe, (size_t)n);
        *np = (size_t)n;
        return 0;
}

int node_get_acl(CoreNode *node, bool is_default, void **aclp, size_t *np)
{
        return ls_get_acl(node->ls, is_default, aclp, np);
}

int ls_permission(LsNode *ls, const struct stat *st, const CoreCred *cred, int mask)
{
        void *acl;
        size_t n;
        int r;

        if (!cred)
                return -EINVAL;
        r = ls_get_acl(ls, false, &acl, &n);
        if (r >= 0)
                r = perm_check(st, acl, n, cred, mask);
        free(acl);
        return r;
}

int node_permission(CoreNode *node, const struct stat *st, const CoreCred *cred, int mask)
{
        struct stat own;
        int r;

        if (!cred)
                return -EINVAL;
        if (!st) {
                r = node_ops(node)->getattr(node->ls, &own);
                if (r < 0)
                        return r;
                node_set_type(node, own.st_mode);
                st = &own;
        }
        return ls_permission(node->ls, st, cred, mask);
}

int core_getattr(CoreFront *front, CoreNode *node, struct stat *st)
{
        int r = node_ops(node)->getattr(node->ls, st);

        if (r >= 0)
                node_set_type(node, st->st_mode);
        return r;
}

/* The new access ACL after a chmod to mode (posix_acl_chmod), or none. */
static int acl_for_chmod(CoreNode *node, mode_t mode, void **outp, size_t *n_outp)
{
        void *acl, *out = NULL;
        size_t n;
        int r;

        *outp = NULL;
        *n_outp = 0;
        r = node_get_acl(node, false, &acl, &n);
        if (r < 0 || !acl)
                return r;
        out = malloc(n);
        r = out ? perm_acl_chmod(acl, n, mode, out, n) : -ENOMEM;
        free(acl);
        if (r <= 0) {
                free(out);
                return r;
        }
        *outp = out;
        *n_outp = (size_t)r;
        return 0;
}

int core_setattr(CoreFront *front, const CoreCred *cred, CoreNode *node, const LsSetattr *sa_in,
                 unsigned flags, struct stat *stp)
{
        const unsigned mtime_bits = LS_SET_SIZE | LS_SET_MTIME | LS_SET_MTIME_NOW;
        LsSetattr sa = *sa_in;
        bool kernel_mtime = flags & CORE_SETATTR_KERNEL_MTIME;
        void *new_acl = NULL;
        size_t n_new_acl = 0;
        struct stat st;
        int r = 0;

        if (front_ro(front))
                return -EROFS;
        if (front_checks(front)) {
                void *acl;
                size_t n;

                r = cred ? node_ops(node)->getattr(node->ls, &st) : -EINVAL;
                if (r >= 0)
                        r = node_get_acl(node, false, &acl, &n);
                if (r >= 0) {
                        r = perm_setattr(&st, acl, n, cred, &sa,
                                         flags & (PERM_SETATTR_FD_WRITE | PERM_SETATTR_CHOWN));
                        free(acl);
                }
                if (r < 0)
                        return r;
        }
        if (sa.valid & LS_SET_MODE) {
                r = acl_for_chmod(node, sa.mode, &new_acl, &n_new_acl);
                if (r < 0)
                        return r;
        }
        /* The kernel's mtime and the write-backs that keep it (file.c)
         * change under one lock, so a write-back restores either the time
         * from before this call or the one it sets, never a mix. */
        if (kernel_mtime)
                pthread_mutex_lock(&node->wb_lock);
        r = node_ops(node)->setattr(node->ls, &sa, stp ? &st : NULL);
        node_sec_changed(node); /* even after a failure: it may have done part */
        if (kernel_mtime) {
                if (r >= 0 && (sa.valid & LS_SET_MTIME)) {
                        node->wb_mtime = sa.mtime;
                        node->wb_mtime_valid = true;
                        node->wb_gen = atomic_load_explicit(&node->mtime_gen, memory_order_relaxed);
                } else if (r >= 0 && (sa.valid & mtime_bits)) {
                        node->wb_mtime_valid = false; /* the backend's, read again */
                }
                pthread_mutex_unlock(&node->wb_lock);
        } else if (r >= 0 && (sa.valid & mtime_bits)) {
                node_mtime_changed(node);
        }
        if (r >= 0 && new_acl) {
                /* after the mode, as the kernel's notify_change() */
                r = node_ops(node)->setxattr(node->ls, ACL_ACCESS, new_acl, n_new_acl, 0);
                if (r >= 0 && stp)
                        r = node_ops(node)->getattr(node->ls, &st); /* ctime moved */
        }
        free(new_acl);
        if (r < 0)
                return r;
        if (stp)
                *stp = st;
        io_changed(node);
        notify_inode(node, front, (sa.valid & LS_SET_SIZE) ? (sa.size & ~(off_t)4095) : -1, 0);
        return 0;
}

ssize_t core_readlink(CoreFront *front, CoreNode *node, char *buf, size_t size)
{
        return node_ops(node)->readlink(node->ls, buf, size);
}

static bool has_prefix(const char *name, const char *prefix)
{
        return strncmp(name, prefix, strlen(prefix)) == 0;
}

static int xattr_name_check(const char *name)
{
        size_t len = name ? strnlen(name, XATTR_NAME_MAX + 1) : 0;

        /* getxattr(2) & co. */
        return len == 0 || len > XATTR_NAME_MAX ? -ERANGE : 0;
}

/* xattr_permission() (fs/xattr.c) and the capability module's rule for
 * writing security.*: mask W_OK or R_OK. */
static int xattr_may(CoreFront *front, const CoreCred *cred, CoreNode *node, const char *name,
                     int mask)
{
        bool write = mask & W_OK;
        struct stat st;
        int r;

        if (!front_checks(front))
                return 0;
        if (!cred)
                return -EINVAL;
        if (has_prefix(name, XATTR_SYSTEM_PREFIX))
                return 0; /* the ACLs: perm_acl_set() */
        if (has_prefix(name, XATTR_SECURITY_PREFIX))
                return write && !cred->privileged ? -EPERM : 0;
        if (has_prefix(name, XATTR_TRUSTED_PREFIX))
                return cred->privileged ? 0 : (write ? -EPERM : -ENODATA);
        if (!has_prefix(name, XATTR_USER_PREFIX))
                return -EOPNOTSUPP;
        r = node_ops(node)->getattr(node->ls, &st);
        if (r < 0)
                return r;
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
                return write ? -EPERM : -ENODATA;
        if (S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) && write && st.st_uid != cred->uid &&
            !cred->privileged)
                return -EPERM;
        return node_permission(node, &st, cred, mask);
}

static bool acl_name(const char *name, bool *is_defaultp)
{
        *is_defaultp = strcmp(name, ACL_DEFAULT) == 0;
        return *is_defaultp || strcmp(name, ACL_ACCESS) == 0;
}

/* setxattr/removexattr (value NULL) of an ACL: perm_acl_set() decides what
 * to store and the mode that goes with it. */
static int acl_set(CoreFront *front, const CoreCred *cred, CoreNode *node, bool is_default,
                   const void *value, size_t size, int flags)
{
        struct stat st;
        void *out = NULL;
        size_t n_out = 0;
        mode_t mode;
        int r;

        if (!cred)
                return -EINVAL;
        r = node_ops(node)->getattr(node->ls, &st);
        if (r < 0)
                return r;
        if (value && !(out = malloc(size ? size : 1)))
                return -ENOMEM;
        mode = st.st_mode;
        r = perm_acl_set(&st, is_default, value, value ? size : 0, cred, &mode, out, &n_out);
        if (r >= 0 && (mode & 07777) != (st.st_mode & 07777)) {
                LsSetattr sa = {.valid = LS_SET_MODE, .mode = mode & 07777};

                r = node_ops(node)->setattr(node->ls, &sa, NULL);
        }
        if (r >= 0 && n_out > 0) {
                r = node_ops(node)->setxattr(node->ls, is_default ? ACL_DEFAULT : ACL_ACCESS, out,
                                             n_out, flags);
        } else if (r >= 0) {
                r = node_ops(node)->removexattr(node->ls, is_default ? ACL_DEFAULT : ACL_ACCESS);
                if (r == -ENODATA && value)
                        r = 0; /* an ACL the mode says entirely: nothing to keep */
        }
        free(out);
        return r;
}

static void xattr_changed(CoreFront *front, CoreNode *node)
{
        io_changed(node); /* a union copies a lower file up for it */
        notify_inode(node, front, -1, 0);
}

int core_setxattr(CoreFront *front, const CoreCred *cred, CoreNode *node, const char *name,
                  const void *value, size_t size, int flags)
{
        bool is_default;
        int r;

        if (front_ro(front))
                return -EROFS;
        r = xattr_name_check(name);
        if (r < 0)
                return r;
        if (size > XATTR_SIZE_MAX)
                return -E2BIG;
        if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
                return -EINVAL;
        if (acl_name(name, &is_default))
                r = acl_set(front, cred, node, is_default, value ? value : "", size, flags);
        else if ((r = xattr_may(front, cred, node, name, W_OK)) >= 0)
                r = node_ops(node)->setxattr(node->ls, name, value, size, flags);
        node_sec_changed(node); /* an ACL changes the mode; security.capability */
        if (r >= 0)
                xattr_changed(front, node);
        return r;
}

ssize_t core_getxattr(CoreFront *front, const CoreCred *cred, CoreNode *node, const char *name,
                      void *value, size_t size)
{
        int r = xattr_name_check(name);

        if (r >= 0)
                r = xattr_may(front, cred, node, name, R_OK);
        if (r < 0)
                return r;
        return node_ops(node)->getxattr(node->ls, name, value, size);
}

/* The list without trusted.* names, for unprivileged callers of a checking
 * front (the kernel's filesystems hide them). */
static ssize_t list_filtered(CoreNode *node, char *list, size_t size)
{
        ssize_t n, i, kept = 0;
        char *all = NULL;
        int tries;

        for (tries = 0;; tries++) {
                n = node_ops(node)->listxattr(node->ls, NULL, 0);
                if (n <= 0)
                        return n;
                all = malloc((size_t)n);
                if (!all)
                        return -ENOMEM;
                n = node_ops(node)->listxattr(node->ls, all, (size_t)n);
                if (n != -ERANGE || tries >= 4)
                        break;
                free(all);
        }
        for (i = 0; n > 0 && i < n;) {
                size_t len = strnlen(all + i, (size_t)(n - i));

                if (!has_prefix(all + i, XATTR_TRUSTED_PREFIX)) {
                        if (size && (size_t)kept + len + 1 > size) {
                                kept = -ERANGE;
                                break;
                        }
                        if (size)
                                memcpy(list + kept, all + i, len + 1);
                        kept += (ssize_t)len + 1;
                }
                i += (ssize_t)len + 1;
        }
        free(all);
        return n < 0 ? n : kept;
}

ssize_t core_listxattr(CoreFront *front, const CoreCred *cred, CoreNode *node, char *list,
                       size_t size)
{
        if (front_checks(front) && (!cred || !cred->privileged))
                return list_filtered(node, list, size);
        return node_ops(node)->listxattr(node->ls, list, size);
}

int core_removexattr(CoreFront *front, const CoreCred *cred, CoreNode *node, const char *name)
{
        bool is_default;
        int r;

        if (front_ro(front))
                return -EROFS;
        r = xattr_name_check(name);
        if (r < 0)
                return r;
        if (acl_name(name, &is_default))
                r = acl_set(front, cred, node, is_default, NULL, 0, 0);
        else if ((r = xattr_may(front, cred, node, name, W_OK)) >= 0)
                r = node_ops(node)->removexattr(node->ls, name);
        node_sec_changed(node);
        if (r >= 0)
                xattr_changed(front, node);
        return r;
}

int core_statfs(CoreFront *front, CoreNode *node, struct statvfs *st)
{
        return node_ops(node)->statfs(node->ls, st);
}

int core_fsyncdir(CoreFront *front, CoreNode *node, bool datasync)
{
        return node_ops(node)->fsyncdir(node->ls, datasync);
}
