/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CPU list parsing, bounded by CPU_SETSIZE.
 */
#include <errno.h>
#include <stdbool.h>

#include "util/cpulist.h"

static int parse_cpu(const char **sp, unsigned *cpup)
{
        const char *s = *sp;
        unsigned v = 0;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        while (*s >= '0' && *s <= '9') {
                v = v * 10 + (unsigned)(*s - '0');
                if (v >= CPU_SETSIZE)
                        return -ERANGE;
                s++;
        }
        *sp = s;
        *cpup = v;
        return 0;
}

int cpulist_parse(const char *s, cpu_set_t *set)
{
        CPU_ZERO(set);
        if (!*s)
                return -EINVAL;
        for (;;) {
                unsigned lo, hi;
                int r;

                r = parse_cpu(&s, &lo);
                if (r < 0)
                        return r;
                hi = lo;
                if (*s == '-') {
                        s++;
                        r = parse_cpu(&s, &hi);
                        if (r < 0)
                                return r;
                        if (hi < lo)
                                return -EINVAL;
                }
                for (unsigned c = lo; c <= hi; c++)
                        CPU_SET(c, set);
                if (!*s)
                        return 0;
                if (*s != ',')
                        return -EINVAL;
                s++;
        }
}
