/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Node Table: LsNode handle -> CoreNode, one node per handle. Handles are
 * unique while alive (libservice.h), so the handle pointer is the whole
 * key: hard links, two plain mounts of one directory and every front share
 * one node, and an inode number the backend reuses comes with a new handle,
 * hence a new node (the generation problem is the libservice's, solved by
 * its handle identity).
 *
 * Sharded by the handle's hash, each shard with its own mutex: no global
 * lock. A node's count (n_refs) holds its internal references plus one per
 * front holding it; the per-front counts (FUSE lookup counts) live in the
 * node's slots under its own lock. The count reaches 0 only under the
 * shard's lock, which then unlinks the node, so a lookup (which raises the
 * count under that lock) never finds a dying node.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core-private.h"

#define SHARD_BUCKETS_MIN 64
#define DROP_BATCH        64

static uint64_t mix64(uint64_t x)
{
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebULL;
        x ^= x >> 31;
        return x;
}

static uint64_t ls_hash(const LsNode *ls)
{
        return mix64((uint64_t)(uintptr_t)ls);
}

static Shard *shard_of(Core *c, uint64_t h)
{
        return &c->shards[h & (CORE_N_SHARDS - 1)];
}

static CoreNode **bucket_of(Shard *s, uint64_t h)
{
        /* the low bits chose the shard, the next ones the bucket */
        return &s->buckets[(h / CORE_N_SHARDS) & (s->n_buckets - 1)];
}

/* Doubles the buckets when the chains grow long (shard locked). Failure
 * leaves longer chains, nothing worse. */
static void shard_grow(Shard *s)
{
        size_t n = s->n_buckets ? s->n_buckets * 2 : SHARD_BUCKETS_MIN;
        CoreNode **old = s->buckets;
        size_t old_n = s->n_buckets, i;

        if (s->n_buckets && s->n_nodes <= s->n_buckets * 2)
                return;
        s->buckets = calloc(n, sizeof(*s->buckets));
        if (!s->buckets) {
                s->buckets = old;
                return;
        }
        s->n_buckets = n;
        for (i = 0; i < old_n; i++) {
                CoreNode *node = old[i], *next;

                for (; node; node = next) {
                        CoreNode **b = bucket_of(s, ls_hash(node->ls));

                        next = node->next;
                        node->next = *b;
                        *b = node;
                }
        }
        free(old);
}

static CoreNode *shard_find(Shard *s, uint64_t h, const LsNode *ls)
{
        CoreNode *n;

        if (!s->n_buckets)
                return NULL;
        for (n = *bucket_of(s, h); n; n = n->next)
                if (n->ls == ls)
                        return n;
        return NULL;
}

static CoreNode *node_alloc(Core *c, LsNode *ls)
{
        CoreNode *n = calloc(1, sizeof(*n) + 2 * sizeof(FrontSlot));

        if (!n)
                return NULL;
        n->ls = ls;
        n->core = c;
        n->id = atomic_fetch_add_explicit(&c->next_id, 1, memory_order_relaxed);
        atomic_init(&n->n_refs, 1);
        atomic_init(&n->type, 0);
        atomic_init(&n->n_fronts, 0);
        atomic_init(&n->mtime_gen, 0);
        atomic_init(&n->sec_gen, 0);
        atomic_init(&n->nosec_at, 0);
        pthread_mutex_init(&n->lock, NULL);
        pthread_mutex_init(&n->wb_lock, NULL);
        /* two slots in the same allocation: most nodes have one front */
        n->slots = (FrontSlot *)(n + 1);
        n->cap_slots = 2;
        return n;
}

void node_set_type(CoreNode *n, mode_t mode)
{
        if (mode & S_IFMT)
                atomic_store_explicit(&n->type, mode & S_IFMT, memory_order_relaxed);
}

void node_set_parent(CoreNode *n, CoreNode *parent)
{
        CoreNode *old;

        if (parent == n)
                return;
        pthread_mutex_lock(&n->lock);
        old = n->parent;
        if (old == parent) {
                pthread_mutex_unlock(&n->lock);
                return;
        }
        n->parent = core_node_ref(parent);
        pthread_mutex_unlock(&n->lock);
        core_node_unref(old);
}

CoreNode *node_get_parent(CoreNode *n)
{
        CoreNode *p;

        pthread_mutex_lock(&n->lock);
        p = core_node_ref(n->parent);
        pthread_mutex_unlock(&n->lock);
        return p;
}

int node_enter(Core *c, LsNode *ls, const struct stat *st, CoreNode *dir, CoreNode **nodep)
{
        uint64_t h = ls_hash(ls);
        Shard *s = shard_of(c, h);
        CoreNode *n;
        bool found;

        pthread_mutex_lock(&s->lock);
        n = shard_find(s, h, ls);
        found = n != NULL;
        if (found) {
                atomic_fetch_add_explicit(&n->n_refs, 1, memory_order_relaxed);
        } else {
                n = node_alloc(c, ls);
                if (!n) {
                        pthread_mutex_unlock(&s->lock);
                        ls_node_unref(ls);
                        return -ENOMEM;
                }
                shard_grow(s);
                CoreNode **b = bucket_of(s, h);
                n->next = *b;
                *b = n;
                s->n_nodes++;
                atomic_fetch_add_explicit(&c->n_nodes, 1, memory_order_relaxed);
        }
        pthread_mutex_unlock(&s->lock);
        if (found)
                ls_node_unref(ls); /* the node holds its own */
        if (st)
                node_set_type(n, st->st_mode);
        if (dir && st && S_ISDIR(st->st_mode))
                node_set_parent(n, dir);
        *nodep = n;
        return 0;
}

CoreNode *node_find(Core *c, LsNode *ls)
{
        uint64_t h = ls_hash(ls);
        Shard *s = shard_of(c, h);
        CoreNode *n;

        pthread_mutex_lock(&s->lock);
        n = shard_find(s, h, ls);
        if (n)
                atomic_fetch_add_explicit(&n->n_refs, 1, memory_order_relaxed);
        pthread_mutex_unlock(&s->lock);
        return n;
}

int core_node_get(Core *core, LsNode *ls, CoreNode **nodep)
{
        struct stat st;
        int r;

        /* its type, for walks and checks */
        r = ls_ops(ls)->getattr(ls, &st);
        if (r < 0)
                return r;
        return node_enter(core, ls_node_ref(ls), &st, NULL, nodep);
}

CoreNode *core_node_ref(CoreNode *node)
{
        if (node)
                atomic_fetch_add_explicit(&node->n_refs, 1, memory_order_relaxed);
        return node;
}

/* Drops one reference; true when it was the last: the node is then out of
 * the table and the caller destroys it. */
static bool node_put(CoreNode *n)
{
        unsigned v = atomic_load_explicit(&n->n_refs, memory_order_relaxed);
        uint64_t h;
        Shard *s;

        /* Not the last: no lock. release: our uses of the node happen before
         * whoever frees it (its acquire below). */
        while (v > 1)
                if (atomic_compare_exchange_weak_explicit(
                        &n->n_refs, &v, v - 1, memory_order_release, memory_order_relaxed))
                        return false;
        h = ls_hash(n->ls);
        s = shard_of(n->core, h);
        pthread_mutex_lock(&s->lock);
        if (atomic_fetch_sub_explicit(&n->n_refs, 1, memory_order_acq_rel) != 1) {
                pthread_mutex_unlock(&s->lock);
                return false;
        }
        for (CoreNode **p = bucket_of(s, h); *p; p = &(*p)->next)
                if (*p == n) {
                        *p = n->next;
                        break;
                }
        s->n_nodes--;
        pthread_mutex_unlock(&s->lock);
        return true;
}

/* Frees a node out of the table; returns its parent, whose reference the
 * caller drops (a loop, not recursion: parent chains can be long). */
static CoreNode *node_destroy(CoreNode *n)
{
        CoreNode *parent = n->parent;

        /* n->io holds a node reference: none is left at 0 */
        if (n->dir)
                dir_state_free(n->dir);
        if (n->slots != (FrontSlot *)(n + 1))
                free(n->slots);
        pthread_mutex_destroy(&n->lock);
        pthread_mutex_destroy(&n->wb_lock);
        atomic_fetch_sub_explicit(&n->core->n_nodes, 1, memory_order_relaxed);
        ls_node_unref(n->ls);
        free(n);
        return parent;
}

CoreNode *core_node_unref(CoreNode *node)
{
        while (node && node_put(node))
                node = node_destroy(node);
        return NULL;
}

static FrontSlot *slot_find(CoreNode *n, const CoreFront *f)
{
        unsigned i;

        for (i = 0; i < n->n_slots; i++)
                if (n->slots[i].front == f)
                        return &n->slots[i];
        return NULL;
}

int core_front_hold(CoreFront *front, CoreNode *node, uint64_t cnt)
{
        FrontSlot *slot;

        if (cnt == 0)
                return 0;
        pthread_mutex_lock(&node->lock);
        slot = slot_find(node, front);
        if (slot) {
                slot->count += cnt;
                pthread_mutex_unlock(&node->lock);
                return 0;
        }
        if (node->n_slots == node->cap_slots) {
                unsigned cap = node->cap_slots * 2;
                FrontSlot *s = malloc(cap * sizeof(*s));

                if (!s) {
                        pthread_mutex_unlock(&node->lock);
                        return -ENOMEM;
                }
                memcpy(s, node->slots, node->n_slots * sizeof(*s));
                if (node->slots != (FrontSlot *)(node + 1))
                        free(node->slots);
                node->slots = s;
                node->cap_slots = cap;
        }
        node->slots[node->n_slots++] = (FrontSlot){.front = front, .count = cnt};
        atomic_store_explicit(&node->n_fronts, node->n_slots, memory_order_relaxed);
        /* the front's reference on the node */
        atomic_fetch_add_explicit(&node->n_refs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&front->n_nodes, 1, memory_order_relaxed);
        pthread_mutex_unlock(&node->lock);
        return 0;
}

void core_forget(CoreFront *front, CoreNode *node, uint64_t cnt)
{
        CoreFile *io = NULL;
        FrontSlot *slot;
        bool gone = false;

        pthread_mutex_lock(&node->lock);
        slot = slot_find(node, front);
        if (slot && cnt < slot->count) {
                slot->count -= cnt;
        } else if (slot) {
                *slot = node->slots[--node->n_slots];
                atomic_store_explicit(&node->n_fronts, node->n_slots, memory_order_relaxed);
                atomic_fetch_sub_explicit(&front->n_nodes, 1, memory_order_relaxed);
                gone = true;
                /* no front left to send io requests: the file (and its fd)
                 * goes; it held a node reference of its own */
                if (node->n_slots == 0)
                        io = io_take(node);
        }
        pthread_mutex_unlock(&node->lock);
        core_file_unref(io);
        if (gone)
                core_node_unref(node);
}

size_t core_front_n_nodes(CoreFront *front)
{
        return atomic_load_explicit(&front->n_nodes, memory_order_relaxed);
}

uint64_t core_front_count(CoreFront *front, CoreNode *node)
{
        FrontSlot *slot;
        uint64_t n;

        pthread_mutex_lock(&node->lock);
        slot = slot_find(node, front);
        n = slot ? slot->count : 0;
        pthread_mutex_unlock(&node->lock);
        return n;
}

LsNode *core_node_ls(const CoreNode *node)
{
        return node->ls;
}

uint64_t core_node_id(const CoreNode *node)
{
        return node->id;
}

mode_t core_node_type(const CoreNode *node)
{
        return atomic_load_explicit(&((CoreNode *)node)->type, memory_order_relaxed);
}

/* Up to DROP_BATCH nodes of shard s where front has a slot, referenced. */
static size_t shard_collect(Shard *s, CoreFront *front, CoreNode **out)
{
        size_t i, n = 0;

        pthread_mutex_lock(&s->lock);
        for (i = 0; i < s->n_buckets && n < DROP_BATCH; i++) {
                CoreNode *node;

                for (node = s->buckets[i]; node && n < DROP_BATCH; node = node->next) {
                        bool held;

                        pthread_mutex_lock(&node->lock);
                        held = slot_find(node, front) != NULL;
                        pthread_mutex_unlock(&node->lock);
                        if (held) {
                                atomic_fetch_add_explicit(&node->n_refs, 1, memory_order_relaxed);
                                out[n++] = node;
                        }
                }
        }
        pthread_mutex_unlock(&s->lock);
        return n;
}

void node_table_drop_front(Core *core, CoreFront *front)
{
        CoreNode *batch[DROP_BATCH];
        size_t i, j, n;

        for (i = 0; i < CORE_N_SHARDS; i++)
                while ((n = shard_collect(&core->shards[i], front, batch)) > 0)
                        for (j = 0; j < n; j++) {
                                core_forget(front, batch[j], UINT64_MAX);
                                core_node_unref(batch[j]);
                        }
}

void node_table_clear(Core *core)
{
        size_t i, b;

        for (i = 0; i < CORE_N_SHARDS; i++) {
                Shard *s = &core->shards[i];

                for (b = 0; b < s->n_buckets; b++) {
                        CoreNode *n, *next;

                        for (n = s->buckets[b]; n; n = next) {
                                next = n->next;
                                /* leaked by an internal holder: freed as is */
                                if (n->io) {
                                        LsFile *ls = n->io->ls;

                                        free(n->io);
                                        ls_ops(n->ls)->release(ls);
                                }
                                n->parent = NULL;
                                node_destroy(n);
                        }
                        s->buckets[b] = NULL;
                }
                s->n_nodes = 0;
        }
}
