/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Union Lookup Cache: path -> the lower branch that holds it.
 *
 * Resolving a name that lives in a lower branch costs a getattr and a
 * whiteout check in every branch above it; this cache remembers where the
 * name was found so the next lookup costs one getattr in that branch. Only
 * lower hits are stored (a top hit already costs one getattr).
 *
 * Validity: a path resolves to another branch only when a whiteout appears
 * or goes, a file is copied up, a name is unlinked or renamed (each of these
 * runs between union_ns_begin() and union_ns_end()), or a directory changes
 * shape (the directory-stack generation). An entry carries the ns count and
 * the generation it was computed under, read *before* the branches were, and
 * is stored only if no such change was in flight or ran meanwhile; it is
 * used only while both are unchanged. So any change empties the cache at
 * once, which makes it a cache for read-mostly trees (image layers), as
 * intended. Like the directory-stack cache, it assumes the branches change
 * only through this union.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libservice/union-private.h"

struct UnionLookcache {
        pthread_mutex_t locks[UNION_LOOK_LOCKS];
        struct {
                uint64_t ns;  /* ns_finished when computed */
                uint64_t gen; /* directory-stack generation when computed */
                int8_t branch;
                char path[UNION_LOOK_PATH_MAX]; /* "" when empty */
        } slots[UNION_LOOK_SLOTS];
};

int union_lookcache_new(UnionLookcache **lcp)
{
        UnionLookcache *lc = calloc(1, sizeof(*lc));

        if (!lc)
                return -ENOMEM;
        for (size_t i = 0; i < UNION_LOOK_LOCKS; i++)
                pthread_mutex_init(&lc->locks[i], NULL);
        *lcp = lc;
        return 0;
}

UnionLookcache *union_lookcache_free(UnionLookcache *lc)
{
        if (lc) {
                for (size_t i = 0; i < UNION_LOOK_LOCKS; i++)
                        pthread_mutex_destroy(&lc->locks[i]);
                free(lc);
        }
        return NULL;
}

void union_look_stamp(Union *u, UnionLookStamp *s)
{
        /* started before finished: a change in flight shows as a difference */
        s->started = atomic_load(&u->ns_started);
        s->finished = atomic_load(&u->ns_finished);
        s->gen = union_dircache_gen(u);
}

int union_lookcache_get(Union *u, const char *path, const UnionLookStamp *now)
{
        UnionLookcache *lc = u->lookcache;
        size_t i;
        int b = -1;

        if (!lc || now->started != now->finished || strlen(path) >= UNION_LOOK_PATH_MAX)
                return -1;
        i = union_hash(path) & (UNION_LOOK_SLOTS - 1);
        pthread_mutex_lock(&lc->locks[i % UNION_LOOK_LOCKS]);
        if (lc->slots[i].ns == now->finished && lc->slots[i].gen == now->gen &&
            strcmp(lc->slots[i].path, path) == 0)
                b = lc->slots[i].branch;
        pthread_mutex_unlock(&lc->locks[i % UNION_LOOK_LOCKS]);
        return b;
}

void union_lookcache_put(Union *u, const char *path, int branch, const UnionLookStamp *before)
{
        UnionLookcache *lc = u->lookcache;
        UnionLookStamp after;
        size_t i;

        if (!lc || branch <= 0 || before->started != before->finished ||
            strlen(path) >= UNION_LOOK_PATH_MAX)
                return;
        i = union_hash(path) & (UNION_LOOK_SLOTS - 1);
        pthread_mutex_lock(&lc->locks[i % UNION_LOOK_LOCKS]);
        /* nothing started since the branches were read: what they showed
         * is still what they hold */
        union_look_stamp(u, &after);
        if (after.started == before->started && after.gen == before->gen) {
                lc->slots[i].ns = before->finished;
                lc->slots[i].gen = before->gen;
                lc->slots[i].branch = (int8_t)branch;
                strcpy(lc->slots[i].path, path);
        }
        pthread_mutex_unlock(&lc->locks[i % UNION_LOOK_LOCKS]);
}
