/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Directory State: what a directory node knows about its entries between
 * changes: a generation bumped after each change made or reported through
 * the core, and a few names known absent (negative entries) at that
 * generation. A lookup reads the generation before asking the backend and
 * records an absent name only if no change landed meanwhile, so a negative
 * entry never hides an entry made concurrently; every change forgets them
 * all. Listings (dir-snap.c) are compared against the same generation.
 *
 * Names are compared whole (never by hash alone): a false "absent" would
 * hide a file.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core-private.h"

CoreDir *node_dir(CoreNode *n)
{
        if (!n->dir)
                n->dir = calloc(1, sizeof(*n->dir));
        return n->dir;
}

static void neg_clear(CoreDir *d)
{
        unsigned i;

        for (i = 0; i < d->n_neg; i++) {
                free(d->neg[i]);
                d->neg[i] = NULL;
        }
        d->n_neg = 0;
        d->neg_next = 0;
}

void dir_state_free(CoreDir *d)
{
        neg_clear(d);
        dir_snap_free_all(d);
        free(d);
}

unsigned dir_gen(CoreNode *dir)
{
        unsigned g;

        pthread_mutex_lock(&dir->lock);
        g = dir->dir ? dir->dir->gen : 0;
        pthread_mutex_unlock(&dir->lock);
        return g;
}

void dir_changed(CoreNode *dir, const char *absent)
{
        CoreDir *d;

        pthread_mutex_lock(&dir->lock);
        d = node_dir(dir);
        if (d) {
                d->gen++;
                neg_clear(d);
                if (absent && (d->neg[0] = strdup(absent)))
                        d->n_neg = d->neg_next = 1;
        }
        pthread_mutex_unlock(&dir->lock);
        node_mtime_changed(dir);
}

bool dir_neg_has(CoreNode *dir, const char *name)
{
        bool found = false;
        unsigned i;

        pthread_mutex_lock(&dir->lock);
        if (dir->dir)
                for (i = 0; i < dir->dir->n_neg && !found; i++)
                        found = strcmp(dir->dir->neg[i], name) == 0;
        pthread_mutex_unlock(&dir->lock);
        return found;
}

void dir_neg_add(CoreNode *dir, const char *name, unsigned gen)
{
        char *copy = strdup(name);
        CoreDir *d;

        if (!copy)
                return;
        pthread_mutex_lock(&dir->lock);
        d = node_dir(dir);
        if (d && d->gen == gen) {
                unsigned i;

                for (i = 0; i < d->n_neg; i++)
                        if (strcmp(d->neg[i], name) == 0)
                                break;
                if (i == d->n_neg) {
                        /* a ring: the oldest goes first */
                        unsigned slot = d->neg_next;

                        free(d->neg[slot]);
                        d->neg[slot] = copy;
                        copy = NULL;
                        d->neg_next = (slot + 1) % CORE_NEG_MAX;
                        if (d->n_neg < CORE_NEG_MAX)
                                d->n_neg++;
                }
        }
        pthread_mutex_unlock(&dir->lock);
        free(copy);
}
