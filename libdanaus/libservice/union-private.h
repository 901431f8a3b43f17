/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Union internals, shared by union.c (operations table and entry points,
 * rename included), union-node.c (union nodes and their table, lookup),
 * union-whiteout.c, union-copyup.c, union-tree.c (directory moves and
 * removals), union-readdir.c and union-file.c. Private: nothing outside
 * libservice/union*.c includes this.
 *
 * Vocabulary:
 *   branch  index into Union.roots, 0 = top (the only one ever written).
 *   layer   (branch, handle in that branch) of one union node.
 *   stack   of a directory: its layers, top to bottom, where it exists and
 *           is visible (stopping at an opaque one or a whiteout).
 *
 * Every branch is reached only through its LsOps (handles), so the union
 * works over any libservice.
 *
 * Locks (never a union-wide one across a backend call):
 *   UnionShard.mu   the node table's shard: search/insert/remove only.
 *   UnionNode.mu    a node's state (layers, parent, name, flags): memory only.
 *   UnionNode.copy_mu  held across one node's copy-up (its own data copy).
 *   UnionNode.ns_mu    a directory's namespace lock, held across a namespace
 *                      change in it (whiteout + entry, copy-up publication,
 *                      rename, rmdir). Lookups never take it.
 * Order: copy_mu of a node, then copy_mu of its ancestors (copy-up of the
 * parents first), then ns_mu of its parent (publication). Several ns_mu are
 * always taken together in address order (union_lock_dirs()), and no copy_mu
 * is ever taken while an ns_mu is held.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include "libservice/libservice.h"
#include "libservice/union.h"

/* Branch indices are tagged into inode numbers above bit 56 (union_ino()). */
#define UNION_BRANCHES_MAX 128

#define UNION_WH_PREFIX     ".wh."
#define UNION_WH_PREFIX_LEN 4
#define UNION_WH_OPAQUE     ".wh..wh..opq"
/* Temporary names of copy-ups and moves in progress: whiteout-prefixed, so
 * never visible, and naming nothing a layer could hold. */
#define UNION_TMP_PREFIX ".wh..wh..tmp."

/* The union's own xattrs, kept in the top branch and never shown through the
 * union (listxattr filters them; get: -ENODATA; set/remove: -EPERM):
 *   origin  on a copied-up non-directory, or a directory moved by a subtree
 *           copy: the union inode number (8 bytes, little-endian) it had
 *           before, which it keeps reporting;
 *   impure  on a top directory: an entry in it may carry an origin. */
#define UNION_XATTR_PREFIX     "trusted.danaus."
#define UNION_XATTR_PREFIX_LEN 15
#define UNION_XATTR_ORIGIN     UNION_XATTR_PREFIX "origin"
#define UNION_XATTR_IMPURE     UNION_XATTR_PREFIX "impure"

#define UNION_SHARDS 64

typedef struct UnionLayer {
        int branch;
        LsNode *node; /* a reference */
} UnionLayer;

typedef struct UnionNode UnionNode;

struct UnionNode {
        LsNode base;
        UnionNode *hnext; /* table chain: the shard's mu */
        ino_t ino;        /* the union inode number (fixed: the table key) */
        mode_t type;      /* S_IFMT bits (fixed) */
        pthread_mutex_t mu;
        pthread_mutex_t copy_mu;
        pthread_mutex_t ns_mu;
        /* --- under mu --- */
        /* directory: its stack; other: one layer, the branch holding it (the
         * top after copy-up) */
        UnionLayer *layers;
        unsigned n_layers;
        UnionNode *parent; /* a reference; NULL: the root, or no name left */
        char *name;        /* its name in parent; NULL with parent */
        bool removed;      /* a directory removed by rmdir or replaced */
        bool impure;       /* directory: its top part may hold origins */
        /* a lower file with several links: one node per name (copy-up
         * breaks the links, so each name becomes its own file) */
        bool per_name;
        uint64_t gen; /* Union.gen when this state was computed */
        /* bumped (release) after each copy-up: files opened read-only below
         * compare it to follow the copy */
        atomic_uint_fast64_t copyups;
        /* directory: bumped by every change of its entries or attributes,
         * so a subtree copy (rename) notices changes made while it copied */
        atomic_uint_fast64_t mods;
};

typedef struct UnionShard {
        pthread_mutex_t mu;
        UnionNode **buckets;
        size_t n_buckets, n_nodes;
} UnionShard;

typedef struct Union {
        LsInstance inst;
        UnionLayer *roots; /* branch roots, references */
        size_t n_branches;
        bool writable;
        bool copy_sync; /* see union_set_copy_up_sync() */
        bool same_dev;  /* all branch roots on one st_dev: numbers pass through */
        UnionShard shards[UNION_SHARDS];
        /* bumped after each change of where names resolve that lookups may
         * have raced with (copy-up, whiteouts, directory shape) */
        atomic_uint_fast64_t gen;
        atomic_uint_fast64_t tmp_counter;
} Union;

/* What a lookup of one name in a directory found (union_resolve()). */
typedef struct UnionFound {
        int branch;         /* branch of the entry, -1: none */
        int wh_branch;      /* branch whose whiteout ended the search, -1: none */
        struct stat st;     /* attributes in that branch (st_ino not rewritten) */
        UnionLayer *layers; /* directory: its stack; other: one layer (refs) */
        unsigned n_layers;
        ino_t ino;    /* the union inode number */
        bool impure;  /* directory whose top part holds an impure mark */
        uint64_t gen; /* Union.gen before the branches were read */
} UnionFound;

static inline Union *to_union(LsInstance *inst)
{
        return (Union *)inst;
}

static inline UnionNode *to_unode(LsNode *node)
{
        return (UnionNode *)node;
}

static inline Union *node_union(UnionNode *n)
{
        return to_union(n->base.inst);
}

static inline const LsOps *bops(LsNode *h)
{
        return h->inst->ops;
}

/* union-node.c */
ino_t union_ino(Union *u, int branch, ino_t ino);
void union_layers_free(UnionLayer *l, unsigned n);
/* A copy of n's layers (references); -ENOENT for a removed directory. */
int union_node_layers(UnionNode *n, UnionLayer **lp, unsigned *np);
/* n's top-most layer handle (a reference) and its branch. */
int union_node_first(UnionNode *n, LsNode **hp, int *branchp);
/* n's handle in the top branch (a reference), -ENOENT if it has none. */
int union_node_top(UnionNode *n, LsNode **hp);
bool union_node_is_lower(UnionNode *n);
/* Looks name up in directory dir through its stack, top to bottom, without
 * making a node: fills *f (union_found_clear() it). -ENOENT with f->wh_branch
 * when a whiteout ended the search. */
int union_resolve(UnionNode *dir, const char *name, UnionFound *f);
void union_found_clear(UnionFound *f);
/* The node of what union_resolve() found in dir (new or live, revalidated);
 * consumes f's layers. */
int union_node_get(Union *u, UnionNode *dir, const char *name, UnionFound *f, UnionNode **np);
/* The live node of ino, if any (a reference), else NULL. */
UnionNode *union_node_find(Union *u, ino_t ino, mode_t type);
/* Moves n to another number in the table (a copy-up that cannot keep it). */
void union_node_rekey(UnionNode *n, ino_t ino);
/* Directory n, copied under another number by a move, takes the copy f
 * found (consumes f's layers) and that number; -EEXIST if a live node
 * already holds it. */
int union_node_renumber(UnionNode *n, UnionFound *f);
UnionNode *union_node_new_root(Union *u, UnionFound *f);
void union_node_set_name(UnionNode *n, UnionNode *parent, const char *name);
/* Clears n's name if it is (parent, name): its name is gone. */
void union_node_unname(UnionNode *n, UnionNode *parent, const char *name);
void union_node_free(LsNode *node);
int union_table_init(Union *u);
void union_table_deinit(Union *u);
/* Locks the ns_mu of up to 4 directories (NULLs and repeats skipped), in
 * address order. */
void union_lock_dirs(UnionNode **dirs, size_t n);
void union_unlock_dirs(UnionNode **dirs, size_t n);
void union_node_touch(UnionNode *dir);
/* Fills st (may be NULL) from handle h's attributes as n reports them. */
int union_node_stat(UnionNode *n, struct stat *st);

/* union-whiteout.c */
bool union_name_hidden(const char *name);
int union_whiteout_name(char *buf, size_t size, const char *name);
/* 1 if handle dir holds name, 0 if not, < 0 on error. */
int union_exists(LsNode *dir, const char *name);
int union_whiteout_exists(LsNode *dir, const char *name);
int union_opaque_exists(LsNode *dir);
/* An empty file mode 0 owned by root (a whiteout or marker) in top dir dir. */
int union_marker_create(LsNode *dir, const char *name);
int union_whiteout_create(LsNode *topdir, const char *name);
int union_whiteout_remove(LsNode *topdir, const char *name);
int union_tmp_name(Union *u, char *buf, size_t size);
/* 1 if a branch of dir's stack other than the top still shows name. */
int union_lower_has(UnionNode *dir, const char *name);
/* Removes name (and everything beneath it) from top directory dir. */
int union_top_remove_tree(LsNode *dir, const char *name);
bool union_xattr_private(const char *name);

/* union-copyup.c */
/* Makes directory n exist in the top branch, its ancestors first. */
int union_copyup_dir(UnionNode *n);
/* Copies non-directory n up (no_data: the caller truncates it to 0). */
int union_copyup(UnionNode *n, bool no_data);
/* Copies up whatever n is. */
int union_copyup_any(UnionNode *n, bool no_data);
bool union_origin_get(LsNode *h, ino_t *ino);
int union_origin_set(LsNode *h, ino_t ino);
/* Marks top directory dir impure before an entry with an origin lands in it. */
int union_impure_mark(UnionNode *dir);
bool union_copy_refused(int r);
/* Copies attributes of (src, st) onto dst: owner, then mode, xattrs, times. */
int union_copy_attrs(LsNode *src, const struct stat *st, LsNode *dst);
/* Creates name in top dir tdir as a copy of src (regular data, symlink
 * target, device; a directory empty, 0700). */
int union_copy_node(Union *u, LsNode *src, const struct stat *st, LsNode *tdir, const char *name,
                    bool no_data, LsNode **dstp);

/* fsyncs a regular file's copy when copy_sync. */
int union_sync_node(Union *u, LsNode *h, const struct stat *st);

/* union-tree.c: moving and removing merged directories */
int union_rename_dir(Union *u, UnionNode *p1, const char *n1, UnionNode *p2, const char *n2,
                     unsigned flags);
int union_rmdir(LsNode *dirn, const char *name);
/* True if dir is s or lies beneath it (through the parent chain). */
bool union_is_beneath(UnionNode *dir, UnionNode *s);

/* union-readdir.c */
int union_readdir(LsNode *dirn, LsFillDir fill, void *ctx);
/* 0 if the merged directory is empty, -ENOTEMPTY if not. */
int union_dir_empty(UnionNode *dir);
/* Every visible name of directory dir (strings owned by the caller). */
int union_dir_names(UnionNode *dir, char ***namesp, size_t *np);
void union_names_free(char **names, size_t n);
/* A growing list of names; union_names_fill() is an LsFillDir that copies
 * each name into it (free with union_names_free(l.v, l.n)). */
typedef struct UnionNames {
        char **v;
        size_t n, cap;
} UnionNames;
int union_names_fill(void *ctx, const char *name, ino_t ino, unsigned char d_type);

/* union-file.c */
int union_open(LsNode *node, int flags, LsFile **filep);
int union_file_wrap(UnionNode *n, LsFile *child, int branch, bool may_follow, uint64_t copyups,
                    LsFile **filep);
ssize_t union_pread(LsFile *file, void *buf, size_t size, off_t off);
ssize_t union_pwrite(LsFile *file, const void *buf, size_t size, off_t off, int rwf);
int union_fsync(LsFile *file, bool datasync);
int union_fallocate(LsFile *file, int mode, off_t off, off_t len);
off_t union_lseek(LsFile *file, off_t off, int whence);
int union_file_fd(LsFile *file);
int union_release(LsFile *file);
