/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Pool definitions (DESIGN.md "Interfaces operators and tests rely on"):
 * JSON, parsed strictly with json-c. Unknown keys, wrong types and impossible
 * values are refused with one line that names the key, e.g.
 * "mounts[0].branches[1].mode: must be \"rw\" or \"ro\"".
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_NAME_MAX 64

typedef struct PoolBranch {
        char *path; /* relative to the backend root, normalised; "" is the root */
        bool writable;
} PoolBranch;

typedef struct PoolMount {
        char *mountpoint;     /* absolute */
        PoolBranch *branches; /* [0] is the top */
        size_t n_branches;
        /* "copy_up": "volatile": copy-ups are not synced to disk before they
         * are published (as overlayfs' volatile option; a crash may leave an
         * empty or partial copy hiding the lower file). Default "durable". */
        bool copy_up_volatile;
} PoolMount;

typedef enum PoolBackendType {
        POOL_BACKEND_LOCAL,
        POOL_BACKEND_CEPHFS,
} PoolBackendType;

typedef struct PoolConfig {
        char *pool;
        /* resources: applied by the manager, carried here */
        char *cpus;          /* NULL when absent */
        uint64_t memory_max; /* 0 when absent */
        PoolBackendType backend_type;
        char *backend_root; /* local: host directory; cephfs: path in CephFS */
        char *ceph_conf, *ceph_client_id, *ceph_keyring;
        uint64_t cache_size, cache_dirty_max, cache_dirty_age_ms; /* 0 = backend default */
        PoolMount *mounts;
        size_t n_mounts;
} PoolConfig;

/* Parses a definition from a NUL-terminated string. On failure returns
 * -EINVAL with a one-line reason in err. */
int pool_config_parse(const char *text, PoolConfig **cfgp, char *err, size_t n_err);
/* Reads and parses a file; I/O errors are reported in err too. */
int pool_config_load(const char *file, PoolConfig **cfgp, char *err, size_t n_err);
PoolConfig *pool_config_free(PoolConfig *cfg);
/* One mounts[] entry on its own (a live mount: danaus-fsd's control socket,
 * the manager's AddMount), checked as in a definition; errors name the key
 * below where ("mount.branches[0].mode: ..."). */
struct json_object;
int pool_mount_parse(struct json_object *obj, const char *where, PoolMount **mountp, char *err,
                     size_t n_err);
PoolMount *pool_mount_free(PoolMount *m);
/* True when the two mount points are equal or one is below the other. */
bool pool_mountpoints_overlap(const char *a, const char *b);
/* True for names usable as a pool (and in unit/slice names): [A-Za-z0-9_.]. */
bool pool_name_valid(const char *name);
/* True when the mount's top branch is read-only (the whole mount is then). */
static inline bool pool_mount_read_only(const PoolMount *m)
{
        return !m->branches[0].writable;
}
