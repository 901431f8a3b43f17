/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Mount points: getting one ready (and clearing what a crashed run left
 * there) and taking a mount down.
 */
#include <stdbool.h>
#include <stddef.h>

/* Makes mountpoint usable for a new mount: creates it (and its parents) when
 * missing and detaches a dead FUSE mount left by a crashed service (stat
 * fails with ENOTCONN). Refuses with -EBUSY when a live fuse.danaus mount is
 * there. On failure err holds one line. */
int mount_prepare(const char *mountpoint, char *err, size_t n_err);

/* The type ("fuse.danaus") of the topmost mount at mountpoint, copied into
 * type; false when nothing is mounted there. */
bool mount_top_type(const char *mountpoint, char *type, size_t n_type);

/* Unmounts: cleanly when unused; when busy, aborts the FUSE connection
 * (MNT_FORCE) so the service threads end, and detaches. 0 when nothing is
 * left mounted there by us, else a negative errno. */
int mount_unmount(const char *mountpoint);
