/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Control-socket policy (policy/README.md, danaus-policy(5)): who may manage
 * which pools, and the ceilings a pool definition must stay within.
 *
 * Callers are identified by the SO_PEERCRED of their connection. uid 0 may do
 * everything. Any other caller needs a rule whose group is the caller's
 * primary gid (from the credentials) or one of the supplementary groups of
 * the caller's user (getgrouplist of the uid's passwd entry), whose "pools"
 * patterns (fnmatch) match the pool name, whose "actions" hold the action,
 * and whose ceilings the definition stays within:
 *   cpus (allowed set) / max_cpus (count), max_memory, backends,
 *   backend_roots (backend.root at or under one), mount_roots (every
 *   mountpoint strictly under one).
 * A definition without resources.cpus or resources.memory_max is refused by
 * a rule that sets the matching ceiling (no limit exceeds every ceiling).
 *
 * The file is JSON, parsed strictly like pool definitions: unknown keys, wrong
 * types and impossible values are refused with one line naming the key,
 * e.g. "rules[0].max_memory: \"8Q\" is not a size".
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "util/config.h"

#define POLICY_DEFAULT_PATH "/etc/danaus/policy.json"

typedef enum PolicyAction {
        POLICY_ACTION_SHOW,    /* GetPool, and which pools ListPools shows */
        POLICY_ACTION_CREATE,  /* CreatePool: cfg is the new definition */
        POLICY_ACTION_UPDATE,  /* UpdatePool: cfg is the definition after the change */
        POLICY_ACTION_DESTROY, /* DestroyPool: cfg is the pool's definition */
        POLICY_ACTION_MOUNT,   /* AddMount/RemoveMount: cfg after the change */
        _POLICY_ACTION_MAX,
} PolicyAction;

typedef struct Policy Policy;

/* Loads a policy file. A missing file (ENOENT) gives the empty policy: only
 * root may act (fail closed). Failures: -EINVAL with a one-line reason naming
 * the key in err, or a negative errno from I/O (also described in err). */
int policy_load(const char *path, Policy **policyp, char *err, size_t n_err);
/* Parses a policy from a NUL-terminated string (same errors). */
int policy_parse(const char *text, Policy **policyp, char *err, size_t n_err);
/* The empty policy: only root may act. */
int policy_new_empty(Policy **policyp);
Policy *policy_free(Policy *p);

/* Returns 0 when the caller may perform action on the pool defined by cfg;
 * -EPERM with a one-line reason in why ("uid 1000: no rule lets group ... create
 * pool ...", "resources.memory_max: 16G exceeds the ceiling 8G of rule 0"),
 * naming the closest rule's complaint when several rules match the group.
 * Never fails otherwise. cfg must not be NULL. */
int policy_check(const Policy *p, const struct ucred *cred, PolicyAction action,
                 const PoolConfig *cfg, char *why, size_t n_why);

/* "show", "create", ...; NULL for an invalid action. */
const char *policy_action_to_string(PolicyAction action);
