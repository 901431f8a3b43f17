/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Stack: builds what a pool serves from its definition. One backend client
 * per pool (stack_backend_new()), shared by every mount; each mount is a
 * view of it (stack_new()): one branch is a plain mount of that branch's
 * directory handle, several are a union over the branches' handles.
 */
#include "libservice/libservice.h"
#include "util/config.h"

/* The pool's backend instance. On failure returns a negative errno and one
 * line in err naming the key or the path. */
int stack_backend_new(const PoolConfig *cfg, LsInstance **backendp, char *err, size_t n_err);

/* The filesystem of one mount over backend: its instance and root handle
 * (new references; for a plain mount the instance is the backend itself).
 * On failure returns a negative errno and one line in err naming the
 * branch. */
int stack_new(LsInstance *backend, const PoolConfig *cfg, const PoolMount *mount,
              LsInstance **instp, LsNode **rootp, char *err, size_t n_err);
