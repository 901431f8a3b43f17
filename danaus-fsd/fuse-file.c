/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE Files: no open, no release. The front answers the kernel's first OPEN
 * with ENOSYS, after which the kernel opens and closes files on its own (an
 * open(2)/close(2) pair costs no round trip) and sends every file request
 * with fh 0, keeping the page cache across opens as FOPEN_KEEP_CACHE would.
 * Each node then has one io file of the instance that all its requests
 * share, opened at the first read or write and closed when the kernel
 * forgets the node:
 *  - a read opens it read-write where that needs no union copy-up, else
 *    read-only; the first write or fallocate then opens it read-write, which
 *    copies a lower file up, and the new file replaces the old one;
 *  - create makes the new file the io file;
 *  - before the last name of a file the kernel knows goes away, the file
 *    gets an io file if it has none (front_io_pin), so a process that has
 *    it open still reads and writes it, as on a local filesystem.
 * The kernel no longer tells the open flags: truncation on open arrives as
 * SETATTR (atomic O_TRUNC is turned off at INIT), O_APPEND, O_SYNC and
 * O_DSYNC come with each WRITE, and access was checked by the kernel
 * (default_permissions).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse-front-private.h"

static void io_hold(NodeFile *nf)
{
        atomic_fetch_add_explicit(&node_file_ff(nf)->refs, 1, memory_order_relaxed);
}

void front_io_put(FuseFront *f, FrontFile *ff)
{
        if (atomic_fetch_sub_explicit(&ff->refs, 1, memory_order_acq_rel) != 1)
                return;
        if (!ff->file) {
                front_dir_drop(ff);
                return;
        }
        f->ops->release(ff->file);
        free(ff);
        atomic_fetch_sub_explicit(&f->n_io, 1, memory_order_relaxed);
}

void front_io_drop(NodeFile *nf, void *front)
{
        front_io_put(front, node_file_ff(nf));
}

static FrontFile *io_new(FuseFront *f, Node *node, LsFile *file)
{
        FrontFile *ff = malloc(sizeof(*ff));

        if (!ff)
                return NULL;
        atomic_fetch_add_explicit(&f->n_io, 1, memory_order_relaxed);
        ff->file = file;
        ff->node = node;
        atomic_init(&ff->refs, 1);
        ff->writable = (file->flags & O_ACCMODE) != O_RDONLY;
        return ff;
}

/* Makes ff (one reference, the caller's) the node's io file in place of cur
 * (held by the caller, or NULL). On success the node holds a second
 * reference and cur's two are dropped; false, changing nothing, when another
 * thread replaced cur first. */
static bool io_install(FuseFront *f, Node *node, FrontFile *cur, FrontFile *ff)
{
        io_hold(ff_node_file(ff));
        if (!node_io_replace(node, cur ? ff_node_file(cur) : NULL, ff_node_file(ff))) {
                atomic_fetch_sub_explicit(&ff->refs, 1, memory_order_relaxed);
                return false;
        }
        if (cur) {
                front_io_put(f, cur); /* the node's */
                front_io_put(f, cur); /* ours */
        }
        return true;
}

FrontFile *front_io_hold(Node *node)
{
        return node_file_ff(node_io_hold(node, io_hold));
}

void front_io_install(FuseFront *f, Node *node, FrontFile *cur, FrontFile *ff)
{
        if (!io_install(f, node, cur, ff) && cur)
                front_io_put(f, cur);
}

static int io_open(FuseFront *f, Node *node, const char *path, int flags, FrontFile **ffp)
{
        static const LsCred nobody = {0, 0}; /* unused: nothing is created */
        struct stat st;
        LsFile *file;
        int r;

        if (f->read_only)
                flags = (flags & ~(O_ACCMODE | LS_O_NOCOPYUP)) | O_RDONLY;
        r = f->ops->open(f->inst, path, flags | O_NOFOLLOW, 0, &nobody, &file);
        if (r < 0)
                return r;
        /* A name the node still has may hold another file by now (one that
         * raced in under it): never let this node's data go there. */
        r = f->ops->fstat(file, &st);
        if (r >= 0 && !node_is(node, &st))
                r = -ESTALE;
        if (r < 0) {
                f->ops->release(file);
                return r;
        }
        *ffp = io_new(f, node, file);
        if (!*ffp) {
                f->ops->release(file);
                return -ENOMEM;
        }
        return 0;
}

/* Copies what is left of a nameless file, read-only in a lower branch, into
 * a nameless file of the writable one, for the write that needs it: a
 * process that opened the file for writing before the last name went, as
 * overlayfs would have copied it up at that open. */
static int io_copy_nameless(FuseFront *f, FrontFile *cur, FrontFile **ffp)
{
        enum { CHUNK = 1 << 20 };
        LsFile *tmp = NULL;
        struct stat st;
        char *buf;
        off_t off;
        int r;

        if (f->read_only)
                return -EROFS;
        r = f->ops->fstat(cur->file, &st);
        if (r < 0)
                return r;
        r = f->ops->open(f->inst, "", O_TMPFILE | O_RDWR, st.st_mode & 07777,
                         &(LsCred){st.st_uid, st.st_gid}, &tmp);
        if (r < 0)
                return r;
        buf = malloc(CHUNK);
        r = buf ? 0 : -ENOMEM;
        for (off = 0; r >= 0 && off < st.st_size;) {
                ssize_t n = f->ops->pread(cur->file, buf, CHUNK, off);

                if (n <= 0) {
                        r = (int)n;
                        break;
                }
                n = f->ops->pwrite(tmp, buf, (size_t)n, off);
                if (n < 0)
                        r = (int)n;
                else
                        off += n;
        }
        free(buf);
        if (r >= 0 && f->ops->futimens)
                f->ops->futimens(tmp, (struct timespec[2]){st.st_atim, st.st_mtim});
        if (r >= 0) {
                *ffp = io_new(f, cur->node, tmp);
                r = *ffp ? 0 : -ENOMEM;
        }
        if (r < 0)
                f->ops->release(tmp);
        return r;
}

int front_io_get(FuseFront *f, fuse_ino_t ino, bool write, FrontFile **ffp)
{
        Node *node = front_node(f, ino);
        char path[PATH_MAX];
        FrontFile *cur, *ff;
        int r, tries;
        bool named;

        for (tries = 0;; tries++) {
                cur = front_io_hold(node);
                if (cur && !cur->file) {
                        /* a directory's listing: no file to go through (a
                         * SETATTR of a removed directory ends here) */
                        front_io_put(f, cur);
                        return -ENOENT;
                }
                if (cur && (!write || cur->writable)) {
                        *ffp = cur;
                        return 0;
                }
                r = front_path(f, ino, path);
                named = r >= 0;
                if (named)
                        r = io_open(f, node, path, write ? O_RDWR : O_RDWR | LS_O_NOCOPYUP, &ff);
                if (named && (r == -ESTALE || (r == -ENOENT && cur))) {
                        /* The name went without the node hearing of it (the
                         * union reported another inode number for it at
                         * the removal): the file left is the one it holds. */
                        node_drop_path(node, path);
                        named = false;
                }
                if (!named && cur)
                        r = io_copy_nameless(f, cur, &ff);
                if (r < 0) {
                        if (cur)
                                front_io_put(f, cur);
                        return r;
                }
                /* Over budget (fds): by name, a file for this request only. */
                if (named &&
                    atomic_load_explicit(&f->n_io, memory_order_relaxed) > f->cache.max_io_files) {
                        if (cur)
                                front_io_put(f, cur);
                        *ffp = ff;
                        return 0;
                }
                if (io_install(f, node, cur, ff)) {
                        *ffp = ff;
                        return 0;
                }
                /* Another thread installed one first: use that. A file opened
                 * by name is the same file, so after a few rounds it will do
                 * for this request; a nameless copy is not. */
                if (named && tries >= 3) {
                        if (cur)
                                front_io_put(f, cur);
                        *ffp = ff;
                        return 0;
                }
                front_io_put(f, ff);
                if (cur)
                        front_io_put(f, cur);
        }
}

void front_io_pin(FuseFront *f, const struct stat *st, const char *path)
{
        FrontFile *cur, *ff;
        Node *node;

        if (!S_ISREG(st->st_mode))
                return;
        node = node_table_hold(f->nodes, st);
        if (!node)
                return; /* the kernel does not have it: nobody has it open */
        /* A read-only io file may be a lower file whose copy-up (by name:
         * O_TRUNC, chmod) it never saw: the name's file is the one to keep. */
        cur = front_io_hold(node);
        if (cur && cur->writable)
                front_io_put(f, cur);
        else if (io_open(f, node, path, O_RDWR | LS_O_NOCOPYUP, &ff) < 0) {
                if (cur)
                        front_io_put(f, cur);
        } else {
                /* lost a race: the winner's will do */
                front_io_install(f, node, cur, ff);
                front_io_put(f, ff);
        }
        node_table_forget(f->nodes, node, 1);
}

void front_io_changed(FuseFront *f, fuse_ino_t ino)
{
        Node *node = front_node(f, ino);
        FrontFile *cur = front_io_hold(node);

        if (!cur)
                return;
        if (!cur->writable && node_io_replace(node, ff_node_file(cur), NULL))
                front_io_put(f, cur); /* the node's */
        front_io_put(f, cur);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        /* The kernel opens files on its own from now on (see the top). */
        reply_err(req, -ENOSYS);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        LsCred cred = req_cred(req);
        struct fuse_entry_param e;
        char path[PATH_MAX];
        FrontFile *ff, *cur;
        LsFile *file;
        struct stat st;
        unsigned seq;
        Node *node;
        int r;

        r = front_child_path(f, parent, name, path, &seq);
        if (r >= 0)
                /* Read-write whatever the caller asked (the file becomes the
                 * node's io file); O_TRUNC for a name a racing creator made
                 * first. The kernel's mode carries S_IFREG; open(2) takes
                 * permission bits only (openat2 refuses more). */
                r = f->ops->open(f->inst, path,
                                 (fi->flags & (O_EXCL | O_TRUNC)) | O_RDWR | O_CREAT | O_NOFOLLOW,
                                 mode & 07777, &cred, &file);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        r = f->ops->fstat(file, &st);
        if (r >= 0)
                r = front_enter(f, front_node(f, parent), name, path, seq, NULL, &st, &e);
        if (r < 0) {
                f->ops->release(file);
                reply_err(req, r);
                return;
        }
        node_listing_changed(front_node(f, parent));
        node = front_node(f, e.ino);
        ff = io_new(f, node, file);
        if (!ff) {
                f->ops->release(file);
                node_table_forget(f->nodes, node, 1);
                reply_err(req, -ENOMEM);
                return;
        }
        /* A node left from an older file of this number may hold one.
         * Over budget (fds), the next request opens the file again. */
        cur = front_io_hold(node);
        if (atomic_load_explicit(&f->n_io, memory_order_relaxed) <= f->cache.max_io_files)
                front_io_install(f, node, cur, ff);
        else if (cur)
                front_io_put(f, cur);
        front_io_put(f, ff);
        fi->fh = 0;
        fi->keep_cache = f->cache.keep_cache;
        fi->noflush = f->cache.noflush;
        if (fuse_reply_create(req, &e, fi) < 0)
                node_table_forget(f->nodes, node, 1);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        FrontFile *ff;
        ssize_t n;
        char *buf;
        int fd, r;

        r = front_io_get(f, ino, false, &ff);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        fd = f->ops->file_fd ? f->ops->file_fd(ff->file) : -EOPNOTSUPP;
        if (fd >= 0) {
                /* libfuse splices from fd into /dev/fuse when the kernel
                 * allows (SPLICE_WRITE), else reads it into its own buffer. */
                struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

                bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
                bv.buf[0].fd = fd;
                bv.buf[0].pos = off;
                fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
                front_io_put(f, ff);
                return;
        }
        buf = malloc(size ? size : 1);
        if (!buf) {
                reply_err(req, -ENOMEM);
        } else {
                n = f->ops->pread(ff->file, buf, size, off);
                if (n < 0)
                        reply_err(req, (int)n);
                else
                        fuse_reply_buf(req, buf, (size_t)n);
                free(buf);
        }
        front_io_put(f, ff);
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

/* Writes size bytes from mem at off; rwf as pwritev2(2). */
static ssize_t write_mem(FuseFront *f, LsFile *file, const void *mem, size_t size, off_t off,
                         int rwf)
{
        int fd = f->ops->file_fd ? f->ops->file_fd(file) : -EOPNOTSUPP;
        struct iovec iov = {.iov_base = (void *)mem, .iov_len = size};
        ssize_t n;

        if (!rwf)
                return f->ops->pwrite(file, mem, size, off);
        if (fd >= 0) {
                n = pwritev2(fd, &iov, 1, off, rwf);
                return n < 0 ? -errno : n;
        }
        /* No kernel fd: append at the end the backend reports, sync after. */
        if (rwf & RWF_APPEND) {
                struct stat st;
                int r = f->ops->fstat(file, &st);

                if (r < 0)
                        return r;
                off = st.st_size;
        }
        n = f->ops->pwrite(file, mem, size, off);
        if (n > 0 && (rwf & (RWF_SYNC | RWF_DSYNC))) {
                int r = f->ops->fsync(file, !(rwf & RWF_SYNC));

                if (r < 0)
                        return r;
        }
        return n;
}

/* Writes one request's data at off. */
static ssize_t write_data(FuseFront *f, LsFile *file, struct fuse_bufvec *in, off_t off, int rwf)
{
        const struct fuse_buf *b = &in->buf[in->idx];
        size_t size = fuse_buf_size(in);
        struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
        char *copy;
        ssize_t n;

        if (in->count - in->idx == 1 && !(b->flags & FUSE_BUF_IS_FD))
                /* The usual case (no splice): one buffer in memory. */
                return write_mem(f, file, (const char *)b->mem + in->off, size, off, rwf);
        copy = malloc(size ? size : 1);
        if (!copy)
                return -ENOMEM;
        dst.buf[0].mem = copy;
        n = fuse_buf_copy(&dst, in, 0);
        if (n >= 0)
                n = write_mem(f, file, copy, (size_t)n, off, rwf);
        free(copy);
        return n;
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
                         struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        struct stat before;
        bool keep_mtime;
        FrontFile *ff;
        ssize_t n;
        int r;

        r = front_io_get(f, ino, true, &ff);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        /* With writeback caching the kernel owns a written file's mtime: it
         * dates the write(2) itself and sends the time in SETATTR when it
         * changes (never when the write fell in the same clock tick), while
         * the page itself comes back here later, on another thread, maybe
         * after that SETATTR. So a write-back (fi->writepage) must not move
         * the backend's mtime: put back what it was. */
        keep_mtime = fi->writepage && f->ops->futimens && f->ops->fstat(ff->file, &before) >= 0;
        n = write_data(f, ff->file, in, off, write_rwf(f, fi));
        if (n > 0 && keep_mtime) {
                struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, before.st_mtim};

                f->ops->futimens(ff->file, ts);
        }
        front_io_put(f, ff);
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
        FrontFile *ff;
        int r;

        r = front_io_get(f, ino, false, &ff);
        if (r >= 0) {
                r = f->ops->fsync(ff->file, datasync != 0);
                front_io_put(f, ff);
        }
        reply_err(req, r);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        FrontFile *ff;
        int r;

        r = front_io_get(f, ino, true, &ff);
        if (r >= 0) {
                r = f->ops->fallocate(ff->file, mode, off, len);
                front_io_put(f, ff);
        }
        reply_err(req, r);
}

/* SEEK_DATA/SEEK_HOLE (the kernel does the others itself). */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        FrontFile *ff;
        struct stat st;
        off_t r;
        int e, fd;

        if (whence != SEEK_DATA && whence != SEEK_HOLE) {
                reply_err(req, -EINVAL);
                return;
        }
        e = front_io_get(f, ino, false, &ff);
        if (e < 0) {
                reply_err(req, e);
                return;
        }
        fd = f->ops->file_fd ? f->ops->file_fd(ff->file) : -EOPNOTSUPP;
        if (fd >= 0) {
                /* The position of an fd all requests share: harmless, as all
                 * I/O on it is positioned (pread/pwrite/splice with offsets). */
                r = lseek(fd, off, whence);
                if (r < 0)
                        reply_err(req, -errno);
                else
                        fuse_reply_lseek(req, r);
        } else if ((e = f->ops->fstat(ff->file, &st)) < 0) {
                reply_err(req, e);
        } else if (off < 0 || off >= st.st_size) {
                /* Without an fd the whole file is data, as for a filesystem
                 * with no hole support. */
                reply_err(req, -ENXIO);
        } else {
                fuse_reply_lseek(req, whence == SEEK_DATA ? off : st.st_size);
        }
        front_io_put(f, ff);
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
