// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * difftest: differential random tester for filesystem trees.
 *
 *   difftest --seed N [--ops COUNT] [--verbose] [--check-every K] DIR_A DIR_B
 *   difftest --prefill --seed N [--whiteouts LOWER] DIR
 *
 * The first form applies one seeded random sequence of operations to two
 * directory trees (A: the filesystem under test, e.g. a Danaus or overlayfs
 * mount; B: a plain directory holding the expected state) and compares every
 * result: return value, errno, bytes read, attributes, and, every K
 * operations and at the end, the whole trees. It prints the first divergence
 * (seed, op index, op, both results) and exits 1; on agreement it prints a
 * summary line and exits 0. Exit 2 is a usage/setup error or a hang.
 *
 * The second form fills DIR with a random tree (files, dirs, symlinks, user.*
 * xattrs) drawn from the same small name pool; with --whiteouts LOWER it also
 * adds OCI whiteouts (.wh.NAME) for names that exist in the directory LOWER
 * and opaque markers (.wh..wh..opq) over LOWER's directories, so it can build
 * image layers for a union.
 *
 * Known legitimate differences, and only these, are allowed (see "allow:"):
 *  - rename(2) of a directory may fail with EXDEV on A (a union may refuse to
 *    rename a directory that has lower-layer content, as overlayfs does
 *    without redirect_dir); B is then not touched, so the trees stay equal,
 *    and the count is reported.
 *  - st_nlink and st_size of directories are filesystem-specific.
 *  - st_dev / st_ino are never compared; atime and ctime are never compared;
 *    mtime is compared only for inodes whose mtime was set explicitly with
 *    utimensat and not legitimately changed since.
 *  - rename over / rmdir of a non-empty directory may fail with ENOTEMPTY or
 *    EEXIST (POSIX allows both).
 *  - xattr listings are compared on the user.* namespace only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

/* snprintf that refuses to truncate (paths here are short; a cut one would
 * silently name another file) */
__attribute__((format(printf, 3, 4))) static int xsnprintf(char *out, size_t n, const char *fmt,
                                                           ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = vsnprintf(out, n, fmt, ap);
        va_end(ap);
        if (r < 0 || (size_t)r >= n) {
                fprintf(stderr, "difftest: internal error: string too long for its buffer: %s\n",
                        out);
                exit(2);
        }
        return r;
}

/* ---- random numbers (splitmix64: same sequence everywhere) ---- */
static uint64_t rng_state;
static uint64_t rnd(void)
{
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}
static unsigned rn(unsigned n)
{
        return n ? (unsigned)(rnd() % n) : 0;
}
static bool chance(unsigned pct)
{
        return rn(100) < pct;
}

/* ---- global state ---- */
struct side {
        const char *dir;
        int root;
};
static struct side S[2];
static uint64_t seed;
static long nops = 2000, opidx = -1;
static bool verbose;
static long check_every = 1000;
static unsigned op_timeout = 60;
static char cur_op[1024];

struct res {
        long ret;
        int err;
};
#define RES(expr)                                                                                  \
        ({                                                                                         \
                errno = 0;                                                                         \
                long _r = (long)(expr);                                                            \
                (struct res){_r, _r < 0 ? errno : 0};                                              \
        })

static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
#define NNAMES (sizeof(names) / sizeof(names[0]))
static const mode_t file_modes[] = {0644, 0600, 0755, 0444, 0400, 0640, 0700, 0777, 0000, 0664};
static const mode_t dir_modes[] = {0755, 0700, 0775, 0555, 0777, 0750};
static const char *const xnames[] = {"user.x", "user.y", "user.zz", "user.a.long.attribute.name"};

/* ---- reporting ---- */
static const char *errname(int e)
{
        static char buf[64];
        const char *n = strerrorname_np(e);
        if (n)
                return n;
        xsnprintf(buf, sizeof buf, "errno %d", e);
        return buf;
}

static void fmt_res(char *buf, size_t n, struct res r)
{
        if (r.ret < 0)
                xsnprintf(buf, n, "%ld (%s)", r.ret, errname(r.err));
        else
                xsnprintf(buf, n, "%ld", r.ret);
}

__attribute__((format(printf, 1, 2), noreturn)) static void diverge(const char *fmt, ...)
{
        va_list ap;
        fflush(stdout);
        fprintf(stderr, "difftest: DIVERGENCE seed=%" PRIu64 " op=%ld: %s\n  ", seed, opidx,
                cur_op);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\n  (A = %s, B = %s)\n", S[0].dir, S[1].dir);
        exit(1);
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
        va_list ap;
        fprintf(stderr, "difftest: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(2);
}

static void on_alarm(int sig)
{
        (void)sig;
        static const char m[] = "difftest: HANG: operation did not return in time: ";
        ssize_t r = write(2, m, sizeof m - 1);
        r = write(2, cur_op, strlen(cur_op));
        r = write(2, "\n", 1);
        (void)r;
        _exit(2);
}

__attribute__((format(printf, 1, 2))) static void begin(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cur_op, sizeof cur_op, fmt, ap);
        va_end(ap);
}

static void verbose_res(const struct res r[2])
{
        if (!verbose)
                return;
        char a[128], b[128];
        fmt_res(a, sizeof a, r[0]);
        fmt_res(b, sizeof b, r[1]);
        printf("%6ld %-60s A=%s B=%s\n", opidx, cur_op, a, b);
}

/* allow: ENOTEMPTY and EEXIST are both POSIX answers for a non-empty
 * directory (rename over it, rmdir of it). */
static bool same_err(int a, int b, bool notempty_eq)
{
        if (a == b)
                return true;
        if (notempty_eq && (a == ENOTEMPTY || a == EEXIST) && (b == ENOTEMPTY || b == EEXIST))
                return true;
        return false;
}

static void check_res2(const struct res r[2], bool notempty_eq)
{
        verbose_res(r);
        if (r[0].ret != r[1].ret || (r[0].ret < 0 && !same_err(r[0].err, r[1].err, notempty_eq))) {
                char a[128], b[128];
                fmt_res(a, sizeof a, r[0]);
                fmt_res(b, sizeof b, r[1]);
                diverge("A returned %s, B returned %s", a, b);
        }
}
static void check_res(const struct res r[2])
{
        check_res2(r, false);
}

/* ---- per-op counters ---- */
enum {
        OP_CREATE,
        OP_OPEN,
        OP_CLOSE,
        OP_WRITE,
        OP_READ,
        OP_LSEEK,
        OP_TRUNCATE,
        OP_FTRUNCATE,
        OP_FSTAT,
        OP_FSYNC,
        OP_RENAME,
        OP_LINK,
        OP_SYMLINK,
        OP_READLINK,
        OP_UNLINK,
        OP_MKDIR,
        OP_RMDIR,
        OP_CHMOD,
        OP_UTIMENS,
        OP_SETXATTR,
        OP_GETXATTR,
        OP_LISTXATTR,
        OP_REMOVEXATTR,
        OP_READDIR,
        OP_STAT,
        OP__N
};
static const char *const opnames[OP__N] = {
    "create",    "open",        "close",   "write",  "read",    "lseek",    "truncate",
    "ftruncate", "fstat",       "fsync",   "rename", "link",    "symlink",  "readlink",
    "unlink",    "mkdir",       "rmdir",   "chmod",  "utimens", "setxattr", "getxattr",
    "listxattr", "removexattr", "readdir", "stat",
};
static const unsigned opweights[OP__N] = {
    [OP_CREATE] = 10,  [OP_OPEN] = 5,      [OP_CLOSE] = 5,       [OP_WRITE] = 12,
    [OP_READ] = 10,    [OP_LSEEK] = 2,     [OP_TRUNCATE] = 3,    [OP_FTRUNCATE] = 3,
    [OP_FSTAT] = 3,    [OP_FSYNC] = 1,     [OP_RENAME] = 7,      [OP_LINK] = 3,
    [OP_SYMLINK] = 3,  [OP_READLINK] = 2,  [OP_UNLINK] = 6,      [OP_MKDIR] = 6,
    [OP_RMDIR] = 4,    [OP_CHMOD] = 3,     [OP_UTIMENS] = 3,     [OP_SETXATTR] = 3,
    [OP_GETXATTR] = 2, [OP_LISTXATTR] = 2, [OP_REMOVEXATTR] = 2, [OP_READDIR] = 4,
    [OP_STAT] = 6,
};
static long opcount[OP__N];
static long exdev_count, treechecks;

/* ---- known paths (biases the name choice towards things that exist) ---- */
#define MAXKNOWN 2048
static char *known[MAXKNOWN];
static unsigned nknown;

static unsigned depth_of(const char *p)
{
        unsigned d = 1;
        for (; *p; p++)
                d += *p == '/';
        return d;
}

static void known_add(const char *p)
{
        if (!strcmp(p, ".") || strlen(p) > 200)
                return;
        for (unsigned i = 0; i < nknown; i++)
                if (!strcmp(known[i], p))
                        return;
        if (nknown < MAXKNOWN) {
                known[nknown++] = strdup(p);
        } else {
                unsigned i = rn(MAXKNOWN);
                free(known[i]);
                known[i] = strdup(p);
        }
}

static void rand_path(char *out, size_t n)
{
        unsigned k = rn(100);
        if (k < 40 && nknown) {
                xsnprintf(out, n, "%s", known[rn(nknown)]);
        } else if (k < 85 && nknown) {
                const char *base = known[rn(nknown)];
                if (depth_of(base) >= 3 || chance(25))
                        xsnprintf(out, n, "%s", names[rn(NNAMES)]);
                else
                        xsnprintf(out, n, "%s/%s", base, names[rn(NNAMES)]);
        } else {
                unsigned d = 1 + rn(3);
                size_t len = 0;
                out[0] = 0;
                for (unsigned i = 0; i < d; i++)
                        len +=
                            xsnprintf(out + len, n - len, "%s%s", i ? "/" : "", names[rn(NNAMES)]);
        }
}

/* A symlink target that can never leave the tree wherever the link ends up:
 * relative, without "..". */
static void rand_target(char *out, size_t n)
{
        if (chance(5))
                xsnprintf(out, n, ".");
        else
                rand_path(out, n);
}

static void parent_of(const char *p, char *out, size_t n)
{
        const char *s = strrchr(p, '/');
        if (!s)
                xsnprintf(out, n, ".");
        else
                xsnprintf(out, n, "%.*s", (int)(s - p), p);
}

/* ---- mtime pins, keyed by B's inode (B is a plain directory) ---- */
struct pin {
        dev_t dev;
        ino_t ino;
        struct timespec mtime;
};
#define MAXPINS 64
static struct pin pins[MAXPINS];
static unsigned npins;

static struct pin *pin_find(const struct stat *st)
{
        for (unsigned i = 0; i < npins; i++)
                if (pins[i].dev == st->st_dev && pins[i].ino == st->st_ino)
                        return &pins[i];
        return NULL;
}
static void pin_drop_st(const struct stat *st)
{
        struct pin *p = pin_find(st);
        if (p)
                *p = pins[--npins];
}
static void pin_set(const struct stat *st)
{
        struct pin *p = pin_find(st);
        if (!p) {
                if (npins == MAXPINS)
                        pins[rn(MAXPINS)] = pins[--npins];
                p = &pins[npins++];
        }
        p->dev = st->st_dev;
        p->ino = st->st_ino;
        p->mtime = st->st_mtim;
}
static void unpin_path(const char *p, bool follow)
{
        struct stat st;
        if (fstatat(S[1].root, p, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) == 0)
                pin_drop_st(&st);
}
static void unpin_parent(const char *p)
{
        char par[PATH_MAX];
        parent_of(p, par, sizeof par);
        unpin_path(par, true);
        /* the parent path may go through symlinks: also drop the link itself */
        unpin_path(par, false);
}
static void unpin_fd(int fdb)
{
        struct stat st;
        if (fstat(fdb, &st) == 0)
                pin_drop_st(&st);
}

/* ---- open files, used by both sides in lockstep ---- */
#define MAXFD 8
struct ofd {
        int fd[2];
        int flags;
        char path[256];
};
static struct ofd ofds[MAXFD];
static unsigned nofd;

static void ofd_close(unsigned i, bool compare)
{
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(close(ofds[i].fd[s]));
        if (compare)
                check_res(r);
        ofds[i] = ofds[--nofd];
}

static void ofd_add(const int fd[2], int flags, const char *path)
{
        if (nofd == MAXFD) {
                unsigned i = rn(MAXFD);
                begin("close #%u (%s) to make room", i, ofds[i].path);
                ofd_close(i, true);
        }
        struct ofd *o = &ofds[nofd++];
        o->fd[0] = fd[0];
        o->fd[1] = fd[1];
        o->flags = flags;
        xsnprintf(o->path, sizeof o->path, "%s", path);
}

static const char *flagstr(int f)
{
        static char b[128];
        int acc = f & O_ACCMODE;
        xsnprintf(b, sizeof b, "%s%s%s%s%s%s%s",
                  acc == O_RDONLY   ? "O_RDONLY"
                  : acc == O_WRONLY ? "O_WRONLY"
                                    : "O_RDWR",
                  f & O_CREAT ? "|O_CREAT" : "", f & O_EXCL ? "|O_EXCL" : "",
                  f & O_TRUNC ? "|O_TRUNC" : "", f & O_APPEND ? "|O_APPEND" : "",
                  f & O_DIRECTORY ? "|O_DIRECTORY" : "", f & O_NOFOLLOW ? "|O_NOFOLLOW" : "");
        return b;
}

/* ---- attribute comparison ---- */
static void cmp_stat(const char *what, const struct stat *a, const struct stat *b)
{
        if (a->st_mode != b->st_mode)
                diverge("%s: st_mode A=0%o B=0%o", what, a->st_mode, b->st_mode);
        if (a->st_uid != b->st_uid || a->st_gid != b->st_gid)
                diverge("%s: owner A=%u:%u B=%u:%u", what, a->st_uid, a->st_gid, b->st_uid,
                        b->st_gid);
        /* allow: st_size and st_nlink of directories are filesystem-specific */
        if (!S_ISDIR(b->st_mode)) {
                if (a->st_size != b->st_size)
                        diverge("%s: st_size A=%jd B=%jd", what, (intmax_t)a->st_size,
                                (intmax_t)b->st_size);
                if (a->st_nlink != b->st_nlink)
                        diverge("%s: st_nlink A=%ju B=%ju", what, (uintmax_t)a->st_nlink,
                                (uintmax_t)b->st_nlink);
        }
        if ((S_ISCHR(b->st_mode) || S_ISBLK(b->st_mode)) && a->st_rdev != b->st_rdev)
                diverge("%s: st_rdev differs", what);
        /* mtime: only where it was pinned by an explicit utimensat */
        struct pin *p = pin_find(b);
        if (p &&
            (a->st_mtim.tv_sec != b->st_mtim.tv_sec || a->st_mtim.tv_nsec != b->st_mtim.tv_nsec))
                diverge("%s: mtime (set explicitly earlier) A=%jd.%09ld B=%jd.%09ld", what,
                        (intmax_t)a->st_mtim.tv_sec, a->st_mtim.tv_nsec,
                        (intmax_t)b->st_mtim.tv_sec, b->st_mtim.tv_nsec);
}

/* ---- directory listings ---- */
struct dent {
        char name[256];
        unsigned char type;
};
struct dlist {
        struct dent *v;
        size_t n, cap;
};
static int dent_cmp(const void *a, const void *b)
{
        return strcmp(((const struct dent *)a)->name, ((const struct dent *)b)->name);
}
/* Lists DIR (an fd the list takes over). Returns 0 or -errno. */
static int list_fd(int fd, struct dlist *l)
{
        l->n = 0;
        DIR *d = fdopendir(fd);
        if (!d) {
                int e = errno;
                close(fd);
                return -e;
        }
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (l->n == l->cap) {
                        l->cap = l->cap ? l->cap * 2 : 32;
                        l->v = realloc(l->v, l->cap * sizeof *l->v);
                        if (!l->v)
                                die("out of memory");
                }
                xsnprintf(l->v[l->n].name, sizeof l->v[l->n].name, "%s", de->d_name);
                l->v[l->n].type = de->d_type;
                l->n++;
                errno = 0;
        }
        int e = errno;
        closedir(d);
        if (e)
                return -e;
        if (l->n) /* an empty directory has no array: qsort(NULL) is undefined */
                qsort(l->v, l->n, sizeof *l->v, dent_cmp);
        return 0;
}

static void cmp_lists(const char *path, const struct dlist *a, const struct dlist *b)
{
        size_t i = 0, j = 0;
        while (i < a->n || j < b->n) {
                int c = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->v[i].name, b->v[j].name);
                if (c < 0)
                        diverge("readdir %s: \"%s\" only in A", path, a->v[i].name);
                if (c > 0)
                        diverge("readdir %s: \"%s\" only in B", path, b->v[j].name);
                if (a->v[i].type != DT_UNKNOWN && b->v[j].type != DT_UNKNOWN &&
                    a->v[i].type != b->v[j].type)
                        diverge("readdir %s: d_type of \"%s\" A=%u B=%u", path, a->v[i].name,
                                a->v[i].type, b->v[j].type);
                i++, j++;
        }
}

/* ---- xattrs (user.* only) ---- */
struct xlist {
        char buf[65536];
        const char *names[512];
        int n;
};
static int xcmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}
static long xlist_get(int root, const char *path, bool follow, struct xlist *x)
{
        char proc[PATH_MAX];
        /* path relative to a root fd: go through /proc/self/fd */
        xsnprintf(proc, sizeof proc, "/proc/self/fd/%d/%s", root, path);
        long r = follow ? listxattr(proc, x->buf, sizeof x->buf)
                        : llistxattr(proc, x->buf, sizeof x->buf);
        x->n = 0;
        if (r < 0)
                return -errno;
        for (long off = 0; off < r && x->n < 512; off += strlen(x->buf + off) + 1)
                if (!strncmp(x->buf + off, "user.", 5))
                        x->names[x->n++] = x->buf + off;
        qsort(x->names, x->n, sizeof x->names[0], xcmp);
        return r;
}

static void xpath(char *out, size_t n, int s, const char *path)
{
        xsnprintf(out, n, "/proc/self/fd/%d/%s", S[s].root, path);
}

static void cmp_xattrs(const char *path)
{
        static struct xlist xa, xb;
        long ra = xlist_get(S[0].root, path, false, &xa);
        long rb = xlist_get(S[1].root, path, false, &xb);
        if ((ra < 0) != (rb < 0))
                diverge("llistxattr %s: A=%ld B=%ld", path, ra, rb);
        if (ra < 0)
                return;
        for (int i = 0; i < xa.n || i < xb.n; i++) {
                if (i >= xa.n || i >= xb.n || strcmp(xa.names[i], xb.names[i]))
                        diverge("xattrs of %s: A has %s, B has %s", path,
                                i < xa.n ? xa.names[i] : "(end)", i < xb.n ? xb.names[i] : "(end)");
                static char va[65536], vb[65536];
                char pa[PATH_MAX], pb[PATH_MAX];
                xpath(pa, sizeof pa, 0, path);
                xpath(pb, sizeof pb, 1, path);
                ssize_t la = lgetxattr(pa, xa.names[i], va, sizeof va);
                ssize_t lb = lgetxattr(pb, xb.names[i], vb, sizeof vb);
                if (la != lb || (la > 0 && memcmp(va, vb, la)))
                        diverge("xattr %s of %s: values differ (A len %zd, B len %zd)", xa.names[i],
                                path, la, lb);
        }
}

/* ---- whole-tree comparison ---- */
static void join(char *out, size_t n, const char *dir, const char *name)
{
        if (!strcmp(dir, "."))
                xsnprintf(out, n, "%s", name);
        else
                xsnprintf(out, n, "%s/%s", dir, name);
}

static void cmp_file_data(const char *path)
{
        int fa = openat(S[0].root, path, O_RDONLY | O_NOFOLLOW);
        int fb = openat(S[1].root, path, O_RDONLY | O_NOFOLLOW);
        if ((fa < 0) != (fb < 0))
                diverge("open %s for reading: A=%d B=%d", path, fa, fb);
        if (fa < 0)
                return;
        static char ba[65536], bb[65536];
        off_t off = 0;
        for (;;) {
                ssize_t la = pread(fa, ba, sizeof ba, off), lb = pread(fb, bb, sizeof bb, off);
                if (la != lb)
                        diverge("content of %s: read at %jd gave A=%zd B=%zd", path, (intmax_t)off,
                                la, lb);
                if (la <= 0)
                        break;
                if (memcmp(ba, bb, la)) {
                        ssize_t k = 0;
                        while (ba[k] == bb[k])
                                k++;
                        diverge("content of %s differs at byte %jd (A=0x%02x B=0x%02x)", path,
                                (intmax_t)(off + k), (unsigned char)ba[k], (unsigned char)bb[k]);
                }
                off += la;
        }
        close(fa);
        close(fb);
}

static void cmp_tree(const char *dir)
{
        struct dlist la = {0}, lb = {0};
        int fa = openat(S[0].root, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        int fb = openat(S[1].root, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (fa < 0 || fb < 0)
                diverge("tree: opening directory %s: A=%d B=%d (%s)", dir, fa, fb, strerror(errno));
        int ea = list_fd(fa, &la), eb = list_fd(fb, &lb);
        if (ea || eb)
                diverge("tree: listing %s: A=%d B=%d", dir, ea, eb);
        char what[PATH_MAX + 16];
        xsnprintf(what, sizeof what, "tree %s", dir);
        cmp_lists(what, &la, &lb);
        for (size_t i = 0; i < lb.n; i++) {
                char p[PATH_MAX];
                struct stat sa, sb;
                join(p, sizeof p, dir, lb.v[i].name);
                if (fstatat(S[0].root, p, &sa, AT_SYMLINK_NOFOLLOW) ||
                    fstatat(S[1].root, p, &sb, AT_SYMLINK_NOFOLLOW))
                        diverge("tree: lstat %s failed (%s)", p, strerror(errno));
                xsnprintf(what, sizeof what, "tree %s", p);
                cmp_stat(what, &sa, &sb);
                if (S_ISLNK(sb.st_mode)) {
                        char ta[PATH_MAX], tb[PATH_MAX];
                        ssize_t na = readlinkat(S[0].root, p, ta, sizeof ta);
                        ssize_t nb = readlinkat(S[1].root, p, tb, sizeof tb);
                        if (na != nb || (na > 0 && memcmp(ta, tb, na)))
                                diverge("tree: symlink target of %s: A=\"%.*s\" B=\"%.*s\"", p,
                                        (int)(na > 0 ? na : 0), ta, (int)(nb > 0 ? nb : 0), tb);
                } else if (S_ISREG(sb.st_mode)) {
                        cmp_file_data(p);
                }
                cmp_xattrs(p);
                if (S_ISDIR(sb.st_mode))
                        cmp_tree(p);
        }
        free(la.v);
        free(lb.v);
}

static void tree_check(const char *when)
{
        begin("whole-tree comparison (%s)", when);
        cmp_tree(".");
        treechecks++;
}

static void scan_known(const char *dir)
{
        struct dlist l = {0};
        int fd = openat(S[1].root, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (fd < 0 || list_fd(fd, &l))
                return;
        for (size_t i = 0; i < l.n; i++) {
                char p[PATH_MAX];
                join(p, sizeof p, dir, l.v[i].name);
                known_add(p);
                if (l.v[i].type == DT_DIR && depth_of(p) < 6)
                        scan_known(p);
        }
        free(l.v);
}

/* ---- the operations ---- */
static int rand_open_flags(bool creat)
{
        int acc = rn(10) < 2 ? O_RDONLY : rn(10) < 4 ? O_WRONLY : O_RDWR;
        int f = acc;
        if (creat) {
                f |= O_CREAT;
                if (chance(25))
                        f |= O_EXCL;
        } else {
                if (chance(5))
                        f |= O_DIRECTORY;
                if (chance(10))
                        f |= O_NOFOLLOW;
        }
        if (acc != O_RDONLY && chance(20))
                f |= O_TRUNC;
        if (chance(20))
                f |= O_APPEND;
        return f;
}

static void do_open(bool creat)
{
        char p[PATH_MAX];
        rand_path(p, sizeof p);
        int f = rand_open_flags(creat);
        mode_t m = file_modes[rn(sizeof file_modes / sizeof file_modes[0])];
        begin("open %s %s 0%o", p, flagstr(f), m);
        if (creat || (f & O_TRUNC)) {
                unpin_path(p, true);
                unpin_parent(p);
        }
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(openat(S[s].root, p, f | O_CLOEXEC, m));
        if (r[0].ret >= 0 && r[1].ret >= 0) {
                verbose_res(r);
                int fd[2] = {(int)r[0].ret, (int)r[1].ret};
                known_add(p);
                ofd_add(fd, f, p);
                return;
        }
        if (r[0].ret >= 0)
                close(r[0].ret);
        if (r[1].ret >= 0)
                close(r[1].ret);
        check_res(r);
}

/* Mostly an fd that allows the access (want: O_RDONLY, O_WRONLY or -1 for
 * any), sometimes any fd so that EBADF paths are exercised too. */
static struct ofd *pick_fd(int want)
{
        if (!nofd)
                return NULL;
        if (want >= 0 && chance(85)) {
                unsigned ok[MAXFD], n = 0;
                for (unsigned i = 0; i < nofd; i++) {
                        int acc = ofds[i].flags & O_ACCMODE;
                        if (acc == O_RDWR || acc == want)
                                ok[n++] = i;
                }
                if (n)
                        return &ofds[ok[rn(n)]];
        }
        return &ofds[rn(nofd)];
}

static off_t rand_offset(int fdb)
{
        struct stat st;
        off_t size = fstat(fdb, &st) == 0 ? st.st_size : 0;
        switch (rn(4)) {
        case 0:
                return rn(4096);
        case 1:
                return size;
        case 2:
                return size + rn(20000); /* beyond EOF: a hole */
        default:
                return rn((unsigned)size + 1);
        }
}

static size_t rand_len(void)
{
        switch (rn(5)) {
        case 0:
                return 0;
        case 1:
                return 1 + rn(16);
        case 2:
                return 4096;
        default:
                return rn(9000);
        }
}

static char wbuf[1 << 17], rbuf[2][1 << 17];

static void do_write(void)
{
        struct ofd *o = pick_fd(O_WRONLY);
        if (!o) {
                do_open(true);
                return;
        }
        size_t len = rand_len();
        for (size_t i = 0; i < len; i += 8) {
                uint64_t v = rnd();
                memcpy(wbuf + i, &v, len - i < 8 ? len - i : 8);
        }
        unpin_fd(o->fd[1]);
        struct res r[2];
        if (chance(50)) {
                off_t off = rand_offset(o->fd[1]);
                begin("pwrite %s (%s) len %zu at %jd", o->path, flagstr(o->flags), len,
                      (intmax_t)off);
                for (int s = 0; s < 2; s++)
                        r[s] = RES(pwrite(o->fd[s], wbuf, len, off));
        } else {
                begin("write %s (%s) len %zu", o->path, flagstr(o->flags), len);
                for (int s = 0; s < 2; s++)
                        r[s] = RES(write(o->fd[s], wbuf, len));
        }
        check_res(r);
}

static void do_read(void)
{
        struct ofd *o = pick_fd(O_RDONLY);
        if (!o) {
                do_open(false);
                return;
        }
        size_t len = chance(20) ? 65536 : rand_len();
        struct res r[2];
        if (chance(50)) {
                off_t off = rand_offset(o->fd[1]);
                begin("pread %s (%s) len %zu at %jd", o->path, flagstr(o->flags), len,
                      (intmax_t)off);
                for (int s = 0; s < 2; s++)
                        r[s] = RES(pread(o->fd[s], rbuf[s], len, off));
        } else {
                begin("read %s (%s) len %zu", o->path, flagstr(o->flags), len);
                for (int s = 0; s < 2; s++)
                        r[s] = RES(read(o->fd[s], rbuf[s], len));
        }
        check_res(r);
        if (r[0].ret > 0 && memcmp(rbuf[0], rbuf[1], r[0].ret)) {
                long k = 0;
                while (rbuf[0][k] == rbuf[1][k])
                        k++;
                diverge("data read differs at byte %ld of %ld (A=0x%02x B=0x%02x)", k, r[0].ret,
                        (unsigned char)rbuf[0][k], (unsigned char)rbuf[1][k]);
        }
}

static void do_lseek(void)
{
        struct ofd *o = pick_fd(-1);
        struct stat st;
        /* directory offsets are filesystem-specific cookies: not compared */
        if (!o || fstat(o->fd[1], &st) || S_ISDIR(st.st_mode))
                return;
        int wh = rn(3);
        off_t off = wh == SEEK_SET ? (off_t)rn(70000) : (off_t)rn(8192) - 4096;
        begin("lseek %s %jd %s", o->path, (intmax_t)off,
              wh == SEEK_SET   ? "SEEK_SET"
              : wh == SEEK_CUR ? "SEEK_CUR"
                               : "SEEK_END");
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(lseek(o->fd[s], off, wh));
        check_res(r);
}

static off_t rand_size(void)
{
        switch (rn(4)) {
        case 0:
                return 0;
        case 1:
                return rn(100);
        case 2:
                return rn(70000);
        default:
                return rn(10000);
        }
}

static void do_truncate(void)
{
        char p[PATH_MAX];
        rand_path(p, sizeof p);
        off_t sz = rand_size();
        begin("truncate %s %jd", p, (intmax_t)sz);
        unpin_path(p, true);
        struct res r[2];
        for (int s = 0; s < 2; s++) {
                char pp[PATH_MAX];
                xpath(pp, sizeof pp, s, p);
                r[s] = RES(truncate(pp, sz));
        }
        check_res(r);
}

static void do_ftruncate(void)
{
        struct ofd *o = pick_fd(O_WRONLY);
        if (!o) {
                do_truncate();
                return;
        }
        off_t sz = rand_size();
        begin("ftruncate %s (%s) %jd", o->path, flagstr(o->flags), (intmax_t)sz);
        unpin_fd(o->fd[1]);
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(ftruncate(o->fd[s], sz));
        check_res(r);
}

static void do_fstat(void)
{
        struct ofd *o = pick_fd(-1);
        if (!o)
                return;
        begin("fstat %s (%s)", o->path, flagstr(o->flags));
        struct stat st[2];
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(fstat(o->fd[s], &st[s]));
        check_res(r);
        if (r[0].ret == 0)
                cmp_stat(cur_op, &st[0], &st[1]);
}

static void do_fsync(void)
{
        struct ofd *o = pick_fd(-1);
        if (!o)
                return;
        begin("fsync %s", o->path);
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(fsync(o->fd[s]));
        check_res(r);
}

static void do_close(void)
{
        if (!nofd)
                return;
        unsigned i = rn(nofd);
        begin("close %s (%s)", ofds[i].path, flagstr(ofds[i].flags));
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(close(ofds[i].fd[s]));
        check_res(r);
        ofds[i] = ofds[--nofd];
}

static void do_rename(void)
{
        char a[PATH_MAX], b[PATH_MAX];
        rand_path(a, sizeof a);
        if (chance(10)) /* into its own subtree: EINVAL */
                xsnprintf(b, sizeof b, "%s/%s", a, names[rn(NNAMES)]);
        else
                rand_path(b, sizeof b);
        unsigned flags = chance(15) ? RENAME_NOREPLACE : 0;
        begin("rename%s %s -> %s", flags ? "(NOREPLACE)" : "", a, b);
        struct stat st;
        bool src_is_dir =
            fstatat(S[1].root, a, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        unpin_path(a, false);
        unpin_path(b, false);
        unpin_parent(a);
        unpin_parent(b);
        struct res r[2];
        r[0] = RES(renameat2(S[0].root, a, S[0].root, b, flags));
        /* allow: a union may refuse to rename a directory with lower-layer
         * content (EXDEV, as overlayfs without redirect_dir); applications
         * then copy. B is not touched, so both trees still agree. */
        if (r[0].ret < 0 && r[0].err == EXDEV && src_is_dir) {
                exdev_count++;
                if (verbose)
                        printf("%6ld %-60s A=EXDEV (allowed, B skipped)\n", opidx, cur_op);
                return;
        }
        r[1] = RES(renameat2(S[1].root, a, S[1].root, b, flags));
        check_res2(r, flags == 0);
        if (r[0].ret == 0) {
                known_add(b);
                size_t la = strlen(a);
                unsigned n = nknown;
                for (unsigned i = 0; i < n; i++)
                        if (!strncmp(known[i], a, la) && known[i][la] == '/') {
                                char q[PATH_MAX];
                                xsnprintf(q, sizeof q, "%s%s", b, known[i] + la);
                                known_add(q);
                        }
        }
}

static void do_link(void)
{
        char a[PATH_MAX], b[PATH_MAX];
        rand_path(a, sizeof a);
        rand_path(b, sizeof b);
        begin("link %s -> %s", a, b);
        unpin_parent(b);
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(linkat(S[s].root, a, S[s].root, b, 0));
        check_res(r);
        if (r[0].ret == 0)
                known_add(b);
}

static void do_symlink(void)
{
        char t[PATH_MAX], p[PATH_MAX];
        rand_target(t, sizeof t);
        rand_path(p, sizeof p);
        begin("symlink %s -> \"%s\"", p, t);
        unpin_parent(p);
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(symlinkat(t, S[s].root, p));
        check_res(r);
        if (r[0].ret == 0)
                known_add(p);
}

static void do_readlink(void)
{
        char p[PATH_MAX];
        rand_path(p, sizeof p);
        size_t sz = chance(10) ? 2 : PATH_MAX;
        begin("readlink %s (buffer %zu)", p, sz);
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(readlinkat(S[s].root, p, rbuf[s], sz));
        check_res(r);
        if (r[0].ret > 0 && memcmp(rbuf[0], rbuf[1], r[0].ret))
                diverge("readlink targets differ: A=\"%.*s\" B=\"%.*s\"", (int)r[0].ret, rbuf[0],
                        (int)r[1].ret, rbuf[1]);
}

static void do_unlink(bool dir)
{
        char p[PATH_MAX];
        rand_path(p, sizeof p);
        begin("%s %s", dir ? "rmdir" : "unlink", p);
        unpin_parent(p);
        /* Also for files: B may give the freed inode number to a new file,
         * which must not inherit this one's pinned mtime. */
        unpin_path(p, false);
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(unlinkat(S[s].root, p, dir ? AT_REMOVEDIR : 0));
        check_res2(r, dir);
}

static void do_mkdir(void)
{
        char p[PATH_MAX];
        rand_path(p, sizeof p);
        mode_t m = dir_modes[rn(sizeof dir_modes / sizeof dir_modes[0])];
        begin("mkdir %s 0%o", p, m);
        unpin_parent(p);
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(mkdirat(S[s].root, p, m));
        check_res(r);
        if (r[0].ret == 0)
                known_add(p);
}

static void do_chmod(void)
{
        char p[PATH_MAX];
        rand_path(p, sizeof p);
        mode_t m = chance(50) ? file_modes[rn(sizeof file_modes / sizeof file_modes[0])]
                              : dir_modes[rn(sizeof dir_modes / sizeof dir_modes[0])];
        if (chance(5))
                m |= S_ISVTX;
        begin("chmod %s 0%o", p, m);
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(fchmodat(S[s].root, p, m, 0));
        check_res(r);
}

static void do_utimens(void)
{
        char p[PATH_MAX];
        rand_path(p, sizeof p);
        struct timespec ts[2];
        for (int i = 0; i < 2; i++) {
                ts[i].tv_sec = 1000000000 + rn(1000000000);
                ts[i].tv_nsec = rn(1000000000);
        }
        unsigned k = rn(10);
        if (k == 0)
                ts[1].tv_nsec = UTIME_NOW;
        else if (k == 1)
                ts[1].tv_nsec = UTIME_OMIT;
        else if (k == 2)
                ts[0].tv_nsec = UTIME_OMIT;
        int fl = chance(20) ? AT_SYMLINK_NOFOLLOW : 0;
        begin("utimensat %s mtime=%jd.%09ld%s", p, (intmax_t)ts[1].tv_sec, ts[1].tv_nsec,
              fl ? " AT_SYMLINK_NOFOLLOW" : "");
        unpin_path(p, !fl);
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(utimensat(S[s].root, p, ts, fl));
        check_res(r);
        if (r[0].ret || ts[1].tv_nsec == UTIME_NOW || ts[1].tv_nsec == UTIME_OMIT)
                return;
        struct stat st[2];
        for (int s = 0; s < 2; s++)
                if (fstatat(S[s].root, p, &st[s], fl))
                        diverge("stat after utimensat failed on %c: %s", 'A' + s, strerror(errno));
        for (int s = 0; s < 2; s++)
                if (st[s].st_mtim.tv_sec != ts[1].tv_sec || st[s].st_mtim.tv_nsec != ts[1].tv_nsec)
                        diverge("mtime after utimensat on %c is %jd.%09ld, set %jd.%09ld", 'A' + s,
                                (intmax_t)st[s].st_mtim.tv_sec, st[s].st_mtim.tv_nsec,
                                (intmax_t)ts[1].tv_sec, ts[1].tv_nsec);
        pin_set(&st[1]);
}

static void do_setxattr(void)
{
        char p[PATH_MAX];
        rand_path(p, sizeof p);
        const char *n = xnames[rn(sizeof xnames / sizeof xnames[0])];
        size_t len = chance(10) ? 0 : rn(200);
        for (size_t i = 0; i < len; i++)
                wbuf[i] = (char)rnd();
        int fl = rn(3) == 0 ? 0 : rn(2) ? XATTR_CREATE : XATTR_REPLACE;
        bool follow = chance(20);
        begin("%ssetxattr %s %s len %zu %s", follow ? "" : "l", p, n, len,
              fl == XATTR_CREATE    ? "XATTR_CREATE"
              : fl == XATTR_REPLACE ? "XATTR_REPLACE"
                                    : "0");
        struct res r[2];
        for (int s = 0; s < 2; s++) {
                char pp[PATH_MAX];
                xpath(pp, sizeof pp, s, p);
                r[s] = follow ? RES(setxattr(pp, n, wbuf, len, fl))
                              : RES(lsetxattr(pp, n, wbuf, len, fl));
        }
        check_res(r);
}

static void do_getxattr(void)
{
        char p[PATH_MAX];
        rand_path(p, sizeof p);
        const char *n = xnames[rn(sizeof xnames / sizeof xnames[0])];
        size_t sz = rn(4) == 0 ? 0 : chance(15) ? 3 : 4096;
        begin("lgetxattr %s %s size %zu", p, n, sz);
        struct res r[2];
        for (int s = 0; s < 2; s++) {
                char pp[PATH_MAX];
                xpath(pp, sizeof pp, s, p);
                r[s] = RES(lgetxattr(pp, n, rbuf[s], sz));
        }
        check_res(r);
        if (sz && r[0].ret > 0 && memcmp(rbuf[0], rbuf[1], r[0].ret))
                diverge("xattr values differ");
}

static void do_listxattr(void)
{
        static struct xlist x[2];
        char p[PATH_MAX];
        rand_path(p, sizeof p);
        bool follow = chance(20);
        begin("%slistxattr %s (user.* compared)", follow ? "" : "l", p);
        struct res r[2];
        for (int s = 0; s < 2; s++) {
                long v = xlist_get(S[s].root, p, follow, &x[s]);
                r[s] = v < 0 ? (struct res){-1, (int)-v} : (struct res){0, 0};
        }
        check_res(r);
        if (r[0].ret < 0)
                return;
        for (int i = 0; i < x[0].n || i < x[1].n; i++)
                if (i >= x[0].n || i >= x[1].n || strcmp(x[0].names[i], x[1].names[i]))
                        diverge("user.* names differ at %d: A=%s B=%s", i,
                                i < x[0].n ? x[0].names[i] : "(end)",
                                i < x[1].n ? x[1].names[i] : "(end)");
}

static void do_removexattr(void)
{
        char p[PATH_MAX];
        rand_path(p, sizeof p);
        const char *n = xnames[rn(sizeof xnames / sizeof xnames[0])];
        begin("lremovexattr %s %s", p, n);
        struct res r[2];
        for (int s = 0; s < 2; s++) {
                char pp[PATH_MAX];
                xpath(pp, sizeof pp, s, p);
                r[s] = RES(lremovexattr(pp, n));
        }
        check_res(r);
}

static void do_readdir(void)
{
        char p[PATH_MAX];
        if (chance(15))
                xsnprintf(p, sizeof p, ".");
        else
                rand_path(p, sizeof p);
        begin("readdir %s", p);
        struct res r[2];
        struct dlist l[2] = {{0}, {0}};
        for (int s = 0; s < 2; s++) {
                int fd = openat(S[s].root, p, O_RDONLY | O_DIRECTORY);
                if (fd < 0) {
                        r[s] = (struct res){-1, errno};
                        continue;
                }
                int e = list_fd(fd, &l[s]);
                r[s] = e ? (struct res){-1, -e} : (struct res){(long)l[s].n, 0};
        }
        if (r[0].ret >= 0 && r[1].ret >= 0)
                cmp_lists(cur_op, &l[0], &l[1]);
        check_res(r);
        free(l[0].v);
        free(l[1].v);
}

static void do_stat(void)
{
        char p[PATH_MAX];
        if (chance(3))
                xsnprintf(p, sizeof p, ".");
        else
                rand_path(p, sizeof p);
        int fl = chance(70) ? AT_SYMLINK_NOFOLLOW : 0;
        begin("%s %s", fl ? "lstat" : "stat", p);
        struct stat st[2];
        struct res r[2];
        for (int s = 0; s < 2; s++)
                r[s] = RES(fstatat(S[s].root, p, &st[s], fl));
        check_res(r);
        if (r[0].ret == 0 && strcmp(p, "."))
                cmp_stat(cur_op, &st[0], &st[1]);
}

static void run_op(int op)
{
        switch (op) {
        case OP_CREATE:
                do_open(true);
                break;
        case OP_OPEN:
                do_open(false);
                break;
        case OP_CLOSE:
                do_close();
                break;
        case OP_WRITE:
                do_write();
                break;
        case OP_READ:
                do_read();
                break;
        case OP_LSEEK:
                do_lseek();
                break;
        case OP_TRUNCATE:
                do_truncate();
                break;
        case OP_FTRUNCATE:
                do_ftruncate();
                break;
        case OP_FSTAT:
                do_fstat();
                break;
        case OP_FSYNC:
                do_fsync();
                break;
        case OP_RENAME:
                do_rename();
                break;
        case OP_LINK:
                do_link();
                break;
        case OP_SYMLINK:
                do_symlink();
                break;
        case OP_READLINK:
                do_readlink();
                break;
        case OP_UNLINK:
                do_unlink(false);
                break;
        case OP_MKDIR:
                do_mkdir();
                break;
        case OP_RMDIR:
                do_unlink(true);
                break;
        case OP_CHMOD:
                do_chmod();
                break;
        case OP_UTIMENS:
                do_utimens();
                break;
        case OP_SETXATTR:
                do_setxattr();
                break;
        case OP_GETXATTR:
                do_getxattr();
                break;
        case OP_LISTXATTR:
                do_listxattr();
                break;
        case OP_REMOVEXATTR:
                do_removexattr();
                break;
        case OP_READDIR:
                do_readdir();
                break;
        case OP_STAT:
                do_stat();
                break;
        }
}

/* ---- prefill: a random tree from the same name pool ---- */
static void xwrite_file(int root, const char *p, mode_t m, size_t size)
{
        int fd = openat(root, p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        for (size_t off = 0; off < size;) {
                size_t n = size - off < sizeof wbuf ? size - off : sizeof wbuf;
                for (size_t i = 0; i < n; i++)
                        wbuf[i] = "abcdefghijklmnopqrstuvwxyz\n"[rn(27)];
                if (write(fd, wbuf, n) != (ssize_t)n)
                        die("prefill: write %s: %s", p, strerror(errno));
                off += n;
        }
        if (fchmod(fd, m))
                die("prefill: chmod %s: %s", p, strerror(errno));
        close(fd);
}

static void prefill(const char *dir, const char *lower)
{
        int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                die("%s: %s", dir, strerror(errno));
        S[1].root = root;
        char p[PATH_MAX];
        unsigned n = 25 + rn(20);
        for (unsigned i = 0; i < n; i++) {
                unsigned d = 1 + rn(3);
                size_t len = 0;
                p[0] = 0;
                for (unsigned k = 0; k < d; k++) {
                        len += xsnprintf(p + len, sizeof p - len, "%s%s", k ? "/" : "",
                                         names[rn(NNAMES)]);
                        if (k + 1 < d)
                                mkdirat(
                                    root, p,
                                    dir_modes[rn(3)]); /* may fail: exists or parent is no dir */
                }
                unsigned kind = rn(100);
                if (kind < 60) {
                        xwrite_file(root, p, file_modes[rn(8)],
                                    chance(20)   ? 0
                                    : chance(80) ? rn(3000)
                                                 : rn(70000));
                } else if (kind < 80) {
                        if (mkdirat(root, p, dir_modes[rn(sizeof dir_modes / sizeof dir_modes[0])]))
                                continue;
                } else {
                        char t[PATH_MAX];
                        rand_target(t, sizeof t);
                        if (symlinkat(t, root, p))
                                continue;
                        continue;
                }
                if (chance(30)) {
                        char pp[PATH_MAX];
                        const char *xn = xnames[rn(sizeof xnames / sizeof xnames[0])];
                        int vl = xsnprintf(wbuf, 64, "value-%u", rn(1000));
                        xpath(pp, sizeof pp, 1, p);
                        lsetxattr(pp, xn, wbuf, vl, 0);
                }
        }
        if (lower) {
                /* OCI whiteouts for names that exist in LOWER: .wh.NAME hides
                 * NAME below; DIR/.wh..wh..opq hides all lower content of DIR.
                 * Only where this layer does not hold NAME itself. */
                S[1].root = open(lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (S[1].root < 0)
                        die("%s: %s", lower, strerror(errno));
                scan_known(".");
                for (unsigned i = 0; i < 14 && nknown; i++) {
                        bool opq = i >= 10;
                        const char *k = known[rn(nknown)];
                        struct stat st;
                        if (depth_of(k) > 3)
                                continue;
                        if (opq && (fstatat(S[1].root, k, &st, AT_SYMLINK_NOFOLLOW) ||
                                    !S_ISDIR(st.st_mode)))
                                continue;
                        /* the parent directories, as directories, in this layer */
                        char par[PATH_MAX], q[PATH_MAX], wh[PATH_MAX];
                        xsnprintf(q, sizeof q, "%s", opq ? k : "");
                        if (!opq)
                                parent_of(k, q, sizeof q);
                        bool ok = true;
                        for (char *c = q;; c++) {
                                if (*c == '/' || !*c) {
                                        char save = *c;
                                        *c = 0;
                                        if (strcmp(q, "."))
                                                mkdirat(root, q, 0755);
                                        if (fstatat(root, q, &st, AT_SYMLINK_NOFOLLOW) ||
                                            !S_ISDIR(st.st_mode))
                                                ok = false;
                                        *c = save;
                                        if (!save || !ok)
                                                break;
                                }
                        }
                        if (!ok)
                                continue;
                        if (opq) {
                                join(wh, sizeof wh, k, ".wh..wh..opq");
                        } else {
                                if (fstatat(root, k, &st, AT_SYMLINK_NOFOLLOW) == 0)
                                        continue;
                                const char *base = strrchr(k, '/');
                                base = base ? base + 1 : k;
                                xsnprintf(par, sizeof par, ".wh.%s", base);
                                join(wh, sizeof wh, q, par);
                        }
                        xwrite_file(root, wh, 0644, 0);
                }
                close(S[1].root);
        }
        close(root);
}

static void usage(void)
{
        fprintf(stderr, "usage: difftest --seed N [--ops COUNT] [--verbose] [--check-every K] "
                        "[--op-timeout S] DIR_A DIR_B\n"
                        "       difftest --prefill --seed N [--whiteouts LOWER] DIR\n");
        exit(2);
}

int main(int argc, char **argv)
{
        bool do_prefill = false, have_seed = false;
        const char *lower = NULL;
        const char *dirs[2];
        int ndirs = 0;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (!strcmp(a, "--seed") && i + 1 < argc) {
                        seed = strtoull(argv[++i], NULL, 0);
                        have_seed = true;
                } else if (!strcmp(a, "--ops") && i + 1 < argc) {
                        nops = strtol(argv[++i], NULL, 0);
                } else if (!strcmp(a, "--check-every") && i + 1 < argc) {
                        check_every = strtol(argv[++i], NULL, 0);
                } else if (!strcmp(a, "--op-timeout") && i + 1 < argc) {
                        op_timeout = strtoul(argv[++i], NULL, 0);
                } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
                        verbose = true;
                } else if (!strcmp(a, "--prefill")) {
                        do_prefill = true;
                } else if (!strcmp(a, "--whiteouts") && i + 1 < argc) {
                        lower = argv[++i];
                } else if (a[0] == '-' && a[1]) {
                        usage();
                } else if (ndirs < 2) {
                        dirs[ndirs++] = a;
                } else {
                        usage();
                }
        }
        if (!have_seed)
                usage();
        rng_state = seed;
        umask(0);
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (do_prefill) {
                if (ndirs != 1)
                        usage();
                prefill(dirs[0], lower);
                return 0;
        }
        if (ndirs != 2)
                usage();
        for (int s = 0; s < 2; s++) {
                S[s].dir = dirs[s];
                S[s].root = open(dirs[s], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (S[s].root < 0)
                        die("%s: %s", dirs[s], strerror(errno));
        }
        signal(SIGALRM, on_alarm);
        unsigned wsum = 0;
        for (int i = 0; i < OP__N; i++)
                wsum += opweights[i];

        alarm(op_timeout * 4);
        tree_check("start");
        scan_known(".");
        for (opidx = 0; opidx < nops; opidx++) {
                unsigned w = rn(wsum);
                int op = 0;
                while (w >= opweights[op])
                        w -= opweights[op++];
                alarm(op_timeout);
                run_op(op);
                opcount[op]++;
                if (check_every > 0 && (opidx + 1) % check_every == 0) {
                        alarm(op_timeout * 4);
                        tree_check("periodic");
                }
        }
        while (nofd) {
                begin("close %s at the end", ofds[nofd - 1].path);
                ofd_close(nofd - 1, true);
        }
        alarm(op_timeout * 4);
        tree_check("end");
        alarm(0);
        printf("difftest: seed=%" PRIu64 " ops=%ld agree (A=%s B=%s); exdev=%ld treechecks=%ld;",
               seed, nops, S[0].dir, S[1].dir, exdev_count, treechecks);
        for (int i = 0; i < OP__N; i++)
                printf(" %s=%ld", opnames[i], opcount[i]);
        printf("\n");
        return 0;
}
