/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of the union libservice: branches are local instances over temp
 * directories filled with host syscalls (lower branches opened read-only, so
 * any write the union tried there would fail the test).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "libservice/local.h"
#include "libservice/union.h"

#define MAXB 4

static char g_base[256];

typedef struct T {
        char br[MAXB][512];
        size_t n;
        LsInstance *u;
} T;

static const LsCred me = {0, 0};

/* --- host side helpers --------------------------------------------------- */

static void hpath(const T *t, int b, const char *rel, char *out)
{
        snprintf(out, PATH_MAX, "%s/%s", t->br[b], rel);
}

static void hmkdir(T *t, int b, const char *rel)
{
        char p[PATH_MAX];

        hpath(t, b, rel, p);
        ck_assert_msg(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %m", p);
}

static void hput(T *t, int b, const char *rel, const char *data)
{
        char p[PATH_MAX];
        int fd;

        hpath(t, b, rel, p);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ck_assert_msg(fd >= 0, "create %s: %m", p);
        ck_assert_int_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
        close(fd);
}

static int hstat(T *t, int b, const char *rel, struct stat *st)
{
        char p[PATH_MAX];

        hpath(t, b, rel, p);
        return lstat(p, st);
}

static bool hexists(T *t, int b, const char *rel)
{
        struct stat st;

        return hstat(t, b, rel, &st) == 0;
}

static void t_init(T *t, size_t n)
{
        char dir[384];

        memset(t, 0, sizeof(*t));
        snprintf(dir, sizeof(dir), "%s/XXXXXX", g_base);
        ck_assert(mkdtemp(dir));
        t->n = n;
        for (size_t i = 0; i < n; i++) {
                snprintf(t->br[i], sizeof(t->br[i]), "%s/b%zu", dir, i);
                ck_assert(mkdir(t->br[i], 0755) == 0);
        }
}

static void t_union(T *t, bool writable)
{
        LsInstance *br[MAXB];

        for (size_t i = 0; i < t->n; i++)
                ck_assert_int_eq(local_new(t->br[i], i > 0 || !writable, &br[i]), 0);
        ck_assert_int_eq(union_new(br, t->n, writable, &t->u), 0);
}

static void t_done(T *t)
{
        ls_instance_free(t->u);
}

/* --- union side helpers -------------------------------------------------- */

static char *uread(LsInstance *u, const char *path)
{
        static char buf[1 << 16];
        LsFile *f;
        ssize_t n;
        int r;

        r = u->ops->open(u, path, O_RDONLY, 0, &me, &f);
        ck_assert_msg(r == 0, "open %s: %d", path, r);
        n = f->inst->ops->pread(f, buf, sizeof(buf) - 1, 0);
        ck_assert(n >= 0);
        buf[n] = '\0';
        f->inst->ops->release(f);
        return buf;
}

static int uwrite(LsInstance *u, const char *path, int flags, const char *data, off_t off)
{
        LsFile *f;
        int r;

        r = u->ops->open(u, path, O_WRONLY | flags, 0644, &me, &f);
        if (r < 0)
                return r;
        ck_assert_int_eq(f->inst->ops->pwrite(f, data, strlen(data), off), (ssize_t)strlen(data));
        return f->inst->ops->release(f);
}

static int ugetattr(LsInstance *u, const char *path, struct stat *st)
{
        return u->ops->getattr(u, path, st);
}

typedef struct Listing {
        char names[128][NAME_MAX + 1];
        ino_t inos[128];
        int n;
} Listing;

static int listing_fill(void *ctx, const char *name, ino_t ino, unsigned char type)
{
        Listing *l = ctx;

        ck_assert_int_lt(l->n, 128);
        snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
        l->inos[l->n++] = ino;
        return 0;
}

static int ulist(LsInstance *u, const char *path, Listing *l)
{
        memset(l, 0, sizeof(*l));
        return u->ops->readdir(u, path, listing_fill, l);
}

static bool listing_has(const Listing *l, const char *name)
{
        for (int i = 0; i < l->n; i++)
                if (strcmp(l->names[i], name) == 0)
                        return true;
        return false;
}

/* Counts getattr calls on a branch by swapping in a copy of its ops. */
static LsOps counted_ops;
static int (*counted_real)(LsInstance *, const char *, struct stat *);
static int counted_calls;

static int counted_getattr(LsInstance *inst, const char *path, struct stat *st)
{
        __atomic_add_fetch(&counted_calls, 1, __ATOMIC_RELAXED);
        return counted_real(inst, path, st);
}

/* --- tests --------------------------------------------------------------- */

START_TEST(test_lookup_order)
{
        T t;

        t_init(&t, 3);
        hput(&t, 0, "f", "top");
        hput(&t, 1, "f", "mid");
        hput(&t, 2, "f", "bot");
        hput(&t, 1, "g", "mid");
        hput(&t, 2, "g", "bot");
        hput(&t, 2, "h", "bot");
        hmkdir(&t, 2, "d");
        hput(&t, 2, "d/x", "deep");
        t_union(&t, true);
        ck_assert_str_eq(uread(t.u, "f"), "top");
        ck_assert_str_eq(uread(t.u, "g"), "mid");
        ck_assert_str_eq(uread(t.u, "h"), "bot");
        ck_assert_str_eq(uread(t.u, "d/x"), "deep");
        {
                struct stat st;

                ck_assert_int_eq(ugetattr(t.u, "nope", &st), -ENOENT);
                ck_assert_int_eq(ugetattr(t.u, "f/x", &st), -ENOTDIR);
                ck_assert_int_eq(ugetattr(t.u, "", &st), 0);
                ck_assert(S_ISDIR(st.st_mode));
        }
        t_done(&t);
}
END_TEST

START_TEST(test_lookup_cost)
{
        LsInstance *br[3];
        struct stat st;
        T t;

        t_init(&t, 3);
        hmkdir(&t, 0, "d");
        hmkdir(&t, 1, "d");
        hmkdir(&t, 2, "d");
        hput(&t, 0, "d/top", "x");
        hput(&t, 2, "d/bot", "x");
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(local_new(t.br[i], i > 0, &br[i]), 0);
        for (int i = 0; i < 3; i++) {
                /* one shared counting table: every branch is a local */
                counted_ops = *br[i]->ops;
                counted_real = br[i]->ops->getattr;
                counted_ops.getattr = counted_getattr;
                br[i]->ops = &counted_ops;
        }
        ck_assert_int_eq(union_new(br, 3, true, &t.u), 0);
        ck_assert_int_eq(ugetattr(t.u, "d/top", &st), 0); /* warms the cache */
        counted_calls = 0;
        ck_assert_int_eq(ugetattr(t.u, "d/top", &st), 0);
        ck_assert_int_eq(counted_calls, 1);
        /* a bottom file: one getattr and one whiteout check per branch passed */
        counted_calls = 0;
        ck_assert_int_eq(ugetattr(t.u, "d/bot", &st), 0);
        ck_assert_int_eq(counted_calls, 5);
        /* again: the lookup cache remembers the branch (union-lookcache.c) */
        counted_calls = 0;
        ck_assert_int_eq(ugetattr(t.u, "d/bot", &st), 0);
        ck_assert_int_eq(counted_calls, 1);
        t_done(&t);
}
END_TEST

/* Every change that moves where a cached lower name resolves is seen. */
START_TEST(test_lookcache_invalidation)
{
        struct stat st;
        T t;

        t_init(&t, 3);
        hmkdir(&t, 1, "d");
        hmkdir(&t, 2, "d");
        hput(&t, 2, "d/gone", "x");
        hput(&t, 2, "d/chm", "x");
        hput(&t, 2, "d/mv", "x");
        hput(&t, 1, "d/mid", "m");
        hput(&t, 2, "d/mid", "b");
        t_union(&t, true);
        for (int k = 0; k < 2; k++) {
                ck_assert_int_eq(ugetattr(t.u, "d/gone", &st), 0);
                ck_assert_int_eq(ugetattr(t.u, "d/chm", &st), 0);
                ck_assert_int_eq(ugetattr(t.u, "d/mv", &st), 0);
                ck_assert_int_eq(ugetattr(t.u, "d/mid", &st), 0);
        }
        ck_assert_int_eq(st.st_size, 1);
        /* whiteout */
        ck_assert_int_eq(t.u->ops->unlink(t.u, "d/gone"), 0);
        ck_assert_int_eq(ugetattr(t.u, "d/gone", &st), -ENOENT);
        /* copy-up */
        ck_assert_int_eq(t.u->ops->chmod(t.u, "d/chm", 0600), 0);
        ck_assert_int_eq(ugetattr(t.u, "d/chm", &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0600);
        ck_assert(hexists(&t, 0, "d/chm"));
        /* rename */
        ck_assert_int_eq(t.u->ops->rename(t.u, "d/mv", "d/mv2", 0), 0);
        ck_assert_int_eq(ugetattr(t.u, "d/mv", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(t.u, "d/mv2", &st), 0);
        /* the middle branch's "mid" goes: the bottom's must stay hidden */
        ck_assert_int_eq(t.u->ops->unlink(t.u, "d/mid"), 0);
        ck_assert_int_eq(ugetattr(t.u, "d/mid", &st), -ENOENT);
        ck_assert_str_eq(uread(t.u, "d/chm") ? "ok" : "", "ok");
        t_done(&t);
}
END_TEST

START_TEST(test_whiteout_hiding)
{
        struct stat st;
        Listing l;
        T t;

        t_init(&t, 3);
        hput(&t, 1, "x", "mid");
        hput(&t, 0, ".wh.x", "");
        hput(&t, 0, "y", "top");
        hput(&t, 0, ".wh.y", ""); /* a real entry wins over its own whiteout */
        hput(&t, 2, "y", "bot");
        hput(&t, 2, "z", "bot");
        hput(&t, 1, ".wh.z", "");
        hput(&t, 0, "z", "top"); /* above the whiteout: visible */
        hmkdir(&t, 2, "d");
        hput(&t, 2, "d/f", "bot");
        hput(&t, 1, ".wh.d", ""); /* hides a whole directory */
        t_union(&t, true);
        ck_assert_int_eq(ugetattr(t.u, "x", &st), -ENOENT);
        ck_assert_str_eq(uread(t.u, "y"), "top");
        ck_assert_str_eq(uread(t.u, "z"), "top");
        ck_assert_int_eq(ugetattr(t.u, "d", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(t.u, "d/f", &st), -ENOENT);
        ck_assert_int_eq(ulist(t.u, "", &l), 0);
        ck_assert_int_eq(l.n, 2);
        ck_assert(listing_has(&l, "y") && listing_has(&l, "z"));
        t_done(&t);
}
END_TEST

START_TEST(test_opaque_dir)
{
        struct stat st;
        Listing l;
        T t;

        t_init(&t, 3);
        hmkdir(&t, 1, "d");
        hmkdir(&t, 2, "d");
        hput(&t, 1, "d/a", "mid");
        hput(&t, 1, "d/.wh..wh..opq", "");
        hput(&t, 2, "d/b", "bot");
        t_union(&t, true);
        ck_assert_int_eq(ulist(t.u, "d", &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_str_eq(l.names[0], "a");
        ck_assert_int_eq(ugetattr(t.u, "d/b", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(t.u, "d/a", &st), 0);
        t_done(&t);
}
END_TEST

START_TEST(test_wh_invisible)
{
        LsInstance *u;
        struct stat st;
        LsFile *f;
        Listing l;
        T t;

        t_init(&t, 2);
        hput(&t, 1, ".wh.gone", "");
        hput(&t, 1, ".wh..wh..tmp.1.2.3", "junk");
        hput(&t, 0, ".wh..wh..opq", "");
        hput(&t, 0, "f", "x");
        t_union(&t, true);
        u = t.u;
        ck_assert_int_eq(ugetattr(u, ".wh.gone", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(u, ".wh..wh..opq", &st), -ENOENT);
        ck_assert_int_eq(ulist(u, "", &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_str_eq(l.names[0], "f");
        ck_assert_int_eq(u->ops->open(u, ".wh.foo", O_WRONLY | O_CREAT, 0644, &me, &f), -EINVAL);
        ck_assert_int_eq(u->ops->mkdir(u, ".wh.d", 0755, &me), -EINVAL);
        ck_assert_int_eq(u->ops->mknod(u, ".wh.n", S_IFIFO | 0644, 0, &me), -EINVAL);
        ck_assert_int_eq(u->ops->symlink(u, "f", ".wh.s", &me), -EINVAL);
        ck_assert_int_eq(u->ops->link(u, "f", ".wh.l"), -EINVAL);
        ck_assert_int_eq(u->ops->rename(u, "f", ".wh.r", 0), -EINVAL);
        ck_assert(!hexists(&t, 0, ".wh.foo") && !hexists(&t, 0, ".wh.d"));
        t_done(&t);
}
END_TEST

START_TEST(test_copyup_attrs)
{
        struct stat lst, tst, before;
        char p[PATH_MAX], val[32];
        struct timespec ts[2] = {{1000000, 0}, {2000000, 500}};
        T t;

        t_init(&t, 2);
        hmkdir(&t, 1, "a");
        hmkdir(&t, 1, "a/b");
        hput(&t, 1, "a/b/f", "lower data");
        hpath(&t, 1, "a/b/f", p);
        ck_assert_int_eq(chown(p, 1234, 5678), 0);
        ck_assert_int_eq(chmod(p, 04751), 0);
        ck_assert_int_eq(lsetxattr(p, "user.keep", "v1", 2, 0), 0);
        ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
        hpath(&t, 1, "a", p);
        ck_assert_int_eq(chown(p, 42, 43), 0);
        ck_assert_int_eq(chmod(p, 0751), 0);
        ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
        hpath(&t, 1, "a/b", p);
        ck_assert_int_eq(chmod(p, 0705), 0);
        ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
        ck_assert_int_eq(hstat(&t, 1, "a/b/f", &before), 0);
        t_union(&t, true);

        /* setxattr changes neither data nor times: all must survive */
        ck_assert_int_eq(t.u->ops->setxattr(t.u, "a/b/f", "user.new", "v2", 2, 0), 0);
        ck_assert_int_eq(hstat(&t, 0, "a/b/f", &tst), 0);
        ck_assert_int_eq(hstat(&t, 1, "a/b/f", &lst), 0);
        ck_assert_int_eq(tst.st_mode, lst.st_mode);
        ck_assert_int_eq(tst.st_mode & 07777, 04751);
        ck_assert_int_eq(tst.st_uid, 1234);
        ck_assert_int_eq(tst.st_gid, 5678);
        ck_assert_int_eq(tst.st_mtim.tv_sec, 2000000);
        ck_assert_int_eq(tst.st_mtim.tv_nsec, 500);
        ck_assert_int_eq(tst.st_atim.tv_sec, 1000000);
        ck_assert_int_eq(tst.st_size, 10);
        hpath(&t, 0, "a/b/f", p);
        ck_assert_int_eq(lgetxattr(p, "user.keep", val, sizeof(val)), 2);
        ck_assert_int_eq(memcmp(val, "v1", 2), 0);
        ck_assert_int_eq(lgetxattr(p, "user.new", val, sizeof(val)), 2);
        ck_assert_str_eq(uread(t.u, "a/b/f"), "lower data");
        /* parents copied with their own attributes, times put back */
        ck_assert_int_eq(hstat(&t, 0, "a", &tst), 0);
        ck_assert_int_eq(tst.st_mode & 07777, 0751);
        ck_assert_int_eq(tst.st_uid, 42);
        ck_assert_int_eq(tst.st_gid, 43);
        ck_assert_int_eq(tst.st_mtim.tv_sec, 2000000);
        ck_assert_int_eq(hstat(&t, 0, "a/b", &tst), 0);
        ck_assert_int_eq(tst.st_mode & 07777, 0705);
        ck_assert_int_eq(tst.st_mtim.tv_sec, 2000000);
        /* the lower file is untouched, no temporaries are left */
        ck_assert_int_eq(lst.st_mtim.tv_sec, before.st_mtim.tv_sec);
        ck_assert_int_eq(lst.st_ino, before.st_ino);
        hpath(&t, 1, "a/b/f", p);
        ck_assert_int_eq(lgetxattr(p, "user.new", val, sizeof(val)), -1);
        {
                DIR *d;
                struct dirent *de;
                int n = 0;

                hpath(&t, 0, "a/b", p);
                d = opendir(p);
                while ((de = readdir(d)))
                        n += de->d_name[0] != '.';
                closedir(d);
                ck_assert_int_eq(n, 1);
        }
        /* write-open copies up too, and the write lands in the copy only */
        hput(&t, 1, "w", "0123456789");
        ck_assert_int_eq(uwrite(t.u, "w", 0, "AB", 2), 0);
        ck_assert_str_eq(uread(t.u, "w"), "01AB456789");
        ck_assert_int_eq(hstat(&t, 1, "w", &lst), 0);
        ck_assert_int_eq(uwrite(t.u, "w", O_TRUNC, "z", 0), 0);
        ck_assert_str_eq(uread(t.u, "w"), "z");
        t_done(&t);
}
END_TEST

START_TEST(test_copyup_sparse)
{
        const off_t size = 64 << 20;
        char p[PATH_MAX], buf[4096];
        struct stat st;
        LsFile *f;
        int fd;
        T t;

        t_init(&t, 2);
        hpath(&t, 1, "sparse", p);
        fd = open(p, O_WRONLY | O_CREAT, 0644);
        ck_assert(fd >= 0);
        ck_assert_int_eq(ftruncate(fd, size), 0);
        ck_assert_int_eq(pwrite(fd, "head", 4, 0), 4);
        ck_assert_int_eq(pwrite(fd, "middle", 6, 32 << 20), 6);
        close(fd);
        t_union(&t, true);
        ck_assert_int_eq(t.u->ops->chmod(t.u, "sparse", 0600), 0);
        ck_assert_int_eq(hstat(&t, 0, "sparse", &st), 0);
        ck_assert_int_eq(st.st_size, size);
        ck_assert_msg(st.st_blocks * 512 < (4 << 20), "copy not sparse: %lld blocks",
                      (long long)st.st_blocks);
        ck_assert_int_eq(t.u->ops->open(t.u, "sparse", O_RDONLY, 0, &me, &f), 0);
        ck_assert_int_eq(f->inst->ops->pread(f, buf, 6, 32 << 20), 6);
        ck_assert_int_eq(memcmp(buf, "middle", 6), 0);
        ck_assert_int_eq(f->inst->ops->pread(f, buf, 4, 0), 4);
        ck_assert_int_eq(memcmp(buf, "head", 4), 0);
        ck_assert_int_eq(f->inst->ops->pread(f, buf, 4, 16 << 20), 4);
        ck_assert_int_eq(memcmp(buf, "\0\0\0\0", 4), 0);
        f->inst->ops->release(f);
        t_done(&t);
}
END_TEST

START_TEST(test_unlink_rmdir_whiteouts)
{
        LsInstance *u;
        struct stat st;
        Listing l;
        T t;

        t_init(&t, 2);
        hput(&t, 1, "x", "low");
        hput(&t, 0, "y", "top");
        hput(&t, 0, "z", "top");
        hput(&t, 1, "z", "low");
        hmkdir(&t, 1, "d");
        hmkdir(&t, 1, "sub");
        hput(&t, 1, "sub/f", "low");
        t_union(&t, true);
        u = t.u;
        ck_assert_int_eq(u->ops->unlink(u, "x"), 0);
        ck_assert_int_eq(ugetattr(u, "x", &st), -ENOENT);
        ck_assert(hexists(&t, 0, ".wh.x"));
        ck_assert(hexists(&t, 1, "x"));
        ck_assert_int_eq(u->ops->unlink(u, "y"), 0); /* upper only: no whiteout */
        ck_assert(!hexists(&t, 0, ".wh.y") && !hexists(&t, 0, "y"));
        ck_assert_int_eq(u->ops->unlink(u, "z"), 0); /* both: gone from top + whiteout */
        ck_assert(hexists(&t, 0, ".wh.z") && !hexists(&t, 0, "z"));
        ck_assert_int_eq(ugetattr(u, "z", &st), -ENOENT);
        ck_assert_int_eq(u->ops->unlink(u, "d"), -EISDIR);
        ck_assert_int_eq(u->ops->rmdir(u, "d"), 0);
        ck_assert(hexists(&t, 0, ".wh.d") && hexists(&t, 1, "d"));
        ck_assert_int_eq(ugetattr(u, "d", &st), -ENOENT);
        ck_assert_int_eq(u->ops->unlink(u, "sub/f"), 0);
        ck_assert(hexists(&t, 0, "sub/.wh.f"));
        ck_assert_int_eq(ulist(u, "", &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_str_eq(l.names[0], "sub");
        /* a file recreated over its whiteout */
        ck_assert_int_eq(uwrite(u, "x", O_CREAT | O_EXCL, "new", 0), 0);
        ck_assert_str_eq(uread(u, "x"), "new");
        ck_assert(!hexists(&t, 0, ".wh.x"));
        t_done(&t);
}
END_TEST

START_TEST(test_rmdir_notempty)
{
        LsInstance *u;
        struct stat st;
        T t;

        t_init(&t, 3);
        hmkdir(&t, 1, "d");
        hmkdir(&t, 2, "d");
        hput(&t, 1, "d/a", "mid");
        hput(&t, 2, "d/b", "bot");
        t_union(&t, true);
        u = t.u;
        ck_assert_int_eq(u->ops->rmdir(u, "d"), -ENOTEMPTY);
        ck_assert_int_eq(uwrite(u, "d/c", O_CREAT, "top", 0), 0);
        ck_assert_int_eq(u->ops->unlink(u, "d/a"), 0);
        ck_assert_int_eq(u->ops->unlink(u, "d/b"), 0);
        ck_assert_int_eq(u->ops->rmdir(u, "d"), -ENOTEMPTY);
        ck_assert_int_eq(u->ops->unlink(u, "d/c"), 0);
        /* only whiteouts left in the top dir: empty in the union */
        ck_assert(hexists(&t, 0, "d/.wh.a"));
        ck_assert_int_eq(u->ops->rmdir(u, "d"), 0);
        ck_assert_int_eq(ugetattr(u, "d", &st), -ENOENT);
        ck_assert(!hexists(&t, 0, "d") && hexists(&t, 0, ".wh.d"));
        ck_assert(hexists(&t, 1, "d/a") && hexists(&t, 2, "d/b"));
        ck_assert_int_eq(u->ops->rmdir(u, ""), -EBUSY);
        t_done(&t);
}
END_TEST

START_TEST(test_mkdir_over_whiteout)
{
        LsInstance *u;
        struct stat st;
        Listing l;
        T t;

        t_init(&t, 2);
        hmkdir(&t, 1, "d");
        hput(&t, 1, "d/f", "low");
        t_union(&t, true);
        u = t.u;
        ck_assert_int_eq(u->ops->unlink(u, "d/f"), 0);
        ck_assert_int_eq(u->ops->rmdir(u, "d"), 0);
        ck_assert_int_eq(u->ops->mkdir(u, "d", 0700, &me), 0);
        ck_assert_int_eq(ugetattr(u, "d", &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_int_eq(st.st_mode & 0777, 0700);
        ck_assert_int_eq(ulist(u, "d", &l), 0);
        ck_assert_int_eq(l.n, 0);
        ck_assert_int_eq(ugetattr(u, "d/f", &st), -ENOENT);
        ck_assert(hexists(&t, 0, "d/.wh..wh..opq"));
        ck_assert(!hexists(&t, 0, ".wh.d"));
        ck_assert_int_eq(u->ops->mkdir(u, "d", 0700, &me), -EEXIST);
        /* a fresh name gets no marker */
        ck_assert_int_eq(u->ops->mkdir(u, "e", 0755, &me), 0);
        ck_assert(!hexists(&t, 0, "e/.wh..wh..opq"));
        t_done(&t);
}
END_TEST

START_TEST(test_readdir_merge)
{
        Listing l;
        T t;

        t_init(&t, 3);
        hput(&t, 0, "a", "0");
        hput(&t, 0, "c", "0");
        hput(&t, 1, "a", "1");
        hput(&t, 1, "b", "1");
        hput(&t, 1, ".wh.e", "");
        hput(&t, 2, "a", "2");
        hput(&t, 2, "b", "2");
        hput(&t, 2, "d", "2");
        hput(&t, 2, "e", "2");
        hmkdir(&t, 0, "m");
        hmkdir(&t, 2, "m");
        hput(&t, 0, "m/x", "");
        hput(&t, 2, "m/x", "");
        hput(&t, 2, "m/y", "");
        t_union(&t, true);
        ck_assert_int_eq(ulist(t.u, "", &l), 0);
        ck_assert_int_eq(l.n, 5);
        ck_assert(listing_has(&l, "a") && listing_has(&l, "b") && listing_has(&l, "c") &&
                  listing_has(&l, "d") && listing_has(&l, "m"));
        /* listed inode numbers are the ones getattr reports */
        for (int i = 0; i < l.n; i++) {
                struct stat st;

                ck_assert_int_eq(ugetattr(t.u, l.names[i], &st), 0);
                ck_assert_int_eq(st.st_ino, l.inos[i]);
        }
        ck_assert_int_eq(ulist(t.u, "m", &l), 0);
        ck_assert_int_eq(l.n, 2);
        ck_assert_int_eq(ulist(t.u, "a", &l), -ENOTDIR);
        t_done(&t);
}
END_TEST

START_TEST(test_rename_file)
{
        LsInstance *u;
        struct stat st;
        T t;

        t_init(&t, 2);
        hput(&t, 0, "up", "upper");
        hput(&t, 1, "low", "lower");
        hput(&t, 1, "victim", "old");
        hput(&t, 0, "keep", "k");
        hmkdir(&t, 1, "dir");
        t_union(&t, true);
        u = t.u;
        ck_assert_int_eq(u->ops->rename(u, "up", "up2", 0), 0);
        ck_assert_str_eq(uread(u, "up2"), "upper");
        ck_assert_int_eq(ugetattr(u, "up", &st), -ENOENT);
        ck_assert(!hexists(&t, 0, ".wh.up"));
        ck_assert_int_eq(u->ops->rename(u, "low", "dir/low2", 0), 0);
        ck_assert_str_eq(uread(u, "dir/low2"), "lower");
        ck_assert_int_eq(ugetattr(u, "low", &st), -ENOENT);
        ck_assert(hexists(&t, 1, "low") && hexists(&t, 0, ".wh.low"));
        /* over an existing (lower) file */
        ck_assert_int_eq(u->ops->rename(u, "up2", "victim", RENAME_NOREPLACE), -EEXIST);
        ck_assert_int_eq(u->ops->rename(u, "up2", "victim", 0), 0);
        ck_assert_str_eq(uread(u, "victim"), "upper");
        ck_assert_int_eq(ugetattr(u, "up2", &st), -ENOENT);
        /* file over directory and back */
        ck_assert_int_eq(u->ops->rename(u, "keep", "dir", 0), -EISDIR);
        ck_assert_int_eq(u->ops->rename(u, "dir", "keep", 0), -ENOTDIR);
        /* onto a whited-out name */
        ck_assert_int_eq(u->ops->rename(u, "keep", "low", 0), 0);
        ck_assert_str_eq(uread(u, "low"), "k");
        ck_assert(!hexists(&t, 0, ".wh.low"));
        ck_assert_int_eq(u->ops->rename(u, "nope", "x", 0), -ENOENT);
        ck_assert_int_eq(u->ops->rename(u, "low", "nodir/x", 0), -ENOENT);
        /* exchange a lower file with an upper one */
        hput(&t, 1, "xa", "lowA");
        ck_assert_int_eq(u->ops->rename(u, "xa", "victim", RENAME_EXCHANGE), 0);
        ck_assert_str_eq(uread(u, "xa"), "upper");
        ck_assert_str_eq(uread(u, "victim"), "lowA");
        ck_assert_int_eq(u->ops->rename(u, "dir", "xa", RENAME_EXCHANGE), -EXDEV);
        t_done(&t);
}
END_TEST

START_TEST(test_rename_dir_upper)
{
        LsInstance *u;
        struct stat st;
        Listing l;
        T t;

        t_init(&t, 2);
        hput(&t, 1, "other", "x");
        t_union(&t, true);
        u = t.u;
        ck_assert_int_eq(u->ops->mkdir(u, "d", 0755, &me), 0);
        ck_assert_int_eq(u->ops->mkdir(u, "d/s", 0755, &me), 0);
        ck_assert_int_eq(uwrite(u, "d/s/f", O_CREAT, "data", 0), 0);
        ck_assert_int_eq(ugetattr(u, "d/s/f", &st), 0); /* cache the stacks */
        ck_assert_int_eq(u->ops->rename(u, "d", "d/s/x", 0), -EINVAL);
        ck_assert_int_eq(u->ops->rename(u, "d", "e", 0), 0);
        ck_assert_str_eq(uread(u, "e/s/f"), "data");
        ck_assert_int_eq(ugetattr(u, "d", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(u, "d/s/f", &st), -ENOENT);
        ck_assert(!hexists(&t, 0, ".wh.d"));
        ck_assert_int_eq(ulist(u, "e", &l), 0);
        ck_assert_int_eq(l.n, 1);
        /* over an empty directory */
        ck_assert_int_eq(u->ops->mkdir(u, "empty", 0755, &me), 0);
        ck_assert_int_eq(u->ops->rename(u, "e", "empty", 0), 0);
        ck_assert_str_eq(uread(u, "empty/s/f"), "data");
        ck_assert_int_eq(u->ops->mkdir(u, "full", 0755, &me), 0);
        ck_assert_int_eq(uwrite(u, "full/x", O_CREAT, "x", 0), 0);
        ck_assert_int_eq(u->ops->rename(u, "empty", "full", 0), -ENOTEMPTY);
        t_done(&t);
}
END_TEST

START_TEST(test_rename_dir_lower)
{
        LsInstance *u;
        struct stat st;
        Listing l;
        T t;

        t_init(&t, 3);
        hmkdir(&t, 2, "d");
        hmkdir(&t, 2, "d/sub");
        hput(&t, 2, "d/f", "bot");
        hput(&t, 2, "d/sub/g", "deep");
        hput(&t, 2, "d/gone", "bot");
        hmkdir(&t, 1, "d");
        hput(&t, 1, "d/m", "mid");
        hput(&t, 1, "d/.wh.gone", "");
        hmkdir(&t, 2, "new"); /* a lower dir of the target name */
        hput(&t, 2, "new/stale", "must stay hidden");
        t_union(&t, true);
        u = t.u;
        ck_assert_int_eq(uwrite(u, "d/h", O_CREAT, "top", 0), 0);
        ck_assert_int_eq(u->ops->unlink(u, "new/stale"), 0);
        struct stat d0, sub0;
        ck_assert_int_eq(ugetattr(u, "d", &d0), 0);
        ck_assert_int_eq(ugetattr(u, "d/sub", &sub0), 0);
        ck_assert_int_eq(u->ops->rename(u, "d", "new", 0), 0);
        ck_assert_int_eq(ugetattr(u, "d", &st), -ENOENT);
        /* the moved directories keep their numbers (the FUSE front keys its
         * nodes by them) */
        ck_assert_int_eq(ugetattr(u, "new", &st), 0);
        ck_assert_uint_eq(st.st_ino, d0.st_ino);
        ck_assert_int_eq(ugetattr(u, "new/sub", &st), 0);
        ck_assert_uint_eq(st.st_ino, sub0.st_ino);
        ck_assert_int_eq(ulist(u, "new", &l), 0);
        ck_assert_int_eq(l.n, 4);
        ck_assert(listing_has(&l, "f") && listing_has(&l, "m") && listing_has(&l, "h") &&
                  listing_has(&l, "sub"));
        ck_assert_str_eq(uread(u, "new/f"), "bot");
        ck_assert_str_eq(uread(u, "new/sub/g"), "deep");
        ck_assert_str_eq(uread(u, "new/h"), "top");
        ck_assert_int_eq(ugetattr(u, "new/stale", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(u, "new/gone", &st), -ENOENT);
        /* lower branches untouched; the old name is whited out */
        ck_assert(hexists(&t, 2, "d/sub/g") && hexists(&t, 1, "d/m"));
        ck_assert(hexists(&t, 0, ".wh.d"));
        /* and the moved tree is an ordinary writable directory */
        ck_assert_int_eq(uwrite(u, "new/sub/g", 0, "D", 0), 0);
        ck_assert_str_eq(uread(u, "new/sub/g"), "Deep");
        ck_assert_int_eq(u->ops->mkdir(u, "d", 0755, &me), 0);
        ck_assert_int_eq(ulist(u, "d", &l), 0);
        ck_assert_int_eq(l.n, 0);
        /* a merged directory onto an existing, empty, merged one */
        hmkdir(&t, 2, "m");
        hput(&t, 2, "m/k", "kept");
        hmkdir(&t, 1, "e");
        hput(&t, 1, "e/old", "x");
        ck_assert_int_eq(u->ops->unlink(u, "e/old"), 0);
        ck_assert_int_eq(u->ops->rename(u, "m", "e", 0), 0);
        ck_assert_str_eq(uread(u, "e/k"), "kept");
        ck_assert_int_eq(ulist(u, "e", &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_int_eq(ugetattr(u, "m", &st), -ENOENT);
        t_done(&t);
}
END_TEST

START_TEST(test_hardlink_lower)
{
        LsInstance *u;
        struct stat a, b;
        T t;

        t_init(&t, 2);
        hput(&t, 1, "f", "shared");
        hmkdir(&t, 1, "d");
        t_union(&t, true);
        u = t.u;
        ck_assert_int_eq(u->ops->link(u, "f", "d/g"), 0);
        ck_assert_int_eq(ugetattr(u, "f", &a), 0);
        ck_assert_int_eq(ugetattr(u, "d/g", &b), 0);
        ck_assert_int_eq(a.st_ino, b.st_ino);
        ck_assert_int_eq(a.st_nlink, 2);
        ck_assert_int_eq(uwrite(u, "d/g", 0, "SH", 0), 0);
        ck_assert_str_eq(uread(u, "f"), "SHared");
        ck_assert(hexists(&t, 0, "f") && hexists(&t, 0, "d/g"));
        ck_assert_int_eq(u->ops->link(u, "f", "d/g"), -EEXIST);
        ck_assert_int_eq(u->ops->link(u, "d", "d2"), -EPERM);
        t_done(&t);
}
END_TEST

START_TEST(test_symlink)
{
        LsInstance *u;
        char buf[64];
        struct stat st;
        T t;

        t_init(&t, 2);
        hput(&t, 1, "target", "via link");
        hmkdir(&t, 1, "d");
        t_union(&t, true);
        u = t.u;
        ck_assert_int_eq(u->ops->symlink(u, "../target", "d/rel", &me), 0);
        ck_assert_int_eq(u->ops->symlink(u, "/target", "abs", &me), 0);
        ck_assert_int_eq(ugetattr(u, "d/rel", &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        ck_assert_int_eq(u->ops->readlink(u, "d/rel", buf, sizeof(buf)), 9);
        /* the union follows the link across branches (target only below) */
        ck_assert_str_eq(uread(u, "d/rel"), "via link");
        ck_assert_str_eq(uread(u, "abs"), "via link");
        ck_assert_int_eq(u->ops->symlink(u, "loop", "loop", &me), 0);
        {
                LsFile *f;

                ck_assert_int_eq(u->ops->open(u, "loop", O_RDONLY, 0, &me, &f), -ELOOP);
        }
        t_done(&t);
}
END_TEST

START_TEST(test_xattr_statfs)
{
        char p[PATH_MAX], val[16], list[256];
        struct statvfs sv;
        T t;

        t_init(&t, 2);
        hput(&t, 1, "f", "x");
        hpath(&t, 1, "f", p);
        ck_assert_int_eq(lsetxattr(p, "user.a", "1", 1, 0), 0);
        t_union(&t, true);
        ck_assert_int_eq(t.u->ops->getxattr(t.u, "f", "user.a", val, sizeof(val)), 1);
        ck_assert_int_gt(t.u->ops->listxattr(t.u, "f", list, sizeof(list)), 0);
        ck_assert(!hexists(&t, 0, "f"));
        ck_assert_int_eq(t.u->ops->removexattr(t.u, "f", "user.a"), 0);
        ck_assert_int_eq(t.u->ops->getxattr(t.u, "f", "user.a", val, sizeof(val)), -ENODATA);
        ck_assert_int_eq(lgetxattr(p, "user.a", val, sizeof(val)), 1);
        ck_assert_int_eq(t.u->ops->statfs(t.u, "f", &sv), 0);
        t_done(&t);
}
END_TEST

START_TEST(test_inode_numbers)
{
        struct stat a, b, c, d1, d2;
        LsInstance *br[2];
        char shm[64];
        T t;

        t_init(&t, 3);
        hput(&t, 0, "a", "");
        hput(&t, 1, "b", "");
        hput(&t, 2, "c", "");
        hmkdir(&t, 1, "d");
        hmkdir(&t, 2, "d");
        t_union(&t, true);
        ck_assert_int_eq(ugetattr(t.u, "a", &a), 0);
        ck_assert_int_eq(ugetattr(t.u, "b", &b), 0);
        ck_assert_int_eq(ugetattr(t.u, "c", &c), 0);
        ck_assert(a.st_ino != b.st_ino && b.st_ino != c.st_ino && a.st_ino != c.st_ino);
        ck_assert_int_eq(ugetattr(t.u, "d", &d1), 0);
        ck_assert_int_eq(d1.st_nlink, 1); /* merged over two branches */
        for (int i = 0; i < 3; i++) {
                struct stat again;

                ck_assert_int_eq(ugetattr(t.u, "b", &again), 0);
                ck_assert_int_eq(again.st_ino, b.st_ino);
        }
        /* a directory keeps its number when it is copied up */
        ck_assert_int_eq(uwrite(t.u, "d/new", O_CREAT, "x", 0), 0);
        ck_assert(hexists(&t, 0, "d"));
        ck_assert_int_eq(ugetattr(t.u, "d", &d2), 0);
        ck_assert_int_eq(d1.st_ino, d2.st_ino);
        t_done(&t);

        /* branches on two filesystems: numbers are tagged with the branch */
        snprintf(shm, sizeof(shm), "/dev/shm/test-union-XXXXXX");
        if (!mkdtemp(shm))
                return;
        t_init(&t, 1);
        {
                struct stat s1, s2;

                stat(shm, &s1);
                stat(t.br[0], &s2);
                if (s1.st_dev == s2.st_dev) {
                        rmdir(shm);
                        return;
                }
        }
        hput(&t, 0, "f", "");
        {
                char p[PATH_MAX];
                int fd;

                snprintf(p, sizeof(p), "%s/g", shm);
                fd = open(p, O_CREAT | O_WRONLY, 0644);
                close(fd);
        }
        ck_assert_int_eq(local_new(t.br[0], false, &br[0]), 0);
        ck_assert_int_eq(local_new(shm, true, &br[1]), 0);
        ck_assert_int_eq(union_new(br, 2, true, &t.u), 0);
        ck_assert_int_eq(ugetattr(t.u, "f", &a), 0);
        ck_assert_int_eq(ugetattr(t.u, "g", &b), 0);
        ck_assert_int_eq((uint64_t)a.st_ino >> 56, 1);
        ck_assert_int_eq((uint64_t)b.st_ino >> 56, 2);
        t_done(&t);
        {
                char p[PATH_MAX];

                snprintf(p, sizeof(p), "%s/g", shm);
                unlink(p);
                rmdir(shm);
        }
}
END_TEST

START_TEST(test_read_only)
{
        LsInstance *u;
        LsFile *f;
        T t;

        t_init(&t, 2);
        hput(&t, 0, "top", "t");
        hput(&t, 1, "low", "l");
        t_union(&t, false);
        u = t.u;
        ck_assert_str_eq(uread(u, "low"), "l");
        ck_assert_str_eq(uread(u, "top"), "t");
        ck_assert_int_eq(u->ops->open(u, "top", O_WRONLY, 0, &me, &f), -EROFS);
        ck_assert_int_eq(u->ops->open(u, "low", O_RDWR, 0, &me, &f), -EROFS);
        ck_assert_int_eq(u->ops->open(u, "new", O_WRONLY | O_CREAT, 0644, &me, &f), -EROFS);
        ck_assert_int_eq(u->ops->mkdir(u, "d", 0755, &me), -EROFS);
        ck_assert_int_eq(u->ops->unlink(u, "low"), -EROFS);
        ck_assert_int_eq(u->ops->rename(u, "low", "x", 0), -EROFS);
        ck_assert_int_eq(u->ops->chmod(u, "low", 0600), -EROFS);
        ck_assert_int_eq(u->ops->truncate(u, "top", 0), -EROFS);
        ck_assert_int_eq(u->ops->link(u, "low", "l2"), -EROFS);
        ck_assert_int_eq(u->ops->symlink(u, "low", "s", &me), -EROFS);
        ck_assert(!hexists(&t, 0, "low"));
        t_done(&t);
}
END_TEST

#define NTHREADS 8
#define NSHARED  16
#define NOWN     32

static LsInstance *g_conc;

static void *conc_worker(void *arg)
{
        long id = (long)arg;
        char path[64], data[64];
        struct stat st;

        for (int i = 0; i < NOWN; i++) {
                snprintf(path, sizeof(path), "d%d/own-%ld-%d", i % 4, id, i);
                snprintf(data, sizeof(data), "%ld:%d", id, i);
                if (uwrite(g_conc, path, O_CREAT | O_EXCL, data, 0) != 0)
                        return (void *)1;
                if (ugetattr(g_conc, path, &st) != 0)
                        return (void *)2;
        }
        /* every thread writes its own byte of every shared lower file: a
         * copy-up done twice would lose some of them */
        for (int i = 0; i < NSHARED; i++) {
                LsFile *f;
                char c = (char)('A' + id);

                snprintf(path, sizeof(path), "d%d/shared-%d", i % 4, i);
                if (g_conc->ops->open(g_conc, path, O_WRONLY, 0, &me, &f) != 0)
                        return (void *)3;
                if (f->inst->ops->pwrite(f, &c, 1, id) != 1)
                        return (void *)4;
                f->inst->ops->release(f);
        }
        return NULL;
}

START_TEST(test_concurrency)
{
        pthread_t th[NTHREADS];
        Listing l;
        T t;

        t_init(&t, 3);
        for (int d = 0; d < 4; d++) {
                char p[64];

                snprintf(p, sizeof(p), "d%d", d);
                hmkdir(&t, 2, p);
                hmkdir(&t, 1, p);
        }
        for (int i = 0; i < NSHARED; i++) {
                char p[64];

                snprintf(p, sizeof(p), "d%d/shared-%d", i % 4, i);
                hput(&t, 2, p, "................");
        }
        t_union(&t, true);
        g_conc = t.u;
        for (long i = 0; i < NTHREADS; i++)
                ck_assert_int_eq(pthread_create(&th[i], NULL, conc_worker, (void *)i), 0);
        for (int i = 0; i < NTHREADS; i++) {
                void *ret;

                pthread_join(th[i], &ret);
                ck_assert_msg(ret == NULL, "worker %d failed: %ld", i, (long)ret);
        }
        for (int i = 0; i < NSHARED; i++) {
                char p[64];

                snprintf(p, sizeof(p), "d%d/shared-%d", i % 4, i);
                ck_assert_str_eq(uread(t.u, p), "ABCDEFGH........");
        }
        for (int d = 0; d < 4; d++) {
                char p[64];

                snprintf(p, sizeof(p), "d%d", d);
                ck_assert_int_eq(ulist(t.u, p, &l), 0);
                ck_assert_int_eq(l.n, NSHARED / 4 + NTHREADS * NOWN / 4);
        }
        t_done(&t);
}
END_TEST

/* Copy-up keeps the inode number (origin xattr in the top), in getattr,
 * readdir and fstat, across renames and hard links and a restart, and the
 * union's own xattrs cannot be seen or forged through it. */
START_TEST(test_copyup_keeps_ino)
{
        char p[PATH_MAX], list[512], val[16];
        struct stat a, b, c, l0, s0, g0, n0;
        LsInstance *u;
        Listing l;
        LsFile *f;
        ssize_t n;
        T t;

        t_init(&t, 2);
        hmkdir(&t, 1, "d");
        hput(&t, 1, "d/f", "lower f");
        hput(&t, 1, "c", "lower c");
        hput(&t, 1, "g", "lower g");
        hput(&t, 1, "m", "lower m");
        hpath(&t, 1, "s", p);
        ck_assert_int_eq(symlink("c", p), 0);
        t_union(&t, true);
        u = t.u;
        ck_assert_int_eq(ugetattr(u, "d/f", &a), 0);
        ck_assert_int_eq(ugetattr(u, "c", &l0), 0);
        ck_assert_int_eq(ugetattr(u, "s", &s0), 0);
        ck_assert_int_eq(ugetattr(u, "g", &g0), 0);
        ck_assert_int_eq(ugetattr(u, "m", &n0), 0);
        /* chmod copies up: same number, by getattr, readdir and fstat */
        ck_assert_int_eq(u->ops->chmod(u, "d/f", 0600), 0);
        ck_assert(hexists(&t, 0, "d/f"));
        ck_assert_int_eq(ugetattr(u, "d/f", &b), 0);
        ck_assert_int_eq(b.st_ino, a.st_ino);
        ck_assert_int_eq(b.st_mode & 0777, 0600);
        ck_assert_int_eq(ulist(u, "d", &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_int_eq(l.inos[0], a.st_ino);
        ck_assert_int_eq(u->ops->open(u, "d/f", O_RDONLY, 0, &me, &f), 0);
        ck_assert_int_eq(f->inst->ops->fstat(f, &c), 0);
        ck_assert_int_eq(c.st_ino, a.st_ino);
        f->inst->ops->release(f);
        /* write-open copies up: fstat of that very file, then getattr */
        ck_assert_int_eq(u->ops->open(u, "g", O_WRONLY, 0, &me, &f), 0);
        ck_assert_int_eq(f->inst->ops->fstat(f, &c), 0);
        ck_assert_int_eq(c.st_ino, g0.st_ino);
        f->inst->ops->release(f);
        ck_assert_int_eq(ugetattr(u, "g", &c), 0);
        ck_assert_int_eq(c.st_ino, g0.st_ino);
        /* a symlink too */
        ck_assert_int_eq(u->ops->chown(u, "s", 0, 0), 0);
        ck_assert(hexists(&t, 0, "s"));
        ck_assert_int_eq(ugetattr(u, "s", &c), 0);
        ck_assert(S_ISLNK(c.st_mode));
        ck_assert_int_eq(c.st_ino, s0.st_ino);
        /* link(lower c, c2): both names, one number, two links */
        ck_assert_int_eq(u->ops->mkdir(u, "new", 0755, &me), 0);
        ck_assert_int_eq(u->ops->link(u, "c", "new/c2"), 0);
        ck_assert_int_eq(ugetattr(u, "c", &a), 0);
        ck_assert_int_eq(ugetattr(u, "new/c2", &b), 0);
        ck_assert_int_eq(a.st_ino, l0.st_ino);
        ck_assert_int_eq(b.st_ino, l0.st_ino);
        ck_assert_int_eq(a.st_nlink, 2);
        ck_assert_int_eq(b.st_nlink, 2);
        ck_assert_int_eq(ulist(u, "new", &l), 0);
        ck_assert_int_eq(l.inos[0], l0.st_ino);
        /* rename into a directory that only the top holds (marked impure) */
        ck_assert_int_eq(u->ops->mkdir(u, "new2", 0755, &me), 0);
        ck_assert_int_eq(u->ops->rename(u, "m", "new2/m", 0), 0);
        ck_assert_int_eq(ugetattr(u, "new2/m", &c), 0);
        ck_assert_int_eq(c.st_ino, n0.st_ino);
        /* a merged directory renamed (its tree copied): files keep theirs */
        ck_assert_int_eq(ugetattr(u, "d/f", &a), 0);
        ck_assert_int_eq(u->ops->rename(u, "d", "d2", 0), 0);
        ck_assert_int_eq(ugetattr(u, "d2/f", &b), 0);
        ck_assert_int_eq(b.st_ino, a.st_ino);
        /* the union's xattrs: recorded in the top, invisible, unforgeable */
        hpath(&t, 0, "c", p);
        ck_assert_int_eq(lgetxattr(p, "trusted.danaus.origin", val, sizeof(val)), 8);
        n = u->ops->listxattr(u, "c", list, sizeof(list));
        ck_assert_int_ge(n, 0);
        for (ssize_t off = 0; off < n; off += (ssize_t)strlen(list + off) + 1)
                ck_assert_msg(strncmp(list + off, "trusted.danaus.", 15) != 0, "listed %s",
                              list + off);
        ck_assert_int_eq(u->ops->listxattr(u, "c", NULL, 0), n);
        ck_assert_int_eq(u->ops->getxattr(u, "c", "trusted.danaus.origin", val, sizeof(val)),
                         -ENODATA);
        ck_assert_int_eq(u->ops->setxattr(u, "c", "trusted.danaus.origin", "12345678", 8, 0),
                         -EPERM);
        ck_assert_int_eq(u->ops->setxattr(u, "new/c2", "trusted.danaus.impure", "", 0, 0), -EPERM);
        ck_assert_int_eq(u->ops->removexattr(u, "c", "trusted.danaus.origin"), -EPERM);
        ck_assert_int_eq(ugetattr(u, "c", &a), 0);
        ck_assert_int_eq(a.st_ino, l0.st_ino);
        /* a new file in place of a removed copy-up gets its own number */
        ck_assert_int_eq(u->ops->unlink(u, "g"), 0);
        ck_assert_int_eq(uwrite(u, "g", O_CREAT | O_EXCL, "new g", 0), 0);
        ck_assert_int_eq(ugetattr(u, "g", &a), 0);
        ck_assert_int_ne(a.st_ino, g0.st_ino);
        ck_assert_int_eq(hstat(&t, 0, "g", &b), 0);
        ck_assert_int_eq(a.st_ino, b.st_ino);
        t_done(&t);

        /* the numbers survive a restart (they live in the top) */
        t_union(&t, true);
        ck_assert_int_eq(ugetattr(t.u, "c", &a), 0);
        ck_assert_int_eq(a.st_ino, l0.st_ino);
        ck_assert_int_eq(ugetattr(t.u, "new2/m", &a), 0);
        ck_assert_int_eq(a.st_ino, n0.st_ino);
        ck_assert_int_eq(ugetattr(t.u, "s", &a), 0);
        ck_assert_int_eq(a.st_ino, s0.st_ino);
        t_done(&t);
}
END_TEST

/* A lower file with several links is copied up as a file of its own (the
 * links break): it must not keep the number the names still below report. */
START_TEST(test_copyup_lower_hardlinks)
{
        char p[PATH_MAX], q[PATH_MAX];
        struct stat a, b, f0;
        T t;

        t_init(&t, 2);
        hput(&t, 1, "f", "linked");
        hpath(&t, 1, "f", p);
        hpath(&t, 1, "g", q);
        ck_assert_int_eq(link(p, q), 0);
        t_union(&t, true);
        ck_assert_int_eq(ugetattr(t.u, "f", &f0), 0);
        ck_assert_int_eq(f0.st_nlink, 2);
        ck_assert_int_eq(t.u->ops->chmod(t.u, "f", 0600), 0);
        ck_assert_int_eq(ugetattr(t.u, "f", &a), 0);
        ck_assert_int_eq(ugetattr(t.u, "g", &b), 0);
        ck_assert_int_eq(b.st_ino, f0.st_ino);
        ck_assert_int_ne(a.st_ino, b.st_ino);
        hpath(&t, 0, "f", p);
        ck_assert_int_eq(lgetxattr(p, "trusted.danaus.origin", NULL, 0), -1);
        t_done(&t);
}
END_TEST

/* A file opened read-only below, then copied up by someone else, reads the
 * copy from then on (as overlayfs since 4.19); a different file created at
 * the same name later is not followed. */
START_TEST(test_open_follows_copyup)
{
        char buf[64];
        struct stat st, lst;
        LsFile *r1, *r2;
        LsInstance *u;
        T t;

        t_init(&t, 2);
        hput(&t, 1, "f", "lower data");
        hput(&t, 1, "g", "old g");
        t_union(&t, true);
        u = t.u;
        ck_assert_int_eq(ugetattr(u, "f", &lst), 0);
        ck_assert_int_eq(u->ops->open(u, "f", O_RDONLY, 0, &me, &r1), 0);
        ck_assert_int_eq(r1->inst->ops->pread(r1, buf, sizeof(buf), 0), 10);
        ck_assert_int_eq(uwrite(u, "f", O_TRUNC, "NEW", 0), 0);
        memset(buf, 0, sizeof(buf));
        ck_assert_int_eq(r1->inst->ops->pread(r1, buf, sizeof(buf), 0), 3);
        ck_assert_str_eq(buf, "NEW");
        ck_assert_int_eq(r1->inst->ops->fstat(r1, &st), 0);
        ck_assert_int_eq(st.st_size, 3);
        ck_assert_int_eq(st.st_ino, lst.st_ino);
        /* the kernel fd a front splices from is the copy's too */
        ck_assert_int_ge(r1->inst->ops->file_fd(r1), 0);
        ck_assert_int_eq(pread(r1->inst->ops->file_fd(r1), buf, 3, 0), 3);
        ck_assert_int_eq(memcmp(buf, "NEW", 3), 0);
        /* later writes through the union show as well */
        ck_assert_int_eq(uwrite(u, "f", 0, "ne", 0), 0);
        ck_assert_int_eq(r1->inst->ops->pread(r1, buf, 3, 0), 3);
        ck_assert_int_eq(memcmp(buf, "neW", 3), 0);
        ck_assert_int_eq(r1->inst->ops->release(r1), 0);

        /* removed and re-created: a new file, the old fd keeps the old data */
        ck_assert_int_eq(u->ops->open(u, "g", O_RDONLY, 0, &me, &r2), 0);
        ck_assert_int_eq(u->ops->unlink(u, "g"), 0);
        ck_assert_int_eq(uwrite(u, "g", O_CREAT | O_EXCL, "brand new", 0), 0);
        ck_assert_int_eq(u->ops->chmod(u, "g", 0600), 0);
        memset(buf, 0, sizeof(buf));
        ck_assert_int_eq(r2->inst->ops->pread(r2, buf, sizeof(buf), 0), 5);
        ck_assert_str_eq(buf, "old g");
        ck_assert_int_eq(r2->inst->ops->release(r2), 0);
        t_done(&t);
}
END_TEST

/* Many readers of a lower file while it is copied up: every read returns
 * either the old or the new content, whole, and ends on the new one. */
static LsFile *g_follow_file;
static atomic_int g_follow_stop;

static void *follow_reader(void *arg)
{
        char buf[32];
        long bad = 0;

        while (!atomic_load(&g_follow_stop)) {
                ssize_t n = g_follow_file->inst->ops->pread(g_follow_file, buf, sizeof(buf), 0);

                if (!(n == 8 && memcmp(buf, "OLDOLDOL", 8) == 0) &&
                    !(n == 8 && memcmp(buf, "NEWNEWNE", 8) == 0))
                        bad++;
        }
        return (void *)bad;
}

START_TEST(test_open_follows_copyup_threads)
{
        pthread_t th[4];
        char buf[16];
        T t;

        t_init(&t, 2);
        hput(&t, 1, "f", "OLDOLDOL");
        t_union(&t, true);
        ck_assert_int_eq(t.u->ops->open(t.u, "f", O_RDONLY, 0, &me, &g_follow_file), 0);
        atomic_store(&g_follow_stop, 0);
        for (int i = 0; i < 4; i++)
                ck_assert_int_eq(pthread_create(&th[i], NULL, follow_reader, NULL), 0);
        usleep(20000);
        ck_assert_int_eq(uwrite(t.u, "f", 0, "NEWNEWNE", 0), 0);
        usleep(20000);
        atomic_store(&g_follow_stop, 1);
        for (int i = 0; i < 4; i++) {
                void *ret;

                pthread_join(th[i], &ret);
                ck_assert_int_eq((long)ret, 0);
        }
        ck_assert_int_eq(g_follow_file->inst->ops->pread(g_follow_file, buf, 8, 0), 8);
        ck_assert_int_eq(memcmp(buf, "NEWNEWNE", 8), 0);
        g_follow_file->inst->ops->release(g_follow_file);
        t_done(&t);
}
END_TEST

/* A copy-up marks the parent impure, then publishes the copy; a getattr that
 * read the parent's stack before the mark and found the copy after it once
 * reported the copy's own inode number (the front then took the file for a
 * new one). Each directory is copied into only once, so each copy-up is the
 * first in its directory: the window is there every time. */
#define INO_RACE_DIRS 300
static atomic_int g_ino_race_cur;
static LsInstance *g_ino_race_u;

static void *ino_race_copier(void *arg)
{
        char p[64];

        for (int i = 0; i < INO_RACE_DIRS; i++) {
                snprintf(p, sizeof(p), "d%03d/f", i);
                atomic_store(&g_ino_race_cur, i);
                usleep(200);
                ck_assert_int_eq(g_ino_race_u->ops->chmod(g_ino_race_u, p, 0600), 0);
                usleep(200);
        }
        atomic_store(&g_ino_race_cur, INO_RACE_DIRS);
        return arg;
}

START_TEST(test_copyup_ino_race)
{
        static ino_t inos[INO_RACE_DIRS];
        char p[64];
        pthread_t th;
        struct stat st;
        long bad = 0;
        T t;
        int i;

        t_init(&t, 2);
        for (i = 0; i < INO_RACE_DIRS; i++) {
                snprintf(p, sizeof(p), "d%03d", i);
                hmkdir(&t, 1, p);
                snprintf(p, sizeof(p), "d%03d/f", i);
                hput(&t, 1, p, "lower");
        }
        t_union(&t, true);
        g_ino_race_u = t.u;
        for (i = 0; i < INO_RACE_DIRS; i++) {
                snprintf(p, sizeof(p), "d%03d/f", i);
                ck_assert_int_eq(ugetattr(t.u, p, &st), 0);
                inos[i] = st.st_ino;
                /* a file made in the top: the directory is cached as "not
                 * impure" when its number is asked for */
                snprintf(p, sizeof(p), "d%03d/u", i);
                ck_assert_int_eq(uwrite(t.u, p, O_CREAT, "u", 0), 0);
                ck_assert_int_eq(ugetattr(t.u, p, &st), 0);
        }
        atomic_store(&g_ino_race_cur, 0);
        ck_assert_int_eq(pthread_create(&th, NULL, ino_race_copier, NULL), 0);
        while ((i = atomic_load(&g_ino_race_cur)) < INO_RACE_DIRS) {
                snprintf(p, sizeof(p), "d%03d/f", i);
                if (ugetattr(t.u, p, &st) == 0 && st.st_ino != inos[i])
                        bad++;
        }
        pthread_join(th, NULL);
        ck_assert_msg(bad == 0, "%ld getattrs saw another inode number during copy-up", bad);
        t_done(&t);
}
END_TEST

/* difftest seed 2: a lower-only directory (whose parent is not in the top)
 * renamed onto an empty merged directory: the old name's whiteout needs the
 * parent copied up (was -ENOENT, after the tree had been moved). */
START_TEST(test_rename_dir_parent_lower)
{
        struct stat st;
        Listing l;
        LsInstance *u;
        T t;

        t_init(&t, 3);
        hmkdir(&t, 1, "f");
        hmkdir(&t, 1, "f/b");
        hput(&t, 1, "f/b/x", "x");
        hmkdir(&t, 1, "h");
        hmkdir(&t, 1, "h/g");
        hput(&t, 1, "h/g/.wh.d", "");
        hmkdir(&t, 2, "h");
        hmkdir(&t, 2, "h/g");
        hmkdir(&t, 2, "h/g/d");
        t_union(&t, true);
        u = t.u;
        ck_assert_int_eq(u->ops->rename(u, "f/b", "h/g", 0), 0);
        ck_assert_int_eq(ugetattr(u, "f/b", &st), -ENOENT);
        ck_assert_str_eq(uread(u, "h/g/x"), "x");
        ck_assert_int_eq(ulist(u, "h/g", &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_int_eq(ulist(u, "f", &l), 0);
        ck_assert_int_eq(l.n, 0);
        t_done(&t);
}
END_TEST

static Suite *union_suite(void)
{
        Suite *s = suite_create("union");
        struct {
                const char *name;
                const TTest *test;
        } cases[] = {
            {"lookup_order", test_lookup_order},
            {"lookup_cost", test_lookup_cost},
            {"whiteout_hiding", test_whiteout_hiding},
            {"opaque_dir", test_opaque_dir},
            {"wh_invisible", test_wh_invisible},
            {"copyup_attrs", test_copyup_attrs},
            {"copyup_sparse", test_copyup_sparse},
            {"unlink_rmdir_whiteouts", test_unlink_rmdir_whiteouts},
            {"rmdir_notempty", test_rmdir_notempty},
            {"mkdir_over_whiteout", test_mkdir_over_whiteout},
            {"readdir_merge", test_readdir_merge},
            {"rename_file", test_rename_file},
            {"rename_dir_upper", test_rename_dir_upper},
            {"rename_dir_lower", test_rename_dir_lower},
            {"hardlink_lower", test_hardlink_lower},
            {"symlink", test_symlink},
            {"xattr_statfs", test_xattr_statfs},
            {"inode_numbers", test_inode_numbers},
            {"read_only", test_read_only},
            {"concurrency", test_concurrency},
            {"copyup_keeps_ino", test_copyup_keeps_ino},
            {"copyup_lower_hardlinks", test_copyup_lower_hardlinks},
            {"open_follows_copyup", test_open_follows_copyup},
            {"open_follows_copyup_threads", test_open_follows_copyup_threads},
            {"rename_dir_parent_lower", test_rename_dir_parent_lower},
            {"lookcache_invalidation", test_lookcache_invalidation},
            {"copyup_ino_race", test_copyup_ino_race},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                TCase *tc = tcase_create(cases[i].name);

                tcase_set_timeout(tc, 60);
                tcase_add_test(tc, cases[i].test);
                suite_add_tcase(s, tc);
        }
        return s;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path) < 0 ? 0 : 0;
}

int main(void)
{
        SRunner *sr;
        const char *tmp = getenv("TMPDIR");
        int failed;

        snprintf(g_base, sizeof(g_base), "%s/test-union-XXXXXX", tmp ? tmp : "/tmp");
        if (!mkdtemp(g_base)) {
                perror("mkdtemp");
                return 1;
        }
        sr = srunner_create(union_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        nftw(g_base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return failed ? 1 : 0;
}
