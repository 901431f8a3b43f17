/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * union libservice: stacks branches (each a libservice instance) top to bottom,
 * with OCI image-layer whiteouts (".wh.<name>", ".wh..wh..opq"), whole-file
 * copy-up into the top branch, merged readdir and inode numbers unique across
 * branches. Semantics: DESIGN.md "Union semantics" and docs/union.md.
 */
#include "libservice/libservice.h"

/* Takes ownership of branches[0..n) (also on failure). branches[0] is the top;
 * when top_writable is false the union is read-only (-EROFS). */
int union_new(LsInstance **branches, size_t n_branches, bool top_writable, LsInstance **instp);
/* Durable (the default): a copy-up's data is synced to disk before the copy
 * is published. Off: it is not (faster; after a crash the copy may be empty
 * or partial and hide the lower file, as with overlayfs' volatile option). */
void union_set_copy_up_sync(LsInstance *inst, bool sync);
