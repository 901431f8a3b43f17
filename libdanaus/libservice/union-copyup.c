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
/* in-kernel copies go in steps this large, each pushed to disk at once */
#define UNION_COPY_SYNC_STEP (8 << 20)

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

bool union_xattr_private(const char *name)
{
        return strncmp(name, UNION_XATTR_PREFIX, UNION_XATTR_PREFIX_LEN) == 0;
}

bool union_origin_get(Union *u, const char *path, ino_t *ino)
{
        LsInstance *top = union_branch(u, 0);
        unsigned char v[8];
        uint64_t x = 0;

        if (!top->ops->getxattr ||
            top->ops->getxattr(top, path, UNION_XATTR_ORIGIN, v, sizeof(v)) != (ssize_t)sizeof(v))
                return false;
        for (int i = 7; i >= 0; i--)
                x = x << 8 | v[i];
        if (!x)
                return false;
        *ino = (ino_t)x;
        return true;
}

/*
 * Origin cache. The origin of a top inode never changes while it lives (it is
 * set before the copy is published, and the union refuses to set or remove
 * it), so it is cached by top inode number, negatives too. Two things keep it
 * right: an inode that may be freed (unlink, rename over it, tree removal) is
 * forgotten, so a new file reusing the number is read afresh; and a reader
 * stores only if no change of which inode a path names (unlink, rename, each
 * bracketed by ns_started/ns_finished) overlapped its read, so what it read
 * at the path belongs to the inode it looked up. As the directory-stack
 * cache, it assumes the top changes only through this union.
 */
static size_t origin_slot(ino_t ino)
{
        return (size_t)(((uint64_t)ino * 0x9e3779b97f4a7c15ULL) >> 40) & (UNION_ORIGIN_SLOTS - 1);
}

void union_ns_begin(Union *u)
{
        atomic_fetch_add(&u->ns_started, 1);
}

void union_ns_end(Union *u)
{
        atomic_fetch_add(&u->ns_finished, 1);
}

void union_origin_forget(Union *u, ino_t top_ino)
{
        size_t i = origin_slot(top_ino);
        pthread_mutex_t *m = &u->origin_locks[i % UNION_ORIGIN_LOCKS];

        if (!u->origin_slots)
                return;
        pthread_mutex_lock(m);
        if (u->origin_slots[i].ino == top_ino)
                u->origin_slots[i].ino = 0;
        pthread_mutex_unlock(m);
}

bool union_origin_cached(Union *u, const char *path, ino_t top_ino, ino_t *ino)
{
        size_t i = origin_slot(top_ino);
        pthread_mutex_t *m;
        uint64_t fin, start;
        ino_t origin = 0;
        struct stat st;
        bool hit = false;

        if (!u->origin_slots || !top_ino)
                return union_origin_get(u, path, ino);
        m = &u->origin_locks[i % UNION_ORIGIN_LOCKS];
        pthread_mutex_lock(m);
        if (u->origin_slots[i].ino == top_ino) {
                origin = u->origin_slots[i].origin;
                hit = true;
        }
        pthread_mutex_unlock(m);
        if (!hit) {
                fin = atomic_load(&u->ns_finished);
                start = atomic_load(&u->ns_started);
                if (!union_origin_get(u, path, &origin))
                        origin = 0;
                /* what path names now is the inode asked about, and no
                 * rename or unlink ran across the two reads */
                if (start == fin && union_bops(u, 0)->getattr(union_branch(u, 0), path, &st) == 0 &&
                    st.st_ino == top_ino) {
                        pthread_mutex_lock(m);
                        if (atomic_load(&u->ns_started) == start) {
                                u->origin_slots[i].ino = top_ino;
                                u->origin_slots[i].origin = origin;
                        }
                        pthread_mutex_unlock(m);
                }
        }
        if (!origin)
                return false;
        *ino = origin;
        return true;
}

/* Whether a copy of st may keep st's number. Not a lower file with several
 * links: copy-up breaks them (each name copied up becomes its own file), and
 * names still below keep reporting the number, so two files would share it
 * (overlayfs without index makes the same choice). */
static bool origin_keep(const struct stat *st)
{
        return st->st_nlink == 1;
}

/* Records ino as the origin of the top entry at path; false if the top
 * refuses (then the entry reports its own number). */
static int origin_set(Union *u, const char *path, ino_t ino)
{
        LsInstance *top = union_branch(u, 0);
        unsigned char v[8];
        uint64_t x = (uint64_t)ino;
        int r;

        for (int i = 0; i < 8; i++, x >>= 8)
                v[i] = (unsigned char)x;
        r = top->ops->setxattr ? top->ops->setxattr(top, path, UNION_XATTR_ORIGIN, v, sizeof(v), 0)
                               : -EOPNOTSUPP;
        return r < 0 && !copy_refused(r) ? r : 0;
}

/* Marks top directory dir impure (if it is not yet), before an entry with an
 * origin lands in it. 0 also when the top refuses the mark: *markedp false. */
static int impure_mark(Union *u, const char *dir, bool *markedp)
{
        LsInstance *top = union_branch(u, 0);
        UnionStack stack;
        int r;

        *markedp = false;
        if (!*dir) {
                *markedp = true; /* impure without a mark (union_dir_impure) */
                return 0;
        }
        r = union_dircache_get(u, dir, &stack);
        if (r < 0)
                return r;
        if (union_dir_impure(u, dir, &stack)) {
                *markedp = true;
                return 0;
        }
        r = top->ops->setxattr ? top->ops->setxattr(top, dir, UNION_XATTR_IMPURE, "", 0, 0)
                               : -EOPNOTSUPP;
        if (r < 0)
                return copy_refused(r) ? 0 : r;
        /* cached stacks say "not impure": drop them */
        union_dircache_bump(u);
        *markedp = true;
        return 0;
}

int union_origin_moving(Union *u, const char *path, const char *dir)
{
        ino_t ino;
        bool marked;

        if (u->n_branches < 2 || !union_origin_get(u, path, &ino))
                return 0;
        return impure_mark(u, dir, &marked);
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

                /* an origin or impure mark describes the branch it is in */
                if (union_xattr_private(name))
                        continue;
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
        struct timespec ts[2] = {st->st_atim, st->st_mtim};
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
                        /* Start writing this step to disk now, while the next
                         * is copied: the fsync before the copy is published
                         * then waits for the tail only. Advisory: a failure
                         * here is caught by that fsync. */
                        if (sync)
                                sync_file_range(dfd, data, n, SYNC_FILE_RANGE_WRITE);
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
                size_t want =
                    size - off < UNION_COPY_CHUNK ? (size_t)(size - off) : UNION_COPY_CHUNK;
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
        static const LsCred nobody = {0, 0}; /* unused: nothing is created */
        LsFile *sf;
        int r, sfd, dfd;

        r = union_bops(u, b)->open(union_branch(u, b), src, O_RDONLY | O_NOFOLLOW, 0, &nobody, &sf);
        if (r < 0)
                return r;
        sfd = file_kernel_fd(sf);
        dfd = file_kernel_fd(df);
        r = -EOPNOTSUPP;
        if (sfd >= 0 && dfd >= 0)
                r = copy_kernel(sfd, dfd, st->st_size, u->copy_sync);
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
        LsCred cred = {st->st_uid, st->st_gid};
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
                if (r >= 0 && u->copy_sync)
                        r = df->inst->ops->fsync(df, true);
                df->inst->ops->release(df);
        } else if (S_ISLNK(st->st_mode)) {
                char target[PATH_MAX];
                ssize_t n =
                    union_bops(u, b)->readlink(union_branch(u, b), src, target, sizeof(target) - 1);

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
        bool marked = false;
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
        /* keep the inode number: the parent is marked impure first, so the
         * copy's origin is read as soon as the copy is visible */
        if (r >= 0 && origin_keep(&ent.st))
                r = impure_mark(u, parent, &marked);
        if (r >= 0 && marked)
                r = origin_set(u, tmp, union_ino(u, ent.branch, ent.st.st_ino));
        if (r >= 0) {
                /* the path now resolves to the top (union-lookcache.c) */
                union_ns_begin(u);
                r = top->ops->rename(top, tmp, path, 0);
                union_ns_end(u);
        }
        if (r < 0) {
                top->ops->unlink(top, tmp);
                goto out;
        }
        /* files opened below look again (see union.c, union_file_child) */
        atomic_fetch_add(&u->copyups, 1);
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
        TreeNames names = {0};
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
                ino_t ino = 0;

                if (r >= 0)
                        r = copy_attrs(u, ent.branch, src, &ent.st, dst);
                /* the copy keeps the number it had (dst's parent is impure) */
                if (r >= 0 && (ent.branch != 0 || !union_origin_get(u, src, &ino)))
                        ino = origin_keep(&ent.st) ? union_ino(u, ent.branch, ent.st.st_ino) : 0;
                if (r >= 0 && ino)
                        r = origin_set(u, dst, ino);
                return r;
        }
        /* its entries keep their numbers through origins: mark it impure */
        r = union_bops(u, 0)->setxattr(union_branch(u, 0), dst, UNION_XATTR_IMPURE, "", 0, 0);
        if (r < 0 && !copy_refused(r))
                return r;
        /* and it keeps its own: a directory's number is its bottom branch's,
         * which the copy in the top would change (a front keyed by numbers
         * would take the moved directory for a new one) */
        {
                UnionStack stack;

                r = union_dircache_get(u, src, &stack);
                if (r >= 0 && !(stack.n == 1 && stack.idx[0] == 0))
                        r = origin_set(u, dst, stack.ino);
                if (r < 0)
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
