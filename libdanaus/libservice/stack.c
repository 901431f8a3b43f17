/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Stack builder: pool definition -> filesystem instance for one mount.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libservice/local.h"
#include "libservice/stack.h"
#include "libservice/union.h"

static int stack_branch_new(const PoolConfig *cfg, const PoolBranch *b, LsInstance **instp)
{
        char path[PATH_MAX];
        int n;

        switch (cfg->backend_type) {
        case POOL_BACKEND_LOCAL:
                n = snprintf(path, sizeof(path), "%s%s%s", cfg->backend_root, *b->path ? "/" : "",
                             b->path);
                if (n < 0 || (size_t)n >= sizeof(path))
                        return -ENAMETOOLONG;
                return local_new(path, !b->writable, instp);
        case POOL_BACKEND_CEPHFS:
                return -EPROTONOSUPPORT;
        }
        return -EINVAL;
}

int stack_new(const PoolConfig *cfg, const PoolMount *mount, LsInstance **instp, char *err,
              size_t n_err)
{
        LsInstance **branches;
        size_t i;
        int r;

        branches = calloc(mount->n_branches, sizeof(*branches));
        if (!branches)
                return -ENOMEM;
        for (i = 0; i < mount->n_branches; i++) {
                r = stack_branch_new(cfg, &mount->branches[i], &branches[i]);
                if (r < 0) {
                        if (r == -EPROTONOSUPPORT)
                                snprintf(err, n_err,
                                         "backend.type: \"cephfs\" is not "
                                         "available in this build");
                        else
                                snprintf(err, n_err, "branch \"%s\" of %s: %s%s%s",
                                         mount->branches[i].path, mount->mountpoint, strerror(-r),
                                         cfg->backend_root ? " under " : "",
                                         cfg->backend_root ? cfg->backend_root : "");
                        while (i-- > 0)
                                ls_instance_free(branches[i]);
                        free(branches);
                        return r;
                }
        }
        if (mount->n_branches == 1) {
                *instp = branches[0];
                free(branches);
                return 0;
        }
        r = union_new(branches, mount->n_branches, mount->branches[0].writable, instp);
        if (r >= 0)
                union_set_copy_up_sync(*instp, !mount->copy_up_volatile);
        free(branches);
        if (r < 0)
                snprintf(err, n_err, "union for %s: %s", mount->mountpoint, strerror(-r));
        return r;
}
