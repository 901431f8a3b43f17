/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE Front: the session of one mount, INIT, and the namespace operations
 * (lookup, attributes, entries, rename, xattrs), each one call into the
 * core on node handles (no paths: a tree deeper than PATH_MAX works, and a
 * directory renamed meanwhile is still the one the kernel named). Files are
 * in fuse-file.c, directories in fuse-dir.c, the kernel invalidations in
 * fuse-notify.c.
 *
 * Permissions are the kernel's (default_permissions, and with
 * FUSE_CAP_POSIX_ACL its ACL checks); the core applies the rules for new
 * entries (owner, set-group-ID directory, umask or default ACL: the kernel
 * leaves the umask to us, FUSE_CAP_DONT_MASK) and keeps mode and access ACL
 * in step.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuse-front-private.h"
#include "util/log.h"

CoreCred front_cred(fuse_req_t req, bool with_groups, gid_t groups[FRONT_MAX_GROUPS])
{
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        CoreCred c = {
            .uid = ctx->uid,
            .gid = ctx->gid,
            .umask = ctx->umask & 0777,
            .privileged = ctx->uid == 0,
        };

        if (with_groups) {
                int n = fuse_req_getgroups(req, FRONT_MAX_GROUPS, groups);

                /* n > FRONT_MAX_GROUPS: the first ones only; < 0: none
                 * known (no /proc), the fsgid still counts */
                if (n > 0) {
                        c.groups = groups;
                        c.n_groups = n < FRONT_MAX_GROUPS ? (size_t)n : FRONT_MAX_GROUPS;
                }
        }
        return c;
}

void front_entry(FuseFront *f, CoreNode *node, const struct stat *st, struct fuse_entry_param *e)
{
        *e = (struct fuse_entry_param){
            .ino = node_ino(f, node),
            /* the kernel pairs it with the id for exports only; a pointer
             * reused by a later node gets another */
            .generation = core_node_id(node),
            .attr = *st,
            .attr_timeout = f->cache.attr_timeout,
            .entry_timeout = f->cache.entry_timeout,
        };
}

void front_reply_entry(fuse_req_t req, FuseFront *f, const struct fuse_entry_param *e)
{
        /* The kernel counts a lookup only for a reply it received. */
        if (fuse_reply_entry(req, e) < 0)
                core_forget(f->cf, front_node(f, e->ino), 1);
}

/* The reply to an operation that made node (r: its result, one reference of
 * the front counted on node when r >= 0). */
static void reply_new_entry(fuse_req_t req, FuseFront *f, int r, CoreNode *node,
                            const struct stat *st)
{
        struct fuse_entry_param e;

        if (r < 0) {
                reply_err(req, r);
                return;
        }
        front_entry(f, node, st, &e);
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
        /* The kernel checks ACLs (it reads system.posix_acl_access once per
         * inode and caches it); new entries get the umask or the parent's
         * default ACL from the core, so the kernel must not mask the mode
         * itself (DONT_MASK: the request carries the umask). */
        if (f->cache.posix_acl)
                conn->want |= conn->capable & FUSE_CAP_POSIX_ACL;
        conn->want |= conn->capable & FUSE_CAP_DONT_MASK;
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
        struct fuse_entry_param e;
        CoreNode *node;
        struct stat st;
        int r;

        r = core_lookup(f->cf, NULL, front_node(f, parent), name, &node, &st);
        if (r == -ENOENT && f->cache.negative_timeout > 0) {
                /* ino 0: "no such name", cached for entry_timeout; a name
                 * made through another front invalidates it */
                e = (struct fuse_entry_param){.entry_timeout = f->cache.negative_timeout};
                fuse_reply_entry(req, &e);
                return;
        }
        reply_new_entry(req, f, r, node, &st);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
        FuseFront *f = req_front(req);

        /* The root's reference is the mount's own, not a lookup's. */
        if (ino != FUSE_ROOT_ID)
                core_forget(f->cf, front_node(f, ino), nlookup);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
        FuseFront *f = req_front(req);
        size_t i;

        for (i = 0; i < count; i++)
                if (forgets[i].ino != FUSE_ROOT_ID)
                        core_forget(f->cf, front_node(f, forgets[i].ino), forgets[i].nlookup);
        fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        struct stat st;
        int r;

        /* Through the handle, also for a file or directory whose last name
         * is gone (fstat of an open one). */
        r = core_getattr(f->cf, front_node(f, ino), &st);
        if (r < 0)
                reply_err(req, r);
        else
                fuse_reply_attr(req, &st, f->cache.attr_timeout);
}

/* Whether atime a needs an update at the next read, as relatime decides
 * (not newer than mtime or ctime, or a day old). */
static bool atime_stale(const struct stat *st)
{
        struct timespec now;

        clock_gettime(CLOCK_REALTIME, &now);
        if (st->st_atim.tv_sec < st->st_mtim.tv_sec || (st->st_atim.tv_sec == st->st_mtim.tv_sec &&
                                                        st->st_atim.tv_nsec <= st->st_mtim.tv_nsec))
                return true;
        if (st->st_atim.tv_sec < st->st_ctim.tv_sec || (st->st_atim.tv_sec == st->st_ctim.tv_sec &&
                                                        st->st_atim.tv_nsec <= st->st_ctim.tv_nsec))
                return true;
        return now.tv_sec - st->st_atim.tv_sec >= 24 * 60 * 60;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        CoreNode *node = front_node(f, ino);
        CoreCred cred = front_cred(req, false, NULL);
        LsSetattr sa = {0};
        unsigned flags = 0;
        struct stat st;
        int r;

        if (to_set & FUSE_SET_ATTR_MODE) {
                sa.valid |= LS_SET_MODE;
                sa.mode = attr->st_mode & 07777;
        }
        if (to_set & FUSE_SET_ATTR_UID) {
                sa.valid |= LS_SET_UID;
                sa.uid = attr->st_uid;
        }
        if (to_set & FUSE_SET_ATTR_GID) {
                sa.valid |= LS_SET_GID;
                sa.gid = attr->st_gid;
        }
        if (to_set & FUSE_SET_ATTR_SIZE) {
                sa.valid |= LS_SET_SIZE;
                sa.size = attr->st_size;
        }
        if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
                sa.valid |= LS_SET_ATIME_NOW;
        } else if (to_set & FUSE_SET_ATTR_ATIME) {
                sa.valid |= LS_SET_ATIME;
                sa.atime = attr->st_atim;
        }
        if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
                sa.valid |= LS_SET_MTIME_NOW;
        } else if (to_set & FUSE_SET_ATTR_MTIME) {
                sa.valid |= LS_SET_MTIME;
                sa.mtime = attr->st_mtim;
        }
        if (to_set & FUSE_SET_ATTR_CTIME) {
                sa.valid |= LS_SET_CTIME;
                sa.ctime = attr->st_ctim;
        }
        /* Under writeback caching the kernel owns mtime: the one it sets is
         * what later write-backs keep on the backend (core_write). */
        if (f->writeback && (sa.valid & (LS_SET_MTIME | LS_SET_MTIME_NOW)))
                flags |= CORE_SETATTR_KERNEL_MTIME;
        r = core_setattr(f->cf, &cred, node, &sa, flags, &st);
        if (r < 0) {
                reply_err(req, r);
                return;
        }
        fuse_reply_attr(req, &st, f->cache.attr_timeout);
        /* An atime set back (touch -a, tar and cp -p keeping times) must be
         * moved by the next read, as relatime does; reads the page cache
         * serves never reach us, so the cached pages go (after the reply:
         * the invalidation writes dirty pages back first). */
        if ((sa.valid & (LS_SET_ATIME | LS_SET_ATIME_NOW)) && S_ISREG(st.st_mode) &&
            atime_stale(&st))
                notifier_inval_inode(&f->notifier, ino, 0, 0);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
        FuseFront *f = req_front(req);
        char target[PATH_MAX + 1];
        ssize_t n;

        n = core_readlink(f->cf, front_node(f, ino), target, PATH_MAX);
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
        gid_t groups[FRONT_MAX_GROUPS];
        /* groups: whether a set-group-ID file may keep the bit */
        CoreCred cred = front_cred(req, (mode & S_ISGID) != 0, groups);
        CoreNode *node = NULL;
        struct stat st;
        int r;

        r = core_mknod(f->cf, &cred, front_node(f, parent), name, mode, rdev, &node, &st);
        reply_new_entry(req, f, r, node, &st);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
        FuseFront *f = req_front(req);
        CoreCred cred = front_cred(req, false, NULL);
        CoreNode *node = NULL;
        struct stat st;
        int r;

        r = core_mkdir(f->cf, &cred, front_node(f, parent), name, mode, &node, &st);
        reply_new_entry(req, f, r, node, &st);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
        FuseFront *f = req_front(req);
        CoreCred cred = front_cred(req, false, NULL);
        CoreNode *node = NULL;
        struct stat st;
        int r;

        r = core_symlink(f->cf, &cred, front_node(f, parent), name, target, &node, &st);
        reply_new_entry(req, f, r, node, &st);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
        FuseFront *f = req_front(req);
        CoreCred cred = front_cred(req, false, NULL);
        CoreNode *node = front_node(f, ino);
        struct stat st;
        int r;

        r = core_link(f->cf, &cred, node, front_node(f, newparent), newname, &st);
        reply_new_entry(req, f, r, node, &st);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        FuseFront *f = req_front(req);
        CoreCred cred = front_cred(req, false, NULL);

        reply_err(req, core_unlink(f->cf, &cred, front_node(f, parent), name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
        FuseFront *f = req_front(req);
        CoreCred cred = front_cred(req, false, NULL);

        reply_err(req, core_rmdir(f->cf, &cred, front_node(f, parent), name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
        FuseFront *f = req_front(req);
        CoreCred cred = front_cred(req, false, NULL);

        reply_err(req, core_rename(f->cf, &cred, front_node(f, parent), name,
                                   front_node(f, newparent), newname, flags));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
        FuseFront *f = req_front(req);
        struct statvfs st;
        int r;

        r = core_statfs(f->cf, front_node(f, ino), &st);
        if (r < 0)
                reply_err(req, r);
        else
                fuse_reply_statfs(req, &st);
}

/* An ACL xattr, whose S_ISGID rule needs the caller's groups. */
static bool is_acl_name(const char *name)
{
        return strcmp(name, "system.posix_acl_access") == 0 ||
               strcmp(name, "system.posix_acl_default") == 0;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
        FuseFront *f = req_front(req);
        gid_t groups[FRONT_MAX_GROUPS];
        CoreCred cred = front_cred(req, is_acl_name(name), groups);

        reply_err(req, core_setxattr(f->cf, &cred, front_node(f, ino), name, value, size, flags));
}

/* getxattr (name set) and listxattr: size 0 asks for the size; a list or
 * value larger than size is -ERANGE (the caller asks again, larger). */
static void reply_xattr_value(fuse_req_t req, FuseFront *f, fuse_ino_t ino, const char *name,
                              size_t size)
{
        CoreCred cred = front_cred(req, false, NULL);
        char *buf = NULL;
        ssize_t n;

        /* the kernel asks for XATTR_SIZE_MAX / XATTR_LIST_MAX at most */
        if (size > 0 && !(buf = malloc(size))) {
                reply_err(req, -ENOMEM);
                return;
        }
        n = name ? core_getxattr(f->cf, &cred, front_node(f, ino), name, buf, size)
                 : core_listxattr(f->cf, &cred, front_node(f, ino), buf, size);
        if (n < 0)
                reply_err(req, (int)n);
        else if (size == 0)
                fuse_reply_xattr(req, (size_t)n);
        else if ((size_t)n > size)
                reply_err(req, -ERANGE);
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
        gid_t groups[FRONT_MAX_GROUPS];
        CoreCred cred = front_cred(req, is_acl_name(name), groups);

        reply_err(req, core_removexattr(f->cf, &cred, front_node(f, ino), name));
}

/* Changes made elsewhere (another front of the core, the backend), turned
 * into kernel invalidations by the notifier thread: these run on the thread
 * that made the change, maybe a request handler of ours, so they only
 * queue. */
static void on_inval_inode(void *ctx, CoreNode *node, off_t off, off_t len)
{
        FuseFront *f = ctx;

        notifier_inval_inode(&f->notifier, node_ino(f, node), off, len);
}

static void on_inval_entry(void *ctx, CoreNode *dir, const char *name)
{
        FuseFront *f = ctx;

        notifier_inval_entry(&f->notifier, node_ino(f, dir), name);
}

static void on_delete_entry(void *ctx, CoreNode *dir, CoreNode *child, const char *name)
{
        FuseFront *f = ctx;

        notifier_delete(&f->notifier, node_ino(f, dir), node_ino(f, child), name);
}

static const CoreFrontOps front_core_ops = {
    .inval_inode = on_inval_inode,
    .inval_entry = on_inval_entry,
    .delete_entry = on_delete_entry,
};

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
        f->cache = p->cache;
        f->read_only = p->read_only;
        f->mountpoint = strdup(p->mountpoint);
        if (!f->mountpoint) {
                r = -ENOMEM;
                goto fail;
        }
        f->core = core_ref(p->core);
        /* The kernel enforces a read-only mount itself (MS_RDONLY). */
        r = core_front_new(f->core, &front_core_ops, f, 0, &f->cf);
        if (r < 0)
                goto fail;
        r = core_node_get(f->core, p->root, &f->root);
        if (r < 0)
                goto fail;
        /* The front's own reference on the root (the kernel never looks it
         * up): with it, changes of the root's entries reach this front. */
        r = core_front_hold(f->cf, f->root, 1);
        if (r < 0)
                goto fail;

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
        r = notifier_start(&f->notifier, f->se);
        if (r < 0)
                goto fail;
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
        /* The mount is going away: what is still queued for the kernel is
         * of no use any more. */
        notifier_stop(&f->notifier);
        /* The mount going away (ENODEV) ends the loop with 0. */
        return r > 0 ? -r : r;
}

FuseFront *front_free(FuseFront *f)
{
        if (!f)
                return NULL;
        /* No callback of the core runs after this, and every node the
         * kernel still held is dropped (the serving threads are gone). */
        f->cf = core_front_free(f->cf);
        notifier_free(&f->notifier);
        if (f->se) {
                /* A no-op when the mount is gone already (the fd reports
                 * POLLERR); unmounts when the loop ended for another reason. */
                if (f->mounted)
                        fuse_session_unmount(f->se);
                fuse_session_destroy(f->se);
        }
        f->root = core_node_unref(f->root);
        f->core = core_unref(f->core);
        free(f->mountpoint);
        free(f);
        return NULL;
}

uint64_t front_n_notes(FuseFront *f)
{
        return notifier_count(&f->notifier);
}

size_t front_n_nodes(FuseFront *f)
{
        return f->cf ? core_front_n_nodes(f->cf) : 0;
}

uint64_t front_n_requests(FuseFront *f)
{
        return atomic_load_explicit(&f->n_requests, memory_order_relaxed);
}
