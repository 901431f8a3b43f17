/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE Files: no open, no release. The front answers the kernel's first OPEN
 * with ENOSYS, after which the kernel opens and closes files on its own (an
 * open(2)/close(2) pair costs no round trip) and sends every file request
 * with fh 0, keeping the page cache across opens as FOPEN_KEEP_CACHE would.
 * Every request goes through the node's shared io file in the core
 * (core_io_get): opened read-write where that needs no union copy-up, else
 * read-only, and read-write (copying a lower file up) at the first write;
 * CREATE offers the file it made. The handle keeps the object, so a file
 * whose last name is gone is still read and written through it.
 *
 * The kernel no longer tells the open flags: truncation on open arrives as
 * SETATTR (atomic O_TRUNC is turned off at INIT), O_APPEND, O_SYNC, O_DSYNC
 * and O_DIRECT come with each WRITE, and access was checked by the kernel
 * (default_permissions).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse-front-private.h"
#include "util/log.h"

/* How long an O_DIRECT WRITE (or a SEEK_DATA/SEEK_HOLE) waits for the kernel
 * to drop (or write back) the pages of the range before it replies anyway. */
#define FRONT_DIO_INVAL_MS 2000

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        /* The kernel opens files on its own from now on (see the top). */
        reply_err(req, -ENOSYS);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        gid_t groups[FRONT_MAX_GROUPS];
        CoreCred cred = front_cred(req, (mode & S_ISGID) != 0, groups);
        struct fuse_entry_param e;
        CoreNode *node = NULL;
        CoreFile *file = NULL;
        struct stat st;
        int r;

        /* Read-write whatever the caller asked (the file becomes the node's
         * io file); O_TRUNC for a name a racing creator made first. */
        r = core_create(f->cf, &cred, front_node(f, parent), name,
                        (fi->flags & (O_EXCL | O_TRUNC)) | O_RDWR | O_CREAT, mode, &node, &st,
                        &file, NULL);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        core_io_offer(node, file);
        core_file_unref(file);
        front_entry(f, node, &st, &e);
        fi->fh = 0;
        fi->keep_cache = f->cache.keep_cache;
        fi->noflush = f->cache.noflush;
        if (fuse_reply_create(req, &e, fi) < 0)
                core_forget(f->cf, node, 1);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        CoreFile *file;
        ssize_t n;
        char *buf;
        int fd, r;

        r = core_io_get(f->cf, front_node(f, ino), false, &file);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        fd = core_file_fd(file);
        if (fd >= 0) {
                /* libfuse splices from fd into /dev/fuse when the kernel
                 * allows (SPLICE_WRITE), else reads it into its own buffer.
                 * The backend's read moves atime as its relatime says. */
                struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

                bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
                bv.buf[0].fd = fd;
                bv.buf[0].pos = off;
                fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
                core_file_unref(file);
                return;
        }
        buf = malloc(size ? size : 1);
        if (!buf) {
                reply_err(req, -ENOMEM);
        } else {
                n = core_read(f->cf, file, buf, size, off);
                if (n < 0)
                        reply_err(req, (int)n);
                else
                        fuse_reply_buf(req, buf, (size_t)n);
                free(buf);
        }
        core_file_unref(file);
}

/* pwritev2(2) flags for what the writer's open flags ask of each write(2).
 * O_APPEND: the backend appends wherever the kernel thought the end was, so
 * concurrent appenders never overwrite each other. Under writeback caching
 * the kernel owns the size and appends in its page cache itself. */
static int write_rwf(const FuseFront *f, const struct fuse_file_info *fi)
{
        int rwf = 0;

        if ((fi->flags & O_APPEND) && !f->writeback && !fi->writepage)
                rwf |= RWF_APPEND;
        if ((fi->flags & O_SYNC) == O_SYNC)
                rwf |= RWF_SYNC;
        else if (fi->flags & O_DSYNC)
                rwf |= RWF_DSYNC;
        return rwf;
}

/* Writes one request's data at off. */
static ssize_t write_data(FuseFront *f, CoreFile *file, struct fuse_bufvec *in, off_t off, int rwf,
                          unsigned flags)
{
        const struct fuse_buf *b = &in->buf[in->idx];
        size_t size = fuse_buf_size(in);
        struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
        char *copy;
        ssize_t n;

        if (in->count - in->idx == 1 && !(b->flags & FUSE_BUF_IS_FD))
                /* The usual case (no splice): one buffer in memory. */
                return core_write(f->cf, NULL, file, (const char *)b->mem + in->off, size, off, rwf,
                                  flags);
        copy = malloc(size ? size : 1);
        if (!copy)
                return -ENOMEM;
        dst.buf[0].mem = copy;
        n = fuse_buf_copy(&dst, in, 0);
        if (n >= 0)
                n = core_write(f->cf, NULL, file, copy, (size_t)n, off, rwf, flags);
        free(copy);
        return n;
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
                         struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        unsigned flags = 0;
        CoreFile *file;
        ssize_t n;
        int r;

        r = core_io_get(f->cf, front_node(f, ino), true, &file);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        /* With writeback caching the kernel owns a written file's mtime: it
         * dates the write(2) itself and sends the time in SETATTR, while
         * the page comes back here later, on another thread, maybe after
         * that SETATTR. So a write-back must leave the backend's mtime as
         * the kernel last set it; the core serialises the node's
         * write-backs for that. */
        if (fi->writepage && f->writeback)
                flags |= CORE_WRITE_KEEP_MTIME;
        n = write_data(f, file, in, off, write_rwf(f, fi), flags);
        core_file_unref(file);
        if (n > 0 && (fi->flags & O_DIRECT) && !fi->writepage) {
                /* An O_DIRECT write bypassed the kernel's pages of the range;
                 * one submitted asynchronously (AIO) lets a buffered read
                 * bring the old bytes back in before it completes, and the
                 * kernel drops them only for a synchronous one. Drop them
                 * before the reply completes the write. Waiting here is
                 * safe: an inode invalidation takes no lock a request holds,
                 * and only waits for the write-back of dirty pages, which
                 * the other workers serve. */
                uint64_t seq = notifier_inval_inode(&f->notifier, ino, off, n);

                if (!notifier_wait(&f->notifier, seq, FRONT_DIO_INVAL_MS))
                        log_debug("O_DIRECT write at %lld: page invalidation still queued",
                                  (long long)off);
        }
        if (n < 0)
                reply_err(req, (int)n);
        else
                fuse_reply_write(req, (size_t)n);
}

/* No flush handler, on purpose: libfuse answers FLUSH with ENOSYS and the
 * kernel then never sends it again. Nothing is buffered here (a write that
 * returned is in the backend, DESIGN.md "Cache and consistency") and no
 * locks are kept, so a close(2) costs no round trip. */

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        /* Only for a file created before the kernel learnt that there is no
         * open: it has fh 0 too, nothing to release. */
        reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        CoreFile *file;
        int r;

        r = core_io_get(f->cf, front_node(f, ino), false, &file);
        if (r >= 0) {
                r = core_fsync(f->cf, file, datasync != 0);
                core_file_unref(file);
        }
        reply_err(req, r);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        CoreFile *file;
        int r;

        r = core_io_get(f->cf, front_node(f, ino), true, &file);
        if (r >= 0) {
                r = core_fallocate(f->cf, file, mode, off, len);
                core_file_unref(file);
        }
        reply_err(req, r);
}

/* SEEK_DATA/SEEK_HOLE (the kernel does the others itself). */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        CoreFile *file;
        off_t r;
        int e;

        if (whence != SEEK_DATA && whence != SEEK_HOLE) {
                reply_err(req, -EINVAL);
                return;
        }
        if (f->writeback) {
                /* Data the kernel has not written back yet is no data to
                 * the backend: the kernel holds the file's lock across this
                 * request but writes nothing back first, so have it write
                 * back (and drop) the pages from off on. The notifier's
                 * inode invalidation needs no lock the kernel holds here;
                 * it waits only for WRITEs the other workers serve. */
                uint64_t seq = notifier_inval_inode(&f->notifier, ino, off < 0 ? 0 : off, 0);

                if (!notifier_wait(&f->notifier, seq, FRONT_DIO_INVAL_MS))
                        log_debug("SEEK_DATA/HOLE at %lld: write-back still queued",
                                  (long long)off);
        }
        e = core_io_get(f->cf, front_node(f, ino), false, &file);
        if (e < 0) {
                reply_err(req, e);
                return;
        }
        r = core_lseek(f->cf, file, off, whence);
        core_file_unref(file);
        if (r < 0)
                reply_err(req, (int)r);
        else
                fuse_reply_lseek(req, r);
}

void front_file_ops(struct fuse_lowlevel_ops *ops)
{
        ops->open = op_open;
        ops->create = op_create;
        ops->read = op_read;
        ops->write_buf = op_write_buf;
        ops->release = op_release;
        ops->fsync = op_fsync;
        ops->fallocate = op_fallocate;
        ops->lseek = op_lseek;
}
