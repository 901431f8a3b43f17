/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Control-socket policy: rules per group, pool patterns, ceilings.
 *
 * The policy is loaded once (group names resolved then) and is read-only
 * afterwards, so policy_check() may run from any thread. Every decision
 * fails closed: an unknown caller, an unresolvable user, a path that is not
 * normalised or resolves outside its root is refused.
 */
#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/cpulist.h"
#include "util/json-parse.h"
#include "util/policy.h"

#define POLICY_FILE_MAX   (1 << 20)
#define POLICY_RULES_MAX  1024
#define POLICY_LIST_MAX   256
#define POLICY_GROUPS_MAX 65536

typedef struct PolicyList {
        char **items;
        size_t n_items;
} PolicyList;

typedef struct PolicyRule {
        gid_t gid;
        char group[64]; /* for messages */
        PolicyList pools;
        unsigned actions; /* bit per PolicyAction */
        bool has_cpus;
        cpu_set_t cpus;
        unsigned max_cpus;                     /* 0: no ceiling */
        uint64_t max_memory;                   /* 0: no ceiling */
        unsigned backends;                     /* bit per PoolBackendType; 0: any */
        PolicyList backend_roots, mount_roots; /* empty: any */
} PolicyRule;

struct Policy {
        PolicyRule *rules;
        size_t n_rules;
};

static const char *const action_names[_POLICY_ACTION_MAX] = {
    [POLICY_ACTION_SHOW] = "show",     [POLICY_ACTION_CREATE] = "create",
    [POLICY_ACTION_UPDATE] = "update", [POLICY_ACTION_DESTROY] = "destroy",
    [POLICY_ACTION_MOUNT] = "mount",
};

const char *policy_action_to_string(PolicyAction action)
{
        if ((unsigned)action >= _POLICY_ACTION_MAX)
                return NULL;
        return action_names[action];
}

static void list_free(PolicyList *l)
{
        for (size_t i = 0; i < l->n_items; i++)
                free(l->items[i]);
        free(l->items);
        l->items = NULL;
        l->n_items = 0;
}

Policy *policy_free(Policy *p)
{
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_rules; i++) {
                list_free(&p->rules[i].pools);
                list_free(&p->rules[i].backend_roots);
                list_free(&p->rules[i].mount_roots);
        }
        free(p->rules);
        free(p);
        return NULL;
}

int policy_new_empty(Policy **policyp)
{
        *policyp = calloc(1, sizeof(**policyp));
        return *policyp ? 0 : -ENOMEM;
}

/* True for "/", or an absolute path without empty, "." or ".." components
 * and without a trailing slash. */
static bool path_normalised(const char *s)
{
        if (s[0] != '/')
                return false;
        if (strcmp(s, "/") == 0)
                return true;
        for (const char *c = s; *c;) {
                const char *e;
                size_t n;

                c++; /* the '/' */
                e = strchrnul(c, '/');
                n = (size_t)(e - c);
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c = e;
        }
        return true;
}

/* Reads an array of strings. check(s) returns an error message or NULL. */
static int get_list(JParse *jp, struct json_object *o, const char *where, const char *key,
                    const char *(*check)(const char *), PolicyList *l)
{
        struct json_object *arr;
        char full[128], item[160];
        size_t n;

        jparse_key_join(full, sizeof(full), where, key);
        if (!json_object_object_get_ex(o, key, &arr))
                return 0;
        if (!json_object_is_type(arr, json_type_array))
                return jparse_fail(jp, full, "must be an array of strings");
        n = json_object_array_length(arr);
        if (n > POLICY_LIST_MAX)
                return jparse_fail(jp, full, "more than %d entries", POLICY_LIST_MAX);
        if (n == 0)
                return jparse_fail(jp, full, "must not be empty (leave it out for no limit)");
        l->items = calloc(n, sizeof(*l->items));
        if (!l->items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(arr, i);
                const char *s, *msg;

                snprintf(item, sizeof(item), "%s[%zu]", full, i);
                if (!json_object_is_type(e, json_type_string))
                        return jparse_fail(jp, item, "must be a string");
                s = json_object_get_string(e);
                if (strlen(s) != (size_t)json_object_get_string_len(e) || strlen(s) >= PATH_MAX ||
                    !*s)
                        return jparse_fail(jp, item, "must be a non-empty string without NUL");
                msg = check ? check(s) : NULL;
                if (msg)
                        return jparse_fail(jp, item, "\"%s\" %s", s, msg);
                l->items[i] = strdup(s);
                if (!l->items[i])
                        return -ENOMEM;
                l->n_items = i + 1;
        }
        return 0;
}

static const char *check_path(const char *s)
{
        return path_normalised(s) ? NULL : "must be an absolute, normalised path";
}

static int parse_group(JParse *jp, struct json_object *o, const char *where, PolicyRule *rule)
{
        struct json_object *g;
        char full[128];

        jparse_key_join(full, sizeof(full), where, "group");
        if (!json_object_object_get_ex(o, "group", &g))
                return jparse_fail(jp, full, "missing");
        if (json_object_is_type(g, json_type_int)) {
                int64_t v = json_object_get_int64(g);

                if (v <= 0 || v >= (int64_t)UINT32_MAX)
                        return jparse_fail(jp, full, "must be a group name or a gid above 0");
                rule->gid = (gid_t)v;
                snprintf(rule->group, sizeof(rule->group), "%" PRId64, v);
                return 0;
        }
        if (json_object_is_type(g, json_type_string)) {
                const char *name = json_object_get_string(g);
                struct group gr, *res = NULL;
                char buf[16384];
                int r;

                if (strlen(name) != (size_t)json_object_get_string_len(g) || !*name ||
                    strlen(name) >= sizeof(rule->group))
                        return jparse_fail(jp, full, "must be a group name or a gid above 0");
                r = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
                if (r != 0 || !res)
                        return jparse_fail(jp, full, "no group \"%s\" on this host", name);
                if (gr.gr_gid == 0)
                        return jparse_fail(jp, full, "group \"%s\" is gid 0 (root needs no rule)",
                                           name);
                rule->gid = gr.gr_gid;
                snprintf(rule->group, sizeof(rule->group), "%s", name);
                return 0;
        }
        return jparse_fail(jp, full, "must be a group name or a gid above 0");
}

static int parse_names(JParse *jp, struct json_object *o, const char *where, const char *key,
                       const char *const *names, size_t n_names, unsigned *maskp)
{
        PolicyList l = {};
        char full[128], item[160];
        int r;

        *maskp = 0;
        r = get_list(jp, o, where, key, NULL, &l);
        for (size_t i = 0; r >= 0 && i < l.n_items; i++) {
                size_t k;

                for (k = 0; k < n_names; k++)
                        if (strcmp(l.items[i], names[k]) == 0)
                                break;
                if (k == n_names) {
                        char all[128] = "";
                        size_t off = 0;

                        for (k = 0; k < n_names && off < sizeof(all); k++)
                                off += (size_t)snprintf(all + off, sizeof(all) - off, "%s%s",
                                                        k ? ", " : "", names[k]);
                        jparse_key_join(full, sizeof(full), where, key);
                        snprintf(item, sizeof(item), "%s[%zu]", full, i);
                        r = jparse_fail(jp, item, "\"%s\" is not one of %s", l.items[i], all);
                        break;
                }
                *maskp |= 1u << k;
        }
        list_free(&l);
        return r;
}

static int parse_rule(JParse *jp, struct json_object *o, const char *where, PolicyRule *rule)
{
        static const char *const keys[] = {"group",       "pools",      "actions",  "cpus",
                                           "max_cpus",    "max_memory", "backends", "backend_roots",
                                           "mount_roots", NULL};
        static const char *const backends[] = {
            [POOL_BACKEND_LOCAL] = "local", [POOL_BACKEND_CEPHFS] = "cephfs"};
        struct json_object *v;
        char full[128];
        char *cpus = NULL;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return jparse_fail(jp, where, "must be an object");
        r = jparse_check_keys(jp, o, where, keys);
        if (r < 0)
                return r;
        r = parse_group(jp, o, where, rule);
        if (r < 0)
                return r;
        jparse_key_join(full, sizeof(full), where, "pools");
        if (!json_object_object_get_ex(o, "pools", NULL))
                return jparse_fail(jp, full, "missing (a list of pool names or patterns)");
        r = get_list(jp, o, where, "pools", NULL, &rule->pools);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(o, "actions", NULL)) {
                r = parse_names(jp, o, where, "actions", action_names, _POLICY_ACTION_MAX,
                                &rule->actions);
                if (r < 0)
                        return r;
        } else {
                rule->actions = (1u << _POLICY_ACTION_MAX) - 1;
        }
        r = jparse_get_string(jp, o, where, "cpus", false, &cpus);
        if (r < 0)
                return r;
        if (cpus) {
                r = cpulist_parse(cpus, &rule->cpus);
                jparse_key_join(full, sizeof(full), where, "cpus");
                if (r < 0)
                        r = jparse_fail(jp, full, "\"%s\" is not a CPU list like \"2-3\"", cpus);
                free(cpus);
                if (r < 0)
                        return r;
                rule->has_cpus = true;
        }
        if (json_object_object_get_ex(o, "max_cpus", &v)) {
                jparse_key_join(full, sizeof(full), where, "max_cpus");
                if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0 ||
                    json_object_get_int64(v) > CPU_SETSIZE)
                        return jparse_fail(jp, full, "must be an integer from 1 to %d",
                                           CPU_SETSIZE);
                rule->max_cpus = (unsigned)json_object_get_int64(v);
        }
        r = jparse_get_size(jp, o, where, "max_memory", &rule->max_memory);
        if (r < 0)
                return r;
        r = parse_names(jp, o, where, "backends", backends, 2, &rule->backends);
        if (r < 0)
                return r;
        r = get_list(jp, o, where, "backend_roots", check_path, &rule->backend_roots);
        if (r < 0)
                return r;
        return get_list(jp, o, where, "mount_roots", check_path, &rule->mount_roots);
}

static int parse_root(JParse *jp, struct json_object *root, Policy *p)
{
        static const char *const keys[] = {"rules", NULL};
        struct json_object *arr;
        char item[64];
        size_t n;
        int r;

        if (!json_object_is_type(root, json_type_object))
                return jparse_fail(jp, "(top level)", "must be a JSON object");
        r = jparse_check_keys(jp, root, "", keys);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(root, "rules", &arr))
                return jparse_fail(jp, "rules", "missing (an empty list lets only root act)");
        if (!json_object_is_type(arr, json_type_array))
                return jparse_fail(jp, "rules", "must be an array");
        n = json_object_array_length(arr);
        if (n > POLICY_RULES_MAX)
                return jparse_fail(jp, "rules", "more than %d rules", POLICY_RULES_MAX);
        if (n == 0)
                return 0;
        p->rules = calloc(n, sizeof(*p->rules));
        if (!p->rules)
                return -ENOMEM;
        p->n_rules = n;
        for (size_t i = 0; i < n; i++) {
                snprintf(item, sizeof(item), "rules[%zu]", i);
                r = parse_rule(jp, json_object_array_get_idx(arr, i), item, &p->rules[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int policy_parse(const char *text, Policy **policyp, char *err, size_t n_err)
{
        JParse jp = {.err = err, .n_err = n_err};
        struct json_object *root;
        Policy *p;
        int r;

        r = jparse_text(text, &root, err, n_err);
        if (r < 0)
                return r;
        r = policy_new_empty(&p);
        if (r < 0) {
                json_object_put(root);
                return r;
        }
        r = parse_root(&jp, root, p);
        json_object_put(root);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(err, n_err, "out of memory");
                policy_free(p);
                return r;
        }
        *policyp = p;
        return 0;
}

int policy_load(const char *path, Policy **policyp, char *err, size_t n_err)
{
        char *text;
        int r;

        r = jparse_read_file(path, POLICY_FILE_MAX, &text, err, n_err);
        if (r == -ENOENT)
                return policy_new_empty(policyp);
        if (r < 0)
                return r;
        r = policy_parse(text, policyp, err, n_err);
        free(text);
        return r;
}

/* The caller's groups: the primary gid from the credentials plus the
 * supplementary groups of the uid's user. Returns the count (>= 1). */
static size_t caller_groups(const struct ucred *cred, gid_t *groups, size_t max)
{
        struct passwd pw, *res = NULL;
        char buf[16384];
        int n = (int)max;

        groups[0] = cred->gid;
        if (getpwuid_r(cred->uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
                return 1;
        if (getgrouplist(pw.pw_name, cred->gid, groups, &n) < 0 || n < 1)
                return 1; /* more than max: the primary one only (fail closed) */
        return (size_t)n;
}

static bool caller_in_group(const gid_t *groups, size_t n, gid_t gid)
{
        for (size_t i = 0; i < n; i++)
                if (groups[i] == gid)
                        return true;
        return false;
}

static bool pool_matches(const PolicyRule *rule, const char *pool)
{
        for (size_t i = 0; i < rule->pools.n_items; i++)
                if (fnmatch(rule->pools.items[i], pool, 0) == 0)
                        return true;
        return false;
}

static bool path_under(const char *path, const char *root)
{
        size_t n = strlen(root);

        if (strcmp(root, "/") == 0)
                return true;
        return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* path (literally, and resolved when it exists) is at or under one of the
 * roots (resolved when they exist). */
static bool path_allowed(const PolicyList *roots, const char *path)
{
        char real[PATH_MAX], real_root[PATH_MAX];
        bool resolved;

        if (roots->n_items == 0)
                return true;
        if (!path_normalised(path))
                return false;
        resolved = realpath(path, real) != NULL;
        for (size_t i = 0; i < roots->n_items; i++) {
                const char *root = roots->items[i];

                if (!path_under(path, root))
                        continue;
                if (!resolved)
                        return true;
                if (!realpath(root, real_root))
                        snprintf(real_root, sizeof(real_root), "%s", root);
                if (path_under(real, real_root))
                        return true;
        }
        return false;
}

static void size_format(uint64_t v, char *buf, size_t n)
{
        static const char units[] = "KMGTP";
        int u = -1;

        while (v >= 1024 && v % 1024 == 0 && u < 4) {
                v /= 1024;
                u++;
        }
        if (u < 0)
                snprintf(buf, n, "%" PRIu64, v);
        else
                snprintf(buf, n, "%" PRIu64 "%c", v, units[u]);
}

/* 0 when cfg stays within the rule's ceilings, else -EPERM with why. */
static int check_ceilings(const PolicyRule *rule, size_t idx, const PoolConfig *cfg, char *why,
                          size_t n_why)
{
        char a[32], b[32];

        if (rule->has_cpus || rule->max_cpus) {
                cpu_set_t set, inter;

                if (!cfg->cpus) {
                        snprintf(why, n_why, "resources.cpus: required by rules[%zu]", idx);
                        return -EPERM;
                }
                if (cpulist_parse(cfg->cpus, &set) < 0) {
                        snprintf(why, n_why, "resources.cpus: \"%s\" is not a CPU list", cfg->cpus);
                        return -EPERM;
                }
                if (rule->max_cpus && (unsigned)CPU_COUNT(&set) > rule->max_cpus) {
                        snprintf(why, n_why,
                                 "resources.cpus: %d CPUs exceed max_cpus %u of rules[%zu]",
                                 CPU_COUNT(&set), rule->max_cpus, idx);
                        return -EPERM;
                }
                if (rule->has_cpus) {
                        CPU_AND(&inter, &set, &rule->cpus);
                        if (!CPU_EQUAL(&inter, &set)) {
                                snprintf(why, n_why,
                                         "resources.cpus: \"%s\" is not within the cpus of "
                                         "rules[%zu]",
                                         cfg->cpus, idx);
                                return -EPERM;
                        }
                }
        }
        if (rule->max_memory) {
                size_format(rule->max_memory, b, sizeof(b));
                if (!cfg->memory_max) {
                        snprintf(why, n_why,
                                 "resources.memory_max: required by rules[%zu] (at most %s)", idx,
                                 b);
                        return -EPERM;
                }
                if (cfg->memory_max > rule->max_memory) {
                        size_format(cfg->memory_max, a, sizeof(a));
                        snprintf(why, n_why,
                                 "resources.memory_max: %s exceeds max_memory %s of rules[%zu]", a,
                                 b, idx);
                        return -EPERM;
                }
        }
        if (rule->backends && !(rule->backends & (1u << cfg->backend_type))) {
                snprintf(why, n_why, "backend.type: not allowed by rules[%zu]", idx);
                return -EPERM;
        }
        if (rule->backend_roots.n_items &&
            (!cfg->backend_root || !path_allowed(&rule->backend_roots, cfg->backend_root))) {
                snprintf(why, n_why,
                         "backend.root: \"%s\" is not under a backend_roots entry of "
                         "rules[%zu]",
                         cfg->backend_root ? cfg->backend_root : "", idx);
                return -EPERM;
        }
        for (size_t i = 0; i < cfg->n_mounts; i++)
                if (!path_allowed(&rule->mount_roots, cfg->mounts[i].mountpoint)) {
                        snprintf(why, n_why,
                                 "mounts[%zu].mountpoint: \"%s\" is not under a mount_roots entry "
                                 "of rules[%zu]",
                                 i, cfg->mounts[i].mountpoint, idx);
                        return -EPERM;
                }
        return 0;
}

int policy_check(const Policy *p, const struct ucred *cred, PolicyAction action,
                 const PoolConfig *cfg, char *why, size_t n_why)
{
        gid_t *groups;
        size_t n_groups;
        bool matched = false;
        int r = -EPERM;

        if (cred->uid == 0)
                return 0;
        if ((unsigned)action >= _POLICY_ACTION_MAX || !cfg || !cfg->pool) {
                snprintf(why, n_why, "invalid request");
                return -EPERM;
        }
        groups = malloc(POLICY_GROUPS_MAX * sizeof(*groups));
        if (!groups) {
                snprintf(why, n_why, "out of memory");
                return -EPERM;
        }
        n_groups = caller_groups(cred, groups, POLICY_GROUPS_MAX);
        for (size_t i = 0; p && i < p->n_rules; i++) {
                const PolicyRule *rule = &p->rules[i];
                char reason[512];

                if (!caller_in_group(groups, n_groups, rule->gid) ||
                    !pool_matches(rule, cfg->pool) || !(rule->actions & (1u << action)))
                        continue;
                if (action == POLICY_ACTION_SHOW || action == POLICY_ACTION_DESTROY) {
                        r = 0;
                        break;
                }
                if (check_ceilings(rule, i, cfg, reason, sizeof(reason)) == 0) {
                        r = 0;
                        break;
                }
                if (!matched)
                        snprintf(why, n_why, "%s", reason);
                matched = true;
        }
        free(groups);
        if (r < 0 && !matched)
                snprintf(why, n_why, "uid %u: no rule lets its groups %s pool \"%s\"",
                         (unsigned)cred->uid, action_names[action], cfg->pool);
        return r;
}
