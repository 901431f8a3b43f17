/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The core: what every front end (the FUSE front, the shared-memory fast
 * path's back driver) calls, as the kernel's VFS sits between system calls
 * and filesystems. Fronts speak in CoreNodes and one name at a time; the
 * core calls the libservices (libservice.h) on their handles, checks
 * permissions (perm.h) for fronts that ask it to, applies the rules for new
 * entries (owner, set-group-ID, umask, default ACLs), keeps the open files
 * and directory listings that fronts share, and tells every other front what
 * changed.
 *
 * Objects:
 *   Core       one per pool (per danaus-fsd process), shared by all of its
 *              mounts. Reference-counted (core_ref/core_unref): a mount, a
 *              fast-path client or a backend callback can each hold it.
 *   CoreFront  one front end attached to the core: each FUSE mount is one,
 *              the fast path will be another. It receives change
 *              notifications (CoreFrontOps) for nodes it holds.
 *   CoreNode   one object of one instance: exactly one per live LsNode
 *              handle (handles are unique, libservice.h), so two plain
 *              mounts of the same directory share the node, and a node is
 *              its object for life (an inode number the backend reuses gets
 *              a new handle, hence a new node). A node counts, per front,
 *              the references that front holds (FUSE: the kernel's lookup
 *              count; each reply that hands out a node counts one) plus
 *              internal references (core_node_ref: a request in flight, a
 *              walk result, a queued notification); it is freed, and its
 *              LsNode reference dropped, when neither is left.
 *              FUSE may use the CoreNode pointer as its node id (the kernel
 *              hands back only ids it was given); a front whose callers are
 *              not trusted uses core_node_id() (unique for the core's life,
 *              never reused) with a table of its own, never the pointer.
 *   CoreFile   one open file (an LsFile plus its node and flags),
 *              reference-counted, shared by every front that has it. A node
 *              may also keep one shared "io file" (core_io_get()) for
 *              fronts that receive no OPEN/RELEASE (the FUSE front in
 *              no-open mode).
 *   CoreDirSnap one listing of a directory, numbered by a generation that
 *              fronts carry in their offsets; refcounted, immutable.
 *
 * Credentials: every operation that may check permissions takes the
 * caller's CoreCred (perm.h). Permission checks are made only for fronts
 * created with CORE_FRONT_CHECK_PERMS (the FUSE front lets the kernel check,
 * default_permissions); the rules for new entries (perm_new_entry: owner,
 * set-group-ID directory, umask, default ACL inheritance) and the ACL/mode
 * sync of chmod and ACL xattrs (perm_acl_chmod, perm_acl_set) apply to
 * every front. A front without CORE_FRONT_CHECK_PERMS may pass cred NULL
 * except where an entry is made (mknod, mkdir, symlink, create: owner and
 * umask), a mode changes (setattr with LS_SET_MODE, ACL xattrs) or ownership
 * rules apply (link's protected_hardlinks is the kernel's then: NULL ok).
 *
 * Names: one name per call, checked here (no '/', not "", "." or "..":
 * -EINVAL; longer than NAME_MAX: -ENAMETOOLONG), so fronts may pass what
 * they received unchecked.
 *
 * Notifications: every change made through a front is reported, after it
 * is made, to every OTHER front that holds a reference on the node or
 * directory concerned (a front that never saw a node costs nothing); a
 * change reported by the backend (core_notify_*) goes to every front that
 * holds it. Callbacks run on the thread that made the change, with no core
 * lock held, and must not block on a request of their own front: the FUSE
 * front queues them for a thread of its own (a kernel invalidation called
 * from inside a request handler of the same mount can deadlock).
 *
 * Errors: negative errno; >= 0 is success. Threads: every function is
 * thread-safe; no global lock on the hot path (the node table is sharded,
 * nodes have their own small locks, none held across a backend call except
 * the per-node write-back lock where the semantics need it).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "core/perm.h"
#include "libservice/libservice.h"

typedef struct Core Core;
typedef struct CoreFront CoreFront;
typedef struct CoreNode CoreNode;
typedef struct CoreFile CoreFile;
typedef struct CoreDirSnap CoreDirSnap;

/* ---------------------------------------------------------------- core */

typedef struct CoreParams {
        /* Shared io files (core_io_get) kept open by nodes at most, over all
         * fronts; past it an io file is opened for the one request (each
         * costs an fd with `local`). 0: 4096. */
        size_t max_io_files;
} CoreParams;

#define CORE_PARAMS_DEFAULT ((CoreParams){.max_io_files = 4096})

/* A new core with one reference. params NULL: defaults. */
int core_new(const CoreParams *params, Core **corep);
Core *core_ref(Core *core);
/* Returns NULL, for `core = core_unref(core)`. The last reference frees the
 * core: all fronts must be gone (each holds a reference). */
Core *core_unref(Core *core);

/* Number of live nodes (for logs and tests). */
size_t core_n_nodes(Core *core);
/* Number of shared io files open now (for logs and tests). */
size_t core_n_io_files(Core *core);

/* ---------------------------------------------------------------- fronts */

/*
 * What the core tells a front about changes made elsewhere (another front,
 * or the backend). Any callback may be NULL. The nodes passed are valid for
 * the call only: a front that queues them takes core_node_ref() and drops it
 * when done (or uses only the pointer value as an id, as FUSE may: the
 * kernel ignores an id it does not know).
 */
typedef struct CoreFrontOps {
        /* node's attributes changed; off >= 0: and its data from off for len
         * bytes (len 0: to the end). Mirrors fuse_lowlevel_notify_inval_inode
         * (off < 0: attributes only). */
        void (*inval_inode)(void *ctx, CoreNode *node, off_t off, off_t len);
        /* Entry name of dir may now name another node, or none, or one where
         * there was none (a negative entry is stale). Implies dir's
         * attributes and listing changed. */
        void (*inval_entry)(void *ctx, CoreNode *dir, const char *name);
        /* Entry name of dir, which named child, is gone (unlink, rmdir, a
         * rename away). Sent instead of inval_entry when the front holds
         * child (fuse_lowlevel_notify_delete); child's attributes (nlink)
         * changed too. Implies dir's attributes and listing changed. */
        void (*delete_entry)(void *ctx, CoreNode *dir, CoreNode *child, const char *name);
} CoreFrontOps;

enum {
        /* The core checks permissions with the caller's CoreCred (the fast
         * path). Without it the front has checked (FUSE default_permissions). */
        CORE_FRONT_CHECK_PERMS = 1 << 0,
        /* Every change through this front fails with -EROFS (a read-only
         * mount; the kernel enforces it on FUSE, the core for others). */
        CORE_FRONT_READ_ONLY = 1 << 1,
};

/* Attaches a front (ops and ctx are kept; ops may be NULL). The front
 * holds a reference on the core. */
int core_front_new(Core *core, const CoreFrontOps *ops, void *ctx, unsigned flags,
                   CoreFront **frontp);
/* Detaches the front: every reference it still holds on nodes is dropped
 * (as if forgotten; the kernel forgets nothing when a FUSE session ends),
 * and it waits until no callback of this front is running; no callback
 * starts afterwards. Returns NULL. */
CoreFront *core_front_free(CoreFront *front);
unsigned core_front_flags(const CoreFront *front);

/* ---------------------------------------------------------------- nodes */

/* The node of handle ls (a mount's root handle: the core takes its own
 * LsNode reference), with one internal reference. */
int core_node_get(Core *core, LsNode *ls, CoreNode **nodep);
/* Internal references. core_node_unref returns NULL. */
CoreNode *core_node_ref(CoreNode *node);
CoreNode *core_node_unref(CoreNode *node);
/* Counts n references of the front on a node the caller holds (a root, a
 * walk result the front hands out). 0 or -ENOMEM. */
int core_front_hold(CoreFront *front, CoreNode *node, uint64_t n);
/* Drops n references of the front (FUSE FORGET; a reply the kernel did not
 * take). More than it holds: all of them. When no front holds the node any
 * more its io file goes; when no internal reference is left either, the
 * node goes. */
void core_forget(CoreFront *front, CoreNode *node, uint64_t n);
/* How many nodes front holds references on (status, logs). */
size_t core_front_n_nodes(CoreFront *front);
/* How many references front holds on node (tests, logs). */
uint64_t core_front_count(CoreFront *front, CoreNode *node);

/* The handle (borrowed: valid while the node is). */
LsNode *core_node_ls(const CoreNode *node);
/* A number unique among all nodes this core ever had (never 0). */
uint64_t core_node_id(const CoreNode *node);
/* S_IFMT bits of the object (known from its first attributes; 0 if never
 * seen). */
mode_t core_node_type(const CoreNode *node);

/* ---------------------------------------------------------------- names */

/*
 * core_lookup() - entry name of directory dir.
 * Counts one reference of front on *nodep. Uses and fills dir's negative
 * entries (names known absent, forgotten at any change of dir made or
 * reported through the core): -ENOENT may come without a backend call.
 * With CORE_FRONT_CHECK_PERMS: search permission on dir.
 * @stp: the node's attributes (may be NULL).
 */
int core_lookup(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name,
                CoreNode **nodep, struct stat *stp);

enum {
        /* Follow a symlink in the last component too (stat, open without
         * O_NOFOLLOW); components before the last are always followed. */
        CORE_WALK_FOLLOW = 1 << 0,
        /* Stop at the directory of the last component and return its name
         * in last (creat, mkdir, unlink, rename...); the last component is
         * neither looked up nor followed. "." or ".." as the last
         * component: -EINVAL ("" and "/": -ENOENT). */
        CORE_WALK_PARENT = 1 << 1,
        /* The result must be a directory (-ENOTDIR), as a trailing '/' asks
         * (which also follows a final symlink). */
        CORE_WALK_DIRECTORY = 1 << 2,
};

/*
 * core_walk() - resolves a path as the kernel's path walk does, component
 * by component through the node table (one lookup per name, negative
 * entries first), never building a path string: a start node deeper than
 * PATH_MAX is fine.
 * @root:  the caller's root directory: where an absolute path or symlink
 *         target starts and where ".." stops. NULL: an absolute path or
 *         target, or ".." above a node without a known parent, gives
 *         -EXDEV (the path leaves what the core serves; the fast path then
 *         hands the call to the kernel).
 * @start: where a relative path starts (the cwd or the dirfd's node).
 * @path:  NUL-terminated, shorter than PATH_MAX ('/'s collapse, "." skipped,
 *         ".." goes to the directory's parent). "": -ENOENT.
 * Symlinks are followed as the kernel follows them, at most 40 in one walk
 * (-ELOOP). With CORE_FRONT_CHECK_PERMS: search permission on every
 * directory passed through.
 * @nodep: an internal reference (core_node_unref; core_front_hold to hand
 *         it out).
 * @last:  with CORE_WALK_PARENT, receives the last name (NAME_MAX + 1 bytes).
 * @stp:   attributes of *nodep (may be NULL).
 */
int core_walk(CoreFront *front, const CoreCred *cred, CoreNode *root, CoreNode *start,
              const char *path, unsigned flags, CoreNode **nodep, char *last, struct stat *stp);

/*
 * Creating entries: one front reference counted on *nodep, attributes in
 * *stp (either may be NULL for the caller not wanting them; nodep NULL
 * counts nothing). The owner, mode and ACLs of the new entry come from
 * perm_new_entry(): cred's uid, gid (or dir's when dir is set-group-ID),
 * mode less cred->umask unless dir has a default ACL, whose inherited
 * access/default ACLs are stored as xattrs. With CORE_FRONT_CHECK_PERMS:
 * write and search permission on dir. cred must not be NULL.
 */
int core_mknod(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name, mode_t mode,
               dev_t rdev, CoreNode **nodep, struct stat *stp);
int core_mkdir(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name, mode_t mode,
               CoreNode **nodep, struct stat *stp);
int core_symlink(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name,
                 const char *target, CoreNode **nodep, struct stat *stp);
/* A new name for node (not a directory: -EPERM). Counts one reference on
 * node (the entry reply); stp: node's attributes after. */
int core_link(CoreFront *front, const CoreCred *cred, CoreNode *node, CoreNode *newdir,
              const char *newname, struct stat *stp);
/* unlink: not a directory (-EISDIR); rmdir: a directory (-ENOTDIR). The
 * removed node keeps working through its handle for whoever holds it. */
int core_unlink(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name);
int core_rmdir(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name);
/* flags: 0, RENAME_NOREPLACE, RENAME_EXCHANGE (others: -EINVAL). A moved
 * directory's node takes newdir as its parent (for "..").  */
int core_rename(CoreFront *front, const CoreCred *cred, CoreNode *olddir, const char *oldname,
                CoreNode *newdir, const char *newname, unsigned flags);

/* ---------------------------------------------------------------- attributes */

int core_getattr(CoreFront *front, CoreNode *node, struct stat *st);

enum {
        /* perm.h's PERM_SETATTR_* flags pass through unchanged. */
        CORE_SETATTR_FD_WRITE = PERM_SETATTR_FD_WRITE,
        CORE_SETATTR_CHOWN = PERM_SETATTR_CHOWN,
        /* The front keeps the file's mtime itself (FUSE writeback caching:
         * the kernel owns mtime): the mtime set here is the one later
         * core_write(CORE_WRITE_KEEP_MTIME) calls leave on the backend. */
        CORE_SETATTR_KERNEL_MTIME = 1 << 8,
};

/*
 * core_setattr() - changes what sa->valid says (libservice.h LsSetattr).
 * With CORE_FRONT_CHECK_PERMS, perm_setattr() checks it and may add implied
 * changes (cleared set-user-ID bits). A mode change of a node with a
 * system.posix_acl_access xattr updates that ACL (perm_acl_chmod). Works on
 * nodes whose names are gone (ftruncate, fchmod of an unlinked file). A
 * read-only io file of the node is dropped (a union may have copied the file
 * up). flags: CORE_SETATTR_*.
 */
int core_setattr(CoreFront *front, const CoreCred *cred, CoreNode *node, const LsSetattr *sa,
                 unsigned flags, struct stat *stp);

/* The symlink's target (not NUL-terminated, truncated to size); its
 * length. */
ssize_t core_readlink(CoreFront *front, CoreNode *node, char *buf, size_t size);

/* xattrs as the libservice's. system.posix_acl_access/_default go through
 * perm_acl_set() (validated, normalised, the mode updated to match). With
 * CORE_FRONT_CHECK_PERMS: owner checks for ACLs, write permission for
 * user.* (read for get/list), trusted.* and security.* as the kernel's
 * xattr_permission(). */
int core_setxattr(CoreFront *front, const CoreCred *cred, CoreNode *node, const char *name,
                  const void *value, size_t size, int flags);
ssize_t core_getxattr(CoreFront *front, const CoreCred *cred, CoreNode *node, const char *name,
                      void *value, size_t size);
ssize_t core_listxattr(CoreFront *front, const CoreCred *cred, CoreNode *node, char *list,
                       size_t size);
int core_removexattr(CoreFront *front, const CoreCred *cred, CoreNode *node, const char *name);

int core_statfs(CoreFront *front, CoreNode *node, struct statvfs *st);
/* Makes directory node's entries durable (reaches the backend's fsyncdir). */
int core_fsyncdir(CoreFront *front, CoreNode *node, bool datasync);

/* ---------------------------------------------------------------- files */

struct CoreFile {
        CoreNode *node; /* the file holds an internal reference */
        LsFile *ls;
        int flags; /* open(2) flags it got (ls->flags) */
};

/*
 * core_open() - a file of its own (one open(2) of the fast path). flags as
 * open(2) without O_CREAT (O_TRUNC truncates, notified as a change). With
 * CORE_FRONT_CHECK_PERMS: perm_may_open() (and perm_write_killpriv() for
 * O_TRUNC). -EISDIR for a directory opened for writing, -ELOOP for a
 * symlink.
 */
int core_open(CoreFront *front, const CoreCred *cred, CoreNode *node, int flags, CoreFile **filep);
/*
 * core_create() - creates and opens name in dir (flags as open(2): O_EXCL
 * fails with -EEXIST; without it an existing file is opened, after the
 * checks an open makes). New entries follow the rules of core_mknod. Counts
 * one front reference on *nodep (may be NULL: counts nothing). filep may be
 * NULL (the file is closed). *createdp (may be NULL) tells whether the
 * entry is new.
 */
int core_create(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name, int flags,
                mode_t mode, CoreNode **nodep, struct stat *stp, CoreFile **filep, bool *createdp);
CoreFile *core_file_ref(CoreFile *file);
/* Closes the file with its last reference. Returns NULL. */
CoreFile *core_file_unref(CoreFile *file);

/*
 * core_io_get() - the node's shared io file, with a reference, for a front
 * that gets no OPEN/RELEASE: opened read-write where that needs no union
 * copy-up (LS_O_NOCOPYUP), else read-only; write: one opened read-write,
 * which replaces a read-only one (a union copies a lower file up for it).
 * Kept by the node while some front holds the node and within the core's io
 * file budget; past the budget, a file for this request only.
 */
int core_io_get(CoreFront *front, CoreNode *node, bool write, CoreFile **filep);
/* Makes file (opened read-write, without O_APPEND/O_DIRECT/O_SYNC/O_DSYNC)
 * node's io file if it has no read-write one and the budget allows (FUSE
 * CREATE: the new file serves later requests). The caller keeps its
 * reference. */
void core_io_offer(CoreNode *node, CoreFile *file);

ssize_t core_read(CoreFront *front, CoreFile *file, void *buf, size_t size, off_t off);

enum {
        /*
         * A write-back of the kernel's cached pages (FUSE writeback
         * caching): the kernel owns mtime, so the backend must keep the
         * mtime it last set (CORE_SETATTR_KERNEL_MTIME), or had before the
         * write. Serialised with every other CORE_WRITE_KEEP_MTIME write and
         * mtime-setting setattr of the node by a per-node lock, so two
         * write-backs never interleave their read-write-restore steps.
         */
        CORE_WRITE_KEEP_MTIME = 1 << 0,
};

/* rwf: 0 or RWF_APPEND, RWF_SYNC, RWF_DSYNC (pwritev2(2)); flags:
 * CORE_WRITE_*. With CORE_FRONT_CHECK_PERMS, set-user-ID bits are cleared
 * first (perm_write_killpriv) and security.capability removed, as the
 * kernel's file_remove_privs(); a file found without either is remembered so
 * (S_NOSEC) until its mode or xattrs change through the core or the backend
 * reports a change of it (core_notify_inval_inode, core_notify_delete): a
 * change made to the backend behind the core's back and not reported is not
 * seen by that cache. The written range is notified to the other fronts.
 * Returns the bytes written. */
ssize_t core_write(CoreFront *front, const CoreCred *cred, CoreFile *file, const void *buf,
                   size_t size, off_t off, int rwf, unsigned flags);
int core_fsync(CoreFront *front, CoreFile *file, bool datasync);
int core_fallocate(CoreFront *front, CoreFile *file, int mode, off_t off, off_t len);
/* SEEK_DATA/SEEK_HOLE (others: -EINVAL); -ENXIO past the end. */
off_t core_lseek(CoreFront *front, CoreFile *file, off_t off, int whence);
/* A kernel fd with the file's data, owned by the file (for splice), or
 * -EOPNOTSUPP. */
int core_file_fd(CoreFile *file);

/* ---------------------------------------------------------------- listings */

/*
 * core_dir_snap() - a listing of directory dir, with a reference.
 * @gen: 0 for the current listing: the one the directory keeps, retaken
 *       when an entry was made or removed through the core since, or the
 *       directory's mtime/ctime moved (changes behind the core's back);
 *       else the listing with that generation, while the directory still
 *       keeps it (the current one and the 7 taken before it): -ESTALE when
 *       it is gone (the front may go on in the current one by index,
 *       accepting what POSIX allows for a changed directory). A reader that
 *       keeps its CoreDirSnap (the fast path's directory stream) needs no
 *       lookup by generation.
 * Readers of one generation never disturb each other: a snapshot never
 * changes, a retake makes a new one.
 * With CORE_FRONT_CHECK_PERMS (gen 0 only): read permission on dir.
 */
int core_dir_snap(CoreFront *front, const CoreCred *cred, CoreNode *dir, uint32_t gen,
                  CoreDirSnap **snapp);
CoreDirSnap *core_dir_snap_ref(CoreDirSnap *snap);
CoreDirSnap *core_dir_snap_unref(CoreDirSnap *snap);
/* Its generation: never 0, below 2^31 (fits the upper half of a positive
 * 64-bit offset), unique among the core's snapshots for a long while. */
uint32_t core_dir_snap_gen(const CoreDirSnap *snap);
/* Entries without "." and ".." (the front adds them), in a stable order. */
size_t core_dir_snap_count(const CoreDirSnap *snap);
/* Entry i < count: its name, and its inode number and DT_* type. */
const char *core_dir_snap_entry(const CoreDirSnap *snap, size_t i, ino_t *inop,
                                unsigned char *typep);
/* The directory's attributes when the listing was taken (st_ino for "."). */
const struct stat *core_dir_snap_stat(const CoreDirSnap *snap);

/* ---------------------------------------------------------------- backend changes */

/*
 * Changes the backend reports (cephfs callbacks: another client changed
 * something): forwarded to every front holding what changed; negative
 * entries and listings of a changed directory are forgotten. Handles with
 * no node cost a table lookup and nothing else. Callable from any thread,
 * never blocking on a request.
 */
void core_notify_inval_inode(Core *core, LsNode *node, off_t off, off_t len);
void core_notify_inval_entry(Core *core, LsNode *dir, const char *name);
void core_notify_delete(Core *core, LsNode *dir, LsNode *child, const char *name);
