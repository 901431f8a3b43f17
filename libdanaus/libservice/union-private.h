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

#define UNION_WH_PREFIX ".wh."
#define UNION_WH_PREFIX_LEN 4
#define UNION_WH_OPAQUE ".wh..wh..opq"
/* Temporary names of copy-ups in progress: start with the whiteout prefix so
 * no listing or lookup ever shows them, and name nothing a layer could hold. */
#define UNION_TMP_PREFIX ".wh..wh..tmp."

#define UNION_COPYUP_LOCKS 64

typedef struct UnionDircache UnionDircache;

typedef struct UnionStack {
        unsigned int n;
        uint8_t idx[UNION_BRANCHES_MAX];
        /* inode number (already tagged) the directory reports: its bottom
         * branch's, which copy-up of the directory does not change */
        ino_t ino;
} UnionStack;

typedef struct Union {
        LsInstance inst;
        LsInstance **branches;
        size_t n_branches;
        bool writable;
        /* all branch roots on one st_dev: inode numbers are passed through */
        bool same_dev;
        UnionDircache *dircache;
        /* serialises copy-ups of one path (striped by path hash); a thread holds
         * at most one of these at a time, so they cannot deadlock */
        pthread_mutex_t copyup_locks[UNION_COPYUP_LOCKS];
        atomic_uint_fast64_t tmp_counter;
} Union;

typedef struct UnionEntry {
        int branch;        /* branch holding the entry, or -1 */
        int wh_branch;     /* branch whose whiteout ended the search, or -1 */
        struct stat st;    /* as that branch reports it (st_ino not rewritten) */
        UnionStack pstack; /* stack of the parent directory (root: its own) */
} UnionEntry;

typedef struct UnionFile {
        LsFile file; /* first: (LsFile *)uf works */
        LsFile *child;
        int branch;
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

/* union-readdir.c */
int union_readdir(LsInstance *inst, const char *path, LsFillDir fill, void *ctx);
/* 0 if the merged directory is empty, -ENOTEMPTY if not. */
int union_dir_empty(Union *u, const char *path);
