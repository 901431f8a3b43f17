/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Stack builder: pool definition -> the pool's backend instance, and each
 * mount's filesystem as a view of it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libservice/local.h"
#include "libservice/stack.h"
#include "libservice/union.h"

int stack_backend_new(const PoolConfig *cfg, LsInstance **backendp, char *err, size_t n_err)
{
        int r;

        switch (cfg->backend_type) {
        case POOL_BACKEND_LOCAL:
                r = local_new(cfg->backend_root, false, backendp);
                if (r < 0)
                        snprintf(err, n_err, "backend.root: %s: %s", cfg->backend_root,
                                 strerror(-r));
                return r;
        case POOL_BACKEND_CEPHFS:
                snprintf(err, n_err, "backend.type: \"cephfs\" is not available in this build");
                return -EPROTONOSUPPORT;
        }
        snprintf(err, n_err, "backend.type: unknown");
        return -EINVAL;
}

/* The directory handle of one branch: its path walked from the backend's
 * root one name at a time (never following a symlink). */
static int branch_root(LsInstance *backend, const PoolBranch *b, LsNode **rootp)
{
        LsNode *top, *node;
        struct stat st;
        int r;

        r = backend->ops->root(backend, &top);
        if (r < 0)
                return r;
        r = ls_walk(top, b->path, &node);
        ls_node_unref(top);
        if (r < 0)
                return r;
        r = ls_ops(node)->getattr(node, &st);
        if (r >= 0 && !S_ISDIR(st.st_mode))
                r = -ENOTDIR;
        if (r < 0) {
                ls_node_unref(node);
                return r;
        }
        *rootp = node;
        return 0;
}

int stack_new(LsInstance *backend, const PoolConfig *cfg, const PoolMount *mount,
              LsInstance **instp, LsNode **rootp, char *err, size_t n_err)
{
        UnionBranch *branches;
        LsInstance *inst;
        size_t i, n = 0;
        int r = 0;

        branches = calloc(mount->n_branches, sizeof(*branches));
        if (!branches)
                return -ENOMEM;
        for (n = 0; n < mount->n_branches; n++) {
                r = branch_root(backend, &mount->branches[n], &branches[n].root);
                if (r < 0) {
                        snprintf(err, n_err, "branch \"%s\" of %s: %s%s%s",
                                 mount->branches[n].path, mount->mountpoint, strerror(-r),
                                 cfg->backend_root ? " under " : "",
                                 cfg->backend_root ? cfg->backend_root : "");
                        goto out;
                }
        }
        if (n == 1) {
                *instp = ls_instance_ref(backend);
                *rootp = ls_node_ref(branches[0].root);
                goto out;
        }
        r = union_new(branches, n, mount->branches[0].writable, &inst);
        if (r < 0) {
                snprintf(err, n_err, "union for %s: %s", mount->mountpoint, strerror(-r));
                goto out;
        }
        union_set_copy_up_sync(inst, !mount->copy_up_volatile);
        r = inst->ops->root(inst, rootp);
        if (r < 0) {
                snprintf(err, n_err, "union for %s: %s", mount->mountpoint, strerror(-r));
                ls_instance_unref(inst);
                goto out;
        }
        *instp = inst;
out:
        for (i = 0; i < n; i++)
                ls_node_unref(branches[i].root);
        free(branches);
        return r;
}
