/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Union Readdir: the merged listing of a directory.
 *
 * The branches of the directory's stack (union-dircache.c; opaque markers
 * already cut it short) are listed top to bottom. A name is reported the
 * first time a branch shows it, unless a higher branch holds a whiteout for
 * it; in one branch a real entry wins over its own whiteout, as in lookup.
 * Names starting ".wh." are never reported. So each name appears once, with
 * the type and inode number of the branch that wins, and the inode number a
 * later getattr of that name reports (directories: their bottom branch's).
 *
 * Each branch is listed in full before its names are reported, so the memory
 * held is the directory's size; a fill callback may stop it early.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libservice/union-private.h"

typedef struct Dirent {
        char *name;
        ino_t ino;
        unsigned char type;
} Dirent;

typedef struct BranchList {
        Dirent *v;
        size_t n, cap;
} BranchList;

/* Open-addressing set of names; the strings belong to the BranchLists. */
typedef struct NameSet {
        const char **slots;
        size_t n, cap; /* cap: power of two */
} NameSet;

static void branch_list_clear(BranchList *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i].name);
        free(l->v);
        l->v = NULL;
        l->n = l->cap = 0;
}

static int branch_list_fill(void *ctx, const char *name, ino_t ino, unsigned char d_type)
{
        BranchList *l = ctx;

        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 32;
                Dirent *v = realloc(l->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n].name = strdup(name);
        if (!l->v[l->n].name)
                return -ENOMEM;
        l->v[l->n].ino = ino;
        l->v[l->n].type = d_type;
        l->n++;
        return 0;
}

static bool name_set_has(const NameSet *s, const char *name)
{
        size_t mask = s->cap - 1, i;

        if (!s->cap)
                return false;
        for (i = union_hash(name) & mask; s->slots[i]; i = (i + 1) & mask)
                if (strcmp(s->slots[i], name) == 0)
                        return true;
        return false;
}

static int name_set_add(NameSet *s, const char *name)
{
        size_t mask, i;

        if ((s->n + 1) * 2 > s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 64;
                const char **slots = calloc(cap, sizeof(*slots));

                if (!slots)
                        return -ENOMEM;
                for (size_t j = 0; j < s->cap; j++) {
                        if (!s->slots[j])
                                continue;
                        for (i = union_hash(s->slots[j]) & (cap - 1); slots[i];
                             i = (i + 1) & (cap - 1))
                                ;
                        slots[i] = s->slots[j];
                }
                free(s->slots);
                s->slots = slots;
                s->cap = cap;
        }
        mask = s->cap - 1;
        for (i = union_hash(name) & mask; s->slots[i]; i = (i + 1) & mask)
                if (strcmp(s->slots[i], name) == 0)
                        return 0;
        s->slots[i] = name;
        s->n++;
        return 0;
}

/* Inode number of a listed entry, as getattr reports it. */
static ino_t readdir_ino(Union *u, UnionStack *stack, int b, const char *dir, const Dirent *d)
{
        char path[PATH_MAX];
        UnionStack cs;
        ino_t ino;

        /* a directory inside a one-branch directory spans that branch only */
        if (d->type == DT_DIR && stack->n > 1 &&
            ls_path_join(path, sizeof(path), dir, d->name) >= 0 &&
            union_dircache_get(u, path, &cs) == 0)
                return cs.ino;
        /* a copy-up keeps its origin's number (only in impure directories) */
        if (b == 0 && d->type != DT_DIR && union_dir_impure(u, dir, stack) &&
            ls_path_join(path, sizeof(path), dir, d->name) >= 0 &&
            union_origin_cached(u, path, d->ino, &ino))
                return ino;
        return union_ino(u, b, d->ino);
}

int union_readdir(LsInstance *inst, const char *path, LsFillDir fill, void *ctx)
{
        Union *u = (Union *)inst;
        BranchList lists[UNION_BRANCHES_MAX];
        NameSet seen = {0};
        UnionStack stack;
        int r;

        r = union_dircache_get(u, path, &stack);
        if (r < 0)
                return r;
        memset(lists, 0, sizeof(lists[0]) * stack.n);
        for (unsigned int i = 0; i < stack.n && r == 0; i++) {
                int b = stack.idx[i];
                BranchList *l = &lists[i];

                r = union_bops(u, b)->readdir(union_branch(u, b), path, branch_list_fill, l);
                if (r < 0)
                        break;
                for (size_t j = 0; j < l->n && r == 0; j++) {
                        const Dirent *d = &l->v[j];

                        if (union_name_hidden(d->name) || name_set_has(&seen, d->name))
                                continue;
                        r = fill(ctx, d->name, readdir_ino(u, &stack, b, path, d), d->type);
                }
                if (r != 0 || i + 1 == stack.n)
                        break;
                /* this branch's names and whiteouts hide the same names below */
                for (size_t j = 0; j < l->n && r == 0; j++) {
                        const char *name = l->v[j].name;

                        if (union_name_hidden(name))
                                name += UNION_WH_PREFIX_LEN;
                        if (*name)
                                r = name_set_add(&seen, name);
                }
        }
        for (unsigned int i = 0; i < stack.n; i++)
                branch_list_clear(&lists[i]);
        free(seen.slots);
        return r;
}

static int dir_empty_fill(void *ctx, const char *name, ino_t ino, unsigned char d_type)
{
        return 1; /* any visible name: stop */
}

int union_dir_empty(Union *u, const char *path)
{
        int r = union_readdir(&u->inst, path, dir_empty_fill, NULL);

        if (r == 1)
                return -ENOTEMPTY;
        return r;
}
