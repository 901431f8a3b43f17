/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Libservice: one storage component with a POSIX-like interface.
 *
 * A libservice instance is a table of operations (LsOps) plus private state.
 * Implementations embed LsInstance as their first member and LsFile as the
 * first member of their open-file object, so `(LsInstance *)impl` works.
 *
 * Paths:    namespace operations take paths relative to the instance root,
 *           already normalised by the caller: no leading '/', no empty, "."
 *           or ".." components, components shorter than NAME_MAX; the root
 *           itself is "". ls_path_valid() checks that form. An
 *           implementation never lets a path reach outside its root,
 *           whatever symlinks the tree holds.
 * Symlinks: the final component is never followed (lstat semantics), except
 *           by open() without O_NOFOLLOW, as open(2) does.
 * Errors:   negative errno values; >= 0 is success (a length where noted).
 * Threads:  every operation is thread-safe; no implementation takes a lock
 *           that serialises unrelated I/O.
 * Creds:    operations that create entries take the owner the new entry must
 *           get (the caller's fsuid/fsgid); permission checks are the front
 *           end's job (FUSE default_permissions, the fast path's own checks).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

typedef struct LsInstance LsInstance;
typedef struct LsFile LsFile;
typedef struct LsOps LsOps;

/* Owner of a new entry; gid is replaced by the parent's gid when the parent
 * directory is set-group-ID, as the kernel does. */
typedef struct LsCred {
        uid_t uid;
        gid_t gid;
} LsCred;

/* An open() flag of ours, beside open(2)'s: read-write when that needs no
 * union copy-up and the branch is writable, else read-only (file->flags tells
 * which it got). For a front that keeps a file open for whoever may write
 * later, without copying a lower file up that nobody writes. */
#define LS_O_NOCOPYUP 0x40000000

/* Called once per directory entry ("." and ".." excluded); a non-zero return
 * stops the enumeration and is returned by readdir(). */
typedef int (*LsFillDir)(void *ctx, const char *name, ino_t ino, unsigned char d_type);

struct LsOps {
        const char *name;
        void (*destroy)(LsInstance *inst);

        /* namespace */
        int (*getattr)(LsInstance *inst, const char *path, struct stat *st);
        /* Returns the target length (not NUL-terminated, truncated to size). */
        ssize_t (*readlink)(LsInstance *inst, const char *path, char *buf, size_t size);
        int (*mknod)(LsInstance *inst, const char *path, mode_t mode, dev_t rdev,
                     const LsCred *cred);
        int (*mkdir)(LsInstance *inst, const char *path, mode_t mode, const LsCred *cred);
        int (*symlink)(LsInstance *inst, const char *target, const char *path, const LsCred *cred);
        int (*link)(LsInstance *inst, const char *oldpath, const char *newpath);
        int (*unlink)(LsInstance *inst, const char *path);
        int (*rmdir)(LsInstance *inst, const char *path);
        /* flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE (renameat2(2)). */
        int (*rename)(LsInstance *inst, const char *oldpath, const char *newpath,
                      unsigned int flags);
        int (*chmod)(LsInstance *inst, const char *path, mode_t mode);
        /* (uid_t)-1 / (gid_t)-1 leave that id unchanged. */
        int (*chown)(LsInstance *inst, const char *path, uid_t uid, gid_t gid);
        int (*truncate)(LsInstance *inst, const char *path, off_t size);
        /* ts[0] atime, ts[1] mtime; UTIME_NOW and UTIME_OMIT are honoured. */
        int (*utimens)(LsInstance *inst, const char *path, const struct timespec ts[2]);
        int (*setxattr)(LsInstance *inst, const char *path, const char *name, const void *value,
                        size_t size, int flags);
        /* size 0 asks for the needed size, as getxattr(2). */
        ssize_t (*getxattr)(LsInstance *inst, const char *path, const char *name, void *value,
                            size_t size);
        ssize_t (*listxattr)(LsInstance *inst, const char *path, char *list, size_t size);
        int (*removexattr)(LsInstance *inst, const char *path, const char *name);
        int (*statfs)(LsInstance *inst, const char *path, struct statvfs *st);
        int (*readdir)(LsInstance *inst, const char *path, LsFillDir fill, void *ctx);

        /* files: flags as open(2) (O_CREAT, O_EXCL, O_TRUNC, O_APPEND and
         * O_TMPFILE honoured; a union makes an O_TMPFILE file in its writable
         * branch); mode and cred are used only when the file is created. */
        int (*open)(LsInstance *inst, const char *path, int flags, mode_t mode, const LsCred *cred,
                    LsFile **filep);
        ssize_t (*pread)(LsFile *file, void *buf, size_t size, off_t off);
        ssize_t (*pwrite)(LsFile *file, const void *buf, size_t size, off_t off);
        int (*fstat)(LsFile *file, struct stat *st);
        int (*ftruncate)(LsFile *file, off_t size);
        int (*fsync)(LsFile *file, bool datasync);
        int (*fallocate)(LsFile *file, int mode, off_t off, off_t len);
        /* Optional (NULL or -EOPNOTSUPP: use the path form): attribute changes
         * through an open file, which still work after its name is gone. */
        int (*fchmod)(LsFile *file, mode_t mode);
        int (*fchown)(LsFile *file, uid_t uid, gid_t gid);
        int (*futimens)(LsFile *file, const struct timespec ts[2]);
        /* Optional (NULL or -EOPNOTSUPP): a kernel fd holding the same data, so a
         * front end may splice instead of copying. Owned by the file. */
        int (*file_fd)(LsFile *file);
        /* Closes and frees the file; always consumes it. */
        int (*release)(LsFile *file);
};

struct LsInstance {
        const LsOps *ops;
};

struct LsFile {
        LsInstance *inst;
        int flags; /* open(2) flags it was opened with */
};

/* True if path has the normalised form described above. */
bool ls_path_valid(const char *path);

/* Joins a normalised directory path and one name into buf ("" + "a" = "a").
 * Returns the length, or -ENAMETOOLONG when it does not fit in size. */
int ls_path_join(char *buf, size_t size, const char *dir, const char *name);

/* Splits a normalised path into its parent directory (written into buf) and
 * returns a pointer to the last component inside path. Root has no name:
 * returns NULL. */
const char *ls_path_split(const char *path, char *buf, size_t size);

static inline void ls_instance_free(LsInstance *inst)
{
        if (inst)
                inst->ops->destroy(inst);
}
