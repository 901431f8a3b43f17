/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests: core/perm against the running kernel. Each differential case
 * builds objects (owner, group, mode, set-ID and sticky bits, access and
 * default ACLs) as root on a private tmpfs (see setup()), then forks one child per
 * caller (uid, gid, supplementary groups, umask) that makes the real system
 * calls (access, open, creat, mkdir, mknod, symlink, unlink, rmdir, rename,
 * link, chmod, chown, utimensat, truncate, ftruncate, write, setxattr and
 * removexattr of ACLs) and records each errno in shared memory. The parent
 * then asks perm_* what should have happened from the state before, and
 * compares errno and the state after (mode, owner, stored ACLs) exactly.
 * Without root (the children need setresuid) those cases print a note and
 * pass; the hostile-input cases run everywhere.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/perm.h"

#define XA_ACCESS  "system.posix_acl_access"
#define XA_DEFAULT "system.posix_acl_default"
#define ACL_MAX    256 /* bytes of the ACLs the cases build */
#define P_MAX      128 /* bytes of the paths the cases build */

/* snprintf() into an array, failing on truncation. */
#define fmt(buf, ...) ck_assert((size_t)snprintf(buf, sizeof(buf), __VA_ARGS__) < sizeof(buf))

/* The callers: objects are mostly owned by 1001:2001; ACLs name user 1003
 * and group 2003. */
typedef struct Caller {
        uid_t uid;
        gid_t gid;
        gid_t groups[2];
        size_t n_groups;
        mode_t umask;
} Caller;

static const Caller callers[] = {
    {0, 0, {0}, 0, 022},         /* root: privileged */
    {1001, 2001, {0}, 0, 077},   /* owner, in the group */
    {1001, 2002, {0}, 0, 022},   /* owner, not in the group */
    {1002, 2001, {0}, 0, 002},   /* group member (fsgid) */
    {1002, 2002, {2001}, 1, 0},  /* group member (supplementary) */
    {1002, 2002, {0}, 0, 022},   /* other */
    {1003, 2003, {0}, 0, 027},   /* named user and named group */
    {1004, 2004, {2003}, 1, 022} /* named group (supplementary) */
};
#define N_CALLERS (sizeof(callers) / sizeof(callers[0]))

static CoreCred cred_of(const Caller *k)
{
        return (CoreCred){.uid = k->uid,
                          .gid = k->gid,
                          .groups = k->groups,
                          .n_groups = k->n_groups,
                          .umask = k->umask,
                          .privileged = k->uid == 0};
}

/* ---- ACL blobs from text: "u::rwx,u:1003:r-x,g::r--,m::r-x,o::---" ---- */

static size_t acl_from_text(const char *text, void *out, size_t size)
{
        struct posix_acl_xattr_header h = {.a_version = htole32(POSIX_ACL_XATTR_VERSION)};
        size_t n = sizeof(h);
        const char *p = text;

        ck_assert_uint_ge(size, n);
        memcpy(out, &h, sizeof(h));
        while (*p) {
                struct posix_acl_xattr_entry e;
                unsigned tag = 0, perm = 0;
                unsigned long id = (unsigned long)ACL_UNDEFINED_ID;
                char *end;

                switch (*p++) {
                case 'u':
                        tag = ACL_USER_OBJ;
                        break;
                case 'g':
                        tag = ACL_GROUP_OBJ;
                        break;
                case 'm':
                        tag = ACL_MASK;
                        break;
                case 'o':
                        tag = ACL_OTHER;
                        break;
                default:
                        ck_abort_msg("bad ACL text %s", text);
                }
                ck_assert_int_eq(*p++, ':');
                if (*p != ':') {
                        id = strtoul(p, &end, 10);
                        p = end;
                        tag = tag == ACL_USER_OBJ ? ACL_USER : ACL_GROUP;
                }
                ck_assert_int_eq(*p++, ':');
                for (int i = 0; i < 3; i++, p++)
                        if (*p != '-')
                                perm |= 4 >> i;
                if (*p == ',')
                        p++;
                e.e_tag = htole16(tag);
                e.e_perm = htole16(perm);
                e.e_id = htole32((uint32_t)id);
                ck_assert_uint_le(n + sizeof(e), size);
                memcpy((char *)out + n, &e, sizeof(e));
                n += sizeof(e);
        }
        return n;
}

/* Access ACLs of the cases, with named entries (mode-equivalent ones are
 * never stored). */
static const char *const acls[] = {
    "u::rwx,u:1003:r-x,g::r--,m::r-x,o::---",
    "u::rw-,u:1003:rw-,g::r--,g:2003:rwx,m::rw-,o::r--",
    "u::r--,g::---,g:2003:r--,m::---,o::r-x", /* mask 0: the kernel's shortcut */
    "u::rwx,g::rwx,m::r--,o::--x",
    "u::rw-,u:1002:---,g::rw-,m::rwx,o::rw-",
    "u::rwx,u:1001:---,u:1004:-wx,g::--x,g:2001:r--,g:2002:rw-,m::rwx,o::---",
    "u::rw-,g::--x,g:2003:r--,m::rwx,o::rw-", /* a group match denies what other gets */
};
#define N_ACLS (sizeof(acls) / sizeof(acls[0]))

/* Default ACLs of directories. */
static const char *const dacls[] = {
    "u::rwx,g::r-x,o::r-x",
    "u::rw-,u:1003:rwx,g::r--,m::r-x,o::---",
    "u::rwx,g::rwx,g:2003:rwx,m::rwx,o::rwx",
    "u::r-x,g::---,m::---,o::--x",
};
#define N_DACLS (sizeof(dacls) / sizeof(dacls[0]))

/* ---- the scratch directory and its objects ---- */

static char base[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path) < 0 ? -1 : 0;
}

static bool on_tmpfs;

/* base is made and removed by the test runner's own process (an unchecked
 * fixture), so a case that fails midway leaves nothing behind. */
static void make_base(void)
{
        fmt(base, "/tmp/danaus-unit-perm.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(base));
        ck_assert_int_eq(chmod(base, 0755), 0);
}

static void remove_base(void)
{
        if (base[0] == '/' && strlen(base) > strlen("/tmp/"))
                nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Each case runs on a tmpfs of its own, mounted on base in a private mount
 * namespace of the case's process (so it vanishes with it): ext4 in /tmp
 * takes ~0.6 ms per create on a busy host, and the tables make ~17,000
 * objects. Both share the VFS and POSIX ACL code under test.
 * DANAUS_PERM_FS=tmp runs them on /tmp's own filesystem (ext4 here: all
 * pass, in ~26 s). */
static void setup(void)
{
        const char *fs = getenv("DANAUS_PERM_FS");

        on_tmpfs = false;
        if (geteuid() == 0 && !(fs && strcmp(fs, "tmp") == 0) && unshare(CLONE_NEWNS) == 0) {
                ck_assert_int_eq(mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
                ck_assert_int_eq(mount("danaus-unit-perm", base, "tmpfs", 0, "mode=0755"), 0);
                on_tmpfs = true;
        }
}

static void set_acl(const char *path, const char *xattr, const char *text)
{
        char blob[ACL_MAX];
        size_t n = acl_from_text(text, blob, sizeof(blob));

        ck_assert_msg(lsetxattr(path, xattr, blob, n, 0) == 0, "%s %s: %s", path, text,
                      strerror(errno));
}

/* Makes base/name: type S_IFREG, S_IFDIR or S_IFIFO; the access and
 * default ACLs (NULL: none) are set after the mode, as setfacl would. */
static void mk(char *path, const char *name, mode_t type_mode, uid_t uid, gid_t gid,
               const char *acl, const char *dacl)
{
        mode_t type = type_mode & S_IFMT;
        int n = snprintf(path, P_MAX, "%s/%s", base, name);

        ck_assert(n > 0 && n < P_MAX);
        if (type == S_IFDIR) {
                ck_assert_int_eq(mkdir(path, 0), 0);
        } else if (type == S_IFIFO) {
                ck_assert_int_eq(mknod(path, S_IFIFO, 0), 0);
        } else {
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0);

                ck_assert_int_ge(fd, 0);
                close(fd);
        }
        ck_assert_int_eq(lchown(path, uid, gid), 0);
        ck_assert_int_eq(chmod(path, type_mode & 07777), 0);
        if (acl)
                set_acl(path, XA_ACCESS, acl);
        if (dacl)
                set_acl(path, XA_DEFAULT, dacl);
}

typedef struct State {
        struct stat st;
        size_t n_acl, n_dacl;
        char acl[ACL_MAX];
        char dacl[ACL_MAX];
} State;

static size_t get_xattr(const char *path, const char *name, char *buf)
{
        ssize_t n = lgetxattr(path, name, buf, ACL_MAX);

        if (n < 0) {
                ck_assert_msg(errno == ENODATA || errno == EOPNOTSUPP, "%s: %s", path,
                              strerror(errno));
                return 0;
        }
        return (size_t)n;
}

static void get_state(const char *path, State *s)
{
        ck_assert_msg(lstat(path, &s->st) == 0, "%s: %s", path, strerror(errno));
        s->n_acl = get_xattr(path, XA_ACCESS, s->acl);
        s->n_dacl = get_xattr(path, XA_DEFAULT, s->dacl);
}

/* ---- the operations, run by the callers' children ---- */

enum {
        OP_ACCESS,
        OP_OPEN,
        OP_CREAT,
        OP_MKDIR,
        OP_MKNOD,
        OP_SYMLINK,
        OP_UNLINK,
        OP_RMDIR,
        OP_RENAME,
        OP_EXCHANGE,
        OP_LINK,
        OP_CHMOD,
        OP_CHOWN,
        OP_UTIMENS,
        OP_TRUNCATE,
        OP_FTRUNCATE,
        OP_WRITE,
        OP_SETACL,
        OP_RMACL,
};

enum { UT_NULL, UT_NOW_NOW, UT_NOW_OMIT, UT_OMIT_NOW, UT_SET_SET, UT_SET_OMIT, UT_OMIT_OMIT };

typedef struct Item {
        int caller;
        int op;
        int arg; /* access mask, open flags, mode, utimens variant, is_default */
        uid_t uid;
        gid_t gid;
        int fd;               /* FTRUNCATE, WRITE: opened by the parent */
        char obj[P_MAX];      /* the object acted on (or moved, or linked) */
        char dir[P_MAX];      /* its directory */
        char dir2[P_MAX];     /* RENAME, LINK: the new directory */
        char name[64];        /* the new entry (CREAT..SYMLINK) */
        char name2[64];       /* RENAME, LINK: the new name */
        const char *acl_text; /* SETACL: as text, or raw: */
        char raw[ACL_MAX];
        size_t n_raw;
        State before, dir_before, dir2_before, target_before;
        bool has_target; /* RENAME onto an existing name */
        int err;         /* errno from the child, 0 on success */
        int errs[8];     /* ACCESS: errno for each mask 1..7 */
} Item;

typedef struct Batch {
        Item *items;
        size_t n, cap;
} Batch;

static Item *batch_add(Batch *b, int caller, int op)
{
        Item *it;

        if (b->n == b->cap) {
                size_t cap = b->cap ? 2 * b->cap : 256;
                Item *items = mmap(NULL, cap * sizeof(Item), PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

                ck_assert(items != MAP_FAILED);
                if (b->n)
                        memcpy(items, b->items, b->n * sizeof(Item));
                if (b->items)
                        munmap(b->items, b->cap * sizeof(Item));
                b->items = items;
                b->cap = cap;
        }
        it = &b->items[b->n++];
        memset(it, 0, sizeof(*it));
        it->caller = caller;
        it->op = op;
        it->fd = -1;
        return it;
}

static void batch_free(Batch *b)
{
        for (size_t i = 0; i < b->n; i++)
                if (b->items[i].fd >= 0)
                        close(b->items[i].fd);
        if (b->items)
                munmap(b->items, b->cap * sizeof(Item));
}

static void path_at(char *buf, const char *dir, const char *name)
{
        int n = snprintf(buf, P_MAX, "%s/%s", dir, name);

        ck_assert(n > 0 && n < P_MAX);
}

static int do_item(Item *it)
{
        char p[P_MAX], p2[P_MAX];
        struct timespec ts[2];
        int r = 0, fd;

        fmt(p, "%s/%s", it->dir, it->name);
        fmt(p2, "%s/%s", it->dir2, it->name2);
        switch (it->op) {
        case OP_ACCESS:
                for (int mask = 1; mask <= 7; mask++)
                        it->errs[mask] = access(it->obj, mask) < 0 ? errno : 0;
                break;
        case OP_OPEN:
                fd = open(it->obj, it->arg | O_NONBLOCK | O_NOCTTY);
                r = fd < 0 ? -1 : close(fd);
                break;
        case OP_CREAT:
                fd = open(p, O_WRONLY | O_CREAT | O_EXCL, it->arg);
                r = fd < 0 ? -1 : close(fd);
                break;
        case OP_MKDIR:
                r = mkdir(p, it->arg);
                break;
        case OP_MKNOD:
                r = mknod(p, S_IFIFO | it->arg, 0);
                break;
        case OP_SYMLINK:
                r = symlink("target", p);
                break;
        case OP_UNLINK:
                r = unlink(it->obj);
                break;
        case OP_RMDIR:
                r = rmdir(it->obj);
                break;
        case OP_RENAME:
                r = rename(it->obj, p2);
                break;
        case OP_EXCHANGE:
                r = renameat2(AT_FDCWD, it->obj, AT_FDCWD, p2, RENAME_EXCHANGE);
                break;
        case OP_LINK:
                r = link(it->obj, p2);
                break;
        case OP_CHMOD:
                r = chmod(it->obj, it->arg);
                break;
        case OP_CHOWN:
                r = chown(it->obj, it->uid, it->gid);
                break;
        case OP_UTIMENS:
                ts[0] = ts[1] = (struct timespec){.tv_sec = 1000000, .tv_nsec = 5};
                switch (it->arg) {
                case UT_NOW_NOW:
                        ts[0].tv_nsec = ts[1].tv_nsec = UTIME_NOW;
                        break;
                case UT_NOW_OMIT:
                        ts[0].tv_nsec = UTIME_NOW;
                        ts[1].tv_nsec = UTIME_OMIT;
                        break;
                case UT_OMIT_NOW:
                        ts[0].tv_nsec = UTIME_OMIT;
                        ts[1].tv_nsec = UTIME_NOW;
                        break;
                case UT_SET_OMIT:
                        ts[1].tv_nsec = UTIME_OMIT;
                        break;
                case UT_OMIT_OMIT:
                        ts[0].tv_nsec = ts[1].tv_nsec = UTIME_OMIT;
                        break;
                }
                r = utimensat(AT_FDCWD, it->obj, it->arg == UT_NULL ? NULL : ts, 0);
                break;
        case OP_TRUNCATE:
                r = truncate(it->obj, 1);
                break;
        case OP_FTRUNCATE:
                r = ftruncate(it->fd, 1);
                break;
        case OP_WRITE:
                r = write(it->fd, "x", 1) == 1 ? 0 : -1;
                break;
        case OP_SETACL:
                r = lsetxattr(it->obj, it->arg ? XA_DEFAULT : XA_ACCESS, it->raw, it->n_raw, 0);
                break;
        case OP_RMACL:
                r = lremovexattr(it->obj, it->arg ? XA_DEFAULT : XA_ACCESS);
                break;
        }
        return r < 0 ? errno : 0;
}

/* Runs every item, each in a child with its caller's credentials. */
static void batch_run(Batch *b)
{
        for (size_t i = 0; i < b->n; i++) {
                Item *it = &b->items[i];

                if (it->obj[0])
                        get_state(it->obj, &it->before);
                if (it->dir[0])
                        get_state(it->dir, &it->dir_before);
                if (it->dir2[0])
                        get_state(it->dir2, &it->dir2_before);
                if (it->op == OP_RENAME || it->op == OP_EXCHANGE || it->op == OP_LINK) {
                        char p2[P_MAX];
                        struct stat st;

                        path_at(p2, it->dir2, it->name2);
                        it->has_target = lstat(p2, &st) == 0;
                        if (it->has_target)
                                get_state(p2, &it->target_before);
                }
        }
        for (size_t k = 0; k < N_CALLERS; k++) {
                const Caller *c = &callers[k];
                int status;
                pid_t pid = fork();

                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        if (setgroups(c->n_groups, c->groups) < 0 ||
                            setresgid(c->gid, c->gid, c->gid) < 0 ||
                            setresuid(c->uid, c->uid, c->uid) < 0)
                                _exit(2);
                        umask(c->umask);
                        for (size_t i = 0; i < b->n; i++)
                                if (b->items[i].caller == (int)k)
                                        b->items[i].err = do_item(&b->items[i]);
                        _exit(0);
                }
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                              "child of caller %zu: status %d", k, status);
        }
}

/* ---- predictions ---- */

static const char *const op_names[] = {
    "access",   "open",      "creat",    "mkdir",  "mknod", "symlink", "unlink",
    "rmdir",    "rename",    "exchange", "link",   "chmod", "chown",   "utimens",
    "truncate", "ftruncate", "write",    "setacl", "rmacl",
};

static int n_fail;

static void fail_item(const Item *it, const char *what, long expected, long got)
{
        const Caller *c = &callers[it->caller];

        if (n_fail++ < 30)
                fprintf(stderr,
                        "MISMATCH %s: %s arg=0%o uid=%d gid=%d on %s (mode 0%o %u:%u, acl %zu, "
                        "dir mode 0%o %u:%u) by %u:%u+%zu: expected %ld (0%lo), kernel %ld "
                        "(0%lo)\n",
                        what, op_names[it->op], (unsigned)it->arg, (int)it->uid, (int)it->gid,
                        it->obj[0] ? it->obj : it->name, (unsigned)it->before.st.st_mode,
                        it->before.st.st_uid, it->before.st.st_gid, it->before.n_acl,
                        (unsigned)it->dir_before.st.st_mode, it->dir_before.st.st_uid,
                        it->dir_before.st.st_gid, c->uid, c->gid, c->n_groups, expected,
                        (unsigned long)expected, got, (unsigned long)got);
}

static void expect_eq(const Item *it, const char *what, long expected, long got)
{
        if (expected != got)
                fail_item(it, what, expected, got);
}

static void expect_blob(const Item *it, const char *what, const void *exp, size_t n_exp,
                        const void *got, size_t n_got)
{
        if (n_exp != n_got || (n_exp && memcmp(exp, got, n_exp) != 0))
                fail_item(it, what, (long)n_exp, (long)n_got);
}

static const State *obj(const Item *it)
{
        return &it->before;
}

/* What the new-entry operations should have made. */
static void check_new_entry(const Item *it, const CoreCred *c, mode_t type)
{
        const State *d = &it->dir_before;
        int r = perm_may_create(&d->st, d->n_acl ? d->acl : NULL, d->n_acl, c);
        char p[P_MAX], acl[ACL_MAX], dacl[ACL_MAX];
        size_t n_acl, n_dacl;
        mode_t mode = type | (mode_t)it->arg;
        LsCred owner;
        State after;

        expect_eq(it, "errno", -r, it->err);
        if (r < 0 || it->err)
                return;
        if (type == S_IFLNK)
                mode = S_IFLNK | 0777;
        ck_assert_int_eq(perm_new_entry(&d->st, d->n_dacl ? d->dacl : NULL, d->n_dacl, c, &mode,
                                        &owner, acl, &n_acl, dacl, &n_dacl),
                         0);
        path_at(p, it->dir, it->name);
        get_state(p, &after);
        expect_eq(it, "mode", mode, after.st.st_mode);
        expect_eq(it, "uid", owner.uid, after.st.st_uid);
        expect_eq(it, "gid", owner.gid, after.st.st_gid);
        expect_blob(it, "access ACL", acl, n_acl, after.acl, after.n_acl);
        expect_blob(it, "default ACL", dacl, n_dacl, after.dacl, after.n_dacl);
}

static void check_setattr(const Item *it, const CoreCred *c, LsSetattr *sa, unsigned flags)
{
        const State *o = obj(it);
        int r = perm_setattr(&o->st, o->n_acl ? o->acl : NULL, o->n_acl, c, sa, flags);
        mode_t mode = o->st.st_mode;
        uid_t uid = o->st.st_uid;
        gid_t gid = o->st.st_gid;
        char acl[ACL_MAX];
        int n_acl = (int)o->n_acl;
        State after;

        expect_eq(it, "errno", -r, it->err);
        if (r == 0 && it->err == 0) {
                if (sa->valid & LS_SET_MODE) {
                        mode = (mode & S_IFMT) | sa->mode;
                        n_acl = perm_acl_chmod(o->n_acl ? o->acl : NULL, o->n_acl, sa->mode, acl,
                                               sizeof(acl));
                        ck_assert_int_ge(n_acl, 0);
                } else {
                        memcpy(acl, o->acl, o->n_acl);
                }
                if (sa->valid & LS_SET_UID)
                        uid = sa->uid;
                if (sa->valid & LS_SET_GID)
                        gid = sa->gid;
        } else {
                memcpy(acl, o->acl, o->n_acl);
        }
        get_state(it->obj, &after);
        expect_eq(it, "mode after", mode, after.st.st_mode);
        expect_eq(it, "uid after", uid, after.st.st_uid);
        expect_eq(it, "gid after", gid, after.st.st_gid);
        expect_blob(it, "ACL after", acl, (size_t)n_acl, after.acl, after.n_acl);
}

static void check_item(const Item *it)
{
        CoreCred c = cred_of(&callers[it->caller]);
        const State *o = obj(it), *d = &it->dir_before, *d2 = &it->dir2_before;
        const void *oacl = o->n_acl ? o->acl : NULL;
        LsSetattr sa = {0};
        State after;
        mode_t kill;
        int r;

        switch (it->op) {
        case OP_ACCESS:
                for (int mask = 1; mask <= 7; mask++) {
                        Item one = *it;

                        one.arg = mask;
                        expect_eq(&one, "errno", -perm_check(&o->st, oacl, o->n_acl, &c, mask),
                                  it->errs[mask]);
                }
                break;
        case OP_OPEN:
                r = perm_may_open(&o->st, oacl, o->n_acl, &c, it->arg);
                /* a FIFO without a reader: past the checks, O_NONBLOCK's ENXIO */
                expect_eq(it, "errno", -r,
                          S_ISFIFO(o->st.st_mode) && it->err == ENXIO ? 0 : it->err);
                get_state(it->obj, &after);
                kill = (r == 0 && (it->arg & O_TRUNC)) ? perm_write_killpriv(&o->st, &c) : 0;
                expect_eq(it, "mode after", kill ? kill : o->st.st_mode, after.st.st_mode);
                break;
        case OP_CREAT:
                check_new_entry(it, &c, S_IFREG);
                break;
        case OP_MKDIR:
                check_new_entry(it, &c, S_IFDIR);
                break;
        case OP_MKNOD:
                check_new_entry(it, &c, S_IFIFO);
                break;
        case OP_SYMLINK:
                check_new_entry(it, &c, S_IFLNK);
                break;
        case OP_UNLINK:
        case OP_RMDIR:
                r = perm_may_delete(&d->st, d->n_acl ? d->acl : NULL, d->n_acl, &o->st, &c);
                expect_eq(it, "errno", -r, it->err);
                break;
        case OP_RENAME:
                /* the composition perm.h describes: the lookups first */
                r = perm_check(&d->st, d->n_acl ? d->acl : NULL, d->n_acl, &c, X_OK);
                if (r == 0)
                        r = perm_check(&d2->st, d2->n_acl ? d2->acl : NULL, d2->n_acl, &c, X_OK);
                if (r == 0)
                        r = perm_may_delete(&d->st, d->n_acl ? d->acl : NULL, d->n_acl, &o->st, &c);
                if (r == 0 && !it->has_target)
                        r = perm_may_create(&d2->st, d2->n_acl ? d2->acl : NULL, d2->n_acl, &c);
                else if (r == 0)
                        r = perm_may_delete(&d2->st, d2->n_acl ? d2->acl : NULL, d2->n_acl,
                                            &it->target_before.st, &c);
                if (r == 0 && strcmp(it->dir, it->dir2) != 0 && S_ISDIR(o->st.st_mode))
                        r = perm_check(&o->st, oacl, o->n_acl, &c, W_OK);
                expect_eq(it, "errno", -r, it->err);
                break;
        case OP_EXCHANGE: {
                const State *t = &it->target_before;

                r = perm_check(&d->st, d->n_acl ? d->acl : NULL, d->n_acl, &c, X_OK);
                if (r == 0)
                        r = perm_check(&d2->st, d2->n_acl ? d2->acl : NULL, d2->n_acl, &c, X_OK);
                if (r == 0)
                        r = perm_may_delete(&d->st, d->n_acl ? d->acl : NULL, d->n_acl, &o->st, &c);
                if (r == 0)
                        r = perm_may_delete(&d2->st, d2->n_acl ? d2->acl : NULL, d2->n_acl, &t->st,
                                            &c);
                if (r == 0 && strcmp(it->dir, it->dir2) != 0 && S_ISDIR(o->st.st_mode))
                        r = perm_check(&o->st, oacl, o->n_acl, &c, W_OK);
                if (r == 0 && strcmp(it->dir, it->dir2) != 0 && S_ISDIR(t->st.st_mode))
                        r = perm_check(&t->st, t->n_acl ? t->acl : NULL, t->n_acl, &c, W_OK);
                expect_eq(it, "errno", -r, it->err);
                break;
        }
        case OP_LINK:
                r = perm_check(&d2->st, d2->n_acl ? d2->acl : NULL, d2->n_acl, &c, X_OK);
                if (r == 0)
                        r = perm_may_link(&o->st, oacl, o->n_acl, &c);
                if (r == 0)
                        r = perm_may_create(&d2->st, d2->n_acl ? d2->acl : NULL, d2->n_acl, &c);
                expect_eq(it, "errno", -r, it->err);
                break;
        case OP_CHMOD:
                sa.valid = LS_SET_MODE;
                sa.mode = (mode_t)it->arg;
                check_setattr(it, &c, &sa, 0);
                break;
        case OP_CHOWN:
                if (it->uid != (uid_t)-1) {
                        sa.valid |= LS_SET_UID;
                        sa.uid = it->uid;
                }
                if (it->gid != (gid_t)-1) {
                        sa.valid |= LS_SET_GID;
                        sa.gid = it->gid;
                }
                check_setattr(it, &c, &sa, PERM_SETATTR_CHOWN);
                break;
        case OP_UTIMENS:
                switch (it->arg) {
                case UT_NULL:
                case UT_NOW_NOW:
                        sa.valid = LS_SET_ATIME_NOW | LS_SET_MTIME_NOW;
                        break;
                case UT_NOW_OMIT:
                        sa.valid = LS_SET_ATIME_NOW;
                        break;
                case UT_OMIT_NOW:
                        sa.valid = LS_SET_MTIME_NOW;
                        break;
                case UT_SET_SET:
                        sa.valid = LS_SET_ATIME | LS_SET_MTIME;
                        break;
                case UT_SET_OMIT:
                        sa.valid = LS_SET_ATIME;
                        break;
                case UT_OMIT_OMIT:
                        break;
                }
                check_setattr(it, &c, &sa, 0);
                break;
        case OP_TRUNCATE:
        case OP_FTRUNCATE:
                sa.valid = LS_SET_SIZE;
                sa.size = 1;
                check_setattr(it, &c, &sa, it->op == OP_FTRUNCATE ? PERM_SETATTR_FD_WRITE : 0);
                break;
        case OP_WRITE:
                expect_eq(it, "errno", 0, it->err);
                kill = perm_write_killpriv(&o->st, &c);
                get_state(it->obj, &after);
                expect_eq(it, "mode after", kill ? kill : o->st.st_mode, after.st.st_mode);
                break;
        case OP_SETACL:
        case OP_RMACL: {
                char out[ACL_MAX];
                size_t n_out;
                mode_t mode;

                r = perm_acl_set(&o->st, it->arg, it->op == OP_SETACL ? it->raw : NULL, it->n_raw,
                                 &c, &mode, out, &n_out);
                /* tmpfs (simple_set_acl) also drops S_ISGID when an access
                 * ACL is removed by a caller outside the group; ext4, the
                 * reference, keeps the mode. */
                if (r == 0 && on_tmpfs && (it->op == OP_RMACL || it->n_raw <= 4) && !it->arg &&
                    !perm_in_group(&c, o->st.st_gid) && !c.privileged)
                        mode &= ~(mode_t)S_ISGID;
                expect_eq(it, "errno", -r, it->err);
                get_state(it->obj, &after);
                if (r == 0) {
                        expect_eq(it, "mode after", mode, after.st.st_mode);
                        if (it->arg)
                                expect_blob(it, "default ACL after", out, n_out, after.dacl,
                                            after.n_dacl);
                        else
                                expect_blob(it, "ACL after", out, n_out, after.acl, after.n_acl);
                } else {
                        expect_eq(it, "mode after", o->st.st_mode, after.st.st_mode);
                        expect_blob(it, "ACL after", o->acl, o->n_acl, after.acl, after.n_acl);
                        expect_blob(it, "default ACL after", o->dacl, o->n_dacl, after.dacl,
                                    after.n_dacl);
                }
                break;
        }
        }
}

/* DANAUS_PERM_STATS=1: per operation, how many succeeded and failed. */
static void batch_stats(const Batch *b)
{
        size_t ok[OP_RMACL + 1] = {0}, failed[OP_RMACL + 1] = {0};

        for (size_t i = 0; i < b->n; i++) {
                const Item *it = &b->items[i];

                if (it->op == OP_ACCESS)
                        for (int mask = 1; mask <= 7; mask++)
                                (it->errs[mask] ? failed : ok)[it->op]++;
                else
                        (it->err ? failed : ok)[it->op]++;
        }
        for (int op = 0; op <= OP_RMACL; op++)
                if (ok[op] + failed[op])
                        fprintf(stderr, "test-perm: %s: %zu succeeded, %zu failed\n", op_names[op],
                                ok[op], failed[op]);
}

static void batch_check(Batch *b)
{
        if (getenv("DANAUS_PERM_STATS"))
                batch_stats(b);
        n_fail = 0;
        for (size_t i = 0; i < b->n; i++)
                check_item(&b->items[i]);
        ck_assert_msg(n_fail == 0, "%d of %zu operations differ from the kernel", n_fail, b->n);
}

static bool skip_without_root(void)
{
        if (geteuid() == 0)
                return false;
        fprintf(stderr, "test-perm: not root, kernel comparison skipped\n");
        return true;
}

/* ---- differential cases ---- */

/* access(2): every mode of files and directories, and the ACLs. */
START_TEST(test_access)
{
        static const mode_t acl_modes[] = {0, 0640, 0755, 0700, 0707, 0070, 0777};
        Batch b = {0};
        char path[P_MAX], name[32];
        size_t n_obj = 0;
        char(*objs)[P_MAX];

        if (skip_without_root())
                return;
        objs = calloc(1200, P_MAX);
        ck_assert_ptr_nonnull(objs);
        for (mode_t m = 0; m < 01000; m++) {
                fmt(name, "f%o", (unsigned)m);
                mk(objs[n_obj++], name, S_IFREG | m, 1001, 2001, NULL, NULL);
                fmt(name, "d%o", (unsigned)m);
                mk(objs[n_obj++], name, S_IFDIR | m, 1001, 2001, NULL, NULL);
        }
        for (size_t a = 0; a < N_ACLS; a++)
                for (size_t i = 0; i < sizeof(acl_modes) / sizeof(acl_modes[0]); i++) {
                        fmt(name, "af%zu-%zu", a, i);
                        mk(objs[n_obj++], name, S_IFREG | acl_modes[i], 1001, 2001, acls[a], NULL);
                        fmt(name, "ad%zu-%zu", a, i);
                        mk(objs[n_obj++], name, S_IFDIR | acl_modes[i], 0, 2003, acls[a], NULL);
                }
        /* chmod after the ACL: the mask follows the group bits */
        mk(path, "acl-chmod", S_IFREG | 0640, 1001, 2001, acls[1], NULL);
        ck_assert_int_eq(chmod(path, 0604), 0);
        strcpy(objs[n_obj++], path);

        for (size_t k = 0; k < N_CALLERS; k++)
                for (size_t i = 0; i < n_obj; i++) {
                        Item *it = batch_add(&b, (int)k, OP_ACCESS);

                        strcpy(it->obj, objs[i]);
                }
        batch_run(&b);
        batch_check(&b);
        batch_free(&b);
        free(objs);
}
END_TEST

/* open(2): access modes, O_TRUNC (with its killpriv), O_NOATIME. */
START_TEST(test_open)
{
        static const mode_t modes[] = {0,    0400, 0200, 0600, 0040, 0020, 0060, 0004,
                                       0002, 0006, 0444, 0222, 0666, 0111, 0755, 06766};
        static const int flags[] = {O_RDONLY,
                                    O_WRONLY,
                                    O_RDWR,
                                    O_RDONLY | O_TRUNC,
                                    O_WRONLY | O_TRUNC,
                                    O_RDONLY | O_NOATIME,
                                    O_PATH};
        Batch b = {0};
        char path[P_MAX], name[64];

        if (skip_without_root())
                return;
        for (size_t k = 0; k < N_CALLERS; k++)
                for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
                        for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
                                for (int t = 0; t < 4; t++) {
                                        static const mode_t types[] = {S_IFREG, S_IFDIR, S_IFREG,
                                                                       S_IFIFO};
                                        Item *it;

                                        fmt(name, "o%zu-%zu-%zu-%d", k, m, f, t);
                                        mk(path, name, types[t] | modes[m], t == 2 ? 1003 : 1001,
                                           t == 2 ? 2003 : 2001, t == 2 ? acls[m % N_ACLS] : NULL,
                                           NULL);
                                        it = batch_add(&b, (int)k, OP_OPEN);
                                        strcpy(it->obj, path);
                                        it->arg = flags[f];
                                }
        batch_run(&b);
        batch_check(&b);
        batch_free(&b);
}
END_TEST

/* creat, mkdir, mknod, symlink: permission on the directory; owner, mode
 * and ACLs of the new entry (umask, set-group-ID directory, default ACL). */
START_TEST(test_create)
{
        static const mode_t dmodes[] = {0777, 0770, 0700,  0755,  0733,  0300,
                                        0707, 0077, 02777, 02775, 03777, 01777};
        static const mode_t fmodes[] = {0666, 02755, 06777, 01644, 0, 02745, 0777};
        static const mode_t dirmodes[] = {0777, 07777, 0700, 02755};
        Batch b = {0};
        char dirs[32][P_MAX], name[64];
        size_t n_dirs = 0;

        if (skip_without_root())
                return;
        for (size_t i = 0; i < sizeof(dmodes) / sizeof(dmodes[0]); i++) {
                fmt(name, "d%zu", i);
                mk(dirs[n_dirs++], name, S_IFDIR | dmodes[i], 1001, i % 2 ? 2003 : 2001, NULL,
                   NULL);
        }
        for (size_t a = 0; a < N_DACLS; a++) {
                fmt(name, "acl%zu", a);
                mk(dirs[n_dirs++], name, S_IFDIR | 0777, 1001, 2001, NULL, dacls[a]);
                fmt(name, "acl-sgid%zu", a);
                mk(dirs[n_dirs++], name, S_IFDIR | 02777, 0, 2003, acls[a % N_ACLS], dacls[a]);
        }
        for (size_t k = 0; k < N_CALLERS; k++)
                for (size_t d = 0; d < n_dirs; d++) {
                        Item *it;

                        for (size_t m = 0; m < sizeof(fmodes) / sizeof(fmodes[0]); m++) {
                                it = batch_add(&b, (int)k, OP_CREAT);
                                strcpy(it->dir, dirs[d]);
                                fmt(it->name, "c%zu-%zu", k, m);
                                it->arg = (int)fmodes[m];
                                it = batch_add(&b, (int)k, OP_MKNOD);
                                strcpy(it->dir, dirs[d]);
                                fmt(it->name, "n%zu-%zu", k, m);
                                it->arg = (int)fmodes[m];
                        }
                        for (size_t m = 0; m < sizeof(dirmodes) / sizeof(dirmodes[0]); m++) {
                                it = batch_add(&b, (int)k, OP_MKDIR);
                                strcpy(it->dir, dirs[d]);
                                fmt(it->name, "m%zu-%zu", k, m);
                                it->arg = (int)dirmodes[m];
                        }
                        it = batch_add(&b, (int)k, OP_SYMLINK);
                        strcpy(it->dir, dirs[d]);
                        fmt(it->name, "s%zu", k);
                }
        batch_run(&b);
        batch_check(&b);
        batch_free(&b);
}
END_TEST

/* unlink, rmdir, rename, link: directory permission, the sticky rule, a
 * moved directory's own write permission, protected_hardlinks. */
START_TEST(test_delete)
{
        static const mode_t dmodes[] = {0777, 01777, 0755, 01733, 0733, 01770, 0300};
        static const uid_t downers[] = {1001, 0, 1002};
        static const uid_t vowners[] = {1001, 1002, 1003, 0};
        static const mode_t vmodes[] = {0755, 0700, 0555, 0777};
        Batch b = {0};
        char dirs[32][P_MAX], victim[P_MAX], name[64], open_dir[P_MAX];
        size_t n_dirs = 0;

        if (skip_without_root())
                return;
        for (size_t i = 0; i < sizeof(dmodes) / sizeof(dmodes[0]); i++)
                for (size_t o = 0; o < sizeof(downers) / sizeof(downers[0]); o++) {
                        fmt(name, "d%zu-%zu", i, o);
                        mk(dirs[n_dirs++], name, S_IFDIR | dmodes[i], downers[o], 2001,
                           i == 4 ? acls[o] : NULL, NULL);
                }
        mk(open_dir, "open", S_IFDIR | 0777, 0, 0, NULL, NULL);
        mk(dirs[n_dirs++], "sticky-open", S_IFDIR | 01777, 0, 0, NULL, NULL);

        for (size_t k = 0; k < N_CALLERS; k++)
                for (size_t d = 0; d < n_dirs; d++)
                        for (size_t v = 0; v < sizeof(vowners) / sizeof(vowners[0]); v++) {
                                static const int ops[] = {OP_UNLINK,   OP_RMDIR,   OP_RENAME,
                                                          OP_RENAME,   OP_RENAME,  OP_RENAME,
                                                          OP_EXCHANGE, OP_EXCHANGE};
                                for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
                                        Item *it = batch_add(&b, (int)k, ops[o]);
                                        bool is_dir =
                                            ops[o] == OP_RMDIR || o == 3 || o == 5 || o == 7;

                                        fmt(name, "v%zu-%zu-%zu", k, v, o);
                                        path_at(victim, dirs[d], name);
                                        if (is_dir)
                                                ck_assert_int_eq(mkdir(victim, 0), 0);
                                        else
                                                ck_assert_int_eq(mknod(victim, S_IFREG, 0), 0);
                                        ck_assert_int_eq(lchown(victim, vowners[v], 2001), 0);
                                        ck_assert_int_eq(chmod(victim, vmodes[(k + v + o) % 4]), 0);
                                        strcpy(it->obj, victim);
                                        strcpy(it->dir, dirs[d]);
                                        /* renames: in place, to an open
                                         * directory, onto an existing file */
                                        if (o == 2 || o == 3) {
                                                strcpy(it->dir2, o == 2 ? dirs[d] : open_dir);
                                                fmt(it->name2, "r%s", name);
                                        } else if (o == 4 || o == 5) {
                                                strcpy(it->dir2, dirs[(d + 1) % n_dirs]);
                                                fmt(it->name2, "t%s", name);
                                                path_at(victim, it->dir2, it->name2);
                                                if (is_dir)
                                                        ck_assert_int_eq(mkdir(victim, 0), 0);
                                                else
                                                        ck_assert_int_eq(mknod(victim, S_IFREG, 0),
                                                                         0);
                                                ck_assert_int_eq(
                                                    lchown(victim, vowners[(v + 1) % 4], 0), 0);
                                        }
                                        /* exchanges with a directory elsewhere,
                                         * whose own write permission counts */
                                        if (o >= 6) {
                                                strcpy(it->dir2, dirs[(d + 3) % n_dirs]);
                                                fmt(it->name2, "x%s", name);
                                                path_at(victim, it->dir2, it->name2);
                                                ck_assert_int_eq(mkdir(victim, 0), 0);
                                                ck_assert_int_eq(
                                                    lchown(victim, vowners[(v + 2) % 4], 2001), 0);
                                                ck_assert_int_eq(
                                                    chmod(victim, vmodes[(k + v + o + 1) % 4]), 0);
                                        }
                                }
                        }
        /* link: protected_hardlinks */
        {
                static const mode_t lmodes[] = {0644, 0666, 04666, 02666, 02676, 0600, 0606, 0};
                char path[P_MAX];
                int fd = open("/proc/sys/fs/protected_hardlinks", O_RDONLY);
                char c = '1';

                if (fd >= 0) {
                        ck_assert_int_eq(read(fd, &c, 1), 1);
                        close(fd);
                }
                for (size_t m = 0; m < sizeof(lmodes) / sizeof(lmodes[0]); m++)
                        for (int t = 0; t < 3; t++) {
                                fmt(name, "l%zu-%d", m, t);
                                mk(path, name, (t == 2 ? S_IFIFO : S_IFREG) | lmodes[m],
                                   t ? 1003 : 1001, t ? 2003 : 2001,
                                   t == 1 ? acls[m % N_ACLS] : NULL, NULL);
                                for (size_t k = 0; k < N_CALLERS && c == '1'; k++)
                                        for (size_t d = 0; d < n_dirs; d += 5) {
                                                Item *it = batch_add(&b, (int)k, OP_LINK);

                                                strcpy(it->obj, path);
                                                strcpy(it->dir2, dirs[d]);
                                                fmt(it->name2, "%s-%zu-%zu", name, k, d);
                                        }
                        }
        }
        batch_run(&b);
        batch_check(&b);
        batch_free(&b);
}
END_TEST

/* chmod: owner only, S_ISGID for group members only, ACLs follow. */
START_TEST(test_chmod)
{
        static const mode_t modes[] = {0755, 02755, 02745, 04755, 06755, 0644, 01755};
        static const mode_t newmodes[] = {0644, 02755, 04711, 07777, 02070, 02745};
        Batch b = {0};
        char path[P_MAX], name[64];

        if (skip_without_root())
                return;
        for (size_t k = 0; k < N_CALLERS; k++)
                for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
                        for (size_t n = 0; n < sizeof(newmodes) / sizeof(newmodes[0]); n++)
                                for (int t = 0; t < 4; t++) {
                                        Item *it;

                                        fmt(name, "c%zu-%zu-%zu-%d", k, m, n, t);
                                        mk(path, name, (t == 1 ? S_IFDIR : S_IFREG) | modes[m],
                                           1001, t == 3 ? 2003 : 2001,
                                           t >= 2 ? acls[(m + n) % N_ACLS] : NULL, NULL);
                                        it = batch_add(&b, (int)k, OP_CHMOD);
                                        strcpy(it->obj, path);
                                        it->arg = (int)newmodes[n];
                                }
        batch_run(&b);
        batch_check(&b);
        batch_free(&b);
}
END_TEST

/* chown: who may give a file away or change its group, and the set-ID
 * bits every chown clears. */
START_TEST(test_chown)
{
        static const mode_t modes[] = {06755, 06745, 02644, 04644, 0755, 02755, 02705, 0644};
        static const struct {
                uid_t uid;
                gid_t gid;
        } ids[] = {{-1, -1},   {1001, -1},   {-1, 2001}, {-1, 2002},  {-1, 2003},
                   {1002, -1}, {1001, 2002}, {0, 0},     {1003, 2003}};
        Batch b = {0};
        char path[P_MAX], name[64];

        if (skip_without_root())
                return;
        for (size_t k = 0; k < N_CALLERS; k++)
                for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
                        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
                                for (int t = 0; t < 3; t++) {
                                        Item *it;

                                        fmt(name, "c%zu-%zu-%zu-%d", k, m, i, t);
                                        mk(path, name, (t == 1 ? S_IFDIR : S_IFREG) | modes[m],
                                           1001, t == 2 ? 2003 : 2001, NULL, NULL);
                                        it = batch_add(&b, (int)k, OP_CHOWN);
                                        strcpy(it->obj, path);
                                        it->uid = ids[i].uid;
                                        it->gid = ids[i].gid;
                                }
        batch_run(&b);
        batch_check(&b);
        batch_free(&b);
}
END_TEST

/* utimensat: explicit times need the owner, "now" needs write permission. */
START_TEST(test_utimens)
{
        static const mode_t modes[] = {0644, 0666, 0600, 0646, 0664, 0444};
        Batch b = {0};
        char objs[16][P_MAX], name[32];
        size_t n_obj = 0;

        if (skip_without_root())
                return;
        for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
                fmt(name, "f%zu", m);
                mk(objs[n_obj++], name, S_IFREG | modes[m], 1001, 2001, NULL, NULL);
        }
        mk(objs[n_obj++], "acl0", S_IFREG | 0640, 1001, 2001, acls[1], NULL);
        mk(objs[n_obj++], "acl1", S_IFREG | 0640, 1001, 2001, acls[5], NULL);
        mk(objs[n_obj++], "dir", S_IFDIR | 0777, 1001, 2001, NULL, NULL);
        for (size_t k = 0; k < N_CALLERS; k++)
                for (size_t i = 0; i < n_obj; i++)
                        for (int v = UT_NULL; v <= UT_OMIT_OMIT; v++) {
                                Item *it = batch_add(&b, (int)k, OP_UTIMENS);

                                strcpy(it->obj, objs[i]);
                                it->arg = v;
                        }
        batch_run(&b);
        batch_check(&b);
        batch_free(&b);
}
END_TEST

/* truncate, ftruncate, write: write permission, and the set-ID bits an
 * unprivileged writer clears. */
START_TEST(test_truncate_write)
{
        static const mode_t modes[] = {0666, 0644, 06777, 02767, 04666, 02646, 06757, 0777};
        Batch b = {0};
        char path[P_MAX], name[64];

        if (skip_without_root())
                return;
        for (size_t k = 0; k < N_CALLERS; k++)
                for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
                        for (int g = 0; g < 2; g++) {
                                static const int ops[] = {OP_TRUNCATE, OP_FTRUNCATE, OP_WRITE,
                                                          OP_OPEN};
                                for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
                                        Item *it;

                                        fmt(name, "t%zu-%zu-%d-%zu", k, m, g, o);
                                        mk(path, name, S_IFREG | modes[m], 1001, g ? 2003 : 2001,
                                           NULL, NULL);
                                        it = batch_add(&b, (int)k, ops[o]);
                                        strcpy(it->obj, path);
                                        it->arg = O_WRONLY | O_TRUNC;
                                        if (ops[o] == OP_FTRUNCATE || ops[o] == OP_WRITE) {
                                                it->fd = open(path, O_WRONLY | O_CLOEXEC);
                                                ck_assert_int_ge(it->fd, 0);
                                        }
                                }
                        }
        mk(path, "dir", S_IFDIR | 0777, 1001, 2001, NULL, NULL);
        mk(path, "fifo", S_IFIFO | 0666, 1001, 2001, NULL, NULL);
        for (size_t k = 0; k < N_CALLERS; k++) {
                Item *it = batch_add(&b, (int)k, OP_TRUNCATE);

                fmt(it->obj, "%s/dir", base);
                it = batch_add(&b, (int)k, OP_TRUNCATE);
                fmt(it->obj, "%s/fifo", base);
        }
        batch_run(&b);
        batch_check(&b);
        batch_free(&b);
}
END_TEST

/* setxattr/removexattr of ACLs: owner only, mode update, S_ISGID, default
 * ACLs on directories only, equivalent ACLs not stored. */
START_TEST(test_acl_set)
{
        static const char *const values[] = {
            "u::rwx,u:1003:r-x,g::r--,m::r-x,o::---",
            "u::rw-,g::r--,o::r--",        /* equivalent: mode only */
            "u::rw-,g::rwx,m::r--,o::---", /* mask alone */
            "u::rwx,g::r-x,g:2003:rwx,m::rwx,o::--x",
            "u::rw-,u:1003:r--,u:1003:rw-,g::r--,m::rw-,o::---", /* duplicate */
            "u::rw-,u:1005:r--,u:1003:rw-,g::r--,m::rw-,o::---", /* unsorted */
            "u::rw-,u:1003:r--,g::r--,o::---",                   /* no mask */
            "g::r--,u::rw-,o::---",                              /* order */
            "u::rw-,g::r--",                                     /* no other */
            "u::rw-,g::r--,o::r--,o::r--",                       /* two others */
            "",                                                  /* no entries */
        };
        static const mode_t modes[] = {0644, 02755, 02745, 04750};
        Batch b = {0};
        char path[P_MAX], name[64];

        if (skip_without_root())
                return;
        for (size_t k = 0; k < N_CALLERS; k++)
                for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
                        for (int t = 0; t < 3; t++) {
                                for (size_t v = 0; v <= sizeof(values) / sizeof(values[0]); v++)
                                        for (int def = 0; def < 2; def++) {
                                                bool rm = v == sizeof(values) / sizeof(values[0]);
                                                Item *it;

                                                fmt(name, "a%zu-%zu-%d-%zu-%d", k, m, t, v, def);
                                                mk(path, name,
                                                   (t == 1 ? S_IFDIR : S_IFREG) | modes[m], 1001,
                                                   t == 2 ? 2003 : 2001, t ? acls[m] : NULL,
                                                   t == 1 && m % 2 ? dacls[m] : NULL);
                                                it = batch_add(&b, (int)k,
                                                               rm ? OP_RMACL : OP_SETACL);
                                                strcpy(it->obj, path);
                                                it->arg = def;
                                                if (!rm)
                                                        it->n_raw = acl_from_text(
                                                            values[v], it->raw, sizeof(it->raw));
                                        }
                        }
        batch_run(&b);
        batch_check(&b);
        batch_free(&b);
}
END_TEST

/* Random and mutated ACL values set by root: the kernel's verdict (errno,
 * stored value, mode) is perm_acl_set()'s, and whatever perm_acl_valid()
 * accepts, the other functions evaluate without error. */
START_TEST(test_acl_fuzz_kernel)
{
        unsigned seed = 12345;
        char path[P_MAX], dir[P_MAX];
        CoreCred root = cred_of(&callers[0]);

        if (skip_without_root())
                return;
        mk(path, "f", S_IFREG | 02754, 1001, 2003, NULL, NULL);
        mk(dir, "d", S_IFDIR | 0755, 1001, 2001, NULL, NULL);
        for (int i = 0; i < 3000; i++) {
                char blob[ACL_MAX], out[ACL_MAX], got[ACL_MAX];
                const char *target = i % 2 ? dir : path;
                bool def = i % 4 == 1;
                size_t n = acl_from_text(acls[rand_r(&seed) % N_ACLS], blob, sizeof(blob));
                int n_mut = 1 + rand_r(&seed) % 3;
                struct stat st, after;
                mode_t mode;
                size_t n_out;
                ssize_t n_got;
                int r, err;

                for (int j = 0; j < n_mut; j++) {
                        size_t at = rand_r(&seed) % n;

                        if (n <= 4) /* no entries left to change */
                                break;

                        switch (rand_r(&seed) % 6) {
                        case 0: /* a random byte */
                                blob[at] = (char)rand_r(&seed);
                                break;
                        case 1: /* a tag */
                                blob[4 + (at / 8) * 8 % (n - 4)] = (char)(1 << rand_r(&seed) % 7);
                                break;
                        case 2: /* a perm */
                                blob[6 + (at / 8) * 8 % (n - 4)] = (char)(rand_r(&seed) % 9);
                                break;
                        case 3: /* a cut */
                                n = at;
                                break;
                        case 4: /* swap two entries */
                                if (n >= 20) {
                                        size_t e1 = (rand_r(&seed) % ((n - 4) / 8)) * 8 + 4;
                                        size_t e2 = (rand_r(&seed) % ((n - 4) / 8)) * 8 + 4;
                                        char tmp[8];

                                        memcpy(tmp, blob + e1, 8);
                                        memcpy(blob + e1, blob + e2, 8);
                                        memcpy(blob + e2, tmp, 8);
                                }
                                break;
                        case 5: /* duplicate an entry */
                                if (n >= 12 && n + 8 <= sizeof(blob)) {
                                        size_t e = (rand_r(&seed) % ((n - 4) / 8)) * 8 + 4;

                                        memmove(blob + e + 8, blob + e, n - e);
                                        n += 8;
                                }
                                break;
                        }
                        if (n < 4 || n % 8 != 4)
                                break;
                }
                ck_assert_int_eq(lstat(target, &st), 0);
                r = perm_acl_set(&st, def, blob, n, &root, &mode, out, &n_out);
                err = lsetxattr(target, def ? XA_DEFAULT : XA_ACCESS, blob, n, 0) < 0 ? errno : 0;
                ck_assert_msg(-r == err, "blob %d (%zu bytes): perm %d, kernel %d", i, n, r, err);
                ck_assert_int_eq(lstat(target, &after), 0);
                n_got = lgetxattr(target, def ? XA_DEFAULT : XA_ACCESS, got, sizeof(got));
                if (r == 0) {
                        ck_assert_int_eq(mode, after.st_mode);
                        ck_assert_int_eq(n_got < 0 ? 0 : n_got, n_out);
                        ck_assert(n_out == 0 || memcmp(out, got, n_out) == 0);
                        r = perm_acl_valid(blob, n);
                        ck_assert_int_ge(r, 0);
                }
                /* back to no ACLs and the first mode */
                lremovexattr(target, XA_ACCESS);
                lremovexattr(target, XA_DEFAULT);
                ck_assert_int_eq(chmod(target, i % 2 ? 0755 : 02754), 0);
        }
}
END_TEST

/* ---- hostile input, no kernel needed ---- */

/* Every function on random blobs in exact-size heap buffers (so ASan sees
 * any read past the end): no crash, and -EINVAL exactly when
 * perm_acl_valid() rejects. */
START_TEST(test_acl_hostile)
{
        unsigned seed = 777;
        const Caller *k = &callers[5];
        CoreCred c = cred_of(k);
        struct stat st = {.st_mode = S_IFREG | 0754, .st_uid = 1001, .st_gid = 2001};
        struct stat dir = {.st_mode = S_IFDIR | 02775, .st_uid = 1001, .st_gid = 2001};

        for (int i = 0; i < 20000; i++) {
                size_t n = rand_r(&seed) % 80;
                unsigned char *blob;
                char out[128], out2[128];
                size_t n_out, n_out2;
                mode_t mode = S_IFREG | 0666;
                LsCred owner;
                int valid, r;

                if (i % 3 == 0) {
                        n = acl_from_text(acls[rand_r(&seed) % N_ACLS], out, sizeof(out));
                        blob = malloc(n ? n : 1);
                        memcpy(blob, out, n);
                        for (int j = rand_r(&seed) % 3; j > 0; j--)
                                blob[rand_r(&seed) % n] ^= (unsigned char)(1 << rand_r(&seed) % 8);
                        if (rand_r(&seed) % 4 == 0)
                                n -= rand_r(&seed) % n;
                } else {
                        blob = malloc(n ? n : 1);
                        for (size_t j = 0; j < n; j++)
                                blob[j] = (unsigned char)rand_r(&seed);
                        if (n >= 4)
                                memcpy(blob, "\x02\0\0\0", 4);
                }
                valid = perm_acl_valid(blob, n);
                ck_assert(valid >= 0 || valid == -EINVAL || valid == -EOPNOTSUPP);
                ck_assert(valid != 0 || n == 4 || n == 0);
                r = perm_check(&st, blob, n, &c, R_OK);
                ck_assert(valid < 0 ? r == -EINVAL : (r == 0 || r == -EACCES));
                r = perm_new_entry(&dir, blob, n, &c, &mode, &owner, out, &n_out, out2, &n_out2);
                ck_assert_int_eq(r, valid < 0 ? -EINVAL : 0);
                ck_assert(n_out <= n && n_out2 <= n);
                r = perm_acl_chmod(blob, n, 0750, out, sizeof(out));
                ck_assert_int_eq(r, valid < 0 ? -EINVAL : valid == 0 ? 0 : (int)n);
                if (valid > 0) {
                        /* the chmod result is valid and says the mode */
                        ck_assert_int_eq(perm_acl_valid(out, (size_t)r), valid);
                        ck_assert_int_eq(perm_acl_chmod(blob, n, 0750, out, n - 1), -ERANGE);
                }
                free(blob);
        }
        /* NULL and empty are no ACL */
        ck_assert_int_eq(perm_acl_valid(NULL, 0), 0);
        ck_assert_int_eq(perm_acl_valid("\x02\0\0\0", 4), 0);
        ck_assert_int_eq(perm_acl_valid("\x02\0\0", 3), -EINVAL);
        ck_assert_int_eq(perm_acl_valid("\x01\0\0\0", 4), -EOPNOTSUPP);
        ck_assert_int_eq(perm_check(&st, "\x02\0\0\0", 4, &c, R_OK), 0);
}
END_TEST

/* Hand-picked answers, so the rules are checked without root too. */
START_TEST(test_rules)
{
        CoreCred other = cred_of(&callers[5]), root = cred_of(&callers[0]);
        CoreCred owner = cred_of(&callers[1]), named = cred_of(&callers[6]);
        struct stat f = {.st_mode = S_IFREG | 0640, .st_uid = 1001, .st_gid = 2001};
        struct stat d = {.st_mode = S_IFDIR | 01777, .st_uid = 0, .st_gid = 0};
        char acl[ACL_MAX], out[ACL_MAX], dacl[ACL_MAX];
        size_t n = acl_from_text("u::rw-,u:1003:rw-,g::r--,m::r--,o::---", acl, sizeof(acl));
        size_t n_out, n_dacl;
        LsSetattr sa = {0};
        LsCred who;
        mode_t mode;

        ck_assert_int_eq(perm_check(&f, NULL, 0, &other, R_OK), -EACCES);
        ck_assert_int_eq(perm_check(&f, NULL, 0, &owner, R_OK | W_OK), 0);
        ck_assert_int_eq(perm_check(&f, NULL, 0, &root, R_OK | W_OK), 0);
        ck_assert_int_eq(perm_check(&f, NULL, 0, &root, X_OK), -EACCES);
        /* the named user gets r, masked: no w */
        ck_assert_int_eq(perm_check(&f, acl, n, &named, R_OK), 0);
        ck_assert_int_eq(perm_check(&f, acl, n, &named, W_OK), -EACCES);
        /* sticky: only the owners or root */
        ck_assert_int_eq(perm_may_delete(&d, NULL, 0, &f, &other), -EPERM);
        ck_assert_int_eq(perm_may_delete(&d, NULL, 0, &f, &owner), 0);
        ck_assert_int_eq(perm_may_delete(&d, NULL, 0, &f, &root), 0);
        /* chmod by a non-owner; S_ISGID dropped for a non-member */
        sa.valid = LS_SET_MODE;
        sa.mode = 02755;
        ck_assert_int_eq(perm_setattr(&f, NULL, 0, &other, &sa, 0), -EPERM);
        owner.gid = 2002;
        ck_assert_int_eq(perm_setattr(&f, NULL, 0, &owner, &sa, 0), 0);
        ck_assert_int_eq(sa.mode, 0755);
        /* a new directory in a set-group-ID directory */
        d.st_mode = S_IFDIR | 02775;
        d.st_gid = 2003;
        mode = S_IFDIR | 0777;
        ck_assert_int_eq(
            perm_new_entry(&d, NULL, 0, &other, &mode, &who, out, &n_out, dacl, &n_dacl), 0);
        ck_assert_int_eq(mode, S_IFDIR | 02755);
        ck_assert_int_eq(who.uid, 1002);
        ck_assert_int_eq(who.gid, 2003);
        ck_assert_int_eq(n_out + n_dacl, 0);
        /* chmod rewrites the mask */
        ck_assert_int_eq(perm_acl_chmod(acl, n, 0670, out, sizeof(out)), (int)n);
        ck_assert_int_eq(perm_check(&f, out, n, &named, W_OK), 0);
}
END_TEST

static Suite *perm_suite(void)
{
        Suite *s = suite_create("perm");
        struct {
                const char *name;
                const TTest *test;
        } cases[] = {
            {"access", test_access},
            {"open", test_open},
            {"create", test_create},
            {"delete", test_delete},
            {"chmod", test_chmod},
            {"chown", test_chown},
            {"utimens", test_utimens},
            {"truncate_write", test_truncate_write},
            {"acl_set", test_acl_set},
            {"acl_fuzz_kernel", test_acl_fuzz_kernel},
            {"acl_hostile", test_acl_hostile},
            {"rules", test_rules},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                TCase *tc = tcase_create(cases[i].name);

                tcase_add_unchecked_fixture(tc, make_base, remove_base);
                tcase_add_checked_fixture(tc, setup, NULL);
                tcase_set_timeout(tc, 60);
                tcase_add_test(tc, cases[i].test);
                suite_add_tcase(s, tc);
        }
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(perm_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
