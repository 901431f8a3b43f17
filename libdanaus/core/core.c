/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Core and Fronts: the pool's core (one per danaus-fsd process, shared by
 * every mount) and the front ends attached to it. The core is
 * reference-counted so that whatever outlives a mount (a fast-path client,
 * a backend callback) can hold it; each front holds one reference.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "core/core-private.h"

int core_new(const CoreParams *params, Core **corep)
{
        Core *c = calloc(1, sizeof(*c));
        size_t i;

        if (!c)
                return -ENOMEM;
        c->params = params ? *params : CORE_PARAMS_DEFAULT;
        if (c->params.max_io_files == 0)
                c->params.max_io_files = CORE_PARAMS_DEFAULT.max_io_files;
        atomic_init(&c->n_refs, 1);
        atomic_init(&c->next_id, 1);
        for (i = 0; i < CORE_N_SHARDS; i++)
                pthread_mutex_init(&c->shards[i].lock, NULL);
        *corep = c;
        return 0;
}

Core *core_ref(Core *core)
{
        if (core)
                atomic_fetch_add_explicit(&core->n_refs, 1, memory_order_relaxed);
        return core;
}

Core *core_unref(Core *core)
{
        size_t i;

        if (!core || atomic_fetch_sub_explicit(&core->n_refs, 1, memory_order_acq_rel) != 1)
                return NULL;
        /* No front is left (each held a reference): only nodes that
         * internal references still hold, which their holders leaked. */
        node_table_clear(core);
        for (i = 0; i < CORE_N_SHARDS; i++) {
                pthread_mutex_destroy(&core->shards[i].lock);
                free(core->shards[i].buckets);
        }
        free(core);
        return NULL;
}

size_t core_n_nodes(Core *core)
{
        return atomic_load_explicit(&core->n_nodes, memory_order_relaxed);
}

size_t core_n_io_files(Core *core)
{
        return atomic_load_explicit(&core->n_io, memory_order_relaxed);
}

int core_front_new(Core *core, const CoreFrontOps *ops, void *ctx, unsigned flags,
                   CoreFront **frontp)
{
        CoreFront *f = calloc(1, sizeof(*f));

        if (!f)
                return -ENOMEM;
        f->core = core_ref(core);
        if (ops)
                f->ops = *ops;
        f->ctx = ctx;
        f->flags = flags;
        atomic_init(&f->n_active, 0);
        atomic_init(&f->closing, false);
        *frontp = f;
        return 0;
}

CoreFront *core_front_free(CoreFront *f)
{
        if (!f)
                return NULL;
        /* seq_cst: a notifier that raises n_active after this store sees
         * closing and makes no call (notify.c). */
        atomic_store(&f->closing, true);
        node_table_drop_front(f->core, f);
        /* Callbacks already started finish before ctx may go. */
        while (atomic_load(&f->n_active) != 0)
                sched_yield();
        core_unref(f->core);
        free(f);
        return NULL;
}

unsigned core_front_flags(const CoreFront *front)
{
        return front->flags;
}
