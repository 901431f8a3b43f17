/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Manager: the pool table, the choice of backend, and restoring the
 * stored pools at start.
 *
 * A pool is its stored definition (a json_object, kept as the operator wrote
 * it, so what is saved back is their JSON plus the changes made through the
 * interface) and the PoolConfig parsed from it; every change builds a new
 * definition, parses it as if it came from outside, and only then replaces
 * the old one.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "danaus-config.h"
#include "manager.h"
#include "mlog.h"
#include "state.h"
#include "util/json-parse.h"

uint64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *pool_state_to_string(PoolState s)
{
        switch (s) {
        case POOL_STARTING:
                return "starting";
        case POOL_RUNNING:
                return "running";
        case POOL_RESTARTING:
                return "restarting";
        case POOL_FAILED:
                return "failed";
        case POOL_STOPPED:
                return "stopped";
        }
        return "unknown";
}

int pool_new(Pool **pp, struct json_object *def, PoolConfig *cfg)
{
        Pool *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        p->name = strdup(cfg->pool);
        if (!p->name) {
                free(p);
                return -ENOMEM;
        }
        p->def = def;
        p->cfg = cfg;
        p->pidfd = -1;
        p->state = POOL_STARTING;
        *pp = p;
        return 0;
}

Pool *pool_free(Pool *p)
{
        if (!p)
                return NULL;
        if (p->pidfd >= 0)
                close(p->pidfd);
        json_object_put(p->def);
        pool_config_free(p->cfg);
        free(p->name);
        free(p);
        return NULL;
}

Pool *manager_find_pool(Manager *m, const char *name)
{
        for (Pool *p = m->pools; p; p = p->next)
                if (strcmp(p->name, name) == 0)
                        return p;
        return NULL;
}

int manager_control_path(Manager *m, const char *pool, char *buf, size_t size)
{
        if ((size_t)snprintf(buf, size, "%s/pools/%s/fsd.sock", m->opt.runtime_dir, pool) >= size)
                return -ENAMETOOLONG;
        return 0;
}

int manager_definition_path(Manager *m, const char *pool, char *buf, size_t size)
{
        if ((size_t)snprintf(buf, size, "%s/%s.json", m->opt.state_dir, pool) >= size)
                return -ENAMETOOLONG;
        return 0;
}

int manager_watch_pid(Manager *m, Pool *p)
{
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};

        if (p->pidfd < 0)
                return -EBADF;
        if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, p->pidfd, &ev) < 0)
                return -errno;
        return 0;
}

void manager_unwatch_pid(Manager *m, Pool *p)
{
        if (p->pidfd < 0)
                return;
        epoll_ctl(m->epfd, EPOLL_CTL_DEL, p->pidfd, NULL);
        close(p->pidfd);
        p->pidfd = -1;
}

static bool systemd_booted(void)
{
        return access("/run/systemd/system", F_OK) == 0;
}

int manager_new(Manager **mp, const ManagerOptions *opt, Policy *policy, char *err, size_t n_err)
{
        Manager *m;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->opt = *opt;
        m->policy = policy;
        m->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (m->epfd < 0) {
                r = -errno;
                free(m);
                return r;
        }
        if (strcmp(opt->backend, "systemd") == 0 ||
            (strcmp(opt->backend, "auto") == 0 && HAVE_SYSTEMD && systemd_booted()))
                m->backend = &backend_systemd;
        else if (strcmp(opt->backend, "direct") == 0 || strcmp(opt->backend, "auto") == 0)
                m->backend = &backend_direct;
        else {
                snprintf(err, n_err, "--backend: \"%s\" is not auto, direct or systemd",
                         opt->backend);
                manager_free(m);
                return -EINVAL;
        }
        r = state_dir_prepare(opt->state_dir);
        if (r < 0) {
                snprintf(err, n_err, "state directory %s: %s", opt->state_dir, strerror(-r));
                manager_free(m);
                return r;
        }
        r = m->backend->init(m, err, n_err);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        *mp = m;
        return 0;
}

Manager *manager_free(Manager *m)
{
        if (!m)
                return NULL;
        /* The services keep running: a restarted manager adopts them. */
        while (m->pools) {
                Pool *p = m->pools;
                m->pools = p->next;
                manager_unwatch_pid(m, p);
                pool_free(p);
        }
        if (m->backend && m->backend->free)
                m->backend->free(m);
        if (m->epfd >= 0)
                close(m->epfd);
        free(m);
        return NULL;
}

typedef struct RestoreCtx {
        Manager *m;
        unsigned n_loaded, n_failed;
} RestoreCtx;

static void restore_one(void *userdata, const char *file, const char *text, int r, const char *err)
{
        RestoreCtx *ctx = userdata;
        Manager *m = ctx->m;
        struct json_object *def = NULL;
        PoolConfig *cfg = NULL;
        char perr[512] = "", why[512] = "";
        const char *base;
        Pool *p = NULL;

        if (r < 0) {
                mlog(LOG_ERR, NULL, "%s: %s; not restored", file, err);
                ctx->n_failed++;
                return;
        }
        r = jparse_text(text, &def, perr, sizeof(perr));
        if (r == 0)
                r = pool_config_parse(text, &cfg, perr, sizeof(perr));
        if (r < 0) {
                mlog(LOG_ERR, NULL, "%s: %s; not restored", file, perr);
                json_object_put(def);
                ctx->n_failed++;
                return;
        }
        /* The file name is the pool's name: a renamed file is not trusted. */
        base = strrchr(file, '/');
        base = base ? base + 1 : file;
        if (strncmp(base, cfg->pool, strlen(cfg->pool)) != 0 ||
            strcmp(base + strlen(cfg->pool), ".json") != 0 || manager_find_pool(m, cfg->pool)) {
                mlog(LOG_ERR, NULL,
                     "%s: holds pool \"%s\", not the one its name says; not restored", file,
                     cfg->pool);
                json_object_put(def);
                pool_config_free(cfg);
                ctx->n_failed++;
                return;
        }
        r = pool_new(&p, def, cfg);
        if (r < 0) {
                json_object_put(def);
                pool_config_free(cfg);
                ctx->n_failed++;
                return;
        }
        p->next = m->pools;
        m->pools = p;
        ctx->n_loaded++;
        r = m->backend->adopt(m, p);
        if (r > 0) {
                mlog(LOG_INFO, p->name, "adopted its running service (pid %d)", (int)p->pid);
                return;
        }
        r = m->backend->start(m, p, why, sizeof(why));
        if (r < 0) {
                mlog(LOG_ERR, p->name, "cannot start: %s", why);
                p->state = POOL_FAILED;
        } else {
                mlog(LOG_INFO, p->name, "started (pid %d)", (int)p->pid);
        }
}

int manager_restore(Manager *m)
{
        RestoreCtx ctx = {.m = m};
        int r;

        r = state_load_all(m->opt.state_dir, restore_one, &ctx);
        if (r < 0) {
                mlog(LOG_ERR, NULL, "cannot read %s: %s", m->opt.state_dir, strerror(-r));
                return r;
        }
        mlog(LOG_INFO, NULL, "restored %u pool%s from %s%s", ctx.n_loaded,
             ctx.n_loaded == 1 ? "" : "s", m->opt.state_dir,
             ctx.n_failed ? " (some definitions were refused, see above)" : "");
        return 0;
}

int fsd_call(const char *socket, const char *method, struct json_object *params, int timeout_ms,
             VarlinkReply *reply)
{
        VarlinkClient *c = NULL;
        int r;

        *reply = (VarlinkReply){0};
        r = varlink_client_connect(&c, socket);
        if (r < 0)
                return r;
        r = varlink_client_call(c, method, params, 0, timeout_ms, reply);
        varlink_client_free(c);
        return r > 0 ? -EPROTO : r;
}

int fsd_ping(const char *socket, const char *pool, int timeout_ms)
{
        VarlinkReply reply;
        struct json_object *v;
        int r;

        r = fsd_call(socket, "io.danaus.Fsd.GetStatus", NULL, timeout_ms, &reply);
        if (r < 0)
                return r;
        if (reply.error)
                r = -EPROTO;
        else if (!json_object_object_get_ex(reply.parameters, "pool", &v) ||
                 !json_object_is_type(v, json_type_string) ||
                 strcmp(json_object_get_string(v), pool) != 0)
                r = -ESRCH;
        varlink_reply_clear(&reply);
        return r;
}
