/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Union Files: open and the file operations.
 *
 * A union file wraps the file of the branch that held the node when it was
 * opened. Opening for writing (or O_TRUNC) copies a lower node up first, so
 * a writer always writes the top. LS_O_NOCOPYUP asks for read-write only
 * where that needs no copy-up, else read-only.
 *
 * A file opened read-only below goes on with the copy once the node is
 * copied up, as overlayfs does since Linux 4.19: each call compares the
 * node's copy-up counter with the one it saw (one atomic load when nothing
 * moved); when it moved, the file opens the node's top handle read-only and
 * uses it from then on. The lower file stays open, unused, until release (a
 * call in flight, or a kernel fd a front splices from, may still use it).
 * Being the same node, this follows renames and holds for every name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

#include "libservice/union-private.h"

typedef struct UnionFile {
        LsFile base; /* first: (LsFile *)uf works */
        /* the branch file I/O goes to; replaced once, under mu, when a file
         * opened below finds its node copied up */
        _Atomic(LsFile *) child;
        atomic_bool may_follow;
        atomic_uint_fast64_t seen; /* node's copyups when child was chosen */
        pthread_mutex_t mu;
        LsFile *lower; /* the child before the swap, released at release */
} UnionFile;

static inline UnionFile *to_ufile(LsFile *f)
{
        return (UnionFile *)f;
}

int union_file_wrap(UnionNode *n, LsFile *child, int branch, bool may_follow, uint64_t copyups,
                    LsFile **filep)
{
        UnionFile *uf = calloc(1, sizeof(*uf));

        (void)branch;
        if (!uf) {
                ls_ops(child->node)->release(child);
                return -ENOMEM;
        }
        ls_file_init(&uf->base, &n->base, child->flags);
        atomic_init(&uf->child, child);
        atomic_init(&uf->may_follow, may_follow);
        atomic_init(&uf->seen, copyups);
        pthread_mutex_init(&uf->mu, NULL);
        *filep = &uf->base;
        return 0;
}

int union_open(LsNode *node, int flags, LsFile **filep)
{
        UnionNode *n = to_unode(node);
        Union *u = node_union(n);
        bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
        uint64_t copyups;
        LsFile *child;
        LsNode *h;
        int b, r;

        if (n->type == S_IFLNK)
                return -ELOOP;
        if (flags & LS_O_NOCOPYUP) {
                if (write && (!u->writable || union_node_is_lower(n))) {
                        flags = (flags & ~(O_ACCMODE | O_TRUNC)) | O_RDONLY;
                        write = false;
                }
                flags &= ~LS_O_NOCOPYUP;
        }
        flags &= ~(O_CREAT | O_EXCL);
        if (write) {
                if (!u->writable)
                        return -EROFS;
                if (n->type == S_IFDIR)
                        return -EISDIR;
                r = union_copyup(n, (flags & O_TRUNC) != 0);
                if (r < 0)
                        return r;
        }
        /* the counter before the handle: a copy-up after it moves it */
        copyups = atomic_load_explicit(&n->copyups, memory_order_acquire);
        r = union_node_first(n, &h, &b);
        if (r < 0)
                return r;
        r = bops(h)->open(h, flags, &child);
        ls_node_unref(h);
        if (r < 0)
                return r;
        return union_file_wrap(n, child, b, !write && b != 0 && n->type == S_IFREG && u->writable,
                               copyups, filep);
}

static void file_follow(UnionFile *uf, uint64_t c)
{
        UnionNode *n = to_unode(uf->base.node);
        LsFile *child;
        LsNode *h;
        int b;

        pthread_mutex_lock(&uf->mu);
        if (!atomic_load(&uf->may_follow) || atomic_load(&uf->seen) == c)
                goto out;
        /* before the handle is read: a later copy-up moves it again */
        atomic_store(&uf->seen, c);
        if (union_node_first(n, &h, &b) < 0)
                goto out;
        if (b == 0 &&
            bops(h)->open(h, (uf->base.flags & ~(O_ACCMODE | O_TRUNC)) | O_RDONLY, &child) == 0) {
                uf->lower = atomic_load(&uf->child);
                atomic_store_explicit(&uf->child, child, memory_order_release);
                atomic_store(&uf->may_follow, false);
        }
        ls_node_unref(h);
out:
        pthread_mutex_unlock(&uf->mu);
}

/* The branch file to use: one atomic load per call, plus, for a file opened
 * below, one of its node's copy-up counter. */
static LsFile *file_child(LsFile *file)
{
        UnionFile *uf = to_ufile(file);

        if (atomic_load_explicit(&uf->may_follow, memory_order_relaxed)) {
                UnionNode *n = to_unode(file->node);
                /* pairs with the release increment after a copy-up */
                uint64_t c = atomic_load_explicit(&n->copyups, memory_order_acquire);

                if (c != atomic_load_explicit(&uf->seen, memory_order_relaxed))
                        file_follow(uf, c);
        }
        /* pairs with the release store of the swap */
        return atomic_load_explicit(&uf->child, memory_order_acquire);
}

ssize_t union_pread(LsFile *file, void *buf, size_t size, off_t off)
{
        LsFile *c = file_child(file);

        return ls_ops(c->node)->pread(c, buf, size, off);
}

ssize_t union_pwrite(LsFile *file, const void *buf, size_t size, off_t off, int rwf)
{
        LsFile *c = file_child(file);

        return ls_ops(c->node)->pwrite(c, buf, size, off, rwf);
}

int union_fsync(LsFile *file, bool datasync)
{
        LsFile *c = file_child(file);

        return ls_ops(c->node)->fsync(c, datasync);
}

int union_fallocate(LsFile *file, int mode, off_t off, off_t len)
{
        LsFile *c = file_child(file);

        return ls_ops(c->node)->fallocate(c, mode, off, len);
}

off_t union_lseek(LsFile *file, off_t off, int whence)
{
        LsFile *c = file_child(file);

        if (!ls_ops(c->node)->lseek)
                return -EINVAL;
        return ls_ops(c->node)->lseek(c, off, whence);
}

int union_file_fd(LsFile *file)
{
        LsFile *c = file_child(file);

        if (!ls_ops(c->node)->file_fd)
                return -EOPNOTSUPP;
        return ls_ops(c->node)->file_fd(c);
}

int union_release(LsFile *file)
{
        UnionFile *uf = to_ufile(file);
        LsFile *c = atomic_load(&uf->child);
        int r = ls_ops(c->node)->release(c);

        if (uf->lower)
                ls_ops(uf->lower->node)->release(uf->lower);
        pthread_mutex_destroy(&uf->mu);
        ls_file_deinit(&uf->base);
        free(uf);
        return r;
}
