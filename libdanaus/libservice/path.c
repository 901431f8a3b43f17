/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Libservice paths: the normalised, root-relative form every libservice takes
 * (see libservice.h) and the two helpers that build and split it.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "libservice/libservice.h"

bool ls_path_valid(const char *path)
{
        const char *p = path;

        if (!path)
                return false;
        if (*p == '\0')
                return true;
        if (strlen(path) >= PATH_MAX)
                return false;
        for (;;) {
                const char *slash = strchr(p, '/');
                size_t len = slash ? (size_t)(slash - p) : strlen(p);

                if (len == 0 || len > NAME_MAX)
                        return false;
                if (p[0] == '.' && (len == 1 || (len == 2 && p[1] == '.')))
                        return false;
                if (!slash)
                        return true;
                p = slash + 1;
        }
}

int ls_path_join(char *buf, size_t size, const char *dir, const char *name)
{
        size_t ld = strlen(dir), ln = strlen(name);
        size_t need = ld + (ld ? 1 : 0) + ln + 1;

        if (need > size)
                return -ENAMETOOLONG;
        memcpy(buf, dir, ld);
        if (ld)
                buf[ld++] = '/';
        memcpy(buf + ld, name, ln + 1);
        return (int)(ld + ln);
}

const char *ls_path_split(const char *path, char *buf, size_t size)
{
        const char *slash = strrchr(path, '/');
        size_t ld;

        if (*path == '\0' || size == 0)
                return NULL;
        if (!slash) {
                buf[0] = '\0';
                return path;
        }
        ld = (size_t)(slash - path);
        if (ld >= size)
                return NULL;
        memcpy(buf, path, ld);
        buf[ld] = '\0';
        return slash + 1;
}
