/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests: the core (libdanaus/core/) over a real `local` instance in a
 * temporary directory. Node identity and lifetime with two fronts, the
 * path walk (deep trees far beyond PATH_MAX, symlinks, ELOOP, negative
 * entries), notifications between fronts, listing generations with two
 * readers, io files of unlinked files, the write-back mtime, new-entry
 * rules, permission checks, and threads racing lookups, forgets and
 * unlinks (run it under ASan).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdio.h> /* renameat2 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "libservice/local.h"

static char base[PATH_MAX];
static LsInstance *inst;
static LsNode *rootls;
static Core *core;
static CoreNode *root;

/* What a front was told. */
#define MAX_EVENTS 256
typedef struct Event {
        char kind; /* 'i' inode, 'e' entry, 'd' delete */
        CoreNode *node, *child;
        off_t off, len;
        char name[NAME_MAX + 1];
} Event;

typedef struct Rec {
        pthread_mutex_t lock;
        Event ev[MAX_EVENTS];
        int n;
} Rec;

static void rec_add(Rec *r, Event e)
{
        pthread_mutex_lock(&r->lock);
        if (r->n < MAX_EVENTS)
                r->ev[r->n++] = e;
        pthread_mutex_unlock(&r->lock);
}

static void on_inode(void *ctx, CoreNode *node, off_t off, off_t len)
{
        rec_add(ctx, (Event){.kind = 'i', .node = node, .off = off, .len = len});
}

static void on_entry(void *ctx, CoreNode *dir, const char *name)
{
        Event e = {.kind = 'e', .node = dir};

        snprintf(e.name, sizeof(e.name), "%s", name);
        rec_add(ctx, e);
}

static void on_delete(void *ctx, CoreNode *dir, CoreNode *child, const char *name)
{
        Event e = {.kind = 'd', .node = dir, .child = child};

        snprintf(e.name, sizeof(e.name), "%s", name);
        rec_add(ctx, e);
}

static const CoreFrontOps rec_ops = {
    .inval_inode = on_inode,
    .inval_entry = on_entry,
    .delete_entry = on_delete,
};

/* Whether r holds an event of kind on node (name: NULL for any). */
static bool rec_has(Rec *r, char kind, CoreNode *node, const char *name)
{
        bool found = false;

        pthread_mutex_lock(&r->lock);
        for (int i = 0; i < r->n && !found; i++)
                found = r->ev[i].kind == kind && r->ev[i].node == node &&
                        (!name || strcmp(r->ev[i].name, name) == 0);
        pthread_mutex_unlock(&r->lock);
        return found;
}

static void rec_clear(Rec *r)
{
        pthread_mutex_lock(&r->lock);
        r->n = 0;
        pthread_mutex_unlock(&r->lock);
}

static const CoreCred root_cred = {.uid = 0, .gid = 0, .umask = 022, .privileged = true};

static void setup(void)
{
        snprintf(base, sizeof(base), "/tmp/danaus-unit-core.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(base));
        ck_assert_int_eq(chmod(base, 0755), 0);
        ck_assert_int_eq(local_new(base, false, &inst), 0);
        ck_assert_int_eq(inst->ops->root(inst, &rootls), 0);
        ck_assert_int_eq(core_new(NULL, &core), 0);
        ck_assert_int_eq(core_node_get(core, rootls, &root), 0);
}

static void teardown(void)
{
        char cmd[PATH_MAX + 32];

        root = core_node_unref(root);
        /* every front is gone and every reference dropped: nothing left */
        ck_assert_uint_eq(core_n_nodes(core), 0);
        ck_assert_uint_eq(core_n_io_files(core), 0);
        core = core_unref(core);
        rootls = ls_node_unref(rootls);
        inst = ls_instance_unref(inst);
        /* base always comes from mkdtemp(): never empty */
        ck_assert(strstr(base, "/danaus-unit-core.") != NULL);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        ck_assert_int_eq(system(cmd), 0);
}

static void host_path(char *buf, const char *rel)
{
        int n = snprintf(buf, PATH_MAX, "%s/%s", base, rel);

        ck_assert(n > 0 && n < PATH_MAX);
}

static void host_write(const char *rel, const char *text)
{
        char p[PATH_MAX];
        int fd;

        host_path(p, rel);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static CoreFront *front_new(Rec *rec, unsigned flags)
{
        CoreFront *f;

        if (rec)
                pthread_mutex_init(&rec->lock, NULL);
        ck_assert_int_eq(core_front_new(core, rec ? &rec_ops : NULL, rec, flags, &f), 0);
        return f;
}

/* A walk from the root, internal reference. */
static int walk(CoreFront *f, const char *path, unsigned flags, CoreNode **np)
{
        return core_walk(f, &root_cred, root, root, path, flags, np, NULL, NULL);
}

START_TEST(test_node_identity)
{
        Rec ra = {0}, rb = {0};
        CoreFront *a = front_new(&ra, 0), *b = front_new(&rb, 0);
        CoreNode *n1, *n2, *n3;
        struct stat st;
        char p[PATH_MAX], q[PATH_MAX];
        size_t before;

        host_write("f", "data");
        host_path(p, "f");
        host_path(q, "hard");
        ck_assert_int_eq(link(p, q), 0);
        before = core_n_nodes(core);
        ck_assert_int_eq(core_lookup(a, NULL, root, "f", &n1, &st), 0);
        ck_assert_int_eq(core_lookup(b, NULL, root, "f", &n2, NULL), 0);
        ck_assert_int_eq(core_lookup(a, NULL, root, "hard", &n3, NULL), 0);
        /* one object, one node: for both fronts, for both names */
        ck_assert_ptr_eq(n1, n2);
        ck_assert_ptr_eq(n1, n3);
        ck_assert_uint_eq(core_n_nodes(core), before + 1);
        ck_assert_uint_eq(core_front_count(a, n1), 2);
        ck_assert_uint_eq(core_front_count(b, n1), 1);
        ck_assert(S_ISREG(core_node_type(n1)));
        ck_assert_uint_ne(core_node_id(n1), core_node_id(root));
        /* A forgets all: B keeps it */
        core_forget(a, n1, 2);
        ck_assert_uint_eq(core_front_count(a, n1), 0);
        ck_assert_uint_eq(core_n_nodes(core), before + 1);
        /* more than held: all of them; then nothing holds it: freed */
        core_forget(b, n1, 5);
        ck_assert_uint_eq(core_n_nodes(core), before);
        /* a new lookup makes a new node with a new id */
        ck_assert_int_eq(core_lookup(a, NULL, root, "f", &n1, NULL), 0);
        ck_assert_uint_eq(core_n_nodes(core), before + 1);
        /* names checked here */
        ck_assert_int_eq(core_lookup(a, NULL, root, "..", &n2, NULL), -EINVAL);
        ck_assert_int_eq(core_lookup(a, NULL, root, "a/b", &n2, NULL), -EINVAL);
        memset(p, 'x', NAME_MAX + 1);
        p[NAME_MAX + 1] = '\0';
        ck_assert_int_eq(core_lookup(a, NULL, root, p, &n2, NULL), -ENAMETOOLONG);
        /* a front that goes drops what it held */
        core_front_free(a);
        ck_assert_uint_eq(core_n_nodes(core), before);
        core_front_free(b);
}
END_TEST

START_TEST(test_reused_number_new_node)
{
        CoreFront *a = front_new(NULL, 0);
        CoreNode *n1, *n2;
        struct stat st1, st2;
        char p[PATH_MAX];
        int tries;

        /* the kernel's number of an unlinked file comes back for the next
         * file soon: the node held for the old one must not be taken for it */
        host_write("f", "old");
        ck_assert_int_eq(core_lookup(a, NULL, root, "f", &n1, &st1), 0);
        for (tries = 0; tries < 100; tries++) {
                host_path(p, "f");
                ck_assert_int_eq(unlink(p), 0);
                host_write("f", "new");
                ck_assert_int_eq(core_lookup(a, NULL, root, "f", &n2, &st2), 0);
                ck_assert_ptr_ne(n1, n2);
                if (st2.st_ino == st1.st_ino)
                        break;
                core_forget(a, n2, 1);
        }
        core_front_free(a);
}
END_TEST

/* Builds a chain of depth directories of long names below dir (internal
 * references dropped), returns the deepest (one front reference). */
static CoreNode *make_deep(CoreFront *f, CoreNode *dir, int depth, const char *name)
{
        CoreNode *cur = core_node_ref(dir), *next;

        for (int i = 0; i < depth; i++) {
                ck_assert_int_eq(core_mkdir(f, &root_cred, cur, name, 0755, &next, NULL), 0);
                if (cur != dir)
                        core_forget(f, cur, 1);
                core_node_unref(cur);
                cur = core_node_ref(next);
        }
        core_node_unref(cur);
        return cur;
}

START_TEST(test_walk_deep)
{
        CoreFront *f = front_new(NULL, 0);
        char name[201], *path;
        CoreNode *deep, *n, *m, *file;
        size_t plen;
        struct stat st;
        int depth = 100, chunk = 10, i;

        /* 100 x 201 bytes: 20 KB deep, five times PATH_MAX */
        memset(name, 'd', 200);
        name[200] = '\0';
        deep = make_deep(f, root, depth, name);
        ck_assert_int_eq(
            core_create(f, &root_cred, deep, "leaf", O_RDWR, 0644, &file, NULL, NULL, NULL), 0);
        /* down again by walks of 10 names each (a path under PATH_MAX), each
         * from where the last ended */
        path = malloc(PATH_MAX);
        plen = 0;
        for (i = 0; i < chunk; i++) {
                memcpy(path + plen, name, 200);
                plen += 200;
                path[plen++] = '/';
        }
        path[plen - 1] = '\0';
        n = core_node_ref(root);
        for (i = 0; i < depth / chunk; i++) {
                ck_assert_int_eq(core_walk(f, &root_cred, root, n, path, 0, &m, NULL, &st), 0);
                ck_assert(S_ISDIR(st.st_mode));
                core_node_unref(n);
                n = m;
        }
        ck_assert_ptr_eq(n, deep);
        ck_assert_int_eq(core_walk(f, &root_cred, root, n, "leaf", 0, &m, NULL, NULL), 0);
        ck_assert_ptr_eq(m, file);
        core_node_unref(m);
        /* and back up by "..": through the parents, no path */
        strcpy(path, "..");
        for (i = 1; i < depth; i++)
                strcat(path, "/..");
        ck_assert_int_eq(core_walk(f, &root_cred, root, n, path, 0, &m, NULL, NULL), 0);
        ck_assert_ptr_eq(m, root);
        core_node_unref(m);
        /* ".." above the root stays there; without a root: leaves the core */
        ck_assert_int_eq(core_walk(f, &root_cred, root, root, "../..", 0, &m, NULL, NULL), 0);
        ck_assert_ptr_eq(m, root);
        core_node_unref(m);
        ck_assert_int_eq(core_walk(f, &root_cred, NULL, root, "..", 0, &m, NULL, NULL), -EXDEV);
        ck_assert_int_eq(core_walk(f, &root_cred, NULL, root, "/x", 0, &m, NULL, NULL), -EXDEV);
        core_node_unref(n);
        free(path);
        core_front_free(f);
}
END_TEST

START_TEST(test_walk_symlinks)
{
        CoreFront *f = front_new(NULL, 0);
        CoreNode *n, *m, *d;
        char last[NAME_MAX + 1], p[PATH_MAX], t[32];
        struct stat st;
        int i;

        host_path(p, "dir");
        ck_assert_int_eq(mkdir(p, 0755), 0);
        host_path(p, "dir/sub");
        ck_assert_int_eq(mkdir(p, 0755), 0);
        host_write("dir/sub/file", "x");
        host_path(p, "rel");
        ck_assert_int_eq(symlink("dir/sub", p), 0);
        host_path(p, "abs");
        ck_assert_int_eq(symlink("/dir/sub/file", p), 0);
        host_path(p, "dir/up");
        ck_assert_int_eq(symlink("../dir/sub/", p), 0);
        host_path(p, "loop1");
        ck_assert_int_eq(symlink("loop2", p), 0);
        host_path(p, "loop2");
        ck_assert_int_eq(symlink("loop1/x", p), 0);
        host_path(p, "dangling");
        ck_assert_int_eq(symlink("dir/newfile", p), 0);

        ck_assert_int_eq(walk(f, "dir/sub/file", 0, &d), 0);
        /* relative link in the middle */
        ck_assert_int_eq(walk(f, "rel/file", 0, &n), 0);
        ck_assert_ptr_eq(n, d);
        core_node_unref(n);
        /* a link to a link with "..", and a trailing '/' in the target */
        ck_assert_int_eq(walk(f, "dir/up/file", 0, &n), 0);
        ck_assert_ptr_eq(n, d);
        core_node_unref(n);
        /* absolute target: from the walk's root */
        ck_assert_int_eq(walk(f, "abs", CORE_WALK_FOLLOW, &n), 0);
        ck_assert_ptr_eq(n, d);
        core_node_unref(n);
        /* the last component is not followed without FOLLOW */
        ck_assert_int_eq(core_walk(f, &root_cred, root, root, "abs", 0, &n, NULL, &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        core_node_unref(n);
        /* a trailing slash follows and wants a directory */
        ck_assert_int_eq(core_walk(f, &root_cred, root, root, "rel/", 0, &n, NULL, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        core_node_unref(n);
        ck_assert_int_eq(walk(f, "dir/sub/file/", 0, &n), -ENOTDIR);
        ck_assert_int_eq(walk(f, "dir/sub/file/x", 0, &n), -ENOTDIR);
        ck_assert_int_eq(walk(f, "abs/", 0, &n), -ENOTDIR);
        ck_assert_int_eq(walk(f, "rel", CORE_WALK_DIRECTORY, &n), -ENOTDIR);
        ck_assert_int_eq(walk(f, "rel", CORE_WALK_DIRECTORY | CORE_WALK_FOLLOW, &n), 0);
        core_node_unref(n);
        /* loops */
        ck_assert_int_eq(walk(f, "loop1", CORE_WALK_FOLLOW, &n), -ELOOP);
        ck_assert_int_eq(walk(f, "loop1/a", 0, &n), -ELOOP);
        /* 40 links in a row are followed, 41 are not */
        for (i = 1; i <= 41; i++) {
                char target[32];

                snprintf(t, sizeof(t), "c%d", i);
                snprintf(target, sizeof(target), i == 1 ? "dir/sub/file" : "c%d", i - 1);
                host_path(p, t);
                ck_assert_int_eq(symlink(target, p), 0);
        }
        ck_assert_int_eq(walk(f, "c40", CORE_WALK_FOLLOW, &n), 0);
        ck_assert_ptr_eq(n, d);
        core_node_unref(n);
        ck_assert_int_eq(walk(f, "c41", CORE_WALK_FOLLOW, &n), -ELOOP);
        /* parent mode: the last name, not looked up */
        ck_assert_int_eq(core_walk(f, &root_cred, root, root, "dir/sub/nothing", CORE_WALK_PARENT,
                                   &n, last, NULL),
                         0);
        ck_assert_str_eq(last, "nothing");
        core_node_unref(n);
        /* O_CREAT's walk: a dangling link leads to the name to create */
        ck_assert_int_eq(core_walk(f, &root_cred, root, root, "dangling",
                                   CORE_WALK_PARENT | CORE_WALK_FOLLOW, &n, last, NULL),
                         0);
        ck_assert_str_eq(last, "newfile");
        ck_assert_int_eq(walk(f, "dir", 0, &m), 0);
        ck_assert_ptr_eq(n, m);
        core_node_unref(m);
        core_node_unref(n);
        ck_assert_int_eq(
            core_walk(f, &root_cred, root, root, "dir/..", CORE_WALK_PARENT, &n, last, NULL),
            -EINVAL);
        ck_assert_int_eq(walk(f, "", 0, &n), -ENOENT);
        ck_assert_int_eq(walk(f, "/", 0, &n), 0);
        ck_assert_ptr_eq(n, root);
        core_node_unref(n);
        ck_assert_int_eq(walk(f, "./dir/./sub//file", 0, &n), 0);
        ck_assert_ptr_eq(n, d);
        core_node_unref(n);
        core_node_unref(d);
        core_front_free(f);
}
END_TEST

START_TEST(test_negative_entries)
{
        CoreFront *f = front_new(NULL, 0);
        CoreNode *n, *c;
        CoreFile *file;
        char p[PATH_MAX];
        bool created;

        ck_assert_int_eq(walk(f, "n1", 0, &n), -ENOENT);
        ck_assert_int_eq(walk(f, "n2", 0, &n), -ENOENT);
        /* made behind the core's back: the negative entry still answers,
         * which shows it is used */
        host_write("n2", "behind");
        ck_assert_int_eq(walk(f, "n2", 0, &n), -ENOENT);
        /* a create through the core forgets them all */
        ck_assert_int_eq(
            core_create(f, &root_cred, root, "n1", O_RDWR, 0644, &c, NULL, &file, &created), 0);
        ck_assert(created);
        core_file_unref(file);
        ck_assert_int_eq(walk(f, "n1", 0, &n), 0);
        ck_assert_ptr_eq(n, c);
        core_node_unref(n);
        ck_assert_int_eq(walk(f, "n2", 0, &n), 0);
        core_node_unref(n);
        core_forget(f, c, 1);
        /* unlink leaves the name known absent */
        ck_assert_int_eq(core_unlink(f, NULL, root, "n1"), 0);
        host_write("n1", "behind");
        ck_assert_int_eq(walk(f, "n1", 0, &n), -ENOENT);
        /* a create on a stale negative entry finds the file */
        ck_assert_int_eq(
            core_create(f, &root_cred, root, "n1", O_RDWR, 0644, &c, NULL, &file, &created), 0);
        ck_assert(!created);
        core_file_unref(file);
        core_forget(f, c, 1);
        /* backend notifications forget them too */
        ck_assert_int_eq(walk(f, "n3", 0, &n), -ENOENT);
        host_path(p, "n3");
        ck_assert_int_eq(mkdir(p, 0755), 0);
        core_notify_inval_entry(core, rootls, "n3");
        ck_assert_int_eq(walk(f, "n3", 0, &n), 0);
        core_node_unref(n);
        core_front_free(f);
}
END_TEST

START_TEST(test_notifications)
{
        Rec ra = {0}, rb = {0}, rc = {0};
        CoreFront *a = front_new(&ra, 0), *b = front_new(&rb, 0), *c = front_new(&rc, 0);
        CoreNode *fa, *fb, *d;
        CoreFile *file;
        LsSetattr sa = {.valid = LS_SET_MODE, .mode = 0600};

        /* B and A hold the root; C holds nothing */
        ck_assert_int_eq(core_front_hold(a, root, 1), 0);
        ck_assert_int_eq(core_front_hold(b, root, 1), 0);
        ck_assert_int_eq(
            core_create(a, &root_cred, root, "f", O_RDWR, 0644, &fa, NULL, &file, NULL), 0);
        ck_assert(rec_has(&rb, 'e', root, "f"));
        ck_assert_int_eq(ra.n, 0); /* never the front the change came through */
        ck_assert_int_eq(rc.n, 0); /* never a front that holds nothing */
        ck_assert_int_eq(core_lookup(b, NULL, root, "f", &fb, NULL), 0);
        ck_assert_ptr_eq(fa, fb);
        rec_clear(&rb);
        /* a write through A: B's pages of that range */
        ck_assert_int_eq(core_write(a, NULL, file, "hello", 5, 10, 0, 0), 5);
        ck_assert(rec_has(&rb, 'i', fa, NULL));
        ck_assert_int_eq(rb.ev[0].off, 10);
        ck_assert_int_eq(rb.ev[0].len, 5);
        ck_assert_int_eq(ra.n, 0);
        rec_clear(&rb);
        /* attributes only */
        ck_assert_int_eq(core_setattr(a, &root_cred, fa, &sa, 0, NULL), 0);
        ck_assert(rec_has(&rb, 'i', fa, NULL));
        ck_assert_int_eq(rb.ev[0].off, -1);
        rec_clear(&rb);
        /* a change through B goes to A */
        ck_assert_int_eq(core_setxattr(b, &root_cred, fb, "user.x", "1", 1, 0), 0);
        ck_assert(rec_has(&ra, 'i', fa, NULL));
        ck_assert_int_eq(rb.n, 0);
        rec_clear(&ra);
        /* unlink through A: B holds the dir and the child: delete */
        ck_assert_int_eq(core_unlink(a, NULL, root, "f"), 0);
        ck_assert(rec_has(&rb, 'd', root, "f"));
        ck_assert_ptr_eq(rb.ev[0].child, fa);
        ck_assert_int_eq(ra.n, 0);
        rec_clear(&rb);
        /* mkdir, rename: entries of both directories */
        ck_assert_int_eq(core_mkdir(a, &root_cred, root, "d", 0755, &d, NULL), 0);
        ck_assert(rec_has(&rb, 'e', root, "d"));
        ck_assert_int_eq(core_symlink(a, &root_cred, root, "s", "d", NULL, NULL), 0);
        ck_assert(rec_has(&rb, 'e', root, "s"));
        ck_assert_int_eq(core_front_hold(b, d, 1), 0);
        rec_clear(&rb);
        ck_assert_int_eq(core_rename(a, NULL, root, "s", d, "s2", 0), 0);
        ck_assert(rec_has(&rb, 'e', root, "s"));
        ck_assert(rec_has(&rb, 'e', d, "s2"));
        ck_assert_int_eq(ra.n, 0);
        rec_clear(&rb);
        /* the backend's changes go to every front holding the node */
        core_notify_inval_inode(core, core_node_ls(d), -1, 0);
        ck_assert(rec_has(&ra, 'i', d, NULL));
        ck_assert(rec_has(&rb, 'i', d, NULL));
        ck_assert_int_eq(rc.n, 0);
        /* the write still reaches the unlinked file through its handle */
        ck_assert_int_eq(core_write(a, NULL, file, "X", 1, 0, 0, 0), 1);
        core_file_unref(file);
        core_front_free(a);
        core_front_free(b);
        core_front_free(c);
}
END_TEST

START_TEST(test_listing_generations)
{
        CoreFront *f = front_new(NULL, 0);
        CoreDirSnap *s1, *s2, *s3;
        CoreNode *dir, *n;
        char name[32], seen[200] = {0};
        uint32_t g1;
        size_t i;
        int k;

        ck_assert_int_eq(core_mkdir(f, &root_cred, root, "dir", 0755, &dir, NULL), 0);
        for (k = 0; k < 100; k++) {
                snprintf(name, sizeof(name), "e%d", k);
                ck_assert_int_eq(
                    core_mknod(f, &root_cred, dir, name, S_IFREG | 0644, 0, NULL, NULL), 0);
        }
        /* reader 1 reads 30 entries */
        ck_assert_int_eq(core_dir_snap(f, NULL, dir, 0, &s1), 0);
        g1 = core_dir_snap_gen(s1);
        ck_assert_uint_ne(g1, 0);
        ck_assert_uint_lt(g1, 1U << 31);
        ck_assert_uint_eq(core_dir_snap_count(s1), 100);
        core_dir_snap_unref(s1); /* it goes on by offset only, as FUSE */
        /* a second reader at the start of the unchanged directory: the same
         * listing */
        ck_assert_int_eq(core_dir_snap(f, NULL, dir, 0, &s2), 0);
        ck_assert_uint_eq(core_dir_snap_gen(s2), g1);
        core_dir_snap_unref(s2);
        /* the directory changes; a second reader starts: a new listing */
        ck_assert_int_eq(core_unlink(f, NULL, dir, "e99"), 0);
        ck_assert_int_eq(core_mknod(f, &root_cred, dir, "late", S_IFREG | 0644, 0, NULL, NULL), 0);
        ck_assert_int_eq(core_dir_snap(f, NULL, dir, 0, &s2), 0);
        ck_assert_uint_ne(core_dir_snap_gen(s2), g1);
        ck_assert_uint_eq(core_dir_snap_count(s2), 100);
        /* reader 1 goes on in its own: all 100 original entries, once */
        ck_assert_int_eq(core_dir_snap(f, NULL, dir, g1, &s1), 0);
        ck_assert_uint_eq(core_dir_snap_gen(s1), g1);
        for (i = 0; i < core_dir_snap_count(s1); i++) {
                const char *e = core_dir_snap_entry(s1, i, NULL, NULL);

                ck_assert(e[0] == 'e');
                k = atoi(e + 1);
                ck_assert_int_eq(seen[k]++, 0);
        }
        for (k = 0; k < 100; k++)
                ck_assert_int_eq(seen[k], 1);
        /* seekdir back to a telldir position: the same listing again */
        ck_assert_int_eq(core_dir_snap(f, NULL, dir, g1, &s3), 0);
        ck_assert_ptr_eq(s3, s1);
        core_dir_snap_unref(s3);
        ck_assert_uint_eq(core_dir_snap_stat(s1)->st_ino, core_dir_snap_stat(s2)->st_ino);
        core_dir_snap_unref(s2);
        /* a held snapshot outlives the directory keeping it */
        for (k = 0; k < 10; k++) {
                snprintf(name, sizeof(name), "x%d", k);
                ck_assert_int_eq(
                    core_mknod(f, &root_cred, dir, name, S_IFREG | 0644, 0, NULL, NULL), 0);
                ck_assert_int_eq(core_dir_snap(f, NULL, dir, 0, &s2), 0);
                core_dir_snap_unref(s2);
        }
        ck_assert_int_eq(core_dir_snap(f, NULL, dir, g1, &s3), -ESTALE);
        ck_assert_uint_eq(core_dir_snap_count(s1), 100);
        core_dir_snap_unref(s1);
        /* a change behind the core's back (mtime moves) is seen at the start */
        host_write("dir/behind", "x");
        ck_assert_int_eq(core_dir_snap(f, NULL, dir, 0, &s2), 0);
        ck_assert_uint_eq(core_dir_snap_count(s2), 111);
        core_dir_snap_unref(s2);
        ck_assert_int_eq(core_lookup(f, NULL, dir, "behind", &n, NULL), 0);
        core_front_free(f);
}
END_TEST

START_TEST(test_io_files)
{
        CoreFront *f = front_new(NULL, 0), *ro;
        CoreFile *io, *io2, *c;
        CoreNode *n;
        char buf[16] = "";
        struct stat st;

        ck_assert_int_eq(core_create(f, &root_cred, root, "f", O_RDWR, 0644, &n, NULL, &c, NULL),
                         0);
        core_io_offer(n, c);
        core_file_unref(c);
        ck_assert_uint_eq(core_n_io_files(core), 1);
        /* every request shares it */
        ck_assert_int_eq(core_io_get(f, n, false, &io), 0);
        ck_assert_int_eq(core_io_get(f, n, true, &io2), 0);
        ck_assert_ptr_eq(io, io2);
        core_file_unref(io2);
        /* open, then unlinked: still written and read through it */
        ck_assert_int_eq(core_unlink(f, NULL, root, "f"), 0);
        ck_assert_int_eq(core_write(f, NULL, io, "after", 5, 0, 0, 0), 5);
        core_file_unref(io);
        ck_assert_int_eq(core_io_get(f, n, false, &io), 0);
        ck_assert_int_eq(core_read(f, io, buf, sizeof(buf) - 1, 0), 5);
        ck_assert_str_eq(buf, "after");
        core_file_unref(io);
        ck_assert_int_eq(core_getattr(f, n, &st), 0);
        ck_assert_int_eq(st.st_nlink, 0);
        ck_assert_int_eq(st.st_size, 5);
        /* a setattr by handle works without a name too */
        ck_assert_int_eq(
            core_setattr(f, NULL, n, &(LsSetattr){.valid = LS_SET_SIZE, .size = 2}, 0, &st), 0);
        ck_assert_int_eq(st.st_size, 2);
        /* the last forget closes it */
        core_forget(f, n, 1);
        ck_assert_uint_eq(core_n_io_files(core), 0);
        /* a read-only file opened first (by a read-only mount's front) is
         * replaced at the first write */
        host_write("g", "g");
        ro = front_new(NULL, CORE_FRONT_READ_ONLY);
        ck_assert_int_eq(core_lookup(ro, NULL, root, "g", &n, NULL), 0);
        ck_assert_int_eq(core_lookup(f, NULL, root, "g", &n, NULL), 0);
        ck_assert_int_eq(core_io_get(ro, n, false, &io), 0);
        ck_assert((io->flags & O_ACCMODE) == O_RDONLY);
        ck_assert_int_eq(core_io_get(f, n, false, &io2), 0);
        ck_assert_ptr_eq(io, io2);
        core_file_unref(io2);
        ck_assert_int_eq(core_io_get(f, n, true, &io2), 0);
        ck_assert_ptr_ne(io, io2);
        ck_assert((io2->flags & O_ACCMODE) == O_RDWR);
        ck_assert_uint_eq(core_n_io_files(core), 1);
        core_file_unref(io);
        core_file_unref(io2);
        /* a change that may copy up drops a read-only one */
        core_front_free(f);
        core_forget(ro, n, 1);
        ck_assert_uint_eq(core_n_io_files(core), 0);
        core_front_free(ro);
        ck_assert_uint_eq(core_n_io_files(core), 0);
}
END_TEST

START_TEST(test_io_budget)
{
        CoreFront *f;
        CoreFile *io;
        CoreNode *n[4];
        char name[16];

        root = core_node_unref(root);
        core = core_unref(core);
        ck_assert_int_eq(core_new(&(CoreParams){.max_io_files = 2}, &core), 0);
        ck_assert_int_eq(core_node_get(core, rootls, &root), 0);
        f = front_new(NULL, 0);
        for (int i = 0; i < 4; i++) {
                snprintf(name, sizeof(name), "f%d", i);
                host_write(name, "x");
                ck_assert_int_eq(core_lookup(f, NULL, root, name, &n[i], NULL), 0);
                ck_assert_int_eq(core_io_get(f, n[i], false, &io), 0);
                core_file_unref(io);
        }
        /* past the budget, files for one request only */
        ck_assert_uint_eq(core_n_io_files(core), 2);
        core_front_free(f);
}
END_TEST

typedef struct WbArg {
        CoreFront *f;
        CoreFile *file;
        int id;
        atomic_bool *stop;
} WbArg;

static void *wb_thread(void *p)
{
        WbArg *a = p;
        char buf[65536];

        memset(buf, 'a' + a->id, sizeof(buf));
        for (int i = 0; !atomic_load(a->stop); i = (i + 1) % 64)
                ck_assert_int_eq(core_write(a->f, NULL, a->file, buf, sizeof(buf),
                                            (off_t)(a->id * 64 + i) * 65536, 0,
                                            CORE_WRITE_KEEP_MTIME),
                                 (ssize_t)sizeof(buf));
        return NULL;
}

START_TEST(test_writeback_mtime)
{
        CoreFront *f = front_new(NULL, 0);
        struct timespec t = {.tv_sec = 1000000000, .tv_nsec = 123456789};
        LsSetattr sa = {.valid = LS_SET_MTIME, .mtime = t};
        atomic_bool stop = false;
        pthread_t th[4];
        WbArg args[4];
        CoreFile *io;
        CoreNode *n;
        struct stat st, st2;

        ck_assert_int_eq(core_create(f, &root_cred, root, "f", O_RDWR, 0644, &n, NULL, NULL, NULL),
                         0);
        ck_assert_int_eq(core_io_get(f, n, true, &io), 0);
        ck_assert_int_eq(core_setattr(f, NULL, n, &sa, CORE_SETATTR_KERNEL_MTIME, NULL), 0);
        /* write-backs stream in while the kernel sets its mtime again and
         * again (SETATTR and WRITE come on different threads): each
         * write-back in flight when the last time is set must leave that
         * time, not the one it saw before (the man-db gdbm case) */
        for (int i = 0; i < 4; i++) {
                args[i] = (WbArg){.f = f, .file = io, .id = i, .stop = &stop};
                pthread_create(&th[i], NULL, wb_thread, &args[i]);
        }
        for (int k = 0; k < 200; k++) {
                sa.mtime.tv_sec++;
                ck_assert_int_eq(core_setattr(f, NULL, n, &sa, CORE_SETATTR_KERNEL_MTIME, NULL), 0);
        }
        atomic_store(&stop, true);
        for (int i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
        ck_assert_int_eq(core_getattr(f, n, &st), 0);
        /* what the kernel last reported, exactly */
        ck_assert_int_eq(st.st_mtim.tv_sec, sa.mtime.tv_sec);
        ck_assert_int_eq(st.st_mtim.tv_nsec, t.tv_nsec);
        /* without a time from the kernel since the backend's moved: the
         * backend's from before the write-back */
        ck_assert_int_eq(core_write(f, NULL, io, "z", 1, 0, 0, 0), 1);
        ck_assert_int_eq(core_getattr(f, n, &st), 0);
        ck_assert_int_ne(st.st_mtim.tv_sec, sa.mtime.tv_sec);
        ck_assert_int_eq(core_write(f, NULL, io, "y", 1, 1, 0, CORE_WRITE_KEEP_MTIME), 1);
        ck_assert_int_eq(core_getattr(f, n, &st2), 0);
        ck_assert_int_eq(st2.st_mtim.tv_sec, st.st_mtim.tv_sec);
        ck_assert_int_eq(st2.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
        core_file_unref(io);
        core_front_free(f);
}
END_TEST

/* The default ACL of a directory: user 1234 rwx, mask rwx. */
static const unsigned char dacl[] = {
    2,    0, 0, 0,                         /* version */
    1,    0, 7, 0, 0xff, 0xff, 0xff, 0xff, /* USER_OBJ rwx */
    2,    0, 7, 0, 0xd2, 0x04, 0,    0,    /* USER 1234 rwx */
    4,    0, 5, 0, 0xff, 0xff, 0xff, 0xff, /* GROUP_OBJ r-x */
    0x10, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, /* MASK rwx */
    0x20, 0, 5, 0, 0xff, 0xff, 0xff, 0xff, /* OTHER r-x */
};

START_TEST(test_new_entries)
{
        CoreFront *f = front_new(NULL, 0);
        CoreCred user = {.uid = 1234, .gid = 1234, .umask = 027};
        CoreNode *d, *n;
        struct stat st;
        char buf[128];
        ssize_t len;

        /* owner and umask */
        ck_assert_int_eq(core_mkdir(f, &user, root, "d", 0777, &d, &st), 0);
        ck_assert_int_eq(st.st_uid, 1234);
        ck_assert_int_eq(st.st_gid, 1234);
        ck_assert_int_eq(st.st_mode & 07777, 0750);
        /* set-group-ID directory: the group, and S_ISGID for directories */
        ck_assert_int_eq(
            core_setattr(f, &root_cred, d,
                         &(LsSetattr){.valid = LS_SET_MODE | LS_SET_GID, .mode = 02777, .gid = 99},
                         0, NULL),
            0);
        ck_assert_int_eq(core_mkdir(f, &user, d, "sub", 0755, &n, &st), 0);
        ck_assert_int_eq(st.st_gid, 99);
        ck_assert(st.st_mode & S_ISGID);
        core_forget(f, n, 1);
        /* a default ACL: inherited, umask ignored, mode masked by it */
        ck_assert_int_eq(
            core_setxattr(f, &root_cred, d, "system.posix_acl_default", dacl, sizeof(dacl), 0), 0);
        ck_assert_int_eq(core_mknod(f, &user, d, "file", S_IFREG | 0666, 0, &n, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0664);
        len = core_getxattr(f, NULL, n, "system.posix_acl_access", buf, sizeof(buf));
        ck_assert_int_eq(len, (ssize_t)sizeof(dacl));
        /* chmod keeps the ACL in step (the mask takes the group bits) */
        ck_assert_int_eq(
            core_setattr(f, &user, n, &(LsSetattr){.valid = LS_SET_MODE, .mode = 0640}, 0, &st), 0);
        len = core_getxattr(f, NULL, n, "system.posix_acl_access", buf, sizeof(buf));
        ck_assert_int_eq(len, (ssize_t)sizeof(dacl));
        ck_assert_int_eq(buf[4 + 3 * 8 + 2], 4); /* MASK r-- */
        core_forget(f, n, 1);
        ck_assert_int_eq(core_mkdir(f, &user, d, "sub2", 0777, &n, &st), 0);
        len = core_getxattr(f, NULL, n, "system.posix_acl_default", buf, sizeof(buf));
        ck_assert_int_eq(len, (ssize_t)sizeof(dacl));
        core_forget(f, n, 1);
        /* symlinks: 0777, the caller's */
        ck_assert_int_eq(core_symlink(f, &user, d, "l", "target", &n, &st), 0);
        ck_assert_int_eq(st.st_uid, 1234);
        len = core_readlink(f, n, buf, sizeof(buf));
        ck_assert_int_eq(len, 6);
        core_forget(f, n, 1);
        ck_assert_int_eq(core_mkdir(f, NULL, root, "x", 0777, &n, NULL), -EINVAL);
        /* fsyncdir reaches the backend (an error for a non-directory
         * would not come from us) */
        ck_assert_int_eq(core_fsyncdir(f, d, false), 0);
        core_forget(f, d, 1);
        core_front_free(f);
}
END_TEST

START_TEST(test_permission_front)
{
        CoreFront *f = front_new(NULL, CORE_FRONT_CHECK_PERMS);
        CoreFront *ro = front_new(NULL, CORE_FRONT_READ_ONLY);
        CoreCred user = {.uid = 1234, .gid = 1234, .umask = 022};
        CoreNode *d, *n;
        CoreFile *file;
        char p[PATH_MAX];

        host_path(p, "closed");
        ck_assert_int_eq(mkdir(p, 0700), 0);
        host_write("closed/in", "x");
        ck_assert_int_eq(core_mkdir(f, &user, root, "u", 0755, NULL, NULL), -EACCES);
        ck_assert_int_eq(core_walk(f, &user, root, root, "closed/in", 0, &n, NULL, NULL), -EACCES);
        ck_assert_int_eq(core_walk(f, &root_cred, root, root, "closed", 0, &d, NULL, NULL), 0);
        ck_assert_int_eq(core_lookup(f, &user, d, "in", &n, NULL), -EACCES);
        ck_assert_int_eq(core_dir_snap(f, &user, d, 0, &(CoreDirSnap *){NULL}), -EACCES);
        core_node_unref(d);
        host_write("ro", "x");
        ck_assert_int_eq(core_lookup(f, &user, root, "ro", &n, NULL), 0);
        ck_assert_int_eq(core_open(f, &user, n, O_RDWR, &file), -EACCES);
        ck_assert_int_eq(core_open(f, &user, n, O_RDONLY, &file), 0);
        core_file_unref(file);
        ck_assert_int_eq(
            core_setattr(f, &user, n, &(LsSetattr){.valid = LS_SET_MODE, .mode = 0777}, 0, NULL),
            -EPERM);
        ck_assert_int_eq(core_unlink(f, &user, root, "ro"), -EACCES);
        ck_assert_int_eq(core_setxattr(f, &user, n, "trusted.x", "1", 1, 0), -EPERM);
        ck_assert_int_eq(core_unlink(ro, NULL, root, "ro"), -EROFS);
        ck_assert_int_eq(core_io_get(ro, n, true, &file), -EROFS);
        core_forget(f, n, 1);
        core_front_free(f);
        core_front_free(ro);
}
END_TEST

START_TEST(test_rename_parent)
{
        CoreFront *f = front_new(NULL, 0);
        CoreNode *a, *b, *c, *m;

        ck_assert_int_eq(core_mkdir(f, &root_cred, root, "a", 0755, &a, NULL), 0);
        ck_assert_int_eq(core_mkdir(f, &root_cred, a, "b", 0755, &b, NULL), 0);
        ck_assert_int_eq(core_mkdir(f, &root_cred, root, "c", 0755, &c, NULL), 0);
        ck_assert_int_eq(core_rename(f, NULL, a, "b", c, "b", 0), 0);
        /* ".." of the moved directory is its new parent */
        ck_assert_int_eq(core_walk(f, &root_cred, root, b, "..", 0, &m, NULL, NULL), 0);
        ck_assert_ptr_eq(m, c);
        core_node_unref(m);
        ck_assert_int_eq(core_rename(f, NULL, c, "b", a, "x", RENAME_NOREPLACE), 0);
        ck_assert_int_eq(core_rename(f, NULL, a, "x", root, "c", RENAME_NOREPLACE), -EEXIST);
        ck_assert_int_eq(core_rename(f, NULL, a, "x", root, "c", RENAME_EXCHANGE), 0);
        ck_assert_int_eq(core_walk(f, &root_cred, root, c, "..", 0, &m, NULL, NULL), 0);
        ck_assert_ptr_eq(m, a);
        core_node_unref(m);
        ck_assert_int_eq(core_rename(f, NULL, a, "nothing", root, "y", RENAME_EXCHANGE), -ENOENT);
        ck_assert_int_eq(core_rename(f, NULL, a, "x", root, "y", 3), -EINVAL);
        ck_assert_int_eq(core_rmdir(f, NULL, root, "c"), 0);
        ck_assert_int_eq(core_unlink(f, NULL, root, "a"), -EISDIR);
        core_front_free(f);
}
END_TEST

/* What the kernel answers uid (gid the same, no other groups) for op on
 * paths under base: 0 or -errno. op: 'u' unlink, 'd' rmdir, 'r' rename, 'x'
 * RENAME_EXCHANGE, 'l' link. */
static int kernel_as(uid_t uid, char op, const char *a, const char *b)
{
        char pa[PATH_MAX], pb[PATH_MAX];
        int status;
        pid_t pid;

        host_path(pa, a);
        host_path(pb, b ? b : "");
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int r = -1;

                if (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0)
                        _exit(255);
                switch (op) {
                case 'u':
                        r = unlink(pa);
                        break;
                case 'd':
                        r = rmdir(pa);
                        break;
                case 'r':
                        r = rename(pa, pb);
                        break;
                case 'x':
                        r = renameat2(AT_FDCWD, pa, AT_FDCWD, pb, RENAME_EXCHANGE);
                        break;
                case 'l':
                        r = link(pa, pb);
                        break;
                }
                _exit(r < 0 ? errno : 0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) != 255);
        return -WEXITSTATUS(status);
}

static void host_mkdir(const char *rel, mode_t mode, uid_t uid)
{
        char p[PATH_MAX];

        host_path(p, rel);
        ck_assert_int_eq(mkdir(p, mode), 0);
        ck_assert_int_eq(chmod(p, mode), 0);
        ck_assert_int_eq(chown(p, uid, uid), 0);
}

/* A directory moved to another parent needs its own write permission (its
 * ".." changes), also when no front holds its node: the check reads it
 * through the handle the rename looked up. The kernel agrees. */
START_TEST(test_rename_dir_unheld)
{
        CoreFront *f = front_new(NULL, CORE_FRONT_CHECK_PERMS);
        CoreCred user = {.uid = 1234, .gid = 1234, .umask = 022};
        CoreNode *p1, *p2;
        size_t before;

        host_mkdir("p1", 0777, 0);
        host_mkdir("p2", 0777, 0);
        host_mkdir("p1/v", 0755, 0); /* root's: the user may not write it */
        host_mkdir("p1/mine", 0755, 1234);
        host_mkdir("p1/mine2", 0755, 1234);
        host_mkdir("p2/w", 0755, 0);
        ck_assert_int_eq(walk(f, "p1", 0, &p1), 0);
        ck_assert_int_eq(walk(f, "p2", 0, &p2), 0);
        before = core_n_nodes(core);
        ck_assert_int_eq(kernel_as(1234, 'r', "p1/v", "p2/v"), -EACCES);
        ck_assert_int_eq(core_rename(f, &user, p1, "v", p2, "v", 0), -EACCES);
        /* exchanged with a directory the user may not write: the same */
        ck_assert_int_eq(kernel_as(1234, 'x', "p1/mine", "p2/w"), -EACCES);
        ck_assert_int_eq(core_rename(f, &user, p1, "mine", p2, "w", RENAME_EXCHANGE), -EACCES);
        /* its own directory moves; within one parent, no ".." changes */
        ck_assert_int_eq(kernel_as(1234, 'r', "p1/mine", "p2/mine"), 0);
        ck_assert_int_eq(core_rename(f, &user, p1, "mine2", p2, "mine2", 0), 0);
        ck_assert_int_eq(kernel_as(1234, 'r', "p1/v", "p1/v2"), 0);
        ck_assert_int_eq(core_rename(f, &user, p1, "v2", p1, "v3", 0), 0);
        /* no node was made for the checks */
        ck_assert_uint_eq(core_n_nodes(core), before);
        core_node_unref(p1);
        core_node_unref(p2);
        core_front_free(f);
}
END_TEST

/* In a directory the caller may not search, an operation on a name fails
 * with EACCES whether the name exists or not (the kernel's path walk checks
 * the parent before the name), a negative entry included; link(2) checks
 * the new name's directory before protected_hardlinks, and whether the name
 * is taken before write permission. */
START_TEST(test_search_first)
{
        CoreFront *f = front_new(NULL, CORE_FRONT_CHECK_PERMS);
        CoreCred user = {.uid = 1234, .gid = 1234, .umask = 022};
        CoreNode *closed, *open, *ro, *n, *d;
        char p[PATH_MAX];

        host_mkdir("closed", 0700, 0);
        host_mkdir("closed/sub", 0777, 0);
        host_write("closed/f", "x");
        host_mkdir("open", 0777, 0);
        host_write("open/y", "y");
        host_write("open/secret", "s"); /* root's, 0600: no hard link by others */
        host_path(p, "open/secret");
        ck_assert_int_eq(chmod(p, 0600), 0);
        host_mkdir("open/dir", 0755, 1234);
        host_mkdir("ro", 0755, 0);
        host_write("ro/e", "e");
        host_write("open/mine", "m");
        host_path(p, "open/mine");
        ck_assert_int_eq(chown(p, 1234, 1234), 0);
        ck_assert_int_eq(walk(f, "closed", 0, &closed), 0);
        ck_assert_int_eq(walk(f, "open", 0, &open), 0);
        ck_assert_int_eq(walk(f, "ro", 0, &ro), 0);

        ck_assert_int_eq(kernel_as(1234, 'u', "closed/absent", NULL), -EACCES);
        ck_assert_int_eq(core_unlink(f, &user, closed, "absent"), -EACCES);
        ck_assert_int_eq(kernel_as(1234, 'd', "closed/absent", NULL), -EACCES);
        ck_assert_int_eq(core_rmdir(f, &user, closed, "absent"), -EACCES);
        ck_assert_int_eq(kernel_as(1234, 'u', "closed/f", NULL), -EACCES);
        ck_assert_int_eq(core_unlink(f, &user, closed, "f"), -EACCES);
        /* a negative entry left by someone who may search */
        ck_assert_int_eq(core_lookup(f, &root_cred, closed, "gone", &n, NULL), -ENOENT);
        ck_assert_int_eq(kernel_as(1234, 'u', "closed/gone", NULL), -EACCES);
        ck_assert_int_eq(core_unlink(f, &user, closed, "gone"), -EACCES);
        ck_assert_int_eq(core_rmdir(f, &user, closed, "gone"), -EACCES);
        /* rename: from and into */
        ck_assert_int_eq(kernel_as(1234, 'r', "closed/absent", "open/x"), -EACCES);
        ck_assert_int_eq(core_rename(f, &user, closed, "absent", open, "x", 0), -EACCES);
        ck_assert_int_eq(kernel_as(1234, 'x', "open/y", "closed/absent"), -EACCES);
        ck_assert_int_eq(core_rename(f, &user, open, "y", closed, "absent", RENAME_EXCHANGE),
                         -EACCES);
        ck_assert_int_eq(core_rename(f, &user, open, "y", closed, "gone", RENAME_EXCHANGE),
                         -EACCES);
        /* link: search before protected_hardlinks and the type */
        ck_assert_int_eq(kernel_as(1234, 'l', "open/secret", "closed/l"), -EACCES);
        ck_assert_int_eq(core_lookup(f, &root_cred, open, "secret", &n, NULL), 0);
        ck_assert_int_eq(core_link(f, &user, n, closed, "l", NULL), -EACCES);
        ck_assert_int_eq(kernel_as(1234, 'l', "open/secret", "open/l"), -EPERM);
        ck_assert_int_eq(core_link(f, &user, n, open, "l", NULL), -EPERM);
        core_forget(f, n, 1);
        ck_assert_int_eq(kernel_as(1234, 'l', "open/dir", "closed/l"), -EACCES);
        ck_assert_int_eq(core_lookup(f, &root_cred, open, "dir", &d, NULL), 0);
        ck_assert_int_eq(core_link(f, &user, d, closed, "l", NULL), -EACCES);
        ck_assert_int_eq(kernel_as(1234, 'l', "open/dir", "open/l"), -EPERM);
        ck_assert_int_eq(core_link(f, &user, d, open, "l", NULL), -EPERM);
        core_forget(f, d, 1);
        /* a taken name: EEXIST before write permission on its directory */
        ck_assert_int_eq(kernel_as(1234, 'l', "open/mine", "ro/e"), -EEXIST);
        ck_assert_int_eq(core_lookup(f, &root_cred, open, "mine", &n, NULL), 0);
        ck_assert_int_eq(core_link(f, &user, n, ro, "e", NULL), -EEXIST);
        ck_assert_int_eq(kernel_as(1234, 'l', "open/mine", "ro/new"), -EACCES);
        ck_assert_int_eq(core_link(f, &user, n, ro, "new", NULL), -EACCES);
        ck_assert_int_eq(core_link(f, &user, n, open, "mine-link", NULL), 0);
        core_forget(f, n, 2);
        /* the root may search: ENOENT as before */
        ck_assert_int_eq(core_unlink(f, &root_cred, closed, "absent"), -ENOENT);
        ck_assert_int_eq(core_rename(f, &root_cred, closed, "absent", open, "x", 0), -ENOENT);
        core_node_unref(closed);
        core_node_unref(open);
        core_node_unref(ro);
        core_front_free(f);
}
END_TEST

/* The backend's getattr, counted (the instance's ops swapped for a copy). */
static const LsOps *real_ops;
static LsOps counting_ops;
static atomic_uint n_getattr;

static int counting_getattr(LsNode *node, struct stat *st)
{
        atomic_fetch_add(&n_getattr, 1);
        return real_ops->getattr(node, st);
}

static void count_getattr_start(void)
{
        real_ops = inst->ops;
        counting_ops = *real_ops;
        counting_ops.getattr = counting_getattr;
        inst->ops = &counting_ops;
        atomic_store(&n_getattr, 0);
}

static void count_getattr_stop(void)
{
        inst->ops = real_ops;
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The kernel's S_NOSEC: writes to a file without set-ID bits ask the
 * backend nothing; a chmod, an xattr or a change the backend reports makes
 * the next write look again, and it clears the bits. */
START_TEST(test_write_nosec)
{
        CoreFront *f = front_new(NULL, CORE_FRONT_CHECK_PERMS);
        CoreCred user = {.uid = 1234, .gid = 1234, .umask = 022};
        static char block[4096];
        struct stat st;
        CoreNode *n;
        CoreFile *file;
        char p[PATH_MAX];
        const int loops = 20000;
        double t;
        /* VFS_CAP_REVISION_2, CAP_NET_RAW permitted */
        const struct vfs_cap_data cap = {
            .magic_etc = VFS_CAP_REVISION_2,
            .data = {{.permitted = 1u << CAP_NET_RAW}},
        };

        host_write("f", "");
        host_path(p, "f");
        ck_assert_int_eq(chown(p, 1234, 1234), 0);
        ck_assert_int_eq(chmod(p, 0775), 0);
        ck_assert_int_eq(core_lookup(f, &user, root, "f", &n, NULL), 0);
        ck_assert_int_eq(core_open(f, &user, n, O_RDWR, &file), 0);
        count_getattr_start();
        t = now_s();
        for (int i = 0; i < loops; i++)
                ck_assert_int_eq(
                    core_write(f, &user, file, block, sizeof(block), (off_t)(i % 256) * 4096, 0, 0),
                    4096);
        t = now_s() - t;
        fprintf(stderr, "core_write 4 KiB, checking front: %.2f us/write, %u getattr\n",
                t / loops * 1e6, atomic_load(&n_getattr));
        ck_assert_uint_le(atomic_load(&n_getattr), 1);
        count_getattr_stop();
        /* set-user-ID by a chmod through the core: the next write clears it */
        ck_assert_int_eq(
            core_setattr(f, &user, n, &(LsSetattr){.valid = LS_SET_MODE, .mode = 06775}, 0, NULL),
            0);
        ck_assert_int_eq(core_write(f, &user, file, "x", 1, 0, 0, 0), 1);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0775);
        /* behind the core's back, then reported by the backend */
        ck_assert_int_eq(core_write(f, &user, file, "x", 1, 0, 0, 0), 1);
        ck_assert_int_eq(chmod(p, 04775), 0);
        core_notify_inval_inode(core, core_node_ls(n), -1, 0);
        ck_assert_int_eq(core_write(f, &user, file, "x", 1, 0, 0, 0), 1);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0775);
        /* security.capability set through the core: removed by a write */
        ck_assert_int_eq(core_write(f, &user, file, "x", 1, 0, 0, 0), 1);
        ck_assert_int_eq(
            core_setxattr(f, &root_cred, n, "security.capability", &cap, XATTR_CAPS_SZ_2, 0), 0);
        ck_assert_int_eq(getxattr(p, "security.capability", NULL, 0), XATTR_CAPS_SZ_2);
        ck_assert_int_eq(core_write(f, &user, file, "x", 1, 0, 0, 0), 1);
        ck_assert_int_lt(getxattr(p, "security.capability", NULL, 0), 0);
        ck_assert_int_eq(errno, ENODATA);
        /* a set-group-ID file without group execute keeps its bit (not
         * cleared), so it is never remembered as clean; a chmod through an
         * ACL is a change too */
        ck_assert_int_eq(
            core_setattr(f, &user, n, &(LsSetattr){.valid = LS_SET_MODE, .mode = 0775}, 0, NULL),
            0);
        ck_assert_int_eq(core_write(f, &user, file, "x", 1, 0, 0, 0), 1);
        ck_assert_int_eq(core_setattr(f, &root_cred, n,
                                      &(LsSetattr){.valid = LS_SET_MODE, .mode = 04775}, 0, NULL),
                         0);
        ck_assert_int_eq(core_write(f, &user, file, "x", 1, 0, 0, 0), 1);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0775);
        core_file_unref(file);
        core_forget(f, n, 1);
        core_front_free(f);
}
END_TEST

typedef struct RaceArg {
        CoreFront *f;
        int id;
} RaceArg;

static void *race_thread(void *p)
{
        RaceArg *a = p;
        unsigned seed = (unsigned)a->id * 7919u;
        char name[16];

        for (int i = 0; i < 2000; i++) {
                CoreNode *n;
                CoreFile *file;
                int k = rand_r(&seed) % 16;

                snprintf(name, sizeof(name), "n%d", k);
                switch (rand_r(&seed) % 5) {
                case 0:
                        if (core_create(a->f, &root_cred, root, name, O_RDWR, 0644, &n, NULL, &file,
                                        NULL) == 0) {
                                core_io_offer(n, file);
                                core_file_unref(file);
                                core_forget(a->f, n, 1);
                        }
                        break;
                case 1:
                        core_unlink(a->f, NULL, root, name);
                        break;
                case 2:
                        if (core_lookup(a->f, NULL, root, name, &n, NULL) == 0) {
                                if (core_io_get(a->f, n, true, &file) == 0) {
                                        core_write(a->f, NULL, file, "x", 1, 0, 0, 0);
                                        core_file_unref(file);
                                }
                                core_forget(a->f, n, 1);
                        }
                        break;
                case 3:
                        if (core_walk(a->f, &root_cred, root, root, name, 0, &n, NULL, NULL) == 0)
                                core_node_unref(n);
                        break;
                default: {
                        CoreDirSnap *s;

                        if (core_dir_snap(a->f, NULL, root, 0, &s) == 0)
                                core_dir_snap_unref(s);
                        break;
                }
                }
        }
        return NULL;
}

START_TEST(test_threads)
{
        Rec ra = {0}, rb = {0};
        CoreFront *fr[2] = {front_new(&ra, 0), front_new(&rb, 0)};
        pthread_t th[8];
        RaceArg args[8];

        ck_assert_int_eq(core_front_hold(fr[0], root, 1), 0);
        ck_assert_int_eq(core_front_hold(fr[1], root, 1), 0);
        for (int i = 0; i < 8; i++) {
                args[i] = (RaceArg){.f = fr[i % 2], .id = i + 1};
                pthread_create(&th[i], NULL, race_thread, &args[i]);
        }
        for (int i = 0; i < 8; i++)
                pthread_join(th[i], NULL);
        /* every reference taken was dropped: only the root, held twice */
        ck_assert_uint_eq(core_n_nodes(core), 1);
        core_front_free(fr[0]);
        core_front_free(fr[1]);
}
END_TEST

static Suite *core_suite(void)
{
        Suite *s = suite_create("core");
        struct {
                const char *name;
                const TTest *test;
                int timeout;
        } cases[] = {
            {"node-identity", test_node_identity, 0},
            {"reused-number", test_reused_number_new_node, 0},
            {"walk-deep", test_walk_deep, 60},
            {"walk-symlinks", test_walk_symlinks, 0},
            {"negative-entries", test_negative_entries, 0},
            {"notifications", test_notifications, 0},
            {"listing-generations", test_listing_generations, 0},
            {"io-files", test_io_files, 0},
            {"io-budget", test_io_budget, 0},
            {"writeback-mtime", test_writeback_mtime, 60},
            {"new-entries", test_new_entries, 0},
            {"permission-front", test_permission_front, 0},
            {"rename-parent", test_rename_parent, 0},
            {"rename-dir-unheld", test_rename_dir_unheld, 0},
            {"search-first", test_search_first, 0},
            {"write-nosec", test_write_nosec, 60},
            {"threads", test_threads, 120},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                TCase *tc = tcase_create(cases[i].name);

                tcase_add_checked_fixture(tc, setup, teardown);
                if (cases[i].timeout)
                        tcase_set_timeout(tc, cases[i].timeout);
                tcase_add_test(tc, cases[i].test);
                suite_add_tcase(s, tc);
        }
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(core_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
