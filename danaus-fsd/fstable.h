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
 * down. The table is used from one thread (main); session threads only
 * touch their own entry.
 */
#include <pthread.h>
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

/* Stops, waits for and frees everything. */
FsTable *fstable_free(FsTable *t);
