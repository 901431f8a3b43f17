/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Open Files: CoreFile (one per open, shared by whoever holds it), the
 * node's shared io file for fronts without OPEN/RELEASE, and the file
 * operations.
 *
 * The io file (the FUSE front's no-open mode, docs/architecture.md): every
 * request on a node shares one file, opened at the first read or write
 * read-write where that needs no union copy-up (LS_O_NOCOPYUP), else
 * read-only; the first write opens it read-write (a union copies a lower
 * file up) and the new file replaces the old. A read-only io file is dropped
 * after any change that may have copied the object up (setattr, xattrs,
 * link), so the next request opens the node again. The node keeps it while
 * some front holds the node; with handles, a node whose names are all gone
 * needs no pinned file to stay reachable (its LsNode keeps the object), so
 * the only reason for a budget is the fds io files cost: past
 * CoreParams.max_io_files a request gets a file of its own.
 *
 * Write-back mtime: under FUSE writeback caching the kernel owns mtime. A
 * write-back (CORE_WRITE_KEEP_MTIME) writes and then puts back the mtime the
 * kernel last set (CORE_SETATTR_KERNEL_MTIME) or, if it set none since the
 * backend's changed, the backend's from before the write. The node's
 * wb_lock serialises those steps with each other and with the kernel's
 * mtime updates, so two write-backs can never interleave a read of the
 * mtime with another's write and leave the backend newer than the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/uio.h> /* RWF_* */

#include "core/core-private.h"
#include "core/new-entry.h"

/* open(2) flags the libservices honour (libservice.h), and ours. */
#define XATTR_CAPS "security.capability"

#define LS_OPEN_FLAGS                                                                              \
        (O_ACCMODE | O_APPEND | O_TRUNC | O_DIRECT | O_SYNC | O_DSYNC | O_NOATIME | LS_O_NOCOPYUP)

static CoreFile *file_new(CoreNode *node, LsFile *ls)
{
        CoreFilePriv *p = malloc(sizeof(*p));

        if (!p) {
                ls_ops(ls->node)->release(ls);
                return NULL;
        }
        p->pub.node = core_node_ref(node);
        p->pub.ls = ls;
        p->pub.flags = ls->flags;
        atomic_init(&p->n_refs, 1);
        p->writable = (ls->flags & O_ACCMODE) != O_RDONLY;
        return &p->pub;
}

CoreFile *core_file_ref(CoreFile *file)
{
        if (file)
                atomic_fetch_add_explicit(&file_priv(file)->n_refs, 1, memory_order_relaxed);
        return file;
}

CoreFile *core_file_unref(CoreFile *file)
{
        CoreNode *node;

        if (!file ||
            atomic_fetch_sub_explicit(&file_priv(file)->n_refs, 1, memory_order_acq_rel) != 1)
                return NULL;
        node = file->node;
        ls_ops(file->ls->node)->release(file->ls);
        free(file_priv(file));
        core_node_unref(node);
        return NULL;
}

CoreFile *io_take(CoreNode *node)
{
        CoreFile *io = node->io;

        if (io) {
                node->io = NULL;
                atomic_fetch_sub_explicit(&node->core->n_io, 1, memory_order_relaxed);
        }
        return io;
}

void io_changed(CoreNode *node)
{
        CoreFile *io = NULL;

        pthread_mutex_lock(&node->lock);
        if (node->io && !file_priv(node->io)->writable)
                io = io_take(node);
        pthread_mutex_unlock(&node->lock);
        core_file_unref(io);
}

/* Makes file node's io file in place of expect (NULL: none), if the node
 * still has expect, some front holds it and the budget allows a new one.
 * Node locked. On success the node holds a reference on file and the
 * caller drops the node's reference on expect. */
static bool io_install_locked(CoreNode *node, CoreFile *expect, CoreFile *file)
{
        Core *c = node->core;

        if (node->io != expect || node->n_slots == 0)
                return false;
        if (!expect &&
            atomic_load_explicit(&c->n_io, memory_order_relaxed) >= c->params.max_io_files)
                return false;
        node->io = core_file_ref(file);
        if (!expect)
                atomic_fetch_add_explicit(&c->n_io, 1, memory_order_relaxed);
        return true;
}

int core_io_get(CoreFront *front, CoreNode *node, bool write, CoreFile **filep)
{
        int tries;

        if (write && front_ro(front))
                return -EROFS;
        for (tries = 0;; tries++) {
                CoreFile *cur, *file;
                bool installed, raced;
                LsFile *ls;
                int r, flags;

                pthread_mutex_lock(&node->lock);
                cur = core_file_ref(node->io);
                pthread_mutex_unlock(&node->lock);
                if (cur && (!write || file_priv(cur)->writable)) {
                        *filep = cur;
                        return 0;
                }
                flags = write ? O_RDWR : O_RDWR | LS_O_NOCOPYUP;
                if (front_ro(front))
                        flags = O_RDONLY;
                r = node_ops(node)->open(node->ls, flags, &ls);
                if (r < 0) {
                        core_file_unref(cur);
                        return r;
                }
                file = file_new(node, ls);
                if (!file) {
                        core_file_unref(cur);
                        return -ENOMEM;
                }
                pthread_mutex_lock(&node->lock);
                installed = io_install_locked(node, cur, file);
                raced = !installed && node->io != cur;
                pthread_mutex_unlock(&node->lock);
                if (installed)
                        core_file_unref(cur); /* the node's reference */
                if (!raced || tries >= 3) {
                        /* installed, or over budget (a file for this request
                         * only), or racing too long (the same file: fine) */
                        core_file_unref(cur);
                        *filep = file;
                        return 0;
                }
                /* another thread changed the io file first: look again */
                core_file_unref(file);
                core_file_unref(cur);
        }
}

void core_io_offer(CoreNode *node, CoreFile *file)
{
        CoreFile *old;
        bool installed = false;

        if (!file || file->node != node || !file_priv(file)->writable ||
            (file->flags & (O_APPEND | O_DIRECT | O_DSYNC)))
                return;
        pthread_mutex_lock(&node->lock);
        old = node->io;
        if (!old || !file_priv(old)->writable)
                installed = io_install_locked(node, old, file);
        pthread_mutex_unlock(&node->lock);
        if (installed)
                core_file_unref(old);
}

/* open(2)'s checks and O_TRUNC's set-user-ID clearing, for fronts that
 * check (st: the node's attributes). */
static int may_open(CoreFront *front, const CoreCred *cred, CoreNode *node, const struct stat *st,
                    int flags)
{
        void *acl;
        size_t n;
        mode_t kill;
        int r;

        if (!front_checks(front))
                return 0;
        if (!cred)
                return -EINVAL;
        r = node_get_acl(node, false, &acl, &n);
        if (r >= 0)
                r = perm_may_open(st, acl, n, cred, flags);
        free(acl);
        if (r >= 0 && (flags & O_TRUNC) && (kill = perm_write_killpriv(st, cred))) {
                LsSetattr sa = {.valid = LS_SET_MODE, .mode = kill & 07777};

                r = node_ops(node)->setattr(node->ls, &sa, NULL);
                node_sec_changed(node);
        }
        return r;
}

/* Opens node (existing) for the caller; st: its attributes. */
static int open_node(CoreFront *front, const CoreCred *cred, CoreNode *node, const struct stat *st,
                     int flags, CoreFile **filep)
{
        LsFile *ls;
        int r;

        if ((flags & O_ACCMODE) == O_ACCMODE)
                return -EINVAL;
        if (front_ro(front) && ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)))
                return -EROFS;
        if (S_ISLNK(st->st_mode))
                return -ELOOP;
        if (S_ISDIR(st->st_mode) && ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)))
                return -EISDIR;
        if ((flags & O_DIRECTORY) && !S_ISDIR(st->st_mode))
                return -ENOTDIR;
        r = may_open(front, cred, node, st, flags);
        if (r >= 0)
                r = node_ops(node)->open(node->ls, flags & LS_OPEN_FLAGS, &ls);
        if (r < 0)
                return r;
        *filep = file_new(node, ls);
        if (!*filep)
                return -ENOMEM;
        if ((flags & O_ACCMODE) != O_RDONLY)
                io_changed(node); /* a union may have copied it up */
        if (flags & O_TRUNC) {
                node_mtime_changed(node);
                notify_inode(node, front, 0, 0);
        }
        return 0;
}

int core_open(CoreFront *front, const CoreCred *cred, CoreNode *node, int flags, CoreFile **filep)
{
        struct stat st;
        int r;

        if (flags & O_CREAT)
                return -EINVAL; /* core_create() */
        r = core_getattr(front, node, &st);
        if (r < 0)
                return r;
        return open_node(front, cred, node, &st, flags, filep);
}

/* Makes name in dir and opens it (it did not exist). *nodep: an internal
 * reference. -EEXIST when another creator got there first. */
static int create_new(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name,
                      int flags, mode_t mode, CoreNode **nodep, struct stat *st, CoreFile **filep)
{
        NewEntry ne;
        LsFile *lsf;
        LsNode *ls;
        int r;

        r = new_entry_prepare(front, cred, dir, S_IFREG | (mode & 07777), &ne);
        if (r < 0)
                return r;
        r = node_ops(dir)->create(dir->ls, name, (flags & LS_OPEN_FLAGS) | O_CREAT | O_EXCL,
                                  ne.mode & 07777, &ne.owner, &ls, st, &lsf);
        if (r >= 0) {
                r = new_entry_store_acls(&ne, ls);
                if (r < 0) {
                        /* fail closed: no file without its inherited ACL */
                        ls_ops(ls)->release(lsf);
                        node_ops(dir)->unlink(dir->ls, name);
                        ls_node_unref(ls);
                }
        }
        new_entry_free(&ne);
        if (r < 0)
                return r;
        dir_changed(dir, NULL);
        notify_entry(dir, name, NULL, false, front);
        r = node_enter(dir->core, ls, st, dir, nodep);
        if (r < 0) {
                ls_ops(lsf->node)->release(lsf);
                return r;
        }
        *filep = file_new(*nodep, lsf);
        if (!*filep) {
                *nodep = core_node_unref(*nodep);
                return -ENOMEM;
        }
        return 0;
}

int core_create(CoreFront *front, const CoreCred *cred, CoreNode *dir, const char *name, int flags,
                mode_t mode, CoreNode **nodep, struct stat *stp, CoreFile **filep, bool *createdp)
{
        CoreFile *file = NULL;
        CoreNode *node = NULL;
        bool created = false;
        struct stat st;
        int r, tries;

        r = core_name_check(name);
        if (r >= 0 && front_checks(front))
                r = node_permission(dir, NULL, cred, X_OK);
        for (tries = 0; r >= 0; tries++) {
                /* Whether it exists decides between the rules of open and
                 * those of a new entry; the negative entry the kernel's own
                 * LOOKUP left usually answers without a backend call. */
                r = name_lookup(dir, name, &node, &st);
                if (r >= 0) {
                        if (flags & O_EXCL)
                                r = -EEXIST;
                        else if (S_ISDIR(st.st_mode))
                                r = -EISDIR;
                        else
                                r = open_node(front, cred, node, &st, flags, &file);
                        break;
                }
                if (r != -ENOENT)
                        break;
                r = create_new(front, cred, dir, name, flags, mode, &node, &st, &file);
                created = r >= 0;
                if (r == -EEXIST)
                        dir_changed(dir, NULL); /* the negative entry was stale */
                if (r != -EEXIST || (flags & O_EXCL) || tries >= 8)
                        break;
                r = 0; /* made meanwhile by another: open that one */
        }
        if (r < 0) {
                core_node_unref(node);
                return r;
        }
        if (nodep) {
                r = core_front_hold(front, node, 1);
                if (r < 0) {
                        core_file_unref(file);
                        core_node_unref(node);
                        return r;
                }
                *nodep = node;
        }
        core_node_unref(node);
        if (stp)
                *stp = st;
        if (createdp)
                *createdp = created;
        if (filep)
                *filep = file;
        else
                core_file_unref(file);
        return 0;
}

ssize_t core_read(CoreFront *front, CoreFile *file, void *buf, size_t size, off_t off)
{
        return ls_ops(file->ls->node)->pread(file->ls, buf, size, off);
}

/* The write-back of one request: the data, then the mtime the kernel owns
 * (wb_lock held). */
static ssize_t write_keep_mtime(CoreNode *node, CoreFile *file, const void *buf, size_t size,
                                off_t off, int rwf)
{
        const LsOps *ops = ls_ops(file->ls->node);
        unsigned gen = atomic_load_explicit(&node->mtime_gen, memory_order_relaxed);
        ssize_t n;

        if (!node->wb_mtime_valid || node->wb_gen != gen) {
                /* no time from the kernel since the backend's last moved:
                 * the backend's own, from before this write */
                struct stat st;

                if (node_ops(node)->getattr(node->ls, &st) >= 0) {
                        node->wb_mtime = st.st_mtim;
                        node->wb_mtime_valid = true;
                        node->wb_gen = gen;
                }
        }
        n = ops->pwrite(file->ls, buf, size, off, rwf);
        if (n > 0 && node->wb_mtime_valid) {
                LsSetattr sa = {.valid = LS_SET_MTIME, .mtime = node->wb_mtime};
                int r = node_ops(node)->setattr(node->ls, &sa, NULL);

                if (r < 0)
                        return r;
        }
        return n;
}

/* file_remove_privs() before a write: set-ID bits cleared as
 * perm_write_killpriv() says and security.capability removed. As the
 * kernel's S_NOSEC, a regular file found with neither is remembered so
 * (nosec_at) until node_sec_changed(): most writes ask the backend nothing.
 * sec_gen is read before the backend is asked, so a change made meanwhile
 * leaves nosec_at stale rather than wrong. */
static int remove_privs(CoreNode *node, const CoreCred *cred)
{
        uint_fast64_t gen = atomic_load_explicit(&node->sec_gen, memory_order_acquire);
        struct stat st;
        ssize_t cap;
        mode_t kill;
        int r;

        if (atomic_load_explicit(&node->nosec_at, memory_order_acquire) == gen + 1)
                return 0;
        r = node_ops(node)->getattr(node->ls, &st);
        if (r < 0)
                return r;
        if (!S_ISREG(st.st_mode))
                return 0;
        cap = node_ops(node)->getxattr(node->ls, XATTR_CAPS, NULL, 0);
        if (cap >= 0) {
                /* security_inode_killpriv(): whoever writes */
                r = node_ops(node)->removexattr(node->ls, XATTR_CAPS);
                node_sec_changed(node);
                if (r < 0 && r != -ENODATA)
                        return r;
        } else if (cap != -ENODATA && cap != -EOPNOTSUPP) {
                return (int)cap;
        }
        kill = perm_write_killpriv(&st, cred);
        if (kill) {
                LsSetattr sa = {.valid = LS_SET_MODE, .mode = kill & 07777};

                r = node_ops(node)->setattr(node->ls, &sa, NULL);
                node_sec_changed(node);
                if (r < 0)
                        return r;
        }
        if (cap < 0 && !(st.st_mode & (S_ISUID | S_ISGID)))
                atomic_store_explicit(&node->nosec_at, gen + 1, memory_order_release);
        return 0;
}

ssize_t core_write(CoreFront *front, const CoreCred *cred, CoreFile *file, const void *buf,
                   size_t size, off_t off, int rwf, unsigned flags)
{
        CoreNode *node = file->node;
        ssize_t n;

        if ((file->flags & O_ACCMODE) == O_RDONLY)
                return -EBADF;
        if (front_checks(front) && size > 0) {
                int r = cred ? remove_privs(node, cred) : -EINVAL;

                if (r < 0)
                        return r;
        }
        if (flags & CORE_WRITE_KEEP_MTIME) {
                pthread_mutex_lock(&node->wb_lock);
                n = write_keep_mtime(node, file, buf, size, off, rwf);
                pthread_mutex_unlock(&node->wb_lock);
        } else {
                n = ls_ops(file->ls->node)->pwrite(file->ls, buf, size, off, rwf);
                if (n > 0)
                        node_mtime_changed(node);
        }
        if (n > 0)
                notify_inode(node, front, (rwf & RWF_APPEND) ? 0 : off, (rwf & RWF_APPEND) ? 0 : n);
        return n;
}

int core_fsync(CoreFront *front, CoreFile *file, bool datasync)
{
        return ls_ops(file->ls->node)->fsync(file->ls, datasync);
}

int core_fallocate(CoreFront *front, CoreFile *file, int mode, off_t off, off_t len)
{
        int r;

        if ((file->flags & O_ACCMODE) == O_RDONLY)
                return -EBADF;
        r = ls_ops(file->ls->node)->fallocate(file->ls, mode, off, len);
        if (r >= 0) {
                node_mtime_changed(file->node);
                notify_inode(file->node, front, off, len);
        }
        return r;
}

off_t core_lseek(CoreFront *front, CoreFile *file, off_t off, int whence)
{
        if (whence != SEEK_DATA && whence != SEEK_HOLE)
                return -EINVAL;
        return ls_ops(file->ls->node)->lseek(file->ls, off, whence);
}

int core_file_fd(CoreFile *file)
{
        const LsOps *ops = ls_ops(file->ls->node);

        return ops->file_fd ? ops->file_fd(file->ls) : -EOPNOTSUPP;
}
