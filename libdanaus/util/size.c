/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Size strings with binary suffixes, parsed strictly: no sign, no spaces, no
 * trailing garbage, no overflow.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "util/size.h"

static unsigned size_shift(char c)
{
        switch (c) {
        case 'K':
        case 'k':
                return 10;
        case 'M':
        case 'm':
                return 20;
        case 'G':
        case 'g':
                return 30;
        case 'T':
        case 't':
                return 40;
        default:
                return 0;
        }
}

int size_parse(const char *s, uint64_t *sizep)
{
        unsigned __int128 whole = 0, frac = 0, frac_div = 1, v;
        const char *p = s;
        unsigned shift;

        if (!s || !isdigit((unsigned char)*p))
                return -EINVAL;
        for (; isdigit((unsigned char)*p); p++) {
                whole = whole * 10 + (unsigned)(*p - '0');
                if (whole > ((unsigned __int128)1 << 64))
                        return -ERANGE;
        }
        if (*p == '.') {
                p++;
                if (!isdigit((unsigned char)*p))
                        return -EINVAL;
                for (; isdigit((unsigned char)*p); p++) {
                        if (frac_div < 1000000000000ULL) {
                                frac = frac * 10 + (unsigned)(*p - '0');
                                frac_div *= 10;
                        }
                }
        }
        shift = size_shift(*p);
        if (shift)
                p++;
        if (shift && *p == 'i')
                p++;
        if (*p == 'B')
                p++;
        if (*p != '\0')
                return -EINVAL;
        if (frac && !shift)
                return -EINVAL; /* "1.5" bytes */
        v = (whole << shift) + ((frac << shift) / frac_div);
        if (v > (unsigned __int128)INT64_MAX)
                return -ERANGE;
        *sizep = (uint64_t)v;
        return 0;
}
