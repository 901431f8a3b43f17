/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * danaus-fsd: the filesystem service of one pool. Reads the pool definition,
 * mounts every filesystem of the table and serves it until SIGTERM/SIGINT or
 * until the last mount is unmounted from outside; both end with status 0.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "control.h"
#include "danaus-config.h"
#include "fstable.h"
#include "fuse-front.h"
#include "util/config.h"
#include "util/log.h"
#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#else
static inline int sd_notify(int unset_environment, const char *state)
{
        return 0;
}
#endif

/* A serving thread tells main that its mount went away. */
#define SIG_MOUNT_GONE SIGUSR1

static void usage(FILE *out)
{
        fprintf(out, "Usage: danaus-fsd --config FILE [--control PATH|--no-control] [-d|--debug]\n"
                     "                  [--help] [--version]\n"
                     "Serves the filesystems of one Danaus pool in the foreground.\n"
                     "  -c, --config FILE  the pool definition (JSON)\n"
                     "      --control PATH the control socket (io.danaus.Fsd), default\n"
                     "                     " CONTROL_DEFAULT_DIR "/POOL/fsd.sock\n"
                     "      --no-control   no control socket\n"
                     "  -d, --debug        debug logs; twice: also libfuse's request dump\n"
                     "  -h, --help         this text\n"
                     "  -V, --version      the version\n");
}

/* Waits for signals; returns when the service should end. */
static void serve(FsTable *t, const sigset_t *set)
{
        for (;;) {
                siginfo_t si;
                int sig = sigwaitinfo(set, &si);

                if (sig < 0)
                        continue; /* EINTR */
                if (sig == SIG_MOUNT_GONE) {
                        if (fstable_reap(t) == 0 && fstable_done(t)) {
                                log_info("the last mount is gone, exiting");
                                return;
                        }
                        continue;
                }
                if (sig == SIGHUP) {
                        /* Reserved for reloading the definition; until
                         * then it must not stop a service by accident. */
                        log_info("SIGHUP ignored: reloading is not supported yet");
                        continue;
                }
                log_info("%s received, unmounting", strsignal(sig));
                fstable_stop(t);
                return;
        }
}

/* Every file a node has open costs an fd (fuse-file.c): take all the fds
 * the hard limit allows (systemd's default soft limit is 1024) and give each
 * mount an even share of half of them for io files; the rest is for
 * directory handles, copy-ups and the instance's own. */
static size_t io_files_budget(size_t n_mounts)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 256;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        getrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1U << 24))
                rl.rlim_cur = 1U << 24;
        return (size_t)rl.rlim_cur / 2 / (n_mounts ? n_mounts : 1);
}

/* The control socket (control.c). An explicit path that is taken is an
 * error; the default path taken by another service of the same pool name
 * (tests run several) only costs this one its control socket. */
static int start_control(const char *path, const char *pool, FsTable *t, Control **controlp)
{
        char def[PATH_MAX], err[PATH_MAX + 128] = "";
        int r;

        if (!path) {
                snprintf(def, sizeof(def), "%s/%s/fsd.sock", CONTROL_DEFAULT_DIR, pool);
                path = def;
        }
        r = control_new(controlp, path, pool, t, err, sizeof(err));
        if (r < 0 && path == def && r == -EADDRINUSE) {
                log_warning("no control socket: %s", err);
                return 0;
        }
        if (r < 0) {
                log_error("control socket: %s", err);
                return r;
        }
        log_info("control socket %s", path);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
            {"config", required_argument, NULL, 'c'},
            {"control", required_argument, NULL, 'C'},
            {"no-control", no_argument, NULL, 'N'},
            {"debug", no_argument, NULL, 'd'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {},
        };
        const char *config = NULL, *control_path = NULL;
        bool no_control = false;
        Control *control = NULL;
        PoolConfig *cfg = NULL;
        FsTable *t = NULL;
        char err[512];
        sigset_t set;
        int c, debug = 0, r;

        while ((c = getopt_long(argc, argv, "c:dhV", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config = optarg;
                        break;
                case 'C':
                        control_path = optarg;
                        break;
                case 'N':
                        no_control = true;
                        break;
                case 'd':
                        debug++;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("danaus-fsd %s\n", DANAUS_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (!config || optind < argc) {
                usage(stderr);
                return 2;
        }

        err[0] = '\0';
        r = pool_config_load(config, &cfg, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "danaus-fsd: %s: %s\n", config, err[0] ? err : strerror(-r));
                return 1;
        }
        log_set_identity("danaus-fsd", cfg->pool);
        log_set_debug(debug > 0);
        front_setup_logging();

        /* The kernel applies the caller's umask before a create reaches us;
         * ours must not take bits away a second time. */
        umask(0);

        /* Blocked here, before any thread exists, so every thread inherits
         * the mask and only sigwaitinfo() below ever takes them. */
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIG_MOUNT_GONE);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);

        FsTableParams params = {
            .cfg = cfg,
            .debug = debug,
            .cache = FRONT_CACHE_DEFAULT,
            /* one core for the pool: its budget is the mounts' together */
            .max_io_files = io_files_budget(1),
            .waiter = pthread_self(),
            .notify_sig = SIG_MOUNT_GONE,
        };
        err[0] = '\0';
        r = fstable_new(&params, &t, err, sizeof(err));
        if (r < 0) {
                /* Same one-line form as a bad definition: the operator looks
                 * at the same file either way. */
                fprintf(stderr, "danaus-fsd: %s: %s\n", config, err[0] ? err : strerror(-r));
                pool_config_free(cfg);
                return 1;
        }
        if (!no_control) {
                r = start_control(control_path, cfg->pool, t, &control);
                if (r < 0) {
                        fstable_free(t);
                        pool_config_free(cfg);
                        return 1;
                }
        }
        log_info("pool %s: serving %zu mount%s", cfg->pool, cfg->n_mounts,
                 cfg->n_mounts == 1 ? "" : "s");
        sd_notify(0, "READY=1");
        serve(t, &set);
        sd_notify(0, "STOPPING=1");
        /* The control thread uses the table: it goes first. */
        control_free(control);
        fstable_free(t);
        pool_config_free(cfg);
        return 0;
}
