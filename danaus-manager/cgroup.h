/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Cgroups for the direct backend: one cgroup per pool below the manager's
 * own, "<own>/<name>/<pool>", in the unified hierarchy (cgroup v2: cpuset
 * and memory controllers) or, on hybrid and v1 hosts, in the cpuset and the
 * memory hierarchies. Limits: cpuset.cpus, memory.max / memory.limit_in_bytes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CGROUP_DIRS_MAX 2

typedef struct Cgroups {
        bool v2;
        /* v2: [0] the base in the unified hierarchy; v1: [0] cpuset, [1] memory */
        char *base[CGROUP_DIRS_MAX];
        size_t n_base;
} Cgroups;

/* Finds the hierarchies (statfs on /sys/fs/cgroup: cgroup2, or v1 cpuset
 * and memory from /proc/self/mountinfo), creates the base "<own>/<name>"
 * (v2: moves the manager into the leaf "<own>/manager" first when its cgroup
 * must pass controllers on) and readies it (v1 cpuset: cpus and mems copied
 * from the parent). Errors: one line in err. */
int cgroups_init(Cgroups *cg, const char *name, char *err, size_t n_err);
void cgroups_deinit(Cgroups *cg);

/* Creates the pool's cgroups (an existing one is reused) and applies the
 * limits: cpus NULL means all of the parent's, memory_max 0 no limit. */
int cgroups_pool_create(Cgroups *cg, const char *pool, const char *cpus, uint64_t memory_max,
                        char *err, size_t n_err);
int cgroups_pool_apply(Cgroups *cg, const char *pool, const char *cpus, uint64_t memory_max,
                       char *err, size_t n_err);
/* Moves pid into every cgroup of the pool. */
int cgroups_pool_attach(Cgroups *cg, const char *pool, pid_t pid);
/* The pids in the pool (from the first hierarchy); returns how many (at most
 * max are stored), or -errno (-ENOENT: no such cgroup). */
int cgroups_pool_pids(Cgroups *cg, const char *pool, pid_t *pids, size_t max);
/* Removes the pool's cgroups (they must be empty: -EBUSY otherwise). */
int cgroups_pool_remove(Cgroups *cg, const char *pool);
/* What the kernel reports for the pool. */
int cgroups_pool_memory_current(Cgroups *cg, const char *pool, uint64_t *bytesp);
int cgroups_pool_cpus_effective(Cgroups *cg, const char *pool, char *buf, size_t size);
/* The pool's directory in hierarchy i (< n_base). */
int cgroups_pool_path(Cgroups *cg, size_t i, const char *pool, char *buf, size_t size);
