/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Private to libdanaus/core/: the objects behind core.h and the helpers its
 * files share (core.c: the core and its fronts; node-table.c: nodes and
 * per-front counts; dir-state.c: negative entries and listing generations;
 * notify.c: change notifications; walk.c: the path walk; ops-name.c,
 * ops-attr.c: operations; file.c: open and io files; dir-snap.c: listings).
 *
 * Lock order: a shard's lock, then a node's lock (never two node locks at
 * once); a node's wb_lock (write-back mtime) is taken before its lock and is
 * the only lock held across a backend call. Callbacks to fronts run with no
 * lock held.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h> /* R_OK, W_OK, X_OK, SEEK_DATA */

#include "core/core.h"

#define CORE_N_SHARDS    64 /* power of two */
#define CORE_NEG_MAX     8  /* negative entries kept per directory */
#define CORE_SNAP_MAX    8  /* listings kept per directory: the current + recent */
#define CORE_MAXSYMLINKS 40

typedef struct Shard {
        pthread_mutex_t lock;
        CoreNode **buckets;
        size_t n_buckets; /* power of two */
        size_t n_nodes;
} __attribute__((aligned(64))) Shard; /* one cache line each: no false sharing */

struct Core {
        atomic_uint n_refs;
        CoreParams params;
        Shard shards[CORE_N_SHARDS];
        atomic_uint_fast64_t next_id;
        atomic_size_t n_nodes;
        atomic_size_t n_io;   /* io files installed in nodes */
        atomic_uint snap_gen; /* listing generations handed out */
};

struct CoreFront {
        Core *core; /* a reference */
        CoreFrontOps ops;
        void *ctx;
        unsigned flags;
        /* Callbacks of this front being made now; core_front_free() waits
         * for 0 after setting closing. Incremented under a node's lock while
         * the front is in that node's slots. */
        atomic_uint n_active;
        atomic_bool closing;
        atomic_size_t n_nodes; /* nodes it holds references on */
};

/* One front's references on a node. */
typedef struct FrontSlot {
        CoreFront *front;
        uint64_t count;
} FrontSlot;

/* What a directory node keeps (allocated at first use, under its lock). */
typedef struct CoreDir {
        /* Bumped after every change of the directory's entries made or
         * reported through the core: negative entries and listings taken at
         * an older value may be stale. */
        unsigned gen;
        char *neg[CORE_NEG_MAX]; /* names known absent at gen */
        unsigned n_neg, neg_next;
        CoreDirSnap *snaps[CORE_SNAP_MAX]; /* [0] the current, then older; one ref each */
        unsigned n_snaps;
} CoreDir;

struct CoreNode {
        CoreNode *next; /* the shard's bucket chain, under the shard's lock */
        LsNode *ls;     /* the key; one reference, immutable */
        Core *core;
        uint64_t id;
        /* Internal references plus one per front with a slot. Reaches 0 only
         * under the shard's lock (node_unref), which then unlinks the node,
         * so a lookup under that lock never finds a node at 0. */
        atomic_uint n_refs;
        atomic_uint type;     /* S_IFMT, 0 while unknown */
        atomic_uint n_fronts; /* n_slots, readable without the lock */

        pthread_mutex_t lock; /* everything below, wb_* excepted */
        FrontSlot *slots;
        unsigned n_slots, cap_slots;
        CoreNode *parent; /* directories: where it was last found; a reference */
        CoreFile *io;     /* the shared io file (holds a node reference); only
                           * while some front holds the node */
        CoreDir *dir;

        /* Write-back mtime (file.c): the mtime the backend must keep, as
         * the kernel last set it or as it was before the first write-back. */
        pthread_mutex_t wb_lock;
        bool wb_mtime_valid;
        struct timespec wb_mtime;
        atomic_uint mtime_gen; /* bumped by mtime changes from other paths */
        unsigned wb_gen;       /* mtime_gen wb_mtime was valid at */

        /* The kernel's S_NOSEC (file.c): sec_gen is bumped after every
         * change of the mode or xattrs made through the core or reported by
         * the backend; nosec_at is sec_gen + 1 when the node was last found
         * at that value without set-ID bits and without security.capability
         * (0: unknown), so a write need not ask the backend. */
        atomic_uint_fast64_t sec_gen;
        atomic_uint_fast64_t nosec_at;
};

typedef struct CoreFilePriv {
        CoreFile pub;
        atomic_uint n_refs;
        bool writable; /* opened read-write */
} CoreFilePriv;

static inline CoreFilePriv *file_priv(CoreFile *f)
{
        return (CoreFilePriv *)f;
}

static inline const LsOps *node_ops(const CoreNode *n)
{
        return ls_ops(n->ls);
}

static inline bool front_checks(const CoreFront *f)
{
        return f && (f->flags & CORE_FRONT_CHECK_PERMS);
}

static inline bool front_ro(const CoreFront *f)
{
        return f && (f->flags & CORE_FRONT_READ_ONLY);
}

/* node-table.c */
/* The node of ls (an LsNode reference the call consumes), made if new, with
 * one internal reference; st (may be NULL) gives its type; dir (may be
 * NULL) becomes a directory's parent. */
int node_enter(Core *core, LsNode *ls, const struct stat *st, CoreNode *dir, CoreNode **nodep);
/* The node of ls if it has one (internal reference), else NULL. */
CoreNode *node_find(Core *core, LsNode *ls);
void node_set_type(CoreNode *n, mode_t mode);
/* Drops every reference of front (core_front_free). */
void node_table_drop_front(Core *core, CoreFront *front);
/* Frees every node left (core_unref: no front is left). */
void node_table_clear(Core *core);
/* A directory's new parent (rename); a reference is taken. */
void node_set_parent(CoreNode *n, CoreNode *parent);
/* The parent, with a reference, or NULL. */
CoreNode *node_get_parent(CoreNode *n);

/* dir-state.c (under the node's lock unless said otherwise) */
CoreDir *node_dir(CoreNode *n); /* NULL on allocation failure */
void dir_state_free(CoreDir *d);
/* The directory's generation now (takes the lock). */
unsigned dir_gen(CoreNode *dir);
/* After a change of dir's entries: gen bumped, negatives and the current
 * listing's claim dropped. absent (may be NULL): a name now known absent.
 * Takes the lock. */
void dir_changed(CoreNode *dir, const char *absent);
/* Whether name is a negative entry of dir (takes the lock). */
bool dir_neg_has(CoreNode *dir, const char *name);
/* Records name as absent if dir is still at gen (takes the lock). */
void dir_neg_add(CoreNode *dir, const char *name, unsigned gen);

/* notify.c */
/* node changed through origin (NULL: the backend). */
void notify_inode(CoreNode *node, CoreFront *origin, off_t off, off_t len);
/* Entry name of dir changed (child: what it named, if it is gone and known). */
void notify_entry(CoreNode *dir, const char *name, CoreNode *child, bool deleted,
                  CoreFront *origin);

/* ops-name.c */
/* name checked as core.h says. */
int core_name_check(const char *name);
/* Looks name up in dir through the negative entries and the table (no front
 * count); internal reference. */
int name_lookup(CoreNode *dir, const char *name, CoreNode **nodep, struct stat *stp);

/* ops-attr.c */
/* perm_check() of the object of handle ls (attributes st) for cred: a
 * node-table entry is not needed (a lookup handle held for the check). */
int ls_permission(LsNode *ls, const struct stat *st, const CoreCred *cred, int mask);
/* node_get_acl() of a handle. */
int ls_get_acl(LsNode *ls, bool is_default, void **aclp, size_t *np);
/* perm_check() of node for cred (getattr + its access ACL); st (may be
 * NULL): node's attributes if the caller has them. */
int node_permission(CoreNode *node, const struct stat *st, const CoreCred *cred, int mask);
/* node's ACL xattr (access or default) in a malloc'd buffer: *aclp NULL and
 * *np 0 when it has none (or the backend has no xattrs). */
int node_get_acl(CoreNode *node, bool is_default, void **aclp, size_t *np);

/* file.c */
/* A read-only io file may be a lower file a union just copied up: drop it
 * so the next request opens the node again. */
void io_changed(CoreNode *node);
/* The io file, taken off a node no front holds any more (node's lock held);
 * the caller drops it without the lock. */
CoreFile *io_take(CoreNode *node);
/* A wb_mtime another path made stale. */
static inline void node_mtime_changed(CoreNode *n)
{
        atomic_fetch_add_explicit(&n->mtime_gen, 1, memory_order_relaxed);
}

/* n's mode or xattrs changed (or may have): its S_NOSEC is forgotten. */
static inline void node_sec_changed(CoreNode *n)
{
        atomic_fetch_add_explicit(&n->sec_gen, 1, memory_order_release);
}

/* dir-snap.c */
void dir_snap_free_all(CoreDir *d);
