/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Pool definitions on disk: <dir>/<pool>.json, the pool JSON of DESIGN.md,
 * which danaus-fsd --config reads as it is. Writes are atomic (a temporary
 * file, fsync, rename, fsync of the directory), so a crash leaves the old or
 * the new definition, never a mix.
 */
#include <json-c/json.h>
#include <stddef.h>

/* Creates dir (and its parents, 0755) when missing. */
int state_dir_prepare(const char *dir);
int state_save(const char *dir, const char *pool, struct json_object *def);
int state_remove(const char *dir, const char *pool);
/* Calls fn for each "<pool>.json" in dir (leftover temporary files are
 * removed). A file that does not parse is reported through fn with
 * r < 0 and err, and left in place. */
typedef void (*StateLoadFn)(void *userdata, const char *file, const char *text, int r,
                            const char *err);
int state_load_all(const char *dir, StateLoadFn fn, void *userdata);
/* mkdir -p with mode. */
int mkdir_parents(const char *path, mode_t mode);
