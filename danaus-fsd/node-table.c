/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Node Table: node ids, lookup counts and the paths behind them (see
 * node-table.h for the model and the lock order).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h> /* RENAME_EXCHANGE */
#include <stdlib.h>
#include <string.h>

#include "libservice/libservice.h"
#include "node-table.h"

#define NODE_ROOT_ID      1  /* FUSE_ROOT_ID, without pulling libfuse in here */
#define NODE_MAX_PATHS    4  /* names kept per hard-linked file; the oldest goes first */
#define N_SHARDS          64 /* power of two */
#define SHARD_BUCKETS_MIN 64
#define NODE_NAME_SLOTS   8 /* removal counts per directory, by name hash */

struct Node {
        Node *next;           /* bucket chain, protected by the shard's lock */
        dev_t dev;            /* key, immutable */
        ino_t ino;            /* key, immutable */
        uint64_t nlookup;     /* protected by the shard's lock */
        pthread_mutex_t lock; /* protects type and paths; taken after the shard's */
        mode_t type;          /* S_IFMT bits */
        NodeFile *io;         /* the io file, see node_io_hold() */
        struct stat *gone;    /* see node_set_gone_attr() */
        _Atomic unsigned names_seq[NODE_NAME_SLOTS]; /* see node_names_changed() */
        _Atomic unsigned listing_gen;                /* see node_listing_changed() */
        unsigned n_paths;
        char *paths[NODE_MAX_PATHS]; /* [0] is the name used for operations */
};

typedef struct Shard {
        pthread_mutex_t lock;
        Node **buckets;
        size_t n_buckets; /* power of two */
        size_t n_nodes;
} __attribute__((aligned(64))) Shard; /* a cache line each: shards never false-share */

struct NodeTable {
        Shard shards[N_SHARDS];
        Node *root;
        /* Odd while a directory rename is changing paths; read by lookups to
         * detect a path built from a parent's stale name. Writers hold
         * rename_lock. */
        _Atomic unsigned rename_seq;
        pthread_mutex_t rename_lock; /* serialises directory renames only */
        void (*io_drop)(NodeFile *nf, void *ctx);
        void *io_drop_ctx;
};

static uint64_t mix64(uint64_t x)
{
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebULL;
        x ^= x >> 31;
        return x;
}

static uint64_t key_hash(dev_t dev, ino_t ino)
{
        return mix64((uint64_t)ino ^ mix64((uint64_t)dev));
}

static Shard *shard_of(NodeTable *t, uint64_t h)
{
        return &t->shards[h & (N_SHARDS - 1)];
}

static Node **bucket_of(Shard *s, uint64_t h)
{
        /* The low bits chose the shard; the next ones choose the bucket. */
        return &s->buckets[(h / N_SHARDS) & (s->n_buckets - 1)];
}

static Node *shard_find(Shard *s, uint64_t h, dev_t dev, ino_t ino)
{
        Node *n;

        for (n = *bucket_of(s, h); n; n = n->next)
                if (n->ino == ino && n->dev == dev)
                        return n;
        return NULL;
}

/* Doubles the bucket array; on allocation failure the chains just grow. */
static void shard_grow(Shard *s)
{
        size_t i, n_old = s->n_buckets;
        Node **old = s->buckets;
        Node **nb = calloc(n_old * 2, sizeof(*nb));

        if (!nb)
                return;
        s->buckets = nb;
        s->n_buckets = n_old * 2;
        for (i = 0; i < n_old; i++) {
                Node *n = old[i], *next;

                for (; n; n = next) {
                        Node **b = bucket_of(s, key_hash(n->dev, n->ino));

                        next = n->next;
                        n->next = *b;
                        *b = n;
                }
        }
        free(old);
}

static void shard_unlink(Shard *s, Node *n)
{
        Node **pp = bucket_of(s, key_hash(n->dev, n->ino));

        for (; *pp; pp = &(*pp)->next) {
                if (*pp == n) {
                        *pp = n->next;
                        s->n_nodes--;
                        return;
                }
        }
}

static Node *node_alloc(dev_t dev, ino_t ino, mode_t type)
{
        Node *n = calloc(1, sizeof(*n));

        if (!n)
                return NULL;
        pthread_mutex_init(&n->lock, NULL);
        n->dev = dev;
        n->ino = ino;
        n->type = type;
        return n;
}

static void node_clear_paths(Node *n)
{
        unsigned i;

        for (i = 0; i < n->n_paths; i++)
                free(n->paths[i]);
        n->n_paths = 0;
}

/* Takes the io file off n (under its lock, or with n unreachable). */
static NodeFile *node_io_detach(Node *n)
{
        NodeFile *io = n->io;

        n->io = NULL;
        return io;
}

static void table_io_drop(NodeTable *t, NodeFile *io)
{
        if (io && t->io_drop)
                t->io_drop(io, t->io_drop_ctx);
}

static Node *node_free(Node *n)
{
        if (n) {
                free(n->gone);
                node_clear_paths(n);
                pthread_mutex_destroy(&n->lock);
                free(n);
        }
        return NULL;
}

static void node_remove_path_at(Node *n, unsigned i)
{
        free(n->paths[i]);
        memmove(&n->paths[i], &n->paths[i + 1], (n->n_paths - i - 1) * sizeof(n->paths[0]));
        n->n_paths--;
}

/* Makes copy (taken over) the node's first name. A directory has exactly one
 * name; a file keeps the few most recently seen ones. */
static void node_add_path(Node *n, char *copy)
{
        unsigned i;

        if (S_ISDIR(n->type))
                node_clear_paths(n);
        for (i = 0; i < n->n_paths; i++) {
                if (strcmp(n->paths[i], copy) == 0) {
                        node_remove_path_at(n, i);
                        break;
                }
        }
        if (n->n_paths == NODE_MAX_PATHS)
                node_remove_path_at(n, NODE_MAX_PATHS - 1);
        memmove(&n->paths[1], &n->paths[0], n->n_paths * sizeof(n->paths[0]));
        n->paths[0] = copy;
        n->n_paths++;
}

static void node_remove_path(Node *n, const char *path)
{
        unsigned i;

        for (i = 0; i < n->n_paths; i++) {
                if (strcmp(n->paths[i], path) == 0) {
                        node_remove_path_at(n, i);
                        return;
                }
        }
}

int node_table_new(NodeTable **tablep)
{
        NodeTable *t;
        size_t i;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        pthread_mutex_init(&t->rename_lock, NULL);
        for (i = 0; i < N_SHARDS; i++) {
                Shard *s = &t->shards[i];

                pthread_mutex_init(&s->lock, NULL);
                s->n_buckets = SHARD_BUCKETS_MIN;
                s->buckets = calloc(s->n_buckets, sizeof(*s->buckets));
                if (!s->buckets)
                        goto fail;
        }
        t->root = node_alloc(0, 0, S_IFDIR);
        if (!t->root)
                goto fail;
        t->root->paths[0] = strdup("");
        if (!t->root->paths[0])
                goto fail;
        t->root->n_paths = 1;
        *tablep = t;
        return 0;
fail:
        node_table_free(t);
        return -ENOMEM;
}

NodeTable *node_table_free(NodeTable *t)
{
        size_t i, b;

        if (!t)
                return NULL;
        for (i = 0; i < N_SHARDS; i++) {
                Shard *s = &t->shards[i];

                for (b = 0; s->buckets && b < s->n_buckets; b++) {
                        Node *n = s->buckets[b], *next;

                        for (; n; n = next) {
                                next = n->next;
                                node_free(n);
                        }
                }
                free(s->buckets);
                pthread_mutex_destroy(&s->lock);
        }
        node_free(t->root);
        pthread_mutex_destroy(&t->rename_lock);
        free(t);
        return NULL;
}

Node *node_table_get(NodeTable *t, uint64_t nodeid)
{
        if (nodeid == NODE_ROOT_ID)
                return t->root;
        return (Node *)(uintptr_t)nodeid;
}

uint64_t node_table_id(NodeTable *t, Node *n)
{
        if (n == t->root)
                return NODE_ROOT_ID;
        return (uint64_t)(uintptr_t)n;
}

bool node_is(const Node *n, const struct stat *st)
{
        return n->dev == st->st_dev && n->ino == st->st_ino;
}

int node_path(Node *n, char buf[PATH_MAX])
{
        int r = -ENOENT;

        pthread_mutex_lock(&n->lock);
        if (n->n_paths > 0) {
                size_t len = strlen(n->paths[0]);

                /* Stored paths were built by ls_path_join() into PATH_MAX. */
                memcpy(buf, n->paths[0], len + 1);
                r = (int)len;
        }
        pthread_mutex_unlock(&n->lock);
        return r;
}

int node_child_path(NodeTable *t, Node *parent, const char *name, char buf[PATH_MAX],
                    unsigned *seqp)
{
        unsigned seq;
        int r = -ENOENT;

        /* acquire: pairs with the release increment that ends a directory
         * rename, so the parent's path read below is the rewritten one. */
        while ((seq = atomic_load_explicit(&t->rename_seq, memory_order_acquire)) & 1)
                sched_yield();
        pthread_mutex_lock(&parent->lock);
        if (parent->n_paths > 0)
                r = ls_path_join(buf, PATH_MAX, parent->paths[0], name);
        pthread_mutex_unlock(&parent->lock);
        *seqp = seq;
        return r;
}

static _Atomic unsigned *names_slot(Node *dir, const char *name)
{
        uint32_t h = 2166136261u; /* FNV-1a */

        for (; *name; name++)
                h = (h ^ (unsigned char)*name) * 16777619u;
        return &dir->names_seq[h % NODE_NAME_SLOTS];
}

unsigned node_names_seq(Node *dir, const char *name)
{
        return atomic_load_explicit(names_slot(dir, name), memory_order_seq_cst);
}

void node_names_changed(Node *dir, const char *name)
{
        atomic_fetch_add_explicit(names_slot(dir, name), 1, memory_order_seq_cst);
}

unsigned node_listing_gen(Node *dir)
{
        return atomic_load_explicit(&dir->listing_gen, memory_order_acquire);
}

void node_listing_changed(Node *dir)
{
        atomic_fetch_add_explicit(&dir->listing_gen, 1, memory_order_release);
}

int node_table_lookup_in(NodeTable *t, const struct stat *st, const char *path, unsigned seq,
                         Node *dir, const char *name, unsigned names_seq, Node **nodep)
{
        uint64_t h = key_hash(st->st_dev, st->st_ino);
        Shard *s = shard_of(t, h);
        mode_t type = st->st_mode & S_IFMT;
        NodeFile *stale = NULL;
        char *copy;
        Node *n;

        copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        pthread_mutex_lock(&s->lock);
        /* A directory rename bumps the count before it takes any shard lock
         * and rewrites each shard under its lock: either it has not reached
         * this shard yet (and will rewrite what we insert) or the count has
         * moved. */
        if (seq != NODE_SEQ_ANY &&
            atomic_load_explicit(&t->rename_seq, memory_order_relaxed) != seq) {
                pthread_mutex_unlock(&s->lock);
                free(copy);
                return -EAGAIN;
        }
        /* Under the lock of the shard the name's node lives in, which the
         * removal takes to forget the name after bumping the count: either
         * the count moved, or the removal will find what we add. */
        if (dir && node_names_seq(dir, name) != names_seq) {
                pthread_mutex_unlock(&s->lock);
                free(copy);
                return -ESTALE;
        }
        n = shard_find(s, h, st->st_dev, st->st_ino);
        if (!n) {
                Node **b;

                n = node_alloc(st->st_dev, st->st_ino, type);
                if (!n) {
                        pthread_mutex_unlock(&s->lock);
                        free(copy);
                        return -ENOMEM;
                }
                if (s->n_nodes >= s->n_buckets * 2)
                        shard_grow(s);
                b = bucket_of(s, h);
                n->next = *b;
                *b = n;
                s->n_nodes++;
        }
        pthread_mutex_lock(&n->lock);
        if (n->type != type) {
                /* The number was reused by a file of another kind while the
                 * kernel still holds the old one: its names are meaningless. */
                node_clear_paths(n);
                n->type = type;
        }
        /* Every name was gone: the io file kept the data for whoever had it
         * open, but this number may now be another file's. */
        if (n->n_paths == 0) {
                stale = node_io_detach(n);
                free(n->gone);
                n->gone = NULL;
        }
        node_add_path(n, copy);
        pthread_mutex_unlock(&n->lock);
        n->nlookup++;
        pthread_mutex_unlock(&s->lock);
        table_io_drop(t, stale);
        *nodep = n;
        return 0;
}

void node_table_forget(NodeTable *t, Node *n, uint64_t nlookup)
{
        Shard *s;
        bool gone;

        if (n == t->root)
                return;
        s = shard_of(t, key_hash(n->dev, n->ino));
        pthread_mutex_lock(&s->lock);
        n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
        gone = n->nlookup == 0;
        if (gone)
                shard_unlink(s, n);
        pthread_mutex_unlock(&s->lock);
        if (gone) {
                table_io_drop(t, node_io_detach(n));
                node_free(n);
        }
}

Node *node_table_hold(NodeTable *t, const struct stat *st)
{
        uint64_t h = key_hash(st->st_dev, st->st_ino);
        Shard *s = shard_of(t, h);
        Node *n;

        pthread_mutex_lock(&s->lock);
        n = shard_find(s, h, st->st_dev, st->st_ino);
        if (n)
                n->nlookup++;
        pthread_mutex_unlock(&s->lock);
        return n;
}

void node_table_set_io_drop(NodeTable *t, void (*drop)(NodeFile *nf, void *ctx), void *ctx)
{
        t->io_drop = drop;
        t->io_drop_ctx = ctx;
}

NodeFile *node_io_hold(Node *n, void (*hold)(NodeFile *nf))
{
        NodeFile *io;

        pthread_mutex_lock(&n->lock);
        io = n->io;
        if (io)
                hold(io);
        pthread_mutex_unlock(&n->lock);
        return io;
}

bool node_io_replace(Node *n, NodeFile *expect, NodeFile *nf)
{
        bool done;

        pthread_mutex_lock(&n->lock);
        done = n->io == expect;
        if (done)
                n->io = nf;
        pthread_mutex_unlock(&n->lock);
        return done;
}

/* Runs fn on the node keyed by st, under its shard's and its own lock. */
static void with_node(NodeTable *t, const struct stat *st, void (*fn)(Node *, const void *),
                      const void *arg)
{
        uint64_t h = key_hash(st->st_dev, st->st_ino);
        Shard *s = shard_of(t, h);
        Node *n;

        pthread_mutex_lock(&s->lock);
        n = shard_find(s, h, st->st_dev, st->st_ino);
        if (n) {
                pthread_mutex_lock(&n->lock);
                fn(n, arg);
                pthread_mutex_unlock(&n->lock);
        }
        pthread_mutex_unlock(&s->lock);
}

static void remove_path_fn(Node *n, const void *path)
{
        node_remove_path(n, path);
}

void node_set_gone_attr(Node *n, const struct stat *st)
{
        struct stat *copy = malloc(sizeof(*copy));

        if (!copy)
                return; /* fstat of it answers ENOENT, as before */
        *copy = *st;
        copy->st_nlink = 0;
        pthread_mutex_lock(&n->lock);
        free(n->gone);
        n->gone = copy;
        pthread_mutex_unlock(&n->lock);
}

bool node_gone_attr(Node *n, struct stat *st)
{
        bool have;

        pthread_mutex_lock(&n->lock);
        have = n->gone != NULL;
        if (have)
                *st = *n->gone;
        pthread_mutex_unlock(&n->lock);
        return have;
}

void node_drop_path(Node *n, const char *path)
{
        pthread_mutex_lock(&n->lock);
        node_remove_path(n, path);
        pthread_mutex_unlock(&n->lock);
}

void node_table_unlinked(NodeTable *t, const struct stat *st, const char *path)
{
        with_node(t, st, remove_path_fn, path);
}

/* If path is prefix or below it, returns the length of prefix, else 0. */
static size_t path_under(const char *path, const char *prefix)
{
        size_t len = strlen(prefix);

        if (strncmp(path, prefix, len) == 0 && (path[len] == '\0' || path[len] == '/'))
                return len;
        return 0;
}

/* The name path gets from the rename: NULL when the rename does not touch
 * it, else a new string, or path itself when that cannot be built (the
 * caller then drops the name: a missing name costs a lookup, a wrong one
 * an error). */
static char *rename_map(const char *path, const NodeRename *rn)
{
        const char *to;
        size_t cut, n_to, n_rest;
        char *out;

        if ((cut = path_under(path, rn->oldpath)))
                to = rn->newpath;
        else if ((rn->flags & RENAME_EXCHANGE) && (cut = path_under(path, rn->newpath)))
                to = rn->oldpath;
        else
                return NULL;
        n_to = strlen(to);
        n_rest = strlen(path + cut);
        if (n_to + n_rest >= PATH_MAX)
                return (char *)path;
        out = malloc(n_to + n_rest + 1);
        if (!out)
                return (char *)path;
        memcpy(out, to, n_to);
        memcpy(out + n_to, path + cut, n_rest + 1);
        return out;
}

static void rename_fn(Node *n, const void *arg)
{
        const NodeRename *rn = arg;
        unsigned i, j;

        for (i = 0; i < n->n_paths;) {
                char *to = rename_map(n->paths[i], rn);

                if (!to) {
                        i++;
                } else if (to == n->paths[i]) {
                        node_remove_path_at(n, i);
                } else {
                        free(n->paths[i]);
                        n->paths[i++] = to;
                }
        }
        /* Two names of one file can map onto one (a rename over a stale one). */
        for (i = 0; i < n->n_paths; i++)
                for (j = i + 1; j < n->n_paths;)
                        if (strcmp(n->paths[i], n->paths[j]) == 0)
                                node_remove_path_at(n, j);
                        else
                                j++;
}

static bool same_key(const struct stat *a, const struct stat *b)
{
        return a->st_ino == b->st_ino && a->st_dev == b->st_dev;
}

void node_table_rename_begin(NodeTable *t, NodeRename *rn)
{
        rn->dirs = S_ISDIR(rn->src->st_mode) ||
                   ((rn->flags & RENAME_EXCHANGE) && rn->dst && S_ISDIR(rn->dst->st_mode));
        if (!rn->dirs)
                return;
        pthread_mutex_lock(&t->rename_lock);
        /* Odd: lookups wait instead of building paths under the moving tree. */
        atomic_fetch_add_explicit(&t->rename_seq, 1, memory_order_seq_cst);
}

void node_table_rename_end(NodeTable *t, NodeRename *rn, bool done)
{
        size_t i, b;

        if (done && rn->dst && !(rn->flags & RENAME_EXCHANGE) && !same_key(rn->src, rn->dst))
                with_node(t, rn->dst, remove_path_fn, rn->newpath);
        if (!rn->dirs) {
                /* A file has no descendants: only one or two nodes move.
                 * Renaming a name onto another link of the same file is a
                 * no-op (rename(2)): the node keeps both names. */
                if (done && !(rn->dst && same_key(rn->src, rn->dst))) {
                        with_node(t, rn->src, rename_fn, rn);
                        if (rn->dst && (rn->flags & RENAME_EXCHANGE))
                                with_node(t, rn->dst, rename_fn, rn);
                }
                return;
        }
        for (i = 0; done && i < N_SHARDS; i++) {
                Shard *s = &t->shards[i];

                pthread_mutex_lock(&s->lock);
                for (b = 0; b < s->n_buckets; b++) {
                        Node *n;

                        for (n = s->buckets[b]; n; n = n->next) {
                                pthread_mutex_lock(&n->lock);
                                rename_fn(n, rn);
                                pthread_mutex_unlock(&n->lock);
                        }
                }
                pthread_mutex_unlock(&s->lock);
        }
        /* release: pairs with the acquire in node_child_path(). */
        atomic_fetch_add_explicit(&t->rename_seq, 1, memory_order_release);
        pthread_mutex_unlock(&t->rename_lock);
}

int node_io_call(Node *n, int (*fn)(NodeFile *nf, void *ctx), void *ctx)
{
        int r = -ENOENT;

        pthread_mutex_lock(&n->lock);
        if (n->io)
                r = fn(n->io, ctx);
        pthread_mutex_unlock(&n->lock);
        return r;
}

static void node_drain_io(Node *n, void (*fn)(NodeFile *nf, void *ctx), void *ctx)
{
        NodeFile *io = node_io_detach(n);

        if (io)
                fn(io, ctx);
}

void node_table_drain_io(NodeTable *t, void (*fn)(NodeFile *nf, void *ctx), void *ctx)
{
        size_t i, b;

        node_drain_io(t->root, fn, ctx);
        for (i = 0; i < N_SHARDS; i++)
                for (b = 0; b < t->shards[i].n_buckets; b++)
                        for (Node *n = t->shards[i].buckets[b]; n; n = n->next)
                                node_drain_io(n, fn, ctx);
}

size_t node_table_count(NodeTable *t)
{
        size_t i, n = 0;

        for (i = 0; i < N_SHARDS; i++) {
                pthread_mutex_lock(&t->shards[i].lock);
                n += t->shards[i].n_nodes;
                pthread_mutex_unlock(&t->shards[i].lock);
        }
        return n;
}
