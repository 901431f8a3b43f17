/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Union Readdir: the merged listing of a directory.
 *
 * The layers of the directory's stack (opaque markers and whiteouts already
 * cut it short) are listed top to bottom. A name is reported the first time
 * a branch shows it, unless a higher branch holds a whiteout for it; in one
 * branch a real entry wins over its own whiteout, as in lookup. Names
 * starting ".wh." are never reported. So each name appears once, with the
 * type of the branch that wins and the inode number getattr of that name
 * reports: where that is not the branch's number (a directory that may span
 * branches, an entry of an impure top directory that may carry an origin),
 * the name is resolved as a lookup would.
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

static uint64_t name_hash(const char *s)
{
        uint64_t h = 0xcbf29ce484222325ULL;

        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 0x100000001b3ULL;
        }
        return h;
}

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
        for (i = name_hash(name) & mask; s->slots[i]; i = (i + 1) & mask)
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
                        for (i = name_hash(s->slots[j]) & (cap - 1); slots[i];
                             i = (i + 1) & (cap - 1))
                                ;
                        slots[i] = s->slots[j];
                }
                free(s->slots);
                s->slots = slots;
                s->cap = cap;
        }
        mask = s->cap - 1;
        for (i = name_hash(name) & mask; s->slots[i]; i = (i + 1) & mask)
                if (strcmp(s->slots[i], name) == 0)
                        return 0;
        s->slots[i] = name;
        s->n++;
        return 0;
}

/* The inode number getattr of the entry reports. */
static ino_t readdir_ino(UnionNode *dir, unsigned n_layers, bool impure, int b, const Dirent *d)
{
        Union *u = node_union(dir);
        bool maybe_dir = d->type == DT_DIR || d->type == DT_UNKNOWN;
        UnionFound f;
        ino_t ino;

        if (u->n_branches > 1 &&
            ((maybe_dir && n_layers > 1) || (b == 0 && impure) || d->type == DT_UNKNOWN) &&
            union_resolve(dir, d->name, &f) == 0) {
                ino = f.ino;
                union_found_clear(&f);
                return ino;
        }
        return union_ino(u, b, d->ino);
}

int union_readdir(LsNode *dirn, LsFillDir fill, void *ctx)
{
        UnionNode *dir = to_unode(dirn);
        BranchList *lists;
        NameSet seen = {0};
        UnionLayer *pl;
        unsigned pn;
        bool impure;
        int r;

        if (dir->type != S_IFDIR)
                return -ENOTDIR;
        r = union_node_layers(dir, &pl, &pn);
        if (r < 0)
                return r;
        pthread_mutex_lock(&dir->mu);
        impure = dir->impure;
        pthread_mutex_unlock(&dir->mu);
        lists = calloc(pn ? pn : 1, sizeof(*lists));
        if (!lists) {
                union_layers_free(pl, pn);
                return -ENOMEM;
        }
        for (unsigned i = 0; i < pn && r == 0; i++) {
                BranchList *l = &lists[i];
                LsNode *h = pl[i].node;

                r = bops(h)->readdir(h, branch_list_fill, l);
                if (r < 0)
                        break;
                for (size_t j = 0; j < l->n && r == 0; j++) {
                        const Dirent *d = &l->v[j];

                        if (union_name_hidden(d->name) || name_set_has(&seen, d->name))
                                continue;
                        r = fill(ctx, d->name, readdir_ino(dir, pn, impure, pl[i].branch, d),
                                 d->type);
                }
                if (r != 0 || i + 1 == pn)
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
        for (unsigned i = 0; i < pn; i++)
                branch_list_clear(&lists[i]);
        free(lists);
        free(seen.slots);
        union_layers_free(pl, pn);
        return r;
}

static int dir_empty_fill(void *ctx, const char *name, ino_t ino, unsigned char d_type)
{
        (void)ctx;
        (void)name;
        (void)ino;
        (void)d_type;
        return 1; /* any visible name: stop */
}

int union_dir_empty(UnionNode *dir)
{
        int r = union_readdir(&dir->base, dir_empty_fill, NULL);

        return r == 1 ? -ENOTEMPTY : r;
}

int union_names_fill(void *ctx, const char *name, ino_t ino, unsigned char d_type)
{
        UnionNames *l = ctx;

        (void)ino;
        (void)d_type;
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                char **v = realloc(l->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n] = strdup(name);
        if (!l->v[l->n])
                return -ENOMEM;
        l->n++;
        return 0;
}

int union_dir_names(UnionNode *dir, char ***namesp, size_t *np)
{
        UnionNames l = {0};
        int r = union_readdir(&dir->base, union_names_fill, &l);

        if (r < 0) {
                union_names_free(l.v, l.n);
                return r;
        }
        *namesp = l.v;
        *np = l.n;
        return 0;
}
