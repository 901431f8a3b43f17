/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE Directory Handles: the first readdir of a handle takes a snapshot of
 * the listing (the instance's readdir has no cursor to resume), readdir and
 * readdirplus page through it by index, and a rewind (offset 0 again) takes a
 * fresh one. The snapshot is not taken at opendir: with FOPEN_CACHE_DIR the
 * kernel serves most listings from its own cache and never reads the handle.
 * Offsets: 1 is after ".", 2 after "..", 2 + i after entry i.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fuse-front-private.h"

typedef struct DirEntry {
        size_t name_off; /* into DirHandle.names */
        ino_t ino;
        unsigned char type; /* DT_* */
} DirEntry;

typedef struct DirHandle {
        FrontFile base;       /* first: fh and the node's list point here; file NULL */
        pthread_mutex_t lock; /* the kernel serialises per open file; this is cheap insurance */
        DirEntry *ents;
        size_t n_ents, cap_ents;
        char *names; /* NUL-terminated names, back to back */
        size_t n_names, cap_names;
        ino_t ino;    /* the directory's own, for "." and ".." */
        bool snapped; /* ents/names hold a listing */
        bool served;  /* something was read: offset 0 means rewind */
} DirHandle;
static_assert(offsetof(DirHandle, base) == 0, "a FrontFile is its DirHandle");

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

static int dir_fill(void *ctx, const char *name, ino_t ino, unsigned char d_type)
{
        DirHandle *d = ctx;
        size_t len = strlen(name) + 1;

        if (grow((void **)&d->ents, &d->cap_ents, d->n_ents + 1, sizeof(*d->ents)) < 0 ||
            grow((void **)&d->names, &d->cap_names, d->n_names + len, 1) < 0)
                return -ENOMEM;
        memcpy(d->names + d->n_names, name, len);
        d->ents[d->n_ents++] = (DirEntry){.name_off = d->n_names, .ino = ino, .type = d_type};
        d->n_names += len;
        return 0;
}

static int dir_snapshot(FuseFront *f, fuse_ino_t ino, DirHandle *d)
{
        char path[PATH_MAX];
        struct stat st;
        int r;

        d->n_ents = 0;
        d->n_names = 0;
        d->served = false;
        d->snapped = false; /* until this one succeeds */
        r = front_path(f, ino, path);
        if (r < 0)
                return r;
        r = f->ops->getattr(f->inst, path, &st);
        if (r < 0)
                return r;
        d->ino = st.st_ino;
        r = f->ops->readdir(f->inst, path, dir_fill, d);
        d->snapped = r >= 0;
        return r;
}

static DirHandle *dir_free(DirHandle *d)
{
        if (d) {
                pthread_mutex_destroy(&d->lock);
                free(d->ents);
                free(d->names);
                free(d);
        }
        return NULL;
}

static DirHandle *fi_dir(const struct fuse_file_info *fi)
{
        return (DirHandle *)(uintptr_t)fi->fh;
}

void front_dir_drop(FrontFile *ff)
{
        dir_free((DirHandle *)ff);
}

static void dir_release(FuseFront *f, DirHandle *d)
{
        node_file_remove(d->base.node, &d->base.link);
        dir_free(d);
        atomic_fetch_sub_explicit(&f->n_open, 1, memory_order_relaxed);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        FuseFront *f = req_front(req);
        DirHandle *d;

        d = calloc(1, sizeof(*d));
        if (!d) {
                reply_err(req, -ENOMEM);
                return;
        }
        pthread_mutex_init(&d->lock, NULL);
        d->base.node = front_node(f, ino);
        node_file_add(d->base.node, &d->base.link);
        fi->fh = (uint64_t)(uintptr_t)d;
        /* The kernel drops its cached listing whenever the directory
         * changes through it (or its mtime moves), so keeping it across
         * opens is coherent for everything that passes through FUSE. */
        fi->cache_readdir = f->cache.cache_readdir;
        fi->keep_cache = f->cache.cache_readdir;
        atomic_fetch_add_explicit(&f->n_open, 1, memory_order_relaxed);
        if (fuse_reply_open(req, fi) < 0)
                dir_release(f, d);
}

/* Entry i of the listing with "." and ".." in front. */
static const char *dir_entry(DirHandle *d, size_t i, struct stat *st)
{
        *st = (struct stat){.st_ino = d->ino, .st_mode = S_IFDIR};
        if (i < 2)
                return i == 0 ? "." : "..";
        i -= 2;
        st->st_ino = d->ents[i].ino;
        st->st_mode = DTTOIF(d->ents[i].type);
        return d->names + d->ents[i].name_off;
}

static void dir_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     struct fuse_file_info *fi, bool plus)
{
        FuseFront *f = req_front(req);
        DirHandle *d = fi_dir(fi);
        Node **entered = NULL; /* lookups counted for this reply */
        size_t i, pos = 0, n_entered = 0;
        char *buf;
        int r = 0;

        buf = malloc(size);
        /* a direntplus is at least 152 bytes: a bound on the lookups */
        if (!buf || (plus && !(entered = calloc(size / 152 + 1, sizeof(*entered))))) {
                free(buf);
                reply_err(req, -ENOMEM);
                return;
        }
        pthread_mutex_lock(&d->lock);
        if (!d->snapped || (off == 0 && d->served))
                r = dir_snapshot(f, ino, d);
        d->served = true;
        for (i = (size_t)off; r >= 0 && off >= 0 && i < d->n_ents + 2; i++) {
                struct fuse_entry_param e = {0};
                const char *name = dir_entry(d, i, &e.attr);
                size_t len;

                if (!plus) {
                        len = fuse_add_direntry(req, buf + pos, size - pos, name, &e.attr,
                                                (off_t)i + 1);
                } else {
                        char path[PATH_MAX];
                        unsigned seq, names = node_names_seq(front_node(f, ino));
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
                        len = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e,
                                                     (off_t)i + 1);
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
        pthread_mutex_unlock(&d->lock);
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

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
        dir_read(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
        dir_read(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
        dir_release(req_front(req), fi_dir(fi));
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
