/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of the union libservice: branches are directory handles of
 * local instances over temp directories filled with host syscalls. Most
 * cases give each lower branch its own read-only instance (any write the
 * union tried there would fail the test); others stack every branch on one
 * shared instance, as a pool does (t_union_shared()). A small helper walks
 * a path with ls_walk() and calls the operation on parent + name, which
 * keeps the cases readable.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "libservice/local.h"
#include "libservice/union.h"

#define MAXB 4

static char g_base[256];

typedef struct T {
        char dir[PATH_MAX];
        char br[MAXB][PATH_MAX];
        size_t n;
        LsInstance *backs[MAXB];
        size_t n_backs;
        LsInstance *u;
        LsNode *root;
} T;

static const LsCred me = {0, 0};

/* --- host side helpers --------------------------------------------------- */

static void hpath(const T *t, int b, const char *rel, char *out)
{
        int n = snprintf(out, PATH_MAX, "%s/%s", t->br[b], rel);

        ck_assert(n > 0 && n < PATH_MAX);
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
        memset(t, 0, sizeof(*t));
        snprintf(t->dir, sizeof(t->dir), "%s/XXXXXX", g_base);
        ck_assert(mkdtemp(t->dir));
        t->n = n;
        for (size_t i = 0; i < n; i++) {
                int k = snprintf(t->br[i], sizeof(t->br[i]), "%s/b%zu", t->dir, i);

                ck_assert(k > 0 && k < (int)sizeof(t->br[i]));
                ck_assert(mkdir(t->br[i], 0755) == 0);
        }
}

static void t_make(T *t, UnionBranch *br, bool writable)
{
        ck_assert_int_eq(union_new(br, t->n, writable, &t->u), 0);
        for (size_t i = 0; i < t->n; i++)
                ls_node_unref(br[i].root);
        ck_assert_int_eq(t->u->ops->root(t->u, &t->root), 0);
}

/* Each branch its own instance; lower ones (and a read-only top) read-only. */
static void t_union(T *t, bool writable)
{
        UnionBranch br[MAXB];

        for (size_t i = 0; i < t->n; i++) {
                LsInstance *b;

                ck_assert_int_eq(local_new(t->br[i], i > 0 || !writable, &b), 0);
                ck_assert_int_eq(b->ops->root(b, &br[i].root), 0);
                t->backs[t->n_backs++] = b;
        }
        t_make(t, br, writable);
}

/* Every branch a handle of one instance over t->dir (one client per pool). */
static void t_union_shared(T *t, bool writable)
{
        UnionBranch br[MAXB];
        LsInstance *b;
        LsNode *r;

        ck_assert_int_eq(local_new(t->dir, false, &b), 0);
        t->backs[t->n_backs++] = b;
        ck_assert_int_eq(b->ops->root(b, &r), 0);
        for (size_t i = 0; i < t->n; i++) {
                char name[32];

                snprintf(name, sizeof(name), "b%zu", i);
                ck_assert_int_eq(ls_walk(r, name, &br[i].root), 0);
        }
        ls_node_unref(r);
        t_make(t, br, writable);
}

static void t_done(T *t)
{
        t->root = ls_node_unref(t->root);
        t->u = ls_instance_unref(t->u);
        for (size_t i = 0; i < t->n_backs; i++)
                ls_instance_unref(t->backs[i]);
        t->n_backs = 0;
}

/* --- union side helpers: a path walked with ls_walk(), the op on parent +
 * name ---------------------------------------------------------------------- */

static int uwalk(T *t, const char *path, LsNode **np)
{
        return ls_walk(t->root, path, np);
}

/* The parent's handle and the last name of path. */
static int usplit(T *t, const char *path, LsNode **dirp, char *name)
{
        const char *slash = strrchr(path, '/');
        char dir[PATH_MAX];

        if (!slash) {
                snprintf(name, NAME_MAX + 1, "%s", path);
                *dirp = ls_node_ref(t->root);
                return 0;
        }
        snprintf(name, NAME_MAX + 1, "%s", slash + 1);
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
        return uwalk(t, dir, dirp);
}

static int ugetattr(T *t, const char *path, struct stat *st)
{
        LsNode *n;
        int r = uwalk(t, path, &n);

        if (r < 0)
                return r;
        r = ls_ops(n)->getattr(n, st);
        ls_node_unref(n);
        return r;
}

#define DIR_OP(call)                                                                               \
        do {                                                                                       \
                char name[NAME_MAX + 1];                                                           \
                LsNode *d, *made = NULL;                                                           \
                int r = usplit(t, path, &d, name);                                                 \
                                                                                                   \
                if (r < 0)                                                                         \
                        return r;                                                                  \
                r = call;                                                                          \
                ls_node_unref(made);                                                               \
                ls_node_unref(d);                                                                  \
                return r;                                                                          \
        } while (0)

static int umkdir(T *t, const char *path, mode_t mode)
{
        DIR_OP(ls_ops(d)->mkdir(d, name, mode, &me, &made, NULL));
}

static int umknod(T *t, const char *path, mode_t mode)
{
        DIR_OP(ls_ops(d)->mknod(d, name, mode, 0, &me, &made, NULL));
}

static int usymlink(T *t, const char *target, const char *path)
{
        DIR_OP(ls_ops(d)->symlink(d, name, target, &me, &made, NULL));
}

static int uunlink(T *t, const char *path)
{
        DIR_OP(ls_ops(d)->unlink(d, name));
}

static int urmdir(T *t, const char *path)
{
        DIR_OP(ls_ops(d)->rmdir(d, name));
}

static int ulink(T *t, const char *old, const char *path)
{
        LsNode *o;
        int r0 = uwalk(t, old, &o);

        if (r0 < 0)
                return r0;
        {
                char name[NAME_MAX + 1];
                LsNode *d;
                int r = usplit(t, path, &d, name);

                if (r == 0) {
                        r = ls_ops(d)->link(o, d, name, NULL);
                        ls_node_unref(d);
                }
                ls_node_unref(o);
                return r;
        }
}

static int urename(T *t, const char *old, const char *path, unsigned flags)
{
        char oname[NAME_MAX + 1], name[NAME_MAX + 1];
        LsNode *od, *d;
        int r = usplit(t, old, &od, oname);

        if (r < 0)
                return r;
        r = usplit(t, path, &d, name);
        if (r == 0) {
                r = ls_ops(d)->rename(od, oname, d, name, flags);
                ls_node_unref(d);
        }
        ls_node_unref(od);
        return r;
}

static int usetattr(T *t, const char *path, const LsSetattr *sa)
{
        LsNode *n;
        int r = uwalk(t, path, &n);

        if (r < 0)
                return r;
        r = ls_ops(n)->setattr(n, sa, NULL);
        ls_node_unref(n);
        return r;
}

static int uchmod(T *t, const char *path, mode_t mode)
{
        LsSetattr sa = {.valid = LS_SET_MODE, .mode = mode};

        return usetattr(t, path, &sa);
}

static int uchown(T *t, const char *path, uid_t uid, gid_t gid)
{
        LsSetattr sa = {.valid = LS_SET_UID | LS_SET_GID, .uid = uid, .gid = gid};

        return usetattr(t, path, &sa);
}

static int utruncate(T *t, const char *path, off_t size)
{
        LsSetattr sa = {.valid = LS_SET_SIZE, .size = size};

        return usetattr(t, path, &sa);
}

static int usetxattr(T *t, const char *path, const char *name, const void *v, size_t size)
{
        LsNode *n;
        int r = uwalk(t, path, &n);

        if (r < 0)
                return r;
        r = ls_ops(n)->setxattr(n, name, v, size, 0);
        ls_node_unref(n);
        return r;
}

static int uremovexattr(T *t, const char *path, const char *name)
{
        LsNode *n;
        int r = uwalk(t, path, &n);

        if (r < 0)
                return r;
        r = ls_ops(n)->removexattr(n, name);
        ls_node_unref(n);
        return r;
}

static ssize_t ugetxattr(T *t, const char *path, const char *name, void *v, size_t size)
{
        LsNode *n;
        ssize_t r = uwalk(t, path, &n);

        if (r < 0)
                return r;
        r = ls_ops(n)->getxattr(n, name, v, size);
        ls_node_unref(n);
        return r;
}

static ssize_t ulistxattr(T *t, const char *path, char *list, size_t size)
{
        LsNode *n;
        ssize_t r = uwalk(t, path, &n);

        if (r < 0)
                return r;
        r = ls_ops(n)->listxattr(n, list, size);
        ls_node_unref(n);
        return r;
}

static ssize_t ureadlink(T *t, const char *path, char *buf, size_t size)
{
        LsNode *n;
        ssize_t r = uwalk(t, path, &n);

        if (r < 0)
                return r;
        r = ls_ops(n)->readlink(n, buf, size);
        ls_node_unref(n);
        return r;
}

/* open(2)-like: O_CREAT goes through create on the parent. */
static int uopen(T *t, const char *path, int flags, mode_t mode, LsFile **fp)
{
        LsNode *n;
        int r;

        if (flags & O_CREAT) {
                char name[NAME_MAX + 1];
                LsNode *d;

                r = usplit(t, path, &d, name);
                if (r < 0)
                        return r;
                r = ls_ops(d)->create(d, name, flags, mode, &me, &n, NULL, fp);
                ls_node_unref(d);
                if (r == 0)
                        ls_node_unref(n);
                return r;
        }
        r = uwalk(t, path, &n);
        if (r < 0)
                return r;
        r = ls_ops(n)->open(n, flags, fp);
        ls_node_unref(n);
        return r;
}

static ssize_t fread_at(LsFile *f, void *buf, size_t size, off_t off)
{
        return ls_ops(f->node)->pread(f, buf, size, off);
}

static int frelease(LsFile *f)
{
        return ls_ops(f->node)->release(f);
}

static char *uread(T *t, const char *path)
{
        static char buf[1 << 16];
        LsFile *f;
        ssize_t n;
        int r;

        r = uopen(t, path, O_RDONLY, 0, &f);
        ck_assert_msg(r == 0, "open %s: %d", path, r);
        n = fread_at(f, buf, sizeof(buf) - 1, 0);
        ck_assert(n >= 0);
        buf[n] = '\0';
        frelease(f);
        return buf;
}

static int uwrite(T *t, const char *path, int flags, const char *data, off_t off)
{
        LsFile *f;
        int r;

        r = uopen(t, path, O_WRONLY | flags, 0644, &f);
        if (r < 0)
                return r;
        ck_assert_int_eq(ls_ops(f->node)->pwrite(f, data, strlen(data), off, 0),
                         (ssize_t)strlen(data));
        return frelease(f);
}

typedef struct Listing {
        char names[128][NAME_MAX + 1];
        ino_t inos[128];
        int n;
} Listing;

static int listing_fill(void *ctx, const char *name, ino_t ino, unsigned char type)
{
        Listing *l = ctx;

        (void)type;
        ck_assert_int_lt(l->n, 128);
        snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
        l->inos[l->n++] = ino;
        return 0;
}

static int ulist(T *t, const char *path, Listing *l)
{
        LsNode *n;
        int r;

        memset(l, 0, sizeof(*l));
        r = uwalk(t, path, &n);
        if (r < 0)
                return r;
        r = ls_ops(n)->readdir(n, listing_fill, l);
        ls_node_unref(n);
        return r;
}

static bool listing_has(const Listing *l, const char *name)
{
        for (int i = 0; i < l->n; i++)
                if (strcmp(l->names[i], name) == 0)
                        return true;
        return false;
}

/* Counts lookup calls on a branch by swapping in a copy of its ops. */
static LsOps counted_ops;
static int (*counted_real)(LsNode *, const char *, LsNode **, struct stat *);
static atomic_int counted_calls;

static int counted_lookup(LsNode *dir, const char *name, LsNode **np, struct stat *st)
{
        atomic_fetch_add(&counted_calls, 1);
        return counted_real(dir, name, np, st);
}

/* Fails renames in the top branch while fail_renames is set (to inject a
 * failure into the step of rmdir or rename that can fail). */
static LsOps failing_ops;
static int (*failing_real)(LsNode *, const char *, LsNode *, const char *, unsigned);
static atomic_int fail_renames;

static int failing_rename(LsNode *od, const char *on, LsNode *nd, const char *nn, unsigned flags)
{
        if (atomic_load(&fail_renames))
                return -EIO;
        return failing_real(od, on, nd, nn, flags);
}

/* --- tests --------------------------------------------------------------- */

START_TEST(test_lookup_order)
{
        struct stat st;
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
        ck_assert_str_eq(uread(&t, "f"), "top");
        ck_assert_str_eq(uread(&t, "g"), "mid");
        ck_assert_str_eq(uread(&t, "h"), "bot");
        ck_assert_str_eq(uread(&t, "d/x"), "deep");
        ck_assert_int_eq(ugetattr(&t, "nope", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(&t, "f/x", &st), -ENOTDIR);
        ck_assert_int_eq(ugetattr(&t, "", &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        /* handles are unique: two lookups, one pointer */
        {
                LsNode *a, *b;

                ck_assert_int_eq(uwalk(&t, "d/x", &a), 0);
                ck_assert_int_eq(uwalk(&t, "d/x", &b), 0);
                ck_assert_ptr_eq(a, b);
                ls_node_unref(a);
                ls_node_unref(b);
        }
        t_done(&t);
}
END_TEST

START_TEST(test_lookup_cost)
{
        UnionBranch br[3];
        struct stat st;
        LsNode *d, *x;
        T t;

        t_init(&t, 3);
        hmkdir(&t, 0, "d");
        hmkdir(&t, 1, "d");
        hmkdir(&t, 2, "d");
        hput(&t, 0, "d/top", "x");
        hput(&t, 2, "d/bot", "x");
        for (int i = 0; i < 3; i++) {
                ck_assert_int_eq(local_new(t.br[i], i > 0, &t.backs[i]), 0);
                /* one shared counting table: every branch is a local */
                counted_ops = *t.backs[i]->ops;
                counted_real = t.backs[i]->ops->lookup;
                counted_ops.lookup = counted_lookup;
                t.backs[i]->ops = &counted_ops;
                ck_assert_int_eq(t.backs[i]->ops->root(t.backs[i], &br[i].root), 0);
        }
        t.n_backs = 3;
        t_make(&t, br, true);
        ck_assert_int_eq(uwalk(&t, "d", &d), 0);
        /* a file in the top: one branch lookup */
        atomic_store(&counted_calls, 0);
        ck_assert_int_eq(ls_ops(d)->lookup(d, "top", &x, &st), 0);
        ck_assert_int_eq(atomic_load(&counted_calls), 1);
        ls_node_unref(x);
        /* a bottom file: one lookup and one whiteout check per branch passed */
        atomic_store(&counted_calls, 0);
        ck_assert_int_eq(ls_ops(d)->lookup(d, "bot", &x, &st), 0);
        ck_assert_int_eq(atomic_load(&counted_calls), 5);
        ls_node_unref(x);
        /* (the path-keyed lookup cache is gone: the core caches nodes) */
        ls_node_unref(d);
        t_done(&t);
}
END_TEST

/* Every change that moves where a lower name resolves is seen. */
START_TEST(test_lookup_invalidation)
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
                ck_assert_int_eq(ugetattr(&t, "d/gone", &st), 0);
                ck_assert_int_eq(ugetattr(&t, "d/chm", &st), 0);
                ck_assert_int_eq(ugetattr(&t, "d/mv", &st), 0);
                ck_assert_int_eq(ugetattr(&t, "d/mid", &st), 0);
        }
        ck_assert_int_eq(st.st_size, 1);
        ck_assert_int_eq(uunlink(&t, "d/gone"), 0);
        ck_assert_int_eq(ugetattr(&t, "d/gone", &st), -ENOENT);
        ck_assert_int_eq(uchmod(&t, "d/chm", 0600), 0);
        ck_assert_int_eq(ugetattr(&t, "d/chm", &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0600);
        ck_assert(hexists(&t, 0, "d/chm"));
        ck_assert_int_eq(urename(&t, "d/mv", "d/mv2", 0), 0);
        ck_assert_int_eq(ugetattr(&t, "d/mv", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(&t, "d/mv2", &st), 0);
        /* the middle branch's "mid" goes: the bottom's must stay hidden */
        ck_assert_int_eq(uunlink(&t, "d/mid"), 0);
        ck_assert_int_eq(ugetattr(&t, "d/mid", &st), -ENOENT);
        ck_assert_str_eq(uread(&t, "d/chm"), "x");
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
        ck_assert_int_eq(ugetattr(&t, "x", &st), -ENOENT);
        ck_assert_str_eq(uread(&t, "y"), "top");
        ck_assert_str_eq(uread(&t, "z"), "top");
        ck_assert_int_eq(ugetattr(&t, "d", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(&t, "d/f", &st), -ENOENT);
        ck_assert_int_eq(ulist(&t, "", &l), 0);
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
        ck_assert_int_eq(ulist(&t, "d", &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_str_eq(l.names[0], "a");
        ck_assert_int_eq(ugetattr(&t, "d/b", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(&t, "d/a", &st), 0);
        t_done(&t);
}
END_TEST

START_TEST(test_wh_invisible)
{
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
        ck_assert_int_eq(ugetattr(&t, ".wh.gone", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(&t, ".wh..wh..opq", &st), -ENOENT);
        ck_assert_int_eq(ulist(&t, "", &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_str_eq(l.names[0], "f");
        ck_assert_int_eq(uopen(&t, ".wh.foo", O_WRONLY | O_CREAT, 0644, &f), -EINVAL);
        ck_assert_int_eq(umkdir(&t, ".wh.d", 0755), -EINVAL);
        ck_assert_int_eq(umknod(&t, ".wh.n", S_IFIFO | 0644), -EINVAL);
        ck_assert_int_eq(usymlink(&t, "f", ".wh.s"), -EINVAL);
        ck_assert_int_eq(ulink(&t, "f", ".wh.l"), -EINVAL);
        ck_assert_int_eq(urename(&t, "f", ".wh.r", 0), -EINVAL);
        ck_assert_int_eq(uunlink(&t, ".wh.gone"), -ENOENT);
        ck_assert_int_eq(urmdir(&t, ".wh.gone"), -ENOENT);
        ck_assert(!hexists(&t, 0, ".wh.foo") && !hexists(&t, 0, ".wh.d"));
        t_done(&t);
}
END_TEST

/* security.capability with one permitted capability (VFS_CAP_REVISION_2). */
static const unsigned char g_cap[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
                                        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

START_TEST(test_copyup_attrs)
{
        struct stat lst, tst, before;
        char p[PATH_MAX], val[32];
        struct timespec ts[2] = {{1000000, 0}, {2000000, 500}};
        bool cap;
        T t;

        t_init(&t, 2);
        hmkdir(&t, 1, "a");
        hmkdir(&t, 1, "a/b");
        hput(&t, 1, "a/b/f", "lower data");
        hpath(&t, 1, "a/b/f", p);
        ck_assert_int_eq(chown(p, 1234, 5678), 0);
        ck_assert_int_eq(chmod(p, 04751), 0);
        ck_assert_int_eq(lsetxattr(p, "user.keep", "v1", 2, 0), 0);
        cap = lsetxattr(p, "security.capability", g_cap, sizeof(g_cap), 0) == 0;
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
        ck_assert_int_eq(usetxattr(&t, "a/b/f", "user.new", "v2", 2), 0);
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
        /* chown clears security.capability: it must be set after the owner */
        if (cap) {
                ck_assert_int_eq(lgetxattr(p, "security.capability", val, sizeof(val)),
                                 (ssize_t)sizeof(g_cap));
                ck_assert_int_eq(memcmp(val, g_cap, sizeof(g_cap)), 0);
        }
        ck_assert_str_eq(uread(&t, "a/b/f"), "lower data");
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
        ck_assert_int_eq(uwrite(&t, "w", 0, "AB", 2), 0);
        ck_assert_str_eq(uread(&t, "w"), "01AB456789");
        ck_assert_int_eq(hstat(&t, 1, "w", &lst), 0);
        ck_assert_int_eq(lst.st_size, 10);
        ck_assert_int_eq(uwrite(&t, "w", O_TRUNC, "z", 0), 0);
        ck_assert_str_eq(uread(&t, "w"), "z");
        t_done(&t);
}
END_TEST

START_TEST(test_copyup_sparse)
{
        const off_t size = 64 << 20;
        char p[PATH_MAX], buf[4096];
        struct stat st;
        LsFile *f;
        off_t o;
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
        ck_assert_int_eq(uchmod(&t, "sparse", 0600), 0);
        ck_assert_int_eq(hstat(&t, 0, "sparse", &st), 0);
        ck_assert_int_eq(st.st_size, size);
        ck_assert_msg(st.st_blocks * 512 < (4 << 20), "copy not sparse: %lld blocks",
                      (long long)st.st_blocks);
        ck_assert_int_eq(uopen(&t, "sparse", O_RDONLY, 0, &f), 0);
        ck_assert_int_eq(fread_at(f, buf, 6, 32 << 20), 6);
        ck_assert_int_eq(memcmp(buf, "middle", 6), 0);
        ck_assert_int_eq(fread_at(f, buf, 4, 0), 4);
        ck_assert_int_eq(memcmp(buf, "head", 4), 0);
        ck_assert_int_eq(fread_at(f, buf, 4, 16 << 20), 4);
        ck_assert_int_eq(memcmp(buf, "\0\0\0\0", 4), 0);
        /* lseek through the union */
        o = ls_ops(f->node)->lseek(f, 1 << 20, SEEK_DATA);
        ck_assert_int_ge(o, 1 << 20);
        ck_assert_int_le(o, 32 << 20);
        ck_assert_int_eq(ls_ops(f->node)->lseek(f, 0, SEEK_HOLE) < size, 1);
        frelease(f);
        t_done(&t);
}
END_TEST

START_TEST(test_unlink_rmdir_whiteouts)
{
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
        ck_assert_int_eq(uunlink(&t, "x"), 0);
        ck_assert_int_eq(ugetattr(&t, "x", &st), -ENOENT);
        ck_assert(hexists(&t, 0, ".wh.x"));
        ck_assert(hexists(&t, 1, "x"));
        ck_assert_int_eq(uunlink(&t, "y"), 0); /* upper only: no whiteout */
        ck_assert(!hexists(&t, 0, ".wh.y") && !hexists(&t, 0, "y"));
        ck_assert_int_eq(uunlink(&t, "z"), 0); /* both: gone from top + whiteout */
        ck_assert(hexists(&t, 0, ".wh.z") && !hexists(&t, 0, "z"));
        ck_assert_int_eq(ugetattr(&t, "z", &st), -ENOENT);
        ck_assert_int_eq(uunlink(&t, "d"), -EISDIR);
        ck_assert_int_eq(urmdir(&t, "d"), 0);
        ck_assert(hexists(&t, 0, ".wh.d") && hexists(&t, 1, "d"));
        ck_assert_int_eq(ugetattr(&t, "d", &st), -ENOENT);
        ck_assert_int_eq(uunlink(&t, "sub/f"), 0);
        ck_assert(hexists(&t, 0, "sub/.wh.f"));
        ck_assert_int_eq(ulist(&t, "", &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_str_eq(l.names[0], "sub");
        /* a file recreated over its whiteout */
        ck_assert_int_eq(uwrite(&t, "x", O_CREAT | O_EXCL, "new", 0), 0);
        ck_assert_str_eq(uread(&t, "x"), "new");
        ck_assert(!hexists(&t, 0, ".wh.x"));
        t_done(&t);
}
END_TEST

START_TEST(test_rmdir_notempty)
{
        struct stat st;
        T t;

        t_init(&t, 3);
        hmkdir(&t, 1, "d");
        hmkdir(&t, 2, "d");
        hput(&t, 1, "d/a", "mid");
        hput(&t, 2, "d/b", "bot");
        t_union(&t, true);
        ck_assert_int_eq(urmdir(&t, "d"), -ENOTEMPTY);
        ck_assert_int_eq(uwrite(&t, "d/c", O_CREAT, "top", 0), 0);
        ck_assert_int_eq(uunlink(&t, "d/a"), 0);
        ck_assert_int_eq(uunlink(&t, "d/b"), 0);
        ck_assert_int_eq(urmdir(&t, "d"), -ENOTEMPTY);
        ck_assert_int_eq(uunlink(&t, "d/c"), 0);
        /* only whiteouts left in the top dir: empty in the union */
        ck_assert(hexists(&t, 0, "d/.wh.a"));
        ck_assert_int_eq(urmdir(&t, "d"), 0);
        ck_assert_int_eq(ugetattr(&t, "d", &st), -ENOENT);
        ck_assert(!hexists(&t, 0, "d") && hexists(&t, 0, ".wh.d"));
        ck_assert(hexists(&t, 1, "d/a") && hexists(&t, 2, "d/b"));
        t_done(&t);
}
END_TEST

START_TEST(test_mkdir_over_whiteout)
{
        struct stat st;
        Listing l;
        T t;

        t_init(&t, 2);
        hmkdir(&t, 1, "d");
        hput(&t, 1, "d/f", "low");
        t_union(&t, true);
        ck_assert_int_eq(uunlink(&t, "d/f"), 0);
        ck_assert_int_eq(urmdir(&t, "d"), 0);
        ck_assert_int_eq(umkdir(&t, "d", 0700), 0);
        ck_assert_int_eq(ugetattr(&t, "d", &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_int_eq(st.st_mode & 0777, 0700);
        ck_assert_int_eq(ulist(&t, "d", &l), 0);
        ck_assert_int_eq(l.n, 0);
        ck_assert_int_eq(ugetattr(&t, "d/f", &st), -ENOENT);
        ck_assert(hexists(&t, 0, "d/.wh..wh..opq"));
        ck_assert(!hexists(&t, 0, ".wh.d"));
        ck_assert_int_eq(umkdir(&t, "d", 0700), -EEXIST);
        /* a fresh name gets no marker */
        ck_assert_int_eq(umkdir(&t, "e", 0755), 0);
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
        ck_assert_int_eq(ulist(&t, "", &l), 0);
        ck_assert_int_eq(l.n, 5);
        ck_assert(listing_has(&l, "a") && listing_has(&l, "b") && listing_has(&l, "c") &&
                  listing_has(&l, "d") && listing_has(&l, "m"));
        /* listed inode numbers are the ones getattr reports */
        for (int i = 0; i < l.n; i++) {
                struct stat st;

                ck_assert_int_eq(ugetattr(&t, l.names[i], &st), 0);
                ck_assert_int_eq(st.st_ino, l.inos[i]);
        }
        ck_assert_int_eq(ulist(&t, "m", &l), 0);
        ck_assert_int_eq(l.n, 2);
        ck_assert_int_eq(ulist(&t, "a", &l), -ENOTDIR);
        t_done(&t);
}
END_TEST

START_TEST(test_rename_file)
{
        struct stat st;
        T t;

        t_init(&t, 2);
        hput(&t, 0, "up", "upper");
        hput(&t, 1, "low", "lower");
        hput(&t, 1, "victim", "old");
        hput(&t, 0, "keep", "k");
        hmkdir(&t, 1, "dir");
        t_union(&t, true);
        ck_assert_int_eq(urename(&t, "up", "up2", 0), 0);
        ck_assert_str_eq(uread(&t, "up2"), "upper");
        ck_assert_int_eq(ugetattr(&t, "up", &st), -ENOENT);
        ck_assert(!hexists(&t, 0, ".wh.up"));
        ck_assert_int_eq(urename(&t, "low", "dir/low2", 0), 0);
        ck_assert_str_eq(uread(&t, "dir/low2"), "lower");
        ck_assert_int_eq(ugetattr(&t, "low", &st), -ENOENT);
        ck_assert(hexists(&t, 1, "low") && hexists(&t, 0, ".wh.low"));
        /* over an existing (lower) file */
        ck_assert_int_eq(urename(&t, "up2", "victim", RENAME_NOREPLACE), -EEXIST);
        ck_assert_int_eq(urename(&t, "up2", "victim", 0), 0);
        ck_assert_str_eq(uread(&t, "victim"), "upper");
        ck_assert_int_eq(ugetattr(&t, "up2", &st), -ENOENT);
        /* file over directory and back */
        ck_assert_int_eq(urename(&t, "keep", "dir", 0), -EISDIR);
        ck_assert_int_eq(urename(&t, "dir", "keep", 0), -ENOTDIR);
        /* onto a whited-out name */
        ck_assert_int_eq(urename(&t, "keep", "low", 0), 0);
        ck_assert_str_eq(uread(&t, "low"), "k");
        ck_assert(!hexists(&t, 0, ".wh.low"));
        ck_assert_int_eq(urename(&t, "nope", "x", 0), -ENOENT);
        ck_assert_int_eq(urename(&t, "low", "nodir/x", 0), -ENOENT);
        /* exchange a lower file with an upper one */
        hput(&t, 1, "xa", "lowA");
        ck_assert_int_eq(urename(&t, "xa", "victim", RENAME_EXCHANGE), 0);
        ck_assert_str_eq(uread(&t, "xa"), "upper");
        ck_assert_str_eq(uread(&t, "victim"), "lowA");
        ck_assert_int_eq(urename(&t, "dir", "xa", RENAME_EXCHANGE), -EXDEV);
        ck_assert_int_eq(urename(&t, "xa", "victim", RENAME_EXCHANGE | RENAME_NOREPLACE), -EINVAL);
        t_done(&t);
}
END_TEST

START_TEST(test_rename_dir_upper)
{
        struct stat st;
        Listing l;
        T t;

        t_init(&t, 2);
        hput(&t, 1, "other", "x");
        t_union(&t, true);
        ck_assert_int_eq(umkdir(&t, "d", 0755), 0);
        ck_assert_int_eq(umkdir(&t, "d/s", 0755), 0);
        ck_assert_int_eq(uwrite(&t, "d/s/f", O_CREAT, "data", 0), 0);
        ck_assert_int_eq(ugetattr(&t, "d/s/f", &st), 0);
        ck_assert_int_eq(urename(&t, "d", "d/s/x", 0), -EINVAL);
        ck_assert_int_eq(urename(&t, "d", "e", 0), 0);
        ck_assert_str_eq(uread(&t, "e/s/f"), "data");
        ck_assert_int_eq(ugetattr(&t, "d", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(&t, "d/s/f", &st), -ENOENT);
        ck_assert(!hexists(&t, 0, ".wh.d"));
        ck_assert_int_eq(ulist(&t, "e", &l), 0);
        ck_assert_int_eq(l.n, 1);
        /* over an empty directory */
        ck_assert_int_eq(umkdir(&t, "empty", 0755), 0);
        ck_assert_int_eq(urename(&t, "e", "empty", 0), 0);
        ck_assert_str_eq(uread(&t, "empty/s/f"), "data");
        ck_assert_int_eq(umkdir(&t, "full", 0755), 0);
        ck_assert_int_eq(uwrite(&t, "full/x", O_CREAT, "x", 0), 0);
        ck_assert_int_eq(urename(&t, "empty", "full", 0), -ENOTEMPTY);
        t_done(&t);
}
END_TEST

START_TEST(test_rename_dir_lower)
{
        struct stat st, d0, sub0;
        LsNode *held;
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
        ck_assert_int_eq(uwrite(&t, "d/h", O_CREAT, "top", 0), 0);
        ck_assert_int_eq(uunlink(&t, "new/stale"), 0);
        ck_assert_int_eq(ugetattr(&t, "d", &d0), 0);
        ck_assert_int_eq(ugetattr(&t, "d/sub", &sub0), 0);
        ck_assert_int_eq(uwalk(&t, "d/sub", &held), 0);
        ck_assert_int_eq(urename(&t, "d", "new", 0), 0);
        ck_assert_int_eq(ugetattr(&t, "d", &st), -ENOENT);
        /* the moved directories keep their numbers */
        ck_assert_int_eq(ugetattr(&t, "new", &st), 0);
        ck_assert_uint_eq(st.st_ino, d0.st_ino);
        ck_assert_int_eq(ugetattr(&t, "new/sub", &st), 0);
        ck_assert_uint_eq(st.st_ino, sub0.st_ino);
        ck_assert_int_eq(ulist(&t, "new", &l), 0);
        ck_assert_int_eq(l.n, 4);
        ck_assert(listing_has(&l, "f") && listing_has(&l, "m") && listing_has(&l, "h") &&
                  listing_has(&l, "sub"));
        ck_assert_str_eq(uread(&t, "new/f"), "bot");
        ck_assert_str_eq(uread(&t, "new/sub/g"), "deep");
        ck_assert_str_eq(uread(&t, "new/h"), "top");
        ck_assert_int_eq(ugetattr(&t, "new/stale", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(&t, "new/gone", &st), -ENOENT);
        /* a handle held across the move follows it: same node, and a file
         * made through it lands in the moved tree */
        {
                LsNode *again, *made;

                ck_assert_int_eq(uwalk(&t, "new/sub", &again), 0);
                ck_assert_ptr_eq(again, held);
                ls_node_unref(again);
                ck_assert_int_eq(ls_ops(held)->mkdir(held, "viaheld", 0755, &me, &made, NULL), 0);
                ls_node_unref(made);
                ck_assert_int_eq(ugetattr(&t, "new/sub/viaheld", &st), 0);
                ls_node_unref(held);
        }
        /* lower branches untouched; the old name is whited out */
        ck_assert(hexists(&t, 2, "d/sub/g") && hexists(&t, 1, "d/m"));
        ck_assert(hexists(&t, 0, ".wh.d"));
        /* and the moved tree is an ordinary writable directory */
        ck_assert_int_eq(uwrite(&t, "new/sub/g", 0, "D", 0), 0);
        ck_assert_str_eq(uread(&t, "new/sub/g"), "Deep");
        ck_assert_int_eq(umkdir(&t, "d", 0755), 0);
        ck_assert_int_eq(ulist(&t, "d", &l), 0);
        ck_assert_int_eq(l.n, 0);
        /* a merged directory onto an existing, empty, merged one */
        hmkdir(&t, 2, "m");
        hput(&t, 2, "m/k", "kept");
        hmkdir(&t, 1, "e");
        hput(&t, 1, "e/old", "x");
        ck_assert_int_eq(uunlink(&t, "e/old"), 0);
        ck_assert_int_eq(urename(&t, "m", "e", 0), 0);
        ck_assert_str_eq(uread(&t, "e/k"), "kept");
        ck_assert_int_eq(ulist(&t, "e", &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_int_eq(ugetattr(&t, "m", &st), -ENOENT);
        t_done(&t);
}
END_TEST

START_TEST(test_hardlink_lower)
{
        struct stat a, b;
        T t;

        t_init(&t, 2);
        hput(&t, 1, "f", "shared");
        hmkdir(&t, 1, "d");
        t_union(&t, true);
        ck_assert_int_eq(ulink(&t, "f", "d/g"), 0);
        ck_assert_int_eq(ugetattr(&t, "f", &a), 0);
        ck_assert_int_eq(ugetattr(&t, "d/g", &b), 0);
        ck_assert_int_eq(a.st_ino, b.st_ino);
        ck_assert_int_eq(a.st_nlink, 2);
        ck_assert_int_eq(uwrite(&t, "d/g", 0, "SH", 0), 0);
        ck_assert_str_eq(uread(&t, "f"), "SHared");
        ck_assert(hexists(&t, 0, "f") && hexists(&t, 0, "d/g"));
        ck_assert_int_eq(ulink(&t, "f", "d/g"), -EEXIST);
        ck_assert_int_eq(ulink(&t, "d", "d2"), -EPERM);
        t_done(&t);
}
END_TEST

/* Symlinks are never followed by the interface: the front resolves them. */
START_TEST(test_symlink)
{
        char buf[64];
        struct stat st;
        LsFile *f;
        T t;

        t_init(&t, 2);
        hput(&t, 1, "target", "via link");
        hmkdir(&t, 1, "d");
        hpath(&t, 1, "low", buf);
        ck_assert_int_eq(symlink("target", buf), 0);
        t_union(&t, true);
        ck_assert_int_eq(usymlink(&t, "../target", "d/rel"), 0);
        ck_assert_int_eq(ugetattr(&t, "d/rel", &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        ck_assert_int_eq(st.st_size, 9);
        ck_assert_int_eq(ureadlink(&t, "d/rel", buf, sizeof(buf)), 9);
        ck_assert_int_eq(memcmp(buf, "../target", 9), 0);
        ck_assert_int_eq(ureadlink(&t, "low", buf, sizeof(buf)), 6);
        ck_assert_int_eq(ureadlink(&t, "target", buf, sizeof(buf)), -EINVAL);
        ck_assert_int_eq(uopen(&t, "d/rel", O_RDONLY, 0, &f), -ELOOP);
        /* a lower symlink copied up (chown) stays a symlink, same target */
        ck_assert_int_eq(uchown(&t, "low", 7, 7), 0);
        ck_assert(hexists(&t, 0, "low"));
        ck_assert_int_eq(ureadlink(&t, "low", buf, sizeof(buf)), 6);
        ck_assert_int_eq(ugetattr(&t, "low", &st), 0);
        ck_assert_int_eq(st.st_uid, 7);
        t_done(&t);
}
END_TEST

START_TEST(test_xattr_statfs)
{
        char p[PATH_MAX], val[16], list[256];
        struct statvfs sv;
        LsNode *n;
        T t;

        t_init(&t, 2);
        hput(&t, 1, "f", "x");
        hpath(&t, 1, "f", p);
        ck_assert_int_eq(lsetxattr(p, "user.a", "1", 1, 0), 0);
        t_union(&t, true);
        ck_assert_int_eq(ugetxattr(&t, "f", "user.a", val, sizeof(val)), 1);
        ck_assert_int_gt(ulistxattr(&t, "f", list, sizeof(list)), 0);
        ck_assert(!hexists(&t, 0, "f"));
        ck_assert_int_eq(uremovexattr(&t, "f", "user.a"), 0);
        ck_assert_int_eq(ugetxattr(&t, "f", "user.a", val, sizeof(val)), -ENODATA);
        ck_assert_int_eq(lgetxattr(p, "user.a", val, sizeof(val)), 1);
        ck_assert_int_eq(uwalk(&t, "f", &n), 0);
        ck_assert_int_eq(ls_ops(n)->statfs(n, &sv), 0);
        ls_node_unref(n);
        t_done(&t);
}
END_TEST

START_TEST(test_inode_numbers)
{
        struct stat a, b, c, d1, d2;
        UnionBranch br[2];
        char shm[64];
        T t;

        t_init(&t, 3);
        hput(&t, 0, "a", "");
        hput(&t, 1, "b", "");
        hput(&t, 2, "c", "");
        hmkdir(&t, 1, "d");
        hmkdir(&t, 2, "d");
        t_union(&t, true);
        ck_assert_int_eq(ugetattr(&t, "a", &a), 0);
        ck_assert_int_eq(ugetattr(&t, "b", &b), 0);
        ck_assert_int_eq(ugetattr(&t, "c", &c), 0);
        ck_assert(a.st_ino != b.st_ino && b.st_ino != c.st_ino && a.st_ino != c.st_ino);
        ck_assert_int_eq(ugetattr(&t, "d", &d1), 0);
        ck_assert_int_eq(d1.st_nlink, 1); /* merged over two branches */
        for (int i = 0; i < 3; i++) {
                struct stat again;

                ck_assert_int_eq(ugetattr(&t, "b", &again), 0);
                ck_assert_int_eq(again.st_ino, b.st_ino);
        }
        /* a directory keeps its number when it is copied up */
        ck_assert_int_eq(uwrite(&t, "d/new", O_CREAT, "x", 0), 0);
        ck_assert(hexists(&t, 0, "d"));
        ck_assert_int_eq(ugetattr(&t, "d", &d2), 0);
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
        ck_assert_int_eq(local_new(t.br[0], false, &t.backs[0]), 0);
        ck_assert_int_eq(local_new(shm, true, &t.backs[1]), 0);
        t.n_backs = 2;
        for (int i = 0; i < 2; i++)
                ck_assert_int_eq(t.backs[i]->ops->root(t.backs[i], &br[i].root), 0);
        t.n = 2;
        t_make(&t, br, true);
        ck_assert_int_eq(ugetattr(&t, "f", &a), 0);
        ck_assert_int_eq(ugetattr(&t, "g", &b), 0);
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
        LsFile *f;
        T t;

        t_init(&t, 2);
        hput(&t, 0, "top", "t");
        hput(&t, 1, "low", "l");
        t_union(&t, false);
        ck_assert_str_eq(uread(&t, "low"), "l");
        ck_assert_str_eq(uread(&t, "top"), "t");
        ck_assert_int_eq(uopen(&t, "top", O_WRONLY, 0, &f), -EROFS);
        ck_assert_int_eq(uopen(&t, "low", O_RDWR, 0, &f), -EROFS);
        ck_assert_int_eq(uopen(&t, "new", O_WRONLY | O_CREAT, 0644, &f), -EROFS);
        ck_assert_int_eq(umkdir(&t, "d", 0755), -EROFS);
        ck_assert_int_eq(uunlink(&t, "low"), -EROFS);
        ck_assert_int_eq(urename(&t, "low", "x", 0), -EROFS);
        ck_assert_int_eq(uchmod(&t, "low", 0600), -EROFS);
        ck_assert_int_eq(utruncate(&t, "top", 0), -EROFS);
        ck_assert_int_eq(ulink(&t, "low", "l2"), -EROFS);
        ck_assert_int_eq(usymlink(&t, "low", "s"), -EROFS);
        ck_assert_int_eq(usetxattr(&t, "low", "user.x", "1", 1), -EROFS);
        /* LS_O_NOCOPYUP on a read-only union: read-only */
        ck_assert_int_eq(uopen(&t, "top", O_RDWR | LS_O_NOCOPYUP, 0, &f), 0);
        ck_assert_int_eq(f->flags & O_ACCMODE, O_RDONLY);
        frelease(f);
        ck_assert(!hexists(&t, 0, "low"));
        t_done(&t);
}
END_TEST

#define NTHREADS 8
#define NSHARED  16
#define NOWN     32

static T *g_conc;

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
                if (uopen(g_conc, path, O_WRONLY, 0, &f) != 0)
                        return (void *)3;
                if (ls_ops(f->node)->pwrite(f, &c, 1, id, 0) != 1)
                        return (void *)4;
                frelease(f);
        }
        return NULL;
}

static void concurrency_run(bool shared)
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
        if (shared)
                t_union_shared(&t, true);
        else
                t_union(&t, true);
        g_conc = &t;
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
                ck_assert_str_eq(uread(&t, p), "ABCDEFGH........");
        }
        for (int d = 0; d < 4; d++) {
                char p[64];

                snprintf(p, sizeof(p), "d%d", d);
                ck_assert_int_eq(ulist(&t, p, &l), 0);
                ck_assert_int_eq(l.n, NSHARED / 4 + NTHREADS * NOWN / 4);
        }
        t_done(&t);
}

START_TEST(test_concurrency)
{
        concurrency_run(false);
        concurrency_run(true);
}
END_TEST

/* Copy-up keeps the inode number (origin xattr in the top), in getattr,
 * readdir and the open file's node, across renames, hard links and a
 * restart, and the union's own xattrs cannot be seen or forged. */
START_TEST(test_copyup_keeps_ino)
{
        char p[PATH_MAX], list[512], val[16];
        struct stat a, b, c, l0, s0, g0, n0;
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
        ck_assert_int_eq(ugetattr(&t, "d/f", &a), 0);
        ck_assert_int_eq(ugetattr(&t, "c", &l0), 0);
        ck_assert_int_eq(ugetattr(&t, "s", &s0), 0);
        ck_assert_int_eq(ugetattr(&t, "g", &g0), 0);
        ck_assert_int_eq(ugetattr(&t, "m", &n0), 0);
        /* chmod copies up: same number, by getattr, readdir and the file */
        ck_assert_int_eq(uchmod(&t, "d/f", 0600), 0);
        ck_assert(hexists(&t, 0, "d/f"));
        ck_assert_int_eq(ugetattr(&t, "d/f", &b), 0);
        ck_assert_int_eq(b.st_ino, a.st_ino);
        ck_assert_int_eq(b.st_mode & 0777, 0600);
        ck_assert_int_eq(ulist(&t, "d", &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_int_eq(l.inos[0], a.st_ino);
        ck_assert_int_eq(uopen(&t, "d/f", O_RDONLY, 0, &f), 0);
        ck_assert_int_eq(ls_ops(f->node)->getattr(f->node, &c), 0);
        ck_assert_int_eq(c.st_ino, a.st_ino);
        frelease(f);
        /* write-open copies up: that very file's node, then getattr */
        ck_assert_int_eq(uopen(&t, "g", O_WRONLY, 0, &f), 0);
        ck_assert_int_eq(ls_ops(f->node)->getattr(f->node, &c), 0);
        ck_assert_int_eq(c.st_ino, g0.st_ino);
        frelease(f);
        ck_assert_int_eq(ugetattr(&t, "g", &c), 0);
        ck_assert_int_eq(c.st_ino, g0.st_ino);
        /* a symlink too */
        ck_assert_int_eq(uchown(&t, "s", 0, 0), 0);
        ck_assert(hexists(&t, 0, "s"));
        ck_assert_int_eq(ugetattr(&t, "s", &c), 0);
        ck_assert(S_ISLNK(c.st_mode));
        ck_assert_int_eq(c.st_ino, s0.st_ino);
        /* link(lower c, c2): both names, one number, two links */
        ck_assert_int_eq(umkdir(&t, "new", 0755), 0);
        ck_assert_int_eq(ulink(&t, "c", "new/c2"), 0);
        ck_assert_int_eq(ugetattr(&t, "c", &a), 0);
        ck_assert_int_eq(ugetattr(&t, "new/c2", &b), 0);
        ck_assert_int_eq(a.st_ino, l0.st_ino);
        ck_assert_int_eq(b.st_ino, l0.st_ino);
        ck_assert_int_eq(a.st_nlink, 2);
        ck_assert_int_eq(b.st_nlink, 2);
        ck_assert_int_eq(ulist(&t, "new", &l), 0);
        ck_assert_int_eq(l.inos[0], l0.st_ino);
        /* rename into a directory that only the top holds (marked impure) */
        ck_assert_int_eq(umkdir(&t, "new2", 0755), 0);
        ck_assert_int_eq(urename(&t, "m", "new2/m", 0), 0);
        ck_assert_int_eq(ugetattr(&t, "new2/m", &c), 0);
        ck_assert_int_eq(c.st_ino, n0.st_ino);
        /* a merged directory renamed (its tree copied): files keep theirs */
        ck_assert_int_eq(ugetattr(&t, "d/f", &a), 0);
        ck_assert_int_eq(urename(&t, "d", "d2", 0), 0);
        ck_assert_int_eq(ugetattr(&t, "d2/f", &b), 0);
        ck_assert_int_eq(b.st_ino, a.st_ino);
        /* the union's xattrs: recorded in the top, invisible, unforgeable */
        hpath(&t, 0, "c", p);
        ck_assert_int_eq(lgetxattr(p, "trusted.danaus.origin", val, sizeof(val)), 8);
        n = ulistxattr(&t, "c", list, sizeof(list));
        ck_assert_int_ge(n, 0);
        for (ssize_t off = 0; off < n; off += (ssize_t)strlen(list + off) + 1)
                ck_assert_msg(strncmp(list + off, "trusted.danaus.", 15) != 0, "listed %s",
                              list + off);
        ck_assert_int_eq(ulistxattr(&t, "c", NULL, 0), n);
        ck_assert_int_eq(ugetxattr(&t, "c", "trusted.danaus.origin", val, sizeof(val)), -ENODATA);
        ck_assert_int_eq(usetxattr(&t, "c", "trusted.danaus.origin", "12345678", 8), -EPERM);
        ck_assert_int_eq(usetxattr(&t, "new/c2", "trusted.danaus.impure", "", 0), -EPERM);
        ck_assert_int_eq(uremovexattr(&t, "c", "trusted.danaus.origin"), -EPERM);
        ck_assert_int_eq(ugetattr(&t, "c", &a), 0);
        ck_assert_int_eq(a.st_ino, l0.st_ino);
        /* a new file in place of a removed copy-up gets its own number */
        ck_assert_int_eq(uunlink(&t, "g"), 0);
        ck_assert_int_eq(uwrite(&t, "g", O_CREAT | O_EXCL, "new g", 0), 0);
        ck_assert_int_eq(ugetattr(&t, "g", &a), 0);
        ck_assert_int_ne(a.st_ino, g0.st_ino);
        ck_assert_int_eq(hstat(&t, 0, "g", &b), 0);
        ck_assert_int_eq(a.st_ino, b.st_ino);
        t_done(&t);

        /* the numbers survive a restart (they live in the top) */
        t_union(&t, true);
        ck_assert_int_eq(ugetattr(&t, "c", &a), 0);
        ck_assert_int_eq(a.st_ino, l0.st_ino);
        ck_assert_int_eq(ugetattr(&t, "new2/m", &a), 0);
        ck_assert_int_eq(a.st_ino, n0.st_ino);
        ck_assert_int_eq(ugetattr(&t, "s", &a), 0);
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
        ck_assert_int_eq(ugetattr(&t, "f", &f0), 0);
        ck_assert_int_eq(f0.st_nlink, 2);
        ck_assert_int_eq(uchmod(&t, "f", 0600), 0);
        ck_assert_int_eq(ugetattr(&t, "f", &a), 0);
        ck_assert_int_eq(ugetattr(&t, "g", &b), 0);
        ck_assert_int_eq(b.st_ino, f0.st_ino);
        ck_assert_int_ne(a.st_ino, b.st_ino);
        ck_assert_int_eq(a.st_mode & 0777, 0600);
        ck_assert_int_eq(b.st_mode & 0777, 0644);
        hpath(&t, 0, "f", p);
        ck_assert_int_eq(lgetxattr(p, "trusted.danaus.origin", NULL, 0), -1);
        t_done(&t);

        /* each name is its own node: a write through the handle of one name
         * lands in that name, whichever was looked up last (review of the
         * handle rewrite: it went to the other name) */
        t_init(&t, 2);
        hput(&t, 1, "f", "linked");
        hpath(&t, 1, "f", p);
        hpath(&t, 1, "g", q);
        ck_assert_int_eq(link(p, q), 0);
        t_union_shared(&t, true);
        {
                LsNode *hf, *hg;
                LsFile *w;

                ck_assert_int_eq(uwalk(&t, "f", &hf), 0);
                ck_assert_int_eq(uwalk(&t, "g", &hg), 0);
                ck_assert_ptr_ne(hf, hg);
                ck_assert_int_eq(ls_ops(hf)->open(hf, O_WRONLY, &w), 0);
                ck_assert_int_eq(ls_ops(w->node)->pwrite(w, "F", 1, 0, 0), 1);
                frelease(w);
                ls_node_unref(hf);
                ls_node_unref(hg);
        }
        t_done(&t);
        t_union_shared(&t, true);
        ck_assert_str_eq(uread(&t, "f"), "Finked");
        ck_assert_str_eq(uread(&t, "g"), "linked");
        ck_assert(hexists(&t, 0, "f") && !hexists(&t, 0, "g"));
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
        T t;

        t_init(&t, 2);
        hput(&t, 1, "f", "lower data");
        hput(&t, 1, "g", "old g");
        t_union(&t, true);
        ck_assert_int_eq(ugetattr(&t, "f", &lst), 0);
        ck_assert_int_eq(uopen(&t, "f", O_RDONLY, 0, &r1), 0);
        ck_assert_int_eq(fread_at(r1, buf, sizeof(buf), 0), 10);
        ck_assert_int_eq(uwrite(&t, "f", O_TRUNC, "NEW", 0), 0);
        memset(buf, 0, sizeof(buf));
        ck_assert_int_eq(fread_at(r1, buf, sizeof(buf), 0), 3);
        ck_assert_str_eq(buf, "NEW");
        ck_assert_int_eq(ls_ops(r1->node)->getattr(r1->node, &st), 0);
        ck_assert_int_eq(st.st_size, 3);
        ck_assert_int_eq(st.st_ino, lst.st_ino);
        /* the kernel fd a front splices from is the copy's too */
        ck_assert_int_ge(ls_ops(r1->node)->file_fd(r1), 0);
        ck_assert_int_eq(pread(ls_ops(r1->node)->file_fd(r1), buf, 3, 0), 3);
        ck_assert_int_eq(memcmp(buf, "NEW", 3), 0);
        /* later writes through the union show as well */
        ck_assert_int_eq(uwrite(&t, "f", 0, "ne", 0), 0);
        ck_assert_int_eq(fread_at(r1, buf, 3, 0), 3);
        ck_assert_int_eq(memcmp(buf, "neW", 3), 0);
        ck_assert_int_eq(frelease(r1), 0);

        /* removed and re-created: a new file, the old fd keeps the old data */
        ck_assert_int_eq(uopen(&t, "g", O_RDONLY, 0, &r2), 0);
        ck_assert_int_eq(uunlink(&t, "g"), 0);
        ck_assert_int_eq(uwrite(&t, "g", O_CREAT | O_EXCL, "brand new", 0), 0);
        ck_assert_int_eq(uchmod(&t, "g", 0600), 0);
        memset(buf, 0, sizeof(buf));
        ck_assert_int_eq(fread_at(r2, buf, sizeof(buf), 0), 5);
        ck_assert_str_eq(buf, "old g");
        ck_assert_int_eq(frelease(r2), 0);
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

        (void)arg;
        while (!atomic_load(&g_follow_stop)) {
                ssize_t n = fread_at(g_follow_file, buf, sizeof(buf), 0);

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
        ck_assert_int_eq(uopen(&t, "f", O_RDONLY, 0, &g_follow_file), 0);
        atomic_store(&g_follow_stop, 0);
        for (int i = 0; i < 4; i++)
                ck_assert_int_eq(pthread_create(&th[i], NULL, follow_reader, NULL), 0);
        usleep(20000);
        ck_assert_int_eq(uwrite(&t, "f", 0, "NEWNEWNE", 0), 0);
        usleep(20000);
        atomic_store(&g_follow_stop, 1);
        for (int i = 0; i < 4; i++) {
                void *ret;

                pthread_join(th[i], &ret);
                ck_assert_int_eq((long)ret, 0);
        }
        ck_assert_int_eq(fread_at(g_follow_file, buf, 8, 0), 8);
        ck_assert_int_eq(memcmp(buf, "NEWNEWNE", 8), 0);
        frelease(g_follow_file);
        t_done(&t);
}
END_TEST

/* A copy-up marks the parent impure, then publishes the copy; a getattr of
 * a fresh lookup that raced with it must still report the kept number. */
#define INO_RACE_DIRS 300
static atomic_int g_ino_race_cur;
static T *g_ino_race_t;

static void *ino_race_copier(void *arg)
{
        char p[64];

        for (int i = 0; i < INO_RACE_DIRS; i++) {
                snprintf(p, sizeof(p), "d%03d/f", i);
                atomic_store(&g_ino_race_cur, i);
                usleep(200);
                ck_assert_int_eq(uchmod(g_ino_race_t, p, 0600), 0);
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
        g_ino_race_t = &t;
        for (i = 0; i < INO_RACE_DIRS; i++) {
                snprintf(p, sizeof(p), "d%03d/f", i);
                ck_assert_int_eq(ugetattr(&t, p, &st), 0);
                inos[i] = st.st_ino;
                snprintf(p, sizeof(p), "d%03d/u", i);
                ck_assert_int_eq(uwrite(&t, p, O_CREAT, "u", 0), 0);
                ck_assert_int_eq(ugetattr(&t, p, &st), 0);
        }
        atomic_store(&g_ino_race_cur, 0);
        ck_assert_int_eq(pthread_create(&th, NULL, ino_race_copier, NULL), 0);
        while ((i = atomic_load(&g_ino_race_cur)) < INO_RACE_DIRS) {
                snprintf(p, sizeof(p), "d%03d/f", i);
                if (ugetattr(&t, p, &st) == 0 && st.st_ino != inos[i])
                        bad++;
        }
        pthread_join(th, NULL);
        ck_assert_msg(bad == 0, "%ld getattrs saw another inode number during copy-up", bad);
        t_done(&t);
}
END_TEST

/* difftest seed 2: a lower-only directory (whose parent is not in the top)
 * renamed onto an empty merged directory. */
START_TEST(test_rename_dir_parent_lower)
{
        struct stat st;
        Listing l;
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
        ck_assert_int_eq(urename(&t, "f/b", "h/g", 0), 0);
        ck_assert_int_eq(ugetattr(&t, "f/b", &st), -ENOENT);
        ck_assert_str_eq(uread(&t, "h/g/x"), "x");
        ck_assert_int_eq(ulist(&t, "h/g", &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_int_eq(ulist(&t, "f", &l), 0);
        ck_assert_int_eq(l.n, 0);
        t_done(&t);
}
END_TEST

/* A top-only directory inside a moved merged one is copied under another
 * number; a handle held on it (a kernel dentry) must follow the move, not
 * report its entries gone (difftest seed 2: lgetxattr ENOENT). */
START_TEST(test_rename_dir_top_only_child_held)
{
        struct stat st;
        LsNode *held, *deep, *c;
        T t;

        t_init(&t, 2);
        hmkdir(&t, 1, "a");
        hput(&t, 1, "a/low", "low");
        t_union(&t, true);
        ck_assert_int_eq(umkdir(&t, "a/f", 0755), 0);
        ck_assert_int_eq(umkdir(&t, "a/f/g", 0755), 0);
        ck_assert_int_eq(uwrite(&t, "a/f/f", O_CREAT, "top", 0), 0);
        ck_assert_int_eq(uwrite(&t, "a/f/g/x", O_CREAT, "x", 0), 0);
        ck_assert_int_eq(uwalk(&t, "a/f", &held), 0);
        ck_assert_int_eq(uwalk(&t, "a/f/g", &deep), 0);
        ck_assert_int_eq(umkdir(&t, "e", 0755), 0);
        ck_assert_int_eq(urename(&t, "a", "e/f", RENAME_NOREPLACE), 0);
        ck_assert_str_eq(uread(&t, "e/f/f/f"), "top");
        ck_assert_int_eq(ls_ops(held)->lookup(held, "f", &c, &st), 0);
        ck_assert(S_ISREG(st.st_mode));
        ls_node_unref(c);
        ck_assert_int_eq(ls_ops(deep)->lookup(deep, "x", &c, &st), 0);
        ls_node_unref(c);
        /* the same nodes as a new walk */
        ck_assert_int_eq(uwalk(&t, "e/f/f", &c), 0);
        ck_assert_ptr_eq(c, held);
        ls_node_unref(c);
        ck_assert_int_eq(uwalk(&t, "e/f/f/g", &c), 0);
        ck_assert_ptr_eq(c, deep);
        ls_node_unref(c);
        ls_node_unref(deep);
        ls_node_unref(held);
        t_done(&t);
}
END_TEST

/* --- handles, identity, nameless copy-up ------------------------------------ */

/* Every branch a handle of one instance: the usual pool set-up. */
START_TEST(test_shared_instance)
{
        struct stat st, lst;
        Listing l;
        T t;

        t_init(&t, 3);
        hput(&t, 1, "f", "mid");
        hput(&t, 2, "f", "bot");
        hmkdir(&t, 2, "d");
        hput(&t, 2, "d/x", "deep");
        hput(&t, 2, "d/y", "why");
        t_union_shared(&t, true);
        ck_assert_int_eq(hstat(&t, 1, "f", &lst), 0);
        ck_assert_str_eq(uread(&t, "f"), "mid");
        ck_assert_int_eq(uwrite(&t, "f", 0, "M", 0), 0);
        ck_assert_str_eq(uread(&t, "f"), "Mid");
        ck_assert_int_eq(hstat(&t, 1, "f", &st), 0);
        ck_assert_int_eq(st.st_mtim.tv_nsec, lst.st_mtim.tv_nsec); /* lower untouched */
        ck_assert_int_eq(uunlink(&t, "d/x"), 0);
        ck_assert(hexists(&t, 0, "d/.wh.x") && hexists(&t, 2, "d/x"));
        ck_assert_int_eq(urename(&t, "d", "e", 0), 0);
        ck_assert_int_eq(ulist(&t, "e", &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_str_eq(uread(&t, "e/y"), "why");
        ck_assert_int_eq(uunlink(&t, "e/y"), 0);
        ck_assert_int_eq(urmdir(&t, "e"), 0);
        ck_assert_int_eq(ugetattr(&t, "e", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(&t, "d", &st), -ENOENT);
        ck_assert(hexists(&t, 2, "d/x") && hexists(&t, 2, "d/y"));
        t_done(&t);
}
END_TEST

/* fsync of a directory held open after its rmdir succeeds, as on a plain
 * directory, also once the name is a file again (difftest seed 3 op 73534:
 * fsync ENOENT). */
START_TEST(test_fsyncdir_removed)
{
        LsNode *d, *m;
        T t;

        t_init(&t, 2);
        hmkdir(&t, 1, "m");
        t_union(&t, true);
        ck_assert_int_eq(umkdir(&t, "d", 0755), 0);
        ck_assert_int_eq(uwalk(&t, "d", &d), 0);
        ck_assert_int_eq(uwalk(&t, "m", &m), 0);
        ck_assert_int_eq(ls_ops(d)->fsyncdir(d, false), 0);
        ck_assert_int_eq(ls_ops(m)->fsyncdir(m, true), 0);
        ck_assert_int_eq(urmdir(&t, "d"), 0);
        ck_assert_int_eq(urmdir(&t, "m"), 0);
        ck_assert_int_eq(ls_ops(d)->fsyncdir(d, false), 0);
        ck_assert_int_eq(ls_ops(m)->fsyncdir(m, true), 0);
        ck_assert_int_eq(uwrite(&t, "d", O_CREAT | O_EXCL, "x", 0), 0);
        ck_assert_int_eq(ls_ops(d)->fsyncdir(d, false), 0);
        ls_node_unref(d);
        ls_node_unref(m);
        t_done(&t);
}
END_TEST

/* A copy-up through one path is seen by every holder of the node. */
START_TEST(test_node_identity)
{
        LsNode *a, *b;
        struct stat st;
        LsFile *f;
        char buf[16];
        T t;

        t_init(&t, 2);
        hmkdir(&t, 1, "d");
        hput(&t, 1, "d/f", "lower");
        t_union(&t, true);
        ck_assert_int_eq(uwalk(&t, "d/f", &a), 0);
        ck_assert_int_eq(ls_ops(a)->open(a, O_RDONLY, &f), 0);
        ck_assert_int_eq(uchmod(&t, "d/f", 0600), 0);
        ck_assert_int_eq(ls_ops(a)->getattr(a, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
        ck_assert_int_eq(uwrite(&t, "d/f", 0, "UPPER", 0), 0);
        ck_assert_int_eq(fread_at(f, buf, 5, 0), 5);
        ck_assert_int_eq(memcmp(buf, "UPPER", 5), 0);
        frelease(f);
        ck_assert_int_eq(uwalk(&t, "d/f", &b), 0);
        ck_assert_ptr_eq(a, b);
        ls_node_unref(a);
        ls_node_unref(b);
        t_done(&t);
}
END_TEST

/* A write-open (or setattr) of a lower node whose names are all gone copies
 * it into an unnamed top file: nothing reappears. */
START_TEST(test_nameless_copyup)
{
        LsNode *h, *g;
        struct stat st, st0;
        LsSetattr sa = {.valid = LS_SET_MODE, .mode = 0640};
        LsFile *f;
        Listing l;
        char buf[16];
        T t;

        t_init(&t, 2);
        hput(&t, 1, "f", "lower");
        hput(&t, 1, "g", "gee");
        t_union_shared(&t, true);
        ck_assert_int_eq(uwalk(&t, "f", &h), 0);
        ck_assert_int_eq(uwalk(&t, "g", &g), 0);
        ck_assert_int_eq(ls_ops(h)->getattr(h, &st0), 0);
        ck_assert_int_eq(uunlink(&t, "f"), 0);
        ck_assert_int_eq(uunlink(&t, "g"), 0);
        ck_assert_int_eq(ls_ops(h)->open(h, O_RDWR, &f), 0);
        ck_assert_int_eq(ls_ops(f->node)->pwrite(f, "L", 1, 0, 0), 1);
        ck_assert_int_eq(fread_at(f, buf, 5, 0), 5);
        ck_assert_int_eq(memcmp(buf, "Lower", 5), 0);
        frelease(f);
        ck_assert_int_eq(ls_ops(g)->setattr(g, &sa, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0640);
        ck_assert_int_eq(ls_ops(h)->getattr(h, &st), 0);
        ck_assert_int_eq(st.st_ino, st0.st_ino);
        ck_assert_int_eq(ugetattr(&t, "f", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(&t, "g", &st), -ENOENT);
        ck_assert_int_eq(ulist(&t, "", &l), 0);
        ck_assert_int_eq(l.n, 0);
        ck_assert(!hexists(&t, 0, "f") && !hexists(&t, 0, "g"));
        ls_node_unref(h);
        ls_node_unref(g);
        t_done(&t);
}
END_TEST

START_TEST(test_nocopyup_fsyncdir_tmpfile)
{
        LsNode *d, *n;
        struct stat st;
        LsFile *f;
        Listing l;
        T t;

        t_init(&t, 2);
        hput(&t, 0, "top", "t");
        hput(&t, 1, "low", "l");
        hmkdir(&t, 1, "ld");
        hmkdir(&t, 0, "md");
        hmkdir(&t, 1, "md");
        t_union(&t, true);
        ck_assert_int_eq(uopen(&t, "low", O_RDWR | LS_O_NOCOPYUP, 0, &f), 0);
        ck_assert_int_eq(f->flags & O_ACCMODE, O_RDONLY);
        frelease(f);
        ck_assert(!hexists(&t, 0, "low"));
        ck_assert_int_eq(uopen(&t, "top", O_RDWR | LS_O_NOCOPYUP, 0, &f), 0);
        ck_assert_int_eq(f->flags & O_ACCMODE, O_RDWR);
        frelease(f);
        /* fsyncdir: the top directory, or the lower one (read-only) */
        for (int i = 0; i < 3; i++) {
                static const char *dirs[] = {"", "ld", "md"};

                ck_assert_int_eq(uwalk(&t, dirs[i], &d), 0);
                ck_assert_int_eq(ls_ops(d)->fsyncdir(d, false), 0);
                ls_node_unref(d);
        }
        ck_assert(!hexists(&t, 0, "ld"));
        /* tmpfile in a lower directory: it is copied up, nothing is named */
        ck_assert_int_eq(uwalk(&t, "ld", &d), 0);
        ck_assert_int_eq(ls_ops(d)->tmpfile(d, O_RDWR, 0600, &me, &n, &st, &f), 0);
        ck_assert_int_eq(ls_ops(f->node)->pwrite(f, "tmp", 3, 0, 0), 3);
        frelease(f);
        ck_assert_int_eq(ls_ops(n)->getattr(n, &st), 0);
        ck_assert_int_eq(st.st_size, 3);
        ls_node_unref(n);
        ls_node_unref(d);
        ck_assert_int_eq(ulist(&t, "ld", &l), 0);
        ck_assert_int_eq(l.n, 0);
        t_done(&t);
}
END_TEST

/* --- branches on different filesystems (issue 13) ------------------------ */

/* A private mount namespace (the test's forked child), so the mounts go with
 * the process whatever happens. */
static bool private_mounts(void)
{
        if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0)
                return false;
        return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

static void cross_fs_run(bool two_fs)
{
        struct stat a, b, f1_0, f4_0, st;
        Listing l;
        char p[PATH_MAX];
        T t;

        t_init(&t, 2);
        if (two_fs) {
                ck_assert_int_eq(mount("tmpfs", t.br[0], "tmpfs", 0, "size=16m"), 0);
                ck_assert_int_eq(mount("tmpfs", t.br[1], "tmpfs", 0, "size=16m"), 0);
        }
        /* fresh filesystems hand out the same small numbers on both sides */
        for (int i = 1; i <= 5; i++) {
                snprintf(p, sizeof(p), "f%d", i);
                hput(&t, 1, p, "lower");
                snprintf(p, sizeof(p), "t%d", i);
                hput(&t, 0, p, "top");
        }
        hmkdir(&t, 1, "d");
        t_union_shared(&t, true);
        ck_assert_int_eq(ugetattr(&t, "f1", &f1_0), 0);
        ck_assert_int_eq(ugetattr(&t, "f4", &f4_0), 0);
        /* truncate -s 1 of a lower file, then open and read anew */
        ck_assert_int_eq(utruncate(&t, "f1", 1), 0);
        ck_assert_str_eq(uread(&t, "f1"), "l");
        ck_assert_int_eq(ugetattr(&t, "f1", &a), 0);
        ck_assert_int_eq(a.st_ino, f1_0.st_ino);
        t_done(&t);
        t_union_shared(&t, true); /* "a new process" */
        ck_assert_str_eq(uread(&t, "f1"), "l");
        ck_assert_int_eq(ugetattr(&t, "f1", &a), 0);
        ck_assert_int_eq(a.st_ino, f1_0.st_ino);
        /* writing a copied-up file, then closing */
        ck_assert_int_eq(uwrite(&t, "f2", 0, "W", 0), 0);
        ck_assert_int_eq(uwrite(&t, "f2", 0, "X", 1), 0);
        ck_assert_str_eq(uread(&t, "f2"), "WXwer");
        /* hard links of a copied-up file */
        ck_assert_int_eq(uchmod(&t, "f3", 0600), 0);
        ck_assert_int_eq(ulink(&t, "f3", "d/f3b"), 0);
        ck_assert_int_eq(ugetattr(&t, "f3", &a), 0);
        ck_assert_int_eq(ugetattr(&t, "d/f3b", &b), 0);
        ck_assert_int_eq(a.st_ino, b.st_ino);
        ck_assert_int_eq(a.st_nlink, 2);
        ck_assert_int_eq(uwrite(&t, "d/f3b", 0, "3", 0), 0);
        ck_assert_str_eq(uread(&t, "f3"), "3ower");
        /* renames of a copied-up file */
        ck_assert_int_eq(uchmod(&t, "f4", 0600), 0);
        ck_assert_int_eq(urename(&t, "f4", "d/f4r", 0), 0);
        ck_assert_int_eq(ugetattr(&t, "d/f4r", &a), 0);
        ck_assert_int_eq(a.st_ino, f4_0.st_ino);
        ck_assert_int_eq(urename(&t, "d/f4r", "f4", 0), 0);
        ck_assert_str_eq(uread(&t, "f4"), "lower");
        /* every number in the union is unique and what getattr says */
        ck_assert_int_eq(ulist(&t, "", &l), 0);
        for (int i = 0; i < l.n; i++) {
                ck_assert_int_eq(ugetattr(&t, l.names[i], &st), 0);
                ck_assert_uint_eq(st.st_ino, l.inos[i]);
                for (int j = 0; j < i; j++)
                        ck_assert_msg(l.inos[i] != l.inos[j], "%s and %s share %llu", l.names[i],
                                      l.names[j], (unsigned long long)l.inos[i]);
        }
        t_done(&t);
        if (two_fs) {
                ck_assert_int_eq(umount2(t.br[0], MNT_DETACH), 0);
                ck_assert_int_eq(umount2(t.br[1], MNT_DETACH), 0);
        }
}

START_TEST(test_cross_fs)
{
        cross_fs_run(false);
        if (!private_mounts()) {
                fprintf(stderr, "cross_fs: two-filesystem half skipped (needs root)\n");
                return;
        }
        cross_fs_run(true);
}
END_TEST

/* --- races without the caller's locks ------------------------------------- */

#define RACE_FILES 150

typedef struct RaceArg {
        T *t;
        LsNode *dir;
        LsNode **h;
        int id;
        atomic_long *errors;
} RaceArg;

static void *race_copier(void *arg)
{
        RaceArg *a = arg;

        for (int k = 0; k < RACE_FILES; k++) {
                int i = (a->id & 1) ? RACE_FILES - 1 - k : k;
                LsNode *h = a->h[i];
                int r;

                if ((k + a->id) & 1) {
                        LsSetattr sa = {.valid = LS_SET_MODE, .mode = 0600};

                        r = ls_ops(h)->setattr(h, &sa, NULL);
                } else {
                        LsFile *f;

                        r = ls_ops(h)->open(h, O_WRONLY, &f);
                        if (r == 0) {
                                if (ls_ops(f->node)->pwrite(f, "C", 1, 0, 0) != 1)
                                        r = -EIO;
                                frelease(f);
                        }
                }
                if (r < 0)
                        atomic_fetch_add(a->errors, 1);
        }
        return NULL;
}

static void *race_unlinker(void *arg)
{
        RaceArg *a = arg;

        for (int i = a->id & 1; i < RACE_FILES; i += 2) {
                char name[32];

                snprintf(name, sizeof(name), "f%d", i);
                if (ls_ops(a->dir)->unlink(a->dir, name) != 0)
                        atomic_fetch_add(a->errors, 1);
        }
        return NULL;
}

/* Copy-ups racing unlinks of the same files never bring one back. */
START_TEST(test_copyup_unlink_race)
{
        static LsNode *h[RACE_FILES];
        atomic_long errors = 0;
        Listing l;
        T t;

        t_init(&t, 2);
        for (int round = 0; round < 3; round++) {
                char p[64];

                snprintf(p, sizeof(p), "d%d", round);
                hmkdir(&t, 1, p);
                for (int i = 0; i < RACE_FILES; i++) {
                        snprintf(p, sizeof(p), "d%d/f%d", round, i);
                        hput(&t, 1, p, "lower");
                }
        }
        t_union_shared(&t, true);
        union_set_copy_up_sync(t.u, false);
        for (int round = 0; round < 3; round++) {
                pthread_t th[4];
                RaceArg args[4];
                LsNode *dir;
                char p[64];

                snprintf(p, sizeof(p), "d%d", round);
                ck_assert_int_eq(uwalk(&t, p, &dir), 0);
                for (int i = 0; i < RACE_FILES; i++) {
                        snprintf(p, sizeof(p), "f%d", i);
                        ck_assert_int_eq(ls_ops(dir)->lookup(dir, p, &h[i], NULL), 0);
                }
                for (int i = 0; i < 4; i++) {
                        args[i] =
                            (RaceArg){.t = &t, .dir = dir, .h = h, .id = i, .errors = &errors};
                        ck_assert_int_eq(pthread_create(&th[i], NULL,
                                                        i < 2 ? race_copier : race_unlinker,
                                                        &args[i]),
                                         0);
                }
                for (int i = 0; i < 4; i++)
                        pthread_join(th[i], NULL);
                ck_assert_int_eq(atomic_load(&errors), 0);
                snprintf(p, sizeof(p), "d%d", round);
                ck_assert_int_eq(ulist(&t, p, &l), 0);
                ck_assert_msg(l.n == 0, "round %d: %d unlinked names came back (%s)", round, l.n,
                              l.names[0]);
                for (int i = 0; i < RACE_FILES; i++) {
                        struct stat st;
                        char q[64];

                        snprintf(q, sizeof(q), "d%d/f%d", round, i);
                        ck_assert_int_eq(ugetattr(&t, q, &st), -ENOENT);
                        ck_assert(!hexists(&t, 0, q));
                        /* the handles still work */
                        ck_assert_int_eq(ls_ops(h[i])->getattr(h[i], &st), 0);
                        ls_node_unref(h[i]);
                }
                ls_node_unref(dir);
        }
        t_done(&t);
}
END_TEST

/* rmdir and directory rename delete no whiteout before the step that can
 * fail: an injected failure of that step leaves deleted names deleted. */
START_TEST(test_failed_rmdir_rename_keep_whiteouts)
{
        struct stat st;
        LsInstance *b;
        Listing l;
        T t;

        t_init(&t, 2);
        hmkdir(&t, 1, "d");
        hput(&t, 1, "d/a", "a");
        hput(&t, 1, "d/b", "b");
        hmkdir(&t, 1, "src");
        hput(&t, 1, "src/k", "kept");
        hmkdir(&t, 1, "tg");
        hput(&t, 1, "tg/old", "old");
        t_union_shared(&t, true);
        b = t.backs[0];
        failing_ops = *b->ops;
        failing_real = b->ops->rename;
        failing_ops.rename = failing_rename;
        b->ops = &failing_ops;
        ck_assert_int_eq(uunlink(&t, "d/a"), 0);
        ck_assert_int_eq(uunlink(&t, "d/b"), 0);
        ck_assert_int_eq(uunlink(&t, "tg/old"), 0);
        atomic_store(&fail_renames, 1);
        ck_assert_int_eq(urmdir(&t, "d"), -EIO);
        ck_assert_int_eq(urename(&t, "src", "tg", 0), -EIO);
        atomic_store(&fail_renames, 0);
        /* nothing came back, nothing moved */
        ck_assert_int_eq(ugetattr(&t, "d", &st), 0);
        ck_assert_int_eq(ugetattr(&t, "d/a", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(&t, "d/b", &st), -ENOENT);
        ck_assert_int_eq(ulist(&t, "d", &l), 0);
        ck_assert_int_eq(l.n, 0);
        ck_assert(hexists(&t, 0, "d/.wh.a") && !hexists(&t, 0, ".wh.d"));
        ck_assert_int_eq(ugetattr(&t, "tg/old", &st), -ENOENT);
        ck_assert_int_eq(ulist(&t, "tg", &l), 0);
        ck_assert_int_eq(l.n, 0);
        ck_assert_str_eq(uread(&t, "src/k"), "kept");
        ck_assert_int_eq(ulist(&t, "", &l), 0);
        ck_assert_int_eq(l.n, 3);
        /* and both work once the failure is gone */
        ck_assert_int_eq(urmdir(&t, "d"), 0);
        ck_assert_int_eq(ugetattr(&t, "d", &st), -ENOENT);
        ck_assert_int_eq(urename(&t, "src", "tg", 0), 0);
        ck_assert_str_eq(uread(&t, "tg/k"), "kept");
        ck_assert_int_eq(ugetattr(&t, "tg/old", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(&t, "src", &st), -ENOENT);
        t_done(&t);
}
END_TEST

static atomic_int g_rc_stop;

static void *rc_creator(void *arg)
{
        T *t = arg;

        while (!atomic_load(&g_rc_stop)) {
                if (uwrite(t, "d/n", O_CREAT | O_EXCL, "n", 0) == 0)
                        uunlink(t, "d/n");
        }
        return NULL;
}

/* rmdir racing creations in the directory: each failed rmdir leaves the
 * names deleted before it deleted. */
START_TEST(test_rmdir_create_race)
{
        struct stat st;
        pthread_t th;
        int r = -1, fails = 0;
        T t;

        t_init(&t, 2);
        hmkdir(&t, 1, "d");
        hput(&t, 1, "d/x", "x");
        hput(&t, 1, "d/y", "y");
        t_union_shared(&t, true);
        ck_assert_int_eq(uunlink(&t, "d/x"), 0);
        ck_assert_int_eq(uunlink(&t, "d/y"), 0);
        atomic_store(&g_rc_stop, 0);
        ck_assert_int_eq(pthread_create(&th, NULL, rc_creator, &t), 0);
        for (int i = 0; i < 2000 && r != 0; i++) {
                r = urmdir(&t, "d");
                if (r == 0)
                        break;
                ck_assert_msg(r == -ENOTEMPTY || r == -ENOENT, "rmdir: %d", r);
                fails++;
                ck_assert_int_eq(ugetattr(&t, "d/x", &st), -ENOENT);
                ck_assert_int_eq(ugetattr(&t, "d/y", &st), -ENOENT);
        }
        atomic_store(&g_rc_stop, 1);
        pthread_join(th, NULL);
        if (r != 0)
                ck_assert_int_eq(urmdir(&t, "d"), 0);
        ck_assert_int_eq(umkdir(&t, "d", 0755), 0);
        ck_assert_int_eq(ugetattr(&t, "d/x", &st), -ENOENT);
        ck_assert_int_eq(ugetattr(&t, "d/y", &st), -ENOENT);
        t_done(&t);
}
END_TEST

static int count_fill(void *ctx, const char *name, ino_t ino, unsigned char type)
{
        (void)name;
        (void)ino;
        (void)type;
        (*(int *)ctx)++;
        return 0;
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static atomic_int g_big_done;
static double g_big_time;

static void *big_renamer(void *arg)
{
        T *t = arg;
        double t0 = now_s();

        ck_assert_int_eq(urename(t, "big", "big2", 0), 0);
        g_big_time = now_s() - t0;
        atomic_store(&g_big_done, 1);
        return NULL;
}

/* Renaming a large merged directory copies it whole; lookups in unrelated
 * directories meanwhile take no longer than they would without it. */
START_TEST(test_big_rename_lookups)
{
        double worst = 0;
        long lookups = 0;
        pthread_t th;
        struct stat st;
        char p[64];
        T t;

        t_init(&t, 2);
        hmkdir(&t, 1, "big");
        hmkdir(&t, 0, "big");
        for (int i = 0; i < 3000; i++) {
                snprintf(p, sizeof(p), "big/f%d", i);
                hput(&t, 1, p, "some data");
        }
        hmkdir(&t, 1, "other");
        hput(&t, 1, "other/x", "x");
        t_union_shared(&t, true);
        atomic_store(&g_big_done, 0);
        ck_assert_int_eq(pthread_create(&th, NULL, big_renamer, &t), 0);
        while (!atomic_load(&g_big_done)) {
                double t0 = now_s(), dt;

                ck_assert_int_eq(ugetattr(&t, "other/x", &st), 0);
                dt = now_s() - t0;
                if (dt > worst)
                        worst = dt;
                lookups++;
        }
        pthread_join(th, NULL);
        fprintf(stderr, "big rename: %.3f s, %ld lookups elsewhere meanwhile, worst %.6f s\n",
                g_big_time, lookups, worst);
        ck_assert_msg(g_big_time > 0.05, "rename too quick to measure (%.3f s)", g_big_time);
        ck_assert_msg(worst < g_big_time / 4, "a lookup waited %.3f s of %.3f s", worst,
                      g_big_time);
        {
                LsNode *d;
                int n = 0;

                ck_assert_int_eq(uwalk(&t, "big2", &d), 0);
                ck_assert_int_eq(ls_ops(d)->readdir(d, count_fill, &n), 0);
                ck_assert_int_eq(n, 3000);
                ls_node_unref(d);
        }
        ck_assert_int_eq(ugetattr(&t, "big", &st), -ENOENT);
        t_done(&t);
}
END_TEST

/* --- stress: copy-ups, unlinks, renames and readers on one union ---------- */

#define ST_DIRS    4
#define ST_FILES   24
#define ST_WORKERS 4
#define ST_MFILES  8

typedef struct StressModel {
        char content[ST_DIRS][ST_FILES][32]; /* "" = absent */
        char m[ST_MFILES][32];
} StressModel;

static StressModel g_model;
static atomic_int g_stress_stop;
static atomic_long g_stress_ops, g_stress_ebusy;
static char g_stress_err[256];
static atomic_int g_stress_failed;
static atomic_int g_m_where; /* 0: "m", 1: "m2" */

static void stress_fail(const char *fmt, long a, long b, int r)
{
        if (atomic_exchange(&g_stress_failed, 1) == 0)
                snprintf(g_stress_err, sizeof(g_stress_err), fmt, a, b, r);
}

static void *stress_worker(void *arg)
{
        long w = (long)arg;
        unsigned seed = (unsigned)(w * 7919 + 1);
        long n = 0;
        T *t = g_conc;

        while (!atomic_load(&g_stress_stop) && !atomic_load(&g_stress_failed)) {
                int d = rand_r(&seed) % ST_DIRS;
                int i = (rand_r(&seed) % (ST_FILES / ST_WORKERS)) * ST_WORKERS + (int)w;
                char *c = g_model.content[d][i];
                char path[64], data[32];
                int op = rand_r(&seed) % 6, r;

                snprintf(path, sizeof(path), "s%d/f%d", d, i);
                snprintf(data, sizeof(data), "W%ld.%ld", w, n++);
                switch (op) {
                case 0: /* write (copy-up) or create */
                case 1:
                        r = uwrite(t, path, c[0] ? O_TRUNC : O_CREAT | O_EXCL, data, 0);
                        if (r != 0)
                                stress_fail("write s%ld/f%ld: %d", d, i, r);
                        snprintf(c, 32, "%s", data);
                        break;
                case 2: /* unlink */
                        r = uunlink(t, path);
                        if (r != (c[0] ? 0 : -ENOENT))
                                stress_fail("unlink s%ld/f%ld: %d", d, i, r);
                        c[0] = '\0';
                        break;
                case 3: { /* rename to another directory, same index */
                        int d2 = (d + 1 + rand_r(&seed) % (ST_DIRS - 1)) % ST_DIRS;
                        char to[64];

                        if (!c[0])
                                break;
                        snprintf(to, sizeof(to), "s%d/f%d", d2, i);
                        r = urename(t, path, to, 0);
                        if (r != 0)
                                stress_fail("rename s%ld/f%ld: %d", d, i, r);
                        memcpy(g_model.content[d2][i], c, 32);
                        c[0] = '\0';
                        break;
                }
                case 4: /* setattr (copy-up) */
                        r = uchmod(t, path, 0600 | (n & 7) << 3);
                        if (r != (c[0] ? 0 : -ENOENT))
                                stress_fail("chmod s%ld/f%ld: %d", d, i, r);
                        break;
                case 5: { /* a file of the directory being renamed back and forth */
                        int k = (rand_r(&seed) % (ST_MFILES / ST_WORKERS)) * ST_WORKERS + (int)w;

                        r = -ENOENT;
                        for (int tries = 0; tries < 1000 && r == -ENOENT; tries++) {
                                snprintf(path, sizeof(path), "%s/k%d", tries & 1 ? "m2" : "m", k);
                                r = uwrite(t, path, O_TRUNC, data, 0);
                        }
                        if (r != 0)
                                stress_fail("write m/k%ld (%ld): %d", k, 0, r);
                        snprintf(g_model.m[k], 32, "%s", data);
                        break;
                }
                }
                atomic_fetch_add(&g_stress_ops, 1);
        }
        return NULL;
}

static int stress_list_fill(void *ctx, const char *name, ino_t ino, unsigned char type)
{
        Listing *l = ctx;

        (void)type;
        if (strncmp(name, ".wh.", 4) == 0 || l->n >= 128)
                return -EUCLEAN;
        for (int i = 0; i < l->n; i++)
                if (strcmp(l->names[i], name) == 0)
                        return -EUCLEAN; /* listed twice */
        snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
        l->inos[l->n++] = ino;
        return 0;
}

static void *stress_reader(void *arg)
{
        unsigned seed = (unsigned)(uintptr_t)arg;
        T *t = g_conc;

        while (!atomic_load(&g_stress_stop) && !atomic_load(&g_stress_failed)) {
                char path[64];
                Listing l = {.n = 0};
                LsNode *d;
                LsFile *f;
                int r;

                snprintf(path, sizeof(path), "s%d/f%d", rand_r(&seed) % ST_DIRS,
                         rand_r(&seed) % ST_FILES);
                r = uopen(t, path, O_RDONLY, 0, &f);
                if (r == 0) {
                        char buf[32];
                        ssize_t n = fread_at(f, buf, sizeof(buf), 0);

                        /* empty between a writer's O_TRUNC and its write */
                        if (n < 0 || (n > 0 && buf[0] != 'W' && buf[0] != 'L'))
                                stress_fail("read %ld %ld: %d", 0, 0, (int)n);
                        frelease(f);
                } else if (r != -ENOENT) {
                        stress_fail("open %ld %ld: %d", 0, 0, r);
                }
                snprintf(path, sizeof(path), "s%d", rand_r(&seed) % ST_DIRS);
                if (uwalk(t, path, &d) == 0) {
                        r = ls_ops(d)->readdir(d, stress_list_fill, &l);
                        if (r < 0)
                                stress_fail("readdir %ld %ld: %d", 0, 0, r);
                        ls_node_unref(d);
                }
        }
        return NULL;
}

static void *stress_renamer(void *arg)
{
        T *t = g_conc;

        (void)arg;
        while (!atomic_load(&g_stress_stop) && !atomic_load(&g_stress_failed)) {
                int where = atomic_load(&g_m_where);
                int r = urename(t, where ? "m2" : "m", where ? "m" : "m2", 0);

                if (r == 0)
                        atomic_store(&g_m_where, !where);
                else if (r == -EBUSY)
                        atomic_fetch_add(&g_stress_ebusy, 1);
                else {
                        Listing l;
                        char top[PATH_MAX];
                        DIR *dd;
                        struct dirent *de;

                        stress_fail("rename m (%ld %ld): %d", where, 0, r);
                        ulist(t, "", &l);
                        for (int i = 0; i < l.n; i++)
                                fprintf(stderr, "union root: %s\n", l.names[i]);
                        snprintf(top, sizeof(top), "%s", t->br[0]);
                        dd = opendir(top);
                        while (dd && (de = readdir(dd)))
                                fprintf(stderr, "top: %s\n", de->d_name);
                        if (dd)
                                closedir(dd);
                }
                usleep(2000);
        }
        return NULL;
}

static int top_garbage(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                char p[PATH_MAX];

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (strncmp(de->d_name, ".wh..wh..tmp.", 13) == 0)
                        n++;
                snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
                if (de->d_type == DT_DIR)
                        n += top_garbage(p);
        }
        closedir(d);
        return n;
}

START_TEST(test_stress)
{
        const char *lng = getenv("DANAUS_STRESS_LONG");
        int seconds = lng && *lng == '1' ? 180 : 20;
        pthread_t th[ST_WORKERS + 3];
        double t0;
        T t;

        t_init(&t, 3);
        memset(&g_model, 0, sizeof(g_model));
        for (int d = 0; d < ST_DIRS; d++) {
                char p[64], data[32];

                snprintf(p, sizeof(p), "s%d", d);
                hmkdir(&t, 2, p);
                if (d & 1)
                        hmkdir(&t, 1, p);
                for (int i = 0; i < ST_FILES; i++) {
                        snprintf(p, sizeof(p), "s%d/f%d", d, i);
                        snprintf(data, sizeof(data), "L%d.%d", d, i);
                        hput(&t, (d & 1) && !(i & 1) ? 1 : 2, p, data);
                        snprintf(g_model.content[d][i], 32, "%s", data);
                }
        }
        hmkdir(&t, 2, "m");
        hmkdir(&t, 1, "m");
        for (int k = 0; k < ST_MFILES; k++) {
                char p[64], data[32];

                snprintf(p, sizeof(p), "m/k%d", k);
                snprintf(data, sizeof(data), "L%d", k);
                hput(&t, 1 + (k & 1), p, data);
                snprintf(g_model.m[k], 32, "%s", data);
        }
        t_union_shared(&t, true);
        union_set_copy_up_sync(t.u, false);
        g_conc = &t;
        atomic_store(&g_stress_stop, 0);
        atomic_store(&g_stress_failed, 0);
        atomic_store(&g_stress_ops, 0);
        atomic_store(&g_stress_ebusy, 0);
        atomic_store(&g_m_where, 0);
        for (long i = 0; i < ST_WORKERS; i++)
                ck_assert_int_eq(pthread_create(&th[i], NULL, stress_worker, (void *)i), 0);
        ck_assert_int_eq(pthread_create(&th[ST_WORKERS], NULL, stress_reader, (void *)1L), 0);
        ck_assert_int_eq(pthread_create(&th[ST_WORKERS + 1], NULL, stress_reader, (void *)2L), 0);
        ck_assert_int_eq(pthread_create(&th[ST_WORKERS + 2], NULL, stress_renamer, NULL), 0);
        t0 = now_s();
        while (now_s() - t0 < seconds && !atomic_load(&g_stress_failed))
                usleep(100000);
        atomic_store(&g_stress_stop, 1);
        for (int i = 0; i < ST_WORKERS + 3; i++)
                pthread_join(th[i], NULL);
        fprintf(stderr, "stress: %ld operations in %.1f s, %ld directory renames gave up (EBUSY)\n",
                atomic_load(&g_stress_ops), now_s() - t0, atomic_load(&g_stress_ebusy));
        ck_assert_msg(!atomic_load(&g_stress_failed), "%s", g_stress_err);
        /* the final tree is what the operations that succeeded imply, seen
         * fresh: after a restart as well */
        for (int pass = 0; pass < 2; pass++) {
                struct stat st;
                const char *m = atomic_load(&g_m_where) ? "m2" : "m";
                const char *gone = atomic_load(&g_m_where) ? "m" : "m2";
                Listing l;

                for (int d = 0; d < ST_DIRS; d++) {
                        int present = 0;
                        char p[64];

                        for (int i = 0; i < ST_FILES; i++) {
                                snprintf(p, sizeof(p), "s%d/f%d", d, i);
                                if (g_model.content[d][i][0]) {
                                        present++;
                                        ck_assert_str_eq(uread(&t, p), g_model.content[d][i]);
                                } else {
                                        ck_assert_msg(ugetattr(&t, p, &st) == -ENOENT, "%s is back",
                                                      p);
                                }
                        }
                        snprintf(p, sizeof(p), "s%d", d);
                        ck_assert_int_eq(ulist(&t, p, &l), 0);
                        ck_assert_int_eq(l.n, present);
                }
                ck_assert_int_eq(ugetattr(&t, gone, &st), -ENOENT);
                ck_assert_int_eq(ulist(&t, m, &l), 0);
                ck_assert_int_eq(l.n, ST_MFILES);
                for (int k = 0; k < ST_MFILES; k++) {
                        char p[64];

                        snprintf(p, sizeof(p), "%s/k%d", m, k);
                        ck_assert_str_eq(uread(&t, p), g_model.m[k]);
                }
                t_done(&t);
                if (pass == 0)
                        t_union_shared(&t, true);
        }
        ck_assert_int_eq(top_garbage(t.br[0]), 0);
}
END_TEST

static Suite *union_suite(void)
{
        Suite *s = suite_create("union");
        struct {
                const char *name;
                const TTest *test;
                int timeout;
        } cases[] = {
            {"lookup_order", test_lookup_order, 60},
            {"lookup_cost", test_lookup_cost, 60},
            {"lookup_invalidation", test_lookup_invalidation, 60},
            {"whiteout_hiding", test_whiteout_hiding, 60},
            {"opaque_dir", test_opaque_dir, 60},
            {"wh_invisible", test_wh_invisible, 60},
            {"copyup_attrs", test_copyup_attrs, 60},
            {"copyup_sparse", test_copyup_sparse, 60},
            {"unlink_rmdir_whiteouts", test_unlink_rmdir_whiteouts, 60},
            {"rmdir_notempty", test_rmdir_notempty, 60},
            {"mkdir_over_whiteout", test_mkdir_over_whiteout, 60},
            {"readdir_merge", test_readdir_merge, 60},
            {"rename_file", test_rename_file, 60},
            {"rename_dir_upper", test_rename_dir_upper, 60},
            {"rename_dir_lower", test_rename_dir_lower, 60},
            {"hardlink_lower", test_hardlink_lower, 60},
            {"symlink", test_symlink, 60},
            {"xattr_statfs", test_xattr_statfs, 60},
            {"inode_numbers", test_inode_numbers, 60},
            {"read_only", test_read_only, 60},
            {"concurrency", test_concurrency, 60},
            {"copyup_keeps_ino", test_copyup_keeps_ino, 60},
            {"copyup_lower_hardlinks", test_copyup_lower_hardlinks, 60},
            {"open_follows_copyup", test_open_follows_copyup, 60},
            {"open_follows_copyup_threads", test_open_follows_copyup_threads, 60},
            {"copyup_ino_race", test_copyup_ino_race, 60},
            {"rename_dir_parent_lower", test_rename_dir_parent_lower, 60},
            {"rename_dir_top_only_child_held", test_rename_dir_top_only_child_held, 60},
            {"shared_instance", test_shared_instance, 60},
            {"fsyncdir_removed", test_fsyncdir_removed, 60},
            {"node_identity", test_node_identity, 60},
            {"nameless_copyup", test_nameless_copyup, 60},
            {"nocopyup_fsyncdir_tmpfile", test_nocopyup_fsyncdir_tmpfile, 60},
            {"cross_fs", test_cross_fs, 60},
            {"copyup_unlink_race", test_copyup_unlink_race, 120},
            {"failed_rmdir_rename_keep_whiteouts", test_failed_rmdir_rename_keep_whiteouts, 60},
            {"rmdir_create_race", test_rmdir_create_race, 120},
            {"big_rename_lookups", test_big_rename_lookups, 300},
            {"stress", test_stress, 600},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                TCase *tc = tcase_create(cases[i].name);

                tcase_set_timeout(tc, cases[i].timeout);
                tcase_add_test(tc, cases[i].test);
                suite_add_tcase(s, tc);
        }
        return s;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
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
        nftw(g_base, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        return failed ? 1 : 0;
}
