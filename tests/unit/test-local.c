/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests: the local libservice. Handles (unique while alive, named for
 * life, working without a name), the fd budget, mounts below the root,
 * deep trees, exact owners and modes of new entries, and above all
 * confinement: each case builds a hostile tree, a root directory beside an
 * "outside" directory holding a secret and symlinks of every kind pointing
 * out of the root. Whatever is asked through the libservice, the outside
 * must stay unread and unchanged.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "libservice/local.h"

static char base[PATH_MAX], root[PATH_MAX], outside[PATH_MAX];
static LsInstance *inst;
static const LsOps *ops;
static LsNode *rootn;

static void write_file(const char *path, const char *text, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static void at(char *buf, const char *dir, const char *name)
{
        int n = snprintf(buf, PATH_MAX, "%s/%s", dir, name);

        ck_assert(n > 0 && n < PATH_MAX);
}

/* A new reference on path below the root ("" = the root). */
static LsNode *walk(const char *path)
{
        LsNode *n = NULL;

        ck_assert_msg(ls_walk(rootn, path, &n) == 0, "walk(%s)", path);
        return n;
}

static LsNode *lk(LsNode *dir, const char *name)
{
        LsNode *n = NULL;

        ck_assert_msg(ops->lookup(dir, name, &n, NULL) == 0, "lookup(%s)", name);
        return n;
}

/* Reads the whole (small) file node into buf. */
static ssize_t read_node(LsNode *n, char *buf, size_t size)
{
        LsFile *f;
        ssize_t len;

        ck_assert_int_eq(ops->open(n, O_RDONLY, &f), 0);
        len = ops->pread(f, buf, size - 1, 0);
        ck_assert_int_ge(len, 0);
        buf[len] = '\0';
        ck_assert_int_eq(ops->release(f), 0);
        return len;
}

/* Whether handles can be reopened here, so that fds are evicted at all
 * (local_new() checks the same capability). */
static bool can_reopen(void)
{
        struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {0};

        if (syscall(SYS_capget, &hdr, data) < 0)
                return false;
        return data[CAP_DAC_READ_SEARCH / 32].effective & (1u << (CAP_DAC_READ_SEARCH % 32));
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        ck_assert_ptr_nonnull(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

/* root/: file, dir/, inlink -> file, abs -> OUTSIDE, rel -> ../outside,
 * chain1 -> chain2 -> dir/../../outside/secret, magic -> /proc/self/root,
 * dangling -> ../outside/created, secretlink -> ../outside/secret */
static void setup_in(const char *tmpdir)
{
        char p[PATH_MAX];

        snprintf(base, sizeof(base), "%s/danaus-unit-local.XXXXXX", tmpdir);
        ck_assert_ptr_nonnull(mkdtemp(base));
        at(root, base, "root");
        at(outside, base, "outside");
        ck_assert_int_eq(mkdir(root, 0755), 0);
        ck_assert_int_eq(mkdir(outside, 0755), 0);
        at(p, outside, "secret");
        write_file(p, "secret", 0600);
        at(p, root, "file");
        write_file(p, "inside", 0644);
        at(p, root, "dir");
        ck_assert_int_eq(mkdir(p, 0755), 0);
        at(p, root, "inlink");
        ck_assert_int_eq(symlink("file", p), 0);
        at(p, root, "abs");
        ck_assert_int_eq(symlink(outside, p), 0);
        at(p, root, "rel");
        ck_assert_int_eq(symlink("../outside", p), 0);
        at(p, root, "chain1");
        ck_assert_int_eq(symlink("chain2", p), 0);
        at(p, root, "chain2");
        ck_assert_int_eq(symlink("dir/../../outside/secret", p), 0);
        at(p, root, "magic");
        ck_assert_int_eq(symlink("/proc/self/root", p), 0);
        at(p, root, "dangling");
        ck_assert_int_eq(symlink("../outside/created", p), 0);
        at(p, root, "secretlink");
        ck_assert_int_eq(symlink("../outside/secret", p), 0);
        ck_assert_int_eq(local_new(root, false, &inst), 0);
        ops = inst->ops;
        ck_assert_int_eq(ops->root(inst, &rootn), 0);
}

static void setup(void)
{
        setup_in("/tmp");
}

/* tmpfs: many xattrs, no limit of one block */
static void setup_shm(void)
{
        setup_in("/dev/shm");
}

static char mounted[4][PATH_MAX];
static int n_mounted;

static void teardown(void)
{
        char cmd[PATH_MAX + 32];

        rootn = ls_node_unref(rootn);
        inst = ls_instance_unref(inst);
        while (n_mounted > 0)
                umount2(mounted[--n_mounted], MNT_DETACH);
        /* base always comes from mkdtemp(): never empty. */
        ck_assert(strstr(base, "/danaus-unit-local.") != NULL);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        ck_assert_int_eq(system(cmd), 0);
}

/* The outside secret is untouched: same content, mode, owner, no xattrs. */
static void assert_outside_intact(void)
{
        char p[PATH_MAX], buf[64] = "";
        struct stat st;
        int fd;

        at(p, outside, "secret");
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(st.st_uid, geteuid());
        ck_assert_int_eq(st.st_size, 6);
        fd = open(p, O_RDONLY);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), 6);
        close(fd);
        ck_assert_str_eq(buf, "secret");
        ck_assert_int_le(listxattr(p, NULL, 0), 0);
        at(p, outside, "created");
        ck_assert_int_ne(access(p, F_OK), 0);
        at(p, outside, "newdir");
        ck_assert_int_ne(access(p, F_OK), 0);
        ck_assert_int_eq(stat(outside, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0755);
        ck_assert_int_le(listxattr(outside, NULL, 0), 0);
}

static const char *const escapes[] = {
    "abs/secret", "rel/secret", "chain1/x", "magic/etc/passwd", "dir/../file", "../outside",
};
static const char *const links[] = {"secretlink", "abs", "rel", "chain1", "magic", "dangling"};

START_TEST(test_open_escapes_refused)
{
        LsCred cred = {0, 0};
        struct stat st;
        LsNode *n;
        LsFile *f;

        for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++)
                ck_assert_msg(ls_walk(rootn, escapes[i], &n) < 0, "walk(%s) escaped", escapes[i]);
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
                n = walk(links[i]);
                ck_assert_int_eq(ops->getattr(n, &st), 0);
                ck_assert(S_ISLNK(st.st_mode));
                ck_assert_int_eq(ops->open(n, O_RDONLY, &f), -ELOOP);
                ck_assert_int_eq(ops->open(n, O_WRONLY | O_TRUNC, &f), -ELOOP);
                ck_assert_int_eq(ops->lookup(n, "secret", &n, NULL), -ENOTDIR);
                ck_assert_int_eq(ops->lookup(n, "x", &n, NULL), -ENOTDIR);
                ls_node_unref(n);
                /* create on a symlink's name: never through it */
                ck_assert_int_eq(ops->create(rootn, links[i], O_WRONLY, 0644, &cred, &n, NULL, &f),
                                 -ELOOP);
                ck_assert_int_eq(
                    ops->create(rootn, links[i], O_WRONLY | O_EXCL, 0644, &cred, &n, NULL, &f),
                    -EEXIST);
        }
        assert_outside_intact();
}
END_TEST

START_TEST(test_bad_names_refused)
{
        char longname[NAME_MAX + 2];
        LsCred cred = {0, 0};
        LsNode *n;
        LsFile *f;

        memset(longname, 'x', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        ck_assert_int_eq(ops->lookup(rootn, "..", &n, NULL), -EINVAL);
        ck_assert_int_eq(ops->lookup(rootn, ".", &n, NULL), -EINVAL);
        ck_assert_int_eq(ops->lookup(rootn, "", &n, NULL), -EINVAL);
        ck_assert_int_eq(ops->lookup(rootn, "dir/../file", &n, NULL), -EINVAL);
        ck_assert_int_eq(ops->lookup(rootn, "/etc", &n, NULL), -EINVAL);
        ck_assert_int_eq(ops->lookup(rootn, longname, &n, NULL), -ENAMETOOLONG);
        ck_assert_int_eq(ops->mkdir(rootn, "..", 0755, &cred, &n, NULL), -EINVAL);
        ck_assert_int_eq(ops->mkdir(rootn, "../outside/newdir", 0755, &cred, &n, NULL), -EINVAL);
        ck_assert_int_eq(
            ops->create(rootn, "../outside/created", O_WRONLY, 0644, &cred, &n, NULL, &f), -EINVAL);
        ck_assert_int_eq(ops->symlink(rootn, "a/b", "x", &cred, &n, NULL), -EINVAL);
        ck_assert_int_eq(ops->unlink(rootn, "../outside/secret"), -EINVAL);
        ck_assert_int_eq(ops->rename(rootn, "file", rootn, "../outside/created", 0), -EINVAL);
        ck_assert_int_eq(ops->rename(rootn, "file", rootn, "x", RENAME_WHITEOUT), -EINVAL);
        ck_assert_int_eq(ls_walk(rootn, "../outside", &n), -EINVAL);
        assert_outside_intact();
}
END_TEST

START_TEST(test_namespace_ops_through_symlinks_refused)
{
        LsCred cred = {0, 0};
        LsSetattr sa = {0};
        char buf[64];
        LsNode *abs = walk("abs"), *rel = walk("rel"), *file = walk("file"), *sl, *n;
        struct stat st, before;
        char p[PATH_MAX];

        ck_assert_int_eq(ops->mkdir(abs, "newdir", 0755, &cred, &n, NULL), -ENOTDIR);
        ck_assert_int_eq(ops->mkdir(rel, "newdir", 0755, &cred, &n, NULL), -ENOTDIR);
        ck_assert_int_eq(ops->unlink(abs, "secret"), -ENOTDIR);
        ck_assert_int_eq(ops->rename(rootn, "file", rel, "created", 0), -ENOTDIR);
        ck_assert_int_eq(ops->rename(abs, "secret", rootn, "stolen", 0), -ENOTDIR);
        ck_assert_int_eq(ops->link(file, rel, "created", NULL), -ENOTDIR);
        ck_assert_int_eq(ops->symlink(abs, "created", "x", &cred, &n, NULL), -ENOTDIR);
        ck_assert_int_eq(ops->readdir(abs, NULL, NULL), -ENOTDIR);
        /* On the symlink itself the ops act on the link, never its target. */
        sl = walk("secretlink");
        ck_assert_int_eq(ops->readlink(sl, buf, sizeof(buf)), 17);
        ck_assert(memcmp(buf, "../outside/secret", 17) == 0);
        sa.valid = LS_SET_MODE;
        sa.mode = 0666;
        ck_assert_int_eq(ops->setattr(sl, &sa, NULL), -EOPNOTSUPP);
        sa.valid = LS_SET_SIZE;
        ck_assert_int_eq(ops->setattr(sl, &sa, NULL), -EINVAL);
        sa.valid = LS_SET_UID | LS_SET_GID | LS_SET_MTIME;
        sa.uid = 1234;
        sa.gid = 1234;
        sa.mtime.tv_sec = 1;
        at(p, root, "secretlink");
        ck_assert_int_eq(lstat(p, &before), 0);
        if (geteuid() == 0) {
                ck_assert_int_eq(ops->setattr(sl, &sa, &st), 0);
                ck_assert(S_ISLNK(st.st_mode));
                ck_assert_int_eq(st.st_uid, 1234);
                ck_assert_int_eq(st.st_mtime, 1);
                ck_assert_int_eq(lstat(p, &st), 0);
                ck_assert_int_eq(st.st_uid, 1234);
                /* trusted.* on a symlink: the union marks copied-up ones */
                ck_assert_int_eq(ops->setxattr(sl, "trusted.danaus.origin", "o", 1, 0), 0);
                ck_assert_int_eq(ops->getxattr(sl, "trusted.danaus.origin", buf, sizeof(buf)), 1);
                ck_assert_int_eq(lgetxattr(p, "trusted.danaus.origin", buf, sizeof(buf)), 1);
                ck_assert_int_eq(ops->listxattr(sl, buf, sizeof(buf)), 22);
                ck_assert_int_eq(ops->removexattr(sl, "trusted.danaus.origin"), 0);
                ck_assert_int_eq(lgetxattr(p, "trusted.danaus.origin", buf, sizeof(buf)), -1);
        }
        /* user.* xattrs are not allowed on symlinks: refused, not followed */
        ck_assert_int_lt(ops->setxattr(sl, "user.x", "1", 1, 0), 0);
        ck_assert_int_lt(ops->getxattr(sl, "user.x", buf, sizeof(buf)), 0);
        ls_node_unref(sl);
        ls_node_unref(abs);
        ls_node_unref(rel);
        ls_node_unref(file);
        assert_outside_intact();
}
END_TEST

/* A directory handle keeps naming its directory after the name is swapped
 * for a symlink to the outside. */
START_TEST(test_swapped_dir_stays_inside)
{
        LsCred cred = {0, 0};
        char p[PATH_MAX], q[PATH_MAX];
        LsNode *dir = walk("dir"), *n, *sym;
        struct stat st;

        at(p, root, "dir");
        at(q, root, "moved");
        ck_assert_int_eq(rename(p, q), 0);
        ck_assert_int_eq(symlink(outside, p), 0);
        ck_assert_int_eq(ops->mkdir(dir, "newdir", 0755, &cred, &n, NULL), 0);
        ls_node_unref(n);
        at(p, q, "newdir");
        ck_assert_int_eq(stat(p, &st), 0);
        sym = walk("dir");
        ck_assert_ptr_ne(sym, dir);
        ck_assert_int_eq(ops->mkdir(sym, "newdir", 0755, &cred, &n, NULL), -ENOTDIR);
        ls_node_unref(sym);
        ls_node_unref(dir);
        assert_outside_intact();
}
END_TEST

typedef struct Listing {
        int n;
        char names[64][NAME_MAX + 1];
        ino_t inos[64];
} Listing;

static int list_entry(void *ctx, const char *name, ino_t ino, unsigned char type)
{
        Listing *l = ctx;

        (void)type;
        if (l->n < 64) {
                snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
                l->inos[l->n] = ino;
        }
        l->n++;
        return 0;
}

static int stop_entry(void *ctx, const char *name, ino_t ino, unsigned char type)
{
        (void)name, (void)ino, (void)type;
        return ++*(int *)ctx == 2 ? 42 : 0;
}

START_TEST(test_readdir)
{
        Listing a = {0}, b = {0};
        LsNode *magic = walk("magic");
        int stop = 0;

        ck_assert_int_eq(ops->readdir(magic, list_entry, &a), -ENOTDIR);
        ls_node_unref(magic);
        ck_assert_int_eq(ops->readdir(rootn, list_entry, &a), 0);
        /* file dir inlink abs rel chain1 chain2 magic dangling secretlink */
        ck_assert_int_eq(a.n, 10);
        ck_assert_int_eq(ops->readdir(rootn, list_entry, &b), 0);
        ck_assert(memcmp(&a, &b, sizeof(a)) == 0); /* stable order */
        for (int i = 0; i < a.n; i++) {
                struct stat st;
                LsNode *n = lk(rootn, a.names[i]);

                ck_assert_int_eq(ops->getattr(n, &st), 0);
                ck_assert_int_eq(st.st_ino, a.inos[i]);
                ls_node_unref(n);
        }
        ck_assert_int_eq(ops->readdir(rootn, stop_entry, &stop), 42);
        ck_assert_int_eq(stop, 2);
        assert_outside_intact();
}
END_TEST

START_TEST(test_unique_handles)
{
        LsNode *a = walk("file"), *b = walk("file"), *r2, *dir = walk("dir"), *h;
        LsNode *via_link;
        struct stat st;

        ck_assert_ptr_eq(a, b);
        ck_assert_int_eq(ops->root(inst, &r2), 0);
        ck_assert_ptr_eq(r2, rootn);
        ls_node_unref(r2);
        ck_assert_int_eq(ops->link(a, dir, "hard", &st), 0);
        ck_assert_int_eq(st.st_nlink, 2);
        h = lk(dir, "hard");
        ck_assert_ptr_eq(h, a);
        via_link = walk("dir/hard");
        ck_assert_ptr_eq(via_link, a);
        /* a dropped handle comes back as a (possibly) new one that works */
        ls_node_unref(a);
        ls_node_unref(b);
        ls_node_unref(h);
        ls_node_unref(via_link);
        a = walk("file");
        ck_assert_int_eq(ops->getattr(a, &st), 0);
        ck_assert_int_eq(st.st_nlink, 2);
        ls_node_unref(a);
        ls_node_unref(dir);
}
END_TEST

START_TEST(test_file_ops)
{
        LsCred cred = {.uid = 1234, .gid = 4321};
        char buf[64] = "", list[64];
        LsNode *dir = walk("dir"), *sub, *nf, *n2, *sym;
        LsSetattr sa = {0};
        struct stat st;
        LsFile *f;

        ck_assert_int_eq(ops->mkdir(dir, "sub", 0750, &cred, &sub, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_int_eq(st.st_mode & 07777, 0750);
        ck_assert_int_eq(ops->mkdir(dir, "sub", 0750, &cred, &n2, NULL), -EEXIST);
        ck_assert_int_eq(
            ops->create(sub, "new", O_RDWR | O_CREAT | O_EXCL, 0640, &cred, &nf, &st, &f), 0);
        ck_assert_ptr_eq(f->node, nf);
        ck_assert_int_eq(ops->pwrite(f, "hello", 5, 10, 0), 5);
        ck_assert_int_eq(ops->pread(f, buf, sizeof(buf), 10), 5);
        ck_assert_int_eq(ops->getattr(nf, &st), 0);
        ck_assert_int_eq(st.st_size, 15);
        ck_assert_int_eq(st.st_mode & 07777, 0640);
        if (geteuid() == 0) {
                ck_assert_int_eq(st.st_uid, 1234);
                ck_assert_int_eq(st.st_gid, 4321);
        }
        ck_assert_int_eq(ops->release(f), 0);
        ck_assert_int_eq(ops->create(sub, "new", O_RDWR | O_EXCL, 0640, &cred, &n2, NULL, &f),
                         -EEXIST);
        /* without O_EXCL the existing file is opened: same handle */
        ck_assert_int_eq(ops->create(sub, "new", O_RDWR | O_TRUNC, 0600, &cred, &n2, &st, &f), 0);
        ck_assert_ptr_eq(n2, nf);
        ck_assert_int_eq(st.st_size, 0);
        ck_assert_int_eq(st.st_mode & 07777, 0640);
        ck_assert_int_eq(ops->release(f), 0);
        ls_node_unref(n2);
        ck_assert_int_eq(ops->create(rootn, "dir", O_RDONLY, 0600, &cred, &n2, NULL, &f), -EISDIR);
        /* setattr */
        sa.valid = LS_SET_SIZE | LS_SET_MODE;
        sa.size = 100;
        sa.mode = 0600;
        ck_assert_int_eq(ops->setattr(nf, &sa, &st), 0);
        ck_assert_int_eq(st.st_size, 100);
        ck_assert_int_eq(st.st_mode & 07777, 0600);
        sa.valid = LS_SET_ATIME | LS_SET_MTIME;
        sa.atime.tv_sec = 1000;
        sa.atime.tv_nsec = 5;
        sa.mtime.tv_sec = 2000;
        ck_assert_int_eq(ops->setattr(nf, &sa, &st), 0);
        ck_assert_int_eq(st.st_atim.tv_sec, 1000);
        ck_assert_int_eq(st.st_atim.tv_nsec, 5);
        ck_assert_int_eq(st.st_mtim.tv_sec, 2000);
        sa.valid = LS_SET_MTIME_NOW;
        ck_assert_int_eq(ops->setattr(nf, &sa, &st), 0);
        ck_assert_int_eq(st.st_atim.tv_sec, 1000); /* only what valid says */
        ck_assert_int_gt(st.st_mtim.tv_sec, time(NULL) - 60);
        if (geteuid() == 0) {
                sa.valid = LS_SET_GID;
                sa.gid = 99;
                ck_assert_int_eq(ops->setattr(nf, &sa, &st), 0);
                ck_assert_int_eq(st.st_uid, 1234);
                ck_assert_int_eq(st.st_gid, 99);
                sa.valid = LS_SET_UID;
                sa.uid = 98;
                ck_assert_int_eq(ops->setattr(nf, &sa, &st), 0);
                ck_assert_int_eq(st.st_uid, 98);
                ck_assert_int_eq(st.st_gid, 99);
        }
        sa.valid = LS_SET_SIZE;
        ck_assert_int_eq(ops->setattr(sub, &sa, NULL), -EISDIR);
        /* xattrs */
        ck_assert_int_eq(ops->setxattr(nf, "user.k", "v", 1, 0), 0);
        ck_assert_int_eq(ops->setxattr(nf, "user.k", "w", 1, XATTR_CREATE), -EEXIST);
        ck_assert_int_eq(ops->getxattr(nf, "user.k", NULL, 0), 1);
        ck_assert_int_eq(ops->getxattr(nf, "user.k", buf, sizeof(buf)), 1);
        ck_assert_int_eq(ops->listxattr(nf, NULL, 0), 7);
        ck_assert_int_eq(ops->listxattr(nf, list, 3), -ERANGE);
        ck_assert_int_eq(ops->listxattr(nf, list, sizeof(list)), 7);
        ck_assert_str_eq(list, "user.k");
        ck_assert_int_eq(ops->removexattr(nf, "user.k"), 0);
        ck_assert_int_eq(ops->getxattr(nf, "user.k", buf, sizeof(buf)), -ENODATA);
        ck_assert_int_eq(ops->setxattr(rootn, "user.r", "rv", 2, 0), 0);
        ck_assert_int_eq(ops->getxattr(rootn, "user.r", buf, sizeof(buf)), 2);
        ck_assert_int_eq(ops->removexattr(rootn, "user.r"), 0);
        /* rename, link, symlink */
        ck_assert_int_eq(ops->rename(sub, "new", dir, "moved", 0), 0);
        ck_assert_int_eq(ops->getattr(nf, &st), 0); /* the handle follows its object */
        n2 = lk(dir, "moved");
        ck_assert_ptr_eq(n2, nf);
        ls_node_unref(n2);
        ck_assert_int_eq(ops->link(nf, dir, "hard", &st), 0);
        ck_assert_int_eq(st.st_nlink, 2);
        ck_assert_int_eq(ops->link(sub, dir, "dirlink", &st), -EPERM);
        ck_assert_int_eq(ops->symlink(dir, "sym", "moved", &cred, &sym, &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        ck_assert_int_eq(ops->readlink(sym, buf, sizeof(buf)), 5);
        ck_assert_int_eq(ops->readlink(sym, buf, 2), 2);
        ck_assert_int_eq(ops->readlink(nf, buf, sizeof(buf)), -EINVAL);
        if (geteuid() == 0) {
                ck_assert_int_eq(st.st_uid, 1234);
                ck_assert_int_eq(st.st_gid, 4321);
        }
        ck_assert_int_eq(ops->rename(dir, "hard", dir, "sym", RENAME_NOREPLACE), -EEXIST);
        ck_assert_int_eq(ops->rename(dir, "hard", dir, "sym", RENAME_EXCHANGE), 0);
        n2 = lk(dir, "hard");
        ck_assert_ptr_eq(n2, sym);
        ls_node_unref(n2);
        n2 = lk(dir, "sym");
        ck_assert_ptr_eq(n2, nf);
        ls_node_unref(n2);
        /* unlink, rmdir */
        ck_assert_int_eq(ops->rmdir(dir, "sub"), 0);
        ck_assert_int_eq(ops->rmdir(rootn, "dir"), -ENOTEMPTY);
        ck_assert_int_eq(ops->unlink(dir, "moved"), 0);
        ck_assert_int_eq(ops->unlink(dir, "moved"), -ENOENT);
        ck_assert_int_eq(ops->unlink(rootn, "dir"), -EISDIR);
        ck_assert_int_eq(ops->rmdir(dir, "sym"), -ENOTDIR);
        ck_assert_int_eq(ops->lookup(nf, "x", &n2, NULL), -ENOTDIR);
        ck_assert_int_eq(ops->getattr(sub, &st), 0); /* removed, still held */
        ck_assert_int_eq(st.st_nlink, 0);
        ls_node_unref(sym);
        ls_node_unref(nf);
        ls_node_unref(sub);
        ls_node_unref(dir);
        assert_outside_intact();
}
END_TEST

START_TEST(test_open_flags)
{
        LsCred cred = {0, 0};
        LsNode *file = walk("file"), *dir = walk("dir"), *n, *t;
        char buf[64] = "", p[PATH_MAX];
        struct stat st;
        LsFile *f;
        off_t off;

        ck_assert_int_eq(ops->open(file, O_WRONLY | O_APPEND, &f), 0);
        ck_assert_int_eq(ops->pwrite(f, "+", 1, 0, 0), 1); /* O_APPEND: at the end */
        ck_assert_int_eq(ops->release(f), 0);
        ck_assert_int_eq(read_node(file, buf, sizeof(buf)), 7);
        ck_assert_str_eq(buf, "inside+");
        ck_assert_int_eq(ops->open(file, O_RDWR, &f), 0);
        ck_assert_int_eq(ops->pwrite(f, "!", 1, 0, RWF_APPEND), 1);
        ck_assert_int_eq(ops->pwrite(f, "I", 1, 0, RWF_DSYNC), 1);
        ck_assert_int_eq(ops->fsync(f, true), 0);
        ck_assert_int_eq(ops->fsync(f, false), 0);
        ck_assert_int_ge(ops->file_fd(f), 0);
        ck_assert_int_eq(ops->release(f), 0);
        ck_assert_int_eq(read_node(file, buf, sizeof(buf)), 8);
        ck_assert_str_eq(buf, "Inside+!");
        ck_assert_int_eq(ops->open(file, O_WRONLY | O_TRUNC, &f), 0);
        ck_assert_int_eq(ops->release(f), 0);
        ck_assert_int_eq(ops->getattr(file, &st), 0);
        ck_assert_int_eq(st.st_size, 0);
        ck_assert_int_eq(ops->open(file, LS_O_NOCOPYUP, &f), 0);
        ck_assert_int_eq(f->flags & O_ACCMODE, O_RDWR);
        ck_assert_int_eq(ops->release(f), 0);
        ck_assert_int_eq(ops->open(file, O_RDONLY | O_NOATIME | O_SYNC, &f), 0);
        ck_assert_int_eq(ops->release(f), 0);
        /* directories read-only (for fsync); symlinks never */
        ck_assert_int_eq(ops->open(dir, O_RDONLY, &f), 0);
        ck_assert_int_eq(ops->fsync(f, false), 0);
        ck_assert_int_eq(ops->release(f), 0);
        ck_assert_int_eq(ops->open(dir, O_RDWR, &f), -EISDIR);
        ck_assert_int_eq(ops->fsyncdir(dir, false), 0);
        ck_assert_int_eq(ops->fsyncdir(dir, true), 0);
        ck_assert_int_eq(ops->fsyncdir(file, true), -ENOTDIR);
        /* SEEK_DATA / SEEK_HOLE */
        ck_assert_int_eq(ops->create(dir, "sparse", O_RDWR, 0644, &cred, &n, NULL, &f), 0);
        ck_assert_int_eq(ops->pwrite(f, "x", 1, 1 << 20, 0), 1);
        off = ops->lseek(f, 0, SEEK_DATA);
        ck_assert_int_ge(off, 0);
        ck_assert_int_le(off, 1 << 20);
        ck_assert_int_ge(ops->lseek(f, 0, SEEK_HOLE), 0);
        ck_assert_int_eq(ops->lseek(f, (1 << 20) + 10, SEEK_DATA), -ENXIO);
        ck_assert_int_eq(ops->lseek(f, 0, SEEK_SET), -EINVAL);
        ck_assert_int_eq(ops->fallocate(f, 0, 0, 4096), 0);
        ck_assert_int_eq(ops->release(f), 0);
        ls_node_unref(n);
        /* O_TMPFILE, then a name for it */
        ck_assert_int_eq(ops->tmpfile(dir, O_RDWR, 0640, &cred, &t, &st, &f), 0);
        ck_assert_int_eq(st.st_nlink, 0);
        ck_assert_int_eq(st.st_mode & 07777, 0640);
        ck_assert_int_eq(ops->pwrite(f, "tmp", 3, 0, 0), 3);
        ck_assert_int_eq(ops->link(t, dir, "named", &st), 0);
        ck_assert_int_eq(st.st_nlink, 1);
        ck_assert_int_eq(ops->release(f), 0);
        n = lk(dir, "named");
        ck_assert_ptr_eq(n, t);
        ck_assert_int_eq(read_node(n, buf, sizeof(buf)), 3);
        ls_node_unref(n);
        ls_node_unref(t);
        at(p, root, "dir/named");
        ck_assert_int_eq(access(p, F_OK), 0);
        ls_node_unref(file);
        ls_node_unref(dir);
}
END_TEST

/* New entries get exactly the owner and mode asked for: set-ID bits survive
 * the chown, a set-group-ID parent's group and bit do not leak through. */
START_TEST(test_owner_mode_exact)
{
        LsCred cred = {.uid = 1234, .gid = 1234};
        LsNode *dir, *n;
        char p[PATH_MAX];
        struct stat st;
        LsFile *f;

        if (geteuid() != 0)
                return;
        dir = walk("dir");
        at(p, root, "dir");
        ck_assert_int_eq(chown(p, 0, 777), 0);
        ck_assert_int_eq(chmod(p, 02775), 0);
        ck_assert_int_eq(ops->create(dir, "suid", O_WRONLY | O_EXCL, 04755, &cred, &n, &st, &f), 0);
        ck_assert_int_eq(ops->release(f), 0);
        ls_node_unref(n);
        at(p, root, "dir/suid");
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_int_eq(st.st_uid, 1234);
        ck_assert_int_eq(st.st_gid, 1234);
        ck_assert_int_eq(st.st_mode & 07777, 04755);
        ck_assert_int_eq(ops->create(dir, "sgid", O_WRONLY, 02750, &cred, &n, &st, &f), 0);
        ck_assert_int_eq(ops->release(f), 0);
        ck_assert_int_eq(st.st_gid, 1234);
        ck_assert_int_eq(st.st_mode & 07777, 02750);
        ls_node_unref(n);
        ck_assert_int_eq(ops->mkdir(dir, "d", 0755, &cred, &n, &st), 0);
        ck_assert_int_eq(st.st_uid, 1234);
        ck_assert_int_eq(st.st_gid, 1234);
        ck_assert_int_eq(st.st_mode & 07777, 0755); /* no inherited S_ISGID */
        ls_node_unref(n);
        ck_assert_int_eq(ops->mkdir(dir, "g", 02770, &cred, &n, &st), 0);
        ck_assert_int_eq(st.st_gid, 1234);
        ck_assert_int_eq(st.st_mode & 07777, 02770);
        ls_node_unref(n);
        ck_assert_int_eq(ops->mknod(dir, "fifo", S_IFIFO | 02644, 0, &cred, &n, &st), 0);
        ck_assert(S_ISFIFO(st.st_mode));
        ck_assert_int_eq(st.st_uid, 1234);
        ck_assert_int_eq(st.st_gid, 1234);
        ck_assert_int_eq(st.st_mode & 07777, 02644);
        ls_node_unref(n);
        ck_assert_int_eq(ops->mknod(dir, "null", S_IFCHR | 0666, makedev(1, 3), &cred, &n, &st), 0);
        ck_assert(S_ISCHR(st.st_mode));
        ck_assert_int_eq(st.st_rdev, makedev(1, 3));
        ck_assert_int_eq(st.st_mode & 07777, 0666);
        ls_node_unref(n);
        ck_assert_int_eq(ops->mknod(dir, "bad", S_IFDIR | 0755, 0, &cred, &n, &st), -EINVAL);
        ck_assert_int_eq(ops->symlink(dir, "ln", "target", &cred, &n, &st), 0);
        ck_assert_int_eq(st.st_uid, 1234);
        ck_assert_int_eq(st.st_gid, 1234);
        ls_node_unref(n);
        ck_assert_int_eq(ops->tmpfile(dir, O_WRONLY, 04711, &cred, &n, &st, &f), 0);
        ck_assert_int_eq(st.st_uid, 1234);
        ck_assert_int_eq(st.st_gid, 1234);
        ck_assert_int_eq(st.st_mode & 07777, 04711);
        ck_assert_int_eq(ops->release(f), 0);
        ls_node_unref(n);
        /* the host umask plays no part */
        umask(077);
        ck_assert_int_eq(ops->mkdir(dir, "um", 0775, &cred, &n, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0775);
        ls_node_unref(n);
        ls_node_unref(dir);
}
END_TEST

START_TEST(test_read_only)
{
        LsInstance *ro;
        LsNode *r, *file, *n;
        LsCred cred = {0, 0};
        LsSetattr sa = {.valid = LS_SET_MODE, .mode = 0600};
        struct statvfs sv;
        LsFile *f;

        ck_assert_int_eq(local_new(root, true, &ro), 0);
        ck_assert_int_eq(ro->ops->root(ro, &r), 0);
        ck_assert_ptr_ne(r, rootn);
        file = lk(r, "file");
        ck_assert_int_eq(ro->ops->mkdir(r, "x", 0755, &cred, &n, NULL), -EROFS);
        ck_assert_int_eq(ro->ops->mknod(r, "x", S_IFIFO | 0644, 0, &cred, &n, NULL), -EROFS);
        ck_assert_int_eq(ro->ops->symlink(r, "x", "y", &cred, &n, NULL), -EROFS);
        ck_assert_int_eq(ro->ops->link(file, r, "x", NULL), -EROFS);
        ck_assert_int_eq(ro->ops->unlink(r, "file"), -EROFS);
        ck_assert_int_eq(ro->ops->rmdir(r, "dir"), -EROFS);
        ck_assert_int_eq(ro->ops->rename(r, "file", r, "x", 0), -EROFS);
        ck_assert_int_eq(ro->ops->setattr(file, &sa, NULL), -EROFS);
        ck_assert_int_eq(ro->ops->setxattr(file, "user.x", "1", 1, 0), -EROFS);
        ck_assert_int_eq(ro->ops->removexattr(file, "user.x"), -EROFS);
        ck_assert_int_eq(ro->ops->create(r, "x", O_WRONLY, 0644, &cred, &n, NULL, &f), -EROFS);
        ck_assert_int_eq(ro->ops->tmpfile(r, O_WRONLY, 0644, &cred, &n, NULL, &f), -EROFS);
        ck_assert_int_eq(ro->ops->open(file, O_WRONLY, &f), -EROFS);
        ck_assert_int_eq(ro->ops->open(file, O_RDONLY | O_TRUNC, &f), -EROFS);
        ck_assert_int_eq(ro->ops->open(file, LS_O_NOCOPYUP, &f), 0);
        ck_assert_int_eq(f->flags & O_ACCMODE, O_RDONLY);
        ck_assert_int_eq(ro->ops->release(f), 0);
        ck_assert_int_eq(ro->ops->open(file, O_RDONLY, &f), 0);
        ck_assert_int_eq(ro->ops->release(f), 0);
        ck_assert_int_eq(ro->ops->statfs(r, &sv), 0);
        ck_assert(sv.f_flag & ST_RDONLY);
        ck_assert_int_eq(ops->statfs(rootn, &sv), 0);
        ls_node_unref(file);
        ls_node_unref(r);
        ls_instance_unref(ro);
}
END_TEST

/* The instance lives until its last node and file are gone. */
START_TEST(test_instance_refs)
{
        LsInstance *i2;
        LsNode *r, *file;
        LsFile *f;
        char buf[16];

        ck_assert_int_eq(local_new(root, false, &i2), 0);
        ck_assert_int_eq(i2->ops->root(i2, &r), 0);
        file = lk(r, "file");
        ck_assert_int_eq(i2->ops->open(file, O_RDONLY, &f), 0);
        ls_node_unref(file);
        ls_node_unref(r);
        ls_instance_unref(i2);
        ck_assert_int_eq(f->node->inst->ops->pread(f, buf, sizeof(buf), 0), 6);
        ck_assert_int_eq(f->node->inst->ops->release(f), 0);
}
END_TEST

/* A handle whose last name is gone keeps working, even under fd pressure. */
START_TEST(test_nameless_handle)
{
        LsCred cred = {0, 0};
        LsNode *dir = walk("dir"), *n, *d, *late, *others[64];
        LsSetattr sa = {0};
        char buf[64] = "", name[32];
        struct stat st;
        LsFile *f;

        ck_assert_int_eq(ops->create(dir, "gone", O_WRONLY, 0644, &cred, &n, NULL, &f), 0);
        ck_assert_int_eq(ops->pwrite(f, "old data", 8, 0, 0), 8);
        ck_assert_int_eq(ops->release(f), 0);
        ck_assert_int_eq(ops->mkdir(dir, "gonedir", 0755, &cred, &d, NULL), 0);
        ck_assert_int_eq(ops->unlink(dir, "gone"), 0);
        ck_assert_int_eq(ops->rmdir(dir, "gonedir"), 0);
        local_set_fd_budget(inst, 2);
        for (int i = 0; i < 64; i++) {
                snprintf(name, sizeof(name), "o%d", i);
                ck_assert_int_eq(ops->mkdir(dir, name, 0755, &cred, &others[i], NULL), 0);
        }
        for (int i = 0; i < 64; i++)
                ck_assert_int_eq(ops->getattr(others[i], &st), 0);
        ck_assert_int_eq(ops->getattr(n, &st), 0);
        ck_assert_int_eq(st.st_nlink, 0);
        ck_assert_int_eq(st.st_size, 8);
        ck_assert_int_eq(ops->getattr(d, &st), 0);
        ck_assert_int_eq(st.st_nlink, 0);
        sa.valid = LS_SET_MODE | LS_SET_SIZE | LS_SET_MTIME;
        sa.mode = 0600;
        sa.size = 3;
        sa.mtime.tv_sec = 12345;
        ck_assert_int_eq(ops->setattr(n, &sa, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(st.st_size, 3);
        ck_assert_int_eq(st.st_mtime, 12345);
        ck_assert_int_eq(read_node(n, buf, sizeof(buf)), 3);
        ck_assert_str_eq(buf, "old");
        ck_assert_int_eq(ops->setxattr(n, "user.a", "b", 1, 0), 0);
        ck_assert_int_eq(ops->getxattr(n, "user.a", buf, sizeof(buf)), 1);
        ck_assert_int_eq(ops->listxattr(n, buf, sizeof(buf)), 7);
        ck_assert_int_eq(ops->create(d, "x", O_WRONLY, 0644, &cred, &others[0], NULL, &f), -ENOENT);
        /* A handle whose fd was evicted while it still had a name, then
         * unlinked through us: the unlink reopens and pins it first. */
        ck_assert_int_eq(ops->create(dir, "late", O_WRONLY, 0644, &cred, &late, NULL, &f), 0);
        ck_assert_int_eq(ops->pwrite(f, "late data", 9, 0, 0), 9);
        ck_assert_int_eq(ops->release(f), 0);
        for (int i = 0; i < 64; i++)
                ck_assert_int_eq(ops->getattr(others[i], &st), 0);
        ck_assert_int_eq(ops->unlink(dir, "late"), 0);
        for (int i = 0; i < 64; i++)
                ck_assert_int_eq(ops->getattr(others[i], &st), 0);
        ck_assert_int_eq(ops->getattr(late, &st), 0);
        ck_assert_int_eq(st.st_nlink, 0);
        ck_assert_int_eq(read_node(late, buf, sizeof(buf)), 9);
        ck_assert_str_eq(buf, "late data");
        ls_node_unref(late);
        /* and a name again */
        ck_assert_int_eq(ops->link(n, dir, "back", &st), -ENOENT); /* as link(2) */
        for (int i = 0; i < 64; i++)
                ls_node_unref(others[i]);
        ls_node_unref(n);
        ls_node_unref(d);
        ls_node_unref(dir);
}
END_TEST

static ino_t host_ino(const char *path)
{
        struct stat st;

        ck_assert_int_eq(lstat(path, &st), 0);
        return st.st_ino;
}

/* A reused inode number never maps to the old handle: the held handle names
 * its old object, a new object gets a new handle. */
START_TEST(test_generation)
{
        LsNode *dir = walk("dir"), *old, *fresh, *pad[8];
        char p[PATH_MAX], name[32], buf[64] = "";
        struct stat st;
        ino_t ino;
        int found = -1;

        /* 1. The old handle's fd was evicted (budget 1) and the file removed
         * behind our back: the number comes back for a new file. Without
         * CAP_DAC_READ_SEARCH nothing is evicted and the number stays ours. */
        if (!can_reopen())
                goto held;
        at(p, root, "dir/victim");
        write_file(p, "victim", 0644);
        ino = host_ino(p);
        old = lk(dir, "victim");
        local_set_fd_budget(inst, 1);
        for (int i = 0; i < 8; i++) {
                snprintf(name, sizeof(name), "pad%d", i);
                at(p, root, "dir");
                snprintf(p + strlen(p), 40, "/%s", name);
                write_file(p, "pad", 0644);
                pad[i] = lk(dir, name);
                ck_assert_int_eq(ops->getattr(pad[i], &st), 0);
        }
        at(p, root, "dir/victim");
        ck_assert_int_eq(unlink(p), 0);
        for (int i = 0; i < 5000 && found < 0; i++) {
                snprintf(name, sizeof(name), "new%d", i);
                at(p, root, "dir");
                snprintf(p + strlen(p), 40, "/%s", name);
                write_file(p, "new", 0644);
                if (host_ino(p) == ino)
                        found = i;
        }
        ck_assert_msg(found >= 0, "the inode number was not reused");
        snprintf(name, sizeof(name), "new%d", found);
        fresh = lk(dir, name);
        ck_assert_ptr_ne(fresh, old);
        ck_assert_int_eq(ops->getattr(fresh, &st), 0);
        ck_assert_int_eq(st.st_ino, ino);
        ck_assert_int_eq(read_node(fresh, buf, sizeof(buf)), 3);
        ck_assert_int_eq(ops->getattr(old, &st), -ESTALE);
        ls_node_unref(fresh);
        ls_node_unref(old);
        for (int i = 0; i < 8; i++)
                ls_node_unref(pad[i]);

held:
        /* 2. Removed through us while held: the handle keeps its object (the
         * number cannot come back while we hold it), new files get new
         * handles. */
        at(p, root, "dir/held");
        write_file(p, "held data", 0644);
        ino = host_ino(p);
        old = lk(dir, "held");
        ck_assert_int_eq(ops->unlink(dir, "held"), 0);
        for (int i = 0; i < 200; i++) {
                snprintf(name, sizeof(name), "more%d", i);
                at(p, root, "dir");
                snprintf(p + strlen(p), 40, "/%s", name);
                write_file(p, "more", 0644);
                ck_assert_uint_ne(host_ino(p), ino);
                fresh = lk(dir, name);
                ck_assert_ptr_ne(fresh, old);
                ls_node_unref(fresh);
        }
        ck_assert_int_eq(ops->getattr(old, &st), 0);
        ck_assert_int_eq(st.st_nlink, 0);
        ck_assert_int_eq(st.st_ino, ino);
        ck_assert_int_eq(read_node(old, buf, sizeof(buf)), 9);
        ck_assert_str_eq(buf, "held data");
        ls_node_unref(old);
        ls_node_unref(dir);
}
END_TEST

enum { N_BUDGET_FILES = 2000 };

static LsNode *budget_nodes[N_BUDGET_FILES];

static void make_files(const char *sub, int n)
{
        char p[PATH_MAX], text[32];

        at(p, root, sub);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        for (int i = 0; i < n; i++) {
                at(p, root, sub);
                snprintf(p + strlen(p), 32, "/f%d", i);
                snprintf(text, sizeof(text), "content %d", i);
                write_file(p, text, 0644);
        }
}

static void check_node(LsNode *n, int i)
{
        char buf[32], want[32];
        struct stat st;

        snprintf(want, sizeof(want), "content %d", i);
        ck_assert_int_eq(ops->getattr(n, &st), 0);
        ck_assert_int_eq(st.st_size, (off_t)strlen(want));
        ck_assert_int_eq(read_node(n, buf, sizeof(buf)), (ssize_t)strlen(want));
        ck_assert_str_eq(buf, want);
}

/* A budget of 16 fds, 2000 handles held and used: all correct, and the
 * process holds about 16 fds for them. */
START_TEST(test_fd_budget)
{
        LsNode *big;
        char name[32];
        int fds0 = count_fds();

        make_files("big", N_BUDGET_FILES);
        local_set_fd_budget(inst, 16);
        big = walk("big");
        for (int i = 0; i < N_BUDGET_FILES; i++) {
                snprintf(name, sizeof(name), "f%d", i);
                budget_nodes[i] = lk(big, name);
        }
        if (can_reopen())
                ck_assert_int_le(count_fds(), fds0 + 16 + 4);
        else /* never evicted */
                ck_assert_int_ge(count_fds(), fds0 + N_BUDGET_FILES);
        for (int round = 0; round < 2; round++)
                for (int i = 0; i < N_BUDGET_FILES; i++)
                        check_node(budget_nodes[i], i);
        for (int i = 0; i < N_BUDGET_FILES; i += 7) {
                LsNode *again;

                snprintf(name, sizeof(name), "f%d", i);
                again = lk(big, name);
                ck_assert_ptr_eq(again, budget_nodes[i]);
                ls_node_unref(again);
        }
        if (can_reopen())
                ck_assert_int_le(count_fds(), fds0 + 16 + 4);
        for (int i = 0; i < N_BUDGET_FILES; i++)
                ls_node_unref(budget_nodes[i]);
        ls_node_unref(big);
}
END_TEST

typedef struct Worker {
        LsNode *dir;
        int seed;
        int errors;
} Worker;

static void *worker(void *arg)
{
        Worker *w = arg;
        unsigned s = w->seed;

        for (int k = 0; k < 3000; k++) {
                char name[32], buf[32], want[32];
                int i = rand_r(&s) % 200;
                LsNode *n;
                LsFile *f;
                ssize_t len;

                snprintf(name, sizeof(name), "f%d", i);
                snprintf(want, sizeof(want), "content %d", i);
                if (w->dir->inst->ops->lookup(w->dir, name, &n, NULL) != 0) {
                        w->errors++;
                        continue;
                }
                if (n->inst->ops->open(n, O_RDONLY, &f) == 0) {
                        len = n->inst->ops->pread(f, buf, sizeof(buf) - 1, 0);
                        n->inst->ops->release(f);
                        if (len < 0 || (buf[len] = '\0', strcmp(buf, want) != 0))
                                w->errors++;
                } else {
                        w->errors++;
                }
                ls_node_unref(n);
        }
        return NULL;
}

/* Lookups, opens and drops from several threads under a tiny budget. */
/* Creates, writes, renames, unlinks and looks up churning names, holding a
 * handle across its unlink each time: that handle must keep its data. */
static void *churner(void *arg)
{
        Worker *w = arg;
        const LsOps *o = w->dir->inst->ops;
        LsCred cred = {0, 0};

        for (int k = 0; k < 400; k++) {
                char a[32], b[32], buf[32];
                LsNode *n, *m;
                LsFile *f;
                ssize_t len;

                snprintf(a, sizeof(a), "c%d-%d", w->seed, k % 7);
                snprintf(b, sizeof(b), "d%d-%d", w->seed, k % 7);
                if (o->create(w->dir, a, O_RDWR | O_EXCL, 0644, &cred, &n, NULL, &f) != 0) {
                        w->errors++;
                        continue;
                }
                if (o->pwrite(f, a, strlen(a), 0, 0) != (ssize_t)strlen(a))
                        w->errors++;
                o->release(f);
                if (o->rename(w->dir, a, w->dir, b, 0) != 0)
                        w->errors++;
                if (o->lookup(w->dir, b, &m, NULL) != 0 || m != n)
                        w->errors++;
                else
                        ls_node_unref(m);
                if (o->unlink(w->dir, b) != 0)
                        w->errors++;
                if (o->open(n, O_RDONLY, &f) != 0) {
                        w->errors++;
                } else {
                        len = o->pread(f, buf, sizeof(buf) - 1, 0);
                        o->release(f);
                        if (len < 0 || (buf[len] = '\0', strcmp(buf, a) != 0))
                                w->errors++;
                }
                ls_node_unref(n);
        }
        return NULL;
}

/* Lookups, opens and drops from several threads while others churn names,
 * all under a tiny fd budget. */
START_TEST(test_threads)
{
        pthread_t th[6];
        Worker w[6];
        LsNode *dir;

        make_files("mt", 200);
        local_set_fd_budget(inst, 8);
        dir = walk("mt");
        for (int i = 0; i < 6; i++) {
                w[i] = (Worker){.dir = dir, .seed = i + 1};
                ck_assert_int_eq(pthread_create(&th[i], NULL, i < 4 ? worker : churner, &w[i]), 0);
        }
        for (int i = 0; i < 6; i++) {
                ck_assert_int_eq(pthread_join(th[i], NULL), 0);
                ck_assert_int_eq(w[i].errors, 0);
        }
        ls_node_unref(dir);
}
END_TEST

static double now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Measures lookup+getattr and getattr on held handles with fds kept against
 * a budget of 16 (reopen by handle); prints the numbers. */
START_TEST(test_fd_budget_cost)
{
        const int n = N_BUDGET_FILES, rounds = 3;
        double t0, kept_get, evict_get, kept_lk, evict_lk, miss_lk;
        LsNode *big;
        char name[32];
        struct stat st;

        make_files("big", n);
        big = walk("big");
        for (int i = 0; i < n; i++) {
                snprintf(name, sizeof(name), "f%d", i);
                budget_nodes[i] = lk(big, name);
        }
        t0 = now_us();
        for (int r = 0; r < rounds; r++)
                for (int i = 0; i < n; i++)
                        ck_assert_int_eq(ops->getattr(budget_nodes[i], &st), 0);
        kept_get = (now_us() - t0) / (rounds * n);
        t0 = now_us();
        for (int r = 0; r < rounds; r++)
                for (int i = 0; i < n; i++) {
                        LsNode *x;

                        snprintf(name, sizeof(name), "f%d", i);
                        ck_assert_int_eq(ops->lookup(big, name, &x, &st), 0);
                        ck_assert_int_eq(ops->getattr(x, &st), 0);
                        ls_node_unref(x);
                }
        kept_lk = (now_us() - t0) / (rounds * n);
        local_set_fd_budget(inst, 16);
        t0 = now_us();
        for (int r = 0; r < rounds; r++)
                for (int i = 0; i < n; i++)
                        ck_assert_int_eq(ops->getattr(budget_nodes[i], &st), 0);
        evict_get = (now_us() - t0) / (rounds * n);
        t0 = now_us();
        for (int r = 0; r < rounds; r++)
                for (int i = 0; i < n; i++) {
                        LsNode *x;

                        snprintf(name, sizeof(name), "f%d", i);
                        ck_assert_int_eq(ops->lookup(big, name, &x, &st), 0);
                        ck_assert_int_eq(ops->getattr(x, &st), 0);
                        ls_node_unref(x);
                }
        evict_lk = (now_us() - t0) / (rounds * n);
        for (int i = 0; i < n; i++)
                ls_node_unref(budget_nodes[i]);
        t0 = now_us();
        for (int r = 0; r < rounds; r++)
                for (int i = 0; i < n; i++) {
                        LsNode *x;

                        snprintf(name, sizeof(name), "f%d", i);
                        ck_assert_int_eq(ops->lookup(big, name, &x, &st), 0);
                        ck_assert_int_eq(ops->getattr(x, &st), 0);
                        ls_node_unref(x);
                }
        miss_lk = (now_us() - t0) / (rounds * n);
        printf("local fd budget cost (%d held handles): getattr %.2f us kept, %.2f us "
               "reopened by handle; lookup+getattr %.2f us kept, %.2f us at budget 16, "
               "%.2f us of an unheld name\n",
               n, kept_get, evict_get, kept_lk, evict_lk, miss_lk);
        ls_node_unref(big);
}
END_TEST

/* Deep trees: far beyond PATH_MAX in total, every operation at the bottom. */
START_TEST(test_deep_tree)
{
        LsCred cred = {.uid = 1234, .gid = 1234};
        LsNode *cur = ls_node_ref(rootn), *next, *a, *sub, *sym;
        char name[201], buf[64];
        LsSetattr sa = {0};
        struct stat st;
        LsFile *f;

        memset(name, 'd', 200);
        name[200] = '\0';
        for (int i = 0; i < 40; i++) {
                name[0] = 'a' + i % 26;
                ck_assert_int_eq(ops->mkdir(cur, name, 0755, &cred, &next, NULL), 0);
                ls_node_unref(cur);
                cur = next;
        }
        ck_assert_int_eq(ops->mkdir(cur, "sub", 0700, &cred, &sub, NULL), 0);
        ck_assert_int_eq(ops->create(cur, "a", O_RDWR | O_EXCL, 0644, &cred, &a, NULL, &f), 0);
        ck_assert_int_eq(ops->pwrite(f, "deep", 4, 0, 0), 4);
        ck_assert_int_eq(ops->release(f), 0);
        ck_assert_int_eq(ops->link(a, sub, "b", &st), 0);
        ck_assert_int_eq(st.st_nlink, 2);
        ck_assert_int_eq(ops->rename(sub, "b", cur, "c", 0), 0);
        ck_assert_int_eq(ops->symlink(cur, "s", "a", &cred, &sym, NULL), 0);
        ck_assert_int_eq(ops->readlink(sym, buf, sizeof(buf)), 1);
        sa.valid = LS_SET_MODE | LS_SET_UID | LS_SET_GID | LS_SET_SIZE;
        sa.mode = 0600;
        sa.uid = geteuid() == 0 ? 42 : geteuid();
        sa.gid = geteuid() == 0 ? 43 : getegid();
        sa.size = 2;
        ck_assert_int_eq(ops->setattr(a, &sa, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(st.st_uid, sa.uid);
        ck_assert_int_eq(st.st_gid, sa.gid);
        ck_assert_int_eq(st.st_size, 2);
        ck_assert_int_eq(read_node(a, buf, sizeof(buf)), 2);
        ck_assert_str_eq(buf, "de");
        ck_assert_int_eq(ops->setxattr(a, "user.deep", "1", 1, 0), 0);
        ck_assert_int_eq(ops->unlink(cur, "c"), 0);
        ck_assert_int_eq(ops->unlink(cur, "s"), 0);
        ck_assert_int_eq(ops->unlink(cur, "a"), 0);
        ck_assert_int_eq(ops->rmdir(cur, "sub"), 0);
        ck_assert_int_eq(ops->getattr(a, &st), 0);
        ck_assert_int_eq(st.st_nlink, 0);
        ls_node_unref(sym);
        ls_node_unref(sub);
        ls_node_unref(a);
        ls_node_unref(cur);
}
END_TEST

/* O_DIRECT on a filesystem that refuses it (tmpfs): the open fails as the
 * kernel's would, the new file has its final owner and mode all the same. */
START_TEST(test_direct_refused)
{
        LsCred cred = {.uid = 1234, .gid = 1234};
        char p[PATH_MAX];
        struct stat st;
        LsNode *n;
        LsFile *f;
        int r;

        r = ops->create(rootn, "d", O_RDWR | O_DIRECT | O_EXCL, 0640, &cred, &n, NULL, &f);
        if (r == 0) { /* a tmpfs that takes O_DIRECT (Linux 6.6+) */
                ck_assert(f->flags & O_DIRECT);
                ck_assert_int_eq(ops->release(f), 0);
                ls_node_unref(n);
        } else {
                ck_assert_int_eq(r, -EINVAL);
        }
        at(p, root, "d");
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0640);
        if (geteuid() == 0)
                ck_assert_int_eq(st.st_uid, 1234);
}
END_TEST

/* All xattrs are listed however many (up to the kernel's 64 KiB list). */
START_TEST(test_many_xattrs)
{
        LsCred cred = {0, 0};
        LsNode *n;
        LsFile *f;
        char xname[64], *list;
        ssize_t size, want = 0;
        int count = 0, listed = 0;

        if (geteuid() != 0)
                return; /* trusted.* */
        ck_assert_int_eq(ops->create(rootn, "x", O_WRONLY, 0644, &cred, &n, NULL, &f), 0);
        ck_assert_int_eq(ops->release(f), 0);
        for (int i = 0; i < 1600; i++) {
                int len = snprintf(xname, sizeof(xname), "trusted.danaus.test.xattr.%06d", i);

                if (want + len + 1 > 65536 || ops->setxattr(n, xname, "v", 1, XATTR_CREATE) != 0)
                        break;
                want += len + 1;
                count++;
        }
        ck_assert_int_gt(want, 16384);
        size = ops->listxattr(n, NULL, 0);
        ck_assert_int_ge(size, want);
        list = malloc(size);
        ck_assert_ptr_nonnull(list);
        ck_assert_int_eq(ops->listxattr(n, list, size), size);
        ck_assert_int_eq(ops->listxattr(n, list, size - 1), -ERANGE);
        for (char *p = list; p < list + size; p += strlen(p) + 1)
                if (strncmp(p, "trusted.danaus.test.xattr.", 26) == 0)
                        listed++;
        ck_assert_int_eq(listed, count);
        free(list);
        ls_node_unref(n);
}
END_TEST

static void mount_tmpfs(const char *name)
{
        char p[PATH_MAX];

        at(p, root, name);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        ck_assert_int_eq(mount("tmpfs", p, "tmpfs", 0, "size=4m"), 0);
        snprintf(mounted[n_mounted++], PATH_MAX, "%s", p);
}

/* Two filesystems mounted below the root: identity includes st_dev, reopen
 * uses each filesystem's own mount fd. */
START_TEST(test_mounts_below_root)
{
        LsInstance *i2;
        LsNode *r, *m[2], *f[2][50], *x;
        char p[PATH_MAX + 32], name[32], buf[32], want[32];
        Listing li = {0};
        struct stat st[2];
        int same_ino = 0;

        if (geteuid() != 0)
                return;
        mount_tmpfs("m1");
        mount_tmpfs("m2");
        for (int k = 0; k < 2; k++)
                for (int i = 0; i < 50; i++) {
                        snprintf(p, sizeof(p), "%s/m%d/f%d", root, k + 1, i);
                        snprintf(want, sizeof(want), "m%d f%d", k + 1, i);
                        write_file(p, want, 0644);
                }
        /* a fresh instance: it learns of the mounts as it meets them */
        ck_assert_int_eq(local_new(root, false, &i2), 0);
        ck_assert_int_eq(i2->ops->root(i2, &r), 0);
        local_set_fd_budget(i2, 4);
        for (int k = 0; k < 2; k++) {
                snprintf(name, sizeof(name), "m%d", k + 1);
                ck_assert_int_eq(i2->ops->lookup(r, name, &m[k], NULL), 0);
                for (int i = 0; i < 50; i++) {
                        snprintf(name, sizeof(name), "f%d", i);
                        ck_assert_int_eq(i2->ops->lookup(m[k], name, &f[k][i], NULL), 0);
                }
        }
        for (int round = 0; round < 2; round++)
                for (int i = 0; i < 50; i++)
                        for (int k = 0; k < 2; k++) {
                                LsFile *fl;
                                ssize_t len;

                                ck_assert_int_eq(i2->ops->getattr(f[k][i], &st[k]), 0);
                                ck_assert_int_eq(i2->ops->open(f[k][i], O_RDONLY, &fl), 0);
                                len = i2->ops->pread(fl, buf, sizeof(buf) - 1, 0);
                                ck_assert_int_gt(len, 0);
                                buf[len] = '\0';
                                ck_assert_int_eq(i2->ops->release(fl), 0);
                                snprintf(want, sizeof(want), "m%d f%d", k + 1, i);
                                ck_assert_str_eq(buf, want);
                                if (k == 1) {
                                        ck_assert_ptr_ne(f[0][i], f[1][i]);
                                        ck_assert(st[0].st_dev != st[1].st_dev);
                                        same_ino += st[0].st_ino == st[1].st_ino;
                                }
                        }
        printf("local mounts: %d of 50 file pairs share an inode number\n", same_ino / 2);
        /* readdir reports the mounted roots' numbers */
        ck_assert_int_eq(i2->ops->readdir(r, list_entry, &li), 0);
        for (int i = 0; i < li.n; i++)
                for (int k = 0; k < 2; k++) {
                        snprintf(name, sizeof(name), "m%d", k + 1);
                        if (strcmp(li.names[i], name) == 0) {
                                ck_assert_int_eq(i2->ops->getattr(m[k], &st[0]), 0);
                                ck_assert_int_eq(li.inos[i], st[0].st_ino);
                        }
                }
        /* rename across filesystems: EXDEV, as the kernel says */
        ck_assert_int_eq(i2->ops->rename(m[0], "f0", m[1], "g", 0), -EXDEV);
        ck_assert_int_eq(i2->ops->lookup(m[1], "f0", &x, NULL), 0);
        ck_assert_ptr_eq(x, f[1][0]);
        ls_node_unref(x);
        for (int k = 0; k < 2; k++) {
                for (int i = 0; i < 50; i++)
                        ls_node_unref(f[k][i]);
                ls_node_unref(m[k]);
        }
        ls_node_unref(r);
        ls_instance_unref(i2);
}
END_TEST

/* Two procfs instances below the root: no file handles, equal inode numbers
 * on both, so only st_dev tells their files apart. Their magic links stay
 * symlink nodes that lead nowhere. */
START_TEST(test_mounts_without_handles)
{
        LsInstance *i2;
        LsNode *r, *m[2], *v[2], *again, *self, *pid, *magic, *x;
        struct stat st[2];
        char p[PATH_MAX], buf[32];
        LsFile *f;

        if (geteuid() != 0)
                return;
        for (int k = 0; k < 2; k++) {
                snprintf(buf, sizeof(buf), "p%d", k + 1);
                at(p, root, buf);
                ck_assert_int_eq(mkdir(p, 0755), 0);
                ck_assert_int_eq(mount("proc", p, "proc", 0, NULL), 0);
                snprintf(mounted[n_mounted++], PATH_MAX, "%s", p);
        }
        ck_assert_int_eq(local_new(root, false, &i2), 0);
        ck_assert_int_eq(i2->ops->root(i2, &r), 0);
        local_set_fd_budget(i2, 1);
        for (int k = 0; k < 2; k++) {
                snprintf(buf, sizeof(buf), "p%d", k + 1);
                ck_assert_int_eq(i2->ops->lookup(r, buf, &m[k], NULL), 0);
                ck_assert_int_eq(i2->ops->lookup(m[k], "version", &v[k], &st[k]), 0);
        }
        ck_assert(st[0].st_dev != st[1].st_dev);
        ck_assert_int_eq(st[0].st_ino, st[1].st_ino);
        ck_assert_ptr_ne(v[0], v[1]);
        for (int k = 0; k < 2; k++) {
                ck_assert_int_eq(i2->ops->lookup(m[k], "version", &again, NULL), 0);
                ck_assert_ptr_eq(again, v[k]);
                ls_node_unref(again);
                ck_assert_int_eq(i2->ops->open(v[k], O_RDONLY, &f), 0);
                ck_assert_int_eq(i2->ops->pread(f, buf, 5, 0), 5);
                ck_assert(memcmp(buf, "Linux", 5) == 0);
                ck_assert_int_eq(i2->ops->release(f), 0);
        }
        /* p1/self -> <pid>, p1/<pid>/root: a magic link to "/" */
        ck_assert_int_eq(i2->ops->lookup(m[0], "self", &self, &st[0]), 0);
        ck_assert(S_ISLNK(st[0].st_mode));
        ck_assert_int_eq(i2->ops->open(self, O_RDONLY, &f), -ELOOP);
        ck_assert_int_eq(i2->ops->lookup(self, "root", &x, NULL), -ENOTDIR);
        snprintf(buf, sizeof(buf), "%d", (int)getpid());
        ck_assert_int_eq(i2->ops->lookup(m[0], buf, &pid, NULL), 0);
        ck_assert_int_eq(i2->ops->lookup(pid, "root", &magic, &st[0]), 0);
        ck_assert(S_ISLNK(st[0].st_mode));
        ck_assert_int_eq(i2->ops->open(magic, O_RDONLY, &f), -ELOOP);
        ck_assert_int_eq(i2->ops->lookup(magic, "etc", &x, NULL), -ENOTDIR);
        ck_assert_int_eq(i2->ops->readdir(magic, list_entry, NULL), -ENOTDIR);
        ls_node_unref(magic);
        ls_node_unref(pid);
        ls_node_unref(self);
        for (int k = 0; k < 2; k++) {
                ls_node_unref(v[k]);
                ls_node_unref(m[k]);
        }
        ls_node_unref(r);
        ls_instance_unref(i2);
        assert_outside_intact();
}
END_TEST

/* A read-only mount below the root: writes fail with EROFS from the kernel,
 * LS_O_NOCOPYUP falls back to read-only. */
START_TEST(test_read_only_submount)
{
        char p[PATH_MAX], ro[PATH_MAX];
        LsNode *rod, *file, *n;
        LsCred cred = {0, 0};
        LsFile *f;

        if (geteuid() != 0)
                return;
        at(p, root, "dir/f");
        write_file(p, "data", 0644);
        at(p, root, "dir");
        at(ro, root, "ro");
        ck_assert_int_eq(mkdir(ro, 0755), 0);
        ck_assert_int_eq(mount(p, ro, NULL, MS_BIND, NULL), 0);
        snprintf(mounted[n_mounted++], PATH_MAX, "%s", ro);
        ck_assert_int_eq(mount(NULL, ro, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL), 0);
        rod = walk("ro");
        file = lk(rod, "f");
        ck_assert_int_eq(ops->open(file, O_RDWR, &f), -EROFS);
        ck_assert_int_eq(ops->open(file, LS_O_NOCOPYUP, &f), 0);
        ck_assert_int_eq(f->flags & O_ACCMODE, O_RDONLY);
        ck_assert_int_eq(ops->release(f), 0);
        ck_assert_int_eq(ops->open(rod, LS_O_NOCOPYUP, &f), 0);
        ck_assert_int_eq(f->flags & O_ACCMODE, O_RDONLY);
        ck_assert_int_eq(ops->release(f), 0);
        ck_assert_int_eq(ops->mkdir(rod, "x", 0755, &cred, &n, NULL), -EROFS);
        ck_assert_int_eq(ops->create(rod, "y", O_WRONLY, 0644, &cred, &n, NULL, &f), -EROFS);
        ls_node_unref(file);
        ls_node_unref(rod);
}
END_TEST

/* A filesystem without file handles (procfs): keyed by inode, fds kept. */
START_TEST(test_no_file_handles)
{
        LsInstance *p;
        LsNode *r, *a, *b, *n[40];
        char buf[64] = "";
        LsFile *f;
        ssize_t len;

        ck_assert_int_eq(local_new("/proc/sys/kernel", true, &p), 0);
        ck_assert_int_eq(p->ops->root(p, &r), 0);
        local_set_fd_budget(p, 1);
        ck_assert_int_eq(p->ops->lookup(r, "ostype", &a, NULL), 0);
        for (int i = 0; i < 40; i++)
                ck_assert_int_eq(p->ops->lookup(r, i % 2 ? "hostname" : "osrelease", &n[i], NULL),
                                 0);
        ck_assert_ptr_eq(n[0], n[2]);
        ck_assert_ptr_ne(n[0], n[1]);
        ck_assert_int_eq(p->ops->lookup(r, "ostype", &b, NULL), 0);
        ck_assert_ptr_eq(a, b);
        ck_assert_int_eq(p->ops->open(a, O_RDONLY, &f), 0);
        len = p->ops->pread(f, buf, sizeof(buf) - 1, 0);
        ck_assert_int_eq(len, 6);
        ck_assert(memcmp(buf, "Linux\n", 6) == 0);
        ck_assert_int_eq(p->ops->release(f), 0);
        for (int i = 0; i < 40; i++)
                ls_node_unref(n[i]);
        ls_node_unref(a);
        ls_node_unref(b);
        ls_node_unref(r);
        ls_instance_unref(p);
}
END_TEST

START_TEST(test_walk)
{
        LsNode *n, *d = walk("dir");

        ck_assert_int_eq(ls_walk(rootn, "dir", &n), 0);
        ck_assert_ptr_eq(n, d);
        ls_node_unref(n);
        ck_assert_int_eq(ls_walk(rootn, "./dir//", &n), 0);
        ck_assert_ptr_eq(n, d);
        ls_node_unref(n);
        ck_assert_int_eq(ls_walk(rootn, "", &n), 0);
        ck_assert_ptr_eq(n, rootn);
        ls_node_unref(n);
        ck_assert_int_eq(ls_walk(rootn, "dir/none", &n), -ENOENT);
        ck_assert_int_eq(ls_walk(rootn, "file/x", &n), -ENOTDIR);
        ls_node_unref(d);
        ck_assert(ls_path_valid(""));
        ck_assert(ls_path_valid("a/b.c/..d"));
        ck_assert(!ls_path_valid("/a"));
        ck_assert(!ls_path_valid("a/"));
        ck_assert(!ls_path_valid("a/./b"));
        ck_assert(!ls_path_valid(".."));
}
END_TEST

static Suite *local_suite(void)
{
        Suite *s = suite_create("local");
        struct {
                const char *name;
                const TTest *test;
                void (*setup)(void);
                int timeout;
        } cases[] = {
            {"open-escapes", test_open_escapes_refused, setup, 0},
            {"bad-names", test_bad_names_refused, setup, 0},
            {"namespace-escapes", test_namespace_ops_through_symlinks_refused, setup, 0},
            {"swapped-dir", test_swapped_dir_stays_inside, setup, 0},
            {"readdir", test_readdir, setup, 0},
            {"unique-handles", test_unique_handles, setup, 0},
            {"file-ops", test_file_ops, setup, 0},
            {"open-flags", test_open_flags, setup, 0},
            {"owner-mode-exact", test_owner_mode_exact, setup, 0},
            {"read-only", test_read_only, setup, 0},
            {"instance-refs", test_instance_refs, setup, 0},
            {"nameless-handle", test_nameless_handle, setup, 0},
            {"generation", test_generation, setup, 60},
            {"fd-budget", test_fd_budget, setup, 60},
            {"threads", test_threads, setup, 60},
            {"fd-budget-cost", test_fd_budget_cost, setup, 60},
            {"deep-tree", test_deep_tree, setup, 0},
            {"many-xattrs", test_many_xattrs, setup_shm, 0},
            {"direct-refused", test_direct_refused, setup_shm, 0},
            {"mounts-below-root", test_mounts_below_root, setup, 0},
            {"mounts-without-handles", test_mounts_without_handles, setup, 0},
            {"read-only-submount", test_read_only_submount, setup, 0},
            {"no-file-handles", test_no_file_handles, setup, 0},
            {"walk", test_walk, setup, 0},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                TCase *tc = tcase_create(cases[i].name);

                tcase_add_checked_fixture(tc, cases[i].setup, teardown);
                if (cases[i].timeout)
                        tcase_set_timeout(tc, cases[i].timeout);
                tcase_add_test(tc, cases[i].test);
                suite_add_tcase(s, tc);
        }
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(local_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
