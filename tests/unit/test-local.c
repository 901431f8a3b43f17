/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests: the local libservice, above all its confinement. Each case
 * builds a hostile tree: a root directory beside an "outside" directory
 * holding a secret, and symlinks of every kind pointing out of the root.
 * Whatever is asked through the libservice, the outside must stay unread
 * and unchanged.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "libservice/local.h"

static char base[PATH_MAX], root[PATH_MAX], outside[PATH_MAX];
static LsInstance *inst;

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

/* root/: file, dir/, inlink -> file, abs -> OUTSIDE, rel -> ../outside,
 * chain1 -> chain2 -> dir/../../outside/secret, magic -> /proc/self/root,
 * dangling -> ../outside/created, secretlink -> ../outside/secret */
static void setup(void)
{
        char p[PATH_MAX];

        snprintf(base, sizeof(base), "/tmp/danaus-unit-local.XXXXXX");
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
}

static void teardown(void)
{
        char cmd[PATH_MAX + 32];

        ls_instance_free(inst);
        /* base always comes from mkdtemp() under /tmp: never empty. */
        ck_assert(strncmp(base, "/tmp/danaus-unit-local.", 23) == 0);
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
}

static const char *const escapes[] = {
    "abs/secret", "rel/secret", "chain1", "magic/etc/passwd",
    "secretlink", "abs",        "rel",    "dangling",
};

START_TEST(test_open_escapes_refused)
{
        LsFile *f;

        for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
                int r = inst->ops->open(inst, escapes[i], O_RDONLY, 0, NULL, &f);

                ck_assert_msg(r < 0, "open(%s) escaped the root", escapes[i]);
                r = inst->ops->open(inst, escapes[i], O_WRONLY | O_CREAT, 0644, NULL, &f);
                ck_assert_msg(r < 0, "open(%s, O_CREAT) escaped the root", escapes[i]);
        }
        assert_outside_intact();
}
END_TEST

START_TEST(test_dotdot_and_absolute_refused)
{
        struct stat st;
        LsFile *f;

        ck_assert_int_eq(inst->ops->getattr(inst, "../outside/secret", &st), -EINVAL);
        ck_assert_int_eq(inst->ops->getattr(inst, "dir/../file", &st), -EINVAL);
        ck_assert_int_eq(inst->ops->getattr(inst, "/etc/passwd", &st), -EINVAL);
        ck_assert_int_eq(inst->ops->getattr(inst, "dir//x", &st), -EINVAL);
        ck_assert_int_eq(inst->ops->open(inst, "../outside/secret", O_RDONLY, 0, NULL, &f),
                         -EINVAL);
        ck_assert_int_eq(inst->ops->mkdir(inst, "../outside/newdir", 0755, NULL), -EINVAL);
}
END_TEST

START_TEST(test_namespace_ops_through_symlinks_refused)
{
        struct timespec ts[2] = {{.tv_sec = 1}, {.tv_sec = 1}};
        char buf[64];

        ck_assert_int_lt(inst->ops->mkdir(inst, "abs/newdir", 0755, NULL), 0);
        ck_assert_int_lt(inst->ops->mkdir(inst, "rel/newdir", 0755, NULL), 0);
        ck_assert_int_lt(inst->ops->unlink(inst, "abs/secret"), 0);
        ck_assert_int_lt(inst->ops->rename(inst, "file", "rel/created", 0), 0);
        ck_assert_int_lt(inst->ops->rename(inst, "abs/secret", "stolen", 0), 0);
        ck_assert_int_lt(inst->ops->link(inst, "rel/secret", "stolen"), 0);
        ck_assert_int_lt(inst->ops->symlink(inst, "x", "abs/created", NULL), 0);
        ck_assert_int_lt(inst->ops->readlink(inst, "abs/secret", buf, sizeof(buf)), 0);
        ck_assert_int_lt(inst->ops->truncate(inst, "secretlink", 0), 0);
        ck_assert_int_lt(inst->ops->truncate(inst, "rel/secret", 0), 0);
        ck_assert_int_lt(inst->ops->utimens(inst, "abs/secret", ts), 0);
        ck_assert_int_lt(inst->ops->chown(inst, "rel/secret", 1234, 1234), 0);
        ck_assert_int_lt(inst->ops->chmod(inst, "abs/secret", 0666), 0);
        ck_assert_int_lt(inst->ops->setxattr(inst, "rel/secret", "user.x", "1", 1, 0), 0);
        ck_assert_int_lt(inst->ops->getxattr(inst, "abs/secret", "user.x", buf, sizeof(buf)), 0);
        /* On the symlink itself the ops act on the link, never on its target. */
        inst->ops->chmod(inst, "secretlink", 0666);
        inst->ops->chown(inst, "secretlink", 1234, 1234);
        inst->ops->utimens(inst, "secretlink", ts);
        inst->ops->setxattr(inst, "secretlink", "user.x", "1", 1, 0);
        assert_outside_intact();
}
END_TEST

static int count_entry(void *ctx, const char *name, ino_t ino, unsigned char type)
{
        (*(int *)ctx)++;
        return 0;
}

START_TEST(test_readdir_escapes_refused)
{
        int n = 0;

        ck_assert_int_lt(inst->ops->readdir(inst, "abs", count_entry, &n), 0);
        ck_assert_int_lt(inst->ops->readdir(inst, "rel", count_entry, &n), 0);
        ck_assert_int_lt(inst->ops->readdir(inst, "magic", count_entry, &n), 0);
        ck_assert_int_eq(n, 0);
        ck_assert_int_eq(inst->ops->readdir(inst, "", count_entry, &n), 0);
        ck_assert_int_eq(n,
                         10); /* file dir inlink abs rel chain1 chain2 magic dangling secretlink */
}
END_TEST

START_TEST(test_inside_symlink_followed_by_open)
{
        char buf[16] = "";
        struct stat st;
        LsFile *f;

        ck_assert_int_eq(inst->ops->getattr(inst, "inlink", &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        ck_assert_int_eq(inst->ops->open(inst, "inlink", O_RDONLY, 0, NULL, &f), 0);
        ck_assert_int_eq(f->inst->ops->pread(f, buf, sizeof(buf) - 1, 0), 6);
        ck_assert_str_eq(buf, "inside");
        f->inst->ops->release(f);
        ck_assert_int_lt(inst->ops->open(inst, "inlink", O_RDONLY | O_NOFOLLOW, 0, NULL, &f), 0);
}
END_TEST

START_TEST(test_file_ops)
{
        LsCred cred = {.uid = 1234, .gid = 4321};
        char buf[32] = "", list[64];
        struct stat st;
        LsFile *f;

        ck_assert_int_eq(inst->ops->mkdir(inst, "dir/sub", 0750, &cred), 0);
        ck_assert_int_eq(
            inst->ops->open(inst, "dir/sub/new", O_RDWR | O_CREAT | O_EXCL, 0640, &cred, &f), 0);
        ck_assert_int_eq(f->inst->ops->pwrite(f, "hello", 5, 10), 5);
        ck_assert_int_eq(f->inst->ops->pread(f, buf, sizeof(buf), 10), 5);
        ck_assert_int_eq(f->inst->ops->fstat(f, &st), 0);
        ck_assert_int_eq(st.st_size, 15);
        ck_assert_int_eq(f->inst->ops->ftruncate(f, 3), 0);
        ck_assert_int_eq(f->inst->ops->release(f), 0);
        ck_assert_int_eq(inst->ops->getattr(inst, "dir/sub/new", &st), 0);
        ck_assert_int_eq(st.st_size, 3);
        ck_assert_int_eq(st.st_mode & 07777, 0640);
        if (geteuid() == 0) {
                ck_assert_int_eq(st.st_uid, 1234);
                ck_assert_int_eq(st.st_gid, 4321);
        }
        ck_assert_int_eq(
            inst->ops->open(inst, "dir/sub/new", O_RDWR | O_CREAT | O_EXCL, 0640, &cred, &f),
            -EEXIST);
        /* The kernel's create mode carries S_IFREG; open(2) ignores it. */
        ck_assert_int_eq(
            inst->ops->open(inst, "dir/sub/typed", O_WRONLY | O_CREAT, S_IFREG | 0644, &cred, &f),
            0);
        ck_assert_int_eq(f->inst->ops->release(f), 0);
        ck_assert_int_eq(inst->ops->setxattr(inst, "dir/sub/new", "user.k", "v", 1, 0), 0);
        ck_assert_int_eq(inst->ops->getxattr(inst, "dir/sub/new", "user.k", buf, sizeof(buf)), 1);
        ck_assert_int_eq(inst->ops->listxattr(inst, "dir/sub/new", list, sizeof(list)), 7);
        ck_assert_int_eq(inst->ops->removexattr(inst, "dir/sub/new", "user.k"), 0);
        /* the root too (its fd, not a /proc magic link) */
        ck_assert_int_eq(inst->ops->setxattr(inst, "", "user.r", "rv", 2, 0), 0);
        ck_assert_int_eq(inst->ops->getxattr(inst, "", "user.r", buf, sizeof(buf)), 2);
        ck_assert_int_ge(inst->ops->listxattr(inst, "", list, sizeof(list)), 7);
        ck_assert_int_eq(inst->ops->removexattr(inst, "", "user.r"), 0);
        ck_assert_int_eq(inst->ops->rename(inst, "dir/sub/new", "dir/moved", 0), 0);
        ck_assert_int_eq(inst->ops->link(inst, "dir/moved", "dir/hard"), 0);
        ck_assert_int_eq(inst->ops->getattr(inst, "dir/hard", &st), 0);
        ck_assert_int_eq(st.st_nlink, 2);
        ck_assert_int_eq(inst->ops->symlink(inst, "moved", "dir/sym", &cred), 0);
        ck_assert_int_eq(inst->ops->readlink(inst, "dir/sym", buf, sizeof(buf)), 5);
        ck_assert_int_eq(inst->ops->chmod(inst, "dir/moved", 0600), 0);
        ck_assert_int_eq(inst->ops->truncate(inst, "dir/moved", 100), 0);
        ck_assert_int_eq(inst->ops->getattr(inst, "dir/moved", &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(st.st_size, 100);
        ck_assert_int_eq(inst->ops->unlink(inst, "dir/sub/typed"), 0);
        ck_assert_int_eq(inst->ops->rmdir(inst, "dir/sub"), 0);
        ck_assert_int_eq(inst->ops->rmdir(inst, "dir"), -ENOTEMPTY);
        ck_assert_int_eq(inst->ops->unlink(inst, "dir/moved"), 0);
        ck_assert_int_eq(inst->ops->rename(inst, "dir/hard", "dir/sym", RENAME_NOREPLACE), -EEXIST);
}
END_TEST

START_TEST(test_setgid_dir_keeps_group)
{
        LsCred cred = {.uid = 1234, .gid = 4321};
        char p[PATH_MAX];
        struct stat st;

        if (geteuid() != 0)
                return;
        at(p, root, "dir");
        ck_assert_int_eq(chown(p, 0, 777), 0);
        ck_assert_int_eq(chmod(p, 02775), 0);
        ck_assert_int_eq(inst->ops->mkdir(inst, "dir/g", 0755, &cred), 0);
        ck_assert_int_eq(inst->ops->getattr(inst, "dir/g", &st), 0);
        ck_assert_int_eq(st.st_uid, 1234);
        ck_assert_int_eq(st.st_gid, 777);
}
END_TEST

START_TEST(test_read_only)
{
        LsInstance *ro;
        struct statvfs sv;
        LsFile *f;

        ck_assert_int_eq(local_new(root, true, &ro), 0);
        ck_assert_int_eq(ro->ops->mkdir(ro, "x", 0755, NULL), -EROFS);
        ck_assert_int_eq(ro->ops->unlink(ro, "file"), -EROFS);
        ck_assert_int_eq(ro->ops->open(ro, "file", O_WRONLY, 0, NULL, &f), -EROFS);
        ck_assert_int_eq(ro->ops->open(ro, "file", O_RDONLY | O_TRUNC, 0, NULL, &f), -EROFS);
        ck_assert_int_eq(ro->ops->open(ro, "file", O_RDONLY, 0, NULL, &f), 0);
        ck_assert_int_eq(f->inst->ops->release(f), 0);
        ck_assert_int_eq(ro->ops->statfs(ro, "", &sv), 0);
        ck_assert(sv.f_flag & ST_RDONLY);
        ls_instance_free(ro);
}
END_TEST

START_TEST(test_path_helpers)
{
        char buf[PATH_MAX];

        ck_assert(ls_path_valid(""));
        ck_assert(ls_path_valid("a/b.c/..d"));
        ck_assert(!ls_path_valid("/a"));
        ck_assert(!ls_path_valid("a/"));
        ck_assert(!ls_path_valid("a/./b"));
        ck_assert(!ls_path_valid(".."));
        ck_assert_int_eq(ls_path_join(buf, sizeof(buf), "", "x"), 1);
        ck_assert_str_eq(buf, "x");
        ck_assert_int_eq(ls_path_join(buf, sizeof(buf), "a/b", "x"), 5);
        ck_assert_str_eq(buf, "a/b/x");
        ck_assert_int_eq(ls_path_join(buf, 4, "a/b", "x"), -ENAMETOOLONG);
        ck_assert_str_eq(ls_path_split("a/b/c", buf, sizeof(buf)), "c");
        ck_assert_str_eq(buf, "a/b");
        ck_assert_str_eq(ls_path_split("c", buf, sizeof(buf)), "c");
        ck_assert_str_eq(buf, "");
        ck_assert_ptr_null(ls_path_split("", buf, sizeof(buf)));
}
END_TEST

static Suite *local_suite(void)
{
        Suite *s = suite_create("local");
        struct {
                const char *name;
                const TTest *test;
        } cases[] = {
            {"open-escapes", test_open_escapes_refused},
            {"dotdot-absolute", test_dotdot_and_absolute_refused},
            {"namespace-escapes", test_namespace_ops_through_symlinks_refused},
            {"readdir-escapes", test_readdir_escapes_refused},
            {"inside-symlink", test_inside_symlink_followed_by_open},
            {"file-ops", test_file_ops},
            {"setgid", test_setgid_dir_keeps_group},
            {"read-only", test_read_only},
            {"path-helpers", test_path_helpers},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                TCase *tc = tcase_create(cases[i].name);

                tcase_add_checked_fixture(tc, setup, teardown);
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
