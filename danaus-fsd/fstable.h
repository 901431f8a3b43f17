/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Filesystem table: mount point -> filesystem instance, with the FUSE session
 * and thread that serve it. One per danaus-fsd process (one pool).
 *
 * Lifecycle of an entry: built and mounted by fstable_new(); served by its
 * own thread until the mount goes away, whether unmounted from outside
 * (umount, fusermount3 -u) or by fstable_stop(); its thread then signals
 * the waiting thread (notify_sig) and fstable_reap() takes the instance
 * down. Session threads only touch their own entry; the table itself is
 * locked, so main and the control socket's thread (control.c) may both use it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "fuse-front.h"
#include "util/config.h"

typedef struct FsTable FsTable;

typedef struct FsTableParams {
        const PoolConfig *cfg;
        int debug;        /* 1: our debug logs, 2: plus libfuse's request dump */
        FrontCache cache; /* the same for every mount of the pool */
        size_t max_io_files; /* io files the core keeps open (0: its default) */
        pthread_t waiter; /* told when a mount went away ... */
        int notify_sig;   /* ... with this signal (blocked, waited for) */
} FsTableParams;

/* Readies every mount point, builds every instance, mounts and starts
 * serving them all; on failure nothing is left mounted and err holds one
 * line. */
int fstable_new(const FsTableParams *params, FsTable **tablep, char *err, size_t n_err);

/* Joins the threads whose mount went away and takes their instances down.
 * Returns how many mounts are still served. */
size_t fstable_reap(FsTable *t);

/* Unmounts every mount still served; their threads end soon after. */
void fstable_stop(FsTable *t);

/* Live mounts (control.c): fstable_add() mounts one more filesystem next to
 * the others, which are not touched; fstable_remove() unmounts one and takes
 * its instance down before returning. A busy mount (open files, a cwd inside)
 * is refused with -EBUSY unless force, which aborts its connection. A table
 * emptied by fstable_remove() keeps the service up (fstable_done() stays
 * false) for the next fstable_add(). At most FSTABLE_MOUNTS_MAX mounts. */
#define FSTABLE_MOUNTS_MAX 256
/* Takes m (a pool_mount_free()'able copy) on success. Errors: -EEXIST or
 * -EBUSY (the mount point is used or overlaps a mount), -ENOSPC, what
 * building or mounting gives; one line in err. */
int fstable_add(FsTable *t, PoolMount *m, char *err, size_t n_err);
/* -ENOENT: no such mount; -EBUSY: busy and not forced. */
int fstable_remove(FsTable *t, const char *mountpoint, bool force, char *err, size_t n_err);
/* Calls visit for every mount served, under the table's lock. */
typedef void (*FsTableVisit)(void *userdata, const PoolMount *m, size_t n_nodes,
                             uint64_t n_requests);
void fstable_foreach(FsTable *t, FsTableVisit visit, void *userdata);
/* After fstable_reap() returned 0: true when the service should end (the
 * last mount went away from outside, not through fstable_remove()). */
bool fstable_done(FsTable *t);

/* Stops, waits for and frees everything. */
FsTable *fstable_free(FsTable *t);
