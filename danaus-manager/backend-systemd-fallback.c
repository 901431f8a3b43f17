/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Systemd Backend, for builds without libsystemd: asking for it is refused
 * with a clear line (and "auto" picks the direct backend).
 */
#include <errno.h>
#include <stdio.h>

#include "manager.h"

static int fallback_init(Manager *m, char *err, size_t n_err)
{
        snprintf(err, n_err, "--backend systemd: this danaus-manager was built without libsystemd");
        return -EOPNOTSUPP;
}

const BackendOps backend_systemd = {
    .name = "systemd",
    .init = fallback_init,
};
