/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * union libservice: stacks branches top to bottom, with OCI image-layer
 * whiteouts (".wh.<name>", ".wh..wh..opq"), whole-file copy-up into the top
 * branch, merged readdir and inode numbers unique across branches. A branch
 * is a view of a backend instance: a directory handle (usually all branches
 * are handles of one backend instance, one client per pool; they may come
 * from different instances or filesystems). Semantics: DESIGN.md "Union
 * semantics" and docs/union.md.
 */
#include "libservice/libservice.h"

typedef struct UnionBranch {
        LsNode *root; /* a directory handle; the union takes its own reference */
} UnionBranch;

/* branches[0] is the top; when top_writable is false the union is read-only
 * (-EROFS). The caller keeps its references to the branch roots. */
int union_new(const UnionBranch *branches, size_t n, bool top_writable, LsInstance **instp);
/* Durable (the default): a copy-up's data is synced to disk before the copy
 * is published. Off: it is not (faster; after a crash the copy may be empty
 * or partial and hide the lower file, as with overlayfs' volatile option). */
void union_set_copy_up_sync(LsInstance *inst, bool sync);
