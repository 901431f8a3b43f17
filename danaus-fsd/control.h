/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * The control socket of one pool's service: varlink, interface io.danaus.Fsd
 * (io.danaus.Fsd.varlink): AddMount, RemoveMount, GetStatus. Served by its
 * own thread on the filesystem table (fstable.h), which is locked, so mounts
 * come and go while main waits for signals. AddMount and RemoveMount are for
 * root and the service's own uid; GetStatus for anyone who can connect.
 */
#include <stdbool.h>
#include <stddef.h>

#include "fstable.h"

#define CONTROL_DEFAULT_DIR "/run/danaus/pools"

typedef struct Control Control;

/* Creates the socket at path (its parent directories too, 0755) and starts
 * serving. A socket at path that still answers belongs to a running
 * service: -EADDRINUSE (a stale one is replaced). On failure err holds one
 * line. */
int control_new(Control **controlp, const char *path, const char *pool, FsTable *table, char *err,
                size_t n_err);
/* Stops the thread, closes every connection and removes the socket. */
Control *control_free(Control *c);
