/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * local libservice: a host directory as the backend root, one instance per
 * pool, branches as handles inside it. Every object is reached from the root
 * by one-name *at() steps that never follow a symlink, so no "..", symlink or
 * /proc magic link reaches out. See local.c for the design (handles, node
 * table, fd budget).
 */
#include "libservice/libservice.h"

/* Opens root (must be a directory). read_only makes every modification fail
 * with -EROFS. Returns 0 or a negative errno. */
int local_new(const char *root, bool read_only, LsInstance **instp);

/* At most budget O_PATH fds of evictable nodes are kept open (default: a
 * quarter of RLIMIT_NOFILE's soft limit at local_new()); least recently used
 * ones are closed and reopened by file handle when used again. Without
 * CAP_DAC_READ_SEARCH nothing is evicted. */
void local_set_fd_budget(LsInstance *inst, size_t budget);
