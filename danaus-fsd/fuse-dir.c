/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE Directories: no opendir, no releasedir. As for files (fuse-file.c),
 * the first OPENDIR is answered with ENOSYS; the kernel then opens and
 * closes directories by itself and caches their listings across opens, as
 * FOPEN_CACHE_DIR with FOPEN_KEEP_CACHE would (it drops a listing when the
 * directory changes through it, or its mtime moves).
 *
 * A listing the kernel has not cached is read with fh 0, so each directory
 * node keeps one snapshot of its listing (the instance's readdir has no
 * cursor to resume) in its io slot, shared by every reader: a read at
 * offset 0 takes a fresh one when the directory changed since (a count
 * bumped by every entry made or removed through this front, and the
 * directory's number, mtime and ctime), a read further on pages through the
 * one it started in. Offsets carry the snapshot's
 * number in their upper 32 bits and 1 + the entry's index in the lower ones
 * ("." and ".." are entries 0 and 1); a reader whose snapshot was replaced
 * meanwhile goes on by index in the new one.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuse-front-private.h"

typedef struct DirEntry {
        size_t name_off; /* into DirSnap.names */
        ino_t ino;
        unsigned char type; /* DT_* */
} DirEntry;

typedef struct DirSnap {
        FrontFile base; /* first: the node's io slot points here; file NULL */
        uint32_t id;    /* in the offsets handed out from it */
        unsigned gen;   /* the directory's listing count it was taken at */
        struct stat st; /* the directory's attributes then (st_ino for "." and "..") */
        DirEntry *ents;
        size_t n_ents, cap_ents;
        char *names; /* NUL-terminated names, back to back */
        size_t n_names, cap_names;
} DirSnap;
static_assert(offsetof(DirSnap, base) == 0, "a FrontFile is its DirSnap");

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
        size_t n = *cap ? *cap : 64;
        void *q;

        if (need <= *cap)
                return 0;
        while (n < need)
                n *= 2;
        q = realloc(*p, n * elem);
        if (!q)
                return -ENOMEM;
        *p = q;
        *cap = n;
        return 0;
}

static int snap_fill(void *ctx, const char *name, ino_t ino, unsigned char d_type)
{
        DirSnap *d = ctx;
        size_t len = strlen(name) + 1;

        if (grow((void **)&d->ents, &d->cap_ents, d->n_ents + 1, sizeof(*d->ents)) < 0 ||
            grow((void **)&d->names, &d->cap_names, d->n_names + len, 1) < 0)
                return -ENOMEM;
        memcpy(d->names + d->n_names, name, len);
        d->ents[d->n_ents++] = (DirEntry){.name_off = d->n_names, .ino = ino, .type = d_type};
        d->n_names += len;
        return 0;
}

void front_dir_drop(FrontFile *ff)
{
        DirSnap *d = (DirSnap *)ff;

        free(d->ents);
        free(d->names);
        free(d);
}

static int snap_take(FuseFront *f, fuse_ino_t ino, DirSnap **dp)
{
        Node *node = front_node(f, ino);
        char path[PATH_MAX];
        DirSnap *d;
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->base.node = node;
        atomic_init(&d->base.refs, 1);
        /* read first: a change that lands during the walk makes the next
         * reader at offset 0 take another */
        d->gen = node_listing_gen(node);
        /* never 0, so no offset but 0 itself means "start" */
        d->id =
            (uint32_t)atomic_fetch_add_explicit(&f->n_snaps, 1, memory_order_relaxed) % INT32_MAX +
            1;
        r = front_path(f, ino, path);
        if (r >= 0)
                r = f->ops->getattr(f->inst, path, &d->st);
        if (r >= 0)
                r = f->ops->readdir(f->inst, path, snap_fill, d);
        if (r < 0) {
                front_dir_drop(&d->base);
                return r;
        }
        *dp = d;
        return 0;
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
        return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Whether d still shows directory ino: no entry made or removed through the
 * front since, and the directory its name holds is the one d was taken of,
 * unchanged (a node can outlive its directory: the number of a directory
 * removed behind a stale name may come back as a new one). */
static bool snap_current(FuseFront *f, fuse_ino_t ino, DirSnap *d)
{
        char path[PATH_MAX];
        struct stat st;

        if (d->gen != node_listing_gen(front_node(f, ino)))
                return false;
        return front_path(f, ino, path) >= 0 && f->ops->getattr(f->inst, path, &st) >= 0 &&
               st.st_ino == d->st.st_ino && st.st_dev == d->st.st_dev &&
               same_time(&st.st_mtim, &d->st.st_mtim) && same_time(&st.st_ctim, &d->st.st_ctim);
}

/* The snapshot a read at off goes on in (held). */
static int snap_get(FuseFront *f, fuse_ino_t ino, off_t off, DirSnap **dp)
{
        Node *node = front_node(f, ino);
        DirSnap *cur, *d;
        int r;

        cur = (DirSnap *)front_io_hold(node);
        /* (a file's io file here would be left from another kind of file
         * under this number: replaced below) */
        if (cur && !cur->base.file && (off != 0 || snap_current(f, ino, cur))) {
                *dp = cur;
                return 0;
        }
        r = snap_take(f, ino, &d);
        if (r < 0) {
                if (cur)
                        front_io_put(f, &cur->base);
                return r;
        }
        /* lost a race: this reader keeps its own */
        front_io_install(f, node, cur ? &cur->base : NULL, &d->base);
        *dp = d;
        return 0;
}

/* Entry i of the listing with "." and ".." in front. */
static const char *snap_entry(DirSnap *d, size_t i, struct stat *st)
{
        *st = (struct stat){.st_ino = d->st.st_ino, .st_mode = S_IFDIR};
        if (i < 2)
                return i == 0 ? "." : "..";
        i -= 2;
        st->st_ino = d->ents[i].ino;
        st->st_mode = DTTOIF(d->ents[i].type);
        return d->names + d->ents[i].name_off;
}

static void dir_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
        FuseFront *f = req_front(req);
        Node **entered = NULL; /* lookups counted for this reply */
        size_t i, pos = 0, n_entered = 0;
        DirSnap *d = NULL;
        char *buf;
        int r;

        if (off < 0) {
                reply_err(req, -EINVAL);
                return;
        }
        buf = malloc(size);
        /* a direntplus is at least 152 bytes: a bound on the lookups */
        if (!buf || (plus && !(entered = calloc(size / 152 + 1, sizeof(*entered))))) {
                free(buf);
                reply_err(req, -ENOMEM);
                return;
        }
        r = snap_get(f, ino, off, &d);
        for (i = (size_t)(off & UINT32_MAX); r >= 0 && i < d->n_ents + 2; i++) {
                struct fuse_entry_param e = {0};
                const char *name = snap_entry(d, i, &e.attr);
                off_t next = (off_t)((uint64_t)d->id << 32 | (i + 1));
                size_t len;

                if (!plus) {
                        len = fuse_add_direntry(req, buf + pos, size - pos, name, &e.attr, next);
                } else {
                        char path[PATH_MAX];
                        unsigned seq, names = node_names_seq(front_node(f, ino), name);
                        struct stat st;
                        int rl = -ENOENT;

                        /* -ESTALE (a name left meanwhile): a plain entry */
                        if (i >= 2 && front_child_path(f, ino, name, path, &seq) >= 0 &&
                            (rl = f->ops->getattr(f->inst, path, &st)) >= 0)
                                rl = front_enter(f, front_node(f, ino), name, path, seq, &names,
                                                 &st, &e);
                        if (rl == -ENOENT && i >= 2)
                                continue; /* gone since the snapshot */
                        /* e.ino 0 ("."/"..", or attributes failed): a plain
                         * entry that counts no lookup. */
                        len = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, next);
                        if (e.ino) {
                                if (len > size - pos)
                                        node_table_forget(f->nodes, front_node(f, e.ino), 1);
                                else
                                        entered[n_entered++] = front_node(f, e.ino);
                        }
                }
                if (len > size - pos)
                        break;
                pos += len;
        }
        if (d)
                front_io_put(f, &d->base);
        if (r < 0) {
                reply_err(req, r);
        } else if (fuse_reply_buf(req, buf, pos) < 0) {
                /* The kernel did not get the entries: it counts no lookups. */
                for (i = 0; i < n_entered; i++)
                        node_table_forget(f->nodes, entered[i], 1);
        }
        free(entered);
        free(buf);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        /* The kernel opens directories on its own from now on (see the
         * top), with their listings cached across opens. */
        reply_err(req, -ENOSYS);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
        dir_read(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
        dir_read(req, ino, size, off, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        /* fh 0: never opened here */
        reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
        /* The libservice interface has no directory sync; entries are as
         * durable as the backend makes them. */
        reply_err(req, 0);
}

void front_dir_ops(struct fuse_lowlevel_ops *ops)
{
        ops->opendir = op_opendir;
        ops->readdir = op_readdir;
        ops->readdirplus = op_readdirplus;
        ops->releasedir = op_releasedir;
        ops->fsyncdir = op_fsyncdir;
}
