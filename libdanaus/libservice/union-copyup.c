/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Union Copy-up
 *
 * The first modification of an entry that lives in a lower branch copies it
 * whole into the top branch: data, then xattrs, owner, mode, and times last
 * (anything after would change them). Its ancestors are copied up first, each
 * directory with its own attributes and no content. A copy-up is invisible:
 * the top parent's times are put back afterwards, as overlayfs does.
 *
 * Atomic: the copy is built under a temporary name in the same top directory
 * (".wh..wh..tmp.<pid>.<union>.<n>": a whiteout-prefixed name, so never
 * visible and never mistaken for a layer's entry) and renamed into place, so
 * a reader sees the lower entry or the complete copy, never a partial one; a
 * crash leaves only an invisible temporary, which rmdir of the parent cleans.
 *
 * Exclusive: two threads never copy up one path at once. Copy-ups take a lock
 * from a striped table keyed by the path's hash and look the path up again
 * once they hold it. A thread holds at most one stripe (ancestors are done
 * before the entry's stripe is taken), so stripes cannot deadlock.
 *
 * Data: when both branches hand out kernel fds (LsOps.file_fd), the data
 * segments (SEEK_DATA/SEEK_HOLE) are moved with copy_file_range(); otherwise,
 * or when the kernel refuses, 1 MiB chunks go through pread/pwrite and
 * all-zero chunks are skipped. Either way the copy is ftruncate'd to the
 * source size, so sparse files stay sparse.
 *
 * Owner: chown needs privilege; a service that lacks it (-EPERM) keeps its
 * own ids on the copy rather than refusing every write to a lower file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libservice/union-private.h"

#define UNION_COPY_CHUNK (1024 * 1024)

int union_tmp_name(Union *u, char *buf, size_t size, const char *dir)
{
        char name[NAME_MAX + 1];
        unsigned long long n = (unsigned long long)atomic_fetch_add(&u->tmp_counter, 1);

        snprintf(name, sizeof(name), UNION_TMP_PREFIX "%d.%lx.%llu", (int)getpid(),
                 (unsigned long)(uintptr_t)u, n);
        return ls_path_join(buf, size, dir, name);
}

static bool copy_refused(int r)
{
        /* the top refuses some namespaces (security.*, trusted.* unprivileged,
         * user.* on symlinks): skip those names, keep the rest */
        return r == -EPERM || r == -ENOTSUP || r == -EOPNOTSUPP || r == -EACCES;
}

static int copy_xattrs(Union *u, int b, const char *src, const char *dst)
{
        const LsOps *sops = union_bops(u, b), *tops = union_bops(u, 0);
        LsInstance *sinst = union_branch(u, b), *top = union_branch(u, 0);
        char *list = NULL, *value = NULL;
        ssize_t len, vlen;
        int r = 0;

        if (!sops->listxattr || !sops->getxattr || !tops->setxattr)
                return 0;
        len = sops->listxattr(sinst, src, NULL, 0);
        if (len <= 0)
                return (len == 0 || copy_refused((int)len)) ? 0 : (int)len;
        list = malloc((size_t)len);
        if (!list)
                return -ENOMEM;
        len = sops->listxattr(sinst, src, list, (size_t)len);
        if (len < 0) {
                free(list);
                return (int)len;
        }
        for (ssize_t off = 0; off < len && r >= 0; off += (ssize_t)strlen(list + off) + 1) {
                const char *name = list + off;

                vlen = sops->getxattr(sinst, src, name, NULL, 0);
                if (vlen < 0) {
                        r = copy_refused((int)vlen) || vlen == -ENODATA ? 0 : (int)vlen;
                        continue;
                }
                free(value);
                value = malloc(vlen ? (size_t)vlen : 1);
                if (!value) {
                        r = -ENOMEM;
                        break;
                }
                vlen = sops->getxattr(sinst, src, name, value, (size_t)vlen);
                if (vlen < 0) {
                        r = vlen == -ENODATA ? 0 : (int)vlen;
                        continue;
                }
                r = tops->setxattr(top, dst, name, value, (size_t)vlen, 0);
                if (copy_refused(r))
                        r = 0;
        }
        free(value);
        free(list);
        return r;
}

/* xattrs first (user.* needs write permission, which the final mode may not
 * grant), then owner, then mode (chown clears set-user-ID), times last. */
static int copy_attrs(Union *u, int b, const char *src, const struct stat *st, const char *dst)
{
        const LsOps *tops = union_bops(u, 0);
        LsInstance *top = union_branch(u, 0);
        struct timespec ts[2] = { st->st_atim, st->st_mtim };
        int r;

        r = copy_xattrs(u, b, src, dst);
        if (r < 0)
                return r;
        r = tops->chown(top, dst, st->st_uid, st->st_gid);
        if (r < 0 && r != -EPERM)
                return r;
        if (!S_ISLNK(st->st_mode)) {
                r = tops->chmod(top, dst, st->st_mode & 07777);
                if (r < 0)
                        return r;
        }
        return tops->utimens(top, dst, ts);
}

static bool all_zero(const char *buf, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (buf[i])
                        return false;
        return true;
}

/* copy_file_range over the data segments of sfd. -EXDEV, -EOPNOTSUPP,
 * -ENOSYS or -EINVAL tell the caller to fall back to chunks. */
static int copy_kernel(int sfd, int dfd, off_t size)
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
                        ssize_t n = copy_file_range(sfd, &in, dfd, &out, (size_t)(hole - data), 0);

                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        if (n == 0)
                                return 0; /* source shrank */
                        data += n;
                }
                off = hole;
        }
        return 0;
}

static int copy_chunks(LsFile *sf, LsFile *df, off_t size)
{
        char *buf = malloc(UNION_COPY_CHUNK);
        off_t off = 0;
        int r = 0;

        if (!buf)
                return -ENOMEM;
        while (off < size) {
                size_t want = size - off < UNION_COPY_CHUNK ? (size_t)(size - off) : UNION_COPY_CHUNK;
                ssize_t n = sf->inst->ops->pread(sf, buf, want, off);

                if (n < 0) {
                        r = (int)n;
                        break;
                }
                if (n == 0)
                        break;
                if (!all_zero(buf, (size_t)n)) {
                        for (ssize_t done = 0; done < n;) {
                                ssize_t w = df->inst->ops->pwrite(df, buf + done,
                                                                  (size_t)(n - done), off + done);

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
        if (!f->inst->ops->file_fd)
                return -EOPNOTSUPP;
        return f->inst->ops->file_fd(f);
}

static int copy_data(Union *u, int b, const char *src, const struct stat *st, LsFile *df)
{
        static const LsCred nobody = { 0, 0 }; /* unused: nothing is created */
        LsFile *sf;
        int r, sfd, dfd;

        r = union_bops(u, b)->open(union_branch(u, b), src, O_RDONLY | O_NOFOLLOW, 0, &nobody, &sf);
        if (r < 0)
                return r;
        sfd = file_kernel_fd(sf);
        dfd = file_kernel_fd(df);
        r = -EOPNOTSUPP;
        if (sfd >= 0 && dfd >= 0)
                r = copy_kernel(sfd, dfd, st->st_size);
        if (r == -EXDEV || r == -EOPNOTSUPP || r == -ENOSYS || r == -EINVAL)
                r = copy_chunks(sf, df, st->st_size);
        sf->inst->ops->release(sf);
        return r;
}

/* Creates dst in the top branch as a copy of (b, src): data for a regular
 * file (unless no_data), target for a symlink, device numbers for a node.
 * Directories are created empty and private (0700): the caller fills them,
 * then sets their attributes with copy_attrs(). */
static int copy_node(Union *u, int b, const char *src, const struct stat *st, const char *dst,
                     bool no_data)
{
        const LsOps *tops = union_bops(u, 0);
        LsInstance *top = union_branch(u, 0);
        LsCred cred = { st->st_uid, st->st_gid };
        int r;

        if (S_ISREG(st->st_mode)) {
                LsFile *df;

                r = tops->open(top, dst, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600, &cred, &df);
                if (r < 0)
                        return r;
                if (!no_data && st->st_size > 0)
                        r = copy_data(u, b, src, st, df);
                if (r >= 0 && !no_data)
                        r = df->inst->ops->ftruncate(df, st->st_size);
                /* durable before the rename publishes it, as overlayfs does */
                if (r >= 0)
                        r = df->inst->ops->fsync(df, true);
                df->inst->ops->release(df);
        } else if (S_ISLNK(st->st_mode)) {
                char target[PATH_MAX];
                ssize_t n = union_bops(u, b)->readlink(union_branch(u, b), src, target,
                                                       sizeof(target) - 1);

                if (n < 0)
                        return (int)n;
                target[n] = '\0';
                return tops->symlink(top, target, dst, &cred);
        } else if (S_ISDIR(st->st_mode)) {
                return tops->mkdir(top, dst, 0700, &cred);
        } else {
                return tops->mknod(top, dst, st->st_mode, st->st_rdev, &cred);
        }
        if (r < 0)
                tops->unlink(top, dst);
        return r;
}

static int parent_times_save(Union *u, const char *parent, struct timespec ts[2])
{
        struct stat st;
        int r = union_bops(u, 0)->getattr(union_branch(u, 0), parent, &st);

        if (r < 0)
                return r;
        ts[0] = st.st_atim;
        ts[1] = st.st_mtim;
        return 0;
}

static int parent_times_restore(Union *u, const char *parent, const struct timespec ts[2])
{
        return union_bops(u, 0)->utimens(union_branch(u, 0), parent, ts);
}

static pthread_mutex_t *copyup_lock(Union *u, const char *path)
{
        return &u->copyup_locks[union_hash(path) % UNION_COPYUP_LOCKS];
}

/* Copies one directory up; its parent is in the top branch already. */
static int copyup_one_dir(Union *u, const char *path, const UnionStack *stack)
{
        LsInstance *top = union_branch(u, 0);
        pthread_mutex_t *m = copyup_lock(u, path);
        char parent[PATH_MAX], tmp[PATH_MAX];
        int b = stack->idx[0];
        struct timespec ts[2];
        struct stat st;
        int r;

        pthread_mutex_lock(m);
        r = top->ops->getattr(top, path, &st);
        if (r == 0) {
                r = S_ISDIR(st.st_mode) ? 0 : -ENOTDIR; /* another thread won */
                goto out;
        }
        if (r != -ENOENT)
                goto out;
        r = union_bops(u, b)->getattr(union_branch(u, b), path, &st);
        if (r < 0)
                goto out;
        if (!ls_path_split(path, parent, sizeof(parent))) {
                r = -EINVAL;
                goto out;
        }
        r = parent_times_save(u, parent, ts);
        if (r >= 0)
                r = union_tmp_name(u, tmp, sizeof(tmp), parent);
        if (r < 0)
                goto out;
        r = copy_node(u, b, path, &st, tmp, false);
        if (r < 0)
                goto out;
        r = copy_attrs(u, b, path, &st, tmp);
        if (r >= 0)
                r = top->ops->rename(top, tmp, path, 0);
        if (r < 0) {
                top->ops->rmdir(top, tmp);
                goto out;
        }
        union_dircache_bump(u);
        r = parent_times_restore(u, parent, ts);
out:
        pthread_mutex_unlock(m);
        return r;
}

int union_copyup_dir(Union *u, const char *path)
{
        char prefix[PATH_MAX];
        const char *p = path;
        UnionStack stack;
        int r;

        if (strlen(path) >= sizeof(prefix))
                return -ENAMETOOLONG;
        /* the top root always exists; then each ancestor, top-down */
        while (*p) {
                const char *slash = strchr(p, '/');
                size_t end = slash ? (size_t)(slash - path) : strlen(path);

                memcpy(prefix, path, end);
                prefix[end] = '\0';
                r = union_dircache_get(u, prefix, &stack);
                if (r < 0)
                        return r;
                if (stack.idx[0] != 0) {
                        r = copyup_one_dir(u, prefix, &stack);
                        if (r < 0)
                                return r;
                }
                p = slash ? slash + 1 : p + strlen(p);
        }
        return 0;
}

int union_copyup(Union *u, const char *path, bool no_data)
{
        LsInstance *top = union_branch(u, 0);
        char parent[PATH_MAX], tmp[PATH_MAX];
        struct timespec ts[2];
        pthread_mutex_t *m;
        UnionEntry ent;
        int r;

        r = union_lookup(u, path, &ent);
        if (r < 0 || ent.branch == 0)
                return r;
        if (S_ISDIR(ent.st.st_mode))
                return union_copyup_dir(u, path);
        if (!ls_path_split(path, parent, sizeof(parent)))
                return -EINVAL;
        r = union_copyup_dir(u, parent);
        if (r < 0)
                return r;

        m = copyup_lock(u, path);
        pthread_mutex_lock(m);
        r = union_lookup(u, path, &ent); /* another thread may have won */
        if (r < 0 || ent.branch == 0)
                goto out;
        r = parent_times_save(u, parent, ts);
        if (r >= 0)
                r = union_tmp_name(u, tmp, sizeof(tmp), parent);
        if (r < 0)
                goto out;
        r = copy_node(u, ent.branch, path, &ent.st, tmp, no_data);
        if (r < 0)
                goto out;
        r = copy_attrs(u, ent.branch, path, &ent.st, tmp);
        if (r >= 0)
                r = top->ops->rename(top, tmp, path, 0);
        if (r < 0) {
                top->ops->unlink(top, tmp);
                goto out;
        }
        r = parent_times_restore(u, parent, ts);
out:
        pthread_mutex_unlock(m);
        return r < 0 ? r : 0;
}

typedef struct TreeNames {
        char **v;
        size_t n, cap;
} TreeNames;

static int tree_names_fill(void *ctx, const char *name, ino_t ino, unsigned char d_type)
{
        TreeNames *l = ctx;

        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                char **v = realloc(l->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n] = strdup(name);
        if (!l->v[l->n])
                return -ENOMEM;
        l->n++;
        return 0;
}

static void tree_names_clear(TreeNames *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
}

/* Copies the merged tree src to dst (top branch), recursively. Paths live on
 * the heap: depth is bounded only by PATH_MAX. */
static int copy_tree_rec(Union *u, const char *src, const char *dst, bool opaque)
{
        TreeNames names = { 0 };
        char *s = NULL, *d = NULL;
        UnionEntry ent;
        int r;

        r = union_lookup(u, src, &ent);
        if (r < 0)
                return r;
        /* a file already in the top is linked, not copied: cheaper, and it
         * keeps its inode number and its other links */
        if (ent.branch == 0 && !S_ISDIR(ent.st.st_mode) &&
            union_bops(u, 0)->link(union_branch(u, 0), src, dst) == 0)
                return 0;
        r = copy_node(u, ent.branch, src, &ent.st, dst, false);
        if (r < 0 || !S_ISDIR(ent.st.st_mode)) {
                if (r >= 0)
                        r = copy_attrs(u, ent.branch, src, &ent.st, dst);
                return r;
        }
        if (opaque) {
                r = union_opaque_create(u, dst);
                if (r < 0)
                        return r;
        }
        r = union_readdir(&u->inst, src, tree_names_fill, &names);
        s = malloc(PATH_MAX);
        d = malloc(PATH_MAX);
        if (r >= 0 && (!s || !d))
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < names.n; i++) {
                r = ls_path_join(s, PATH_MAX, src, names.v[i]);
                if (r >= 0)
                        r = ls_path_join(d, PATH_MAX, dst, names.v[i]);
                if (r >= 0)
                        r = copy_tree_rec(u, s, d, false);
        }
        free(s);
        free(d);
        tree_names_clear(&names);
        if (r >= 0)
                r = copy_attrs(u, ent.branch, src, &ent.st, dst);
        return r;
}

int union_copy_tree(Union *u, const char *src, const char *dst)
{
        int r = copy_tree_rec(u, src, dst, true);

        if (r < 0)
                union_top_remove_tree(u, dst);
        return r < 0 ? r : 0;
}
