/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * FUSE front: serves one mount through libfuse's low-level API,
 * multithreaded: a thin translation of kernel requests onto the core
 * (core/core.h), with node ids that are the core's nodes. The front is one
 * CoreFront of the pool's core; what changes through another front (or the
 * backend) reaches the kernel as invalidations (fuse-notify.c).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "libservice/libservice.h"

/*
 * What the kernel may cache and how requests flow. Each knob trades
 * coherency with the fast path (which changes files behind the kernel's
 * back, DESIGN.md "Data path") against round trips to this process.
 */
typedef struct FrontCache {
        double entry_timeout;    /* s the kernel trusts name -> node */
        double attr_timeout;     /* s the kernel trusts attributes */
        double negative_timeout; /* s the kernel trusts "no such name"; 0: asks again */
        bool keep_cache;         /* keep the page cache across opens (FOPEN_KEEP_CACHE) */
        bool cache_readdir;      /* kernel caches listings (FOPEN_CACHE_DIR), kept across opens */
        bool noflush;            /* no FLUSH on close(2): our flush has nothing to do */
        bool cache_symlinks;     /* kernel caches readlink (targets never change in place) */
        bool splice_read;        /* read replies spliced from the file's fd (zero copy) */
        bool writeback_cache;    /* kernel buffers writes and writes them back later
                                  * through the node's io file (fuse-file.c) */
        bool posix_acl;          /* the kernel checks POSIX ACLs (FUSE_CAP_POSIX_ACL);
                                  * the core keeps mode and ACL in step */
        unsigned max_threads;    /* worker threads of the FUSE loop */
        unsigned max_idle_threads;
} FrontCache;

/* Entries and attributes are trusted for 60 s: every change made through
 * this mount is one the kernel made itself, and every change made elsewhere
 * (another front, another mount of the pool, the backend) comes back from
 * the core as an invalidation (fuse-notify.c). Negative entries: 1 s (a
 * name created elsewhere is announced too, but a negative entry the kernel
 * keeps for long costs memory for nothing). */
#define FRONT_CACHE_DEFAULT                                                                        \
        ((FrontCache){                                                                             \
            .entry_timeout = 60.0,                                                                 \
            .attr_timeout = 60.0,                                                                  \
            .negative_timeout = 1.0,                                                               \
            .keep_cache = true,                                                                    \
            .cache_readdir = true,                                                                 \
            .noflush = true,                                                                       \
            .cache_symlinks = true,                                                                \
            .splice_read = true,                                                                   \
            .writeback_cache = true,                                                               \
            .posix_acl = true,                                                                     \
            .max_threads = 16,                                                                     \
            .max_idle_threads = 16,                                                                \
        })

typedef struct FrontParams {
        const char *mountpoint;
        const char *pool; /* shown as the source "danaus:<pool>" */
        Core *core;       /* the pool's core: the front attaches to it (and holds it) */
        LsNode *root;     /* the mount's root handle: borrowed, the front takes its own */
        bool read_only;
        int debug; /* >= 2 adds libfuse's dump of every request */
        FrontCache cache;
} FrontParams;

typedef struct FuseFront FuseFront;

/* Routes libfuse's own messages into util/log. Call once. */
void front_setup_logging(void);

/* Creates the session and mounts it. The mount point must be ready
 * (mount_prepare()). */
int front_new(const FrontParams *params, FuseFront **frontp);

/* Serves requests until the mount goes away (unmounted from outside, or by
 * mount_unmount()). Returns 0 or a negative errno. */
int front_run(FuseFront *f);

/* Unmounts if still mounted, ends the session, detaches from the core
 * (dropping every node the kernel still held). */
FuseFront *front_free(FuseFront *f);

/* Invalidations sent to the kernel so far (for logs and tests). */
uint64_t front_n_notes(FuseFront *f);

/* Nodes the kernel holds through this mount now (status, logs). */
size_t front_n_nodes(FuseFront *f);
/* FUSE requests this mount has handled since it was mounted (status). */
uint64_t front_n_requests(FuseFront *f);
