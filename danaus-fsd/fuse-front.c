/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE Front: the session of one mount, INIT, and the namespace operations
 * (lookup, attributes, entries, rename, xattrs). Files are in
 * fuse-file.c, directories in fuse-dir.c.
 *
 * Node ids are Node pointers (fh is always 0): only the kernel hands them
 * back, and it is trusted (the shared-memory path uses checked handles
 * instead).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuse-front-private.h"
#include "util/log.h"

int front_path(FuseFront *f, fuse_ino_t ino, char path[PATH_MAX])
{
        return node_path(front_node(f, ino), path);
}

int front_child_path(FuseFront *f, fuse_ino_t parent, const char *name, char path[PATH_MAX],
                     unsigned *seqp)
{
        /* The kernel never sends "." or ".." (no export support), but a path
         * holding them would not be normalised: refuse, don't trust. */
        if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
                return -EINVAL;
        /* FUSE passes names up to 1024 bytes; a local filesystem refuses
         * more than NAME_MAX with this error, not "invalid". */
        if (strnlen(name, NAME_MAX + 1) > NAME_MAX)
                return -ENAMETOOLONG;
        return node_child_path(f->nodes, front_node(f, parent), name, path, seqp);
}

int front_enter(FuseFront *f, Node *parent, const char *name, char path[PATH_MAX], unsigned seq,
                const unsigned *names_seq, const struct stat *st, struct fuse_entry_param *e)
{
        Node *n = NULL;
        int r, tries;

        for (tries = 0;; tries++) {
                r = node_table_lookup_in(f->nodes, st, path, tries < 8 ? seq : NODE_SEQ_ANY,
                                         names_seq ? parent : NULL, name,
                                         names_seq ? *names_seq : 0, &n);
                if (r != -EAGAIN)
                        break;
                r = node_child_path(f->nodes, parent, name, path, &seq);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        *e = (struct fuse_entry_param){
            .ino = node_table_id(f->nodes, n),
            .attr = *st,
            .attr_timeout = f->cache.attr_timeout,
            .entry_timeout = f->cache.entry_timeout,
        };
        return 0;
}

void front_reply_entry(fuse_req_t req, FuseFront *f, const struct fuse_entry_param *e)
{
        /* The kernel counts a lookup only for a reply it received. */
        if (fuse_reply_entry(req, e) < 0)
                node_table_forget(f->nodes, front_node(f, e->ino), 1);
}

/* The reply to an operation that created path (r: its result): the error,
 * or the new entry's attributes and node. */
static void reply_new_entry(fuse_req_t req, FuseFront *f, fuse_ino_t parent, const char *name,
                            char path[PATH_MAX], unsigned seq, int r)
{
        struct fuse_entry_param e;
        struct stat st;

        if (r >= 0) {
                node_listing_changed(front_node(f, parent));
                r = f->ops->getattr(f->inst, path, &st);
        }
        if (r >= 0)
                r = front_enter(f, front_node(f, parent), name, path, seq, NULL, &st, &e);
        if (r < 0)
                reply_err(req, r);
        else
                front_reply_entry(req, f, &e);
}

#define FRONT_MAX_IO (1U << 20)

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
        FuseFront *f = userdata;

        /* Write data arrives in memory: splicing every request through a
         * pipe costs more than it saves at our request sizes. */
        conn->want &= ~FUSE_CAP_SPLICE_READ;
        /* Let the kernel clear set-user-ID bits on write/chown/truncate: the
         * backend writes as root, which would keep them. */
        conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
        /* Files are never opened here (fuse-file.c): O_TRUNC must come as
         * its own SETATTR, not as a flag of an OPEN that is not sent. */
        conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
        if (f->cache.splice_read)
                conn->want |= conn->capable & (FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
        if (f->cache.cache_symlinks)
                conn->want |= conn->capable & FUSE_CAP_CACHE_SYMLINKS;
        if (f->cache.writeback_cache && !f->read_only)
                conn->want |= conn->capable & FUSE_CAP_WRITEBACK_CACHE;
        f->writeback = conn->want & FUSE_CAP_WRITEBACK_CACHE;
        conn->want |= conn->capable & (FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_ASYNC_READ);
        conn->time_gran = 1;
        /* Fewer, larger requests for sequential I/O and write-back: libfuse's
         * buffers take 1 MiB (256 pages) and it asks the kernel for the
         * matching max_pages; the kernel caps read-ahead by its own limit. */
        conn->max_write = FRONT_MAX_IO;
        conn->max_readahead = FRONT_MAX_IO;
        log_debug("%s: FUSE protocol %u.%u, capable 0x%x, want 0x%x, max_write %u", f->mountpoint,
                  conn->proto_major, conn->proto_minor, conn->capable, conn->want, conn->max_write);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        FuseFront *f = req_front(req);
        Node *dir = front_node(f, parent);
        struct fuse_entry_param e;
        char path[PATH_MAX];
        unsigned seq, names;
        struct stat st;
        int r, tries = 0;

again:
        names = node_names_seq(dir, name);
        r = front_child_path(f, parent, name, path, &seq);
        if (r >= 0)
                r = f->ops->getattr(f->inst, path, &st);
        if (r == -ENOENT && f->cache.negative_timeout > 0) {
                /* ino 0: "no such name", cached for entry_timeout */
                e = (struct fuse_entry_param){.entry_timeout = f->cache.negative_timeout};
                fuse_reply_entry(req, &e);
                return;
        }
        if (r >= 0)
                /* after a few rounds of names leaving: as found */
                r = front_enter(f, dir, name, path, seq, tries < 16 ? &names : NULL, &st, &e);
        if (r == -ESTALE && tries++ < 16)
                goto again;
        if (r < 0)
                reply_err(req, r);
        else
                front_reply_entry(req, f, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
        FuseFront *f = req_front(req);

        node_table_forget(f->nodes, front_node(f, ino), nlookup);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
        FuseFront *f = req_front(req);
        size_t i;

        for (i = 0; i < count; i++)
                node_table_forget(f->nodes, front_node(f, forgets[i].ino), forgets[i].nlookup);
        fuse_reply_none(req);
}

static int fstat_fn(NodeFile *nf, void *st)
{
        LsFile *file = node_file_ff(nf)->file;

        return file ? file->inst->ops->fstat(file, st) : -ENOENT;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        char path[PATH_MAX];
        struct stat st;
        int r;

        /* fi: a file handle, which files never have here (fh 0) and
         * directory handles hold no file of: by name, or for a file open but
         * unlinked, through its node's io file. */
        r = front_path(f, ino, path);
        if (r >= 0)
                r = f->ops->getattr(f->inst, path, &st);
        if (r == -ENOENT)
                r = node_io_call(front_node(f, ino), fstat_fn, &st);
        if (r == -ENOENT && node_gone_attr(front_node(f, ino), &st))
                r = 0; /* a removed directory, still open */
        if (r < 0)
                reply_err(req, r);
        else
                fuse_reply_attr(req, &st, f->cache.attr_timeout);
}

static struct timespec set_time(int to_set, int set, int now, const struct timespec *ts)
{
        if (to_set & now)
                return (struct timespec){.tv_nsec = UTIME_NOW};
        if (to_set & set)
                return *ts;
        return (struct timespec){.tv_nsec = UTIME_OMIT};
}

/* One SETATTR: what to change. */
typedef struct SetattrReq {
        const struct stat *attr;
        int to_set;
} SetattrReq;

/* Applies req by name (r_path >= 0) or, for a node without one, through
 * file (handle ops; -EOPNOTSUPP where the instance has none). By name, a
 * union copies a lower file up; through the file, a file unlinked while open
 * keeps working, as on a local filesystem. */
static int setattr_apply(FuseFront *f, LsFile *file, const char *path, int r_path,
                         const SetattrReq *req)
{
        const struct stat *attr = req->attr;
        int to_set = req->to_set, r = 0;

#define SETATTR_CALL(fileop, fileargs, pathop, pathargs)                                           \
        (r_path >= 0 ? f->ops->pathop pathargs                                                     \
                     : (f->ops->fileop ? f->ops->fileop fileargs : -EOPNOTSUPP))
        if (to_set & FUSE_SET_ATTR_MODE)
                r = SETATTR_CALL(fchmod, (file, attr->st_mode & 07777), chmod,
                                 (f->inst, path, attr->st_mode & 07777));
        if (r >= 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
                uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
                gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

                r = SETATTR_CALL(fchown, (file, uid, gid), chown, (f->inst, path, uid, gid));
        }
        if (r >= 0 && (to_set & FUSE_SET_ATTR_SIZE))
                r = SETATTR_CALL(ftruncate, (file, attr->st_size), truncate,
                                 (f->inst, path, attr->st_size));
        if (r >= 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                                 FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))) {
                struct timespec ts[2] = {
                    set_time(to_set, FUSE_SET_ATTR_ATIME, FUSE_SET_ATTR_ATIME_NOW, &attr->st_atim),
                    set_time(to_set, FUSE_SET_ATTR_MTIME, FUSE_SET_ATTR_MTIME_NOW, &attr->st_mtim),
                };

                r = SETATTR_CALL(futimens, (file, ts), utimens, (f->inst, path, ts));
        }
#undef SETATTR_CALL
        return r;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        SetattrReq sreq = {.attr = attr, .to_set = to_set};
        char path[PATH_MAX];
        struct stat st;
        int r;

        /* By name while the node has one; a node whose last name is gone
         * (unlinked while open: ftruncate, fchmod, futimens, and the times
         * writeback caching sends) goes through its io file. */
        r = front_path(f, ino, path);
        if (r >= 0) {
                r = setattr_apply(f, NULL, path, r, &sreq);
                front_io_changed(f, ino);
                if (r >= 0)
                        r = f->ops->getattr(f->inst, path, &st);
        }
        if (r == -ENOENT) {
                FrontFile *ff;

                /* read-write: ftruncate(2) wants it, and a union's lower
                 * file must be copied for any change */
                r = front_io_get(f, ino, true, &ff);
                if (r >= 0) {
                        r = setattr_apply(f, ff->file, NULL, -ENOENT, &sreq);
                        if (r >= 0)
                                r = f->ops->fstat(ff->file, &st);
                        front_io_put(f, ff);
                }
        }
        if (r < 0)
                reply_err(req, r);
        else
                fuse_reply_attr(req, &st, f->cache.attr_timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
        FuseFront *f = req_front(req);
        char path[PATH_MAX], target[PATH_MAX + 1];
        ssize_t n;

        n = front_path(f, ino, path);
        if (n >= 0)
                n = f->ops->readlink(f->inst, path, target, PATH_MAX);
        if (n < 0) {
                reply_err(req, (int)n);
                return;
        }
        target[n] = '\0';
        fuse_reply_readlink(req, target);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
        FuseFront *f = req_front(req);
        LsCred cred = req_cred(req);
        char path[PATH_MAX];
        unsigned seq = 0; /* read only once the path is built */
        int r;

        r = front_child_path(f, parent, name, path, &seq);
        if (r >= 0)
                r = f->ops->mknod(f->inst, path, mode, rdev, &cred);
        reply_new_entry(req, f, parent, name, path, seq, r);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        FuseFront *f = req_front(req);
        LsCred cred = req_cred(req);
        char path[PATH_MAX];
        unsigned seq = 0; /* read only once the path is built */
        int r;

        r = front_child_path(f, parent, name, path, &seq);
        if (r >= 0)
                r = f->ops->mkdir(f->inst, path, mode, &cred);
        reply_new_entry(req, f, parent, name, path, seq, r);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
        FuseFront *f = req_front(req);
        LsCred cred = req_cred(req);
        char path[PATH_MAX];
        unsigned seq = 0; /* read only once the path is built */
        int r;

        r = front_child_path(f, parent, name, path, &seq);
        if (r >= 0)
                r = f->ops->symlink(f->inst, target, path, &cred);
        reply_new_entry(req, f, parent, name, path, seq, r);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
        FuseFront *f = req_front(req);
        char oldpath[PATH_MAX], path[PATH_MAX];
        unsigned seq = 0; /* read only once the path is built */
        int r;

        r = front_path(f, ino, oldpath);
        if (r >= 0)
                r = front_child_path(f, newparent, newname, path, &seq);
        if (r >= 0)
                r = f->ops->link(f->inst, oldpath, path);
        reply_new_entry(req, f, newparent, newname, path, seq, r);
}

/* After the last name of directory st went: the node keeps its attributes
 * for whoever has it open (fstat). Files keep their data instead, through
 * front_io_pin() before the name goes. */
static void front_keep_dir_attr(FuseFront *f, const struct stat *st)
{
        Node *n;

        if (S_ISDIR(st->st_mode) && (n = node_table_hold(f->nodes, st))) {
                node_set_gone_attr(n, st);
                node_table_forget(f->nodes, n, 1);
        }
}

/* unlink and rmdir: the node forgets the name the entry had. */
static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
        FuseFront *f = req_front(req);
        char path[PATH_MAX];
        struct stat st;
        unsigned seq;
        bool known;
        int r;

        r = front_child_path(f, parent, name, path, &seq);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        /* The kernel does not say which node the name belonged to. */
        known = f->ops->getattr(f->inst, path, &st) >= 0;
        if (known && !dir)
                front_io_pin(f, &st, path);
        r = dir ? f->ops->rmdir(f->inst, path) : f->ops->unlink(f->inst, path);
        if (r >= 0) {
                node_names_changed(front_node(f, parent), name);
                node_listing_changed(front_node(f, parent));
        }
        if (r >= 0 && known && dir)
                front_keep_dir_attr(f, &st);
        if (r >= 0 && known)
                node_table_unlinked(f->nodes, &st, path);
        reply_err(req, r);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        remove_entry(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        remove_entry(req, parent, name, true);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
        FuseFront *f = req_front(req);
        char oldpath[PATH_MAX], newpath[PATH_MAX];
        struct stat src, dst;
        NodeRename rn = {.oldpath = oldpath, .newpath = newpath, .src = &src, .flags = flags};
        unsigned seq;
        int r;

        r = front_child_path(f, parent, name, oldpath, &seq);
        if (r >= 0)
                r = front_child_path(f, newparent, newname, newpath, &seq);
        if (r >= 0)
                r = f->ops->getattr(f->inst, oldpath, &src);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        /* What the new name held, so its node can drop that name. */
        if (f->ops->getattr(f->inst, newpath, &dst) >= 0) {
                rn.dst = &dst;
                if (!(flags & RENAME_EXCHANGE))
                        front_io_pin(f, &dst, newpath);
        }
        node_table_rename_begin(f->nodes, &rn);
        r = f->ops->rename(f->inst, oldpath, newpath, flags);
        if (r >= 0) {
                node_names_changed(front_node(f, parent), name);
                node_names_changed(front_node(f, newparent), newname);
                node_listing_changed(front_node(f, parent));
                node_listing_changed(front_node(f, newparent));
        }
        if (r >= 0 && rn.dst && !(flags & RENAME_EXCHANGE) &&
            (dst.st_ino != src.st_ino || dst.st_dev != src.st_dev))
                front_keep_dir_attr(f, &dst);
        node_table_rename_end(f->nodes, &rn, r >= 0);
        reply_err(req, r);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
        FuseFront *f = req_front(req);
        char path[PATH_MAX];
        struct statvfs st;
        int r;

        /* An unlinked file still lives on the filesystem of the root. */
        if (front_path(f, ino, path) < 0)
                path[0] = '\0';
        r = f->ops->statfs(f->inst, path, &st);
        if (r < 0)
                reply_err(req, r);
        else
                fuse_reply_statfs(req, &st);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
        FuseFront *f = req_front(req);
        char path[PATH_MAX];
        int r;

        r = front_path(f, ino, path);
        if (r >= 0)
                r = f->ops->setxattr(f->inst, path, name, value, size, flags);
        reply_err(req, r);
}

/* getxattr (name set) and listxattr: size 0 asks for the size. */
static void reply_xattr_value(fuse_req_t req, FuseFront *f, fuse_ino_t ino, const char *name,
                              size_t size)
{
        char path[PATH_MAX];
        char *buf = NULL;
        ssize_t n;

        n = front_path(f, ino, path);
        if (n >= 0 && size > 0 && !(buf = malloc(size)))
                n = -ENOMEM;
        if (n >= 0)
                n = name ? f->ops->getxattr(f->inst, path, name, buf, size)
                         : f->ops->listxattr(f->inst, path, buf, size);
        if (n < 0)
                reply_err(req, (int)n);
        else if (size == 0)
                fuse_reply_xattr(req, (size_t)n);
        else
                fuse_reply_buf(req, buf, (size_t)n);
        free(buf);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
        reply_xattr_value(req, req_front(req), ino, name, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
        reply_xattr_value(req, req_front(req), ino, NULL, size);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
        FuseFront *f = req_front(req);
        char path[PATH_MAX];
        int r;

        r = front_path(f, ino, path);
        if (r >= 0)
                r = f->ops->removexattr(f->inst, path, name);
        reply_err(req, r);
}

static void front_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
        char line[900];
        size_t n;

        if (level >= FUSE_LOG_DEBUG && !log_get_debug())
                return;
        vsnprintf(line, sizeof(line), fmt, ap);
        n = strlen(line);
        while (n > 0 && line[n - 1] == '\n')
                line[--n] = '\0';
        /* libfuse levels are syslog's */
        log_emit(level <= FUSE_LOG_ERR ? LOG_ERR : (int)level, "libfuse: %s", line);
}

void front_setup_logging(void)
{
        fuse_set_log_func(front_log);
}

int front_new(const FrontParams *p, FuseFront **frontp)
{
        struct fuse_lowlevel_ops ops = {
            .init = op_init,
            .lookup = op_lookup,
            .forget = op_forget,
            .forget_multi = op_forget_multi,
            .getattr = op_getattr,
            .setattr = op_setattr,
            .readlink = op_readlink,
            .mknod = op_mknod,
            .mkdir = op_mkdir,
            .unlink = op_unlink,
            .rmdir = op_rmdir,
            .symlink = op_symlink,
            .rename = op_rename,
            .link = op_link,
            .statfs = op_statfs,
            .setxattr = op_setxattr,
            .getxattr = op_getxattr,
            .listxattr = op_listxattr,
            .removexattr = op_removexattr,
        };
        struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
        char fsname[128];
        char *opts = NULL;
        FuseFront *f;
        int r;

        front_file_ops(&ops);
        front_dir_ops(&ops);
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->inst = p->inst;
        f->ops = p->inst->ops;
        f->cache = p->cache;
        f->read_only = p->read_only;
        f->mountpoint = strdup(p->mountpoint);
        r = f->mountpoint ? node_table_new(&f->nodes) : -ENOMEM;
        if (r < 0)
                goto fail;
        node_table_set_io_drop(f->nodes, front_io_drop, f);

        /* Shown in /proc/mounts as "danaus:<pool> <mp> fuse.danaus"; the
         * kernel checks modes, owners and groups (default_permissions) for
         * every user of the pool (allow_other). */
        snprintf(fsname, sizeof(fsname), "fsname=danaus:%s", p->pool);
        if (fuse_opt_add_opt_escaped(&opts, fsname) < 0 ||
            fuse_opt_add_opt(&opts, "subtype=danaus,allow_other,default_permissions") < 0 ||
            (p->read_only && fuse_opt_add_opt(&opts, "ro") < 0) ||
            fuse_opt_add_arg(&args, "danaus-fsd") < 0 || fuse_opt_add_arg(&args, "-o") < 0 ||
            fuse_opt_add_arg(&args, opts) < 0 ||
            (p->debug >= 2 && fuse_opt_add_arg(&args, "-d") < 0)) {
                r = -ENOMEM;
                goto fail;
        }
        f->se = fuse_session_new(&args, &ops, sizeof(ops), f);
        if (!f->se) {
                r = -EINVAL; /* libfuse logged why */
                goto fail;
        }
        if (fuse_session_mount(f->se, f->mountpoint) != 0) {
                r = -EIO; /* libfuse logged why */
                goto fail;
        }
        f->mounted = true;
        fuse_opt_free_args(&args);
        free(opts);
        *frontp = f;
        return 0;
fail:
        fuse_opt_free_args(&args);
        free(opts);
        front_free(f);
        return r;
}

int front_run(FuseFront *f)
{
        struct fuse_loop_config *lc;
        int r;

        lc = fuse_loop_cfg_create();
        if (!lc)
                return -ENOMEM;
        /* One /dev/fuse fd per worker: requests spread over the threads
         * instead of waking all of them on one fd. */
        fuse_loop_cfg_set_clone_fd(lc, 1);
        fuse_loop_cfg_set_max_threads(lc, f->cache.max_threads);
        fuse_loop_cfg_set_idle_threads(lc, f->cache.max_idle_threads);
        r = fuse_session_loop_mt(f->se, lc);
        fuse_loop_cfg_destroy(lc);
        /* The mount going away (ENODEV) ends the loop with 0. */
        return r > 0 ? -r : r;
}

/* What a node's io slot still holds when the session ends (the kernel never
 * forgot the node); the workers are gone, nothing else holds it now. */
static void drop_orphan(NodeFile *nf, void *userdata)
{
        FrontFile *ff = node_file_ff(nf);
        FuseFront *f = userdata;

        if (ff->file) {
                f->ops->release(ff->file);
                free(ff);
        } else {
                front_dir_drop(ff);
        }
}

FuseFront *front_free(FuseFront *f)
{
        if (!f)
                return NULL;
        if (f->se) {
                /* A no-op when the mount is gone already (the fd reports
                 * POLLERR); unmounts when the loop ended for another reason. */
                if (f->mounted)
                        fuse_session_unmount(f->se);
                fuse_session_destroy(f->se);
        }
        /* The serving threads are gone: release what the kernel kept open
         * when the connection was aborted, before the instance goes. */
        if (f->nodes)
                node_table_drain_io(f->nodes, drop_orphan, f);
        node_table_free(f->nodes);
        free(f->mountpoint);
        free(f);
        return NULL;
}

size_t front_n_nodes(FuseFront *f)
{
        return node_table_count(f->nodes);
}
