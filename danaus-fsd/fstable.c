/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Filesystem Table: the pool's mounts, their instances and serving threads.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "fstable.h"
#include "libservice/stack.h"
#include "mount-util.h"
#include "util/log.h"

typedef struct FsEntry {
        const char *mountpoint; /* the mount's; NULL: a free slot */
        const PoolMount *mount; /* the config's, which outlives the table, or owned */
        PoolMount *owned;       /* added by fstable_add(): freed with the entry */
        bool removing;          /* fstable_remove() takes it down: reap skips it */
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
        Core *core;           /* the pool's core, shared by every mount */
        LsInstance *backend;  /* the pool's backend client */
        pthread_mutex_t lock; /* the entries: main and the control thread */
        FsEntry *entries;     /* FSTABLE_MOUNTS_MAX slots: threads point into it */
        size_t n_entries;     /* slots used so far */
        pthread_t waiter;
        int notify_sig;
        FsTableParams params; /* for fstable_add() */
        bool emptied_by_remove;
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
        if (e->owned) {
                e->owned = pool_mount_free(e->owned);
                e->mountpoint = NULL;
                e->mount = NULL;
        }
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
        t->params = *p;
        pthread_mutex_init(&t->lock, NULL);
        if (cfg->n_mounts > FSTABLE_MOUNTS_MAX) {
                free(t);
                snprintf(err, n_err, "more than %d mounts", FSTABLE_MOUNTS_MAX);
                return -E2BIG;
        }
        t->entries = calloc(FSTABLE_MOUNTS_MAX, sizeof(*t->entries));
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
                t->entries[i].mount = &cfg->mounts[i];
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

        pthread_mutex_lock(&t->lock);
        for (i = 0; i < t->n_entries; i++) {
                FsEntry *e = &t->entries[i];

                if (e->removing)
                        continue;
                if (e->running && atomic_load_explicit(&e->ended, memory_order_acquire)) {
                        entry_teardown(e);
                        t->emptied_by_remove = false;
                }
                if (e->running)
                        n_live++;
        }
        pthread_mutex_unlock(&t->lock);
        return n_live;
}

void fstable_stop(FsTable *t)
{
        size_t i;

        pthread_mutex_lock(&t->lock);
        for (i = 0; i < t->n_entries; i++) {
                FsEntry *e = &t->entries[i];
                int r;

                if (!e->running || atomic_load_explicit(&e->ended, memory_order_acquire))
                        continue;
                r = mount_unmount(e->mountpoint);
                if (r < 0)
                        log_error("%s: cannot unmount: %s", e->mountpoint, strerror(-r));
        }
        pthread_mutex_unlock(&t->lock);
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
        pthread_mutex_destroy(&t->lock);
        free(t->entries);
        free(t);
        return NULL;
}

/* ---- Live mounts (control.c) ---- */

/* The slot serving mountpoint (exactly), or NULL. Under the lock. */
static FsEntry *entry_find(FsTable *t, const char *mountpoint)
{
        for (size_t i = 0; i < t->n_entries; i++) {
                FsEntry *e = &t->entries[i];

                if (e->mountpoint && e->running && !e->removing &&
                    strcmp(e->mountpoint, mountpoint) == 0)
                        return e;
        }
        return NULL;
}

int fstable_add(FsTable *t, PoolMount *m, char *err, size_t n_err)
{
        FsEntry *e = NULL;
        int r;

        pthread_mutex_lock(&t->lock);
        for (size_t i = 0; i < t->n_entries; i++) {
                FsEntry *o = &t->entries[i];

                if (o->running && o->mountpoint &&
                    pool_mountpoints_overlap(o->mountpoint, m->mountpoint)) {
                        snprintf(err, n_err, "%s: overlaps the mount %s of this pool",
                                 m->mountpoint, o->mountpoint);
                        r = strcmp(o->mountpoint, m->mountpoint) == 0 ? -EEXIST : -EBUSY;
                        goto out;
                }
        }
        /* A slot nobody uses: no thread, no instance (a torn-down
         * definition's slot is reused too). */
        for (size_t i = 0; i < FSTABLE_MOUNTS_MAX && !e; i++) {
                FsEntry *o = &t->entries[i];

                if (!o->running && !o->front && !o->inst && !o->owned)
                        e = o;
        }
        if (!e) {
                snprintf(err, n_err, "%s: the pool already has %d mounts", m->mountpoint,
                         FSTABLE_MOUNTS_MAX);
                r = -ENOSPC;
                goto out;
        }
        *e = (FsEntry){.mountpoint = m->mountpoint, .mount = m, .table = t};
        r = stack_new(t->backend, t->params.cfg, m, &e->inst, &e->root, err, n_err);
        if (r >= 0)
                r = mount_prepare(m->mountpoint, err, n_err);
        if (r >= 0) {
                r = entry_start(t, e, &t->params, m);
                if (r < 0)
                        snprintf(err, n_err, "%s: cannot mount: %s", m->mountpoint, strerror(-r));
        }
        if (r < 0) {
                entry_teardown(e);
                *e = (FsEntry){};
                goto out;
        }
        e->owned = m;
        if ((size_t)(e - t->entries) >= t->n_entries)
                t->n_entries = (size_t)(e - t->entries) + 1;
        t->emptied_by_remove = false;
        r = 0;
out:
        pthread_mutex_unlock(&t->lock);
        return r;
}

int fstable_remove(FsTable *t, const char *mountpoint_in, bool force, char *err, size_t n_err)
{
        char mountpoint[PATH_MAX]; /* the entry's own is freed with it */
        size_t n_live = 0;
        FsEntry *e;
        int r;

        if (strlen(mountpoint_in) >= sizeof(mountpoint)) {
                snprintf(err, n_err, "mount point too long");
                return -ENAMETOOLONG;
        }
        strcpy(mountpoint, mountpoint_in);
        pthread_mutex_lock(&t->lock);
        e = entry_find(t, mountpoint);
        if (!e) {
                snprintf(err, n_err, "%s: not a mount of this pool", mountpoint);
                r = -ENOENT;
                goto out;
        }
        /* A clean unmount first: the kernel refuses it while files are open
         * or a process has its cwd inside, and writes back dirty pages. */
        if (umount2(mountpoint, UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT) {
                r = -errno;
                if (r != -EBUSY || !force) {
                        snprintf(err, n_err,
                                 r == -EBUSY ? "%s: busy (open files or a working directory "
                                               "inside); force to abort it"
                                             : "%s: cannot unmount: %s",
                                 mountpoint, strerror(-r));
                        goto out;
                }
                log_info("%s: busy, removing by force", mountpoint);
                r = mount_unmount(mountpoint);
                if (r < 0) {
                        snprintf(err, n_err, "%s: cannot unmount: %s", mountpoint, strerror(-r));
                        goto out;
                }
        }
        /* Its thread ends now that the mount is gone; reap must not take
         * the entry meanwhile. */
        e->removing = true;
        entry_teardown(e);
        if (!e->owned) {
                e->mountpoint = NULL;
                e->mount = NULL;
        }
        e->removing = false;
        for (size_t i = 0; i < t->n_entries; i++)
                n_live += t->entries[i].running;
        if (n_live == 0)
                t->emptied_by_remove = true;
        log_info("%s: removed%s", mountpoint, force ? " (forced)" : "");
        r = 0;
out:
        pthread_mutex_unlock(&t->lock);
        return r;
}

void fstable_foreach(FsTable *t, FsTableVisit visit, void *userdata)
{
        pthread_mutex_lock(&t->lock);
        for (size_t i = 0; i < t->n_entries; i++) {
                FsEntry *e = &t->entries[i];

                if (e->running && !e->removing && e->front &&
                    !atomic_load_explicit(&e->ended, memory_order_acquire))
                        visit(userdata, e->mount, front_n_nodes(e->front),
                              front_n_requests(e->front));
        }
        pthread_mutex_unlock(&t->lock);
}

bool fstable_done(FsTable *t)
{
        bool done;

        pthread_mutex_lock(&t->lock);
        done = !t->emptied_by_remove;
        pthread_mutex_unlock(&t->lock);
        return done;
}
