/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pool Cgroups (direct backend).
 *
 * The manager only ever writes below its own cgroup, in a directory named
 * for it ("danaus" by default; tests use their own), so it never fights
 * another manager or the host's init over a cgroup. Where each hierarchy is
 * mounted comes from /proc/self/mountinfo and the manager's place in it from
 * /proc/self/cgroup (a container may mount a sub-tree as the root).
 *
 * v1 cpusets start empty: cpuset.cpus and cpuset.mems are written at every
 * level, or no task may join. v2 passes controllers down through
 * cgroup.subtree_control, which a cgroup holding processes may not do
 * (EBUSY) unless it is the root: the manager then moves into a leaf first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "cgroup.h"
#include "util/cpulist.h"

static int write_file(const char *dir, const char *file, const char *val)
{
        char path[PATH_MAX];
        size_t n = strlen(val);
        ssize_t w;
        int fd, r = 0;

        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* An empty value is written as a lone newline (v2 "cpuset.cpus" reset). */
        w = n ? write(fd, val, n) : write(fd, "\n", 1);
        if (w < 0)
                r = -errno;
        close(fd);
        return r;
}

static int read_file(const char *dir, const char *file, char *buf, size_t size)
{
        char path[PATH_MAX];
        ssize_t n;
        int fd;

        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return 0;
}

static bool opt_has(const char *opts, const char *word)
{
        size_t n = strlen(word);

        for (const char *p = opts; p && *p;) {
                const char *e = strchr(p, ',');
                size_t len = e ? (size_t)(e - p) : strlen(p);
                if (len == n && strncmp(p, word, n) == 0)
                        return true;
                p = e ? e + 1 : NULL;
        }
        return false;
}

/* The manager's path in the hierarchy holding controller (NULL: the v2 one). */
static int own_path(const char *controller, char *buf, size_t size)
{
        char line[1024];
        FILE *f = fopen("/proc/self/cgroup", "re");
        int r = -ENOENT;

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c2 = '\0';
                c2[1 + strcspn(c2 + 1, "\n")] = '\0';
                if (controller ? opt_has(c1 + 1, controller)
                               : (strcmp(line, "0") == 0 && c1[1] == '\0')) {
                        snprintf(buf, size, "%s", c2 + 1);
                        r = 0;
                        break;
                }
        }
        fclose(f);
        return r;
}

/* Where the hierarchy is mounted (mountpoint and the hierarchy path at it). */
static int find_mount(const char *controller, char *mnt, size_t n_mnt, char *root, size_t n_root)
{
        char line[4096];
        FILE *f = fopen("/proc/self/mountinfo", "re");
        int r = -ENOENT;

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char *fields[6], *sep, *fstype, *opts, *save = NULL;
                size_t n = 0;

                sep = strstr(line, " - ");
                if (!sep)
                        continue;
                *sep = '\0';
                fstype = strtok_r(sep + 3, " \n", &save);
                strtok_r(NULL, " \n", &save); /* source */
                opts = strtok_r(NULL, " \n", &save);
                if (!fstype || !opts)
                        continue;
                save = NULL;
                for (char *t = strtok_r(line, " ", &save); t && n < 6;
                     t = strtok_r(NULL, " ", &save))
                        fields[n++] = t;
                if (n < 5)
                        continue;
                if (controller ? (strcmp(fstype, "cgroup") == 0 && opt_has(opts, controller))
                               : strcmp(fstype, "cgroup2") == 0) {
                        snprintf(root, n_root, "%s", fields[3]);
                        snprintf(mnt, n_mnt, "%s", fields[4]);
                        r = 0;
                        break;
                }
        }
        fclose(f);
        return r;
}

/* "<mount>/<own path below the mount's root>" for the hierarchy. */
static int hierarchy_dir(const char *controller, char *buf, size_t size)
{
        char mnt[PATH_MAX], root[PATH_MAX], own[PATH_MAX];
        const char *rel;
        size_t n;
        int r;

        r = find_mount(controller, mnt, sizeof(mnt), root, sizeof(root));
        if (r < 0)
                return r;
        r = own_path(controller, own, sizeof(own));
        if (r < 0)
                return r;
        n = strlen(root);
        rel = own;
        if (strcmp(root, "/") != 0 && strncmp(own, root, n) == 0 && (own[n] == '/' || !own[n]))
                rel = own + n;
        while (*rel == '/')
                rel++;
        if ((size_t)snprintf(buf, size, "%s%s%s", mnt, *rel ? "/" : "", rel) >= size)
                return -ENAMETOOLONG;
        return 0;
}

static int mkdir_ok(const char *path)
{
        return mkdir(path, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

/* v1 cpuset: a new cgroup holds no cpus and mems until written. */
static int cpuset_inherit(const char *parent, const char *dir)
{
        char buf[4096];
        int r;

        r = read_file(parent, "cpuset.cpus", buf, sizeof(buf));
        if (r == 0)
                r = write_file(dir, "cpuset.cpus", buf);
        if (r == 0)
                r = read_file(parent, "cpuset.mems", buf, sizeof(buf));
        if (r == 0)
                r = write_file(dir, "cpuset.mems", buf);
        return r;
}

static int v2_enable(const char *dir)
{
        return write_file(dir, "cgroup.subtree_control", "+cpuset +memory");
}

static int init_v2(Cgroups *cg, const char *name, char *err, size_t n_err)
{
        char own[PATH_MAX], leaf[PATH_MAX], pid[32], procs[64];
        int r;

        r = hierarchy_dir(NULL, own, sizeof(own));
        if (r < 0) {
                snprintf(err, n_err, "cgroup2: cannot find the manager's cgroup: %s", strerror(-r));
                return r;
        }
        r = v2_enable(own);
        if (r == -EBUSY) {
                /* Our cgroup holds processes (at least us): move into a leaf. */
                if ((size_t)snprintf(leaf, sizeof(leaf), "%s/manager", own) >= sizeof(leaf))
                        return -ENAMETOOLONG;
                snprintf(pid, sizeof(pid), "%d", (int)getpid());
                r = mkdir_ok(leaf);
                if (r == 0)
                        r = write_file(leaf, "cgroup.procs", pid);
                if (r == 0)
                        r = v2_enable(own);
                if (r == -EBUSY && read_file(own, "cgroup.procs", procs, sizeof(procs)) == 0)
                        snprintf(err, n_err,
                                 "cgroup2: %s holds other processes (%s...); run the manager "
                                 "in a cgroup of its own (Delegate=yes)",
                                 own, procs);
        }
        if (r < 0) {
                if (!err[0])
                        snprintf(err, n_err, "cgroup2: cannot enable cpuset and memory in %s: %s",
                                 own, strerror(-r));
                return r;
        }
        if (asprintf(&cg->base[0], "%s/%s", own, name) < 0)
                return -ENOMEM;
        cg->n_base = 1;
        r = mkdir_ok(cg->base[0]);
        if (r == 0)
                r = v2_enable(cg->base[0]);
        if (r < 0) {
                snprintf(err, n_err, "cgroup2: cannot prepare %s: %s", cg->base[0], strerror(-r));
                return r;
        }
        return 0;
}

static int init_v1(Cgroups *cg, const char *name, char *err, size_t n_err)
{
        static const char *const controllers[] = {"cpuset", "memory"};
        char own[PATH_MAX];
        int r;

        for (size_t i = 0; i < 2; i++) {
                r = hierarchy_dir(controllers[i], own, sizeof(own));
                if (r < 0) {
                        snprintf(err, n_err, "cgroup v1: no %s hierarchy: %s", controllers[i],
                                 strerror(-r));
                        return r;
                }
                if (asprintf(&cg->base[i], "%s/%s", own, name) < 0)
                        return -ENOMEM;
                cg->n_base = i + 1;
                r = mkdir_ok(cg->base[i]);
                if (r == 0 && i == 0)
                        r = cpuset_inherit(own, cg->base[i]);
                if (r == 0 && i == 1) {
                        /* Limits below count the pool's whole subtree. */
                        (void)write_file(cg->base[i], "memory.use_hierarchy", "1");
                }
                if (r < 0) {
                        snprintf(err, n_err, "cgroup v1: cannot prepare %s: %s", cg->base[i],
                                 strerror(-r));
                        return r;
                }
        }
        return 0;
}

int cgroups_init(Cgroups *cg, const char *name, char *err, size_t n_err)
{
        struct statfs sfs;
        int r;

        *cg = (Cgroups){0};
        err[0] = '\0';
        if (statfs("/sys/fs/cgroup", &sfs) < 0) {
                r = -errno;
                snprintf(err, n_err, "/sys/fs/cgroup: %s", strerror(-r));
                return r;
        }
        cg->v2 = sfs.f_type == CGROUP2_SUPER_MAGIC;
        r = cg->v2 ? init_v2(cg, name, err, n_err) : init_v1(cg, name, err, n_err);
        if (r < 0)
                cgroups_deinit(cg);
        return r;
}

void cgroups_deinit(Cgroups *cg)
{
        for (size_t i = 0; i < CGROUP_DIRS_MAX; i++) {
                free(cg->base[i]);
                cg->base[i] = NULL;
        }
        cg->n_base = 0;
}

int cgroups_pool_path(Cgroups *cg, size_t i, const char *pool, char *buf, size_t size)
{
        if (i >= cg->n_base)
                return -EINVAL;
        if ((size_t)snprintf(buf, size, "%s/%s", cg->base[i], pool) >= size)
                return -ENAMETOOLONG;
        return 0;
}

int cgroups_pool_apply(Cgroups *cg, const char *pool, const char *cpus, uint64_t memory_max,
                       char *err, size_t n_err)
{
        char dir[PATH_MAX], mem[32], parent_cpus[4096];
        const char *cpuset_dir, *memory_dir;
        cpu_set_t set;
        int r;

        if (cpus && cpulist_parse(cpus, &set) < 0) {
                snprintf(err, n_err, "resources.cpus: \"%s\" is not a CPU list", cpus);
                return -EINVAL;
        }
        r = cgroups_pool_path(cg, 0, pool, dir, sizeof(dir));
        if (r < 0)
                return r;
        cpuset_dir = dir;
        if (cg->v2) {
                memory_dir = dir;
                r = write_file(cpuset_dir, "cpuset.cpus", cpus ? cpus : "");
        } else {
                /* No list means all of the parent's CPUs. */
                r = 0;
                if (!cpus) {
                        r = read_file(cg->base[0], "cpuset.cpus", parent_cpus, sizeof(parent_cpus));
                        cpus = parent_cpus;
                }
                if (r == 0)
                        r = write_file(cpuset_dir, "cpuset.cpus", cpus);
        }
        if (r < 0) {
                char avail[256] = "?";
                read_file(cg->base[0], cg->v2 ? "cpuset.cpus.effective" : "cpuset.cpus", avail,
                          sizeof(avail));
                snprintf(err, n_err, "resources.cpus: cannot use \"%s\" (this host offers %s): %s",
                         cpus, avail, strerror(-r));
                return r;
        }
        if (cg->v2) {
                if (memory_max)
                        snprintf(mem, sizeof(mem), "%llu", (unsigned long long)memory_max);
                else
                        snprintf(mem, sizeof(mem), "max");
                r = write_file(memory_dir, "memory.max", mem);
        } else {
                char mdir[PATH_MAX];
                r = cgroups_pool_path(cg, 1, pool, mdir, sizeof(mdir));
                if (r < 0)
                        return r;
                snprintf(mem, sizeof(mem), "%lld", memory_max ? (long long)memory_max : -1LL);
                r = write_file(mdir, "memory.limit_in_bytes", mem);
        }
        if (r < 0) {
                snprintf(err, n_err, "resources.memory_max: cannot set %s: %s", mem,
                         r == -EBUSY ? "the pool uses more than that now" : strerror(-r));
                return r;
        }
        return 0;
}

int cgroups_pool_create(Cgroups *cg, const char *pool, const char *cpus, uint64_t memory_max,
                        char *err, size_t n_err)
{
        char dir[PATH_MAX];
        int r;

        for (size_t i = 0; i < cg->n_base; i++) {
                r = cgroups_pool_path(cg, i, pool, dir, sizeof(dir));
                if (r == 0)
                        r = mkdir_ok(dir);
                if (r == 0 && !cg->v2 && i == 0)
                        r = cpuset_inherit(cg->base[0], dir);
                if (r < 0) {
                        snprintf(err, n_err, "cannot create the cgroup %s: %s", dir, strerror(-r));
                        return r;
                }
        }
        return cgroups_pool_apply(cg, pool, cpus, memory_max, err, n_err);
}

int cgroups_pool_attach(Cgroups *cg, const char *pool, pid_t pid)
{
        char dir[PATH_MAX], buf[32];
        int r;

        snprintf(buf, sizeof(buf), "%d", (int)pid);
        for (size_t i = 0; i < cg->n_base; i++) {
                r = cgroups_pool_path(cg, i, pool, dir, sizeof(dir));
                if (r == 0)
                        r = write_file(dir, "cgroup.procs", buf);
                if (r < 0)
                        return r;
        }
        return 0;
}

int cgroups_pool_pids(Cgroups *cg, const char *pool, pid_t *pids, size_t max)
{
        char dir[PATH_MAX], path[PATH_MAX + 16], line[32];
        size_t n = 0;
        FILE *f;
        int r;

        r = cgroups_pool_path(cg, 0, pool, dir, sizeof(dir));
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                long v = strtol(line, NULL, 10);
                if (v <= 0)
                        continue;
                if (n < max)
                        pids[n] = (pid_t)v;
                n++;
        }
        fclose(f);
        return n > INT_MAX ? INT_MAX : (int)n;
}

int cgroups_pool_remove(Cgroups *cg, const char *pool)
{
        char dir[PATH_MAX];
        int r, ret = 0;

        for (size_t i = 0; i < cg->n_base; i++) {
                r = cgroups_pool_path(cg, i, pool, dir, sizeof(dir));
                if (r == 0 && rmdir(dir) < 0 && errno != ENOENT)
                        r = -errno;
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

int cgroups_pool_memory_current(Cgroups *cg, const char *pool, uint64_t *bytesp)
{
        char dir[PATH_MAX], buf[64];
        int r;

        r = cgroups_pool_path(cg, cg->v2 ? 0 : 1, pool, dir, sizeof(dir));
        if (r == 0)
                r = read_file(dir, cg->v2 ? "memory.current" : "memory.usage_in_bytes", buf,
                              sizeof(buf));
        if (r < 0)
                return r;
        *bytesp = strtoull(buf, NULL, 10);
        return 0;
}

int cgroups_pool_cpus_effective(Cgroups *cg, const char *pool, char *buf, size_t size)
{
        char dir[PATH_MAX];
        int r;

        r = cgroups_pool_path(cg, 0, pool, dir, sizeof(dir));
        if (r < 0)
                return r;
        return read_file(dir, cg->v2 ? "cpuset.cpus.effective" : "cpuset.effective_cpus", buf,
                         size);
}
