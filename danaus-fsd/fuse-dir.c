/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE Directories: no opendir, no releasedir. As for files (fuse-file.c),
 * the first OPENDIR is answered with ENOSYS; the kernel then opens and
 * closes directories by itself and caches their listings across opens, as
 * FOPEN_CACHE_DIR with FOPEN_KEEP_CACHE would (it drops a listing when the
 * directory changes through it, or its mtime moves).
 *
 * A listing the kernel has not cached is read with fh 0 from the core's
 * listing snapshots (core_dir_snap): a read at offset 0 gets the
 * directory's current listing (retaken when the directory changed), a read
 * further on the snapshot it started in. Offsets carry the snapshot's
 * generation in their upper 32 bits and 1 + the entry's index in the lower
 * ones ("." and ".." are entries 0 and 1), so two readers of one directory
 * never disturb each other, and a seekdir back to a telldir position goes
 * on in the listing it came from. When the core no longer keeps that
 * snapshot, the reader goes on by index in the current one (what POSIX
 * allows for a directory changed since).
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuse-front-private.h"

/* The snapshot a read at off goes on in (held). */
static int snap_get(FuseFront *f, CoreNode *dir, off_t off, CoreDirSnap **snapp)
{
        uint32_t gen = (uint32_t)((uint64_t)off >> 32);
        int r;

        if (off != 0 && gen != 0) {
                r = core_dir_snap(f->cf, NULL, dir, gen, snapp);
                if (r != -ESTALE)
                        return r;
        }
        return core_dir_snap(f->cf, NULL, dir, 0, snapp);
}

/* Entry i of the listing with "." and ".." in front. */
static const char *snap_entry(CoreDirSnap *d, size_t i, struct stat *st)
{
        unsigned char type;
        ino_t ino;
        const char *name;

        *st = (struct stat){.st_ino = core_dir_snap_stat(d)->st_ino, .st_mode = S_IFDIR};
        if (i < 2)
                return i == 0 ? "." : "..";
        name = core_dir_snap_entry(d, i - 2, &ino, &type);
        st->st_ino = ino;
        st->st_mode = DTTOIF(type);
        return name;
}

static void dir_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
        FuseFront *f = req_front(req);
        CoreNode *dir = front_node(f, ino);
        CoreNode **entered = NULL; /* references counted for this reply */
        size_t i, n, pos = 0, n_entered = 0;
        CoreDirSnap *d = NULL;
        uint32_t gen;
        char *buf;
        int r;

        if (off < 0) {
                reply_err(req, -EINVAL);
                return;
        }
        buf = malloc(size ? size : 1);
        /* a direntplus is at least 152 bytes: a bound on the lookups */
        if (!buf || (plus && !(entered = calloc(size / 152 + 1, sizeof(*entered))))) {
                free(buf);
                reply_err(req, -ENOMEM);
                return;
        }
        r = snap_get(f, dir, off, &d);
        if (r < 0) {
                free(entered);
                free(buf);
                reply_err(req, r);
                return;
        }
        gen = core_dir_snap_gen(d);
        n = core_dir_snap_count(d) + 2;
        for (i = (size_t)(off & UINT32_MAX); i < n; i++) {
                struct fuse_entry_param e = {0};
                const char *name = snap_entry(d, i, &e.attr);
                off_t next = (off_t)((uint64_t)gen << 32 | (i + 1));
                size_t len;

                if (!plus) {
                        len = fuse_add_direntry(req, buf + pos, size - pos, name, &e.attr, next);
                } else {
                        CoreNode *node = NULL;
                        struct stat st;
                        int rl = -ENOENT;

                        if (i >= 2)
                                rl = core_lookup(f->cf, NULL, dir, name, &node, &st);
                        if (rl == -ENOENT && i >= 2)
                                continue; /* gone since the snapshot */
                        /* e.ino 0 ("."/"..", or attributes failed): a plain
                         * entry that counts no lookup */
                        if (rl >= 0)
                                front_entry(f, node, &st, &e);
                        len = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, next);
                        if (rl >= 0) {
                                if (len > size - pos)
                                        core_forget(f->cf, node, 1);
                                else
                                        entered[n_entered++] = node;
                        }
                }
                if (len > size - pos)
                        break;
                pos += len;
        }
        core_dir_snap_unref(d);
        if (fuse_reply_buf(req, buf, pos) < 0) {
                /* The kernel did not get the entries: it counts no lookups. */
                for (i = 0; i < n_entered; i++)
                        core_forget(f->cf, entered[i], 1);
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
        FuseFront *f = req_front(req);

        reply_err(req, core_fsyncdir(f->cf, front_node(f, ino), datasync != 0));
}

void front_dir_ops(struct fuse_lowlevel_ops *ops)
{
        ops->opendir = op_opendir;
        ops->readdir = op_readdir;
        ops->readdirplus = op_readdirplus;
        ops->releasedir = op_releasedir;
        ops->fsyncdir = op_fsyncdir;
}
