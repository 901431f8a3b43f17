/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Systemd Backend: each pool is a transient slice danaus-<pool>.slice with
 * AllowedCPUs= and MemoryMax=, and the template instance
 * danaus-fsd@<pool>.service (Slice=danaus-%i.slice in the template) started
 * in it; systemd supervises and restarts the service (Restart=on-failure).
 *
 * Talks to PID 1 over sd-bus: the private socket /run/systemd/private when
 * root (no dbus-daemon needed), else the system bus. Jobs are awaited with a
 * JobRemoved match installed (with Subscribe) before the call, so a job that
 * finishes before its reply arrives is not missed.
 *
 * On v1/hybrid hierarchies systemd does not drive the cpuset, so
 * AllowedCPUs= alone pins nothing there: a runtime drop-in with
 * CPUAffinity= goes with it, and a live change also re-pins the running
 * service's threads.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "manager.h"
#include "mlog.h"
#include "state.h"
#include "util/cpulist.h"

#define JOB_TIMEOUT_US (30ULL * 1000000)
#define DROPIN_DIR     "/run/systemd/system"
#define JOBS_MAX       64

typedef struct Sd {
        sd_bus *bus;
        sd_bus_slot *match;
        /* finished jobs seen by the match, not yet claimed */
        struct {
                char *path, *result;
        } jobs[JOBS_MAX];
        size_t n_jobs;
        bool v1;
} Sd;

static Sd *sd(Manager *m)
{
        return m->backend_data;
}

static int on_job_removed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error)
{
        Sd *s = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(msg, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (s->n_jobs == JOBS_MAX) {
                free(s->jobs[0].path);
                free(s->jobs[0].result);
                memmove(&s->jobs[0], &s->jobs[1], sizeof(s->jobs[0]) * (JOBS_MAX - 1));
                s->n_jobs--;
        }
        s->jobs[s->n_jobs].path = strdup(path);
        s->jobs[s->n_jobs].result = strdup(result);
        s->n_jobs++;
        return 0;
}

static int sd_init(Manager *m, char *err, size_t n_err)
{
        struct statfs sfs;
        Sd *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        if (geteuid() == 0 && access("/run/systemd/private", F_OK) == 0) {
                r = sd_bus_new(&s->bus);
                if (r >= 0)
                        r = sd_bus_set_address(s->bus, "unix:path=/run/systemd/private");
                if (r >= 0)
                        r = sd_bus_start(s->bus);
        } else {
                r = sd_bus_open_system(&s->bus);
        }
        if (r < 0) {
                snprintf(err, n_err, "systemd backend: cannot connect to systemd: %s",
                         strerror(-r));
                goto fail;
        }
        r = sd_bus_match_signal(s->bus, &s->match, "org.freedesktop.systemd1",
                                "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                "JobRemoved", on_job_removed, s);
        if (r >= 0)
                r = sd_bus_call_method(
                    s->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                    "org.freedesktop.systemd1.Manager", "Subscribe", NULL, NULL, "");
        if (r < 0) {
                snprintf(err, n_err, "systemd backend: cannot subscribe to jobs: %s", strerror(-r));
                goto fail;
        }
        s->v1 = statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type != CGROUP2_SUPER_MAGIC;
        m->backend_data = s;
        mlog(LOG_INFO, NULL, "systemd backend%s",
             s->v1 ? " (cgroup v1: CPUs pinned with "
                     "CPUAffinity= too)"
                   : "");
        return 0;
fail:
        sd_bus_slot_unref(s->match);
        sd_bus_flush_close_unref(s->bus);
        free(s);
        return r;
}

static void sd_free(Manager *m)
{
        Sd *s = sd(m);

        if (!s)
                return;
        for (size_t i = 0; i < s->n_jobs; i++) {
                free(s->jobs[i].path);
                free(s->jobs[i].result);
        }
        sd_bus_slot_unref(s->match);
        sd_bus_flush_close_unref(s->bus);
        free(s);
        m->backend_data = NULL;
}

static void unit_names(const char *pool, char *slice, size_t n_slice, char *service,
                       size_t n_service)
{
        snprintf(slice, n_slice, "danaus-%s.slice", pool);
        snprintf(service, n_service, "danaus-fsd@%s.service", pool);
}

/* Waits for the job's JobRemoved; 0 for result "done", else -EIO with the
 * result in err. */
static int wait_job(Sd *s, const char *job, const char *what, char *err, size_t n_err)
{
        uint64_t end = now_ms() + JOB_TIMEOUT_US / 1000;

        for (;;) {
                for (size_t i = 0; i < s->n_jobs; i++) {
                        if (!s->jobs[i].path || strcmp(s->jobs[i].path, job) != 0)
                                continue;
                        int r =
                            s->jobs[i].result && strcmp(s->jobs[i].result, "done") == 0 ? 0 : -EIO;
                        if (r < 0)
                                snprintf(err, n_err, "%s: job %s", what,
                                         s->jobs[i].result ? s->jobs[i].result : "failed");
                        free(s->jobs[i].path);
                        free(s->jobs[i].result);
                        memmove(&s->jobs[i], &s->jobs[i + 1],
                                sizeof(s->jobs[0]) * (s->n_jobs - i - 1));
                        s->n_jobs--;
                        return r;
                }
                int r = sd_bus_process(s->bus, NULL);
                if (r < 0) {
                        snprintf(err, n_err, "%s: bus: %s", what, strerror(-r));
                        return r;
                }
                if (r > 0)
                        continue;
                if (now_ms() >= end) {
                        snprintf(err, n_err, "%s: no answer from systemd", what);
                        return -ETIMEDOUT;
                }
                sd_bus_wait(s->bus, 200000);
        }
}

/* Appends AllowedCPUs/MemoryMax(/MemoryAccounting) to an open a(sv). */
static int append_limits(sd_bus_message *msg, const PoolConfig *cfg, bool accounting)
{
        uint8_t mask[CPU_SETSIZE / 8] = {0};
        size_t n_mask = 0;
        int r;

        if (cfg->cpus) {
                cpu_set_t set;
                r = cpulist_parse(cfg->cpus, &set);
                if (r < 0)
                        return r;
                for (int c = 0; c < CPU_SETSIZE; c++)
                        if (CPU_ISSET(c, &set)) {
                                mask[c / 8] |= (uint8_t)(1u << (c % 8));
                                n_mask = (size_t)c / 8 + 1;
                        }
        }
        r = sd_bus_message_open_container(msg, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(msg, "s", "AllowedCPUs");
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'v', "ay");
        if (r >= 0)
                r = sd_bus_message_append_array(msg, 'y', mask, n_mask);
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_message_append(msg, "(sv)", "MemoryMax", "t",
                                          cfg->memory_max ? cfg->memory_max : UINT64_MAX);
        if (r >= 0 && accounting)
                r = sd_bus_message_append(msg, "(sv)(sv)", "MemoryAccounting", "b", 1,
                                          "Description", "s", "Danaus pool");
        return r;
}

static int call_job(Sd *s, const char *method, const char *unit, const char *what, char *err,
                    size_t n_err)
{
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *job;
        int r;

        r = sd_bus_call_method(s->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", method, &e, &reply, "ss", unit,
                               "replace");
        if (r < 0) {
                snprintf(err, n_err, "%s: %s", what, e.message ? e.message : strerror(-r));
                sd_bus_error_free(&e);
                return r;
        }
        r = sd_bus_message_read(reply, "o", &job);
        if (r >= 0)
                r = wait_job(s, job, what, err, n_err);
        sd_bus_message_unref(reply);
        return r;
}

/* CPUAffinity= for the service where systemd cannot drive the cpuset. */
static int write_dropin(Sd *s, const char *service, const PoolConfig *cfg, bool *changed)
{
        char dir[PATH_MAX], path[PATH_MAX + 32];
        FILE *f;

        *changed = false;
        if (!s->v1)
                return 0;
        snprintf(dir, sizeof(dir), DROPIN_DIR "/%s.d", service);
        snprintf(path, sizeof(path), "%s/50-danaus-cpus.conf", dir);
        if (!cfg->cpus) {
                *changed = unlink(path) == 0;
                rmdir(dir);
                return 0;
        }
        if (mkdir_parents(dir, 0755) < 0)
                return -errno;
        f = fopen(path, "we");
        if (!f)
                return -errno;
        fprintf(f,
                "# Written by danaus-manager: cgroup v1 leaves AllowedCPUs= unenforced.\n"
                "[Service]\nCPUAffinity=%s\n",
                cfg->cpus);
        if (fclose(f) != 0)
                return -EIO;
        *changed = true;
        return 0;
}

static int reload(Sd *s)
{
        return sd_bus_call_method(s->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                  "org.freedesktop.systemd1.Manager", "Reload", NULL, NULL, "");
}

static int set_slice_limits(Sd *s, const char *slice, const PoolConfig *cfg, char *err,
                            size_t n_err)
{
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *msg = NULL;
        int r;

        r = sd_bus_message_new_method_call(s->bus, &msg, "org.freedesktop.systemd1",
                                           "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager", "SetUnitProperties");
        if (r >= 0)
                r = sd_bus_message_append(msg, "sb", slice, 1);
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'a', "(sv)");
        if (r >= 0)
                r = append_limits(msg, cfg, false);
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_call(s->bus, msg, 0, &e, NULL);
        if (r < 0)
                snprintf(err, n_err, "%s: cannot set limits: %s", slice,
                         e.message ? e.message : strerror(-r));
        sd_bus_error_free(&e);
        sd_bus_message_unref(msg);
        return r;
}

static int start_slice(Sd *s, const char *slice, const PoolConfig *cfg, char *err, size_t n_err)
{
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *msg = NULL, *reply = NULL;
        const char *job;
        int r;

        r = sd_bus_message_new_method_call(
            s->bus, &msg, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager", "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(msg, "ss", slice, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'a', "(sv)");
        if (r >= 0)
                r = append_limits(msg, cfg, true);
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_message_append(msg, "a(sa(sv))", 0);
        if (r < 0) {
                snprintf(err, n_err, "%s: cannot build the request: %s", slice, strerror(-r));
                sd_bus_message_unref(msg);
                return r;
        }
        r = sd_bus_call(s->bus, msg, 0, &e, &reply);
        sd_bus_message_unref(msg);
        if (r < 0 && sd_bus_error_has_name(&e, "org.freedesktop.systemd1.UnitExists")) {
                /* Left from an earlier life (a manager restart): reuse it. */
                sd_bus_error_free(&e);
                return set_slice_limits(s, slice, cfg, err, n_err);
        }
        if (r < 0) {
                snprintf(err, n_err, "%s: %s", slice, e.message ? e.message : strerror(-r));
                sd_bus_error_free(&e);
                return r;
        }
        r = sd_bus_message_read(reply, "o", &job);
        if (r >= 0)
                r = wait_job(s, job, slice, err, n_err);
        sd_bus_message_unref(reply);
        return r;
}

static int unit_property_string(Sd *s, const char *unit, const char *iface, const char *prop,
                                char **valp)
{
        char *path = NULL;
        int r;

        r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &path);
        if (r < 0)
                return r;
        r = sd_bus_get_property_string(s->bus, "org.freedesktop.systemd1", path, iface, prop, NULL,
                                       valp);
        free(path);
        return r;
}

static int unit_property_u(Sd *s, const char *unit, const char *iface, const char *prop, char type,
                           void *valp)
{
        char *path = NULL;
        int r;

        r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &path);
        if (r < 0)
                return r;
        r = sd_bus_get_property_trivial(s->bus, "org.freedesktop.systemd1", path, iface, prop, NULL,
                                        type, valp);
        free(path);
        return r;
}

static void refresh_state(Manager *m, Pool *p)
{
        char slice[128], service[128];
        char *active = NULL, *sub = NULL;
        uint32_t pid = 0;

        unit_names(p->name, slice, sizeof(slice), service, sizeof(service));
        if (unit_property_string(sd(m), service, "org.freedesktop.systemd1.Unit", "ActiveState",
                                 &active) < 0)
                return;
        unit_property_string(sd(m), service, "org.freedesktop.systemd1.Unit", "SubState", &sub);
        if (strcmp(active, "active") == 0 || strcmp(active, "reloading") == 0)
                p->state = POOL_RUNNING;
        else if (strcmp(active, "activating") == 0)
                p->state =
                    sub && strcmp(sub, "auto-restart") == 0 ? POOL_RESTARTING : POOL_STARTING;
        else if (strcmp(active, "failed") == 0)
                p->state = POOL_FAILED;
        else
                p->state = POOL_STOPPED;
        if (unit_property_u(sd(m), service, "org.freedesktop.systemd1.Service", "MainPID", 'u',
                            &pid) >= 0)
                p->pid = (pid_t)pid;
        free(active);
        free(sub);
}

static int sd_stop(Manager *m, Pool *p, char *err, size_t n_err)
{
        char slice[128], service[128];
        bool changed;
        int r;

        unit_names(p->name, slice, sizeof(slice), service, sizeof(service));
        r = call_job(sd(m), "StopUnit", service, service, err, n_err);
        if (r < 0 && r != -ENOENT)
                mlog(LOG_WARNING, p->name, "%s", err);
        sd_bus_call_method(sd(m)->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                           "org.freedesktop.systemd1.Manager", "ResetFailedUnit", NULL, NULL, "s",
                           service);
        err[0] = '\0';
        r = call_job(sd(m), "StopUnit", slice, slice, err, n_err);
        if (r < 0 && strstr(err, "not loaded"))
                r = 0;
        if (write_dropin(sd(m), service, &(PoolConfig){.cpus = NULL}, &changed) == 0 && changed)
                reload(sd(m));
        p->pid = 0;
        p->state = POOL_STOPPED;
        return r;
}

static int sd_start(Manager *m, Pool *p, char *err, size_t n_err)
{
        char slice[128], service[128], ctl[PATH_MAX];
        bool changed;
        int r;

        unit_names(p->name, slice, sizeof(slice), service, sizeof(service));
        r = start_slice(sd(m), slice, p->cfg, err, n_err);
        if (r < 0)
                return r;
        r = write_dropin(sd(m), service, p->cfg, &changed);
        if (r < 0) {
                snprintf(err, n_err, "%s: cannot write its CPUAffinity= drop-in: %s", service,
                         strerror(-r));
                return r;
        }
        if (changed)
                reload(sd(m));
        r = call_job(sd(m), "StartUnit", service, service, err, n_err);
        if (r < 0)
                return r;
        /* Type=notify: the job is done once the service said READY=1. */
        refresh_state(m, p);
        manager_control_path(m, p->name, ctl, sizeof(ctl));
        r = fsd_ping(ctl, p->name, 2000);
        if (r < 0) {
                snprintf(err, n_err, "%s started but does not answer on %s: %s", service, ctl,
                         strerror(-r));
                return r;
        }
        p->state = POOL_RUNNING;
        return 0;
}

/* Re-pins the running service's threads (v1: AllowedCPUs= does not). */
static void repin(Pool *p)
{
        char dir[64];
        cpu_set_t set;
        struct dirent *de;
        DIR *d;

        if (p->pid <= 0 || !p->cfg->cpus || cpulist_parse(p->cfg->cpus, &set) < 0)
                return;
        snprintf(dir, sizeof(dir), "/proc/%d/task", (int)p->pid);
        d = opendir(dir);
        if (!d)
                return;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        sched_setaffinity((pid_t)strtol(de->d_name, NULL, 10), sizeof(set), &set);
        closedir(d);
}

static int sd_update(Manager *m, Pool *p, char *err, size_t n_err)
{
        char slice[128], service[128];
        bool changed;
        int r;

        unit_names(p->name, slice, sizeof(slice), service, sizeof(service));
        r = set_slice_limits(sd(m), slice, p->cfg, err, n_err);
        if (r < 0)
                return r;
        if (write_dropin(sd(m), service, p->cfg, &changed) == 0 && changed) {
                reload(sd(m));
                refresh_state(m, p);
                repin(p);
        }
        return 0;
}

static int sd_adopt(Manager *m, Pool *p)
{
        char slice[128], service[128], err[256];

        refresh_state(m, p);
        if (p->state != POOL_RUNNING && p->state != POOL_STARTING && p->state != POOL_RESTARTING)
                return 0;
        unit_names(p->name, slice, sizeof(slice), service, sizeof(service));
        if (set_slice_limits(sd(m), slice, p->cfg, err, sizeof(err)) < 0)
                mlog(LOG_WARNING, p->name, "%s", err);
        return 1;
}

static void sd_describe(Manager *m, Pool *p, struct json_object *info)
{
        char slice[128], service[128], path[64], line[4096];
        uint64_t mem = 0;
        FILE *f;

        unit_names(p->name, slice, sizeof(slice), service, sizeof(service));
        refresh_state(m, p);
        json_object_object_add(info, "state",
                               json_object_new_string(pool_state_to_string(p->state)));
        json_object_object_add(info, "slice", json_object_new_string(slice));
        if (unit_property_u(sd(m), slice, "org.freedesktop.systemd1.Slice", "MemoryCurrent", 't',
                            &mem) >= 0 &&
            mem != UINT64_MAX)
                json_object_object_add(info, "memory_current", json_object_new_int64((int64_t)mem));
        if (p->pid <= 0)
                return;
        json_object_object_add(info, "pid", json_object_new_int64(p->pid));
        /* The CPUs the kernel lets the service run on. */
        snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
        f = fopen(path, "re");
        if (!f)
                return;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
                        char *v = line + 18;
                        v += strspn(v, " \t");
                        v[strcspn(v, "\n")] = '\0';
                        json_object_object_add(info, "cpus_effective", json_object_new_string(v));
                }
        fclose(f);
}

const BackendOps backend_systemd = {
    .name = "systemd",
    .init = sd_init,
    .start = sd_start,
    .stop = sd_stop,
    .update = sd_update,
    .adopt = sd_adopt,
    .describe = sd_describe,
    .free = sd_free,
};
