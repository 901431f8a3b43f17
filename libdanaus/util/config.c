/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pool definition parser.
 *
 * Every object is first checked against the list of keys it may hold, so a
 * typo ("mountpiont") is an error rather than a silently ignored key; then
 * each field is read with its type checked. Errors name the key with its
 * full path ("mounts[0].branches[1].mode") so the operator finds it at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libservice/libservice.h"
#include "util/config.h"
#include "util/json-parse.h"

#define CONFIG_FILE_MAX     (1 << 20)
#define CONFIG_MOUNTS_MAX   256
#define CONFIG_BRANCHES_MAX 128

typedef JParse Parse;

bool pool_name_valid(const char *name)
{
        size_t n = strlen(name);

        if (n == 0 || n > POOL_NAME_MAX || name[0] == '.')
                return false;
        for (const char *c = name; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || *c == '_' || *c == '.'))
                        return false;
        return true;
}

/* Strips "./" and trailing '/' so "images/debian/" and "." are accepted. */
static void branch_path_tidy(char *s)
{
        size_t n;

        while (s[0] == '.' && s[1] == '/')
                memmove(s, s + 2, strlen(s + 2) + 1);
        if (strcmp(s, ".") == 0)
                s[0] = '\0';
        n = strlen(s);
        while (n > 0 && s[n - 1] == '/')
                s[--n] = '\0';
}

static int parse_branch(Parse *p, struct json_object *o, const char *where, PoolBranch *b)
{
        static const char *const keys[] = {"path", "mode", NULL};
        char full[256];
        char *mode = NULL;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return jparse_fail(p, where, "must be an object with \"path\" and \"mode\"");
        r = jparse_check_keys(p, o, where, keys);
        if (r < 0)
                return r;
        r = jparse_get_string(p, o, where, "path", true, &b->path);
        if (r < 0)
                return r;
        branch_path_tidy(b->path);
        jparse_key_join(full, sizeof(full), where, "path");
        if (b->path[0] == '/' || !ls_path_valid(b->path))
                return jparse_fail(p, full,
                                   "\"%s\" must be a path relative to backend.root, without "
                                   "\"..\"",
                                   b->path);
        r = jparse_get_string(p, o, where, "mode", false, &mode);
        if (r < 0)
                return r;
        jparse_key_join(full, sizeof(full), where, "mode");
        if (!mode || strcmp(mode, "ro") == 0) {
                b->writable = false;
        } else if (strcmp(mode, "rw") == 0) {
                b->writable = true;
        } else {
                free(mode);
                return jparse_fail(p, full, "must be \"rw\" or \"ro\"");
        }
        free(mode);
        return 0;
}

static int parse_mount(Parse *p, struct json_object *o, const char *where, PoolMount *m)
{
        static const char *const keys[] = {"mountpoint", "branches", "copy_up", NULL};
        struct json_object *arr;
        char full[128], item[256];
        char *copy_up = NULL;
        size_t n;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return jparse_fail(p, where, "must be an object");
        r = jparse_check_keys(p, o, where, keys);
        if (r < 0)
                return r;
        r = jparse_get_string(p, o, where, "mountpoint", true, &m->mountpoint);
        if (r < 0)
                return r;
        jparse_key_join(full, sizeof(full), where, "mountpoint");
        if (m->mountpoint[0] != '/' || strcmp(m->mountpoint, "/") == 0 ||
            !ls_path_valid(m->mountpoint + 1))
                return jparse_fail(p, full,
                                   "\"%s\" must be an absolute, normalised path other than /",
                                   m->mountpoint);
        r = jparse_get_string(p, o, where, "copy_up", false, &copy_up);
        if (r < 0)
                return r;
        if (copy_up) {
                bool ok = strcmp(copy_up, "durable") == 0 || strcmp(copy_up, "volatile") == 0;

                m->copy_up_volatile = strcmp(copy_up, "volatile") == 0;
                free(copy_up);
                jparse_key_join(full, sizeof(full), where, "copy_up");
                if (!ok)
                        return jparse_fail(p, full, "must be \"durable\" or \"volatile\"");
        }
        jparse_key_join(full, sizeof(full), where, "branches");
        if (!json_object_object_get_ex(o, "branches", &arr))
                return jparse_fail(p, full, "missing");
        if (!json_object_is_type(arr, json_type_array))
                return jparse_fail(p, full, "must be an array");
        n = json_object_array_length(arr);
        if (n == 0)
                return jparse_fail(p, full, "must hold at least one branch");
        if (n > CONFIG_BRANCHES_MAX)
                return jparse_fail(p, full, "more than %d branches", CONFIG_BRANCHES_MAX);
        m->branches = calloc(n, sizeof(*m->branches));
        if (!m->branches)
                return -ENOMEM;
        m->n_branches = n;
        for (size_t i = 0; i < n; i++) {
                snprintf(item, sizeof(item), "%s[%zu]", full, i);
                r = parse_branch(p, json_object_array_get_idx(arr, i), item, &m->branches[i]);
                if (r < 0)
                        return r;
                if (i > 0 && m->branches[i].writable) {
                        snprintf(item, sizeof(item), "%s[%zu].mode", full, i);
                        return jparse_fail(p, item, "only the first (top) branch may be \"rw\"");
                }
        }
        return 0;
}

static int parse_backend(Parse *p, struct json_object *root, PoolConfig *cfg)
{
        static const char *const keys[] = {"type", "root", "conf", "client_id", "keyring", NULL};
        struct json_object *o;
        char *type = NULL;
        int r;

        r = jparse_get_object(p, root, "", "backend", true, &o);
        if (r < 0)
                return r;
        r = jparse_check_keys(p, o, "backend", keys);
        if (r < 0)
                return r;
        r = jparse_get_string(p, o, "backend", "type", true, &type);
        if (r < 0)
                return r;
        if (strcmp(type, "local") == 0) {
                cfg->backend_type = POOL_BACKEND_LOCAL;
        } else if (strcmp(type, "cephfs") == 0) {
                cfg->backend_type = POOL_BACKEND_CEPHFS;
        } else {
                free(type);
                return jparse_fail(p, "backend.type", "must be \"local\" or \"cephfs\"");
        }
        free(type);
        r = jparse_get_string(p, o, "backend", "root", cfg->backend_type == POOL_BACKEND_LOCAL,
                              &cfg->backend_root);
        if (r < 0)
                return r;
        if (cfg->backend_type == POOL_BACKEND_LOCAL) {
                if (cfg->backend_root[0] != '/')
                        return jparse_fail(p, "backend.root", "must be an absolute host path");
                if (json_object_object_get_ex(o, "conf", NULL) ||
                    json_object_object_get_ex(o, "client_id", NULL) ||
                    json_object_object_get_ex(o, "keyring", NULL))
                        return jparse_fail(p, "backend",
                                           "conf, client_id and keyring are for "
                                           "\"type\": \"cephfs\" only");
                return 0;
        }
        r = jparse_get_string(p, o, "backend", "conf", true, &cfg->ceph_conf);
        if (r < 0)
                return r;
        r = jparse_get_string(p, o, "backend", "client_id", false, &cfg->ceph_client_id);
        if (r < 0)
                return r;
        return jparse_get_string(p, o, "backend", "keyring", false, &cfg->ceph_keyring);
}

static int parse_resources_cache(Parse *p, struct json_object *root, PoolConfig *cfg)
{
        static const char *const res_keys[] = {"cpus", "memory_max", NULL};
        static const char *const cache_keys[] = {"size", "dirty_max", "dirty_age_ms", NULL};
        struct json_object *o, *age;
        int r;

        r = jparse_get_object(p, root, "", "resources", false, &o);
        if (r < 0)
                return r;
        if (o) {
                r = jparse_check_keys(p, o, "resources", res_keys);
                if (r < 0)
                        return r;
                r = jparse_get_string(p, o, "resources", "cpus", false, &cfg->cpus);
                if (r < 0)
                        return r;
                if (cfg->cpus &&
                    (!*cfg->cpus || strspn(cfg->cpus, "0123456789,-") != strlen(cfg->cpus)))
                        return jparse_fail(p, "resources.cpus",
                                           "\"%s\" is not a CPU list like \"2-3\"", cfg->cpus);
                r = jparse_get_size(p, o, "resources", "memory_max", &cfg->memory_max);
                if (r < 0)
                        return r;
        }
        r = jparse_get_object(p, root, "", "cache", false, &o);
        if (r < 0 || !o)
                return r;
        r = jparse_check_keys(p, o, "cache", cache_keys);
        if (r < 0)
                return r;
        r = jparse_get_size(p, o, "cache", "size", &cfg->cache_size);
        if (r < 0)
                return r;
        r = jparse_get_size(p, o, "cache", "dirty_max", &cfg->cache_dirty_max);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(o, "dirty_age_ms", &age)) {
                if (!json_object_is_type(age, json_type_int) || json_object_get_int64(age) < 0)
                        return jparse_fail(p, "cache.dirty_age_ms",
                                           "must be a non-negative integer");
                cfg->cache_dirty_age_ms = (uint64_t)json_object_get_int64(age);
        }
        return 0;
}

static int parse_root(Parse *p, struct json_object *root, PoolConfig *cfg)
{
        static const char *const keys[] = {"pool", "resources", "backend", "cache", "mounts", NULL};
        struct json_object *arr;
        char item[64];
        size_t n;
        int r;

        if (!json_object_is_type(root, json_type_object))
                return jparse_fail(p, "(top level)", "must be a JSON object");
        r = jparse_check_keys(p, root, "", keys);
        if (r < 0)
                return r;
        r = jparse_get_string(p, root, "", "pool", true, &cfg->pool);
        if (r < 0)
                return r;
        if (!pool_name_valid(cfg->pool))
                return jparse_fail(p, "pool",
                                   "\"%s\" must be 1-%d characters of A-Z a-z 0-9 _ . "
                                   "(no leading dot)",
                                   cfg->pool, POOL_NAME_MAX);
        r = parse_resources_cache(p, root, cfg);
        if (r < 0)
                return r;
        r = parse_backend(p, root, cfg);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(root, "mounts", &arr))
                return jparse_fail(p, "mounts", "missing");
        if (!json_object_is_type(arr, json_type_array))
                return jparse_fail(p, "mounts", "must be an array");
        n = json_object_array_length(arr);
        if (n == 0)
                return jparse_fail(p, "mounts", "must hold at least one mount");
        if (n > CONFIG_MOUNTS_MAX)
                return jparse_fail(p, "mounts", "more than %d mounts", CONFIG_MOUNTS_MAX);
        cfg->mounts = calloc(n, sizeof(*cfg->mounts));
        if (!cfg->mounts)
                return -ENOMEM;
        cfg->n_mounts = n;
        for (size_t i = 0; i < n; i++) {
                snprintf(item, sizeof(item), "mounts[%zu]", i);
                r = parse_mount(p, json_object_array_get_idx(arr, i), item, &cfg->mounts[i]);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++) {
                        if (pool_mountpoints_overlap(cfg->mounts[j].mountpoint,
                                                     cfg->mounts[i].mountpoint)) {
                                snprintf(item, sizeof(item), "mounts[%zu].mountpoint", i);
                                return jparse_fail(p, item, "\"%s\" overlaps mounts[%zu]",
                                                   cfg->mounts[i].mountpoint, j);
                        }
                }
        }
        return 0;
}

int pool_config_parse(const char *text, PoolConfig **cfgp, char *err, size_t n_err)
{
        Parse p = {.err = err, .n_err = n_err};
        struct json_object *root;
        PoolConfig *cfg;
        int r;

        r = jparse_text(text, &root, err, n_err);
        if (r < 0)
                return r;
        cfg = calloc(1, sizeof(*cfg));
        if (!cfg) {
                json_object_put(root);
                return -ENOMEM;
        }
        r = parse_root(&p, root, cfg);
        json_object_put(root);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(err, n_err, "out of memory");
                pool_config_free(cfg);
                return r;
        }
        *cfgp = cfg;
        return 0;
}

int pool_config_load(const char *file, PoolConfig **cfgp, char *err, size_t n_err)
{
        char *text;
        int r;

        r = jparse_read_file(file, CONFIG_FILE_MAX, &text, err, n_err);
        if (r < 0)
                return r;
        r = pool_config_parse(text, cfgp, err, n_err);
        free(text);
        return r;
}

bool pool_mountpoints_overlap(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);

        return strcmp(a, b) == 0 || (la < lb && strncmp(a, b, la) == 0 && b[la] == '/') ||
               (lb < la && strncmp(a, b, lb) == 0 && a[lb] == '/');
}

static void mount_clear(PoolMount *m)
{
        for (size_t j = 0; j < m->n_branches; j++)
                free(m->branches[j].path);
        free(m->branches);
        free(m->mountpoint);
}

int pool_mount_parse(struct json_object *obj, const char *where, PoolMount **mountp, char *err,
                     size_t n_err)
{
        Parse p = {.err = err, .n_err = n_err};
        PoolMount *m;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        r = parse_mount(&p, obj, where, m);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(err, n_err, "out of memory");
                pool_mount_free(m);
                return r;
        }
        *mountp = m;
        return 0;
}

PoolMount *pool_mount_free(PoolMount *m)
{
        if (m) {
                mount_clear(m);
                free(m);
        }
        return NULL;
}

PoolConfig *pool_config_free(PoolConfig *cfg)
{
        if (!cfg)
                return NULL;
        for (size_t i = 0; i < cfg->n_mounts; i++)
                mount_clear(&cfg->mounts[i]);
        free(cfg->mounts);
        free(cfg->pool);
        free(cfg->cpus);
        free(cfg->backend_root);
        free(cfg->ceph_conf);
        free(cfg->ceph_client_id);
        free(cfg->ceph_keyring);
        free(cfg);
        return NULL;
}
