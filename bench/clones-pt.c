// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * clones-pt: a minimal read-only FUSE server (no libfuse) that serves one
 * directory tree, used by scripts/bench-clones to measure what FUSE
 * passthrough (Linux >= 6.9) and FOPEN_DIRECT_IO do to the page cache of N
 * mounts of one image (issue 13, item 6). An experiment, not a service.
 *
 *   clones-pt --mode cache|direct|passthrough SRC MOUNTPOINT
 *
 * Mounts MOUNTPOINT itself (needs root), serves until unmounted.
 *   cache:       READ answered with pread of the source (the FUSE inode's
 *                page cache holds a copy per mount, as with fuse-overlayfs)
 *   direct:      the same with FOPEN_DIRECT_IO on every open file
 *   passthrough: FUSE_PASSTHROUGH negotiated, every open file's reply names
 *                a backing file registered with FUSE_DEV_IOC_BACKING_OPEN:
 *                reads and mmap go to the source file's own page cache
 * Built by hand: the protocol structures of <linux/fuse.h> 7.38 (Debian 12),
 * with the 7.40 passthrough fields in their padding.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* 7.40 (Linux 6.9): not in Debian 12's headers */
#ifndef FUSE_PASSTHROUGH
#define FUSE_PASSTHROUGH (1ULL << 37)
#endif
#ifndef FOPEN_PASSTHROUGH
#define FOPEN_PASSTHROUGH (1u << 7)
#endif
struct pt_backing_map {
        int32_t fd;
        uint32_t flags;
        uint64_t padding;
};
#define PT_IOC_BACKING_OPEN  _IOW(229, 1, struct pt_backing_map)
#define PT_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

enum mode { M_CACHE, M_DIRECT, M_PT };
static enum mode mode;
static int fusefd, srcfd;

/* node ids: index + 1 into paths (relative to SRC; "." is the root) */
static char **paths;
static size_t npaths, cappaths;

static uint64_t node_for(const char *p)
{
        for (size_t i = 0; i < npaths; i++)
                if (strcmp(paths[i], p) == 0)
                        return i + 1;
        if (npaths == cappaths) {
                cappaths = cappaths ? 2 * cappaths : 1024;
                paths = realloc(paths, cappaths * sizeof *paths);
                if (!paths)
                        abort();
        }
        paths[npaths] = strdup(p);
        if (!paths[npaths])
                abort();
        return ++npaths;
}

static const char *node_path(uint64_t id)
{
        return id >= 1 && id <= npaths ? paths[id - 1] : NULL;
}

static void reply(uint64_t unique, int err, const void *a, size_t alen, const void *b, size_t blen)
{
        struct fuse_out_header h = {
            .len = (uint32_t)(sizeof h + alen + blen), .error = err, .unique = unique};
        struct iovec iov[3] = {{&h, sizeof h}, {(void *)a, alen}, {(void *)b, blen}};
        if (err)
                h.len = sizeof h;
        if (writev(fusefd, iov, err ? 1 : 3) < 0 && errno != ENOENT)
                perror("clones-pt: writev");
}

static void fill_attr(struct fuse_attr *a, const struct stat *st)
{
        memset(a, 0, sizeof *a);
        a->ino = st->st_ino;
        a->size = (uint64_t)st->st_size;
        a->blocks = (uint64_t)st->st_blocks;
        a->atime = (uint64_t)st->st_atim.tv_sec;
        a->mtime = (uint64_t)st->st_mtim.tv_sec;
        a->ctime = (uint64_t)st->st_ctim.tv_sec;
        a->mode = st->st_mode;
        a->nlink = (uint32_t)st->st_nlink;
        a->uid = st->st_uid;
        a->gid = st->st_gid;
        a->blksize = 4096;
}

struct dirbuf {
        char *buf;
        size_t len;
};

int main(int argc, char **argv)
{
        if (argc != 5 || strcmp(argv[1], "--mode") != 0) {
                fprintf(stderr,
                        "usage: clones-pt --mode cache|direct|passthrough SRC MOUNTPOINT\n");
                return 2;
        }
        mode = strcmp(argv[2], "passthrough") == 0 ? M_PT
               : strcmp(argv[2], "direct") == 0    ? M_DIRECT
                                                   : M_CACHE;
        srcfd = open(argv[3], O_PATH | O_DIRECTORY | O_CLOEXEC);
        fusefd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
        if (srcfd < 0 || fusefd < 0) {
                perror("clones-pt: open");
                return 1;
        }
        char opts[256];
        snprintf(opts, sizeof opts,
                 "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions",
                 fusefd);
        if (mount("clones-pt", argv[4], "fuse.clones-pt", MS_NOSUID | MS_NODEV | MS_RDONLY, opts) <
            0) {
                perror("clones-pt: mount");
                return 1;
        }
        node_for(".");
        size_t bufsz = (1u << 20) + 4096;
        char *in = malloc(bufsz);
        char *out = malloc(1u << 20);
        if (!in || !out)
                return 1;
        for (;;) {
                ssize_t n = read(fusefd, in, bufsz);
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN || errno == ENOENT)
                                continue;
                        if (errno == ENODEV) /* unmounted */
                                return 0;
                        perror("clones-pt: read");
                        return 1;
                }
                struct fuse_in_header *h = (void *)in;
                void *arg = in + sizeof *h;
                const char *p = node_path(h->nodeid);
                struct stat st;
                switch (h->opcode) {
                case FUSE_INIT: {
                        struct fuse_init_in *ii = arg;
                        struct fuse_init_out o = {0};
                        uint64_t want =
                            FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES | FUSE_INIT_EXT;
                        if (mode == M_PT)
                                want |= FUSE_PASSTHROUGH;
                        uint64_t have = ii->flags;
                        if (ii->flags & FUSE_INIT_EXT)
                                have |= (uint64_t)ii->flags2 << 32;
                        if (mode == M_PT && !(have & FUSE_PASSTHROUGH))
                                fprintf(stderr, "clones-pt: kernel offers no passthrough\n");
                        want &= have;
                        o.major = FUSE_KERNEL_VERSION;
                        o.minor = 40;
                        o.max_readahead = ii->max_readahead;
                        o.flags = (uint32_t)want;
                        o.flags2 = (uint32_t)(want >> 32);
                        o.max_background = 16;
                        o.congestion_threshold = 12;
                        o.max_write = 1u << 20;
                        o.max_pages = 256;
                        o.time_gran = 1;
                        o.unused[0] = 1; /* 7.40: max_stack_depth (backing on a depth-0 fs) */
                        reply(h->unique, 0, &o, sizeof o, NULL, 0);
                        break;
                }
                case FUSE_LOOKUP: {
                        char q[4096];
                        snprintf(q, sizeof q, "%s/%s", p ? p : ".", (char *)arg);
                        if (!p || fstatat(srcfd, q, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                                reply(h->unique, -ENOENT, NULL, 0, NULL, 0);
                                break;
                        }
                        struct fuse_entry_out e = {0};
                        e.nodeid = node_for(q);
                        e.attr_valid = e.entry_valid = 86400;
                        fill_attr(&e.attr, &st);
                        reply(h->unique, 0, &e, sizeof e, NULL, 0);
                        break;
                }
                case FUSE_GETATTR: {
                        if (!p || fstatat(srcfd, p, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                                reply(h->unique, -ENOENT, NULL, 0, NULL, 0);
                                break;
                        }
                        struct fuse_attr_out a = {0};
                        a.attr_valid = 86400;
                        fill_attr(&a.attr, &st);
                        reply(h->unique, 0, &a, sizeof a, NULL, 0);
                        break;
                }
                case FUSE_OPEN: {
                        int fd = p ? openat(srcfd, p, O_RDONLY | O_CLOEXEC) : -1;
                        if (fd < 0) {
                                reply(h->unique, -errno, NULL, 0, NULL, 0);
                                break;
                        }
                        struct fuse_open_out o = {.fh = (uint64_t)fd};
                        if (mode == M_DIRECT)
                                o.open_flags = FOPEN_DIRECT_IO;
                        if (mode == M_PT) {
                                struct pt_backing_map m = {.fd = fd};
                                int id = ioctl(fusefd, PT_IOC_BACKING_OPEN, &m);
                                if (id < 0) {
                                        int e = errno;
                                        fprintf(stderr, "clones-pt: BACKING_OPEN: %s\n",
                                                strerror(e));
                                        close(fd);
                                        reply(h->unique, -e, NULL, 0, NULL, 0);
                                        break;
                                }
                                o.open_flags = FOPEN_PASSTHROUGH;
                                o.padding = (uint32_t)id; /* 7.40: backing_id */
                                o.fh = (uint64_t)fd | ((uint64_t)id << 32);
                        }
                        reply(h->unique, 0, &o, sizeof o, NULL, 0);
                        break;
                }
                case FUSE_READ: {
                        struct fuse_read_in *r = arg;
                        size_t sz = r->size > (1u << 20) ? (1u << 20) : r->size;
                        ssize_t got = pread((int)(uint32_t)r->fh, out, sz, (off_t)r->offset);
                        if (got < 0)
                                reply(h->unique, -errno, NULL, 0, NULL, 0);
                        else
                                reply(h->unique, 0, out, (size_t)got, NULL, 0);
                        break;
                }
                case FUSE_RELEASE: {
                        struct fuse_release_in *r = arg;
                        if (mode == M_PT) {
                                uint32_t id = (uint32_t)(r->fh >> 32);
                                ioctl(fusefd, PT_IOC_BACKING_CLOSE, &id);
                        }
                        close((int)(uint32_t)r->fh);
                        reply(h->unique, 0, NULL, 0, NULL, 0);
                        break;
                }
                case FUSE_OPENDIR: {
                        int fd = p ? openat(srcfd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
                        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
                        if (!d) {
                                reply(h->unique, -ENOENT, NULL, 0, NULL, 0);
                                break;
                        }
                        struct dirbuf *db = calloc(1, sizeof *db);
                        size_t cap = 0;
                        struct dirent *de;
                        while (db && (de = readdir(d))) {
                                size_t nl = strlen(de->d_name);
                                size_t rl = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + nl);
                                if (db->len + rl > cap) {
                                        cap = (cap + rl) * 2;
                                        db->buf = realloc(db->buf, cap);
                                        if (!db->buf)
                                                abort();
                                }
                                struct fuse_dirent *fd2 = (void *)(db->buf + db->len);
                                memset(fd2, 0, rl);
                                fd2->ino = de->d_ino;
                                fd2->off = db->len + rl;
                                fd2->namelen = (uint32_t)nl;
                                fd2->type = de->d_type;
                                memcpy(fd2->name, de->d_name, nl);
                                db->len += rl;
                        }
                        closedir(d);
                        struct fuse_open_out o = {.fh = (uint64_t)(uintptr_t)db};
                        reply(h->unique, 0, &o, sizeof o, NULL, 0);
                        break;
                }
                case FUSE_READDIR: {
                        struct fuse_read_in *r = arg;
                        struct dirbuf *db = (void *)(uintptr_t)r->fh;
                        size_t off = r->offset, end = off;
                        /* whole entries only, up to r->size bytes */
                        while (end < db->len) {
                                struct fuse_dirent *e = (void *)(db->buf + end);
                                size_t next = e->off;
                                if (next - off > r->size)
                                        break;
                                end = next;
                        }
                        reply(h->unique, 0, db->buf + off, end - off, NULL, 0);
                        break;
                }
                case FUSE_RELEASEDIR: {
                        struct fuse_release_in *r = arg;
                        struct dirbuf *db = (void *)(uintptr_t)r->fh;
                        free(db->buf);
                        free(db);
                        reply(h->unique, 0, NULL, 0, NULL, 0);
                        break;
                }
                case FUSE_STATFS: {
                        struct fuse_statfs_out s = {0};
                        s.st.bsize = s.st.frsize = 4096;
                        s.st.namelen = 255;
                        reply(h->unique, 0, &s, sizeof s, NULL, 0);
                        break;
                }
                case FUSE_FORGET:
                case FUSE_BATCH_FORGET:
                        break; /* no reply */
                case FUSE_FLUSH:
                        reply(h->unique, 0, NULL, 0, NULL, 0);
                        break;
                case FUSE_DESTROY:
                        reply(h->unique, 0, NULL, 0, NULL, 0);
                        return 0;
                default:
                        reply(h->unique, -ENOSYS, NULL, 0, NULL, 0);
                        break;
                }
        }
}
