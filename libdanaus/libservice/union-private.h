/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Union internals, shared by union.c (entry points), union-dircache.c
 * (directory stacks), union-whiteout.c, union-copyup.c and union-readdir.c.
 * Private: nothing outside libservice/union*.c includes this.
 *
 * Vocabulary:
 *   branch  index into Union.branches, 0 = top (the only one ever written).
 *   stack   of a directory: the branches, top to bottom, in which that
 *           directory exists and is visible (see union-dircache.c).
 *   entry   the result of looking one path up: the branch holding it, its
 *           stat there, and the stack of its parent directory.
 *
 * Every branch is reached only through its LsOps, never with host syscalls
 * on branch paths, so the union works over any libservice.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include "libservice/libservice.h"
#include "libservice/union.h"

/* Branch indices are stored in a byte and tagged into inode numbers above
 * bit 56 (union_ino()), so 255 would fit; 128 is far more than any image. */
#define UNION_BRANCHES_MAX 128

#define UNION_WH_PREFIX     ".wh."
#define UNION_WH_PREFIX_LEN 4
#define UNION_WH_OPAQUE     ".wh..wh..opq"
/* Temporary names of copy-ups in progress: start with the whiteout prefix so
 * no listing or lookup ever shows them, and name nothing a layer could hold. */
#define UNION_TMP_PREFIX ".wh..wh..tmp."

#define UNION_COPYUP_LOCKS 64

/* The union's own xattrs, kept in the top branch and never shown through the
 * union (listxattr filters them; get: -ENODATA; set/remove: -EPERM):
 *   origin  on a copied-up non-directory: the union inode number (8 bytes,
 *           little-endian) it had before copy-up, which it keeps reporting;
 *   impure  on a top directory: a non-directory in it may carry an origin
 *           (set before the first such entry lands there), so getattr and
 *           readdir read origins only in impure directories. */
#define UNION_XATTR_PREFIX     "trusted.danaus."
#define UNION_XATTR_PREFIX_LEN 15
#define UNION_XATTR_ORIGIN     UNION_XATTR_PREFIX "origin"
#define UNION_XATTR_IMPURE     UNION_XATTR_PREFIX "impure"

/* Origins read from the top are cached by top inode number (direct-mapped,
 * striped locks): see union-copyup.c. */
#define UNION_ORIGIN_SLOTS 8192 /* power of two */
#define UNION_ORIGIN_LOCKS 64

typedef struct UnionOriginSlot {
        ino_t ino;    /* top inode number; 0: empty */
        ino_t origin; /* 0: it has none */
} UnionOriginSlot;

typedef struct UnionDircache UnionDircache;
typedef struct UnionLookcache UnionLookcache;

#define UNION_LOOK_SLOTS    16384 /* power of two */
#define UNION_LOOK_LOCKS    64
#define UNION_LOOK_PATH_MAX 112

/* Where a lookup stands against concurrent changes (union-lookcache.c). */
typedef struct UnionLookStamp {
        uint64_t started, finished, gen;
} UnionLookStamp;

typedef struct UnionStack {
        unsigned int n;
        uint8_t idx[UNION_BRANCHES_MAX];
        /* inode number (already tagged) the directory reports: its bottom
         * branch's, which copy-up of the directory does not change */
        ino_t ino;
        /* the directory is in the top branch and marked impure: 1, 0, or -1
         * not looked at yet (union_dir_impure() fills it in lazily) */
        int8_t impure;
} UnionStack;

typedef struct Union {
        LsInstance inst;
        LsInstance **branches;
        size_t n_branches;
        bool writable;
        bool copy_sync; /* see union_set_copy_up_sync() */
        /* all branch roots on one st_dev: inode numbers are passed through */
        bool same_dev;
        UnionDircache *dircache;
        UnionLookcache *lookcache; /* NULL for a one-branch union */
        /* serialises copy-ups of one path (striped by path hash); a thread holds
         * at most one of these at a time, so they cannot deadlock */
        pthread_mutex_t copyup_locks[UNION_COPYUP_LOCKS];
        atomic_uint_fast64_t tmp_counter;
        /* bumped after every copy-up of a non-directory: files opened below
         * compare it to notice that they may have been copied up */
        atomic_uint_fast64_t copyups;
        /* origin cache (NULL for a one-branch union) */
        UnionOriginSlot *origin_slots;
        pthread_mutex_t origin_locks[UNION_ORIGIN_LOCKS];
        /* changes of which top inode a path names (unlink, rename) count
         * themselves here before and after: the origin cache stores nothing
         * read across one */
        atomic_uint_fast64_t ns_started, ns_finished;
} Union;

typedef struct UnionEntry {
        int branch;          /* branch holding the entry, or -1 */
        int wh_branch;       /* branch whose whiteout ended the search, or -1 */
        struct stat st;      /* as that branch reports it (st_ino not rewritten) */
        UnionStack pstack;   /* stack of the parent directory (root: its own) */
        uint64_t ns_started; /* the union's ns_started before pstack was read */
} UnionEntry;

typedef struct UnionFile {
        LsFile file; /* first: (LsFile *)uf works */
        /* the branch file I/O goes to; replaced (once, under lock) when a
         * file opened in a lower branch is found copied up */
        _Atomic(LsFile *) child;
        int branch; /* branch it was opened in (fixed) */
        /* inode number fstat reports; 0: the child's, tagged with branch */
        ino_t ino;
        /* opened read-only in a lower branch: may follow a later copy-up */
        atomic_bool may_follow;
        atomic_uint_fast64_t copyups_seen;
        pthread_mutex_t lock; /* the rest: only under it */
        char *path;           /* the path it was opened at */
        LsFile *lower;        /* the child before the swap, released at release */
} UnionFile;

static inline LsInstance *union_branch(Union *u, int b)
{
        return u->branches[b];
}

static inline const LsOps *union_bops(Union *u, int b)
{
        return u->branches[b]->ops;
}

/* union.c */
ino_t union_ino(Union *u, int branch, ino_t ino);
int union_lookup(Union *u, const char *path, UnionEntry *ent);
/* 1 if a branch of pstack other than the top still shows dir/name. */
int union_lower_has(Union *u, const UnionStack *pstack, const char *dir, const char *name);

/* union-dircache.c: stacks of directories, cached. */
uint64_t union_hash(const char *s);
int union_dircache_new(UnionDircache **dcp);
UnionDircache *union_dircache_free(UnionDircache *dc);
/* Stack of directory path; -ENOENT, -ENOTDIR as a lookup would fail. */
int union_dircache_get(Union *u, const char *path, UnionStack *stack);
/* Invalidates every cached stack: call after any change of directory shape. */
void union_dircache_bump(Union *u);
/* True if non-directories in the top part of directory dir (stack: its stack)
 * may carry an origin. Reads the impure mark at most once per cached stack. */
bool union_dir_impure(Union *u, const char *dir, UnionStack *stack);

/* union-whiteout.c */
bool union_name_hidden(const char *name);
bool union_path_hidden(const char *path);
int union_whiteout_path(char *buf, size_t size, const char *dir, const char *name);
/* 1 if branch b holds a whiteout for dir/name, 0 if not, < 0 on error. */
int union_whiteout_exists(Union *u, int b, const char *dir, const char *name);
int union_whiteout_create(Union *u, const char *dir, const char *name);
int union_whiteout_remove(Union *u, const char *dir, const char *name);
/* 1 if directory path is opaque in branch b. */
int union_opaque_exists(Union *u, int b, const char *path);
int union_opaque_create(Union *u, const char *path);
/* Removes the union's own entries (whiteouts, opaque marker, stale
 * temporaries) from directory path of the top branch, so it can be rmdir'ed. */
int union_top_clean_dir(Union *u, const char *path);
/* Removes path and everything beneath it from the top branch. */
int union_top_remove_tree(Union *u, const char *path);

/* union-copyup.c */
/* Makes directory path (visible in the union) exist in the top branch,
 * copying up its ancestors first. */
int union_copyup_dir(Union *u, const char *path);
/* Copies the entry at path up into the top branch, unless it is there
 * already; with no_data a file's copy is empty (the caller truncates it). */
int union_copyup(Union *u, const char *path, bool no_data);
/* Copies the merged tree at src into the top branch at dst (which must not
 * exist; its parent must) and marks dst opaque, so nothing below merges in. */
int union_copy_tree(Union *u, const char *src, const char *dst);
int union_tmp_name(Union *u, char *buf, size_t size, const char *dir);
/* True and *ino set if the top-branch entry at path carries an origin. */
bool union_origin_get(Union *u, const char *path, ino_t *ino);
/* The same through the cache; top_ino: the entry's inode number in the top. */
bool union_origin_cached(Union *u, const char *path, ino_t top_ino, ino_t *ino);
/* Drops what the cache knows of a top inode that may be freed now. */
void union_origin_forget(Union *u, ino_t top_ino);
/* Bracket every change of which top inode a path names. */
/* union-lookcache.c: path -> lower branch holding it */
int union_lookcache_new(UnionLookcache **lcp);
UnionLookcache *union_lookcache_free(UnionLookcache *lc);
void union_look_stamp(Union *u, UnionLookStamp *s);
/* The branch path was found in under the stamp now, or -1. */
int union_lookcache_get(Union *u, const char *path, const UnionLookStamp *now);
void union_lookcache_put(Union *u, const char *path, int branch, const UnionLookStamp *before);
uint64_t union_dircache_gen(Union *u);

void union_ns_begin(Union *u);
void union_ns_end(Union *u);
/* The top non-directory at path is about to get a name in directory dir
 * (link, rename): if it carries an origin, marks dir impure. */
int union_origin_moving(Union *u, const char *path, const char *dir);
/* True for the union's own xattr names (UNION_XATTR_PREFIX). */
bool union_xattr_private(const char *name);

/* union-readdir.c */
int union_readdir(LsInstance *inst, const char *path, LsFillDir fill, void *ctx);
/* 0 if the merged directory is empty, -ENOTEMPTY if not. */
int union_dir_empty(Union *u, const char *path);
