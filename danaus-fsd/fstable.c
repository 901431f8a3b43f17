/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Filesystem Table: the pool's mounts, their instances and serving threads.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fstable.h"
#include "libservice/stack.h"
#include "mount-util.h"
#include "util/log.h"

typedef struct FsEntry {
        const char *mountpoint; /* the config's, which outlives the table */
        LsInstance *inst;       /* the mount's filesystem (a view of the backend) */
        LsNode *root;           /* its root handle */
        FuseFront *front;
        pthread_t thread;
        bool running; /* a thread was started and not joined yet */
        /* Set by the entry's thread as its last act (release), read by the
         * main thread before joining (acquire). */
        atomic_bool ended;
        int result; /* front_run()'s, valid once ended */
        struct FsTable *table;
} FsEntry;

struct FsTable {
        Core *core;          /* the pool's core, shared by every mount */
        LsInstance *backend; /* the pool's backend client */
        FsEntry *entries;
        size_t n_entries;
        pthread_t waiter;
        int notify_sig;
};

static void *entry_serve(void *userdata)
{
        FsEntry *e = userdata;

        e->result = front_run(e->front);
        /* release: pairs with the acquire in fstable_reap(), which then
         * joins this thread. */
        atomic_store_explicit(&e->ended, true, memory_order_release);
        pthread_kill(e->table->waiter, e->table->notify_sig);
        return NULL;
}

/* Takes one entry down after its thread ended (or never started). */
static void entry_teardown(FsEntry *e)
{
        if (e->running) {
                pthread_join(e->thread, NULL);
                e->running = false;
                if (e->result < 0)
                        log_error("%s: serving ended: %s", e->mountpoint, strerror(-e->result));
        }
        if (e->front) {
                e->front = front_free(e->front);
                log_info("%s: unmounted", e->mountpoint);
        }
        e->root = ls_node_unref(e->root);
        e->inst = ls_instance_unref(e->inst);
}

static int entry_start(FsTable *t, FsEntry *e, const FsTableParams *p, const PoolMount *m)
{
        FrontParams fp = {
            .mountpoint = m->mountpoint,
            .pool = p->cfg->pool,
            .core = t->core,
            .root = e->root,
            .read_only = pool_mount_read_only(m),
            .debug = p->debug,
            .cache = p->cache,
        };
        sigset_t all, old;
        int r;

        r = front_new(&fp, &e->front);
        if (r < 0)
                return r;
        /* The thread inherits the blocked set (main already blocks ours);
         * block everything else too, so no signal lands in a server thread. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&e->thread, NULL, entry_serve, e);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                return r;
        e->running = true;
        log_info("%s: serving %s%s", m->mountpoint, m->n_branches > 1 ? "a union" : "a directory",
                 fp.read_only ? " read-only" : "");
        return 0;
}

int fstable_new(const FsTableParams *p, FsTable **tablep, char *err, size_t n_err)
{
        const PoolConfig *cfg = p->cfg;
        FsTable *t;
        size_t i;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->waiter = p->waiter;
        t->notify_sig = p->notify_sig;
        t->entries = calloc(cfg->n_mounts, sizeof(*t->entries));
        if (!t->entries) {
                free(t);
                return -ENOMEM;
        }
        t->n_entries = cfg->n_mounts;
        {
                CoreParams cp = CORE_PARAMS_DEFAULT;

                if (p->max_io_files)
                        cp.max_io_files = p->max_io_files;
                r = core_new(&cp, &t->core);
                if (r < 0) {
                        free(t->entries);
                        free(t);
                        return r;
                }
        }
        for (i = 0; i < cfg->n_mounts; i++) {
                t->entries[i].mountpoint = cfg->mounts[i].mountpoint;
                t->entries[i].table = t;
        }
        /* Instances first (a bad branch touches no mount point), then every
         * mount point (a refusal leaves nothing mounted), then the mounts. */
        r = stack_backend_new(cfg, &t->backend, err, n_err);
        if (r < 0)
                goto fail;
        for (i = 0; i < cfg->n_mounts; i++) {
                r = stack_new(t->backend, cfg, &cfg->mounts[i], &t->entries[i].inst,
                              &t->entries[i].root, err, n_err);
                if (r < 0)
                        goto fail;
        }
        for (i = 0; i < cfg->n_mounts; i++) {
                r = mount_prepare(cfg->mounts[i].mountpoint, err, n_err);
                if (r < 0)
                        goto fail;
        }
        for (i = 0; i < cfg->n_mounts; i++) {
                r = entry_start(t, &t->entries[i], p, &cfg->mounts[i]);
                if (r < 0) {
                        snprintf(err, n_err, "%s: cannot mount: %s", cfg->mounts[i].mountpoint,
                                 strerror(-r));
                        goto fail;
                }
        }
        *tablep = t;
        return 0;
fail:
        fstable_free(t);
        return r;
}

size_t fstable_reap(FsTable *t)
{
        size_t i, n_live = 0;

        for (i = 0; i < t->n_entries; i++) {
                FsEntry *e = &t->entries[i];

                if (e->running && atomic_load_explicit(&e->ended, memory_order_acquire))
                        entry_teardown(e);
                if (e->running)
                        n_live++;
        }
        return n_live;
}

void fstable_stop(FsTable *t)
{
        size_t i;

        for (i = 0; i < t->n_entries; i++) {
                FsEntry *e = &t->entries[i];
                int r;

                if (!e->running || atomic_load_explicit(&e->ended, memory_order_acquire))
                        continue;
                r = mount_unmount(e->mountpoint);
                if (r < 0)
                        log_error("%s: cannot unmount: %s", e->mountpoint, strerror(-r));
        }
}

FsTable *fstable_free(FsTable *t)
{
        size_t i;

        if (!t)
                return NULL;
        fstable_stop(t);
        for (i = 0; i < t->n_entries; i++)
                entry_teardown(&t->entries[i]);
        t->backend = ls_instance_unref(t->backend);
        t->core = core_unref(t->core);
        free(t->entries);
        free(t);
        return NULL;
}
