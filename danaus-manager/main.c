/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * danaus-manager: the host daemon. Options, the listening socket (its own or
 * one passed by systemd socket activation), and the loop.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "danaus-config.h"
#include "manager.h"
#include "mlog.h"
#include "state.h"
#include "util/log.h"
#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#ifndef DANAUS_FSD_PATH
#define DANAUS_FSD_PATH "/usr/sbin/danaus-fsd"
#endif
#define SOCKET_DEFAULT  "/run/danaus/manager.sock"
#define STATE_DEFAULT   "/var/lib/danaus/pools"
#define RUNTIME_DEFAULT "/run/danaus"

static void usage(FILE *out)
{
        fprintf(
            out,
            "Usage: danaus-manager [OPTIONS]\n"
            "The Danaus host manager: pools over varlink (io.danaus.Manager).\n"
            "  --socket PATH        listen here (default " SOCKET_DEFAULT "), unless\n"
            "                       systemd passes a socket (LISTEN_FDS)\n"
            "  --state-dir DIR      pool definitions (default " STATE_DEFAULT ")\n"
            "  --runtime-dir DIR    services' sockets in DIR/pools/POOL (default " RUNTIME_DEFAULT
            ")\n"
            "  --policy FILE        who may do what (default " POLICY_DEFAULT_PATH ")\n"
            "  --backend NAME       auto (default), systemd or direct\n"
            "  --fsd PATH           danaus-fsd for the direct backend (default " DANAUS_FSD_PATH
            ")\n"
            "  --cgroup-name NAME   direct: pools in <own cgroup>/NAME/POOL (default danaus)\n"
            "  --start-timeout MS   how long a service may take to answer (default 10000)\n"
            "  --stall-timeout MS   drop a client stuck mid-message this long (default 30000)\n"
            "  -d, --debug          debug logs\n"
            "  -h, --help           this text\n"
            "  -V, --version        the version\n");
}

static int parse_ms(const char *s, int *msp)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v < 1 || v > 3600000)
                return -EINVAL;
        *msp = (int)v;
        return 0;
}

/* A socket systemd passed (LISTEN_PID is us, LISTEN_FDS >= 1): fd 3. */
static int listen_fd_passed(void)
{
        const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
        int fd = -1, type = 0;
        socklen_t len = sizeof(type);

        if (!pid || !fds || strtol(pid, NULL, 10) != (long)getpid() || strtol(fds, NULL, 10) < 1)
                return -1;
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM)
                fd = 3;
        return fd;
}

static char tag_server, tag_signal;

static int loop(Manager *m, VarlinkServer *server, int sfd, const char *policy_path)
{
        struct epoll_event ev = {.events = EPOLLIN};

        ev.data.ptr = &tag_server;
        if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, varlink_server_fd(server), &ev) < 0)
                return -errno;
        ev.data.ptr = &tag_signal;
        if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, sfd, &ev) < 0)
                return -errno;
        for (;;) {
                struct epoll_event evs[16];
                int timeout = m->backend->tick ? m->backend->tick(m) : -1, n;

                n = epoll_wait(m->epfd, evs, 16, timeout);
                if (n < 0 && errno != EINTR)
                        return -errno;
                for (int i = 0; i < n; i++) {
                        void *tag = evs[i].data.ptr;
                        if (tag == &tag_server) {
                                int r = varlink_server_process(server);
                                if (r < 0)
                                        return r;
                        } else if (tag == &tag_signal) {
                                struct signalfd_siginfo si;
                                if (read(sfd, &si, sizeof(si)) != sizeof(si))
                                        continue;
                                if (si.ssi_signo == SIGHUP) {
                                        Policy *p = NULL;
                                        char err[512];
                                        if (policy_load(policy_path, &p, err, sizeof(err)) < 0) {
                                                mlog(LOG_ERR, NULL,
                                                     "%s: %s; keeping the old policy", policy_path,
                                                     err);
                                        } else {
                                                policy_free(m->policy);
                                                m->policy = p;
                                                mlog(LOG_INFO, NULL, "policy reloaded from %s",
                                                     policy_path);
                                        }
                                        continue;
                                }
                                mlog(LOG_INFO, NULL,
                                     "signal %d: exiting; the pools' services "
                                     "keep running",
                                     (int)si.ssi_signo);
                                return 0;
                        } else if (m->backend->exited) {
                                /* Pools are only freed between epoll_wait calls, by
                                 * methods that first unwatch their pidfd. */
                                m->backend->exited(m, tag);
                        }
                }
        }
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
            {"socket", required_argument, NULL, 's'},
            {"state-dir", required_argument, NULL, 'S'},
            {"runtime-dir", required_argument, NULL, 'R'},
            {"policy", required_argument, NULL, 'P'},
            {"backend", required_argument, NULL, 'B'},
            {"fsd", required_argument, NULL, 'F'},
            {"cgroup-name", required_argument, NULL, 'G'},
            {"start-timeout", required_argument, NULL, 'T'},
            {"stall-timeout", required_argument, NULL, 'X'},
            {"debug", no_argument, NULL, 'd'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {},
        };
        ManagerOptions opt = {
            .state_dir = STATE_DEFAULT,
            .runtime_dir = RUNTIME_DEFAULT,
            .fsd_path = DANAUS_FSD_PATH,
            .cgroup_name = "danaus",
            .backend = "auto",
            .start_timeout_ms = 10000,
        };
        const char *socket_path = SOCKET_DEFAULT, *policy_path = POLICY_DEFAULT_PATH;
        VarlinkServerInfo info = {"Danaus", "danaus-manager", DANAUS_VERSION,
                                  "https://github.com/danaus"};
        VarlinkServer *server = NULL;
        Manager *m = NULL;
        Policy *policy = NULL;
        int stall_ms = 30000, c, r, fd, sfd = -1, ret = 1;
        char err[1024] = "";
        sigset_t set;

        while ((c = getopt_long(argc, argv, "dhV", options, NULL)) != -1) {
                switch (c) {
                case 's':
                        socket_path = optarg;
                        break;
                case 'S':
                        opt.state_dir = optarg;
                        break;
                case 'R':
                        opt.runtime_dir = optarg;
                        break;
                case 'P':
                        policy_path = optarg;
                        break;
                case 'B':
                        opt.backend = optarg;
                        break;
                case 'F':
                        opt.fsd_path = optarg;
                        break;
                case 'G':
                        if (!pool_name_valid(optarg)) {
                                fprintf(stderr,
                                        "danaus-manager: --cgroup-name: \"%s\" is not a "
                                        "plain name\n",
                                        optarg);
                                return 2;
                        }
                        opt.cgroup_name = optarg;
                        break;
                case 'T':
                        if (parse_ms(optarg, &opt.start_timeout_ms) < 0) {
                                fprintf(stderr, "danaus-manager: --start-timeout: not a number "
                                                "of milliseconds\n");
                                return 2;
                        }
                        break;
                case 'X':
                        if (parse_ms(optarg, &stall_ms) < 0) {
                                fprintf(stderr, "danaus-manager: --stall-timeout: not a number "
                                                "of milliseconds\n");
                                return 2;
                        }
                        break;
                case 'd':
                        log_set_debug(true);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("danaus-manager %s\n", DANAUS_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "danaus-manager: unexpected argument \"%s\"\n", argv[optind]);
                return 2;
        }
        mlog_init(true);
        signal(SIGPIPE, SIG_IGN);
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        sigprocmask(SIG_BLOCK, &set, NULL);
        sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0) {
                mlog(LOG_ERR, NULL, "signalfd: %s", strerror(errno));
                return 1;
        }

        r = policy_load(policy_path, &policy, err, sizeof(err));
        if (r < 0) {
                mlog(LOG_ERR, NULL, "%s: %s", policy_path, err);
                goto out;
        }
        r = manager_new(&m, &opt, policy, err, sizeof(err));
        if (r < 0) {
                policy_free(policy);
                mlog(LOG_ERR, NULL, "%s", err[0] ? err : strerror(-r));
                goto out;
        }
        r = varlink_server_new(&server, &info, 0);
        if (r == 0)
                r = manager_add_interface(m, server);
        if (r < 0) {
                mlog(LOG_ERR, NULL, "varlink server: %s", strerror(-r));
                goto out;
        }
        varlink_server_set_stall_timeout(server, stall_ms);
        fd = listen_fd_passed();
        if (fd >= 0) {
                mlog(LOG_INFO, NULL, "listening on the socket systemd passed");
        } else {
                char dir[PATH_MAX];
                snprintf(dir, sizeof(dir), "%s", socket_path);
                if (strrchr(dir, '/') && strrchr(dir, '/') != dir) {
                        *strrchr(dir, '/') = '\0';
                        mkdir_parents(dir, 0755);
                }
                /* Anyone may connect; the policy decides what they may do. */
                fd = varlink_listen_unix(socket_path, 0666);
                if (fd < 0) {
                        mlog(LOG_ERR, NULL, "cannot listen on %s: %s", socket_path, strerror(-fd));
                        goto out;
                }
                mlog(LOG_INFO, NULL, "listening on %s", socket_path);
        }
        r = varlink_server_add_listener(server, fd);
        if (r < 0) {
                close(fd);
                mlog(LOG_ERR, NULL, "varlink server: %s", strerror(-r));
                goto out;
        }
        manager_restore(m);
        mlog(LOG_INFO, NULL, "ready (backend %s)", m->backend->name);
#if HAVE_SYSTEMD
        sd_notify(0, "READY=1");
#endif
        r = loop(m, server, sfd, policy_path);
        if (r < 0)
                mlog(LOG_ERR, NULL, "main loop: %s", strerror(-r));
        else
                ret = 0;
#if HAVE_SYSTEMD
        sd_notify(0, "STOPPING=1");
#endif
out:
        varlink_server_free(server);
        if (m)
                policy_free(m->policy);
        manager_free(m);
        if (sfd >= 0)
                close(sfd);
        return ret;
}
