/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Control Socket: io.danaus.Fsd over varlink, served by one thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "danaus-config.h"
#include "fsd-varlink.h"
#include "util/log.h"
#include "varlink/varlink.h"

#define CONTROL_CONNECTIONS_MAX 64

struct Control {
        VarlinkServer *server;
        FsTable *table;
        char pool[POOL_NAME_MAX + 1];
        char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
        int stop_fd; /* eventfd: written by control_free() */
        pthread_t thread;
        bool running, listening;
        bool made_dir; /* the socket's directory was created here: removed at the end */
        /* counters: only the control thread writes them */
        uint64_t n_add, n_remove, n_status, n_failed;
};

static json_object *mount_error_params(const char *mountpoint, const char *message)
{
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (mountpoint)
                json_object_object_add(o, "mountpoint", json_object_new_string(mountpoint));
        if (message)
                json_object_object_add(o, "message", json_object_new_string(message));
        return o;
}

static int reply_error(Control *c, VarlinkRequest *req, const char *error, const char *mountpoint,
                       const char *message)
{
        json_object *o = mount_error_params(mountpoint, message);
        int r;

        c->n_failed++;
        if (!o)
                return -ENOMEM;
        r = varlink_request_error(req, error, o);
        json_object_put(o);
        return r;
}

/* Changing mounts is for root and our own uid (the manager runs as root). */
static bool peer_may_change(VarlinkRequest *req)
{
        const struct ucred *cred = varlink_request_peer(req);

        return cred && (cred->uid == 0 || cred->uid == geteuid());
}

static int method_add_mount(VarlinkRequest *req, json_object *params, void *userdata)
{
        Control *c = userdata;
        json_object *mo = NULL;
        PoolMount *m = NULL;
        char err[512] = "";
        int r;

        c->n_add++;
        if (!peer_may_change(req))
                return reply_error(c, req, "io.danaus.Fsd.PermissionDenied", NULL,
                                   "only root may change the mounts of a pool");
        json_object_object_get_ex(params, "mount", &mo);
        r = pool_mount_parse(mo, "mount", &m, err, sizeof(err));
        if (r == -EINVAL)
                return reply_error(c, req, "io.danaus.Fsd.InvalidMount", NULL, err);
        if (r < 0)
                return r;
        r = fstable_add(c->table, m, err, sizeof(err));
        if (r < 0) {
                const char *name = r == -EEXIST || r == -EBUSY ? "io.danaus.Fsd.MountExists"
                                                               : "io.danaus.Fsd.MountFailed";

                log_warning("AddMount %s refused: %s", m->mountpoint, err);
                r = reply_error(c, req, name, m->mountpoint, err);
                pool_mount_free(m);
                return r;
        }
        log_info("%s: added through the control socket", m->mountpoint);
        return varlink_request_reply(req, NULL, false);
}

static int method_remove_mount(VarlinkRequest *req, json_object *params, void *userdata)
{
        Control *c = userdata;
        json_object *o;
        const char *mountpoint;
        bool force = false;
        char err[PATH_MAX + 128] = "";
        int r;

        c->n_remove++;
        if (!peer_may_change(req))
                return reply_error(c, req, "io.danaus.Fsd.PermissionDenied", NULL,
                                   "only root may change the mounts of a pool");
        json_object_object_get_ex(params, "mountpoint", &o);
        mountpoint = json_object_get_string(o);
        if (strlen(mountpoint) != (size_t)json_object_get_string_len(o) ||
            strlen(mountpoint) >= PATH_MAX)
                return varlink_request_error_invalid_parameter(req, "mountpoint");
        if (json_object_object_get_ex(params, "force", &o))
                force = json_object_get_boolean(o);
        r = fstable_remove(c->table, mountpoint, force, err, sizeof(err));
        if (r == -ENOENT)
                return reply_error(c, req, "io.danaus.Fsd.NoSuchMount", mountpoint, NULL);
        if (r == -EBUSY)
                return reply_error(c, req, "io.danaus.Fsd.MountBusy", mountpoint, err);
        if (r < 0)
                return reply_error(c, req, "io.danaus.Fsd.MountFailed", mountpoint, err);
        return varlink_request_reply(req, NULL, false);
}

static json_object *branches_to_json(const PoolMount *m)
{
        json_object *arr = json_object_new_array();

        for (size_t i = 0; arr && i < m->n_branches; i++) {
                json_object *b = json_object_new_object();

                if (!b)
                        break;
                json_object_object_add(b, "path", json_object_new_string(m->branches[i].path));
                json_object_object_add(
                    b, "mode", json_object_new_string(m->branches[i].writable ? "rw" : "ro"));
                json_object_array_add(arr, b);
        }
        return arr;
}

static void status_visit(void *userdata, const PoolMount *m, size_t n_nodes,
                         uint64_t n_requests)
{
        json_object *arr = userdata, *o = json_object_new_object();

        if (!o)
                return;
        json_object_object_add(o, "mountpoint", json_object_new_string(m->mountpoint));
        json_object_object_add(o, "branches", branches_to_json(m));
        json_object_object_add(
            o, "copy_up", json_object_new_string(m->copy_up_volatile ? "volatile" : "durable"));
        json_object_object_add(o, "read_only", json_object_new_boolean(pool_mount_read_only(m)));
        json_object_object_add(o, "nodes", json_object_new_int64((int64_t)n_nodes));
        json_object_object_add(o, "fuse_requests", json_object_new_int64((int64_t)n_requests));
        json_object_array_add(arr, o);
}

static int method_get_status(VarlinkRequest *req, json_object *params, void *userdata)
{
        Control *c = userdata;
        json_object *o = json_object_new_object(), *mounts = json_object_new_array(),
                    *reqs = json_object_new_object();
        int r;

        c->n_status++;
        if (!o || !mounts || !reqs) {
                json_object_put(o);
                json_object_put(mounts);
                json_object_put(reqs);
                return -ENOMEM;
        }
        fstable_foreach(c->table, status_visit, mounts);
        json_object_object_add(reqs, "add_mount", json_object_new_int64((int64_t)c->n_add));
        json_object_object_add(reqs, "remove_mount", json_object_new_int64((int64_t)c->n_remove));
        json_object_object_add(reqs, "get_status", json_object_new_int64((int64_t)c->n_status));
        json_object_object_add(reqs, "failed", json_object_new_int64((int64_t)c->n_failed));
        json_object_object_add(o, "pool", json_object_new_string(c->pool));
        json_object_object_add(o, "pid", json_object_new_int64(getpid()));
        json_object_object_add(o, "mounts", mounts);
        json_object_object_add(o, "requests", reqs);
        r = varlink_request_reply(req, o, false);
        json_object_put(o);
        return r;
}

static const VarlinkField add_mount_in[] = {
    {"mount", VARLINK_TYPE_OBJECT, true},
    {NULL},
};
static const VarlinkField remove_mount_in[] = {
    {"mountpoint", VARLINK_TYPE_STRING, true},
    {"force", VARLINK_TYPE_BOOL, false},
    {NULL},
};
static const VarlinkMethod fsd_methods[] = {
    {"AddMount", method_add_mount, add_mount_in},
    {"RemoveMount", method_remove_mount, remove_mount_in},
    {"GetStatus", method_get_status, NULL},
    {NULL},
};

static void *control_serve(void *userdata)
{
        Control *c = userdata;
        struct pollfd fds[2] = {
            {.fd = varlink_server_fd(c->server), .events = POLLIN},
            {.fd = c->stop_fd, .events = POLLIN},
        };

        for (;;) {
                int r = poll(fds, 2, -1);

                if (r < 0 && errno != EINTR) {
                        log_error("control socket: poll: %m");
                        break;
                }
                if (fds[1].revents)
                        break;
                if (r > 0 && fds[0].revents) {
                        r = varlink_server_process(c->server);
                        if (r < 0) {
                                log_error("control socket: %s", strerror(-r));
                                break;
                        }
                }
        }
        return NULL;
}

/* mkdir -p for the socket's directory; 1 when its last component was
 * created here, 0 when it existed. */
static int mkdir_parents_of(const char *path)
{
        char dir[PATH_MAX];
        int made = 0;

        if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
                return -ENAMETOOLONG;
        for (char *s = dir + 1; (s = strchr(s, '/')); s++) {
                *s = '\0';
                made = mkdir(dir, 0755) == 0;
                if (!made && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        return made;
}

/* True when something accepts connections at path. */
static bool socket_alive(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd, r;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        return r == 0;
}

int control_new(Control **controlp, const char *path, const char *pool, FsTable *table, char *err,
                size_t n_err)
{
        static const VarlinkServerInfo info = {
            .vendor = "Danaus",
            .product = "danaus-fsd",
            .version = DANAUS_VERSION,
            .url = "https://github.com/danaus",
        };
        sigset_t all, old;
        Control *c;
        int fd, r;

        if (strlen(path) >= sizeof(c->path) || path[0] != '/') {
                snprintf(err, n_err, "%s: must be an absolute path under %zu bytes", path,
                         sizeof(c->path));
                return -EINVAL;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->stop_fd = -1;
        c->table = table;
        snprintf(c->pool, sizeof(c->pool), "%s", pool);
        snprintf(c->path, sizeof(c->path), "%s", path);
        r = mkdir_parents_of(path);
        c->made_dir = r > 0;
        if (r < 0) {
                snprintf(err, n_err, "%s: cannot create its directory: %s", path, strerror(-r));
                goto fail;
        }
        if (socket_alive(path)) {
                snprintf(err, n_err, "%s: another service answers there", path);
                r = -EADDRINUSE;
                goto fail;
        }
        r = varlink_server_new(&c->server, &info, CONTROL_CONNECTIONS_MAX);
        if (r >= 0)
                r = varlink_server_add_interface(c->server, "io.danaus.Fsd",
                                                 fsd_varlink_description, fsd_methods, c);
        if (r < 0) {
                snprintf(err, n_err, "cannot set up the varlink server: %s", strerror(-r));
                goto fail;
        }
        /* Everyone may connect (GetStatus); changes are checked per call. */
        fd = varlink_listen_unix(path, 0666);
        if (fd < 0) {
                r = fd;
                snprintf(err, n_err, "%s: cannot listen: %s", path, strerror(-r));
                goto fail;
        }
        c->listening = true;
        r = varlink_server_add_listener(c->server, fd);
        if (r < 0) {
                close(fd);
                snprintf(err, n_err, "%s: %s", path, strerror(-r));
                goto fail;
        }
        c->stop_fd = eventfd(0, EFD_CLOEXEC);
        if (c->stop_fd < 0) {
                r = -errno;
                snprintf(err, n_err, "eventfd: %s", strerror(-r));
                goto fail;
        }
        /* No signal is ever delivered to this thread: main takes them. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&c->thread, NULL, control_serve, c);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                snprintf(err, n_err, "cannot start the control thread: %s", strerror(-r));
                goto fail;
        }
        c->running = true;
        *controlp = c;
        return 0;
fail:
        control_free(c);
        return r;
}

Control *control_free(Control *c)
{
        if (!c)
                return NULL;
        if (c->running) {
                uint64_t one = 1;

                (void)!write(c->stop_fd, &one, sizeof(one));
                pthread_join(c->thread, NULL);
        }
        c->server = varlink_server_free(c->server);
        if (c->listening)
                unlink(c->path);
        if (c->made_dir) {
                /* "/run/danaus/pools/POOL" of "/run/danaus/pools/POOL/fsd.sock";
                 * left alone when something else was put there meanwhile */
                char *slash = strrchr(c->path, '/');

                if (slash && slash != c->path) {
                        *slash = '\0';
                        rmdir(c->path);
                }
        }
        if (c->stop_fd >= 0)
                close(c->stop_fd);
        free(c);
        return NULL;
}
