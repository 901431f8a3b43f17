/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Libservice helpers: name checks, a path walk for set-up and tests, and the
 * embedded headers' set-up.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "libservice/libservice.h"

bool ls_name_valid(const char *name)
{
        size_t len;

        if (!name)
                return false;
        len = strnlen(name, NAME_MAX + 1);
        if (len == 0 || len > NAME_MAX || memchr(name, '/', len))
                return false;
        return !(name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')));
}

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

int ls_walk(LsNode *from, const char *path, LsNode **nodep)
{
        LsNode *cur = ls_node_ref(from);
        const char *p = path;

        while (*p) {
                char name[NAME_MAX + 1];
                const char *slash = strchr(p, '/');
                size_t len = slash ? (size_t)(slash - p) : strlen(p);
                LsNode *next;
                int r;

                if (len == 0 || (len == 1 && p[0] == '.')) {
                        p += len + (slash ? 1 : 0);
                        continue;
                }
                if (len > NAME_MAX || (len == 2 && p[0] == '.' && p[1] == '.')) {
                        ls_node_unref(cur);
                        return len > NAME_MAX ? -ENAMETOOLONG : -EINVAL;
                }
                memcpy(name, p, len);
                name[len] = '\0';
                r = ls_ops(cur)->lookup(cur, name, &next, NULL);
                ls_node_unref(cur);
                if (r < 0)
                        return r;
                cur = next;
                p += len + (slash ? 1 : 0);
        }
        *nodep = cur;
        return 0;
}

void ls_instance_init(LsInstance *inst, const LsOps *ops)
{
        inst->ops = ops;
        atomic_init(&inst->n_refs, 1);
}

void ls_node_init(LsNode *node, LsInstance *inst)
{
        node->inst = ls_instance_ref(inst);
        atomic_init(&node->n_refs, 1);
}

void ls_file_init(LsFile *file, LsNode *node, int flags)
{
        file->node = ls_node_ref(node);
        file->flags = flags;
}

void ls_file_deinit(LsFile *file)
{
        file->node = ls_node_unref(file->node);
}
