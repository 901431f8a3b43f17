/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * danausctl run NAME -- CMD...: CMD runs in the pool's cgroups (direct
 * backend) or slice (systemd backend, through systemd-run --scope), on the
 * pool's CPUs, with DANAUS_POOL set and the preload library in LD_PRELOAD
 * when it is installed. Nothing runs outside the pool: a step that fails
 * stops the command before it starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "danaus-config.h"
#include "danausctl.h"
#include "util/cpulist.h"

#define CTL_EXIT_EXEC 127 /* as shells: the command could not be started */

static const char *str_of(json_object *o, const char *key)
{
        json_object *v;

        if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        return NULL;
}

/* Moves this process into the cgroup directory dir. */
static int join_cgroup(const char *dir)
{
        char path[PATH_MAX], pid[32];
        struct stat st;
        int fd, n, r = 0;

        if (dir[0] != '/' || strstr(dir, "/../") || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return ctl_fail("cgroup %s: not a cgroup directory", dir);
        if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path))
                return ctl_fail("cgroup %s: path too long", dir);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return ctl_fail("cannot join the pool's cgroup %s: %m", dir);
        n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
        if (write(fd, pid, (size_t)n) != n)
                r = ctl_fail("cannot join the pool's cgroup %s: %m", dir);
        close(fd);
        return r;
}

static int set_affinity(const char *cpus)
{
        cpu_set_t set;

        if (cpulist_parse(cpus, &set) < 0)
                return ctl_fail("the manager reported an invalid CPU list \"%s\"", cpus);
        if (sched_setaffinity(0, sizeof(set), &set) < 0)
                return ctl_fail("cannot run on CPUs %s: %m", cpus);
        return 0;
}

static int set_environment(const char *pool)
{
        const char *preload = getenv("DANAUS_PRELOAD");
        const char *old = getenv("LD_PRELOAD");

        if (setenv("DANAUS_POOL", pool, 1) < 0)
                return ctl_fail("setenv: %m");
        if (!preload || !*preload)
                preload = DANAUS_PRELOAD_PATH;
        if (access(preload, R_OK) == 0) {
                char *v;

                if (old && *old) {
                        if (asprintf(&v, "%s:%s", preload, old) < 0)
                                return ctl_fail("out of memory");
                } else {
                        v = strdup(preload);
                        if (!v)
                                return ctl_fail("out of memory");
                }
                setenv("LD_PRELOAD", v, 1);
                free(v);
        }
        return 0;
}

int ctl_run(const Ctl *ctl, int argc, char **argv)
{
        json_object *params, *reply = NULL, *pool, *cgroups;
        const char *name, *state, *cpus, *slice;
        char **cmd;
        int r;

        if (argc < 3)
                return ctl_usage_error("run NAME -- COMMAND [ARG...]");
        name = argv[1];
        cmd = argv + 2;
        if (strcmp(cmd[0], "--") == 0)
                cmd++;
        if (!cmd[0])
                return ctl_usage_error("run %s: a command is needed after --", name);
        params = json_object_new_object();
        json_object_object_add(params, "name", json_object_new_string(name));
        r = ctl_call(ctl, "GetPool", params, &reply);
        json_object_put(params);
        if (r != CTL_EXIT_OK)
                return r;
        if (!json_object_object_get_ex(reply, "pool", &pool)) {
                json_object_put(reply);
                return ctl_fail("pool %s: the manager's reply lacks the pool", name);
        }
        state = str_of(pool, "state");
        if (!state || strcmp(state, "running") != 0) {
                r = ctl_fail("pool %s: not running (%s)", name, state ? state : "no state");
                goto out;
        }
        slice = str_of(pool, "slice");
        if (json_object_object_get_ex(pool, "cgroups", &cgroups) &&
            json_object_is_type(cgroups, json_type_array) && json_object_array_length(cgroups)) {
                for (size_t i = 0; i < json_object_array_length(cgroups); i++) {
                        json_object *c = json_object_array_get_idx(cgroups, i);

                        r = json_object_is_type(c, json_type_string)
                                ? join_cgroup(json_object_get_string(c))
                                : ctl_fail("pool %s: the manager reported a bad cgroup", name);
                        if (r)
                                goto out;
                }
                slice = NULL;
        } else if (!slice) {
                r = ctl_fail("pool %s: the manager reported neither cgroups nor a slice", name);
                goto out;
        }
        cpus = str_of(pool, "cpus_effective");
        if (!cpus)
                cpus = str_of(pool, "cpus");
        if (cpus && (r = set_affinity(cpus)))
                goto out;
        if ((r = set_environment(name)))
                goto out;
        fflush(stdout);
        if (slice) {
                /* systemd places the command in a scope under the slice; it
                 * keeps our environment and affinity. */
                size_t n = 0;
                char **av, slice_arg[512];

                while (cmd[n])
                        n++;
                av = calloc(n + 6, sizeof(*av));
                if (!av) {
                        r = ctl_fail("out of memory");
                        goto out;
                }
                snprintf(slice_arg, sizeof(slice_arg), "--slice=%s", slice);
                av[0] = "systemd-run";
                av[1] = "--scope";
                av[2] = "--quiet";
                av[3] = slice_arg;
                av[4] = "--";
                memcpy(av + 5, cmd, n * sizeof(*av));
                execvp(av[0], av);
                r = ctl_fail("systemd-run: %m");
                free(av);
                r = CTL_EXIT_EXEC;
                goto out;
        }
        execvp(cmd[0], cmd);
        ctl_fail("%s: %m", cmd[0]);
        r = CTL_EXIT_EXEC;
out:
        json_object_put(reply);
        return r;
}
