/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * The manager: its pools, the backend that runs their services, and the
 * io.danaus.Manager methods (methods.c). Single-threaded: one loop (main.c)
 * serves the varlink socket, the services' exits and the restart timers.
 */
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "util/config.h"
#include "util/policy.h"
#include "varlink/varlink.h"

typedef struct Manager Manager;

typedef enum PoolState {
        POOL_STARTING,
        POOL_RUNNING,
        POOL_RESTARTING, /* waiting out the back-off */
        POOL_FAILED,
        POOL_STOPPED,
} PoolState;

typedef struct Pool {
        char *name;
        struct json_object *def; /* the stored definition */
        PoolConfig *cfg;         /* parsed from def */
        PoolState state;
        /* direct backend: the service process */
        pid_t pid;
        int pidfd;  /* -1 when none */
        bool child; /* ours to wait for (not re-adopted) */
        unsigned restarts, backoff;
        uint64_t started_ms, restart_at_ms;
        struct Pool *next;
} Pool;

typedef struct BackendOps {
        const char *name;
        /* Readies the backend (cgroups found, bus connected). */
        int (*init)(Manager *m, char *err, size_t n_err);
        /* Creates the pool's slice/cgroups with its limits and starts its
         * service; returns once the service answers on its control socket. */
        int (*start)(Manager *m, Pool *p, char *err, size_t n_err);
        /* Stops the service and removes what start created. */
        int (*stop)(Manager *m, Pool *p, char *err, size_t n_err);
        /* Applies p->cfg's resources to the running pool. */
        int (*update)(Manager *m, Pool *p, char *err, size_t n_err);
        /* At restore: finds the pool's service still running and takes it
         * over (1), or returns 0 when none runs. */
        int (*adopt)(Manager *m, Pool *p);
        /* Adds backend facts to a PoolInfo (pid, state, kernel's limits). */
        void (*describe)(Manager *m, Pool *p, struct json_object *info);
        /* direct: the pool's pidfd became readable. */
        void (*exited)(Manager *m, Pool *p);
        /* direct: restarts due now; returns ms until the next one (-1: none). */
        int (*tick)(Manager *m);
        void (*free)(Manager *m);
} BackendOps;

typedef struct ManagerOptions {
        const char *state_dir;   /* pool definitions, <dir>/<pool>.json */
        const char *runtime_dir; /* <dir>/pools/<pool>/fsd.sock */
        const char *fsd_path;    /* danaus-fsd (direct backend) */
        const char *cgroup_name; /* direct: "<own cgroup>/<name>/<pool>" */
        const char *backend;     /* "auto", "direct" or "systemd" */
        int start_timeout_ms;    /* how long a service may take to answer */
} ManagerOptions;

struct Manager {
        ManagerOptions opt;
        Policy *policy;
        Pool *pools;
        const BackendOps *backend;
        void *backend_data;
        int epfd; /* the loop: the varlink server and the pools' pidfds */
};

extern const BackendOps backend_direct;
extern const BackendOps backend_systemd;

int manager_new(Manager **mp, const ManagerOptions *opt, Policy *policy, char *err, size_t n_err);
Manager *manager_free(Manager *m);
/* Loads the stored definitions; adopts or starts their services. */
int manager_restore(Manager *m);
/* Registers the io.danaus.Manager interface (methods.c). */
int manager_add_interface(Manager *m, VarlinkServer *server);

Pool *manager_find_pool(Manager *m, const char *name);
/* A new pool from its definition (def is taken over). */
int pool_new(Pool **pp, struct json_object *def, PoolConfig *cfg);
Pool *pool_free(Pool *p);
const char *pool_state_to_string(PoolState s);
/* The service's control socket: <runtime>/pools/<pool>/fsd.sock. */
int manager_control_path(Manager *m, const char *pool, char *buf, size_t size);
int manager_definition_path(Manager *m, const char *pool, char *buf, size_t size);
/* The pidfd of a direct-backend service joins/leaves the loop. */
int manager_watch_pid(Manager *m, Pool *p);
void manager_unwatch_pid(Manager *m, Pool *p);

/* fsd.c: calls on a service's control socket (io.danaus.Fsd). */
int fsd_call(const char *socket, const char *method, struct json_object *params, int timeout_ms,
             VarlinkReply *reply);
/* 0 when the service on socket answers GetStatus for pool. */
int fsd_ping(const char *socket, const char *pool, int timeout_ms);

uint64_t now_ms(void);
