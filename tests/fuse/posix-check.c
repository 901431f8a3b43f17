/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * posix-check: POSIX behaviour checks run against a mounted tree (a Danaus
 * FUSE mount, a kernel overlayfs or a plain directory), used by
 * tests/fuse/test-posix.sh and the other FUSE integration tests.
 *
 *   posix-check union MNT --upper DIR --lower DIR [--lower DIR] [--whiteout oci|overlay]
 *   posix-check plain MNT
 *        runs every check on MNT, prepared by test-posix.sh; with
 *        --upper/--lower (top lower first) it also inspects the branch
 *        directories (copy-up, whiteouts, lower branches never modified).
 *        Prints "ok - NAME" / "not ok - NAME" lines (reasons on stderr),
 *        exits 0 if all passed. The checks run in order and build on each
 *        other's leftovers, so --only NAME is for debugging only.
 *   posix-check try OP PATH [ARG]
 *        performs one call and prints OK or the errno name (EACCES, ...);
 *        OP: read write append create excl unlink rmdir mkdir chmod chown
 *            chgrp rename link truncate utime-now utime-set setxattr readdir.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static const char *mnt;
static const char *upper;     /* NULL: no branch checks */
static const char *lowers[8]; /* top first */
static int nlowers;
static bool wh_overlay; /* whiteouts as overlayfs char devices */
static int failures, warnings;
static const char *cur_test;
static int cur_failed;

#define FAILF(...) check_fail(__LINE__, __VA_ARGS__)
#define EXPECT(cond, ...)                                                                          \
        do {                                                                                       \
                if (!(cond))                                                                       \
                        FAILF(__VA_ARGS__);                                                        \
        } while (0)
/* a system call that must succeed; on failure the current check ends */
#define SYS(call)                                                                                  \
        do {                                                                                       \
                if ((call) < 0) {                                                                  \
                        FAILF("%s: %s", #call, strerror(errno));                                   \
                        return;                                                                    \
                }                                                                                  \
        } while (0)
/* a call that must fail with errno E */
#define EXPECT_ERR(call, E)                                                                        \
        do {                                                                                       \
                errno = 0;                                                                         \
                long r_ = (long)(call);                                                            \
                if (r_ >= 0)                                                                       \
                        FAILF("%s succeeded, expected %s", #call, #E);                             \
                else if (errno != (E))                                                             \
                        FAILF("%s: %s, expected %s", #call, strerror(errno), #E);                  \
        } while (0)

static void check_fail(int line, const char *fmt, ...)
{
        va_list ap;
        fprintf(stderr, "#   %s (posix-check.c:%d): ", cur_test, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        cur_failed = 1;
}

static void warn(const char *fmt, ...)
{
        va_list ap;
        printf("# WARN %s: ", cur_test);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        warnings++;
}

/* ---- helpers --------------------------------------------------------- */

static char pbuf[8][PATH_MAX];
static int pidx;

/* M("a/b") -> "<mnt>/a/b"; a ring of buffers so several fit in one call */
static const char *M(const char *rel)
{
        char *b = pbuf[pidx++ & 7];
        snprintf(b, PATH_MAX, "%s/%s", mnt, rel);
        return b;
}

static const char *B(const char *dir, const char *rel)
{
        char *b = pbuf[pidx++ & 7];
        snprintf(b, PATH_MAX, "%s/%s", dir, rel);
        return b;
}

static const char *U(const char *rel)
{
        return B(upper, rel);
}

static int write_file(const char *path, const char *data, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
        if (fd < 0)
                return -1;
        size_t n = strlen(data);
        ssize_t w = write(fd, data, n);
        int e = errno;
        close(fd);
        errno = e;
        return w == (ssize_t)n ? 0 : -1;
}

/* whole file into a static buffer; NULL on error */
static char *read_file(const char *path)
{
        static char buf[1 << 16];
        int fd = open(path, O_RDONLY);
        if (fd < 0)
                return NULL;
        size_t off = 0;
        for (;;) {
                ssize_t r = read(fd, buf + off, sizeof(buf) - 1 - off);
                if (r < 0) {
                        int e = errno;
                        close(fd);
                        errno = e;
                        return NULL;
                }
                if (r == 0)
                        break;
                off += (size_t)r;
        }
        close(fd);
        buf[off] = 0;
        return buf;
}

#define EXPECT_CONTENT(path, want)                                                                 \
        do {                                                                                       \
                const char *p_ = (path);                                                           \
                char *c_ = read_file(p_);                                                          \
                if (!c_)                                                                           \
                        FAILF("read %s: %s", p_, strerror(errno));                                 \
                else if (strcmp(c_, (want)))                                                       \
                        FAILF("%s holds \"%s\", expected \"%s\"", p_, c_, (want));                 \
        } while (0)

static bool exists(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0;
}

/* how many times directory DIR lists NAME; -1 on error */
static int dir_has(const char *dir, const char *name)
{
        DIR *d = opendir(dir);
        if (!d)
                return -1;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (!strcmp(de->d_name, name))
                        n++;
        closedir(d);
        return n;
}

/* the names of DIR (without . and ..), sorted, joined by ' ' */
static char *dir_list(const char *dir)
{
        static char out[4096];
        char *names[256];
        int n = 0;
        DIR *d = opendir(dir);
        if (!d)
                return NULL;
        struct dirent *de;
        while ((de = readdir(d)) && n < 256) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                names[n++] = strdup(de->d_name);
        }
        closedir(d);
        for (int i = 1; i < n; i++)
                for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
                        char *t = names[j];
                        names[j] = names[j - 1];
                        names[j - 1] = t;
                }
        out[0] = 0;
        for (int i = 0; i < n; i++) {
                if (i)
                        strncat(out, " ", sizeof(out) - strlen(out) - 1);
                strncat(out, names[i], sizeof(out) - strlen(out) - 1);
                free(names[i]);
        }
        return out;
}

#define EXPECT_LIST(dir, want)                                                                     \
        do {                                                                                       \
                const char *d_ = (dir);                                                            \
                char *l_ = dir_list(d_);                                                           \
                if (!l_)                                                                           \
                        FAILF("opendir %s: %s", d_, strerror(errno));                              \
                else if (strcmp(l_, (want)))                                                       \
                        FAILF("%s lists \"%s\", expected \"%s\"", d_, l_, (want));                 \
        } while (0)

/* a whiteout for REL (dir/name) in the upper branch */
static bool upper_whiteout(const char *rel)
{
        char p[PATH_MAX];
        struct stat st;
        if (wh_overlay) {
                snprintf(p, sizeof p, "%s/%s", upper, rel);
                return lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
        }
        const char *slash = strrchr(rel, '/');
        if (slash)
                snprintf(p, sizeof p, "%s/%.*s/.wh.%s", upper, (int)(slash - rel), rel, slash + 1);
        else
                snprintf(p, sizeof p, "%s/.wh.%s", upper, rel);
        return lstat(p, &st) == 0;
}

/* the bottom-most lower branch that holds REL; NULL when none */
static const char *lower_of(const char *rel)
{
        for (int i = nlowers - 1; i >= 0; i--)
                if (exists(B(lowers[i], rel)))
                        return lowers[i];
        return NULL;
}

/* ---- checks ---------------------------------------------------------- */

/* the prepared merged view: top wins, OCI whiteouts and opaque dirs honoured */
static void t_layers(void)
{
        EXPECT_CONTENT(M("lfile"), "lower file one\n");
        EXPECT_CONTENT(M("shadow"), "from ro1\n");
        EXPECT_CONTENT(M("l2file"), "lower two\n");
        EXPECT_CONTENT(M("ufile"), "upper\n");
        EXPECT_CONTENT(M("ldir/c"), "c\n");
        EXPECT_CONTENT(M("ldir/sub/b"), "b\n");
        EXPECT_ERR(open(M("hidden"), O_RDONLY), ENOENT);
        EXPECT(dir_has(mnt, "hidden") == 0, "whited-out 'hidden' listed");
        EXPECT(dir_has(mnt, "shadow") == 1, "'shadow' listed %d times", dir_has(mnt, "shadow"));
        EXPECT_LIST(M("opq"), "top");
        EXPECT_ERR(open(M("opq/below"), O_RDONLY), ENOENT);
        EXPECT_LIST(M("ldir"), "a c sub");
        struct stat st;
        SYS(stat(M("lexec"), &st));
        EXPECT((st.st_mode & 07777) == 0755, "lexec mode %o", st.st_mode & 07777);
        SYS(stat(M("ldir"), &st));
        EXPECT(S_ISDIR(st.st_mode), "ldir not a directory");
}

static void t_create_rw(void)
{
        static char big[200000], back[200000];
        for (size_t i = 0; i < sizeof big; i++)
                big[i] = (char)('a' + (i * 7 + i / 977) % 26);
        int fd;
        SYS(fd = open(M("new1"), O_RDWR | O_CREAT | O_EXCL, 0644));
        EXPECT(write(fd, "hello ", 6) == 6, "short write");
        EXPECT(write(fd, big, sizeof big) == (ssize_t)sizeof big, "short big write");
        EXPECT(pwrite(fd, "HELLO", 5, 0) == 5, "pwrite");
        char b[16] = {0};
        EXPECT(pread(fd, b, 6, 0) == 6 && !memcmp(b, "HELLO ", 6), "pread got \"%s\"", b);
        struct stat st;
        SYS(fstat(fd, &st));
        EXPECT(st.st_size == (off_t)(6 + sizeof big), "size %lld", (long long)st.st_size);
        EXPECT(lseek(fd, 6, SEEK_SET) == 6, "lseek");
        EXPECT(read(fd, back, sizeof back) == (ssize_t)sizeof back &&
                   !memcmp(back, big, sizeof big),
               "big data mismatch via the same fd");
        SYS(ftruncate(fd, 3));
        SYS(fstat(fd, &st));
        EXPECT(st.st_size == 3, "size after ftruncate %lld", (long long)st.st_size);
        SYS(ftruncate(fd, 10));
        memset(b, 'x', sizeof b);
        EXPECT(pread(fd, b, 16, 0) == 10 && !memcmp(b, "HEL\0\0\0\0\0\0\0", 10),
               "extended tail not zero");
        SYS(close(fd));
        SYS(fd = open(M("new1"), O_RDONLY));
        EXPECT(read(fd, b, 16) == 10, "reopen read");
        close(fd);
        SYS(truncate(M("new1"), 0));
        SYS(stat(M("new1"), &st));
        EXPECT(st.st_size == 0, "size after truncate %lld", (long long)st.st_size);
        /* read of an empty file, write past the end after reopen */
        SYS(fd = open(M("new1"), O_RDWR));
        EXPECT(read(fd, b, 16) == 0, "read at EOF not 0");
        EXPECT(pwrite(fd, "Z", 1, 100000) == 1, "pwrite past EOF");
        SYS(fstat(fd, &st));
        EXPECT(st.st_size == 100001, "size after sparse pwrite %lld", (long long)st.st_size);
        close(fd);
        if (upper)
                EXPECT(exists(U("new1")), "new file not in the upper branch");
}

static void t_append(void)
{
        int a, b;
        SYS(a = open(M("app"), O_WRONLY | O_CREAT | O_APPEND, 0644));
        SYS(b = open(M("app"), O_WRONLY | O_APPEND));
        char want[2000] = "", rec[16];
        for (int i = 0; i < 50; i++) {
                snprintf(rec, sizeof rec, "A%03d\n", i);
                EXPECT(write(a, rec, 5) == 5, "write a");
                strcat(want, rec);
                snprintf(rec, sizeof rec, "B%03d\n", i);
                EXPECT(write(b, rec, 5) == 5, "write b");
                strcat(want, rec);
        }
        /* O_APPEND ignores the offset */
        lseek(a, 0, SEEK_SET);
        EXPECT(write(a, "END\n", 4) == 4, "write end");
        strcat(want, "END\n");
        close(a);
        close(b);
        EXPECT_CONTENT(M("app"), want);

        /* append to a lower file: copy-up then append */
        SYS(a = open(M("app_l"), O_WRONLY | O_APPEND));
        EXPECT(write(a, "more\n", 5) == 5, "append lower");
        close(a);
        EXPECT_CONTENT(M("app_l"), "lower app\nmore\n");
        if (upper) {
                EXPECT_CONTENT(B(lowers[0], "app_l"), "lower app\n");
                EXPECT(exists(U("app_l")), "no copy-up of app_l");
        }
}

static void t_excl(void)
{
        EXPECT_ERR(open(M("ufile"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
        EXPECT_ERR(open(M("lfile"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
        EXPECT_ERR(open(M("l2file"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
        EXPECT_ERR(open(M("ldir"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
        EXPECT_ERR(open(M("llink"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
        EXPECT_ERR(mkdir(M("ldir"), 0755), EEXIST);
        EXPECT_ERR(mkdir(M("lfile"), 0755), EEXIST);
        EXPECT_ERR(symlink("x", M("lfile")), EEXIST);
        /* "hidden" exists in the bottom branch but is whited out above */
        int fd;
        SYS(fd = open(M("hidden"), O_WRONLY | O_CREAT | O_EXCL, 0600));
        EXPECT(write(fd, "new\n", 4) == 4, "write");
        close(fd);
        EXPECT_CONTENT(M("hidden"), "new\n");
        EXPECT(dir_has(mnt, "hidden") == 1, "recreated 'hidden' listed %d times",
               dir_has(mnt, "hidden"));
        SYS(fd = open(M("excl_new"), O_WRONLY | O_CREAT | O_EXCL, 0600));
        close(fd);
        EXPECT_ERR(open(M("excl_new"), O_WRONLY | O_CREAT | O_EXCL, 0600), EEXIST);
}

static void t_trunc(void)
{
        SYS(write_file(M("tr_u"), "0123456789", 0644));
        int fd;
        SYS(fd = open(M("tr_u"), O_WRONLY | O_TRUNC));
        close(fd);
        struct stat st;
        SYS(stat(M("tr_u"), &st));
        EXPECT(st.st_size == 0, "O_TRUNC left %lld bytes", (long long)st.st_size);
        /* O_TRUNC on a file of the bottom branch */
        SYS(fd = open(M("trunc_l"), O_WRONLY | O_TRUNC));
        EXPECT(write(fd, "new", 3) == 3, "write");
        close(fd);
        EXPECT_CONTENT(M("trunc_l"), "new");
        if (upper) {
                EXPECT_CONTENT(B(lowers[nlowers - 1], "trunc_l"), "bottom data\n");
                EXPECT_CONTENT(U("trunc_l"), "new");
        }
        /* open(O_RDONLY) neither truncates nor copies up */
        SYS(fd = open(M("l2file"), O_RDONLY));
        close(fd);
        EXPECT_CONTENT(M("l2file"), "lower two\n");
        if (upper)
                EXPECT(!exists(U("l2file")), "read-only open copied l2file up");
}

static void t_umask(void)
{
        struct {
                mode_t umask, mode;
                bool dir;
                mode_t want;
                const char *name;
        } c[] = {
            {022, 0666, false, 0644, "um1"}, {027, 0777, false, 0750, "um2"},
            {0, 0666, false, 0666, "um3"},   {077, 0777, false, 0700, "um4"},
            {022, 0777, true, 0755, "umd1"}, {0, 0777, true, 0777, "umd2"},
            {002, 0775, true, 0775, "umd3"},
        };
        mode_t old = umask(0);
        for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
                umask(c[i].umask);
                int r;
                if (c[i].dir)
                        r = mkdir(M(c[i].name), c[i].mode);
                else {
                        r = open(M(c[i].name), O_WRONLY | O_CREAT | O_EXCL, c[i].mode);
                        if (r >= 0)
                                close(r);
                }
                struct stat st;
                if (r < 0 || stat(M(c[i].name), &st) < 0) {
                        FAILF("create %s: %s", c[i].name, strerror(errno));
                        continue;
                }
                EXPECT((st.st_mode & 07777) == c[i].want,
                       "%s: umask %03o mode %03o gave %03o, expected %03o", c[i].name, c[i].umask,
                       c[i].mode, st.st_mode & 07777, c[i].want);
        }
        umask(old);
}

static void t_copyup(void)
{
        struct stat lst0, lst1, st;
        const char *lo = upper ? lower_of("ldir/sub/b") : NULL;
        if (lo)
                SYS(lstat(B(lo, "ldir/sub/b"), &lst0));
        int fd;
        SYS(fd = open(M("ldir/sub/b"), O_RDWR));
        EXPECT(pwrite(fd, "B", 1, 0) == 1, "pwrite");
        char b[8] = {0};
        EXPECT(pread(fd, b, 8, 0) == 2 && !strcmp(b, "B\n"), "read back via fd \"%s\"", b);
        close(fd);
        EXPECT_CONTENT(M("ldir/sub/b"), "B\n");
        if (upper) {
                EXPECT(lo != NULL, "ldir/sub/b in no lower branch");
                EXPECT_CONTENT(U("ldir/sub/b"), "B\n");
                if (lo) {
                        EXPECT_CONTENT(B(lo, "ldir/sub/b"), "b\n");
                        SYS(lstat(B(lo, "ldir/sub/b"), &lst1));
                        EXPECT(lst0.st_mtim.tv_sec == lst1.st_mtim.tv_sec &&
                                   lst0.st_mtim.tv_nsec == lst1.st_mtim.tv_nsec,
                               "lower mtime changed");
                }
                SYS(stat(U("ldir/sub"), &st));
                EXPECT(S_ISDIR(st.st_mode), "upper parent dir not created");
        }
        /* the rest of the merged directory is still there */
        EXPECT_LIST(M("ldir"), "a c sub");
        EXPECT_CONTENT(M("ldir/a"), "a\n");

        /* chmod copies up and keeps data, owner, mtime, xattrs */
        SYS(stat(M("cu_chmod"), &st));
        time_t mt = st.st_mtime;
        EXPECT(mt == 978307200, "prepared mtime %lld", (long long)mt);
        SYS(chmod(M("cu_chmod"), 0600));
        SYS(stat(M("cu_chmod"), &st));
        EXPECT((st.st_mode & 07777) == 0600, "mode %o after chmod", st.st_mode & 07777);
        EXPECT(st.st_mtime == mt, "chmod changed mtime %lld -> %lld", (long long)mt,
               (long long)st.st_mtime);
        EXPECT(st.st_uid == 4321 && st.st_gid == 4322, "copy-up owner %u:%u", st.st_uid, st.st_gid);
        EXPECT_CONTENT(M("cu_chmod"), "chmod me\n");
        char v[64];
        ssize_t n = getxattr(M("cu_chmod"), "user.keep", v, sizeof v);
        EXPECT(n == 3 && !memcmp(v, "yes", 3), "user.keep after copy-up: %zd %s", n,
               n < 0 ? strerror(errno) : "");
        if (upper) {
                SYS(stat(U("cu_chmod"), &st));
                EXPECT((st.st_mode & 07777) == 0600, "upper mode %o", st.st_mode & 07777);
                SYS(stat(B(lowers[0], "cu_chmod"), &st));
                EXPECT((st.st_mode & 07777) == 0644, "lower mode changed to %o",
                       st.st_mode & 07777);
        }
}

static void t_unlink(void)
{
        const char *names[] = {"ul_1", "ul_2", "ul_both"};
        for (int i = 0; i < 3; i++) {
                const char *lo = upper ? lower_of(names[i]) : NULL;
                SYS(unlink(M(names[i])));
                EXPECT_ERR(open(M(names[i]), O_RDONLY), ENOENT);
                struct stat st;
                EXPECT_ERR(lstat(M(names[i]), &st), ENOENT);
                EXPECT(dir_has(mnt, names[i]) == 0, "%s still listed", names[i]);
                EXPECT_ERR(unlink(M(names[i])), ENOENT);
                if (upper) {
                        EXPECT(upper_whiteout(names[i]), "no whiteout for %s in the upper branch",
                               names[i]);
                        EXPECT(lo && exists(B(lo, names[i])), "lower %s removed", names[i]);
                }
        }
        if (upper)
                for (int i = 0; i < nlowers; i++)
                        EXPECT(exists(B(lowers[i], "ul_both")), "ul_both removed from lower %d", i);
        /* recreate over the whiteout */
        SYS(write_file(M("ul_both"), "again\n", 0644));
        EXPECT_CONTENT(M("ul_both"), "again\n");
        EXPECT(dir_has(mnt, "ul_both") == 1, "ul_both listed %d times", dir_has(mnt, "ul_both"));
        /* nested lower file */
        SYS(unlink(M("ldir/a")));
        EXPECT_LIST(M("ldir"), "c sub");
        if (upper)
                EXPECT(upper_whiteout("ldir/a"), "no whiteout for ldir/a");
}

/* an unlinked (or replaced) file stays usable through its open fd and
 * leaves nothing visible behind (no .fuse_hidden* names) */
static void t_unlink_open(void)
{
        int fd, fd2, fd3;
        SYS(write_file(M("uo_u"), "open data\n", 0644));
        SYS(fd = open(M("uo_u"), O_RDWR));
        SYS(unlink(M("uo_u")));
        EXPECT(pwrite(fd, "OPEN", 4, 0) == 4, "pwrite after unlink");
        char b[32] = {0};
        EXPECT(pread(fd, b, sizeof b - 1, 0) == 10 && !strcmp(b, "OPEN data\n"),
               "pread after unlink: \"%s\"", b);
        struct stat st;
        SYS(fstat(fd, &st));
        EXPECT(st.st_nlink == 0, "nlink of an unlinked open file %lu", (unsigned long)st.st_nlink);
        /* attributes still change through the fd (no name left to go by) */
        struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1200000000, .tv_nsec = 5}};
        EXPECT(fchmod(fd, 0600) == 0, "fchmod after unlink: %s", strerror(errno));
        EXPECT(ftruncate(fd, 12) == 0, "ftruncate after unlink: %s", strerror(errno));
        EXPECT(futimens(fd, ts) == 0, "futimens after unlink: %s", strerror(errno));
        SYS(fstat(fd, &st));
        EXPECT((st.st_mode & 07777) == 0600 && st.st_size == 12 &&
                   st.st_mtim.tv_sec == 1200000000 && st.st_mtim.tv_nsec == 5,
               "unlinked file attrs: mode %o size %lld mtime %lld.%09ld", st.st_mode & 07777,
               (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        EXPECT_ERR(stat(M("uo_u"), &st), ENOENT);
        /* a lower file opened for reading, then removed */
        SYS(fd2 = open(M("uo_l"), O_RDONLY));
        SYS(unlink(M("uo_l")));
        memset(b, 0, sizeof b);
        EXPECT(pread(fd2, b, sizeof b - 1, 0) == 5 && !strcmp(b, "uo_l\n"),
               "read unlinked lower: \"%s\"", b);
        /* a lower file opened for writing, removed, then written: the data
         * stays the open file's (overlayfs copied it up at the open) */
        int fd4, fd5;
        SYS(fd4 = open(M("uo_w"), O_RDWR));
        SYS(unlink(M("uo_w")));
        EXPECT(pwrite(fd4, "LOWER", 5, 0) == 5, "pwrite unlinked lower: %s", strerror(errno));
        memset(b, 0, sizeof b);
        EXPECT(pread(fd4, b, sizeof b - 1, 0) == 28 && !strcmp(b, "LOWER, written after unlink\n"),
               "read back unlinked lower: \"%s\"", b);
        SYS(fstat(fd4, &st));
        EXPECT(st.st_size == 28 && st.st_nlink == 0, "unlinked lower: size %lld nlink %lu",
               (long long)st.st_size, (unsigned long)st.st_nlink);
        close(fd4);
        EXPECT_ERR(stat(M("uo_w"), &st), ENOENT);
        /* a lower file read through one fd while another open truncates it
         * by name: the first fd sees the (copied-up) truncated file */
        SYS(fd4 = open(M("uo_t"), O_RDONLY));
        memset(b, 0, sizeof b);
        EXPECT(pread(fd4, b, sizeof b - 1, 0) == 18, "read uo_t: \"%s\"", b);
        SYS(fd5 = open(M("uo_t"), O_WRONLY | O_TRUNC));
        EXPECT(pwrite(fd5, "new", 3, 0) == 3, "write uo_t");
        close(fd5);
        memset(b, 0, sizeof b);
        EXPECT(pread(fd4, b, sizeof b - 1, 0) == 3 && !strcmp(b, "new"),
               "old fd after truncate by name reads \"%s\"", b);
        close(fd4);
        /* replace an open file by rename */
        SYS(write_file(M("uo_r"), "old\n", 0644));
        SYS(write_file(M("uo_r.new"), "new\n", 0644));
        SYS(fd3 = open(M("uo_r"), O_RDONLY));
        SYS(rename(M("uo_r.new"), M("uo_r")));
        memset(b, 0, sizeof b);
        EXPECT(pread(fd3, b, sizeof b - 1, 0) == 4 && !strcmp(b, "old\n"),
               "replaced open file reads \"%s\"", b);
        EXPECT_CONTENT(M("uo_r"), "new\n");
        DIR *d = opendir(mnt);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d)))
                        EXPECT(strncmp(de->d_name, ".fuse_hidden", 12), "%s visible", de->d_name);
                closedir(d);
        }
        close(fd);
        close(fd2);
        close(fd3);
        EXPECT(dir_has(mnt, "uo_u") == 0 && dir_has(mnt, "uo_l") == 0,
               "unlinked names listed after close");
}

static void t_rmdir(void)
{
        /* a directory removed while open: attribute calls through its fd
         * may fail (no name is left to go by) but must not take the
         * service down, and the listing of its parent goes on */
        int dfd;
        SYS(mkdir(M("rmd_open"), 0755));
        SYS(dfd = open(M("rmd_open"), O_RDONLY | O_DIRECTORY));
        EXPECT(dir_has(M("rmd_open"), "x") == 0, "new directory not empty"); /* listed once */
        SYS(rmdir(M("rmd_open")));
        (void)fchmod(dfd, 0700);
        (void)futimens(dfd, NULL);
        close(dfd);
        EXPECT(dir_has(mnt, "rmd_open") == 0, "removed open directory still listed");
        EXPECT_ERR(rmdir(M("del")), ENOTEMPTY);
        EXPECT_ERR(rmdir(M("lfile")), ENOTDIR);
        SYS(unlink(M("del/f1")));
        EXPECT_ERR(rmdir(M("del")), ENOTEMPTY);
        SYS(unlink(M("del/f2")));
        EXPECT_LIST(M("del"), "");
        SYS(rmdir(M("del")));
        struct stat st;
        EXPECT_ERR(stat(M("del"), &st), ENOENT);
        EXPECT(dir_has(mnt, "del") == 0, "del still listed");
        if (upper) {
                EXPECT(upper_whiteout("del"), "no whiteout for del");
                EXPECT(lower_of("del/f1") && lower_of("del/f2"), "lower content of del removed");
        }
        /* a new directory of the same name is empty (opaque) */
        SYS(mkdir(M("del"), 0755));
        EXPECT_LIST(M("del"), "");
        EXPECT_ERR(stat(M("del/f1"), &st), ENOENT);
        SYS(write_file(M("del/new"), "n", 0644));
        EXPECT_LIST(M("del"), "new");
        /* an upper-only directory */
        SYS(mkdir(M("rm_u"), 0755));
        SYS(rmdir(M("rm_u")));
        EXPECT_ERR(stat(M("rm_u"), &st), ENOENT);
        /* a directory whose lower content is all removed */
        SYS(unlink(M("ldir/sub/b"))); /* copied up by t_copyup in union mode */
        SYS(rmdir(M("ldir/sub")));
        EXPECT_LIST(M("ldir"), "c");
}

static void t_rename_files(void)
{
        SYS(write_file(M("rn_u1"), "upper rn\n", 0644));
        struct stat st0, st;
        SYS(stat(M("rn_u1"), &st0));
        SYS(rename(M("rn_u1"), M("rn_u2")));
        EXPECT_ERR(stat(M("rn_u1"), &st), ENOENT);
        EXPECT_CONTENT(M("rn_u2"), "upper rn\n");
        SYS(stat(M("rn_u2"), &st));
        EXPECT(st.st_ino == st0.st_ino, "rename changed st_ino of an upper file");

        /* lower file */
        SYS(rename(M("rn_l"), M("rn_l_new")));
        EXPECT_ERR(stat(M("rn_l"), &st), ENOENT);
        EXPECT(dir_has(mnt, "rn_l") == 0, "rn_l still listed");
        EXPECT(dir_has(mnt, "rn_l_new") == 1, "rn_l_new not listed once");
        EXPECT_CONTENT(M("rn_l_new"), "rename me\n");
        if (upper) {
                EXPECT(upper_whiteout("rn_l"), "no whiteout for renamed rn_l");
                EXPECT(lower_of("rn_l") != NULL, "lower rn_l removed");
        }
        /* replace a lower file */
        SYS(write_file(M("rn_src"), "replacement\n", 0644));
        SYS(rename(M("rn_src"), M("rn_dst_l")));
        EXPECT_CONTENT(M("rn_dst_l"), "replacement\n");
        EXPECT(dir_has(mnt, "rn_dst_l") == 1, "rn_dst_l listed %d times", dir_has(mnt, "rn_dst_l"));
        EXPECT_ERR(stat(M("rn_src"), &st), ENOENT);
        if (upper) {
                const char *lo = lower_of("rn_dst_l");
                EXPECT(lo != NULL, "lower rn_dst_l removed");
                if (lo)
                        EXPECT_CONTENT(B(lo, "rn_dst_l"), "old dst\n");
        }
        /* into another (merged) directory */
        SYS(rename(M("rn_l_new"), M("ldir/moved")));
        EXPECT_CONTENT(M("ldir/moved"), "rename me\n");
        EXPECT_ERR(rename(M("nonexistent"), M("x")), ENOENT);
        EXPECT_ERR(rename(M("rn_u2"), M("ldir")), EISDIR);
        EXPECT_ERR(rename(M("ldir"), M("rn_u2")), ENOTDIR);
        /* onto itself */
        SYS(rename(M("rn_u2"), M("rn_u2")));
        EXPECT_CONTENT(M("rn_u2"), "upper rn\n");
}

static void t_rename_dirs(void)
{
        SYS(mkdir(M("ud"), 0755));
        SYS(mkdir(M("ud/s"), 0700));
        SYS(write_file(M("ud/f"), "f\n", 0644));
        SYS(write_file(M("ud/s/g"), "g\n", 0600));
        SYS(rename(M("ud"), M("ud2")));
        struct stat st;
        EXPECT_ERR(stat(M("ud"), &st), ENOENT);
        EXPECT_LIST(M("ud2"), "f s");
        EXPECT_CONTENT(M("ud2/f"), "f\n");
        EXPECT_CONTENT(M("ud2/s/g"), "g\n");
        SYS(stat(M("ud2/s"), &st));
        EXPECT((st.st_mode & 07777) == 0700, "mode of moved subdir %o", st.st_mode & 07777);
        /* onto an empty directory: allowed; onto a non-empty one: ENOTEMPTY */
        SYS(mkdir(M("ud_empty"), 0755));
        SYS(rename(M("ud2"), M("ud_empty")));
        EXPECT_CONTENT(M("ud_empty/s/g"), "g\n");
        SYS(mkdir(M("ud3"), 0755));
        EXPECT_ERR(rename(M("ud3"), M("ud_empty")), ENOTEMPTY);
        EXPECT_ERR(rename(M("ud_empty"), M("ud_empty/s/x")), EINVAL);

        /* a directory with content in two lower branches */
        errno = 0;
        if (rename(M("rdir"), M("rdir2")) < 0) {
                if (errno != EXDEV) {
                        FAILF("rename of a lower directory: %s (EXDEV or success expected)",
                              strerror(errno));
                        return;
                }
                printf("# rename of a merged lower directory: EXDEV\n");
                EXPECT_LIST(M("rdir"), "x y");
                return;
        }
        printf("# rename of a merged lower directory: succeeded\n");
        EXPECT_ERR(stat(M("rdir"), &st), ENOENT);
        EXPECT(dir_has(mnt, "rdir") == 0, "rdir still listed");
        EXPECT_LIST(M("rdir2"), "x y");
        EXPECT_CONTENT(M("rdir2/x"), "x\n");
        EXPECT_CONTENT(M("rdir2/y/z"), "z\n");
        EXPECT_LIST(M("rdir2/y"), "z");
        /* and the old name can be made again, empty */
        SYS(mkdir(M("rdir"), 0755));
        EXPECT_LIST(M("rdir"), "");
        if (upper)
                for (int i = 0; i < nlowers; i++)
                        if (exists(B(lowers[i], "rdir")))
                                EXPECT(exists(B(lowers[i], "rdir/x")) ||
                                           exists(B(lowers[i], "rdir/y")),
                                       "lower rdir emptied");
}

static void t_hardlink(void)
{
        SYS(write_file(M("hl1"), "one\n", 0644));
        SYS(link(M("hl1"), M("hl2")));
        struct stat a, b;
        SYS(stat(M("hl1"), &a));
        SYS(stat(M("hl2"), &b));
        EXPECT(a.st_nlink == 2 && b.st_nlink == 2, "nlink %lu %lu", (unsigned long)a.st_nlink,
               (unsigned long)b.st_nlink);
        EXPECT(a.st_ino == b.st_ino, "st_ino differs %lu %lu", (unsigned long)a.st_ino,
               (unsigned long)b.st_ino);
        SYS(write_file(M("hl1"), "changed\n", 0644));
        EXPECT_CONTENT(M("hl2"), "changed\n");
        int fd;
        SYS(fd = open(M("hl2"), O_WRONLY | O_APPEND));
        EXPECT(write(fd, "more\n", 5) == 5, "append");
        close(fd);
        EXPECT_CONTENT(M("hl1"), "changed\nmore\n");
        SYS(chmod(M("hl2"), 0600));
        SYS(stat(M("hl1"), &a));
        EXPECT((a.st_mode & 0777) == 0600, "chmod via the other name not seen: %o",
               a.st_mode & 0777);
        SYS(unlink(M("hl1")));
        SYS(stat(M("hl2"), &b));
        EXPECT(b.st_nlink == 1, "nlink after unlink %lu", (unsigned long)b.st_nlink);
        EXPECT_CONTENT(M("hl2"), "changed\nmore\n");
        EXPECT_ERR(link(M("ldir"), M("hl_dir")), EPERM);
        EXPECT_ERR(link(M("hl2"), M("lfile")), EEXIST);

        /* a lower file */
        SYS(link(M("hl_l"), M("hl_l2")));
        SYS(stat(M("hl_l"), &a));
        SYS(stat(M("hl_l2"), &b));
        EXPECT(a.st_ino == b.st_ino, "lower link: st_ino differs %lu %lu", (unsigned long)a.st_ino,
               (unsigned long)b.st_ino);
        EXPECT(a.st_nlink == 2 && b.st_nlink == 2, "lower link: nlink %lu %lu",
               (unsigned long)a.st_nlink, (unsigned long)b.st_nlink);
        EXPECT_CONTENT(M("hl_l2"), "link me\n");
        SYS(write_file(M("hl_l2"), "written\n", 0644));
        EXPECT_CONTENT(M("hl_l"), "written\n");
        if (upper) {
                const char *lo = lower_of("hl_l");
                EXPECT(lo != NULL, "lower hl_l gone");
                if (lo)
                        EXPECT_CONTENT(B(lo, "hl_l"), "link me\n");
        }
}

static void t_symlink(void)
{
        SYS(symlink("ufile", M("sl1")));
        char b[PATH_MAX];
        ssize_t n = readlink(M("sl1"), b, sizeof b);
        EXPECT(n == 5 && !memcmp(b, "ufile", 5), "readlink sl1: %zd", n);
        struct stat ls, st, t;
        SYS(lstat(M("sl1"), &ls));
        EXPECT(S_ISLNK(ls.st_mode), "sl1 not a symlink");
        EXPECT(ls.st_size == 5, "symlink st_size %lld", (long long)ls.st_size);
        SYS(stat(M("sl1"), &st));
        SYS(stat(M("ufile"), &t));
        EXPECT(st.st_ino == t.st_ino && S_ISREG(st.st_mode), "stat does not follow the symlink");
        EXPECT_CONTENT(M("sl1"), "upper\n");
        /* lower symlink */
        n = readlink(M("llink"), b, sizeof b);
        EXPECT(n == 5 && !memcmp(b, "lfile", 5), "readlink llink: %zd", n);
        EXPECT_CONTENT(M("llink"), "lower file one\n");
        /* dangling, to a directory, long target */
        SYS(symlink("no/such/target", M("sl_dangling")));
        SYS(lstat(M("sl_dangling"), &ls));
        EXPECT_ERR(stat(M("sl_dangling"), &st), ENOENT);
        SYS(symlink("ldir", M("sl_dir")));
        EXPECT_LIST(M("sl_dir"), "c moved"); /* after t_unlink, t_rmdir, t_rename_files */
        char longt[1001];
        memset(longt, 'x', 1000);
        longt[1000] = 0;
        SYS(symlink(longt, M("sl_long")));
        n = readlink(M("sl_long"), b, sizeof b);
        EXPECT(n == 1000 && !memcmp(b, longt, 1000), "long readlink %zd", n);
        EXPECT_ERR(readlink(M("ufile"), b, sizeof b), EINVAL);
        /* a write through a symlink writes the target */
        SYS(write_file(M("sl1"), "via link\n", 0644));
        EXPECT_CONTENT(M("ufile"), "via link\n");
        SYS(lstat(M("sl1"), &ls));
        EXPECT(S_ISLNK(ls.st_mode), "sl1 replaced by a file");
}

static void t_xattr(void)
{
        char v[256], list[4096];
        ssize_t n;
        SYS(write_file(M("xa_u"), "x", 0644));
        SYS(setxattr(M("xa_u"), "user.a", "1", 1, 0));
        SYS(setxattr(M("xa_u"), "user.long", "0123456789abcdef", 16, 0));
        n = getxattr(M("xa_u"), "user.a", v, sizeof v);
        EXPECT(n == 1 && v[0] == '1', "getxattr user.a: %zd", n);
        n = getxattr(M("xa_u"), "user.long", NULL, 0);
        EXPECT(n == 16, "getxattr size query: %zd", n);
        EXPECT_ERR(getxattr(M("xa_u"), "user.long", v, 4), ERANGE);
        n = listxattr(M("xa_u"), list, sizeof list);
        bool has_a = false, has_long = false;
        for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1) {
                has_a |= !strcmp(list + i, "user.a");
                has_long |= !strcmp(list + i, "user.long");
        }
        EXPECT(n > 0 && has_a && has_long, "listxattr: %zd a=%d long=%d", n, has_a, has_long);
        EXPECT_ERR(setxattr(M("xa_u"), "user.a", "2", 1, XATTR_CREATE), EEXIST);
        EXPECT_ERR(setxattr(M("xa_u"), "user.none", "2", 1, XATTR_REPLACE), ENODATA);
        SYS(setxattr(M("xa_u"), "user.a", "22", 2, XATTR_REPLACE));
        n = getxattr(M("xa_u"), "user.a", v, sizeof v);
        EXPECT(n == 2 && !memcmp(v, "22", 2), "replaced value: %zd", n);
        SYS(removexattr(M("xa_u"), "user.a"));
        EXPECT_ERR(getxattr(M("xa_u"), "user.a", v, sizeof v), ENODATA);
        EXPECT_ERR(removexattr(M("xa_u"), "user.a"), ENODATA);
        /* fd variants */
        int fd;
        SYS(fd = open(M("xa_u"), O_RDONLY));
        SYS(fsetxattr(fd, "user.f", "fd", 2, 0));
        n = fgetxattr(fd, "user.f", v, sizeof v);
        EXPECT(n == 2, "fgetxattr %zd", n);
        close(fd);

        /* a lower file with a prepared attribute */
        n = getxattr(M("xa_l"), "user.lower", v, sizeof v);
        EXPECT(n == 3 && !memcmp(v, "ro1", 3), "user.lower on lower file: %zd %s", n,
               n < 0 ? strerror(errno) : "");
        n = listxattr(M("xa_l"), list, sizeof list);
        bool has_lower = false;
        for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1) {
                has_lower |= !strcmp(list + i, "user.lower");
                if (strncmp(list + i, "user.", 5) && strncmp(list + i, "security.", 9) &&
                    strncmp(list + i, "system.", 7))
                        FAILF("listxattr shows \"%s\"", list + i);
        }
        EXPECT(has_lower, "listxattr of lower file lacks user.lower (%zd)", n);
        SYS(setxattr(M("xa_l"), "user.new", "v", 1, 0));
        n = getxattr(M("xa_l"), "user.new", v, sizeof v);
        EXPECT(n == 1, "user.new after set on lower: %zd", n);
        n = getxattr(M("xa_l"), "user.lower", v, sizeof v);
        EXPECT(n == 3, "user.lower lost on copy-up: %zd", n);
        EXPECT_CONTENT(M("xa_l"), "xattr lower\n");
        SYS(removexattr(M("xa_l"), "user.lower"));
        EXPECT_ERR(getxattr(M("xa_l"), "user.lower", v, sizeof v), ENODATA);
        if (upper) {
                const char *lo = lower_of("xa_l");
                EXPECT(lo != NULL, "lower xa_l gone");
                if (lo) {
                        EXPECT_ERR(lgetxattr(B(lo, "xa_l"), "user.new", v, sizeof v), ENODATA);
                        n = lgetxattr(B(lo, "xa_l"), "user.lower", v, sizeof v);
                        EXPECT(n == 3, "lower branch lost user.lower: %zd", n);
                }
                EXPECT(exists(U("xa_l")), "setxattr did not copy up");
        }
        /* remove an attribute of a lower file without other changes */
        SYS(removexattr(M("xa_l2"), "user.lower"));
        EXPECT_ERR(getxattr(M("xa_l2"), "user.lower", v, sizeof v), ENODATA);
        EXPECT_CONTENT(M("xa_l2"), "xattr lower 2\n");
        /* directories */
        SYS(setxattr(M("ldir"), "user.d", "dir", 3, 0));
        n = getxattr(M("ldir"), "user.d", v, sizeof v);
        EXPECT(n == 3, "dir xattr %zd", n);
        EXPECT_LIST(M("ldir"), "c moved");
}

static void t_statfs(void)
{
        struct statvfs sv;
        SYS(statvfs(mnt, &sv));
        EXPECT(sv.f_bsize > 0 && sv.f_blocks > 0, "bsize %lu blocks %lu", sv.f_bsize,
               (unsigned long)sv.f_blocks);
        EXPECT(sv.f_bavail <= sv.f_bfree && sv.f_bfree <= sv.f_blocks, "free counts inconsistent");
        EXPECT(sv.f_namemax >= 255, "namemax %lu", sv.f_namemax);
        SYS(statvfs(M("ldir"), &sv));
        int fd;
        SYS(fd = open(M("lfile"), O_RDONLY));
        SYS(fstatvfs(fd, &sv));
        close(fd);
}

static void t_attrs(void)
{
        const char *names[] = {"attr_u", "attr_l"};
        SYS(write_file(M("attr_u"), "attr\n", 0644));
        for (int i = 0; i < 2; i++) {
                const char *p = M(names[i]);
                struct stat st;
                SYS(chmod(p, 0751));
                SYS(stat(p, &st));
                EXPECT((st.st_mode & 07777) == 0751, "%s: mode %o", names[i], st.st_mode & 07777);
                SYS(chmod(p, 04755));
                SYS(stat(p, &st));
                EXPECT((st.st_mode & 07777) == 04755, "%s: setuid mode %o", names[i],
                       st.st_mode & 07777);
                SYS(chown(p, 1234, 5678));
                SYS(stat(p, &st));
                EXPECT(st.st_uid == 1234 && st.st_gid == 5678, "%s: owner %u:%u", names[i],
                       st.st_uid, st.st_gid);
                EXPECT(!(st.st_mode & S_ISUID), "%s: chown kept setuid", names[i]);
                SYS(chown(p, -1, 99));
                SYS(stat(p, &st));
                EXPECT(st.st_uid == 1234 && st.st_gid == 99, "%s: chown -1: %u:%u", names[i],
                       st.st_uid, st.st_gid);
                struct timespec ts[2] = {{1000000000, 123456789}, {1234567890, 987654321}};
                SYS(utimensat(AT_FDCWD, p, ts, 0));
                SYS(stat(p, &st));
                EXPECT(st.st_mtim.tv_sec == 1234567890 && st.st_mtim.tv_nsec == 987654321,
                       "%s: mtime %lld.%09ld", names[i], (long long)st.st_mtim.tv_sec,
                       st.st_mtim.tv_nsec);
                EXPECT(st.st_atim.tv_sec == 1000000000 && st.st_atim.tv_nsec == 123456789,
                       "%s: atime %lld.%09ld", names[i], (long long)st.st_atim.tv_sec,
                       st.st_atim.tv_nsec);
                struct timespec om[2] = {{0, UTIME_OMIT}, {2000000000, 5}};
                SYS(utimensat(AT_FDCWD, p, om, 0));
                SYS(stat(p, &st));
                EXPECT(st.st_mtim.tv_sec == 2000000000 && st.st_mtim.tv_nsec == 5,
                       "%s: mtime after UTIME_OMIT", names[i]);
                EXPECT(st.st_atim.tv_sec == 1000000000, "%s: UTIME_OMIT changed atime", names[i]);
                struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
                time_t t0 = time(NULL);
                SYS(utimensat(AT_FDCWD, p, now, 0));
                SYS(stat(p, &st));
                EXPECT(st.st_mtime >= t0 - 2 && st.st_mtime <= t0 + 2, "%s: UTIME_NOW gave %lld",
                       names[i], (long long)st.st_mtime);
                /* a write updates mtime */
                SYS(utimensat(AT_FDCWD, p, ts, 0));
                int fd;
                SYS(fd = open(p, O_WRONLY | O_APPEND));
                EXPECT(write(fd, "w", 1) == 1, "write");
                close(fd);
                SYS(stat(p, &st));
                EXPECT(st.st_mtime >= t0 - 2, "%s: write did not update mtime", names[i]);
                /* fd variants */
                SYS(fd = open(p, O_RDONLY));
                SYS(fchmod(fd, 0640));
                SYS(futimens(fd, ts));
                struct stat fst;
                SYS(fstat(fd, &fst));
                close(fd);
                EXPECT((fst.st_mode & 07777) == 0640 && fst.st_mtim.tv_nsec == 987654321,
                       "%s: fchmod/futimens", names[i]);
        }
        /* symlink times with AT_SYMLINK_NOFOLLOW */
        struct timespec ts[2] = {{1100000000, 1}, {1100000000, 2}};
        struct stat st;
        SYS(utimensat(AT_FDCWD, M("llink"), ts, AT_SYMLINK_NOFOLLOW));
        SYS(lstat(M("llink"), &st));
        EXPECT(st.st_mtim.tv_sec == 1100000000 && st.st_mtim.tv_nsec == 2,
               "symlink mtime %lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        if (upper) {
                const char *lo = lower_of("attr_l");
                EXPECT(lo != NULL, "lower attr_l gone");
                if (lo) {
                        SYS(stat(B(lo, "attr_l"), &st));
                        EXPECT((st.st_mode & 07777) == 0644 && st.st_uid == 0,
                               "lower attr_l changed: %o %u", st.st_mode & 07777, st.st_uid);
                }
        }
}

static void t_ino_stable(void)
{
        const char *names[] = {"lfile",  "l2file", "ufile", "ldir",   "ldir/c",
                               "shadow", "llink",  "opq",   "opq/top"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                struct stat a, b;
                SYS(lstat(M(names[i]), &a));
                SYS(lstat(M(names[i]), &b));
                EXPECT(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "%s: st_ino %lu then %lu",
                       names[i], (unsigned long)a.st_ino, (unsigned long)b.st_ino);
                EXPECT(a.st_ino != 0, "%s: st_ino 0", names[i]);
                if (!S_ISLNK(a.st_mode)) {
                        int fd;
                        SYS(fd = open(M(names[i]), O_RDONLY));
                        SYS(fstat(fd, &b));
                        close(fd);
                        EXPECT(a.st_ino == b.st_ino, "%s: stat %lu, fstat %lu", names[i],
                               (unsigned long)a.st_ino, (unsigned long)b.st_ino);
                }
        }
        /* the same number for a lower file before and after its copy-up */
        struct stat a, b;
        SYS(stat(M("ino_cu"), &a));
        SYS(chmod(M("ino_cu"), 0600));
        SYS(stat(M("ino_cu"), &b));
        EXPECT(a.st_ino == b.st_ino, "copy-up changed st_ino of ino_cu: %lu -> %lu",
               (unsigned long)a.st_ino, (unsigned long)b.st_ino);
        /* d_ino in readdir matches st_ino (find, ls -i, git use it) */
        DIR *d = opendir(mnt);
        if (!d) {
                FAILF("opendir: %s", strerror(errno));
                return;
        }
        struct dirent *de;
        int bad = 0;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, "..") || !strcmp(de->d_name, "."))
                        continue;
                struct stat st;
                if (lstat(M(de->d_name), &st) == 0 && st.st_ino != de->d_ino && bad++ < 3)
                        warn("d_ino of %s is %lu, st_ino %lu", de->d_name, (unsigned long)de->d_ino,
                             (unsigned long)st.st_ino);
        }
        closedir(d);
}

/* walk the whole tree: unique (st_dev, st_ino) per object (a FUSE mount
 * has one st_dev, so unique st_ino there), stable across two walks, no
 * .wh. name visible */
#define MAXENT 4096
static struct ent {
        char path[256];
        dev_t dev;
        ino_t ino;
        nlink_t nlink;
        mode_t mode;
} ents[MAXENT], first[MAXENT];
static int nents;

static int walk_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        const char *base = path + ftw->base;
        if (!strncmp(base, ".wh.", 4))
                FAILF("whiteout name visible: %s", path);
        if (type == FTW_NS || type == FTW_DNR) {
                FAILF("cannot stat/read %s", path);
                return 0;
        }
        if (nents < MAXENT) {
                struct ent *e = &ents[nents++];
                snprintf(e->path, sizeof e->path, "%s", path);
                e->dev = st->st_dev;
                e->ino = st->st_ino;
                e->nlink = st->st_nlink;
                e->mode = st->st_mode;
        }
        return 0;
}

static int ent_cmp(const void *a, const void *b)
{
        const struct ent *x = a, *y = b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static void t_tree(void)
{
        nents = 0;
        SYS(nftw(mnt, walk_cb, 16, FTW_PHYS));
        int n1 = nents;
        memcpy(first, ents, sizeof(struct ent) * (size_t)n1);
        nents = 0;
        SYS(nftw(mnt, walk_cb, 16, FTW_PHYS));
        EXPECT(nents == n1, "two walks saw %d and %d entries", n1, nents);
        for (int i = 0; i < n1 && i < nents; i++)
                EXPECT(!strcmp(first[i].path, ents[i].path) && first[i].ino == ents[i].ino,
                       "%s: st_ino %lu then %lu", first[i].path, (unsigned long)first[i].ino,
                       (unsigned long)ents[i].ino);
        qsort(ents, (size_t)nents, sizeof ents[0], ent_cmp);
        for (int i = 1; i < nents; i++) {
                struct ent *a = &ents[i - 1], *b = &ents[i];
                if (a->ino != b->ino || a->dev != b->dev)
                        continue;
                /* only hard links of one regular file may share a number */
                if (!(S_ISREG(a->mode) && S_ISREG(b->mode) && a->nlink > 1 && b->nlink > 1))
                        FAILF("st_ino %lu shared by %s and %s", (unsigned long)a->ino, a->path,
                              b->path);
        }
        printf("# tree: %d entries\n", nents);
}

static void t_whiteouts_hidden(void)
{
        const char *names[] = {".wh.ul_1",     ".wh.hidden", ".wh.del", "opq/.wh..wh..opq",
                               ".wh..wh..opq", "ldir/.wh.a", ".wh.rn_l"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                struct stat st;
                EXPECT_ERR(lstat(M(names[i]), &st), ENOENT);
                EXPECT_ERR(open(M(names[i]), O_RDONLY), ENOENT);
        }
        EXPECT(dir_has(mnt, ".wh.ul_1") == 0, ".wh.ul_1 listed");
        EXPECT(dir_has(M("opq"), ".wh..wh..opq") == 0, "opaque marker listed");
        if (upper && !wh_overlay)
                EXPECT(exists(U(".wh.ul_1")), "test premise: upper .wh.ul_1 missing");
}

/* names: NAME_MAX, odd bytes, reserved whiteout names */
static void t_names(void)
{
        char n255[256], n256[257];
        memset(n255, 'n', 255);
        n255[255] = 0;
        memset(n256, 'm', 256);
        n256[256] = 0;
        SYS(write_file(M(n255), "long\n", 0644));
        EXPECT_CONTENT(M(n255), "long\n");
        EXPECT(dir_has(mnt, n255) == 1, "255-byte name not listed");
        SYS(unlink(M(n255)));
        EXPECT_ERR(open(M(n256), O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
        struct stat st;
        EXPECT_ERR(stat(M(n256), &st), ENAMETOOLONG);
        EXPECT_ERR(mkdir(M(n256), 0755), ENAMETOOLONG);
        const char *odd[] = {"with space", "new\nline", "-dash", "\xc3\xbc\xe2\x82\xac utf8",
                             "tab\there",  "..dots",    "a.wh.b"};
        for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
                SYS(write_file(M(odd[i]), "odd\n", 0644));
                EXPECT(dir_has(mnt, odd[i]) == 1, "odd name %zu not listed once", i);
                EXPECT_CONTENT(M(odd[i]), "odd\n");
                SYS(unlink(M(odd[i])));
        }
        /* a name with the whiteout prefix is either refused or an ordinary,
         * visible file that hides nothing; never a silent whiteout */
        int fd = open(M(".wh.lfile"), O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) {
                EXPECT(errno == EINVAL || errno == EPERM || errno == EACCES, "create .wh.lfile: %s",
                       strerror(errno));
        } else {
                close(fd);
                EXPECT(dir_has(mnt, ".wh.lfile") == 1, ".wh.lfile created but not listed");
                SYS(unlink(M(".wh.lfile")));
        }
        EXPECT_CONTENT(M("lfile"), "lower file one\n");
        errno = 0;
        if (mkdir(M(".wh..wh..opq"), 0755) == 0)
                SYS(rmdir(M(".wh..wh..opq")));
        EXPECT_LIST(M("opq"), "top");
        EXPECT(exists(M("lfile")) && exists(M("ldir")), "lower names hidden after .wh. attempts");
}

/* readdir positions in a merged directory: telldir/seekdir/rewinddir */
static void t_seekdir(void)
{
        char name[NAME_MAX + 16];
        for (int i = 0; i < 40; i++) {
                snprintf(name, sizeof name, "sdir/u%02d", i);
                SYS(write_file(M(name), "u", 0644));
        }
        SYS(unlink(M("sdir/l05")));
        SYS(unlink(M("sdir/m07")));
        DIR *d = opendir(M("sdir"));
        if (!d) {
                FAILF("opendir sdir: %s", strerror(errno));
                return;
        }
        static char names[200][NAME_MAX + 1];
        long pos[200];
        int n = 0;
        struct dirent *de;
        for (;;) {
                long p = telldir(d);
                if (!(de = readdir(d)) || n >= 200)
                        break;
                pos[n] = p;
                snprintf(names[n++], sizeof names[0], "%s", de->d_name);
        }
        EXPECT(n == 40 + 29 + 29 + 2, "sdir: %d entries, expected 100", n);
        for (int i = 0; i < n; i++)
                for (int j = i + 1; j < n; j++)
                        EXPECT(strcmp(names[i], names[j]), "sdir lists %s twice", names[i]);
        /* back to the middle, then the rest reads the same */
        int mid = n / 2;
        seekdir(d, pos[mid]);
        for (int i = mid; i < n; i++) {
                de = readdir(d);
                EXPECT(de && !strcmp(de->d_name, names[i]),
                       "after seekdir: entry %d is %s, expected %s", i, de ? de->d_name : "(end)",
                       names[i]);
                if (!de)
                        break;
        }
        EXPECT(readdir(d) == NULL, "entries after the end");
        rewinddir(d);
        int m = 0;
        while ((de = readdir(d)))
                m++;
        EXPECT(m == n, "after rewinddir: %d entries, expected %d", m, n);
        closedir(d);
        /* removing entries while reading (rm -r does this) */
        d = opendir(M("sdir"));
        if (!d)
                return;
        int removed = 0;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                snprintf(name, sizeof name, "sdir/%s", de->d_name);
                if (unlink(M(name)) == 0)
                        removed++;
        }
        closedir(d);
        EXPECT(removed == n - 2, "removed %d of %d while reading", removed, n - 2);
        EXPECT_LIST(M("sdir"), "");
        SYS(rmdir(M("sdir")));
}

static void t_fsync(void)
{
        int fd;
        SYS(fd = open(M("fs_f"), O_RDWR | O_CREAT, 0644));
        EXPECT(write(fd, "sync\n", 5) == 5, "write");
        SYS(fsync(fd));
        SYS(fdatasync(fd));
        close(fd);
        SYS(fd = open(mnt, O_RDONLY | O_DIRECTORY));
        SYS(fsync(fd));
        close(fd);
        SYS(fd = open(M("lfile"), O_RDONLY));
        SYS(fsync(fd));
        close(fd);
        /* a merged lower directory copied up by chmod/utimens keeps its content */
        struct timespec ts[2] = {{1200000000, 0}, {1200000000, 7}};
        struct stat st;
        SYS(chmod(M("ldir"), 0750));
        SYS(utimensat(AT_FDCWD, M("ldir"), ts, 0));
        SYS(stat(M("ldir"), &st));
        EXPECT((st.st_mode & 07777) == 0750 && st.st_mtim.tv_sec == 1200000000 &&
                   st.st_mtim.tv_nsec == 7,
               "ldir attrs %o %lld.%09ld", st.st_mode & 07777, (long long)st.st_mtim.tv_sec,
               st.st_mtim.tv_nsec);
        EXPECT_LIST(M("ldir"), "c moved");
        EXPECT_CONTENT(M("ldir/c"), "c\n");
}

/* mmap: shared writable mapping seen by read(), mapping of a lower file,
 * and an fd opened for reading before a copy-up */
static void t_mmap(void)
{
        int fd;
        SYS(fd = open(M("mm_u"), O_RDWR | O_CREAT | O_TRUNC, 0644));
        SYS(ftruncate(fd, 8192));
        char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
                FAILF("mmap MAP_SHARED: %s", strerror(errno));
                close(fd);
                return;
        }
        memcpy(p + 4090, "mapped", 6);
        SYS(msync(p, 8192, MS_SYNC));
        munmap(p, 8192);
        char b[16] = {0};
        EXPECT(pread(fd, b, 6, 4090) == 6 && !memcmp(b, "mapped", 6),
               "mmap write not seen by pread: \"%s\"", b);
        close(fd);
        SYS(fd = open(M("mm_u"), O_RDONLY));
        memset(b, 0, sizeof b);
        EXPECT(pread(fd, b, 6, 4090) == 6 && !memcmp(b, "mapped", 6),
               "mmap write lost after close");
        close(fd);
        /* a lower file, mapped read-only */
        SYS(fd = open(M("l2file"), O_RDONLY));
        p = mmap(NULL, 10, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                FAILF("mmap of a lower file: %s", strerror(errno));
        else {
                EXPECT(!memcmp(p, "lower two\n", 10), "mapped lower data wrong");
                munmap(p, 10);
        }
        close(fd);
        /* a reader opened before the copy-up sees the writes made after it
         * (POSIX; overlayfs does this since Linux 4.19) */
        int rfd, wfd;
        SYS(rfd = open(M("mm_l"), O_RDONLY));
        SYS(wfd = open(M("mm_l"), O_WRONLY));
        EXPECT(pwrite(wfd, "NEW", 3, 0) == 3, "pwrite");
        close(wfd);
        memset(b, 0, sizeof b);
        EXPECT(pread(rfd, b, 3, 0) == 3, "pread of the old fd");
        EXPECT(!memcmp(b, "NEW", 3),
               "fd opened before the copy-up reads \"%.3s\", not the new data", b);
        close(rfd);
}

struct check {
        const char *name;
        void (*fn)(void);
};
static const struct check checks[] = {
    {"layers", t_layers},
    {"create-read-write", t_create_rw},
    {"o_append", t_append},
    {"o_excl", t_excl},
    {"o_trunc", t_trunc},
    {"o_creat-umask", t_umask},
    {"copy-up", t_copyup},
    {"unlink-whiteout", t_unlink},
    {"unlink-open", t_unlink_open},
    {"rmdir-whiteout", t_rmdir},
    {"rename-files", t_rename_files},
    {"rename-dirs", t_rename_dirs},
    {"hard-links", t_hardlink},
    {"symlinks", t_symlink},
    {"xattrs", t_xattr},
    {"statfs", t_statfs},
    {"names", t_names},
    {"readdir-seek", t_seekdir},
    {"fsync-dir-attrs", t_fsync},
    {"mmap", t_mmap},
    {"chmod-chown-utimens", t_attrs},
    {"ino-stable", t_ino_stable},
    {"tree-unique-ino", t_tree},
    {"whiteouts-hidden", t_whiteouts_hidden},
};

/* ---- try: one call, print OK or the errno name ----------------------- */

static const char *errname(int e)
{
        switch (e) {
        case EACCES:
                return "EACCES";
        case EPERM:
                return "EPERM";
        case ENOENT:
                return "ENOENT";
        case EEXIST:
                return "EEXIST";
        case ENOTEMPTY:
                return "ENOTEMPTY";
        case EROFS:
                return "EROFS";
        case EINVAL:
                return "EINVAL";
        case EIO:
                return "EIO";
        case EISDIR:
                return "EISDIR";
        case ENOTDIR:
                return "ENOTDIR";
        case ENAMETOOLONG:
                return "ENAMETOOLONG";
        case EXDEV:
                return "EXDEV";
        case ENODATA:
                return "ENODATA";
        case ENOSYS:
                return "ENOSYS";
        case EOPNOTSUPP:
                return "EOPNOTSUPP";
        default:
                return strerror(e);
        }
}

static int do_try(int argc, char **argv)
{
        if (argc < 2) {
                fprintf(stderr, "usage: posix-check try OP PATH [ARG]\n");
                return 2;
        }
        const char *op = argv[0], *p = argv[1], *arg = argc > 2 ? argv[2] : NULL;
        int r = -1, fd;
        if (!strcmp(op, "read") || !strcmp(op, "write") || !strcmp(op, "append") ||
            !strcmp(op, "create") || !strcmp(op, "excl")) {
                int fl = !strcmp(op, "read")     ? O_RDONLY
                         : !strcmp(op, "write")  ? O_WRONLY
                         : !strcmp(op, "append") ? O_WRONLY | O_APPEND
                         : !strcmp(op, "create") ? O_WRONLY | O_CREAT
                                                 : O_WRONLY | O_CREAT | O_EXCL;
                fd = open(p, fl, arg ? (mode_t)strtol(arg, NULL, 8) : 0644);
                if (fd >= 0) {
                        r = 0;
                        if (fl != O_RDONLY && write(fd, "t\n", 2) != 2)
                                r = -1;
                        if (fl == O_RDONLY) {
                                char b[64];
                                if (read(fd, b, sizeof b) < 0)
                                        r = -1;
                        }
                        close(fd);
                }
        } else if (!strcmp(op, "unlink"))
                r = unlink(p);
        else if (!strcmp(op, "rmdir"))
                r = rmdir(p);
        else if (!strcmp(op, "mkdir"))
                r = mkdir(p, arg ? (mode_t)strtol(arg, NULL, 8) : 0755);
        else if (!strcmp(op, "chmod") && arg)
                r = chmod(p, (mode_t)strtol(arg, NULL, 8));
        else if (!strcmp(op, "chown") && arg)
                r = chown(p, (uid_t)strtol(arg, NULL, 10), (gid_t)-1);
        else if (!strcmp(op, "chgrp") && arg)
                r = chown(p, (uid_t)-1, (gid_t)strtol(arg, NULL, 10));
        else if (!strcmp(op, "rename") && arg)
                r = rename(p, arg);
        else if (!strcmp(op, "link") && arg)
                r = link(p, arg);
        else if (!strcmp(op, "truncate"))
                r = truncate(p, 0);
        else if (!strcmp(op, "utime-now"))
                r = utimensat(AT_FDCWD, p, NULL, 0);
        else if (!strcmp(op, "utime-set")) {
                struct timespec ts[2] = {{1, 0}, {1, 0}};
                r = utimensat(AT_FDCWD, p, ts, 0);
        } else if (!strcmp(op, "setxattr"))
                r = setxattr(p, "user.t", "v", 1, 0);
        else if (!strcmp(op, "readdir")) {
                DIR *d = opendir(p);
                r = d ? 0 : -1;
                if (d)
                        closedir(d);
        } else {
                fprintf(stderr, "posix-check try: unknown op %s\n", op);
                return 2;
        }
        puts(r == 0 ? "OK" : errname(errno));
        return 0;
}

int main(int argc, char **argv)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc >= 2 && !strcmp(argv[1], "try"))
                return do_try(argc - 2, argv + 2);
        if (argc < 3 || (strcmp(argv[1], "union") && strcmp(argv[1], "plain"))) {
                fprintf(stderr, "usage: posix-check union|plain MNT [--upper DIR --lower DIR... "
                                "--whiteout oci|overlay] [--only NAME]\n"
                                "       posix-check try OP PATH [ARG]\n");
                return 2;
        }
        mnt = argv[2];
        const char *only = NULL;
        for (int i = 3; i < argc; i++) {
                if (!strcmp(argv[i], "--upper") && i + 1 < argc)
                        upper = argv[++i];
                else if (!strcmp(argv[i], "--lower") && i + 1 < argc && nlowers < 8)
                        lowers[nlowers++] = argv[++i];
                else if (!strcmp(argv[i], "--whiteout") && i + 1 < argc)
                        wh_overlay = !strcmp(argv[++i], "overlay");
                else if (!strcmp(argv[i], "--only") && i + 1 < argc)
                        only = argv[++i];
                else {
                        fprintf(stderr, "posix-check: bad argument %s\n", argv[i]);
                        return 2;
                }
        }
        if (upper && !nlowers) {
                fprintf(stderr, "posix-check: --upper needs --lower\n");
                return 2;
        }
        umask(022);
        int ran = 0;
        for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
                if (only && strcmp(only, checks[i].name))
                        continue;
                cur_test = checks[i].name;
                cur_failed = 0;
                checks[i].fn();
                printf("%s - %s %s\n", cur_failed ? "not ok" : "ok", argv[1], cur_test);
                failures += cur_failed;
                ran++;
        }
        printf("# %s: %d checks, %d failed, %d warnings\n", argv[1], ran, failures, warnings);
        return failures ? 1 : 0;
}
