/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE File Handles: open/create, read/write, sync, space and seek on the
 * instance's LsFile, whose pointer is the fh the kernel holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse-front-private.h"

/* Flags for the instance: what the kernel passes through, less what the
 * kernel already did or what our buffers cannot honour. O_DIRECT would need
 * aligned buffers on the backend; the kernel side still does direct I/O for
 * the caller. The node's name is the file itself: never follow a symlink
 * there.
 * Without writeback caching O_APPEND stays: the backend file appends
 * whatever offset the kernel computed, so concurrent appenders work. With
 * it, the kernel owns the file size and handles O_APPEND in its page cache
 * (one kernel, so appenders still serialise), may read pages of a file
 * opened write-only, and writes back later through any handle: the backend
 * file is opened read-write and without O_APPEND. */
static int open_flags(const FuseFront *f, int kflags, bool create)
{
        int flags = kflags & ~(O_NOCTTY | O_DIRECT);

        if (!create)
                flags &= ~(O_CREAT | O_EXCL);
        if (f->writeback) {
                flags &= ~O_APPEND;
                if ((flags & O_ACCMODE) == O_WRONLY)
                        flags = (flags & ~O_ACCMODE) | O_RDWR;
        }
        return flags | O_NOFOLLOW;
}

/* Makes file the handle the kernel gets (fi->fh) and links it to its node.
 * On failure the file is released. */
static int file_attach(FuseFront *f, struct fuse_file_info *fi, Node *node, LsFile *file)
{
        FrontFile *ff = malloc(sizeof(*ff));

        if (!ff) {
                f->ops->release(file);
                return -ENOMEM;
        }
        ff->file = file;
        ff->node = node;
        node_file_add(node, &ff->link);
        fi->fh = (uint64_t)(uintptr_t)ff;
        fi->keep_cache = f->cache.keep_cache;
        fi->noflush = f->cache.noflush;
        atomic_fetch_add_explicit(&f->n_open, 1, memory_order_relaxed);
        return 0;
}

static int file_drop(FuseFront *f, FrontFile *ff)
{
        int r;

        node_file_remove(ff->node, &ff->link);
        r = f->ops->release(ff->file);
        free(ff);
        atomic_fetch_sub_explicit(&f->n_open, 1, memory_order_relaxed);
        return r;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        LsCred cred = req_cred(req);
        char path[PATH_MAX];
        LsFile *file;
        int r;

        r = front_path(f, ino, path);
        if (r >= 0)
                r = f->ops->open(f->inst, path, open_flags(f, fi->flags, false), 0, &cred, &file);
        if (r >= 0)
                r = file_attach(f, fi, front_node(f, ino), file);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        /* Not received (interrupted): the kernel will never release it. */
        if (fuse_reply_open(req, fi) < 0)
                file_drop(f, fi_front_file(fi));
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        LsCred cred = req_cred(req);
        struct fuse_entry_param e;
        char path[PATH_MAX];
        LsFile *file;
        struct stat st;
        unsigned seq;
        int r;

        r = front_child_path(f, parent, name, path, &seq);
        if (r >= 0)
                /* The kernel's mode carries S_IFREG; open(2) takes permission
                 * bits only (openat2 refuses more). */
                r = f->ops->open(f->inst, path, open_flags(f, fi->flags, true) | O_CREAT,
                                 mode & 07777, &cred, &file);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        r = f->ops->fstat(file, &st);
        if (r >= 0)
                r = front_enter(f, front_node(f, parent), name, path, seq, &st, &e);
        if (r < 0) {
                f->ops->release(file);
                reply_err(req, r);
                return;
        }
        r = file_attach(f, fi, front_node(f, e.ino), file);
        if (r < 0) {
                node_table_forget(f->nodes, front_node(f, e.ino), 1);
                reply_err(req, r);
                return;
        }
        if (fuse_reply_create(req, &e, fi) < 0) {
                file_drop(f, fi_front_file(fi));
                node_table_forget(f->nodes, front_node(f, e.ino), 1);
        }
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        LsFile *file = fi_file(fi);
        int fd = f->ops->file_fd ? f->ops->file_fd(file) : -EOPNOTSUPP;
        ssize_t n;
        char *buf;

        if (fd >= 0) {
                /* libfuse splices from fd into /dev/fuse when the kernel
                 * allows (SPLICE_WRITE), else reads it into its own buffer. */
                struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

                bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
                bv.buf[0].fd = fd;
                bv.buf[0].pos = off;
                fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
                return;
        }
        buf = malloc(size ? size : 1);
        if (!buf) {
                reply_err(req, -ENOMEM);
                return;
        }
        n = f->ops->pread(file, buf, size, off);
        if (n < 0)
                reply_err(req, (int)n);
        else
                fuse_reply_buf(req, buf, (size_t)n);
        free(buf);
}

/* Writes one request's data at off. */
static ssize_t write_data(FuseFront *f, LsFile *file, struct fuse_bufvec *in, off_t off)
{
        const struct fuse_buf *b = &in->buf[in->idx];
        size_t size = fuse_buf_size(in);
        struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
        char *copy;
        ssize_t n;

        if (in->count - in->idx == 1 && !(b->flags & FUSE_BUF_IS_FD))
                /* The usual case (no splice): one buffer in memory. */
                return f->ops->pwrite(file, (const char *)b->mem + in->off, size, off);
        copy = malloc(size ? size : 1);
        if (!copy)
                return -ENOMEM;
        dst.buf[0].mem = copy;
        n = fuse_buf_copy(&dst, in, 0);
        if (n >= 0)
                n = f->ops->pwrite(file, copy, (size_t)n, off);
        free(copy);
        return n;
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
                         struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        LsFile *file = fi_file(fi);
        struct stat before;
        ssize_t n;

        /* With writeback caching the kernel owns a written file's mtime: it
         * dates the write(2) itself and sends the time in SETATTR when it
         * changes (never when the write fell in the same clock tick), while
         * the page itself comes back here later, on another thread, maybe
         * after that SETATTR. So a write-back (fi->writepage) must not move
         * the backend's mtime: put back what it was. */
        bool keep_mtime = fi->writepage && f->ops->futimens && f->ops->fstat(file, &before) >= 0;

        n = write_data(f, file, in, off);
        if (n > 0 && keep_mtime) {
                struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, before.st_mtim};

                f->ops->futimens(file, ts);
        }
        if (n < 0)
                reply_err(req, (int)n);
        else
                fuse_reply_write(req, (size_t)n);
}

/* No flush handler, on purpose: libfuse answers FLUSH with ENOSYS and the
 * kernel then never sends it again. Nothing is buffered here (a write that
 * returned is in the backend, DESIGN.md "Cache and consistency") and no
 * locks are kept, so a close(2) costs no round trip. FOPEN_NOFLUSH alone is
 * not enough: the kernel ignores it under writeback caching, where close
 * still writes the kernel's dirty pages back first. */

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        /* The kernel ignores the result: the close(2) that led here is done. */
        file_drop(req_front(req), fi_front_file(fi));
        reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);

        reply_err(req, f->ops->fsync(fi_file(fi), datasync != 0));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);

        reply_err(req, f->ops->fallocate(fi_file(fi), mode, off, len));
}

/* SEEK_DATA/SEEK_HOLE (the kernel does the others itself). */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        LsFile *file = fi_file(fi);
        int fd = f->ops->file_fd ? f->ops->file_fd(file) : -EOPNOTSUPP;
        struct stat st;
        off_t r;
        int e;

        if (whence != SEEK_DATA && whence != SEEK_HOLE) {
                reply_err(req, -EINVAL);
                return;
        }
        if (fd >= 0) {
                /* Moves the backend fd's position, which nothing uses: all
                 * I/O on it is positioned (pread/pwrite/splice with offsets). */
                r = lseek(fd, off, whence);
                if (r < 0)
                        reply_err(req, -errno);
                else
                        fuse_reply_lseek(req, r);
                return;
        }
        /* Without an fd the whole file is data, as for a filesystem with no
         * hole support. */
        e = f->ops->fstat(file, &st);
        if (e < 0)
                reply_err(req, e);
        else if (off < 0 || off >= st.st_size)
                reply_err(req, -ENXIO);
        else
                fuse_reply_lseek(req, whence == SEEK_DATA ? off : st.st_size);
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
