/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Permission checks: Linux's VFS and POSIX ACL rules, from the caller's
 * credentials, for both front ends. Each function follows the kernel routine
 * named in its comment (fs/namei.c, fs/attr.c, fs/inode.c, fs/posix_acl.c,
 * fs/open.c of Linux 6.x); tests/unit/test-perm.c checks them against the
 * running kernel.
 *
 * ACL values are untrusted: every entry is read with memcpy at an offset
 * below the validated size, never through a cast pointer.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "core/perm.h"

#define S_IRWXUGO (S_IRWXU | S_IRWXG | S_IRWXO)

#define ACL_HEADER_SIZE sizeof(struct posix_acl_xattr_header)
#define ACL_ENTRY_SIZE  sizeof(struct posix_acl_xattr_entry)
#define ACL_PERMS       (ACL_READ | ACL_WRITE | ACL_EXECUTE)

typedef struct AclEntry {
        uint16_t tag;
        uint16_t perm;
        uint32_t id;
} AclEntry;

static AclEntry acl_entry(const void *acl, size_t i)
{
        struct posix_acl_xattr_entry raw;
        AclEntry e;

        memcpy(&raw, (const char *)acl + ACL_HEADER_SIZE + i * ACL_ENTRY_SIZE, sizeof(raw));
        e.tag = le16toh(raw.e_tag);
        e.perm = le16toh(raw.e_perm);
        e.id = le32toh(raw.e_id);
        return e;
}

/* Writes entry i as the kernel stores it (posix_acl_to_xattr): the unnamed
 * entries carry ACL_UNDEFINED_ID. */
static void acl_put(void *acl, size_t i, AclEntry e)
{
        struct posix_acl_xattr_entry raw;

        raw.e_tag = htole16(e.tag);
        raw.e_perm = htole16(e.perm);
        if (e.tag == ACL_USER || e.tag == ACL_GROUP)
                raw.e_id = htole32(e.id);
        else
                raw.e_id = htole32((uint32_t)ACL_UNDEFINED_ID);
        memcpy((char *)acl + ACL_HEADER_SIZE + i * ACL_ENTRY_SIZE, &raw, sizeof(raw));
}

static void acl_put_header(void *acl)
{
        struct posix_acl_xattr_header h = {.a_version = htole32(POSIX_ACL_XATTR_VERSION)};

        memcpy(acl, &h, sizeof(h));
}

/* posix_acl_from_xattr(): the number of entries (0: no ACL), -EINVAL or
 * -EOPNOTSUPP. Checks sizes, the version, tags and named ids. */
static int acl_parse(const void *acl, size_t size)
{
        struct posix_acl_xattr_header h;
        size_t count;

        if (!acl || size == 0) /* an empty value is no ACL (ext4_get_acl) */
                return 0;
        if (size < ACL_HEADER_SIZE || size > PERM_ACL_SIZE_MAX)
                return -EINVAL;
        memcpy(&h, acl, sizeof(h));
        if (le32toh(h.a_version) != POSIX_ACL_XATTR_VERSION)
                return -EOPNOTSUPP;
        if ((size - ACL_HEADER_SIZE) % ACL_ENTRY_SIZE)
                return -EINVAL;
        count = (size - ACL_HEADER_SIZE) / ACL_ENTRY_SIZE;
        for (size_t i = 0; i < count; i++) {
                AclEntry e = acl_entry(acl, i);

                switch (e.tag) {
                case ACL_USER_OBJ:
                case ACL_GROUP_OBJ:
                case ACL_MASK:
                case ACL_OTHER:
                        break;
                case ACL_USER:
                case ACL_GROUP:
                        if (e.id == (uint32_t)ACL_UNDEFINED_ID)
                                return -EINVAL;
                        break;
                default:
                        return -EINVAL;
                }
        }
        return (int)count;
}

/* posix_acl_valid(): entry order and required entries, rwx bits only. */
static int acl_check(const void *acl, size_t count)
{
        enum { S_USER_OBJ, S_USER, S_GROUP, S_OTHER, S_DONE } state = S_USER_OBJ;
        bool needs_mask = false;

        for (size_t i = 0; i < count; i++) {
                AclEntry e = acl_entry(acl, i);

                if (e.perm & ~ACL_PERMS)
                        return -EINVAL;
                switch (e.tag) {
                case ACL_USER_OBJ:
                        if (state != S_USER_OBJ)
                                return -EINVAL;
                        state = S_USER;
                        break;
                case ACL_USER:
                        if (state != S_USER)
                                return -EINVAL;
                        needs_mask = true;
                        break;
                case ACL_GROUP_OBJ:
                        if (state != S_USER)
                                return -EINVAL;
                        state = S_GROUP;
                        break;
                case ACL_GROUP:
                        if (state != S_GROUP)
                                return -EINVAL;
                        needs_mask = true;
                        break;
                case ACL_MASK:
                        if (state != S_GROUP)
                                return -EINVAL;
                        state = S_OTHER;
                        break;
                case ACL_OTHER:
                        if (state == S_OTHER || (state == S_GROUP && !needs_mask)) {
                                state = S_DONE;
                                break;
                        }
                        return -EINVAL;
                default:
                        return -EINVAL;
                }
        }
        return state == S_DONE ? 0 : -EINVAL;
}

int perm_acl_valid(const void *acl, size_t acl_size)
{
        int count = acl_parse(acl, acl_size);
        int r;

        if (count <= 0)
                return count;
        r = acl_check(acl, (size_t)count);
        return r < 0 ? r : count;
}

/* An ACL for evaluation: the entry count, 0 for none, -EINVAL when invalid
 * (as the kernel fails a permission check on an ACL it cannot read). */
static int acl_load(const void *acl, size_t acl_size)
{
        int count = perm_acl_valid(acl, acl_size);

        return count < 0 ? -EINVAL : count;
}

bool perm_in_group(const CoreCred *c, gid_t gid)
{
        if (c->gid == gid)
                return true;
        for (size_t i = 0; i < c->n_groups; i++)
                if (c->groups[i] == gid)
                        return true;
        return false;
}

static bool owner_or_privileged(const struct stat *st, const CoreCred *c)
{
        return st->st_uid == c->uid || c->privileged;
}

static bool in_group_or_privileged(gid_t gid, const CoreCred *c)
{
        return perm_in_group(c, gid) || c->privileged;
}

/* posix_acl_permission(): want is rwx; the owner never gets here. */
static int acl_permission(const struct stat *st, const void *acl, size_t count, const CoreCred *c,
                          int want)
{
        bool found = false;
        size_t i;

        for (i = 0; i < count; i++) {
                AclEntry e = acl_entry(acl, i);

                switch (e.tag) {
                case ACL_USER_OBJ:
                        if (st->st_uid == c->uid)
                                goto check_perm;
                        break;
                case ACL_USER:
                        if (e.id == c->uid)
                                goto mask;
                        break;
                case ACL_GROUP_OBJ:
                        if (perm_in_group(c, st->st_gid)) {
                                found = true;
                                if ((e.perm & want) == want)
                                        goto mask;
                        }
                        break;
                case ACL_GROUP:
                        if (perm_in_group(c, e.id)) {
                                found = true;
                                if ((e.perm & want) == want)
                                        goto mask;
                        }
                        break;
                case ACL_MASK:
                        break;
                case ACL_OTHER:
                        if (found)
                                return -EACCES;
                        goto check_perm;
                }
        }
        return -EACCES; /* unreachable for a checked ACL: OTHER ends it */

mask:
        for (size_t j = i + 1; j < count; j++) {
                AclEntry m = acl_entry(acl, j);

                if (m.tag == ACL_MASK) {
                        AclEntry e = acl_entry(acl, i);

                        return (e.perm & m.perm & want) == want ? 0 : -EACCES;
                }
        }
check_perm:
        return (acl_entry(acl, i).perm & want) == want ? 0 : -EACCES;
}

/* acl_permission_check(): mode bits, with the ACL for everyone but the
 * owner, and only while the group class has some bit (the kernel's
 * shortcut: with a zero mask a named user falls back to the mode). */
static int dac_check(const struct stat *st, const void *acl, size_t count, const CoreCred *c,
                     int mask)
{
        mode_t mode = st->st_mode;

        if (st->st_uid == c->uid)
                return (mask & ~(mode >> 6)) ? -EACCES : 0;
        if (count > 0 && (mode & S_IRWXG))
                return acl_permission(st, acl, count, c, mask);
        if ((mask & (mode ^ (mode >> 3))) && perm_in_group(c, st->st_gid))
                mode >>= 3;
        return (mask & ~mode) ? -EACCES : 0;
}

int perm_check(const struct stat *st, const void *acl, size_t acl_size, const CoreCred *c, int mask)
{
        int count = acl_load(acl, acl_size);
        int r;

        if (count < 0)
                return count;
        mask &= R_OK | W_OK | X_OK;
        r = dac_check(st, acl, (size_t)count, c, mask);
        if (r != -EACCES || !c->privileged)
                return r;
        /* generic_permission(): the capability overrides */
        if (S_ISDIR(st->st_mode))
                return 0;
        if (mask == R_OK)
                return 0;
        if (!(mask & X_OK) || (st->st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)))
                return 0;
        return -EACCES;
}

int perm_may_open(const struct stat *st, const void *acl, size_t acl_size, const CoreCred *c,
                  int flags)
{
        static const int acc_mode[4] = {R_OK, W_OK, R_OK | W_OK, R_OK | W_OK};
        int mask;
        int r;

        if (flags & O_PATH)
                return 0;
        mask = acc_mode[flags & O_ACCMODE];
        if (flags & O_TRUNC)
                mask |= W_OK;
        if (S_ISLNK(st->st_mode))
                return -ELOOP;
        if (S_ISDIR(st->st_mode) && (mask & W_OK))
                return -EISDIR;
        r = perm_check(st, acl, acl_size, c, mask);
        if (r < 0)
                return r;
        if ((flags & O_NOATIME) && !owner_or_privileged(st, c))
                return -EPERM;
        return 0;
}

int perm_may_create(const struct stat *dir, const void *dir_acl, size_t n, const CoreCred *c)
{
        return perm_check(dir, dir_acl, n, c, W_OK | X_OK);
}

int perm_may_delete(const struct stat *dir, const void *dir_acl, size_t n,
                    const struct stat *victim, const CoreCred *c)
{
        int r = perm_check(dir, dir_acl, n, c, W_OK | X_OK);

        if (r < 0)
                return r;
        /* check_sticky() */
        if ((dir->st_mode & S_ISVTX) && victim->st_uid != c->uid && dir->st_uid != c->uid &&
            !c->privileged)
                return -EPERM;
        return 0;
}

int perm_may_link(const struct stat *st, const void *acl, size_t acl_size, const CoreCred *c)
{
        mode_t mode = st->st_mode;
        int r;

        if (owner_or_privileged(st, c))
                return 0;
        /* safe_hardlink_source() */
        if (!S_ISREG(mode) || (mode & S_ISUID) ||
            (mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
                return -EPERM;
        r = perm_check(st, acl, acl_size, c, R_OK | W_OK);
        if (r == -EACCES)
                return -EPERM;
        return r;
}

/* posix_acl_create_masq(): masks a copy of the default ACL (written
 * canonically to out) and the mode by each other; returns whether the ACL
 * says more than the mode. */
static bool acl_create_masq(const void *acl, size_t count, mode_t *modep, void *out)
{
        mode_t mode = *modep;
        size_t group_obj = count, mask_obj = count;
        bool not_equiv = false;

        acl_put_header(out);
        for (size_t i = 0; i < count; i++) {
                AclEntry e = acl_entry(acl, i);

                switch (e.tag) {
                case ACL_USER_OBJ:
                        e.perm &= (mode >> 6) | ~S_IRWXO;
                        mode &= (e.perm << 6) | ~S_IRWXU;
                        break;
                case ACL_USER:
                case ACL_GROUP:
                        not_equiv = true;
                        break;
                case ACL_GROUP_OBJ:
                        group_obj = i;
                        break;
                case ACL_OTHER:
                        e.perm &= mode | ~S_IRWXO;
                        mode &= e.perm | ~S_IRWXO;
                        break;
                case ACL_MASK:
                        mask_obj = i;
                        not_equiv = true;
                        break;
                }
                acl_put(out, i, e);
        }
        /* A checked ACL has a GROUP_OBJ, so one of the two exists. */
        size_t g = mask_obj < count ? mask_obj : group_obj;
        AclEntry e = acl_entry(out, g);

        e.perm &= (mode >> 3) | ~S_IRWXO;
        mode &= (e.perm << 3) | ~S_IRWXG;
        acl_put(out, g, e);
        *modep = (*modep & ~(mode_t)S_IRWXUGO) | (mode & S_IRWXUGO);
        return not_equiv;
}

static void acl_copy(const void *acl, size_t count, void *out)
{
        acl_put_header(out);
        for (size_t i = 0; i < count; i++)
                acl_put(out, i, acl_entry(acl, i));
}

int perm_new_entry(const struct stat *dir, const void *default_acl, size_t n, const CoreCred *c,
                   mode_t *modep, LsCred *ownerp, void *acl_out, size_t *n_acl_out, void *dacl_out,
                   size_t *n_dacl_out)
{
        mode_t mode = *modep;
        mode_t type = mode & S_IFMT;
        int count;

        *n_acl_out = 0;
        *n_dacl_out = 0;
        count = acl_load(default_acl, n);
        if (count < 0)
                return count;

        if (type == 0)
                type = S_IFREG;
        /* vfs_prepare_mode(): mode_strip_sgid(), then the bits each call
         * may set (mkdir: no S_ISUID/S_ISGID) */
        if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) && type != S_IFDIR &&
            (dir->st_mode & S_ISGID) && !in_group_or_privileged(dir->st_gid, c))
                mode &= ~(mode_t)S_ISGID;
        if (type == S_IFDIR)
                mode &= S_IRWXUGO | S_ISVTX;
        else if (type == S_IFLNK)
                mode = S_IRWXUGO;
        else
                mode &= S_IRWXUGO | S_ISUID | S_ISGID | S_ISVTX;

        /* inode_init_owner() */
        ownerp->uid = c->uid;
        if (dir->st_mode & S_ISGID) {
                ownerp->gid = dir->st_gid;
                if (type == S_IFDIR)
                        mode |= S_ISGID;
        } else {
                ownerp->gid = c->gid;
        }

        /* posix_acl_create() */
        if (type != S_IFLNK) {
                if (count == 0) {
                        mode &= ~(c->umask & S_IRWXUGO);
                } else {
                        if (acl_create_masq(default_acl, (size_t)count, &mode, acl_out))
                                *n_acl_out = n;
                        if (type == S_IFDIR) {
                                acl_copy(default_acl, (size_t)count, dacl_out);
                                *n_dacl_out = n;
                        }
                }
        }
        *modep = type | mode;
        return 0;
}

/* setattr_should_drop_sgid(): S_ISGID with group execute always goes; a
 * S_ISGID without it goes when the caller is not in the group. */
static bool should_drop_sgid(const struct stat *st, const CoreCred *c)
{
        if (!(st->st_mode & S_ISGID))
                return false;
        if (st->st_mode & S_IXGRP)
                return true;
        return !in_group_or_privileged(st->st_gid, c);
}

mode_t perm_write_killpriv(const struct stat *st, const CoreCred *c)
{
        mode_t kill = 0;

        /* setattr_should_drop_suidgid() */
        if (!S_ISREG(st->st_mode) || c->privileged)
                return 0;
        if (st->st_mode & S_ISUID)
                kill |= S_ISUID;
        if (should_drop_sgid(st, c))
                kill |= S_ISGID;
        return kill ? st->st_mode & ~kill : 0;
}

int perm_setattr(const struct stat *st, const void *acl, size_t n, const CoreCred *c, LsSetattr *sa,
                 unsigned flags)
{
        const unsigned times = LS_SET_ATIME | LS_SET_MTIME | LS_SET_ATIME_NOW | LS_SET_MTIME_NOW;
        const unsigned touch = LS_SET_ATIME_NOW | LS_SET_MTIME_NOW;
        bool chown = (sa->valid & (LS_SET_UID | LS_SET_GID)) || (flags & PERM_SETATTR_CHOWN);
        bool force = false;
        mode_t kill = 0;
        int r;

        /* vfs_truncate() */
        if (sa->valid & LS_SET_SIZE) {
                if (S_ISDIR(st->st_mode))
                        return -EISDIR;
                if (!S_ISREG(st->st_mode))
                        return -EINVAL;
                if (!(flags & PERM_SETATTR_FD_WRITE)) {
                        r = perm_check(st, acl, n, c, W_OK);
                        if (r < 0)
                                return r;
                }
        }

        /* notify_change(): utimensat() with both times now (ATTR_TOUCH) */
        if ((sa->valid & times) == touch && !owner_or_privileged(st, c)) {
                r = perm_check(st, acl, n, c, W_OK);
                if (r < 0)
                        return r;
        }

        /* The privileges a chown (chown_common()) or a truncate
         * (do_truncate(): ATTR_FORCE, no further checks) removes. */
        if (chown && !S_ISDIR(st->st_mode)) {
                if (st->st_mode & S_ISUID)
                        kill |= S_ISUID;
                if (should_drop_sgid(st, c))
                        kill |= S_ISGID;
        }
        if (sa->valid & LS_SET_SIZE) {
                mode_t m = perm_write_killpriv(st, c);

                if (m) {
                        kill |= (st->st_mode & ~m) & (S_ISUID | S_ISGID);
                        force = true;
                }
        }
        if (kill & st->st_mode) {
                if (!(sa->valid & LS_SET_MODE)) {
                        sa->valid |= LS_SET_MODE;
                        sa->mode = st->st_mode & ~(mode_t)S_IFMT;
                }
                sa->mode &= ~(kill & st->st_mode);
        }
        if (force)
                return 0;

        /* setattr_prepare() */
        if ((sa->valid & LS_SET_UID) && !(st->st_uid == c->uid && sa->uid == st->st_uid) &&
            !c->privileged)
                return -EPERM;
        if ((sa->valid & LS_SET_GID) && !c->privileged &&
            !(st->st_uid == c->uid && (sa->gid == st->st_gid || perm_in_group(c, sa->gid))))
                return -EPERM;
        if (sa->valid & LS_SET_MODE) {
                gid_t gid = (sa->valid & LS_SET_GID) ? sa->gid : st->st_gid;

                if (!owner_or_privileged(st, c))
                        return -EPERM;
                if (!in_group_or_privileged(gid, c))
                        sa->mode &= ~(mode_t)S_ISGID;
        }
        if ((sa->valid & times) && (sa->valid & times) != touch && !owner_or_privileged(st, c))
                return -EPERM;
        if (sa->valid & LS_SET_MODE)
                sa->mode &= 07777;
        return 0;
}

int perm_acl_chmod(const void *acl, size_t n, mode_t mode, void *out, size_t n_out)
{
        int count = acl_load(acl, n);
        size_t mask_obj, group_obj;

        if (count <= 0)
                return count;
        if (n_out < n)
                return -ERANGE;
        /* posix_acl_chmod_masq() */
        acl_put_header(out);
        mask_obj = group_obj = (size_t)count;
        for (size_t i = 0; i < (size_t)count; i++) {
                AclEntry e = acl_entry(acl, i);

                switch (e.tag) {
                case ACL_USER_OBJ:
                        e.perm = (mode & S_IRWXU) >> 6;
                        break;
                case ACL_GROUP_OBJ:
                        group_obj = i;
                        break;
                case ACL_MASK:
                        mask_obj = i;
                        break;
                case ACL_OTHER:
                        e.perm = mode & S_IRWXO;
                        break;
                }
                acl_put(out, i, e);
        }
        size_t g = mask_obj < (size_t)count ? mask_obj : group_obj;
        AclEntry e = acl_entry(out, g);

        e.perm = (mode & S_IRWXG) >> 3;
        acl_put(out, g, e);
        return (int)n;
}

int perm_acl_set(const struct stat *st, bool is_default, const void *value, size_t size,
                 const CoreCred *c, mode_t *modep, void *out, size_t *n_outp)
{
        int count;
        int r;

        *modep = st->st_mode;
        *n_outp = 0;
        if (value && size > PERM_ACL_SIZE_MAX)
                return -E2BIG;
        /* posix_acl_from_xattr() */
        count = acl_parse(value, size);
        if (count < 0)
                return count;
        /* set_posix_acl() */
        if (S_ISLNK(st->st_mode))
                return -EOPNOTSUPP;
        if (is_default && !S_ISDIR(st->st_mode))
                return count ? -EACCES : 0;
        if (!owner_or_privileged(st, c))
                return -EPERM;
        if (count == 0)
                return 0;
        r = acl_check(value, (size_t)count);
        if (r < 0)
                return r;
        if (is_default) {
                acl_copy(value, (size_t)count, out);
                *n_outp = size;
                return 0;
        }

        /* posix_acl_update_mode(): posix_acl_equiv_mode(), then S_ISGID */
        mode_t mode = 0;
        bool not_equiv = false;

        for (size_t i = 0; i < (size_t)count; i++) {
                AclEntry e = acl_entry(value, i);

                switch (e.tag) {
                case ACL_USER_OBJ:
                        mode |= (e.perm & S_IRWXO) << 6;
                        break;
                case ACL_GROUP_OBJ:
                        mode |= (e.perm & S_IRWXO) << 3;
                        break;
                case ACL_OTHER:
                        mode |= e.perm & S_IRWXO;
                        break;
                case ACL_MASK:
                        mode = (mode & ~(mode_t)S_IRWXG) | ((e.perm & S_IRWXO) << 3);
                        not_equiv = true;
                        break;
                default:
                        not_equiv = true;
                        break;
                }
        }
        mode = (st->st_mode & ~(mode_t)S_IRWXUGO) | mode;
        if (!in_group_or_privileged(st->st_gid, c))
                mode &= ~(mode_t)S_ISGID;
        *modep = mode;
        if (not_equiv) {
                acl_copy(value, (size_t)count, out);
                *n_outp = size;
        }
        return 0;
}
