/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Union Directory Stacks
 *
 * The stack of a directory is the ordered list of branches (top first) in
 * which it exists and is visible. It is computed top-down from its parent's
 * stack: in each branch of the parent's stack, in order,
 *   - the directory exists there: the branch joins the stack; if it is opaque
 *     there (".wh..wh..opq" inside), the walk stops;
 *   - a non-directory of that name exists there: the walk stops (and if the
 *     stack is still empty, the path is -ENOTDIR);
 *   - a whiteout ".wh.<name>" exists in the parent there: the walk stops;
 *   - nothing: go on to the next branch.
 * The root's stack is every branch, down to the first whose root is opaque.
 *
 * Stacks are cached in a hash table keyed by path. The table is striped over
 * UNION_DC_SHARDS mutexes (never a global lock), chains are bounded, and
 * every entry carries the generation it was computed under: any change of
 * directory shape (mkdir, rmdir, directory rename or copy-up, a whiteout or
 * opaque marker for a directory) bumps the generation after the change is
 * complete, which invalidates every entry at once. A lookup reads the
 * generation *before* it reads any branch, so a stack computed across a
 * concurrent change is stored under the old generation and is stale at once.
 * Changes that cannot alter a cached (successful) stack do not bump: file
 * whiteouts and file creation affect only names that are not directories,
 * whose stacks are never cached.
 *
 * Only successful stacks are cached; -ENOENT/-ENOTDIR are recomputed. The
 * cache assumes branches change only through this union (lower layers are
 * immutable images; the top is private to the container).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libservice/union-private.h"

#define UNION_DC_SHARDS    64
#define UNION_DC_BUCKETS   4096
#define UNION_DC_CHAIN_MAX 8

typedef struct DcEntry {
        struct DcEntry *next;
        uint64_t hash;
        uint64_t gen;
        UnionStack stack;
        char path[];
} DcEntry;

struct UnionDircache {
        /* bumped (seq_cst) after every change of directory shape; entries with
         * another generation are stale */
        atomic_uint_fast64_t gen;
        pthread_mutex_t shards[UNION_DC_SHARDS];
        DcEntry *buckets[UNION_DC_BUCKETS]; /* bucket i: protected by shards[i % SHARDS] */
};

uint64_t union_hash(const char *s)
{
        /* FNV-1a: paths are short, the table only needs spread */
        uint64_t h = 0xcbf29ce484222325ULL;

        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 0x100000001b3ULL;
        }
        return h;
}

int union_dircache_new(UnionDircache **dcp)
{
        UnionDircache *dc = calloc(1, sizeof(*dc));

        if (!dc)
                return -ENOMEM;
        atomic_init(&dc->gen, 1);
        for (size_t i = 0; i < UNION_DC_SHARDS; i++)
                pthread_mutex_init(&dc->shards[i], NULL);
        *dcp = dc;
        return 0;
}

UnionDircache *union_dircache_free(UnionDircache *dc)
{
        if (!dc)
                return NULL;
        for (size_t i = 0; i < UNION_DC_BUCKETS; i++) {
                DcEntry *e = dc->buckets[i];

                while (e) {
                        DcEntry *next = e->next;

                        free(e);
                        e = next;
                }
        }
        for (size_t i = 0; i < UNION_DC_SHARDS; i++)
                pthread_mutex_destroy(&dc->shards[i]);
        free(dc);
        return NULL;
}

uint64_t union_dircache_gen(Union *u)
{
        return atomic_load(&u->dircache->gen);
}

void union_dircache_bump(Union *u)
{
        /* seq_cst: the change this announces is complete before it (the caller
         * returned from the branch op), and readers load gen before they read
         * any branch, so they either see the new shape or a new generation */
        atomic_fetch_add(&u->dircache->gen, 1);
}

static bool dircache_find(UnionDircache *dc, const char *path, uint64_t hash, uint64_t gen,
                          UnionStack *stack)
{
        size_t bucket = hash % UNION_DC_BUCKETS;
        pthread_mutex_t *m = &dc->shards[bucket % UNION_DC_SHARDS];
        DcEntry **pp, *e;
        bool found = false;

        pthread_mutex_lock(m);
        pp = &dc->buckets[bucket];
        while ((e = *pp)) {
                if (e->gen != gen) {
                        /* stale: drop it while we are here */
                        *pp = e->next;
                        free(e);
                        continue;
                }
                if (e->hash == hash && strcmp(e->path, path) == 0) {
                        *stack = e->stack;
                        found = true;
                        break;
                }
                pp = &e->next;
        }
        pthread_mutex_unlock(m);
        return found;
}

static void dircache_insert(UnionDircache *dc, const char *path, uint64_t hash, uint64_t gen,
                            const UnionStack *stack)
{
        size_t bucket = hash % UNION_DC_BUCKETS;
        pthread_mutex_t *m = &dc->shards[bucket % UNION_DC_SHARDS];
        size_t len = strlen(path);
        DcEntry *e, **pp, *old;
        unsigned int n = 0;

        if (atomic_load(&dc->gen) != gen)
                return;
        e = malloc(sizeof(*e) + len + 1);
        if (!e)
                return; /* a cache: failing to remember is fine */
        e->hash = hash;
        e->gen = gen;
        e->stack = *stack;
        memcpy(e->path, path, len + 1);

        pthread_mutex_lock(m);
        e->next = dc->buckets[bucket];
        dc->buckets[bucket] = e;
        /* drop an older copy of the same path, stale entries, and whatever
         * lies past the chain bound */
        pp = &e->next;
        while ((old = *pp)) {
                if (old->gen != gen || n + 1 >= UNION_DC_CHAIN_MAX ||
                    (old->hash == hash && strcmp(old->path, path) == 0)) {
                        *pp = old->next;
                        free(old);
                        continue;
                }
                n++;
                pp = &old->next;
        }
        pthread_mutex_unlock(m);
}

/* Records the impure mark of path in its cached stack of generation gen. */
static void dircache_set_impure(UnionDircache *dc, const char *path, uint64_t gen, int8_t v)
{
        uint64_t hash = union_hash(path);
        size_t bucket = hash % UNION_DC_BUCKETS;
        pthread_mutex_t *m = &dc->shards[bucket % UNION_DC_SHARDS];

        pthread_mutex_lock(m);
        for (DcEntry *e = dc->buckets[bucket]; e; e = e->next) {
                if (e->gen == gen && e->hash == hash && strcmp(e->path, path) == 0) {
                        e->stack.impure = v;
                        break;
                }
        }
        pthread_mutex_unlock(m);
}

bool union_dir_impure(Union *u, const char *dir, UnionStack *stack)
{
        LsInstance *top = union_branch(u, 0);
        uint64_t gen;
        ssize_t r;

        /* copy-ups need a lower branch, and land in the top only */
        if (u->n_branches < 2 || stack->n == 0 || stack->idx[0] != 0)
                return false;
        if (stack->impure >= 0)
                return stack->impure;
        /* the root is taken as impure, unmarked: no branch lets xattrs be set
         * on its root reliably (local's l*xattr on "/proc/self/fd/N" acts on
         * the magic link), and the origin cache keeps it cheap */
        if (!*dir) {
                stack->impure = 1;
                return true;
        }
        /* the generation before the read: marking sets the xattr, then bumps,
         * so a stale "not impure" is only ever stored in a stale entry */
        gen = atomic_load(&u->dircache->gen);
        r = top->ops->getxattr ? top->ops->getxattr(top, dir, UNION_XATTR_IMPURE, NULL, 0)
                               : -EOPNOTSUPP;
        if (r >= 0)
                stack->impure = 1;
        else if (r == -ENODATA || r == -EOPNOTSUPP || r == -EPERM || r == -EACCES)
                stack->impure = 0; /* unmarked, or a top that cannot be marked */
        else
                return true; /* unknown: look at origins, remember nothing */
        dircache_set_impure(u->dircache, dir, gen, stack->impure);
        return stack->impure;
}

static int dircache_compute_root(Union *u, UnionStack *out)
{
        struct stat st;
        int bottom = -1;
        ino_t ino = 0;

        out->n = 0;
        out->impure = -1;
        for (size_t b = 0; b < u->n_branches; b++) {
                int r = union_bops(u, (int)b)->getattr(union_branch(u, (int)b), "", &st);

                if (r < 0)
                        return r;
                if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
                out->idx[out->n++] = (uint8_t)b;
                bottom = (int)b;
                ino = st.st_ino;
                r = union_opaque_exists(u, (int)b, "");
                if (r < 0)
                        return r;
                if (r > 0)
                        break;
        }
        out->ino = union_ino(u, bottom, ino);
        return 0;
}

static int dircache_compute(Union *u, const UnionStack *pstack, const char *parent,
                            const char *name, const char *path, UnionStack *out)
{
        struct stat st;
        int bottom = -1;
        ino_t ino = 0;

        out->n = 0;
        out->impure = -1;
        for (unsigned int i = 0; i < pstack->n; i++) {
                int b = pstack->idx[i];
                int r = union_bops(u, b)->getattr(union_branch(u, b), path, &st);

                if (r == 0) {
                        if (!S_ISDIR(st.st_mode)) {
                                if (out->n == 0)
                                        return -ENOTDIR;
                                break;
                        }
                        out->idx[out->n++] = (uint8_t)b;
                        bottom = b;
                        ino = st.st_ino;
                        r = union_opaque_exists(u, b, path);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                break;
                        continue;
                }
                if (r != -ENOENT)
                        return r;
                r = union_whiteout_exists(u, b, parent, name);
                if (r < 0)
                        return r;
                if (r > 0)
                        break;
        }
        if (out->n == 0)
                return -ENOENT;
        out->ino = union_ino(u, bottom, ino);
        /* a directory moved by a rename that copied its merged tree up keeps
         * the number it had (union-copyup.c, copy_tree_rec) */
        if (bottom == 0 && u->n_branches > 1 && union_origin_get(u, path, &ino))
                out->ino = ino;
        return 0;
}

int union_dircache_get(Union *u, const char *path, UnionStack *stack)
{
        UnionDircache *dc = u->dircache;
        uint64_t gen = atomic_load(&dc->gen);
        UnionStack parent;
        char prefix[PATH_MAX];
        const char *p;
        int r;

        if (union_path_hidden(path))
                return -ENOENT;
        /* hot path: the directory itself is cached */
        if (dircache_find(dc, path, union_hash(path), gen, stack))
                return 0;

        /* walk down from the root, reusing what is cached on the way */
        if (!dircache_find(dc, "", union_hash(""), gen, &parent)) {
                r = dircache_compute_root(u, &parent);
                if (r < 0)
                        return r;
                dircache_insert(dc, "", union_hash(""), gen, &parent);
        }
        p = path;
        while (*p) {
                const char *slash = strchr(p, '/');
                size_t end = slash ? (size_t)(slash - path) : strlen(path);
                size_t dlen = p == path ? 0 : (size_t)(p - path) - 1;
                char dir[PATH_MAX];
                uint64_t h;

                if (end >= sizeof(prefix))
                        return -ENAMETOOLONG;
                memcpy(dir, path, dlen);
                dir[dlen] = '\0';
                memcpy(prefix, path, end);
                prefix[end] = '\0';
                h = union_hash(prefix);
                if (!dircache_find(dc, prefix, h, gen, stack)) {
                        r = dircache_compute(u, &parent, dir, prefix + (p - path), prefix, stack);
                        if (r < 0)
                                return r;
                        dircache_insert(dc, prefix, h, gen, stack);
                }
                parent = *stack;
                p = slash ? slash + 1 : p + strlen(p);
        }
        if (!*path)
                *stack = parent;
        return 0;
}
