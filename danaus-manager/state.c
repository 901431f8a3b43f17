/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pool State: the stored definitions.
 *
 * The manager is the only writer. A save writes ".<pool>.json.tmp", fsyncs
 * it, renames it over "<pool>.json" and fsyncs the directory: after a crash
 * the file is the old or the new definition. Reading is bounded (1 MiB per
 * file, a pool name's worth of file name) and never trusts the content: the
 * caller parses it like any definition from outside.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"
#include "util/config.h"
#include "util/json-parse.h"

#define STATE_FILE_MAX (1 << 20)

int mkdir_parents(const char *path, mode_t mode)
{
        char buf[PATH_MAX];
        size_t n = strlen(path);

        if (n == 0 || n >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, path, n + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int state_dir_prepare(const char *dir)
{
        return mkdir_parents(dir, 0755);
}

static int fsync_dir(const char *dir)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

int state_save(const char *dir, const char *pool, struct json_object *def)
{
        char tmp[PATH_MAX], path[PATH_MAX];
        const char *text;
        size_t n, off = 0;
        int fd, r = 0;

        if (!pool_name_valid(pool))
                return -EINVAL;
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.json.tmp", dir, pool) >= sizeof(tmp) ||
            (size_t)snprintf(path, sizeof(path), "%s/%s.json", dir, pool) >= sizeof(path))
                return -ENAMETOOLONG;
        text =
            json_object_to_json_string_ext(def, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        n = strlen(text);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        while (off < n) {
                ssize_t w = write(fd, text + off, n - off);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                off += (size_t)w;
        }
        if (r == 0 && write(fd, "\n", 1) != 1)
                r = -EIO;
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        return fsync_dir(dir);
}

int state_remove(const char *dir, const char *pool)
{
        char path[PATH_MAX];

        if ((size_t)snprintf(path, sizeof(path), "%s/%s.json", dir, pool) >= sizeof(path))
                return -ENAMETOOLONG;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return fsync_dir(dir);
}

int state_load_all(const char *dir, StateLoadFn fn, void *userdata)
{
        struct dirent *de;
        DIR *d;

        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                char path[PATH_MAX], err[512] = "";
                char *text = NULL;
                size_t n = strlen(de->d_name);
                int r;

                if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
                        continue;
                if (de->d_name[0] == '.') {
                        /* A save interrupted by a crash. */
                        if (n > 9 && strcmp(de->d_name + n - 9, ".json.tmp") == 0)
                                unlink(path);
                        continue;
                }
                if (n <= 5 || strcmp(de->d_name + n - 5, ".json") != 0)
                        continue;
                r = jparse_read_file(path, STATE_FILE_MAX, &text, err, sizeof(err));
                fn(userdata, path, text, r, err);
                free(text);
        }
        closedir(d);
        return 0;
}
