/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * io.danaus.Manager: the method handlers.
 *
 * Every handler works the same way: the server has already checked the
 * parameters' names and types against the table at the bottom; the handler
 * builds the pool's definition as it would be after the call, parses it like
 * any definition from outside (so the same rules hold for a file and for a
 * call), asks the policy with the caller's SO_PEERCRED, applies the change
 * to the running service, stores the definition atomically and only then
 * replaces the pool's in-memory copy. A failure at any step leaves the pool
 * as it was.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager.h"
#include "mlog.h"
#include "state.h"
#include "util/json-parse.h"

#define IFACE            "io.danaus.Manager"
#define FSD_CALL_TIMEOUT 30000
#define FSD_INFO_TIMEOUT 1000

extern const char manager_varlink_description[];

/* ---- answers ----------------------------------------------------------------- */

static int answer_error(VarlinkRequest *req, const char *error, ...)
{
        struct json_object *o = json_object_new_object();
        const char *key;
        va_list ap;
        int r;

        if (!o)
                return -ENOMEM;
        va_start(ap, error);
        while ((key = va_arg(ap, const char *))) {
                const char *val = va_arg(ap, const char *);
                json_object_object_add(o, key, json_object_new_string(val ? val : ""));
        }
        va_end(ap);
        r = varlink_request_error(req, error, o);
        json_object_put(o);
        return r;
}

static int no_such_pool(VarlinkRequest *req, const char *name)
{
        return answer_error(req, IFACE ".NoSuchPool", "name", name, NULL);
}

/* A parse error "key: message" answered as InvalidParameter "prefix.key". */
static int invalid_definition(VarlinkRequest *req, const char *prefix, const char *err)
{
        char param[256];
        const char *colon = strstr(err, ": ");
        size_t n = colon ? (size_t)(colon - err) : 0;

        if (n && n < 200 && !memchr(err, ' ', n))
                snprintf(param, sizeof(param), "%s.%.*s", prefix, (int)n, err);
        else
                snprintf(param, sizeof(param), "%s", prefix);
        return answer_error(req, IFACE ".InvalidParameter", "parameter", param, "message", err,
                            NULL);
}

static int backend_failed(VarlinkRequest *req, const char *name, const char *msg)
{
        mlog(LOG_ERR, name, "%s", msg);
        return answer_error(req, IFACE ".BackendFailed", "name", name, "message", msg, NULL);
}

/* 0 when allowed; else answers PermissionDenied and returns 1. */
static int authorize(Manager *m, VarlinkRequest *req, PolicyAction action, const PoolConfig *cfg,
                     int *rp)
{
        char why[512] = "";
        const struct ucred *cred = varlink_request_peer(req);

        if (policy_check(m->policy, cred, action, cfg, why, sizeof(why)) == 0)
                return 0;
        mlog_client(LOG_WARNING, cfg->pool, "denied %s to uid %u (pid %d): %s",
                    policy_action_to_string(action), (unsigned)cred->uid, (int)cred->pid, why);
        *rp = answer_error(req, IFACE ".PermissionDenied", "message", why, NULL);
        return 1;
}

/* ---- PoolInfo ---------------------------------------------------------------- */

static bool service_may_answer(Pool *p)
{
        return p->state == POOL_RUNNING || p->state == POOL_STARTING;
}

static struct json_object *pool_info(Manager *m, Pool *p)
{
        struct json_object *o = json_object_new_object(), *mounts = NULL;
        char ctl[PATH_MAX];

        if (!o)
                return NULL;
        json_object_object_add(o, "name", json_object_new_string(p->name));
        json_object_object_add(o, "state", json_object_new_string(pool_state_to_string(p->state)));
        json_object_object_add(o, "backend", json_object_new_string(m->backend->name));
        if (p->cfg->cpus)
                json_object_object_add(o, "cpus", json_object_new_string(p->cfg->cpus));
        if (p->cfg->memory_max)
                json_object_object_add(o, "memory_max",
                                       json_object_new_int64((int64_t)p->cfg->memory_max));
        json_object_object_add(o, "restarts", json_object_new_int64(p->restarts));
        json_object_object_get_ex(p->def, "mounts", &mounts);
        if (mounts) {
                struct json_object *copy = NULL;
                if (json_object_deep_copy(mounts, &copy, NULL) == 0)
                        json_object_object_add(o, "mounts", copy);
        }
        {
                struct json_object *copy = NULL;
                if (json_object_deep_copy(p->def, &copy, NULL) == 0)
                        json_object_object_add(o, "definition", copy);
        }
        m->backend->describe(m, p, o);
        if (service_may_answer(p) && manager_control_path(m, p->name, ctl, sizeof(ctl)) == 0) {
                VarlinkReply reply;
                if (fsd_call(ctl, "io.danaus.Fsd.GetStatus", NULL, FSD_INFO_TIMEOUT, &reply) == 0) {
                        if (!reply.error)
                                json_object_object_add(o, "service",
                                                       json_object_get(reply.parameters));
                        varlink_reply_clear(&reply);
                }
        }
        return o;
}

static int reply_pool(VarlinkRequest *req, Manager *m, Pool *p)
{
        struct json_object *o = json_object_new_object(), *info = pool_info(m, p);
        int r;

        if (!o || !info) {
                json_object_put(o);
                json_object_put(info);
                return -ENOMEM;
        }
        json_object_object_add(o, "pool", info);
        r = varlink_request_reply(req, o, false);
        json_object_put(o);
        return r;
}

/* ---- helpers ------------------------------------------------------------------- */

static const char *param_string(struct json_object *params, const char *key)
{
        struct json_object *v;

        if (!json_object_object_get_ex(params, key, &v) ||
            !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* Parses def (as text, like a file) into a PoolConfig. */
static int parse_def(struct json_object *def, PoolConfig **cfgp, char *err, size_t n_err)
{
        const char *text = json_object_to_json_string_ext(def, JSON_C_TO_STRING_PLAIN);

        if (!text)
                return -ENOMEM;
        return pool_config_parse(text, cfgp, err, n_err);
}

/* A mount of cfg that overlaps a mount of another pool: its index, or -1. */
static ssize_t overlap_other_pools(Manager *m, const PoolConfig *cfg, const char **otherp)
{
        for (Pool *p = m->pools; p; p = p->next) {
                if (strcmp(p->name, cfg->pool) == 0)
                        continue;
                for (size_t i = 0; i < cfg->n_mounts; i++)
                        for (size_t j = 0; j < p->cfg->n_mounts; j++)
                                if (pool_mountpoints_overlap(cfg->mounts[i].mountpoint,
                                                             p->cfg->mounts[j].mountpoint)) {
                                        *otherp = p->name;
                                        return (ssize_t)i;
                                }
        }
        return -1;
}

static int refuse_overlap(VarlinkRequest *req, const char *prefix, const PoolConfig *cfg, ssize_t i,
                          const char *other)
{
        char param[128], msg[PATH_MAX + 128];

        snprintf(param, sizeof(param), "%s", prefix);
        if (strcmp(prefix, "definition") == 0)
                snprintf(param, sizeof(param), "definition.mounts[%zd].mountpoint", i);
        snprintf(msg, sizeof(msg), "%s overlaps a mount of pool %s", cfg->mounts[i].mountpoint,
                 other);
        return answer_error(req, IFACE ".InvalidParameter", "parameter", param, "message", msg,
                            NULL);
}

/* Replaces the pool's definition after the change was applied. */
static void pool_swap(Pool *p, struct json_object *def, PoolConfig *cfg)
{
        json_object_put(p->def);
        pool_config_free(p->cfg);
        p->def = def;
        p->cfg = cfg;
}

static void pool_unlink(Manager *m, Pool *p)
{
        for (Pool **pp = &m->pools; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
}

/* ---- methods ------------------------------------------------------------------- */

static int method_create(VarlinkRequest *req, struct json_object *params, void *userdata)
{
        Manager *m = userdata;
        struct json_object *def = NULL, *in;
        PoolConfig *cfg = NULL;
        char err[1024] = "";
        const char *other = NULL;
        Pool *p = NULL;
        ssize_t i;
        int r = 0;

        json_object_object_get_ex(params, "definition", &in);
        if (json_object_deep_copy(in, &def, NULL) < 0)
                return -ENOMEM;
        if (parse_def(def, &cfg, err, sizeof(err)) < 0) {
                json_object_put(def);
                return invalid_definition(req, "definition", err);
        }
        if (authorize(m, req, POLICY_ACTION_CREATE, cfg, &r))
                goto out;
        if (manager_find_pool(m, cfg->pool)) {
                r = answer_error(req, IFACE ".PoolExists", "name", cfg->pool, NULL);
                goto out;
        }
        i = overlap_other_pools(m, cfg, &other);
        if (i >= 0) {
                r = refuse_overlap(req, "definition", cfg, i, other);
                goto out;
        }
        r = pool_new(&p, def, cfg);
        if (r < 0)
                goto out;
        def = NULL;
        cfg = NULL;
        r = state_save(m->opt.state_dir, p->name, p->def);
        if (r < 0) {
                snprintf(err, sizeof(err), "cannot store the definition in %s: %s",
                         m->opt.state_dir, strerror(-r));
                r = backend_failed(req, p->name, err);
                pool_free(p);
                goto out;
        }
        p->next = m->pools;
        m->pools = p;
        r = m->backend->start(m, p, err, sizeof(err));
        if (r < 0) {
                char ignored[256];
                r = backend_failed(req, p->name, err);
                m->backend->stop(m, p, ignored, sizeof(ignored));
                state_remove(m->opt.state_dir, p->name);
                pool_unlink(m, p);
                pool_free(p);
                goto out;
        }
        mlog(LOG_INFO, p->name, "created by uid %u (pid %d)",
             (unsigned)varlink_request_peer(req)->uid, (int)p->pid);
        r = reply_pool(req, m, p);
out:
        json_object_put(def);
        pool_config_free(cfg);
        return r;
}

static int method_list(VarlinkRequest *req, struct json_object *params, void *userdata)
{
        Manager *m = userdata;
        struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
        int r;

        if (!o || !arr) {
                json_object_put(o);
                json_object_put(arr);
                return -ENOMEM;
        }
        for (Pool *p = m->pools; p; p = p->next) {
                char why[256];
                if (policy_check(m->policy, varlink_request_peer(req), POLICY_ACTION_SHOW, p->cfg,
                                 why, sizeof(why)) == 0)
                        json_object_array_add(arr, pool_info(m, p));
        }
        json_object_object_add(o, "pools", arr);
        r = varlink_request_reply(req, o, false);
        json_object_put(o);
        return r;
}

static int method_get(VarlinkRequest *req, struct json_object *params, void *userdata)
{
        Manager *m = userdata;
        const char *name = param_string(params, "name");
        Pool *p = manager_find_pool(m, name);
        int r = 0;

        if (!p)
                return no_such_pool(req, name);
        if (authorize(m, req, POLICY_ACTION_SHOW, p->cfg, &r))
                return r;
        return reply_pool(req, m, p);
}

/* Sets or (for "") removes resources.key in def. */
static int set_resource(struct json_object *def, const char *key, const char *val)
{
        struct json_object *res;

        if (!json_object_object_get_ex(def, "resources", &res) ||
            !json_object_is_type(res, json_type_object)) {
                res = json_object_new_object();
                if (!res)
                        return -ENOMEM;
                json_object_object_add(def, "resources", res);
        }
        if (!*val)
                json_object_object_del(res, key);
        else
                json_object_object_add(res, key, json_object_new_string(val));
        if (json_object_object_length(res) == 0)
                json_object_object_del(def, "resources");
        return 0;
}

static bool pool_has_service(Pool *p)
{
        return p->state != POOL_FAILED && p->state != POOL_STOPPED;
}

static int method_update(VarlinkRequest *req, struct json_object *params, void *userdata)
{
        Manager *m = userdata;
        const char *name = param_string(params, "name"), *cpus = param_string(params, "cpus"),
                   *mem = param_string(params, "memory_max");
        Pool *p = manager_find_pool(m, name);
        struct json_object *def = NULL;
        PoolConfig *cfg = NULL, *old;
        char err[1024] = "";
        int r = 0;

        if (!p)
                return no_such_pool(req, name);
        if (json_object_deep_copy(p->def, &def, NULL) < 0)
                return -ENOMEM;
        if ((cpus && set_resource(def, "cpus", cpus) < 0) ||
            (mem && set_resource(def, "memory_max", mem) < 0)) {
                r = -ENOMEM;
                goto out;
        }
        if (parse_def(def, &cfg, err, sizeof(err)) < 0) {
                const char *param = strncmp(err, "resources.cpus", 14) == 0         ? "cpus"
                                    : strncmp(err, "resources.memory_max", 20) == 0 ? "memory_max"
                                                                                    : "name";
                r = answer_error(req, IFACE ".InvalidParameter", "parameter", param, "message", err,
                                 NULL);
                goto out;
        }
        if (authorize(m, req, POLICY_ACTION_UPDATE, cfg, &r))
                goto out;
        old = p->cfg;
        p->cfg = cfg;
        if (pool_has_service(p)) {
                r = m->backend->update(m, p, err, sizeof(err));
                if (r < 0) {
                        char ignored[256];
                        p->cfg = old;
                        m->backend->update(m, p, ignored, sizeof(ignored));
                        /* The kernel refusing a value is the caller's to fix. */
                        if (r == -EINVAL || r == -EBUSY)
                                r = answer_error(
                                    req, IFACE ".InvalidParameter", "parameter",
                                    strncmp(err, "resources.cpus", 14) == 0 ? "cpus" : "memory_max",
                                    "message", err, NULL);
                        else
                                r = backend_failed(req, name, err);
                        goto out;
                }
        }
        r = state_save(m->opt.state_dir, p->name, def);
        if (r < 0) {
                char ignored[256];
                snprintf(err, sizeof(err), "cannot store the definition: %s", strerror(-r));
                p->cfg = old;
                if (pool_has_service(p))
                        m->backend->update(m, p, ignored, sizeof(ignored));
                r = backend_failed(req, name, err);
                goto out;
        }
        p->cfg = old;
        pool_swap(p, def, cfg);
        def = NULL;
        cfg = NULL;
        mlog(LOG_INFO, p->name, "resources changed by uid %u: cpus %s, memory_max %llu",
             (unsigned)varlink_request_peer(req)->uid, p->cfg->cpus ? p->cfg->cpus : "(all)",
             (unsigned long long)p->cfg->memory_max);
        r = reply_pool(req, m, p);
out:
        json_object_put(def);
        pool_config_free(cfg);
        return r;
}

static int method_destroy(VarlinkRequest *req, struct json_object *params, void *userdata)
{
        Manager *m = userdata;
        const char *name = param_string(params, "name");
        Pool *p = manager_find_pool(m, name);
        char err[512] = "";
        int r = 0;

        if (!p)
                return no_such_pool(req, name);
        if (authorize(m, req, POLICY_ACTION_DESTROY, p->cfg, &r))
                return r;
        r = m->backend->stop(m, p, err, sizeof(err));
        if (r < 0)
                return backend_failed(req, name, err);
        r = state_remove(m->opt.state_dir, p->name);
        if (r < 0)
                mlog(LOG_ERR, p->name, "cannot remove its definition: %s", strerror(-r));
        mlog(LOG_INFO, p->name, "destroyed by uid %u", (unsigned)varlink_request_peer(req)->uid);
        pool_unlink(m, p);
        manager_unwatch_pid(m, p);
        pool_free(p);
        return varlink_request_reply(req, NULL, false);
}

/* Maps an io.danaus.Fsd error to ours; returns the answer's result. */
static int answer_fsd_error(VarlinkRequest *req, const char *pool, const char *mountpoint,
                            VarlinkReply *reply)
{
        const char *msg = param_string(reply->parameters, "message");
        char buf[512];

        snprintf(buf, sizeof(buf), "%s", msg ? msg : reply->error);
        if (strcmp(reply->error, "io.danaus.Fsd.MountBusy") == 0)
                return answer_error(req, IFACE ".MountBusy", "name", pool, "mountpoint", mountpoint,
                                    "message", buf, NULL);
        if (strcmp(reply->error, "io.danaus.Fsd.MountExists") == 0)
                return answer_error(req, IFACE ".MountExists", "name", pool, "mountpoint",
                                    mountpoint, "message", buf, NULL);
        if (strcmp(reply->error, "io.danaus.Fsd.InvalidMount") == 0)
                return answer_error(req, IFACE ".InvalidParameter", "parameter", "mount", "message",
                                    buf, NULL);
        if (strcmp(reply->error, "io.danaus.Fsd.NoSuchMount") == 0)
                return answer_error(req, IFACE ".NoSuchMount", "name", pool, "mountpoint",
                                    mountpoint, NULL);
        snprintf(buf, sizeof(buf), "danaus-fsd: %s: %s", reply->error, msg ? msg : "");
        return backend_failed(req, pool, buf);
}

/* Asks the pool's running service to change its mounts. Returns 0 when it
 * did (or when ok_error is what it answered); otherwise the call has been
 * answered, and 1 is returned with the answer's result in *rp. */
static int service_change(Manager *m, VarlinkRequest *req, Pool *p, const char *method,
                          struct json_object *args, const char *mp, const char *ok_error, int *rp)
{
        char ctl[PATH_MAX], err[PATH_MAX + 256];
        VarlinkReply reply;
        int r;

        if (!pool_has_service(p) || manager_control_path(m, p->name, ctl, sizeof(ctl)) < 0)
                return 0;
        r = fsd_call(ctl, method, args, FSD_CALL_TIMEOUT, &reply);
        if (r < 0) {
                snprintf(err, sizeof(err), "danaus-fsd on %s: %s", ctl, strerror(-r));
                *rp = backend_failed(req, p->name, err);
                return 1;
        }
        if (reply.error && (!ok_error || strcmp(reply.error, ok_error) != 0)) {
                *rp = answer_fsd_error(req, p->name, mp, &reply);
                varlink_reply_clear(&reply);
                return 1;
        }
        varlink_reply_clear(&reply);
        return 0;
}

/* Stores the changed definition and answers with the pool. */
static int commit_mounts(Manager *m, VarlinkRequest *req, Pool *p, struct json_object *def,
                         PoolConfig *cfg, const char *mp, const char *what)
{
        int r = state_save(m->opt.state_dir, p->name, def);

        if (r < 0)
                mlog(LOG_ERR, p->name, "mount %s %s but not stored: %s", mp, what, strerror(-r));
        mlog(LOG_INFO, p->name, "mount %s %s by uid %u", mp, what,
             (unsigned)varlink_request_peer(req)->uid);
        pool_swap(p, def, cfg);
        return reply_pool(req, m, p);
}

static int method_add_mount(VarlinkRequest *req, struct json_object *params, void *userdata)
{
        Manager *m = userdata;
        const char *name = param_string(params, "name"), *other = NULL;
        Pool *p = manager_find_pool(m, name);
        struct json_object *def = NULL, *mount, *copy = NULL, *mounts, *args = NULL;
        PoolConfig *cfg = NULL;
        char err[PATH_MAX + 256] = "";
        const char *mp;
        ssize_t i;
        int r = 0;

        if (!p)
                return no_such_pool(req, name);
        json_object_object_get_ex(params, "mount", &mount);
        if (json_object_deep_copy(p->def, &def, NULL) < 0 ||
            json_object_deep_copy(mount, &copy, NULL) < 0) {
                r = -ENOMEM;
                goto out;
        }
        if (!json_object_object_get_ex(def, "mounts", &mounts) ||
            !json_object_is_type(mounts, json_type_array)) {
                r = -EINVAL;
                goto out;
        }
        json_object_array_add(mounts, copy);
        copy = NULL;
        if (parse_def(def, &cfg, err, sizeof(err)) < 0) {
                /* "mounts[N].x: ..." names the new entry: report it as "mount.x". */
                char pfx[32];
                size_t n = (size_t)snprintf(pfx, sizeof(pfx), "mounts[%zu]", p->cfg->n_mounts);
                if (strncmp(err, pfx, n) == 0) {
                        char param[256];
                        const char *rest = err + n;
                        size_t k = strcspn(rest, ":");
                        snprintf(param, sizeof(param), "mount%.*s", (int)k, rest);
                        r = answer_error(req, IFACE ".InvalidParameter", "parameter", param,
                                         "message", err, NULL);
                } else {
                        r = answer_error(req, IFACE ".InvalidParameter", "parameter", "mount",
                                         "message", err, NULL);
                }
                goto out;
        }
        if (authorize(m, req, POLICY_ACTION_MOUNT, cfg, &r))
                goto out;
        i = overlap_other_pools(m, cfg, &other);
        if (i >= 0) {
                r = refuse_overlap(req, "mount", cfg, i, other);
                goto out;
        }
        mp = cfg->mounts[cfg->n_mounts - 1].mountpoint;
        args = json_object_new_object();
        if (!args) {
                r = -ENOMEM;
                goto out;
        }
        json_object_object_add(args, "mount", json_object_get(mount));
        if (service_change(m, req, p, "io.danaus.Fsd.AddMount", args, mp, NULL, &r))
                goto out;
        r = commit_mounts(m, req, p, def, cfg, mp, "added");
        def = NULL;
        cfg = NULL;
out:
        json_object_put(args);
        json_object_put(copy);
        json_object_put(def);
        pool_config_free(cfg);
        return r;
}

static int method_remove_mount(VarlinkRequest *req, struct json_object *params, void *userdata)
{
        Manager *m = userdata;
        const char *name = param_string(params, "name"), *mp = param_string(params, "mountpoint");
        Pool *p = manager_find_pool(m, name);
        struct json_object *def = NULL, *mounts, *force = NULL, *args = NULL;
        PoolConfig *cfg = NULL;
        char err[PATH_MAX + 256] = "";
        ssize_t idx = -1;
        int r = 0;

        if (!p)
                return no_such_pool(req, name);
        for (size_t i = 0; i < p->cfg->n_mounts; i++)
                if (strcmp(p->cfg->mounts[i].mountpoint, mp) == 0)
                        idx = (ssize_t)i;
        if (idx < 0)
                return answer_error(req, IFACE ".NoSuchMount", "name", name, "mountpoint", mp,
                                    NULL);
        if (p->cfg->n_mounts == 1)
                return answer_error(
                    req, IFACE ".InvalidParameter", "parameter", "mountpoint", "message",
                    "the last mount of a pool cannot be removed: destroy the pool", NULL);
        if (json_object_deep_copy(p->def, &def, NULL) < 0)
                return -ENOMEM;
        if (!json_object_object_get_ex(def, "mounts", &mounts) ||
            json_object_array_del_idx(mounts, (size_t)idx, 1) < 0 ||
            parse_def(def, &cfg, err, sizeof(err)) < 0) {
                r = answer_error(req, IFACE ".InvalidParameter", "parameter", "mountpoint",
                                 "message", err[0] ? err : "cannot remove it", NULL);
                goto out;
        }
        if (authorize(m, req, POLICY_ACTION_MOUNT, cfg, &r))
                goto out;
        args = json_object_new_object();
        if (!args) {
                r = -ENOMEM;
                goto out;
        }
        json_object_object_add(args, "mountpoint", json_object_new_string(mp));
        if (json_object_object_get_ex(params, "force", &force) &&
            json_object_is_type(force, json_type_boolean))
                json_object_object_add(args, "force", json_object_get(force));
        /* Gone already (unmounted from outside): the definition follows. */
        if (service_change(m, req, p, "io.danaus.Fsd.RemoveMount", args, mp,
                           "io.danaus.Fsd.NoSuchMount", &r))
                goto out;
        r = commit_mounts(m, req, p, def, cfg, mp, "removed");
        def = NULL;
        cfg = NULL;
out:
        json_object_put(args);
        json_object_put(def);
        pool_config_free(cfg);
        return r;
}

static const VarlinkField in_create[] = {{"definition", VARLINK_TYPE_OBJECT, true}, {0}};
static const VarlinkField in_name[] = {{"name", VARLINK_TYPE_STRING, true}, {0}};
static const VarlinkField in_update[] = {
    {"name", VARLINK_TYPE_STRING, true},
    {"cpus", VARLINK_TYPE_STRING, false},
    {"memory_max", VARLINK_TYPE_STRING, false},
    {0},
};
static const VarlinkField in_add_mount[] = {
    {"name", VARLINK_TYPE_STRING, true},
    {"mount", VARLINK_TYPE_OBJECT, true},
    {0},
};
static const VarlinkField in_remove_mount[] = {
    {"name", VARLINK_TYPE_STRING, true},
    {"mountpoint", VARLINK_TYPE_STRING, true},
    {"force", VARLINK_TYPE_BOOL, false},
    {0},
};

static const VarlinkMethod manager_methods[] = {
    {"CreatePool", method_create, in_create},
    {"ListPools", method_list, NULL},
    {"GetPool", method_get, in_name},
    {"UpdatePool", method_update, in_update},
    {"DestroyPool", method_destroy, in_name},
    {"AddMount", method_add_mount, in_add_mount},
    {"RemoveMount", method_remove_mount, in_remove_mount},
    {NULL},
};

int manager_add_interface(Manager *m, VarlinkServer *server)
{
        return varlink_server_add_interface(server, IFACE, manager_varlink_description,
                                            manager_methods, m);
}
