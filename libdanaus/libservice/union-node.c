/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Union Nodes
 *
 * A union node (UnionNode, an LsNode of the union) holds its branch stack as
 * overlayfs' entries do: for a directory, its handle in every branch where
 * it exists and is visible, top to bottom, stopping at an opaque one or a
 * whiteout; for anything else, the handle in the branch that holds it (the
 * top one once copied up). It also holds a reference to its parent node and
 * its current name there, so copy-up can create its parents and unlink,
 * rename and copy-up can tell whether a name still names it.
 *
 * Nodes are unique per union while alive: a table keyed by the union inode
 * number (UNION_SHARDS shards, each a chained hash table under its own
 * mutex, held only to search and insert). A lookup that finds a live node of
 * the same object returns it (ls_node_tryref()), so a copy-up through one
 * name is seen by every holder. A node's state is a cache: every lookup
 * reads the branches anyway, and when it finds the object in a higher branch
 * than the node says (a copy-up or a moved directory), or a directory's
 * stack changed, it updates the node, unless the node's state is newer than
 * the lookup (Union.gen, read before the branches).
 *
 * Inode numbers: a branch's number passes through when every branch root
 * reports one st_dev; otherwise the branch index + 1 is tagged into bits
 * 56-63. A copied-up non-directory keeps the number it had below (the
 * origin xattr on the copy, read only in "impure" top directories); a
 * directory reports its bottom layer's number, so copying it up changes
 * nothing, and a directory moved by a subtree copy carries its number as
 * its origin.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libservice/union-private.h"

#define UNION_INO_TAG_SHIFT 56

ino_t union_ino(Union *u, int branch, ino_t ino)
{
        if (u->same_dev || branch < 0)
                return ino;
        /* numbers at or past 2^56 cannot be tagged; they pass through */
        if ((uint64_t)ino >> UNION_INO_TAG_SHIFT)
                return ino;
        return (ino_t)((uint64_t)ino | ((uint64_t)(branch + 1) << UNION_INO_TAG_SHIFT));
}

void union_layers_free(UnionLayer *l, unsigned n)
{
        for (unsigned i = 0; i < n; i++)
                ls_node_unref(l[i].node);
        free(l);
}

int union_node_layers(UnionNode *n, UnionLayer **lp, unsigned *np)
{
        UnionLayer *l;
        unsigned cnt;

        pthread_mutex_lock(&n->mu);
        if (n->removed) {
                pthread_mutex_unlock(&n->mu);
                return -ENOENT;
        }
        cnt = n->n_layers;
        l = malloc(sizeof(*l) * (cnt ? cnt : 1));
        if (!l) {
                pthread_mutex_unlock(&n->mu);
                return -ENOMEM;
        }
        for (unsigned i = 0; i < cnt; i++) {
                l[i].branch = n->layers[i].branch;
                l[i].node = ls_node_ref(n->layers[i].node);
        }
        pthread_mutex_unlock(&n->mu);
        *lp = l;
        *np = cnt;
        return 0;
}

int union_node_first(UnionNode *n, LsNode **hp, int *branchp)
{
        pthread_mutex_lock(&n->mu);
        if (n->removed || n->n_layers == 0) {
                pthread_mutex_unlock(&n->mu);
                return -ENOENT;
        }
        *hp = ls_node_ref(n->layers[0].node);
        if (branchp)
                *branchp = n->layers[0].branch;
        pthread_mutex_unlock(&n->mu);
        return 0;
}

int union_node_top(UnionNode *n, LsNode **hp)
{
        int r = -ENOENT;

        pthread_mutex_lock(&n->mu);
        if (!n->removed && n->n_layers > 0 && n->layers[0].branch == 0) {
                *hp = ls_node_ref(n->layers[0].node);
                r = 0;
        }
        pthread_mutex_unlock(&n->mu);
        return r;
}

bool union_node_is_lower(UnionNode *n)
{
        bool lower;

        pthread_mutex_lock(&n->mu);
        lower = n->n_layers == 0 || n->layers[0].branch != 0;
        pthread_mutex_unlock(&n->mu);
        return lower;
}

void union_found_clear(UnionFound *f)
{
        union_layers_free(f->layers, f->n_layers);
        f->layers = NULL;
        f->n_layers = 0;
}

static int found_push(UnionFound *f, int branch, LsNode *h)
{
        UnionLayer *l = realloc(f->layers, sizeof(*l) * (f->n_layers + 1));

        if (!l) {
                ls_node_unref(h);
                return -ENOMEM;
        }
        f->layers = l;
        l[f->n_layers].branch = branch;
        l[f->n_layers].node = h;
        f->n_layers++;
        return 0;
}

/* The rest of a directory's stack below branch index i of the parent's
 * stack pl (the directory was found there as h). */
static int resolve_dir(Union *u, const UnionLayer *pl, unsigned pn, unsigned i, const char *name,
                       UnionFound *f)
{
        struct stat st = f->st;
        int bottom = pl[i].branch;
        int r;

        for (;;) {
                LsNode *h = f->layers[f->n_layers - 1].node;

                /* opaque here, or its own whiteout beside it: nothing below */
                r = union_opaque_exists(h);
                if (r != 0)
                        break;
                if (i + 1 >= pn)
                        break;
                r = union_whiteout_exists(pl[i].node, name);
                if (r != 0)
                        break;
                for (i++; i < pn; i++) {
                        struct stat lst;
                        LsNode *lh;

                        r = bops(pl[i].node)->lookup(pl[i].node, name, &lh, &lst);
                        if (r == -ENOENT) {
                                r = union_whiteout_exists(pl[i].node, name);
                                if (r != 0)
                                        goto done;
                                continue;
                        }
                        if (r < 0)
                                goto done;
                        if (!S_ISDIR(lst.st_mode)) {
                                ls_node_unref(lh);
                                r = 0;
                                goto done;
                        }
                        r = found_push(f, pl[i].branch, lh);
                        if (r < 0)
                                return r;
                        st = lst;
                        bottom = pl[i].branch;
                        break;
                }
                if (i >= pn)
                        break;
        }
done:
        if (r < 0)
                return r;
        f->ino = union_ino(u, bottom, st.st_ino);
        if (u->n_branches > 1 && f->layers[0].branch == 0) {
                ssize_t x = bops(f->layers[0].node)
                                ->getxattr(f->layers[0].node, UNION_XATTR_IMPURE, NULL, 0);
                ino_t origin;

                f->impure = x >= 0;
                /* a directory moved by a subtree copy keeps its number */
                if (f->n_layers == 1 && f->impure && union_origin_get(f->layers[0].node, &origin))
                        f->ino = origin;
        }
        return 0;
}

int union_resolve(UnionNode *dir, const char *name, UnionFound *f)
{
        Union *u = node_union(dir);
        UnionLayer *pl = NULL;
        unsigned pn = 0, i;
        int r;

        memset(f, 0, sizeof(*f));
        f->branch = -1;
        f->wh_branch = -1;
        if (!name || strnlen(name, NAME_MAX + 1) > NAME_MAX)
                return name ? -ENAMETOOLONG : -EINVAL;
        if (!ls_name_valid(name))
                return -EINVAL;
        if (dir->type != S_IFDIR)
                return -ENOTDIR;
        if (union_name_hidden(name))
                return -ENOENT;
        /* before any branch is read: a node updated after this is newer */
        f->gen = atomic_load(&u->gen);
        r = union_node_layers(dir, &pl, &pn);
        if (r < 0)
                return r;
        r = -ENOENT;
        for (i = 0; i < pn; i++) {
                LsNode *h;

                r = bops(pl[i].node)->lookup(pl[i].node, name, &h, &f->st);
                if (r == 0) {
                        r = found_push(f, pl[i].branch, h);
                        break;
                }
                if (r != -ENOENT)
                        break;
                r = union_whiteout_exists(pl[i].node, name);
                if (r < 0)
                        break;
                if (r > 0) {
                        f->wh_branch = pl[i].branch;
                        r = -ENOENT;
                        break;
                }
                r = -ENOENT;
        }
        if (r == 0) {
                f->branch = pl[i].branch;
                if (S_ISDIR(f->st.st_mode)) {
                        r = resolve_dir(u, pl, pn, i, name, f);
                } else {
                        ino_t origin;
                        bool impure;

                        f->ino = union_ino(u, f->branch, f->st.st_ino);
                        /* read after the entry: a copy-up marks the parent
                         * before it publishes the copy */
                        pthread_mutex_lock(&dir->mu);
                        impure = dir->impure;
                        pthread_mutex_unlock(&dir->mu);
                        if (f->branch == 0 && u->n_branches > 1 && impure &&
                            union_origin_get(f->layers[0].node, &origin))
                                f->ino = origin;
                }
        }
        union_layers_free(pl, pn);
        if (r < 0)
                union_found_clear(f);
        return r;
}

/* --- the table ----------------------------------------------------------- */

static uint64_t ino_hash(ino_t ino)
{
        return (uint64_t)ino * 0x9e3779b97f4a7c15ULL;
}

static UnionShard *shard_of(Union *u, ino_t ino)
{
        return &u->shards[(ino_hash(ino) >> 58) % UNION_SHARDS];
}

static size_t bucket_of(const UnionShard *s, ino_t ino)
{
        return (size_t)(ino_hash(ino) >> 20) & (s->n_buckets - 1);
}

static void shard_grow(UnionShard *s)
{
        size_t n = s->n_buckets * 2;
        UnionNode **b = calloc(n, sizeof(*b));
        size_t old = s->n_buckets;
        UnionNode **ob = s->buckets;

        if (!b)
                return; /* longer chains, still correct */
        s->buckets = b;
        s->n_buckets = n;
        for (size_t i = 0; i < old; i++) {
                UnionNode *e = ob[i];

                while (e) {
                        UnionNode *next = e->hnext;
                        size_t k = bucket_of(s, e->ino);

                        e->hnext = b[k];
                        b[k] = e;
                        e = next;
                }
        }
        free(ob);
}

int union_table_init(Union *u)
{
        for (size_t i = 0; i < UNION_SHARDS; i++) {
                UnionShard *s = &u->shards[i];

                pthread_mutex_init(&s->mu, NULL);
                s->n_buckets = 16;
                s->buckets = calloc(s->n_buckets, sizeof(*s->buckets));
                if (!s->buckets)
                        return -ENOMEM;
        }
        return 0;
}

void union_table_deinit(Union *u)
{
        for (size_t i = 0; i < UNION_SHARDS; i++) {
                free(u->shards[i].buckets);
                pthread_mutex_destroy(&u->shards[i].mu);
        }
}

UnionNode *union_node_find(Union *u, ino_t ino, mode_t type)
{
        UnionShard *s = shard_of(u, ino);
        UnionNode *n, *hit = NULL;

        pthread_mutex_lock(&s->mu);
        for (n = s->buckets[bucket_of(s, ino)]; n; n = n->hnext) {
                if (n->ino == ino && (!type || n->type == type) && ls_node_tryref(&n->base)) {
                        hit = n;
                        break;
                }
        }
        pthread_mutex_unlock(&s->mu);
        return hit;
}

static bool found_per_name(const UnionFound *f)
{
        return !S_ISDIR(f->st.st_mode) && f->n_layers > 0 && f->layers[0].branch != 0 &&
               f->st.st_nlink > 1;
}

static UnionNode *node_alloc(Union *u, UnionFound *f)
{
        UnionNode *n = calloc(1, sizeof(*n));

        if (!n)
                return NULL;
        ls_node_init(&n->base, &u->inst);
        n->ino = f->ino;
        n->type = f->st.st_mode & S_IFMT;
        n->per_name = found_per_name(f);
        pthread_mutex_init(&n->mu, NULL);
        pthread_mutex_init(&n->copy_mu, NULL);
        pthread_mutex_init(&n->ns_mu, NULL);
        n->layers = f->layers;
        n->n_layers = f->n_layers;
        f->layers = NULL;
        f->n_layers = 0;
        n->impure = f->impure;
        n->gen = f->gen;
        atomic_init(&n->copyups, 0);
        atomic_init(&n->mods, 0);
        return n;
}

/* Sets n's name; returns the old parent's reference, for the caller to drop
 * once it holds no lock (its last unref may free a chain of nodes, which
 * takes table locks). */
static UnionNode *set_name_locked(UnionNode *n, UnionNode *parent, const char *name)
{
        char *dup = parent && name ? strdup(name) : NULL;
        UnionNode *old = n->parent;

        if (dup)
                ls_node_ref(&parent->base);
        n->parent = dup ? parent : NULL;
        free(n->name);
        n->name = dup;
        return old;
}

void union_node_set_name(UnionNode *n, UnionNode *parent, const char *name)
{
        UnionNode *old;

        pthread_mutex_lock(&n->mu);
        old = set_name_locked(n, parent, name);
        pthread_mutex_unlock(&n->mu);
        if (old)
                ls_node_unref(&old->base);
}

void union_node_unname(UnionNode *n, UnionNode *parent, const char *name)
{
        UnionNode *old = NULL;

        pthread_mutex_lock(&n->mu);
        if (n->parent == parent && n->name && strcmp(n->name, name) == 0)
                old = set_name_locked(n, NULL, NULL);
        pthread_mutex_unlock(&n->mu);
        if (old)
                ls_node_unref(&old->base);
}

/* Whether live node x is the object f found, and f's state is newer:
 * 1 same object (adopt f if newer), 0 another object with that number. */
static int node_match(UnionNode *x, const UnionFound *f)
{
        if (x->removed || x->n_layers == 0)
                return 0;
        /* a directory's number is freed only with the directory, which this
         * union marks removed (rmdir, replaced, moved top-only part): while
         * a move shows it under two names, its handles differ */
        if (x->type == S_IFDIR)
                return 1;
        /* one branch, another handle: a reused number, not this object */
        if (x->layers[0].branch == f->layers[0].branch && x->layers[0].node != f->layers[0].node)
                return 0;
        return 1;
}

static bool node_should_adopt(UnionNode *x, const UnionFound *f)
{
        if (f->gen < x->gen)
                return false; /* the node was updated after f was read */
        if (x->type != S_IFDIR)
                return f->layers[0].branch < x->layers[0].branch;
        if (f->n_layers != x->n_layers)
                return true;
        for (unsigned i = 0; i < f->n_layers; i++)
                if (f->layers[i].node != x->layers[i].node)
                        return true;
        return f->impure && !x->impure;
}

/* A new directory node whose lookup read "not impure" while the union's
 * count moved (a copy-up may have marked it and gone, node and all): read
 * the mark again. */
static void node_recheck_impure(Union *u, UnionNode *n)
{
        LsNode *top = NULL;
        bool check;

        if (n->type != S_IFDIR || u->n_branches < 2)
                return;
        pthread_mutex_lock(&n->mu);
        check = !n->impure && n->gen != atomic_load(&u->gen) && n->n_layers > 0 &&
                n->layers[0].branch == 0;
        if (check)
                top = ls_node_ref(n->layers[0].node);
        pthread_mutex_unlock(&n->mu);
        if (!top)
                return;
        if (bops(top)->getxattr(top, UNION_XATTR_IMPURE, NULL, 0) >= 0) {
                pthread_mutex_lock(&n->mu);
                n->impure = true;
                pthread_mutex_unlock(&n->mu);
        }
        ls_node_unref(top);
}

int union_node_get(Union *u, UnionNode *dir, const char *name, UnionFound *f, UnionNode **np)
{
        UnionShard *s = shard_of(u, f->ino);
        mode_t type = f->st.st_mode & S_IFMT;
        UnionNode *n, *fresh, *hit = NULL;
        UnionNode *old_parent = NULL, *inserted = NULL;
        UnionLayer *drop = NULL;
        unsigned n_drop = 0;

        fresh = node_alloc(u, f);
        if (!fresh) {
                union_found_clear(f);
                return -ENOMEM;
        }
        pthread_mutex_lock(&s->mu);
        for (n = s->buckets[bucket_of(s, fresh->ino)]; n; n = n->hnext) {
                UnionFound view = {.layers = fresh->layers,
                                   .n_layers = fresh->n_layers,
                                   .gen = fresh->gen,
                                   .impure = fresh->impure};

                if (n->ino != fresh->ino || n->type != type)
                        continue;
                pthread_mutex_lock(&n->mu);
                if ((n->per_name || fresh->per_name) &&
                    !(n->per_name && fresh->per_name && dir && n->parent == dir && n->name &&
                      strcmp(n->name, name) == 0)) {
                        pthread_mutex_unlock(&n->mu);
                        continue;
                }
                if (node_match(n, &view) && ls_node_tryref(&n->base)) {
                        hit = n;
                        if (node_should_adopt(n, &view)) {
                                drop = n->layers;
                                n_drop = n->n_layers;
                                n->layers = fresh->layers;
                                n->n_layers = fresh->n_layers;
                                /* the mark only ever goes on: a lookup that read
                                 * the branch before a copy-up set it must not
                                 * clear it */
                                n->impure = n->impure || fresh->impure;
                                n->gen = fresh->gen;
                                fresh->layers = NULL;
                                fresh->n_layers = 0;
                        }
                        /* a directory has one name; a lower file the name
                         * it was last found by (copy-up goes there) */
                        if (dir && view.gen >= n->gen &&
                            (n->type == S_IFDIR || n->layers[0].branch != 0) &&
                            (n->parent != dir || !n->name || strcmp(n->name, name) != 0))
                                old_parent = set_name_locked(n, dir, name);
                        pthread_mutex_unlock(&n->mu);
                        break;
                }
                pthread_mutex_unlock(&n->mu);
        }
        if (!hit) {
                size_t k = bucket_of(s, fresh->ino);

                if (dir)
                        set_name_locked(fresh, dir, name); /* had none */
                fresh->hnext = s->buckets[k];
                s->buckets[k] = fresh;
                if (++s->n_nodes > s->n_buckets * 2)
                        shard_grow(s);
                *np = inserted = fresh;
                fresh = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        if (hit)
                *np = hit;
        if (inserted)
                node_recheck_impure(u, inserted);
        if (old_parent)
                ls_node_unref(&old_parent->base);
        union_layers_free(drop, n_drop);
        if (fresh) {
                /* never published: no one else knows it */
                union_layers_free(fresh->layers, fresh->n_layers);
                fresh->layers = NULL;
                fresh->n_layers = 0;
                pthread_mutex_destroy(&fresh->mu);
                pthread_mutex_destroy(&fresh->copy_mu);
                pthread_mutex_destroy(&fresh->ns_mu);
                ls_instance_unref(fresh->base.inst);
                free(fresh);
        }
        return 0;
}

void union_node_rekey(UnionNode *n, ino_t ino)
{
        Union *u = node_union(n);
        UnionShard *a = shard_of(u, n->ino), *b = shard_of(u, ino);
        UnionShard *first = a < b ? a : b, *second = a < b ? b : a;

        pthread_mutex_lock(&first->mu);
        if (second != first)
                pthread_mutex_lock(&second->mu);
        for (UnionNode **pp = &a->buckets[bucket_of(a, n->ino)]; *pp; pp = &(*pp)->hnext) {
                if (*pp == n) {
                        *pp = n->hnext;
                        a->n_nodes--;
                        break;
                }
        }
        pthread_mutex_lock(&n->mu);
        n->ino = ino;
        pthread_mutex_unlock(&n->mu);
        n->hnext = b->buckets[bucket_of(b, ino)];
        b->buckets[bucket_of(b, ino)] = n;
        if (++b->n_nodes > b->n_buckets * 2)
                shard_grow(b);
        if (second != first)
                pthread_mutex_unlock(&second->mu);
        pthread_mutex_unlock(&first->mu);
}

int union_node_renumber(UnionNode *n, UnionFound *f)
{
        Union *u = node_union(n);
        UnionShard *a = shard_of(u, n->ino), *b = shard_of(u, f->ino);
        UnionShard *first = a < b ? a : b, *second = a < b ? b : a;
        mode_t type = f->st.st_mode & S_IFMT;
        UnionLayer *drop = NULL;
        unsigned n_drop = 0;
        int r = 0;

        if (type != n->type)
                return -ESTALE;
        pthread_mutex_lock(&first->mu);
        if (second != first)
                pthread_mutex_lock(&second->mu);
        /* a lookup may already have made a node of the copy: keep that one */
        for (UnionNode *x = b->buckets[bucket_of(b, f->ino)]; x && r == 0; x = x->hnext) {
                if (x == n || x->ino != f->ino || x->type != type)
                        continue;
                pthread_mutex_lock(&x->mu);
                if (!x->removed && x->n_layers > 0)
                        r = -EEXIST;
                pthread_mutex_unlock(&x->mu);
        }
        if (r == 0) {
                pthread_mutex_lock(&n->mu);
                drop = n->layers;
                n_drop = n->n_layers;
                n->layers = f->layers;
                n->n_layers = f->n_layers;
                n->impure = n->impure || f->impure;
                n->gen = atomic_fetch_add(&u->gen, 1) + 1;
                pthread_mutex_unlock(&n->mu);
                f->layers = NULL;
                f->n_layers = 0;
                /* and its number, in the same critical section */
                for (UnionNode **pp = &a->buckets[bucket_of(a, n->ino)]; *pp; pp = &(*pp)->hnext) {
                        if (*pp == n) {
                                *pp = n->hnext;
                                a->n_nodes--;
                                break;
                        }
                }
                pthread_mutex_lock(&n->mu);
                n->ino = f->ino;
                pthread_mutex_unlock(&n->mu);
                n->hnext = b->buckets[bucket_of(b, f->ino)];
                b->buckets[bucket_of(b, f->ino)] = n;
                if (++b->n_nodes > b->n_buckets * 2)
                        shard_grow(b);
        }
        if (second != first)
                pthread_mutex_unlock(&second->mu);
        pthread_mutex_unlock(&first->mu);
        union_layers_free(drop, n_drop);
        return r;
}

UnionNode *union_node_new_root(Union *u, UnionFound *f)
{
        UnionNode *n;

        if (union_node_get(u, NULL, NULL, f, &n) < 0)
                return NULL;
        return n;
}

void union_node_free(LsNode *node)
{
        UnionNode *n = to_unode(node);
        Union *u = node_union(n);
        UnionShard *s = shard_of(u, n->ino);
        LsInstance *inst = node->inst;

        pthread_mutex_lock(&s->mu);
        for (UnionNode **pp = &s->buckets[bucket_of(s, n->ino)]; *pp; pp = &(*pp)->hnext) {
                if (*pp == n) {
                        *pp = n->hnext;
                        s->n_nodes--;
                        break;
                }
        }
        pthread_mutex_unlock(&s->mu);
        union_layers_free(n->layers, n->n_layers);
        if (n->parent)
                ls_node_unref(&n->parent->base);
        free(n->name);
        pthread_mutex_destroy(&n->mu);
        pthread_mutex_destroy(&n->copy_mu);
        pthread_mutex_destroy(&n->ns_mu);
        free(n);
        ls_instance_unref(inst);
}

static int ptr_cmp(const void *a, const void *b)
{
        uintptr_t x = (uintptr_t) * (UnionNode *const *)a, y = (uintptr_t) * (UnionNode *const *)b;

        return x < y ? -1 : x > y;
}

static size_t dirs_sorted(UnionNode **dirs, size_t n, UnionNode **out)
{
        size_t m = 0;

        for (size_t i = 0; i < n; i++)
                if (dirs[i])
                        out[m++] = dirs[i];
        qsort(out, m, sizeof(*out), ptr_cmp);
        return m;
}

void union_lock_dirs(UnionNode **dirs, size_t n)
{
        UnionNode *s[8];
        size_t m = dirs_sorted(dirs, n < 8 ? n : 8, s);

        for (size_t i = 0; i < m; i++)
                if (i == 0 || s[i] != s[i - 1])
                        pthread_mutex_lock(&s[i]->ns_mu);
}

void union_unlock_dirs(UnionNode **dirs, size_t n)
{
        UnionNode *s[8];
        size_t m = dirs_sorted(dirs, n < 8 ? n : 8, s);

        for (size_t i = m; i-- > 0;)
                if (i == 0 || s[i] != s[i - 1])
                        pthread_mutex_unlock(&s[i]->ns_mu);
}

void union_node_touch(UnionNode *dir)
{
        if (dir)
                atomic_fetch_add_explicit(&dir->mods, 1, memory_order_release);
}

int union_node_stat(UnionNode *n, struct stat *st)
{
        struct stat tmp;
        LsNode *h;
        int r;

        if (!st)
                st = &tmp;
        r = union_node_first(n, &h, NULL);
        if (r < 0)
                return r;
        r = bops(h)->getattr(h, st);
        ls_node_unref(h);
        if (r < 0)
                return r;
        pthread_mutex_lock(&n->mu);
        st->st_ino = n->ino;
        if (n->type == S_IFDIR && n->n_layers > 1)
                st->st_nlink = 1;
        pthread_mutex_unlock(&n->mu);
        return 0;
}
