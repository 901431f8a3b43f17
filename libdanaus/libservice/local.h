/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * local libservice: a host directory as the root. Every path is resolved with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) beneath the root's fd, so
 * no "..", absolute symlink, symlink chain or /proc magic link reaches out.
 */
#include "libservice/libservice.h"

/* Opens root (must be a directory). read_only makes every modification fail
 * with -EROFS. Returns 0 or a negative errno. */
int local_new(const char *root, bool read_only, LsInstance **instp);
