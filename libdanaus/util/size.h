/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/* Sizes as operators write them: "4096", "512K", "4G", "1.5G" (binary units,
 * optional "i"/"iB"/"B" suffix). */
#include <stdint.h>

/* Returns 0, or -EINVAL (not a size) / -ERANGE (over 2^63). */
int size_parse(const char *s, uint64_t *sizep);
