/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Local libservice: a host directory as the root.
 *
 * Confinement: the root is held as an fd and every path is resolved with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so "..", absolute
 * symlinks, symlink chains and /proc magic links cannot leave the root.
 * Operations on a name resolve the *parent* that way and then act on the
 * single last component with an *at() call that does not follow it
 * (AT_SYMLINK_NOFOLLOW, unlinkat, renameat2, ...), so a symlink as the last
 * component is never followed out either. Calls that have no *at() form
 * with NOFOLLOW (xattrs) go through "/proc/self/fd/<parent>/<name>" with the
 * l*() variants: the parent is our own confined fd, the name one component.
 * Fail closed: there is no fallback to an unconfined call.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "libservice/local.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

#define LOCAL_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
/* open(2) flags a caller may pass through; anything else is dropped. */
#define LOCAL_OPEN_FLAGS                                                                           \
        (O_ACCMODE | O_APPEND | O_TRUNC | O_CREAT | O_EXCL | O_NOFOLLOW | O_DIRECT | O_SYNC |      \
         O_DSYNC | O_NOATIME | O_NONBLOCK | O_DIRECTORY | __O_TMPFILE)

typedef struct Local {
        LsInstance base;
        int root_fd;
        bool read_only;
        bool chown_ok; /* running with CAP_CHOWN: new entries get the caller's ids */
} Local;

typedef struct LocalFile {
        LsFile base;
        int fd;
} LocalFile;

/* A resolved parent directory plus the last component of a path. */
typedef struct LocalAt {
        int fd;
        bool owned;
        const char *name;
} LocalAt;

static inline Local *to_local(LsInstance *inst)
{
        return (Local *)inst;
}

static int local_openat2(int dirfd, const char *path, int flags, mode_t mode)
{
        struct open_how how = {
            .flags = (uint64_t)(flags | O_CLOEXEC),
            .mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0,
            .resolve = LOCAL_RESOLVE,
        };
        long r;

        do
                r = syscall(SYS_openat2, dirfd, *path ? path : ".", &how, sizeof(how));
        while (r < 0 && errno == EAGAIN);
        return r < 0 ? -errno : (int)r;
}

static void local_at_release(LocalAt *at)
{
        if (at->owned && at->fd >= 0)
                close(at->fd);
        at->fd = -1;
}

/* Resolves the parent of path beneath the root. Root itself has no parent:
 * -EINVAL (callers that accept the root test for "" first). */
static int local_at_resolve(Local *l, const char *path, LocalAt *at)
{
        char dir[PATH_MAX];
        const char *name;
        int fd;

        if (!ls_path_valid(path) || !*path)
                return -EINVAL;
        name = ls_path_split(path, dir, sizeof(dir));
        if (!name)
                return -ENAMETOOLONG;
        at->name = name;
        if (!*dir) {
                at->fd = l->root_fd;
                at->owned = false;
                return 0;
        }
        fd = local_openat2(l->root_fd, dir, O_PATH | O_DIRECTORY, 0);
        if (fd < 0)
                return fd;
        at->fd = fd;
        at->owned = true;
        return 0;
}

#define _cleanup_at_ __attribute__((cleanup(local_at_release)))

static int errno_or(int r)
{
        return r < 0 ? -errno : r;
}

/* Gives a new entry the caller's ids. A set-group-ID parent already gave it
 * the parent's group (the kernel does that for us), so keep that group. */
static int local_set_owner(Local *l, const LocalAt *at, const LsCred *cred)
{
        struct stat pst;
        gid_t gid;

        if (!cred || !l->chown_ok)
                return 0;
        if (fstat(at->fd, &pst) < 0)
                return -errno;
        gid = (pst.st_mode & S_ISGID) ? (gid_t)-1 : cred->gid;
        if (cred->uid == 0 && gid == 0)
                return 0;
        return errno_or(fchownat(at->fd, at->name, cred->uid, gid, AT_SYMLINK_NOFOLLOW));
}

static int local_getattr(LsInstance *inst, const char *path, struct stat *st)
{
        Local *l = to_local(inst);
        _cleanup_at_ LocalAt at = {.fd = -1};
        int r;

        if (!*path)
                return errno_or(fstat(l->root_fd, st));
        r = local_at_resolve(l, path, &at);
        if (r < 0)
                return r;
        return errno_or(fstatat(at.fd, at.name, st, AT_SYMLINK_NOFOLLOW));
}

static ssize_t local_readlink(LsInstance *inst, const char *path, char *buf, size_t size)
{
        _cleanup_at_ LocalAt at = {.fd = -1};
        ssize_t n;
        int r;

        r = local_at_resolve(to_local(inst), path, &at);
        if (r < 0)
                return r;
        n = readlinkat(at.fd, at.name, buf, size);
        return n < 0 ? -errno : n;
}

static int local_mknod(LsInstance *inst, const char *path, mode_t mode, dev_t rdev,
                       const LsCred *cred)
{
        Local *l = to_local(inst);
        _cleanup_at_ LocalAt at = {.fd = -1};
        int r;

        if (l->read_only)
                return -EROFS;
        r = local_at_resolve(l, path, &at);
        if (r < 0)
                return r;
        if (mknodat(at.fd, at.name, mode, rdev) < 0)
                return -errno;
        return local_set_owner(l, &at, cred);
}

static int local_mkdir(LsInstance *inst, const char *path, mode_t mode, const LsCred *cred)
{
        Local *l = to_local(inst);
        _cleanup_at_ LocalAt at = {.fd = -1};
        int r;

        if (l->read_only)
                return -EROFS;
        r = local_at_resolve(l, path, &at);
        if (r < 0)
                return r;
        if (mkdirat(at.fd, at.name, mode) < 0)
                return -errno;
        return local_set_owner(l, &at, cred);
}

static int local_symlink(LsInstance *inst, const char *target, const char *path, const LsCred *cred)
{
        Local *l = to_local(inst);
        _cleanup_at_ LocalAt at = {.fd = -1};
        int r;

        if (l->read_only)
                return -EROFS;
        r = local_at_resolve(l, path, &at);
        if (r < 0)
                return r;
        if (symlinkat(target, at.fd, at.name) < 0)
                return -errno;
        return local_set_owner(l, &at, cred);
}

static int local_link(LsInstance *inst, const char *oldpath, const char *newpath)
{
        Local *l = to_local(inst);
        _cleanup_at_ LocalAt from = {.fd = -1};
        _cleanup_at_ LocalAt to = {.fd = -1};
        int r;

        if (l->read_only)
                return -EROFS;
        r = local_at_resolve(l, oldpath, &from);
        if (r < 0)
                return r;
        r = local_at_resolve(l, newpath, &to);
        if (r < 0)
                return r;
        return errno_or(linkat(from.fd, from.name, to.fd, to.name, 0));
}

static int local_unlink_flags(LsInstance *inst, const char *path, int flags)
{
        Local *l = to_local(inst);
        _cleanup_at_ LocalAt at = {.fd = -1};
        int r;

        if (l->read_only)
                return -EROFS;
        r = local_at_resolve(l, path, &at);
        if (r < 0)
                return r;
        return errno_or(unlinkat(at.fd, at.name, flags));
}

static int local_unlink(LsInstance *inst, const char *path)
{
        return local_unlink_flags(inst, path, 0);
}

static int local_rmdir(LsInstance *inst, const char *path)
{
        return local_unlink_flags(inst, path, AT_REMOVEDIR);
}

static int local_rename(LsInstance *inst, const char *oldpath, const char *newpath,
                        unsigned int flags)
{
        Local *l = to_local(inst);
        _cleanup_at_ LocalAt from = {.fd = -1};
        _cleanup_at_ LocalAt to = {.fd = -1};
        int r;

        if (l->read_only)
                return -EROFS;
        r = local_at_resolve(l, oldpath, &from);
        if (r < 0)
                return r;
        r = local_at_resolve(l, newpath, &to);
        if (r < 0)
                return r;
        return errno_or(renameat2(from.fd, from.name, to.fd, to.name, flags));
}

/* Builds "/proc/self/fd/<fd>/<name>" (or ".../<fd>" for the root). */
static int local_proc_path(char *buf, size_t size, int fd, const char *name)
{
        int n = name ? snprintf(buf, size, "/proc/self/fd/%d/%s", fd, name)
                     : snprintf(buf, size, "/proc/self/fd/%d", fd);

        return (n < 0 || (size_t)n >= size) ? -ENAMETOOLONG : 0;
}

static int local_chmod(LsInstance *inst, const char *path, mode_t mode)
{
        Local *l = to_local(inst);
        _cleanup_at_ LocalAt at = {.fd = -1};
        char proc[PATH_MAX + 32];
        struct stat st;
        int r, fd;

        if (l->read_only)
                return -EROFS;
        if (!*path)
                return errno_or(fchmod(l->root_fd, mode));
        r = local_at_resolve(l, path, &at);
        if (r < 0)
                return r;
        /* fchmodat2 (Linux 6.6) is the only chmod that refuses to follow. */
        if (syscall(SYS_fchmodat2, at.fd, at.name, mode, AT_SYMLINK_NOFOLLOW) == 0)
                return 0;
        if (errno != ENOSYS)
                return -errno;
        fd = local_openat2(at.fd, at.name, O_PATH | O_NOFOLLOW, 0);
        if (fd < 0)
                return fd;
        r = fstat(fd, &st) < 0 ? -errno : 0;
        if (r == 0 && S_ISLNK(st.st_mode))
                r = -EOPNOTSUPP;
        if (r == 0)
                r = local_proc_path(proc, sizeof(proc), fd, NULL);
        if (r == 0)
                r = errno_or(chmod(proc, mode));
        close(fd);
        return r;
}

static int local_chown(LsInstance *inst, const char *path, uid_t uid, gid_t gid)
{
        Local *l = to_local(inst);
        _cleanup_at_ LocalAt at = {.fd = -1};
        int r;

        if (l->read_only)
                return -EROFS;
        if (!*path)
                return errno_or(fchown(l->root_fd, uid, gid));
        r = local_at_resolve(l, path, &at);
        if (r < 0)
                return r;
        return errno_or(fchownat(at.fd, at.name, uid, gid, AT_SYMLINK_NOFOLLOW));
}

static int local_truncate(LsInstance *inst, const char *path, off_t size)
{
        Local *l = to_local(inst);
        int fd, r;

        if (l->read_only)
                return -EROFS;
        if (!ls_path_valid(path))
                return -EINVAL;
        fd = local_openat2(l->root_fd, path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK, 0);
        if (fd < 0)
                return fd == -ELOOP ? -EINVAL : fd;
        r = errno_or(ftruncate(fd, size));
        close(fd);
        return r;
}

static int local_utimens(LsInstance *inst, const char *path, const struct timespec ts[2])
{
        Local *l = to_local(inst);
        _cleanup_at_ LocalAt at = {.fd = -1};
        int r;

        if (l->read_only)
                return -EROFS;
        if (!*path)
                return errno_or(futimens(l->root_fd, ts));
        r = local_at_resolve(l, path, &at);
        if (r < 0)
                return r;
        return errno_or(utimensat(at.fd, at.name, ts, AT_SYMLINK_NOFOLLOW));
}

/* The l*xattr() path for a node below the root (the root itself is served
 * by the f*xattr() calls on its fd: l*xattr() on "/proc/self/fd/N" would act
 * on the magic link, not on the directory): confined parent fd + one
 * component. */
static int local_xattr_path(Local *l, const char *path, char *buf, size_t size, LocalAt *at)
{
        int r;

        r = local_at_resolve(l, path, at);
        if (r < 0)
                return r;
        return local_proc_path(buf, size, at->fd, at->name);
}

static int local_setxattr(LsInstance *inst, const char *path, const char *name, const void *value,
                          size_t size, int flags)
{
        Local *l = to_local(inst);
        _cleanup_at_ LocalAt at = {.fd = -1};
        char proc[PATH_MAX + 32];
        int r;

        if (l->read_only)
                return -EROFS;
        if (!*path)
                return errno_or(fsetxattr(l->root_fd, name, value, size, flags));
        r = local_xattr_path(l, path, proc, sizeof(proc), &at);
        if (r < 0)
                return r;
        return errno_or(lsetxattr(proc, name, value, size, flags));
}

static ssize_t local_getxattr(LsInstance *inst, const char *path, const char *name, void *value,
                              size_t size)
{
        _cleanup_at_ LocalAt at = {.fd = -1};
        char proc[PATH_MAX + 32];
        ssize_t n;
        int r;

        if (!*path)
                n = fgetxattr(to_local(inst)->root_fd, name, value, size);
        else if ((r = local_xattr_path(to_local(inst), path, proc, sizeof(proc), &at)) < 0)
                return r;
        else
                n = lgetxattr(proc, name, value, size);
        return n < 0 ? -errno : n;
}

static ssize_t local_listxattr(LsInstance *inst, const char *path, char *list, size_t size)
{
        _cleanup_at_ LocalAt at = {.fd = -1};
        char proc[PATH_MAX + 32];
        ssize_t n;
        int r;

        if (!*path)
                n = flistxattr(to_local(inst)->root_fd, list, size);
        else if ((r = local_xattr_path(to_local(inst), path, proc, sizeof(proc), &at)) < 0)
                return r;
        else
                n = llistxattr(proc, list, size);
        return n < 0 ? -errno : n;
}

static int local_removexattr(LsInstance *inst, const char *path, const char *name)
{
        Local *l = to_local(inst);
        _cleanup_at_ LocalAt at = {.fd = -1};
        char proc[PATH_MAX + 32];
        int r;

        if (l->read_only)
                return -EROFS;
        if (!*path)
                return errno_or(fremovexattr(l->root_fd, name));
        r = local_xattr_path(l, path, proc, sizeof(proc), &at);
        if (r < 0)
                return r;
        return errno_or(lremovexattr(proc, name));
}

static int local_statfs(LsInstance *inst, const char *path, struct statvfs *st)
{
        Local *l = to_local(inst);
        int r = errno_or(fstatvfs(l->root_fd, st));

        if (r == 0 && l->read_only)
                st->f_flag |= ST_RDONLY;
        return r;
}

static int local_readdir(LsInstance *inst, const char *path, LsFillDir fill, void *ctx)
{
        Local *l = to_local(inst);
        struct dirent *de;
        DIR *dir;
        int fd, r = 0;

        if (!ls_path_valid(path))
                return -EINVAL;
        fd = local_openat2(l->root_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
        if (fd < 0)
                return fd;
        dir = fdopendir(fd);
        if (!dir) {
                r = -errno;
                close(fd);
                return r;
        }
        for (;;) {
                errno = 0;
                de = readdir(dir);
                if (!de) {
                        r = errno ? -errno : 0;
                        break;
                }
                if (de->d_name[0] == '.' &&
                    (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
                        continue;
                r = fill(ctx, de->d_name, de->d_ino, de->d_type);
                if (r)
                        break;
        }
        closedir(dir);
        return r;
}

static bool flags_modify(int flags)
{
        return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
}

/* Creates path exclusively and gives it the caller's ids. */
static int local_create(Local *l, const char *path, int flags, mode_t mode, const LsCred *cred)
{
        _cleanup_at_ LocalAt at = {.fd = -1};
        int fd, r;

        r = local_at_resolve(l, path, &at);
        if (r < 0)
                return r;
        fd = local_openat2(at.fd, at.name, flags | O_CREAT | O_EXCL, mode);
        if (fd < 0)
                return fd;
        r = local_set_owner(l, &at, cred);
        if (r < 0) {
                unlinkat(at.fd, at.name, 0);
                close(fd);
                return r;
        }
        return fd;
}

static int local_open(LsInstance *inst, const char *path, int flags, mode_t mode,
                      const LsCred *cred, LsFile **filep)
{
        Local *l = to_local(inst);
        LocalFile *f;
        int fd;

        if ((flags & LS_O_NOCOPYUP) && l->read_only)
                flags = (flags & ~(O_ACCMODE | O_TRUNC)) | O_RDONLY;
        if (l->read_only && flags_modify(flags))
                return -EROFS;
        if (!ls_path_valid(path))
                return -EINVAL;
        flags &= LOCAL_OPEN_FLAGS;
        mode &= 07777; /* open(2) ignores type bits; openat2 refuses them */
        if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) {
                fd = local_create(l, path, flags & ~(O_CREAT | O_EXCL), mode, cred);
        } else if (flags & O_CREAT) {
                /* Open first so we know whether we created it (and must chown).
                 * Two rounds cover a racing creator; a name that is still
                 * neither openable nor creatable is a dangling symlink, which
                 * open(2) creates through (confined like every lookup). */
                fd = -EEXIST;
                for (int round = 0; round < 2 && fd == -EEXIST; round++) {
                        fd = local_openat2(l->root_fd, path, flags & ~O_CREAT, 0);
                        if (fd != -ENOENT)
                                break;
                        fd = local_create(l, path, flags & ~O_CREAT, mode, cred);
                }
                if (fd == -EEXIST)
                        fd = local_openat2(l->root_fd, path, flags, mode);
        } else if ((flags & __O_TMPFILE) == __O_TMPFILE) {
                /* A nameless file in directory path, the caller's as created. */
                fd = local_openat2(l->root_fd, path, flags, mode);
                if (fd >= 0 && l->chown_ok && fchown(fd, cred->uid, cred->gid) < 0) {
                        int e = -errno;

                        close(fd);
                        return e;
                }
        } else {
                fd = local_openat2(l->root_fd, path, flags, 0);
        }
        if (fd < 0)
                return fd;
        f = calloc(1, sizeof(*f));
        if (!f) {
                close(fd);
                return -ENOMEM;
        }
        f->base.inst = inst;
        f->base.flags = flags;
        f->fd = fd;
        *filep = &f->base;
        return 0;
}

static inline LocalFile *to_file(LsFile *file)
{
        return (LocalFile *)file;
}

static ssize_t local_pread(LsFile *file, void *buf, size_t size, off_t off)
{
        ssize_t n = pread(to_file(file)->fd, buf, size, off);

        return n < 0 ? -errno : n;
}

static ssize_t local_pwrite(LsFile *file, const void *buf, size_t size, off_t off)
{
        /* With O_APPEND, Linux pwrite appends whatever off says: concurrent
         * appenders through FUSE stay correct. */
        ssize_t n = pwrite(to_file(file)->fd, buf, size, off);

        return n < 0 ? -errno : n;
}

static int local_fstat(LsFile *file, struct stat *st)
{
        return errno_or(fstat(to_file(file)->fd, st));
}

static int local_ftruncate(LsFile *file, off_t size)
{
        return errno_or(ftruncate(to_file(file)->fd, size));
}

static int local_fsync(LsFile *file, bool datasync)
{
        int fd = to_file(file)->fd;

        return errno_or(datasync ? fdatasync(fd) : fsync(fd));
}

static int local_fallocate(LsFile *file, int mode, off_t off, off_t len)
{
        return errno_or(fallocate(to_file(file)->fd, mode, off, len));
}

static int local_fchmod(LsFile *file, mode_t mode)
{
        return errno_or(fchmod(to_file(file)->fd, mode));
}

static int local_fchown(LsFile *file, uid_t uid, gid_t gid)
{
        return errno_or(fchown(to_file(file)->fd, uid, gid));
}

static int local_futimens(LsFile *file, const struct timespec ts[2])
{
        return errno_or(futimens(to_file(file)->fd, ts));
}

static int local_file_fd(LsFile *file)
{
        return to_file(file)->fd;
}

static int local_release(LsFile *file)
{
        LocalFile *f = to_file(file);
        int r = errno_or(close(f->fd));

        free(f);
        return r;
}

static void local_destroy(LsInstance *inst)
{
        Local *l = to_local(inst);

        close(l->root_fd);
        free(l);
}

static const LsOps local_ops = {
    .name = "local",
    .destroy = local_destroy,
    .getattr = local_getattr,
    .readlink = local_readlink,
    .mknod = local_mknod,
    .mkdir = local_mkdir,
    .symlink = local_symlink,
    .link = local_link,
    .unlink = local_unlink,
    .rmdir = local_rmdir,
    .rename = local_rename,
    .chmod = local_chmod,
    .chown = local_chown,
    .truncate = local_truncate,
    .utimens = local_utimens,
    .setxattr = local_setxattr,
    .getxattr = local_getxattr,
    .listxattr = local_listxattr,
    .removexattr = local_removexattr,
    .statfs = local_statfs,
    .readdir = local_readdir,
    .open = local_open,
    .pread = local_pread,
    .pwrite = local_pwrite,
    .fstat = local_fstat,
    .ftruncate = local_ftruncate,
    .fsync = local_fsync,
    .fallocate = local_fallocate,
    .fchmod = local_fchmod,
    .fchown = local_fchown,
    .futimens = local_futimens,
    .file_fd = local_file_fd,
    .release = local_release,
};

int local_new(const char *root, bool read_only, LsInstance **instp)
{
        Local *l;
        int fd;

        fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        l = calloc(1, sizeof(*l));
        if (!l) {
                close(fd);
                return -ENOMEM;
        }
        l->base.ops = &local_ops;
        l->root_fd = fd;
        l->read_only = read_only;
        l->chown_ok = geteuid() == 0;
        *instp = &l->base;
        return 0;
}
