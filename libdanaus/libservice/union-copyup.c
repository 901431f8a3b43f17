/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Union Copy-up
 *
 * The first modification of an entry that lives in a lower branch copies it
 * whole into the top branch. Its parent directories are copied first,
 * through the chain of parent nodes (never a path), each with its own
 * attributes and no content. A copy-up is invisible: the top parent's times
 * are put back afterwards, as overlayfs does.
 *
 * Steps: the copy is built under a temporary name in the top parent
 * (".wh..wh..tmp.<pid>.<union>.<n>": never visible, never a layer's name):
 * data (sparse stays sparse), then owner, then mode and xattrs (chown clears
 * set-user-ID and security.capability, so they come after it), then times;
 * synced when copy_sync; then renamed into place. A reader sees the lower
 * entry or the complete copy; a crash leaves an invisible temporary.
 *
 * Exclusive and race-safe without the caller's directory locks: a node's
 * copy_mu serialises its copy-ups (the data copy runs under it only); the
 * publication runs under the parent's ns_mu, which unlink, rename and rmdir
 * hold too, and looks the name up again there: only if it still finds this
 * node's lower entry is the copy renamed into place. Otherwise the name went
 * (or now names something else) and the copy stays nameless (its temporary
 * name is removed, the handle keeps working): a copy-up never brings back a
 * name that a concurrent unlink removed. A node that had no name left to
 * begin with is copied into an unnamed top file (the branch's tmpfile op).
 *
 * Data: when both branches hand out kernel fds (LsOps.file_fd), the data
 * segments (SEEK_DATA/SEEK_HOLE) are moved with copy_file_range(); otherwise,
 * or when the kernel refuses, 1 MiB chunks go through pread/pwrite and
 * all-zero chunks are skipped; the copy then gets the source's size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libservice/union-private.h"

#define UNION_COPY_CHUNK (1024 * 1024)
/* in-kernel copies go in steps this large, each pushed to disk at once */
#define UNION_COPY_SYNC_STEP (8 << 20)

static const LsCred root_cred = {0, 0};

bool union_copy_refused(int r)
{
        /* the top refuses some namespaces (security.*, trusted.* unprivileged,
         * user.* on symlinks): skip those names, keep the rest */
        return r == -EPERM || r == -ENOTSUP || r == -EOPNOTSUPP || r == -EACCES;
}

bool union_origin_get(LsNode *h, ino_t *ino)
{
        unsigned char v[8];
        uint64_t x = 0;

        if (bops(h)->getxattr(h, UNION_XATTR_ORIGIN, v, sizeof(v)) != (ssize_t)sizeof(v))
                return false;
        for (int i = 7; i >= 0; i--)
                x = x << 8 | v[i];
        if (!x)
                return false;
        *ino = (ino_t)x;
        return true;
}

int union_origin_set(LsNode *h, ino_t ino)
{
        unsigned char v[8];
        uint64_t x = (uint64_t)ino;
        int r;

        for (int i = 0; i < 8; i++, x >>= 8)
                v[i] = (unsigned char)x;
        r = bops(h)->setxattr(h, UNION_XATTR_ORIGIN, v, sizeof(v), 0);
        return r < 0 && !union_copy_refused(r) ? r : 0;
}

int union_impure_mark(UnionNode *dir)
{
        LsNode *top;
        bool done;
        int r;

        pthread_mutex_lock(&dir->mu);
        done = dir->impure;
        pthread_mutex_unlock(&dir->mu);
        if (done)
                return 1;
        r = union_node_top(dir, &top);
        if (r < 0)
                return r;
        r = bops(top)->setxattr(top, UNION_XATTR_IMPURE, "", 0, 0);
        ls_node_unref(top);
        if (r < 0)
                return union_copy_refused(r) ? 0 : r;
        pthread_mutex_lock(&dir->mu);
        dir->impure = true;
        pthread_mutex_unlock(&dir->mu);
        /* a node of this directory made from a lookup that read the mark
         * before it was set sees the count move (union_node_get()) */
        atomic_fetch_add(&node_union(dir)->gen, 1);
        return 1;
}

static int copy_xattrs(LsNode *src, LsNode *dst)
{
        char *list = NULL, *value = NULL;
        ssize_t len, vlen;
        int r = 0;

        len = bops(src)->listxattr(src, NULL, 0);
        if (len <= 0)
                return (len == 0 || union_copy_refused((int)len)) ? 0 : (int)len;
        list = malloc((size_t)len);
        if (!list)
                return -ENOMEM;
        len = bops(src)->listxattr(src, list, (size_t)len);
        if (len < 0) {
                free(list);
                return (int)len;
        }
        for (ssize_t off = 0; off < len && r >= 0;
             off += (ssize_t)strnlen(list + off, len - off) + 1) {
                const char *name = list + off;

                /* an origin or impure mark describes the branch it is in */
                if (union_xattr_private(name))
                        continue;
                vlen = bops(src)->getxattr(src, name, NULL, 0);
                if (vlen < 0) {
                        r = union_copy_refused((int)vlen) || vlen == -ENODATA ? 0 : (int)vlen;
                        continue;
                }
                free(value);
                value = malloc(vlen ? (size_t)vlen : 1);
                if (!value) {
                        r = -ENOMEM;
                        break;
                }
                vlen = bops(src)->getxattr(src, name, value, (size_t)vlen);
                if (vlen < 0) {
                        r = vlen == -ENODATA ? 0 : (int)vlen;
                        continue;
                }
                r = bops(dst)->setxattr(dst, name, value, (size_t)vlen, 0);
                if (union_copy_refused(r))
                        r = 0;
        }
        free(value);
        free(list);
        return r;
}

int union_copy_attrs(LsNode *src, const struct stat *st, LsNode *dst)
{
        LsSetattr sa = {.valid = LS_SET_UID | LS_SET_GID, .uid = st->st_uid, .gid = st->st_gid};
        int r;

        /* owner first: chown clears set-user-ID and security.capability */
        r = bops(dst)->setattr(dst, &sa, NULL);
        if (r < 0 && r != -EPERM)
                return r;
        if (!S_ISLNK(st->st_mode)) {
                sa = (LsSetattr){.valid = LS_SET_MODE, .mode = st->st_mode & 07777};
                r = bops(dst)->setattr(dst, &sa, NULL);
                if (r < 0)
                        return r;
        }
        r = copy_xattrs(src, dst);
        if (r < 0)
                return r;
        sa = (LsSetattr){
            .valid = LS_SET_ATIME | LS_SET_MTIME, .atime = st->st_atim, .mtime = st->st_mtim};
        return bops(dst)->setattr(dst, &sa, NULL);
}

/* copy_file_range over the data segments of sfd. -EXDEV, -EOPNOTSUPP,
 * -ENOSYS or -EINVAL tell the caller to fall back to chunks. */
static int copy_kernel(int sfd, int dfd, off_t size, bool sync)
{
        off_t off = 0;

        while (off < size) {
                off_t data = lseek(sfd, off, SEEK_DATA), hole;

                if (data < 0) {
                        if (errno == ENXIO)
                                break; /* the rest is a hole */
                        if (errno != EINVAL)
                                return -errno;
                        data = off; /* no SEEK_DATA: all data */
                        hole = size;
                } else {
                        hole = lseek(sfd, data, SEEK_HOLE);
                        if (hole < 0 || hole > size)
                                hole = size;
                }
                if (data >= size)
                        break;
                while (data < hole) {
                        off_t in = data, out = data;
                        size_t want = hole - data < UNION_COPY_SYNC_STEP ? (size_t)(hole - data)
                                                                         : UNION_COPY_SYNC_STEP;
                        ssize_t n = copy_file_range(sfd, &in, dfd, &out, want, 0);

                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        if (n == 0)
                                return 0; /* source shrank */
                        /* start writing this step now; the fsync before the
                         * copy is published waits for the tail only */
                        if (sync)
                                sync_file_range(dfd, data, n, SYNC_FILE_RANGE_WRITE);
                        data += n;
                }
                off = hole;
        }
        return 0;
}

static bool all_zero(const char *buf, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (buf[i])
                        return false;
        return true;
}

static int copy_chunks(LsFile *sf, LsFile *df, off_t size)
{
        char *buf = malloc(UNION_COPY_CHUNK);
        off_t off = 0;
        int r = 0;

        if (!buf)
                return -ENOMEM;
        while (off < size) {
                size_t want =
                    size - off < UNION_COPY_CHUNK ? (size_t)(size - off) : UNION_COPY_CHUNK;
                ssize_t n = ls_ops(sf->node)->pread(sf, buf, want, off);

                if (n < 0) {
                        r = (int)n;
                        break;
                }
                if (n == 0)
                        break;
                if (!all_zero(buf, (size_t)n)) {
                        for (ssize_t done = 0; done < n;) {
                                ssize_t w = ls_ops(df->node)->pwrite(
                                    df, buf + done, (size_t)(n - done), off + done, 0);

                                if (w <= 0) {
                                        r = w < 0 ? (int)w : -EIO;
                                        goto out;
                                }
                                done += w;
                        }
                }
                off += n;
        }
out:
        free(buf);
        return r;
}

static int file_kernel_fd(LsFile *f)
{
        const LsOps *ops = ls_ops(f->node);

        return ops->file_fd ? ops->file_fd(f) : -EOPNOTSUPP;
}

static int copy_data(Union *u, LsNode *src, const struct stat *st, LsFile *df)
{
        LsFile *sf;
        int r, sfd, dfd;

        r = bops(src)->open(src, O_RDONLY, &sf);
        if (r < 0)
                return r;
        sfd = file_kernel_fd(sf);
        dfd = file_kernel_fd(df);
        r = -EOPNOTSUPP;
        if (sfd >= 0 && dfd >= 0)
                r = copy_kernel(sfd, dfd, st->st_size, u->copy_sync);
        if (r == -EXDEV || r == -EOPNOTSUPP || r == -ENOSYS || r == -EINVAL)
                r = copy_chunks(sf, df, st->st_size);
        ls_ops(sf->node)->release(sf);
        return r;
}

/* Data of a regular file into df (a new, empty file of node dst). */
static int copy_file_data(Union *u, LsNode *src, const struct stat *st, LsNode *dst, LsFile *df,
                          bool no_data)
{
        int r = 0;

        if (!no_data && st->st_size > 0) {
                LsSetattr sa = {.valid = LS_SET_SIZE, .size = st->st_size};

                r = copy_data(u, src, st, df);
                /* the source's size: a sparse tail stays a hole */
                if (r >= 0)
                        r = bops(dst)->setattr(dst, &sa, NULL);
        }
        return r;
}

int union_copy_node(Union *u, LsNode *src, const struct stat *st, LsNode *tdir, const char *name,
                    bool no_data, LsNode **dstp)
{
        LsNode *dst = NULL;
        int r;

        if (S_ISREG(st->st_mode)) {
                LsFile *df;

                r = bops(tdir)->create(tdir, name, O_RDWR | O_CREAT | O_EXCL, 0600, &root_cred,
                                       &dst, NULL, &df);
                if (r < 0)
                        return r;
                r = copy_file_data(u, src, st, dst, df, no_data);
                ls_ops(df->node)->release(df);
                if (r < 0) {
                        bops(tdir)->unlink(tdir, name);
                        ls_node_unref(dst);
                        return r;
                }
        } else if (S_ISLNK(st->st_mode)) {
                char target[PATH_MAX];
                ssize_t n = bops(src)->readlink(src, target, sizeof(target) - 1);

                if (n < 0)
                        return (int)n;
                target[n] = '\0';
                r = bops(tdir)->symlink(tdir, name, target, &root_cred, &dst, NULL);
        } else if (S_ISDIR(st->st_mode)) {
                r = bops(tdir)->mkdir(tdir, name, 0700, &root_cred, &dst, NULL);
        } else {
                r = bops(tdir)->mknod(tdir, name, st->st_mode, st->st_rdev, &root_cred, &dst, NULL);
        }
        if (r < 0)
                return r;
        *dstp = dst;
        return 0;
}

/* The synced copy of a regular file (copy_sync). */
int union_sync_node(Union *u, LsNode *h, const struct stat *st)
{
        LsFile *f;
        int r;

        if (!u->copy_sync || !S_ISREG(st->st_mode))
                return 0;
        r = bops(h)->open(h, O_RDONLY, &f);
        if (r < 0)
                return r;
        r = ls_ops(f->node)->fsync(f, true);
        ls_ops(f->node)->release(f);
        return r;
}

static void times_save(LsNode *dir, struct timespec ts[2])
{
        struct stat st;

        if (bops(dir)->getattr(dir, &st) < 0) {
                ts[0].tv_nsec = ts[1].tv_nsec = UTIME_OMIT;
                return;
        }
        ts[0] = st.st_atim;
        ts[1] = st.st_mtim;
}

static void times_restore(LsNode *dir, const struct timespec ts[2])
{
        LsSetattr sa = {.valid = LS_SET_ATIME | LS_SET_MTIME, .atime = ts[0], .mtime = ts[1]};

        if (ts[0].tv_nsec != UTIME_OMIT)
                bops(dir)->setattr(dir, &sa, NULL); /* cosmetic: errors do not matter */
}

/* Replaces n's state by the single top layer h (a reference it takes). */
static void node_set_top(UnionNode *n, LsNode *h, bool dir)
{
        Union *u = node_union(n);
        UnionLayer *old = NULL, *l;
        unsigned n_old = 0;

        pthread_mutex_lock(&n->mu);
        if (dir) {
                l = malloc(sizeof(*l) * (n->n_layers + 1));
                if (l) {
                        memcpy(l + 1, n->layers, sizeof(*l) * n->n_layers);
                        l[0].branch = 0;
                        l[0].node = ls_node_ref(h);
                        free(n->layers);
                        n->layers = l;
                        n->n_layers++;
                }
        } else {
                l = malloc(sizeof(*l));
                if (l) {
                        l[0].branch = 0;
                        l[0].node = ls_node_ref(h);
                        old = n->layers;
                        n_old = n->n_layers;
                        n->layers = l;
                        n->n_layers = 1;
                }
        }
        n->gen = atomic_fetch_add(&u->gen, 1) + 1;
        pthread_mutex_unlock(&n->mu);
        union_layers_free(old, n_old);
}

/* Snapshot for a copy-up: n's current top-most layer, parent and name. */
static int snapshot(UnionNode *n, LsNode **srcp, UnionNode **parentp, char **namep)
{
        int r = 0;

        *parentp = NULL;
        *namep = NULL;
        pthread_mutex_lock(&n->mu);
        if (n->removed || n->n_layers == 0) {
                r = -ENOENT;
        } else if (n->layers[0].branch == 0) {
                r = 1; /* up already */
        } else {
                *srcp = ls_node_ref(n->layers[0].node);
                if (n->parent && n->name) {
                        *namep = strdup(n->name);
                        if (!*namep)
                                r = -ENOMEM;
                        else
                                *parentp = to_unode(ls_node_ref(&n->parent->base));
                }
        }
        pthread_mutex_unlock(&n->mu);
        if (r < 0 && r != -ENOENT)
                ls_node_unref(*srcp);
        return r;
}

static bool still_named(UnionNode *n, UnionNode *parent, const char *name)
{
        bool yes;

        pthread_mutex_lock(&n->mu);
        yes = !n->removed && n->parent == parent && n->name && strcmp(n->name, name) == 0;
        pthread_mutex_unlock(&n->mu);
        return yes;
}

int union_copyup_dir(UnionNode *n)
{
        Union *u = node_union(n);
        char tmp[NAME_MAX + 1];
        UnionNode *parent = NULL;
        LsNode *src = NULL, *ptop = NULL, *dst = NULL, *found;
        struct timespec ts[2];
        bool renamed = false;
        char *name = NULL;
        struct stat st;
        int r;

        if (!u->writable)
                return -EROFS;
        if (!union_node_is_lower(n))
                return 0;
        pthread_mutex_lock(&n->copy_mu);
        r = snapshot(n, &src, &parent, &name);
        if (r != 0)
                goto out_unlock;
        if (!parent) {
                r = -ENOENT; /* a directory with no name left */
                goto out;
        }
        r = union_copyup_dir(parent);
        if (r >= 0)
                r = union_node_top(parent, &ptop);
        if (r >= 0)
                r = bops(src)->getattr(src, &st);
        if (r >= 0)
                r = union_tmp_name(u, tmp, sizeof(tmp));
        if (r < 0)
                goto out;
        times_save(ptop, ts);
        r = union_copy_node(u, src, &st, ptop, tmp, false, &dst);
        if (r < 0)
                goto out;
        r = union_copy_attrs(src, &st, dst);
        if (r < 0) {
                bops(ptop)->rmdir(ptop, tmp);
                goto out;
        }
        pthread_mutex_lock(&parent->ns_mu);
        if (!still_named(n, parent, name)) {
                r = -ENOENT;
        } else if (bops(ptop)->lookup(ptop, name, &found, &st) == 0) {
                /* made meanwhile by a node that was stale: it is ours */
                if (S_ISDIR(st.st_mode)) {
                        ls_node_unref(dst);
                        dst = found;
                } else {
                        ls_node_unref(found);
                        r = -ENOTDIR;
                }
        } else {
                r = bops(ptop)->rename(ptop, tmp, ptop, name, RENAME_NOREPLACE);
                renamed = r >= 0;
        }
        if (r >= 0) {
                node_set_top(n, dst, true);
                union_node_touch(parent);
        }
        pthread_mutex_unlock(&parent->ns_mu);
        if (!renamed)
                bops(ptop)->rmdir(ptop, tmp);
        times_restore(ptop, ts);
out:
        ls_node_unref(dst);
        ls_node_unref(ptop);
        ls_node_unref(src);
        if (parent)
                ls_node_unref(&parent->base);
        free(name);
out_unlock:
        pthread_mutex_unlock(&n->copy_mu);
        return r < 0 ? r : 0;
}

/* A copy of src with no name in the top (the branch's tmpfile op, or a
 * temporary name removed at once). */
static int copy_nameless(Union *u, LsNode *src, const struct stat *st, bool no_data, LsNode **dstp)
{
        LsNode *tdir = u->roots[0].node, *dst;
        char tmp[NAME_MAX + 1];
        LsFile *df;
        int r;

        if (S_ISREG(st->st_mode) && bops(tdir)->tmpfile) {
                r = bops(tdir)->tmpfile(tdir, O_RDWR, 0600, &root_cred, &dst, NULL, &df);
                if (r >= 0) {
                        r = copy_file_data(u, src, st, dst, df, no_data);
                        ls_ops(df->node)->release(df);
                        if (r >= 0)
                                r = union_copy_attrs(src, st, dst);
                        if (r < 0) {
                                ls_node_unref(dst);
                                return r;
                        }
                        *dstp = dst;
                        return 0;
                }
                if (r != -EOPNOTSUPP && r != -EISDIR && r != -EINVAL)
                        return r;
        }
        r = union_tmp_name(u, tmp, sizeof(tmp));
        if (r < 0)
                return r;
        r = union_copy_node(u, src, st, tdir, tmp, no_data, &dst);
        if (r < 0)
                return r;
        r = union_copy_attrs(src, st, dst);
        bops(tdir)->unlink(tdir, tmp);
        if (r < 0) {
                ls_node_unref(dst);
                return r;
        }
        *dstp = dst;
        return 0;
}

/* Under parent's ns_mu: does name still lead to n's lower entry src? Returns
 * 1 yes, 2 it is in the top already as n (adopt *adoptp), 0 no. */
static int publish_check(UnionNode *n, UnionNode *parent, const char *name, LsNode *src,
                         LsNode **adoptp)
{
        UnionFound f;
        int r;

        if (!still_named(n, parent, name))
                return 0;
        r = union_resolve(parent, name, &f);
        if (r < 0)
                return 0;
        r = 0;
        if (f.layers[0].node == src)
                r = 1;
        else if (f.branch == 0 && f.ino == n->ino && (f.st.st_mode & S_IFMT) == n->type) {
                *adoptp = ls_node_ref(f.layers[0].node);
                r = 2;
        }
        union_found_clear(&f);
        return r;
}

static int copyup_locked(UnionNode *n, bool no_data)
{
        Union *u = node_union(n);
        char tmp[NAME_MAX + 1];
        UnionNode *parent = NULL;
        LsNode *src = NULL, *ptop = NULL, *dst = NULL, *adopt = NULL;
        struct timespec ts[2];
        char *name = NULL;
        struct stat st;
        int r, ok;

        r = snapshot(n, &src, &parent, &name);
        if (r != 0)
                return r < 0 ? r : 0;
        r = bops(src)->getattr(src, &st);
        if (r < 0)
                goto out;
        if (parent) {
                r = union_copyup_dir(parent);
                if (r == -ENOENT) {
                        /* its directory went: so did its name */
                        ls_node_unref(&parent->base);
                        parent = NULL;
                        r = 0;
                }
        }
        if (r >= 0 && parent)
                r = union_node_top(parent, &ptop);
        if (r < 0)
                goto out;
        if (!parent) {
                r = copy_nameless(u, src, &st, no_data, &dst);
                if (r >= 0)
                        r = union_sync_node(u, dst, &st);
                if (r >= 0)
                        node_set_top(n, dst, false);
                goto out;
        }
        r = union_tmp_name(u, tmp, sizeof(tmp));
        if (r < 0)
                goto out;
        times_save(ptop, ts);
        /* keep the number: the parent is marked impure first, so a lookup
         * that finds the copy reads its origin. Not a lower file with several
         * links: the links break, and the names still below report the
         * number, so the copy must not (overlayfs without index does so). */
        ok = st.st_nlink == 1 ? union_impure_mark(parent) : 0;
        if (ok < 0) {
                r = ok;
                goto out;
        }
        r = union_copy_node(u, src, &st, ptop, tmp, no_data, &dst);
        if (r < 0)
                goto out;
        r = union_copy_attrs(src, &st, dst);
        if (r >= 0 && ok)
                r = union_origin_set(dst, n->ino);
        if (r >= 0)
                r = union_sync_node(u, dst, &st);
        if (r < 0) {
                bops(ptop)->unlink(ptop, tmp);
                goto out;
        }
        pthread_mutex_lock(&parent->ns_mu);
        ok = publish_check(n, parent, name, src, &adopt);
        if (ok == 1)
                r = bops(ptop)->rename(ptop, tmp, ptop, name, RENAME_NOREPLACE);
        if (ok != 1 || r < 0)
                bops(ptop)->unlink(ptop, tmp); /* the handle stays usable */
        if (r >= 0) {
                /* 0: the name went meanwhile: the copy stays nameless */
                node_set_top(n, adopt ? adopt : dst, false);
                if (st.st_nlink != 1 && !adopt) {
                        /* a copy without origin reports its own number; the
                         * names still below keep the old one */
                        struct stat cst;

                        pthread_mutex_lock(&n->mu);
                        n->per_name = false;
                        pthread_mutex_unlock(&n->mu);
                        if (bops(dst)->getattr(dst, &cst) == 0)
                                union_node_rekey(n, union_ino(u, 0, cst.st_ino));
                }
                union_node_touch(parent);
                atomic_fetch_add_explicit(&u->gen, 1, memory_order_release);
        }
        pthread_mutex_unlock(&parent->ns_mu);
        times_restore(ptop, ts);
out:
        if (r >= 0)
                /* files opened below look again (union-file.c) */
                atomic_fetch_add_explicit(&n->copyups, 1, memory_order_release);
        ls_node_unref(adopt);
        ls_node_unref(dst);
        ls_node_unref(ptop);
        ls_node_unref(src);
        if (parent)
                ls_node_unref(&parent->base);
        free(name);
        return r < 0 ? r : 0;
}

int union_copyup(UnionNode *n, bool no_data)
{
        Union *u = node_union(n);
        int r;

        if (!u->writable)
                return -EROFS;
        if (!union_node_is_lower(n))
                return 0;
        pthread_mutex_lock(&n->copy_mu);
        r = copyup_locked(n, no_data);
        pthread_mutex_unlock(&n->copy_mu);
        return r;
}

int union_copyup_any(UnionNode *n, bool no_data)
{
        return n->type == S_IFDIR ? union_copyup_dir(n) : union_copyup(n, no_data);
}
