/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Direct Backend: the manager runs each pool's danaus-fsd itself, in the
 * pool's cgroups (cgroup.c), and supervises it.
 *
 * - The child joins the pool's cgroups before it execs, so the service never
 *   runs a single instruction outside its cores and memory. It gets its own
 *   session and no death signal: services outlive a restarted manager.
 * - Each service is watched through a pidfd in the manager's loop. A child's
 *   exit status is read with waitpid; an adopted service (not our child) has
 *   none to read, so its exit counts as a failure.
 * - A failed service (exit status not 0, or killed) is restarted after a
 *   back-off of 100 ms doubling to 30 s, reset after 10 s of good running.
 *   A clean exit (0: every mount was unmounted from outside) leaves the pool
 *   "stopped". Mounts a killed service left behind are detached first
 *   (danaus-fsd does so too; destroy needs it after a SIGKILL).
 * - Adoption at start: the service answering on the pool's control socket is
 *   identified by the socket's SO_PEERCRED, and taken over only when that
 *   process sits in the pool's cgroup.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "manager.h"
#include "mlog.h"
#include "state.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   30000
#define GOOD_RUN_MS      10000
#define STOP_TIMEOUT_MS  10000
#define PIDS_MAX         4096

typedef struct Direct {
        Cgroups cg;
} Direct;

static Direct *direct(Manager *m)
{
        return m->backend_data;
}

static int direct_init(Manager *m, char *err, size_t n_err)
{
        Direct *d = calloc(1, sizeof(*d));
        int r;

        if (!d)
                return -ENOMEM;
        r = cgroups_init(&d->cg, m->opt.cgroup_name, err, n_err);
        if (r < 0) {
                free(d);
                return r;
        }
        m->backend_data = d;
        mlog(LOG_INFO, NULL, "direct backend: cgroup %s, pools under %s%s%s",
             d->cg.v2 ? "v2" : "v1 (cpuset, memory)", d->cg.base[0],
             d->cg.n_base > 1 ? " and " : "", d->cg.n_base > 1 ? d->cg.base[1] : "");
        return 0;
}

static void direct_free(Manager *m)
{
        Direct *d = direct(m);

        if (!d)
                return;
        /* The base goes when no pool is left in it (else rmdir fails: kept). */
        for (size_t i = 0; i < d->cg.n_base; i++)
                rmdir(d->cg.base[i]);
        cgroups_deinit(&d->cg);
        free(d);
        m->backend_data = NULL;
}

static int pidfd_open_(pid_t pid)
{
        return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Detaches the pool's mounts that no service serves any more: a killed
 * service leaves them answering ENOTCONN. statfs asks the service every
 * time, where stat may be answered from the kernel's attribute cache for a
 * second after the death. A live mount is left alone. */
static unsigned detach_dead_mounts(const Pool *p)
{
        unsigned n = 0;

        for (size_t i = 0; i < p->cfg->n_mounts; i++) {
                const char *mp = p->cfg->mounts[i].mountpoint;
                struct statfs sfs;

                /* Dead mounts can stack after repeated crashes. */
                for (int k = 0; k < 16; k++) {
                        if (statfs(mp, &sfs) == 0 || errno != ENOTCONN ||
                            umount2(mp, MNT_DETACH) < 0)
                                break;
                        n++;
                }
        }
        return n;
}

static bool is_fsd(pid_t pid)
{
        char path[64], comm[32] = "";
        int fd;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, comm, sizeof(comm) - 1);
        close(fd);
        if (n <= 0)
                return false;
        comm[n] = '\0';
        comm[strcspn(comm, "\n")] = '\0';
        return strcmp(comm, "danaus-fsd") == 0;
}

static int spawn(Manager *m, Pool *p, char *err, size_t n_err)
{
        char def[PATH_MAX], ctl[PATH_MAX], rundir[PATH_MAX];
        const char *fsd = m->opt.fsd_path;
        pid_t pid;
        int r;

        r = manager_definition_path(m, p->name, def, sizeof(def));
        if (r == 0)
                r = manager_control_path(m, p->name, ctl, sizeof(ctl));
        if (r < 0) {
                snprintf(err, n_err, "paths too long");
                return r;
        }
        snprintf(rundir, sizeof(rundir), "%s", ctl);
        *strrchr(rundir, '/') = '\0';
        r = mkdir_parents(rundir, 0755);
        if (r < 0) {
                snprintf(err, n_err, "cannot create %s: %s", rundir, strerror(-r));
                return r;
        }
        if (detach_dead_mounts(p))
                mlog(LOG_WARNING, p->name, "detached mounts a dead service left behind");
        pid = fork();
        if (pid < 0) {
                r = -errno;
                snprintf(err, n_err, "fork: %s", strerror(-r));
                return r;
        }
        if (pid == 0) {
                sigset_t none;
                int fd;

                if (cgroups_pool_attach(&direct(m)->cg, p->name, getpid()) < 0) {
                        dprintf(STDERR_FILENO,
                                "danaus-manager: cannot move the service of pool "
                                "%s into its cgroups\n",
                                p->name);
                        _exit(126);
                }
                setsid();
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd >= 0)
                        dup2(fd, STDIN_FILENO);
                execl(fsd, "danaus-fsd", "--config", def, "--control", ctl, (char *)NULL);
                dprintf(STDERR_FILENO, "danaus-manager: cannot run %s: %s\n", fsd, strerror(errno));
                _exit(127);
        }
        p->pid = pid;
        p->child = true;
        p->started_ms = now_ms();
        p->state = POOL_STARTING;
        p->pidfd = pidfd_open_(pid);
        if (p->pidfd < 0 || manager_watch_pid(m, p) < 0) {
                /* Cannot supervise it: do not leave it running unwatched. */
                r = p->pidfd < 0 ? -errno : -EIO;
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                if (p->pidfd >= 0)
                        close(p->pidfd);
                p->pidfd = -1;
                p->pid = 0;
                snprintf(err, n_err, "cannot watch the service: %s", strerror(-r));
                return r;
        }
        return 0;
}

static void describe_status(int status, char *buf, size_t size)
{
        if (status < 0)
                snprintf(buf, size, "exited (not our child: status unknown)");
        else if (WIFEXITED(status))
                snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(status),
                         strsignal(WTERMSIG(status)));
        else
                snprintf(buf, size, "ended (status 0x%x)", status);
}

/* Waits until the pid has exited (pidfd readable) or timeout_ms passed. */
static bool wait_exit(Pool *p, int timeout_ms)
{
        struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
        uint64_t end = now_ms() + (uint64_t)timeout_ms;

        if (p->pidfd < 0)
                return kill(p->pid, 0) < 0;
        for (;;) {
                uint64_t now = now_ms();
                int n;
                if (now >= end)
                        return false;
                n = poll(&pfd, 1, (int)(end - now));
                if (n > 0)
                        return true;
                if (n == 0)
                        return false;
        }
}

/* Reaps the service (a child) or forgets it (adopted). */
static int reap(Manager *m, Pool *p)
{
        int status = -1;

        if (p->child && p->pid > 0 && waitpid(p->pid, &status, WNOHANG) <= 0)
                status = -1;
        manager_unwatch_pid(m, p);
        p->pid = 0;
        p->child = false;
        return status;
}

static int wait_ready(Manager *m, Pool *p, char *err, size_t n_err)
{
        char ctl[PATH_MAX], what[128];
        uint64_t end = now_ms() + (uint64_t)m->opt.start_timeout_ms;
        struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};

        manager_control_path(m, p->name, ctl, sizeof(ctl));
        for (;;) {
                if (fsd_ping(ctl, p->name, 500) == 0) {
                        p->state = POOL_RUNNING;
                        return 0;
                }
                /* Early exit: the service refused the definition, say. */
                if (poll(&pfd, 1, 20) > 0) {
                        describe_status(reap(m, p), what, sizeof(what));
                        snprintf(err, n_err,
                                 "danaus-fsd %s before it answered on %s (its message "
                                 "is in the manager's log)",
                                 what, ctl);
                        return -EIO;
                }
                if (now_ms() >= end) {
                        snprintf(err, n_err, "danaus-fsd did not answer on %s within %d ms", ctl,
                                 m->opt.start_timeout_ms);
                        return -ETIMEDOUT;
                }
        }
}

/* Kills every process left in the pool's cgroups; true when they are gone. */
static bool kill_all(Manager *m, Pool *p)
{
        pid_t pids[PIDS_MAX];
        uint64_t end = now_ms() + 3000;

        for (;;) {
                int n = cgroups_pool_pids(&direct(m)->cg, p->name, pids, PIDS_MAX);
                if (n <= 0)
                        return true;
                for (int i = 0; i < n && i < PIDS_MAX; i++)
                        kill(pids[i], SIGKILL);
                if (p->child && p->pid > 0)
                        waitpid(p->pid, NULL, WNOHANG);
                if (now_ms() >= end)
                        return false;
                usleep(10000);
        }
}

static int stop_service(Manager *m, Pool *p)
{
        if (p->pid <= 0)
                return 0;
        kill(p->pid, SIGTERM);
        if (!wait_exit(p, STOP_TIMEOUT_MS)) {
                mlog(LOG_WARNING, p->name,
                     "danaus-fsd (pid %d) ignored SIGTERM for %d ms; killing it", (int)p->pid,
                     STOP_TIMEOUT_MS);
                kill(p->pid, SIGKILL);
                wait_exit(p, STOP_TIMEOUT_MS);
        }
        if (p->child)
                waitpid(p->pid, NULL, 0);
        manager_unwatch_pid(m, p);
        p->pid = 0;
        p->child = false;
        return 0;
}

static void remove_runtime(Manager *m, Pool *p)
{
        char ctl[PATH_MAX];

        if (manager_control_path(m, p->name, ctl, sizeof(ctl)) < 0)
                return;
        unlink(ctl);
        *strrchr(ctl, '/') = '\0';
        rmdir(ctl);
}

static int direct_stop(Manager *m, Pool *p, char *err, size_t n_err)
{
        int r;

        stop_service(m, p);
        /* The pool is going: so are the tenant's processes in it. */
        if (!kill_all(m, p)) {
                snprintf(err, n_err, "processes in the pool's cgroup do not die");
                return -EBUSY;
        }
        detach_dead_mounts(p);
        remove_runtime(m, p);
        r = cgroups_pool_remove(&direct(m)->cg, p->name);
        if (r < 0) {
                snprintf(err, n_err, "cannot remove the pool's cgroups: %s", strerror(-r));
                return r;
        }
        p->state = POOL_STOPPED;
        return 0;
}

static int direct_start(Manager *m, Pool *p, char *err, size_t n_err)
{
        pid_t pids[PIDS_MAX];
        int r, n;

        r = cgroups_pool_create(&direct(m)->cg, p->name, p->cfg->cpus, p->cfg->memory_max, err,
                                n_err);
        if (r < 0)
                return r;
        /* A service left from an earlier life that does not answer. */
        n = cgroups_pool_pids(&direct(m)->cg, p->name, pids, PIDS_MAX);
        for (int i = 0; i < n && i < PIDS_MAX; i++)
                if (is_fsd(pids[i])) {
                        mlog(LOG_WARNING, p->name, "killing danaus-fsd pid %d that does not answer",
                             (int)pids[i]);
                        kill(pids[i], SIGKILL);
                }
        r = spawn(m, p, err, n_err);
        if (r == 0)
                r = wait_ready(m, p, err, n_err);
        if (r < 0) {
                char ignored[256];
                stop_service(m, p);
                detach_dead_mounts(p);
                remove_runtime(m, p);
                if (cgroups_pool_pids(&direct(m)->cg, p->name, pids, PIDS_MAX) == 0)
                        cgroups_pool_remove(&direct(m)->cg, p->name);
                (void)ignored;
                p->state = POOL_FAILED;
                return r;
        }
        p->restarts = 0;
        p->backoff = 0;
        return 0;
}

static int direct_update(Manager *m, Pool *p, char *err, size_t n_err)
{
        return cgroups_pool_apply(&direct(m)->cg, p->name, p->cfg->cpus, p->cfg->memory_max, err,
                                  n_err);
}

/* The pid serving the socket (the process that listens on it). */
static pid_t socket_owner(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct ucred cred;
        socklen_t len = sizeof(cred);
        pid_t pid = 0;
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return 0;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return 0;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
                pid = cred.pid;
        close(fd);
        return pid;
}

static int direct_adopt(Manager *m, Pool *p)
{
        char ctl[PATH_MAX], ignored[256];
        pid_t pids[PIDS_MAX], owner;
        bool inside = false;
        int n;

        if (manager_control_path(m, p->name, ctl, sizeof(ctl)) < 0)
                return 0;
        n = cgroups_pool_pids(&direct(m)->cg, p->name, pids, PIDS_MAX);
        if (n <= 0)
                return 0;
        if (fsd_ping(ctl, p->name, 1000) < 0)
                return 0;
        owner = socket_owner(ctl);
        for (int i = 0; i < n && i < PIDS_MAX; i++)
                if (pids[i] == owner)
                        inside = true;
        if (!owner || !inside || !is_fsd(owner))
                return 0;
        p->pidfd = pidfd_open_(owner);
        if (p->pidfd < 0)
                return 0;
        p->pid = owner;
        p->child = false;
        p->started_ms = now_ms();
        if (manager_watch_pid(m, p) < 0) {
                close(p->pidfd);
                p->pidfd = -1;
                p->pid = 0;
                return 0;
        }
        /* Limits as stored (a no-op unless they were changed behind our back). */
        if (direct_update(m, p, ignored, sizeof(ignored)) < 0)
                mlog(LOG_WARNING, p->name, "cannot re-apply the limits: %s", ignored);
        p->state = POOL_RUNNING;
        return 1;
}

static void direct_exited(Manager *m, Pool *p)
{
        char what[128];
        uint64_t delay, ran = now_ms() - p->started_ms;
        int status = reap(m, p);

        describe_status(status, what, sizeof(what));
        if (status == 0) {
                mlog(LOG_INFO, p->name, "danaus-fsd %s: the pool is stopped", what);
                p->state = POOL_STOPPED;
                return;
        }
        if (ran >= GOOD_RUN_MS)
                p->backoff = 0;
        delay = (uint64_t)BACKOFF_FIRST_MS << (p->backoff < 9 ? p->backoff : 9);
        if (delay > BACKOFF_MAX_MS)
                delay = BACKOFF_MAX_MS;
        p->backoff++;
        p->restart_at_ms = now_ms() + delay;
        p->state = POOL_RESTARTING;
        mlog(LOG_WARNING, p->name, "danaus-fsd %s; restarting in %llu ms", what,
             (unsigned long long)delay);
}

static int direct_tick(Manager *m)
{
        uint64_t now = now_ms();
        int next = -1;

        for (Pool *p = m->pools; p; p = p->next) {
                int wait = -1;

                if (p->state == POOL_RESTARTING && p->restart_at_ms <= now) {
                        char err[512];
                        if (spawn(m, p, err, sizeof(err)) < 0) {
                                mlog(LOG_ERR, p->name, "restart failed: %s", err);
                                p->restart_at_ms = now + BACKOFF_MAX_MS;
                        } else {
                                p->restarts++;
                                mlog(LOG_INFO, p->name, "restarted (pid %d, restart %u)",
                                     (int)p->pid, p->restarts);
                        }
                }
                if (p->state == POOL_STARTING && p->pid > 0) {
                        char ctl[PATH_MAX];
                        manager_control_path(m, p->name, ctl, sizeof(ctl));
                        if (fsd_ping(ctl, p->name, 200) == 0)
                                p->state = POOL_RUNNING;
                        else
                                wait = 200;
                }
                if (p->state == POOL_RESTARTING)
                        wait = p->restart_at_ms > now ? (int)(p->restart_at_ms - now) : 0;
                if (wait >= 0 && (next < 0 || wait < next))
                        next = wait;
        }
        return next;
}

static void direct_describe(Manager *m, Pool *p, struct json_object *info)
{
        struct json_object *arr = json_object_new_array();
        char buf[PATH_MAX];
        uint64_t mem;

        if (p->pid > 0)
                json_object_object_add(info, "pid", json_object_new_int64(p->pid));
        for (size_t i = 0; arr && i < direct(m)->cg.n_base; i++)
                if (cgroups_pool_path(&direct(m)->cg, i, p->name, buf, sizeof(buf)) == 0)
                        json_object_array_add(arr, json_object_new_string(buf));
        if (arr)
                json_object_object_add(info, "cgroups", arr);
        if (cgroups_pool_cpus_effective(&direct(m)->cg, p->name, buf, sizeof(buf)) == 0)
                json_object_object_add(info, "cpus_effective", json_object_new_string(buf));
        if (cgroups_pool_memory_current(&direct(m)->cg, p->name, &mem) == 0)
                json_object_object_add(info, "memory_current", json_object_new_int64((int64_t)mem));
}

const BackendOps backend_direct = {
    .name = "direct",
    .init = direct_init,
    .start = direct_start,
    .stop = direct_stop,
    .update = direct_update,
    .adopt = direct_adopt,
    .describe = direct_describe,
    .exited = direct_exited,
    .tick = direct_tick,
    .free = direct_free,
};
