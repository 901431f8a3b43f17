/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Stack: builds the filesystem instance of one mount from the pool
 * definition: one backend instance per branch, and a union over them when
 * there is more than one branch (one branch is a plain mount).
 */
#include "libservice/libservice.h"
#include "util/config.h"

/* On failure returns a negative errno and a one-line reason in err naming the
 * branch. */
int stack_new(const PoolConfig *cfg, const PoolMount *mount, LsInstance **instp, char *err,
              size_t n_err);
