/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/* CPU lists as the kernel and systemd write them: "2-3", "0,4-7". */
#include <sched.h>

/* Parses into set (cleared first). -EINVAL: not a list (empty, bad syntax,
 * a descending range); -ERANGE: a CPU at or over CPU_SETSIZE. */
int cpulist_parse(const char *s, cpu_set_t *set);
