/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Libservice: one storage component with a handle-based, POSIX-like
 * interface, modelled on the kernel's VFS, overlayfs, libcephfs' ceph_ll_*
 * calls and libfuse's low level.
 *
 * Objects:
 *   LsInstance  one instance of a libservice (a backend client, a union). It
 *               is reference-counted: every handle and open file of it holds
 *               one reference, so it lives until the last is gone.
 *   LsNode      a handle on one object (file, directory, symlink, ...) of an
 *               instance. Reference-counted. Handles are UNIQUE while alive:
 *               a lookup of an object that already has a live handle returns
 *               that handle with one more reference, so two handles of one
 *               instance are the same object iff they are the same pointer.
 *               A handle names its object for life: when the object is
 *               deleted and its inode number reused, the new object gets a
 *               new handle (local: kernel file handles carry a generation).
 *               A handle keeps working after its last name is gone, as an fd
 *               does (getattr, setattr, open, xattrs, I/O), until the last
 *               reference to it is dropped.
 *   LsFile      an open file of a node (file->node), with its open flags.
 *
 * Names:    namespace operations take a directory handle and ONE name: no
 *           '/', not "" nor "." nor "..", at most NAME_MAX bytes
 *           (ls_name_valid()); no operation needs a path, so any tree the
 *           kernel lets a program build fits. An implementation never lets
 *           a name or symlink reach outside its root.
 * Symlinks: never followed by the interface (lookup returns the symlink
 *           itself; open of a symlink fails with -ELOOP).
 * Errors:   negative errno values; >= 0 is success (a length where noted).
 * Threads:  every operation is thread-safe; no implementation takes a lock
 *           that serialises unrelated I/O, and none holds a lock of its own
 *           across a backend call that can block, except a per-object one
 *           where the semantics need it.
 * Creds:    operations that create entries take the exact owner (LsCred)
 *           and mode the new entry must get; the caller (the core) has
 *           applied the umask, the parent's set-group-ID rule (gid, S_ISGID
 *           of a new directory) and its permission checks. Implementations
 *           check nothing on behalf of callers and make sure no other user
 *           can reach a new entry before it has its final owner and mode.
 * Out-attrs: every `struct stat *stp` out-parameter may be NULL; when given
 *           it receives the object's attributes after the operation.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

typedef struct LsInstance LsInstance;
typedef struct LsNode LsNode;
typedef struct LsFile LsFile;
typedef struct LsOps LsOps;

/* Owner of a new entry. */
typedef struct LsCred {
        uid_t uid;
        gid_t gid;
} LsCred;

/* An open() flag of ours, beside open(2)'s: read-write when that needs no
 * union copy-up and the node is writable, else read-only (file->flags tells
 * which it got). For a front that keeps a file open for whoever may write
 * later, without copying a lower file up that nobody writes. */
#define LS_O_NOCOPYUP 0x40000000

/* setattr(): which fields of LsSetattr to apply. */
enum {
        LS_SET_MODE = 1 << 0,
        LS_SET_UID = 1 << 1,
        LS_SET_GID = 1 << 2,
        LS_SET_SIZE = 1 << 3,
        LS_SET_ATIME = 1 << 4,     /* to .atime */
        LS_SET_MTIME = 1 << 5,     /* to .mtime */
        LS_SET_ATIME_NOW = 1 << 6, /* to the current time (UTIME_NOW) */
        LS_SET_MTIME_NOW = 1 << 7,
        LS_SET_CTIME = 1 << 8, /* to .ctime where the backend can; else
                                * ignored (a local filesystem sets ctime itself) */
};

typedef struct LsSetattr {
        unsigned valid; /* LS_SET_* */
        mode_t mode;    /* permission bits and S_IS[UG]ID/S_ISVTX only */
        uid_t uid;
        gid_t gid;
        off_t size;
        struct timespec atime, mtime, ctime;
} LsSetattr;

/* Called once per directory entry ("." and ".." excluded); a non-zero return
 * stops the enumeration and is returned by readdir(). ino is the number
 * getattr() of the entry would report. */
typedef int (*LsFillDir)(void *ctx, const char *name, ino_t ino, unsigned char d_type);

struct LsOps {
        const char *name;
        /* Frees the instance once its last reference is gone. */
        void (*destroy)(LsInstance *inst);
        /* Frees a node once its last reference is gone (ls_node_unref()).
         * An implementation with a table of live handles must cope with a
         * lookup that finds the node while its count is 0 (ls_node_tryref()
         * fails: make a new handle) and remove only its own table entry. */
        void (*node_free)(LsNode *node);

        /* The instance's root directory: a new reference. */
        int (*root)(LsInstance *inst, LsNode **nodep);

        /* namespace: a directory handle and one name */
        int (*lookup)(LsNode *dir, const char *name, LsNode **nodep, struct stat *stp);
        int (*mknod)(LsNode *dir, const char *name, mode_t mode, dev_t rdev, const LsCred *cred,
                     LsNode **nodep, struct stat *stp);
        int (*mkdir)(LsNode *dir, const char *name, mode_t mode, const LsCred *cred,
                     LsNode **nodep, struct stat *stp);
        int (*symlink)(LsNode *dir, const char *name, const char *target, const LsCred *cred,
                       LsNode **nodep, struct stat *stp);
        /* A new name for node (not a directory); stp: node's attributes after. */
        int (*link)(LsNode *node, LsNode *newdir, const char *newname, struct stat *stp);
        int (*unlink)(LsNode *dir, const char *name);
        int (*rmdir)(LsNode *dir, const char *name);
        /* flags: 0, RENAME_NOREPLACE, RENAME_EXCHANGE (renameat2(2)); others
         * -EINVAL. */
        int (*rename)(LsNode *olddir, const char *oldname, LsNode *newdir, const char *newname,
                      unsigned int flags);

        /* attributes and xattrs: a handle */
        int (*getattr)(LsNode *node, struct stat *st);
        int (*setattr)(LsNode *node, const LsSetattr *sa, struct stat *stp);
        /* Returns the target length (not NUL-terminated, truncated to size). */
        ssize_t (*readlink)(LsNode *node, char *buf, size_t size);
        int (*setxattr)(LsNode *node, const char *name, const void *value, size_t size,
                        int flags);
        /* size 0 asks for the needed size, as getxattr(2); -ERANGE if too small. */
        ssize_t (*getxattr)(LsNode *node, const char *name, void *value, size_t size);
        ssize_t (*listxattr)(LsNode *node, char *list, size_t size);
        int (*removexattr)(LsNode *node, const char *name);
        int (*statfs)(LsNode *node, struct statvfs *st);
        /* Every entry of directory dir, in a stable order for an unchanged
         * directory. */
        int (*readdir)(LsNode *dir, LsFillDir fill, void *ctx);
        /* Makes directory dir's entries durable. */
        int (*fsyncdir)(LsNode *dir, bool datasync);

        /* files: flags as open(2) (O_ACCMODE, O_APPEND, O_TRUNC, O_DIRECT,
         * O_SYNC, O_DSYNC, O_NOATIME honoured; O_CREAT, O_EXCL: use create)
         * and LS_O_NOCOPYUP. Opening a directory read-only is allowed (for
         * fsync); a symlink: -ELOOP. */
        int (*open)(LsNode *node, int flags, LsFile **filep);
        /* Creates name in dir and opens it: O_EXCL fails with -EEXIST when
         * the name exists; without it an existing file is opened (nodep and
         * stp then describe it, and mode/cred are unused). */
        int (*create)(LsNode *dir, const char *name, int flags, mode_t mode, const LsCred *cred,
                      LsNode **nodep, struct stat *stp, LsFile **filep);
        /* Optional (NULL: -EOPNOTSUPP): an unnamed file in directory dir, as
         * O_TMPFILE. */
        int (*tmpfile)(LsNode *dir, int flags, mode_t mode, const LsCred *cred, LsNode **nodep,
                       struct stat *stp, LsFile **filep);
        ssize_t (*pread)(LsFile *file, void *buf, size_t size, off_t off);
        /* rwf: 0 or RWF_APPEND, RWF_SYNC, RWF_DSYNC as pwritev2(2) (with
         * RWF_APPEND, off is ignored and the data goes to the end). */
        ssize_t (*pwrite)(LsFile *file, const void *buf, size_t size, off_t off, int rwf);
        int (*fsync)(LsFile *file, bool datasync);
        int (*fallocate)(LsFile *file, int mode, off_t off, off_t len);
        /* SEEK_DATA and SEEK_HOLE (-EINVAL for others); -ENXIO past the end. */
        off_t (*lseek)(LsFile *file, off_t off, int whence);
        /* Optional (NULL or -EOPNOTSUPP): a kernel fd holding the same data,
         * so a front end may splice instead of copying. Owned by the file. */
        int (*file_fd)(LsFile *file);
        /* Closes and frees the file; always consumes it. */
        int (*release)(LsFile *file);
};

struct LsInstance {
        const LsOps *ops;
        atomic_uint n_refs;
};

struct LsNode {
        LsInstance *inst; /* the node holds a reference on it */
        atomic_uint n_refs;
};

struct LsFile {
        LsNode *node; /* the file holds a reference on it */
        int flags;    /* open(2) flags it got (see LS_O_NOCOPYUP) */
};

/* True for a name an operation accepts (see "Names" above). */
bool ls_name_valid(const char *name);

/* True for a relative path of names as configuration files give them (branch
 * paths, mount points without their leading '/'): no leading '/', no empty,
 * "." or ".." components, shorter than PATH_MAX; "" is the root. */
bool ls_path_valid(const char *path);

/* Walks path ('/'-separated names, relative to from; "" and "." components
 * are skipped, ".." is refused with -EINVAL) without following symlinks;
 * returns a new reference. For set-up (branch roots) and tests, not for
 * front ends, which walk through the core's node table. */
int ls_walk(LsNode *from, const char *path, LsNode **nodep);

/* For implementations: set up the embedded headers (one reference each). */
void ls_instance_init(LsInstance *inst, const LsOps *ops);
void ls_node_init(LsNode *node, LsInstance *inst);
void ls_file_init(LsFile *file, LsNode *node, int flags);
/* Drops the file's node reference (call from release()). */
void ls_file_deinit(LsFile *file);

static inline LsInstance *ls_instance_ref(LsInstance *inst)
{
        if (inst)
                atomic_fetch_add_explicit(&inst->n_refs, 1, memory_order_relaxed);
        return inst;
}

/* Returns NULL, for `inst = ls_instance_unref(inst)`. */
static inline LsInstance *ls_instance_unref(LsInstance *inst)
{
        if (inst && atomic_fetch_sub_explicit(&inst->n_refs, 1, memory_order_acq_rel) == 1)
                inst->ops->destroy(inst);
        return NULL;
}

static inline LsNode *ls_node_ref(LsNode *node)
{
        if (node)
                atomic_fetch_add_explicit(&node->n_refs, 1, memory_order_relaxed);
        return node;
}

/* A reference unless the count already reached 0 (the node is being freed):
 * for tables of live handles. */
static inline bool ls_node_tryref(LsNode *node)
{
        unsigned n = atomic_load_explicit(&node->n_refs, memory_order_relaxed);

        while (n != 0)
                if (atomic_compare_exchange_weak_explicit(&node->n_refs, &n, n + 1,
                                                          memory_order_acquire,
                                                          memory_order_relaxed))
                        return true;
        return false;
}

/* Returns NULL, for `node = ls_node_unref(node)`. */
static inline LsNode *ls_node_unref(LsNode *node)
{
        if (node && atomic_fetch_sub_explicit(&node->n_refs, 1, memory_order_acq_rel) == 1)
                node->inst->ops->node_free(node);
        return NULL;
}

static inline const LsOps *ls_ops(const LsNode *node)
{
        return node->inst->ops;
}
