/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Mount Utilities: stale FUSE mounts, mountinfo, unmounting.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "mount-util.h"
#include "util/log.h"

/* Undoes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape(char *s)
{
        char *o = s;

        for (; *s; s++) {
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
                    s[3] >= '0' && s[3] <= '7') {
                        *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                        s += 3;
                } else {
                        *o++ = *s;
                }
        }
        *o = '\0';
}

bool mount_top_type(const char *mountpoint, char *type, size_t n_type)
{
        char *line = NULL;
        size_t n_line = 0;
        bool found = false;
        FILE *f;

        f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return false;
        /* Mounts are listed in the order they stack: the last match is on top.
         * Line: id parent maj:min root mountpoint options [optional...] - type ... */
        while (getline(&line, &n_line, f) > 0) {
                char *save = NULL, *field, *sep;
                int i;

                field = strtok_r(line, " ", &save);
                for (i = 0; field && i < 4; i++)
                        field = strtok_r(NULL, " ", &save);
                if (!field)
                        continue;
                unescape(field);
                if (strcmp(field, mountpoint) != 0)
                        continue;
                sep = strstr(save, "- ");
                while (sep && sep != save && sep[-1] != ' ')
                        sep = strstr(sep + 1, "- ");
                if (!sep)
                        continue;
                field = strtok_r(sep + 2, " ", &save);
                if (!field)
                        continue;
                snprintf(type, n_type, "%s", field);
                found = true;
        }
        free(line);
        fclose(f);
        return found;
}

static int mkdir_parents(const char *path)
{
        char buf[PATH_MAX];
        char *p;

        if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
                return -ENAMETOOLONG;
        for (p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int mount_prepare(const char *mountpoint, char *err, size_t n_err)
{
        char type[64];
        struct stat st;
        int r, tries;

        /* Repeated crashes can leave dead mounts stacked. */
        for (tries = 0; tries < 16; tries++) {
                /* statfs, not stat: the kernel answers stat of a dead FUSE
                 * mount from its attribute cache (for the attribute timeout,
                 * 60 s), statfs always asks the server. */
                struct statfs sfs;
                int sr = stat(mountpoint, &st);

                if (sr == 0 && statfs(mountpoint, &sfs) < 0 &&
                    (errno == ENOTCONN || errno == ECONNABORTED))
                        sr = -1; /* errno: the dead connection's */
                if (sr == 0) {
                        if (!S_ISDIR(st.st_mode)) {
                                snprintf(err, n_err, "%s: not a directory", mountpoint);
                                return -ENOTDIR;
                        }
                        if (mount_top_type(mountpoint, type, sizeof(type)) &&
                            strcmp(type, "fuse.danaus") == 0) {
                                snprintf(err, n_err,
                                         "%s: already served by a running danaus-fsd "
                                         "(a live fuse.danaus mount is there)",
                                         mountpoint);
                                return -EBUSY;
                        }
                        return 0;
                }
                r = -errno;
                if (r == -ENOENT) {
                        r = mkdir_parents(mountpoint);
                        if (r < 0) {
                                snprintf(err, n_err, "%s: cannot create the mount point: %s",
                                         mountpoint, strerror(-r));
                                return r;
                        }
                        continue;
                }
                if (r != -ENOTCONN && r != -ECONNABORTED) {
                        snprintf(err, n_err, "%s: %s", mountpoint, strerror(-r));
                        return r;
                }
                /* The FUSE connection has no server: a service of an earlier
                 * run died without unmounting. Nobody can use that mount. */
                log_warning("%s: detaching the dead FUSE mount of a crashed service", mountpoint);
                if (umount2(mountpoint, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
                        r = -errno;
                        snprintf(err, n_err, "%s: cannot detach the dead mount there: %s",
                                 mountpoint, strerror(-r));
                        return r;
                }
        }
        snprintf(err, n_err, "%s: still not usable after detaching %d dead mounts", mountpoint,
                 tries);
        return -EBUSY;
}

/* Writes back what the kernel holds dirty for the mount at mountpoint: under
 * writeback caching a write(2) that returned sits in the kernel's page cache
 * until written back, and aborting the connection would drop it. syncfs
 * sends it as WRITE requests, which the serving threads (still running)
 * answer, and waits for them. */
/* syncfs may return while WRITE requests it queued are still in flight (the
 * kernel ends page writeback before the reply): wait, for a few seconds at
 * most, until the connection has no request left that our threads have not
 * answered, so an abort cannot overtake them. */
#define FUSECTL_DIR   "/sys/fs/fuse/connections"
#define FUSECTL_MAGIC 0x65735543

/* The fuse control filesystem, where each connection's count of requests
 * in flight shows: systemd mounts it at boot; a host without systemd may
 * not have it, so mount it (we run as root to mount FUSE anyway). */
static bool fusectl_ready(void)
{
        struct statfs sfs;

        if (statfs(FUSECTL_DIR, &sfs) == 0 && (unsigned long)sfs.f_type == FUSECTL_MAGIC)
                return true;
        if (mount("fusectl", FUSECTL_DIR, "fusectl", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) <
            0) {
                log_warning("cannot mount fusectl on " FUSECTL_DIR
                            " (%m): a stop cannot wait for writes in flight");
                return false;
        }
        return true;
}

static void mount_drain(int fd, const char *mountpoint)
{
        char path[64], buf[32];
        struct stat st;
        int i;

        if (fstat(fd, &st) < 0 || !fusectl_ready())
                return;
        snprintf(path, sizeof(path), FUSECTL_DIR "/%u/waiting", minor(st.st_dev));
        for (i = 0; i < 500; i++) {
                FILE *f = fopen(path, "re");
                long n;

                if (!f)
                        return; /* fusectl not mounted: nothing to wait on */
                n = fgets(buf, sizeof(buf), f) ? strtol(buf, NULL, 10) : 0;
                fclose(f);
                /* Our own open() and syncfs() are answered; anything else
                 * counted is a request still in flight. */
                if (n <= 0)
                        return;
                usleep(10000);
        }
        log_warning("%s: requests still in flight after 5 s", mountpoint);
}

static void mount_flush(const char *mountpoint)
{
        char type[64];
        int fd;

        if (!mount_top_type(mountpoint, type, sizeof(type)) || strcmp(type, "fuse.danaus") != 0)
                return;
        fd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return;
        if (syncfs(fd) < 0)
                log_warning("%s: writing back cached writes failed: %m", mountpoint);
        mount_drain(fd, mountpoint);
        close(fd);
}

int mount_unmount(const char *mountpoint)
{
        mount_flush(mountpoint);
        if (umount2(mountpoint, UMOUNT_NOFOLLOW) == 0)
                return 0;
        if (errno == EINVAL || errno == ENOENT)
                return 0; /* not a mount point any more: unmounted from outside */
        if (errno != EBUSY)
                return -errno;
        /* Busy (open files, a cwd inside): MNT_FORCE aborts the FUSE
         * connection, failing what is in flight, so our threads see ENODEV
         * and end; the detach then takes it out of the namespace. */
        log_info("%s: busy, aborting the connection and detaching", mountpoint);
        /* Once more: what was written since the first flush. */
        mount_flush(mountpoint);
        if (umount2(mountpoint, MNT_FORCE | UMOUNT_NOFOLLOW) == 0)
                return 0;
        if (umount2(mountpoint, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
                return 0;
        return errno == EINVAL ? 0 : -errno;
}
