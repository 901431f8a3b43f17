/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * FUSE front: serves one filesystem instance at one mount point through
 * libfuse's low-level API, multithreaded. Kernel requests become libservice
 * calls on the paths the node table keeps.
 */
#include <stdbool.h>
#include <stddef.h>

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
        size_t max_io_files;     /* io files kept by nodes (fds); past it, files
                                  * are opened per request (fuse-file.c) */
        unsigned max_threads;    /* worker threads of the FUSE loop */
        unsigned max_idle_threads;
} FrontCache;

/* Timeouts of a second. Every change reaches the branches through this
 * process, so longer ones should be safe, but with 60 s the differential
 * tester diverges now and then (a stale dentry: ENOTDIR for ENOENT, an
 * open that should fail): some change the kernel is not told of, found
 * only because a 1 s timeout hides it. Longer timeouts wait for that fix
 * (a union stat loop whose warm-up outlasts 1 s revalidates its entries:
 * docs/performance.md). */
#define FRONT_CACHE_DEFAULT                                                                        \
        ((FrontCache){                                                                             \
            .entry_timeout = 1.0,                                                                  \
            .attr_timeout = 1.0,                                                                   \
            .negative_timeout = 1.0,                                                               \
            .keep_cache = true,                                                                    \
            .cache_readdir = true,                                                                 \
            .noflush = true,                                                                       \
            .cache_symlinks = true,                                                                \
            .splice_read = true,                                                                   \
            .writeback_cache = true,                                                               \
            .max_io_files = 4096,                                                                  \
            .max_threads = 16,                                                                     \
            .max_idle_threads = 16,                                                                \
        })

typedef struct FrontParams {
        const char *mountpoint;
        const char *pool; /* shown as the source "danaus:<pool>" */
        LsInstance *inst; /* borrowed: must outlive the front */
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

/* Unmounts if still mounted, ends the session, drops the node table. */
FuseFront *front_free(FuseFront *f);

/* Nodes the kernel holds now (for logs). */
size_t front_n_nodes(FuseFront *f);
