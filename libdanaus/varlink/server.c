/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Varlink Server: listeners, peers and the method tables behind one epoll fd.
 *
 * Invariants that keep one peer from hurting the others:
 *  - every socket is non-blocking and each wake-up does bounded work per
 *    peer (one read of at most one message buffer, the calls it completed);
 *  - a peer whose replies are not read stops being read (no unbounded output
 *    queue), and one that stays in the middle of a message or with unsent
 *    replies past the stall timeout is dropped by a once-a-second sweep;
 *  - a protocol violation (malformed JSON, oversized message, wrong keys)
 *    drops that peer only; the number of peers is bounded, per uid too;
 *  - parameters are checked against the method's table before its handler.
 * Peers dropped while a batch of epoll events is handled are freed at the end
 * of the batch, so a later event of the same batch never sees freed memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "varlink/varlink.h"

#define SERVICE_INTERFACE    "org.varlink.service"
#define MAX_CONNECTIONS_DFLT 256
#define STALL_TIMEOUT_DFLT   30000
#define MAX_LISTENERS        8
#define MAX_INTERFACES       8

static const char service_description[] =
    "# The Varlink Service Interface is provided by every varlink service. It\n"
    "# describes the service and the interfaces it implements.\n"
    "interface org.varlink.service\n"
    "\n"
    "# Get a list of all the interfaces a service provides and information\n"
    "# about the implementation.\n"
    "method GetInfo() -> (\n"
    "  vendor: string,\n"
    "  product: string,\n"
    "  version: string,\n"
    "  url: string,\n"
    "  interfaces: []string\n"
    ")\n"
    "\n"
    "# Get the description of an interface that is implemented by this service.\n"
    "method GetInterfaceDescription(interface: string) -> (description: string)\n"
    "\n"
    "# The requested interface was not found.\n"
    "error InterfaceNotFound (interface: string)\n"
    "\n"
    "# The requested method was not found\n"
    "error MethodNotFound (method: string)\n"
    "\n"
    "# The interface defines the requested method, but the service does not\n"
    "# implement it.\n"
    "error MethodNotImplemented (method: string)\n"
    "\n"
    "# One of the passed parameters is invalid.\n"
    "error InvalidParameter (parameter: string)\n"
    "\n"
    "# Client is denied access\n"
    "error PermissionDenied ()\n"
    "\n"
    "# Method is expected to be called with 'more' set to true, but wasn't\n"
    "error ExpectedMore ()\n";

typedef enum SourceType {
        SOURCE_LISTENER,
        SOURCE_PEER,
        SOURCE_TIMER,
} SourceType;

typedef struct Source {
        SourceType type;
} Source;

typedef struct Listener {
        Source source;
        int fd;
} Listener;

typedef struct Peer Peer;
struct Peer {
        Source source;
        VarlinkServer *server;
        VarlinkConn *conn;
        Peer *prev, *next;
        uint32_t events;  /* registered with epoll */
        uint64_t busy_ms; /* since when mid-message or with unsent output; 0: idle */
        bool dead;
};

typedef struct Interface {
        const char *name, *description;
        const VarlinkMethod *methods;
        void *userdata;
} Interface;

struct VarlinkServer {
        char *vendor, *product, *version, *url;
        int epfd;
        Source timer_source;
        int timerfd;
        Interface ifaces[MAX_INTERFACES];
        size_t n_ifaces;
        Listener listeners[MAX_LISTENERS];
        size_t n_listeners;
        Peer *peers, *graveyard;
        unsigned n_peers, max_peers;
        int stall_ms;
};

struct VarlinkRequest {
        VarlinkServer *server;
        Peer *peer;
        const VarlinkCall *call;
        const Interface *iface;
        bool done;     /* the final answer was given */
        int queue_err; /* the answer could not be queued: drop the peer */
};

static uint64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int varlink_server_new(VarlinkServer **serverp, const VarlinkServerInfo *info,
                       unsigned max_connections)
{
        struct itimerspec its = {.it_interval = {1, 0}, .it_value = {1, 0}};
        struct epoll_event ev = {.events = EPOLLIN};
        VarlinkServer *s;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->epfd = s->timerfd = -1;
        s->vendor = strdup(info->vendor ? info->vendor : "");
        s->product = strdup(info->product ? info->product : "");
        s->version = strdup(info->version ? info->version : "");
        s->url = strdup(info->url ? info->url : "");
        s->max_peers = max_connections ? max_connections : MAX_CONNECTIONS_DFLT;
        s->stall_ms = STALL_TIMEOUT_DFLT;
        s->timer_source.type = SOURCE_TIMER;
        if (!s->vendor || !s->product || !s->version || !s->url)
                goto fail_nomem;
        s->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (s->epfd < 0)
                goto fail;
        s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (s->timerfd < 0 || timerfd_settime(s->timerfd, 0, &its, NULL) < 0)
                goto fail;
        ev.data.ptr = &s->timer_source;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->timerfd, &ev) < 0)
                goto fail;
        *serverp = s;
        return 0;
fail : {
        int r = -errno;
        varlink_server_free(s);
        return r;
}
fail_nomem:
        varlink_server_free(s);
        return -ENOMEM;
}

static void peer_free(Peer *p)
{
        varlink_conn_free(p->conn);
        free(p);
}

static void reap(VarlinkServer *s)
{
        while (s->graveyard) {
                Peer *p = s->graveyard;
                s->graveyard = p->next;
                peer_free(p);
        }
}

VarlinkServer *varlink_server_free(VarlinkServer *s)
{
        if (!s)
                return NULL;
        while (s->peers) {
                Peer *p = s->peers;
                s->peers = p->next;
                peer_free(p);
        }
        reap(s);
        for (size_t i = 0; i < s->n_listeners; i++)
                close(s->listeners[i].fd);
        if (s->timerfd >= 0)
                close(s->timerfd);
        if (s->epfd >= 0)
                close(s->epfd);
        free(s->vendor);
        free(s->product);
        free(s->version);
        free(s->url);
        free(s);
        return NULL;
}

int varlink_server_add_interface(VarlinkServer *s, const char *name, const char *description,
                                 const VarlinkMethod *methods, void *userdata)
{
        char head[VARLINK_NAME_MAX + 16];
        const char *d = description;

        if (!varlink_interface_name_valid(name) || strcmp(name, SERVICE_INTERFACE) == 0)
                return -EINVAL;
        /* The description names the interface (after leading comments). */
        while (*d == '#' || *d == '\n' || *d == ' ') {
                if (*d == '#')
                        d += strcspn(d, "\n");
                else
                        d++;
        }
        snprintf(head, sizeof(head), "interface %s\n", name);
        if (strncmp(d, head, strlen(head)) != 0)
                return -EINVAL;
        if (s->n_ifaces >= MAX_INTERFACES)
                return -ENOSPC;
        for (size_t i = 0; i < s->n_ifaces; i++)
                if (strcmp(s->ifaces[i].name, name) == 0)
                        return -EEXIST;
        s->ifaces[s->n_ifaces++] = (Interface){name, description, methods, userdata};
        return 0;
}

int varlink_server_add_listener(VarlinkServer *s, int fd)
{
        struct epoll_event ev = {.events = EPOLLIN};
        Listener *l;
        int flags;

        if (s->n_listeners >= MAX_LISTENERS)
                return -ENOSPC;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        l = &s->listeners[s->n_listeners];
        l->source.type = SOURCE_LISTENER;
        l->fd = fd;
        ev.data.ptr = &l->source;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        s->n_listeners++;
        return 0;
}

int varlink_listen_unix(const char *path, mode_t mode)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd, r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* Only a socket may be replaced: never unlink a file someone put there. */
        {
                struct stat st;
                if (lstat(path, &st) == 0) {
                        if (!S_ISSOCK(st.st_mode)) {
                                close(fd);
                                return -EEXIST;
                        }
                        unlink(path);
                }
        }
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, mode) < 0 ||
            listen(fd, 64) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int varlink_server_fd(const VarlinkServer *s)
{
        return s->epfd;
}

void varlink_server_set_stall_timeout(VarlinkServer *s, int timeout_ms)
{
        s->stall_ms = timeout_ms;
}

unsigned varlink_server_n_connections(const VarlinkServer *s)
{
        return s->n_peers;
}

static void peer_drop(Peer *p)
{
        VarlinkServer *s = p->server;

        if (p->dead)
                return;
        p->dead = true;
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, varlink_conn_fd(p->conn), NULL);
        if (p->prev)
                p->prev->next = p->next;
        else
                s->peers = p->next;
        if (p->next)
                p->next->prev = p->prev;
        p->prev = NULL;
        p->next = s->graveyard;
        s->graveyard = p;
        s->n_peers--;
}

static void accept_peers(VarlinkServer *s, Listener *l)
{
        /* A bounded number per wake-up: a connect storm cannot starve peers. */
        for (int i = 0; i < 16; i++) {
                struct epoll_event ev = {.events = EPOLLIN};
                VarlinkConn *conn = NULL;
                unsigned same_uid = 0;
                Peer *p;
                int fd;

                fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                        return;
                if (varlink_conn_new(&conn, fd, 0) < 0) {
                        close(fd);
                        continue;
                }
                /* One uid other than root may hold a quarter of the slots. */
                for (Peer *q = s->peers; q; q = q->next)
                        if (varlink_conn_peer(q->conn)->uid == varlink_conn_peer(conn)->uid)
                                same_uid++;
                if (s->n_peers >= s->max_peers ||
                    (varlink_conn_peer(conn)->uid != 0 &&
                     same_uid >= (s->max_peers / 4 ? s->max_peers / 4 : 1))) {
                        varlink_conn_free(conn);
                        continue;
                }
                p = calloc(1, sizeof(*p));
                if (!p) {
                        varlink_conn_free(conn);
                        continue;
                }
                p->source.type = SOURCE_PEER;
                p->server = s;
                p->conn = conn;
                p->events = EPOLLIN;
                ev.data.ptr = &p->source;
                if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        peer_free(p);
                        continue;
                }
                p->next = s->peers;
                if (s->peers)
                        s->peers->prev = p;
                s->peers = p;
                s->n_peers++;
        }
}

/* ---- answers ----------------------------------------------------------------- */

static int send_encoded(VarlinkRequest *req, int r, char *buf, size_t n)
{
        if (r < 0)
                return r;
        r = varlink_conn_queue(req->peer->conn, buf, n);
        free(buf);
        if (r < 0)
                req->queue_err = r;
        return r;
}

const struct ucred *varlink_request_peer(const VarlinkRequest *req)
{
        return varlink_conn_peer(req->peer->conn);
}

bool varlink_request_wants_more(const VarlinkRequest *req)
{
        return req->call->more;
}

bool varlink_request_oneway(const VarlinkRequest *req)
{
        return req->call->oneway;
}

const char *varlink_request_method(const VarlinkRequest *req)
{
        return req->call->method;
}

int varlink_request_reply(VarlinkRequest *req, struct json_object *parameters, bool continues)
{
        char *buf = NULL;
        size_t n = 0;
        int r;

        if (req->done)
                return -EALREADY;
        if (continues && !req->call->more)
                return -EINVAL;
        if (!continues)
                req->done = true;
        if (req->call->oneway)
                return 0;
        r = varlink_encode_reply(parameters, continues, &buf, &n);
        return send_encoded(req, r, buf, n);
}

int varlink_request_error(VarlinkRequest *req, const char *error, struct json_object *parameters)
{
        char *buf = NULL;
        size_t n = 0;
        int r;

        if (req->done)
                return -EALREADY;
        req->done = true;
        if (req->call->oneway)
                return 0;
        r = varlink_encode_error(error, parameters, &buf, &n);
        return send_encoded(req, r, buf, n);
}

/* error with one string parameter */
static int error_str(VarlinkRequest *req, const char *error, const char *key, const char *val)
{
        struct json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, key, json_object_new_string(val));
        r = varlink_request_error(req, error, o);
        json_object_put(o);
        return r;
}

int varlink_request_error_invalid_parameter(VarlinkRequest *req, const char *parameter)
{
        return error_str(req, VARLINK_ERROR_INVALID_PARAMETER, "parameter", parameter);
}

/* ---- dispatch ---------------------------------------------------------------- */

static bool type_matches(struct json_object *v, VarlinkType t)
{
        switch (t) {
        case VARLINK_TYPE_STRING:
                return json_object_is_type(v, json_type_string);
        case VARLINK_TYPE_INT:
                return json_object_is_type(v, json_type_int);
        case VARLINK_TYPE_BOOL:
                return json_object_is_type(v, json_type_boolean);
        case VARLINK_TYPE_FLOAT:
                return json_object_is_type(v, json_type_double) ||
                       json_object_is_type(v, json_type_int);
        case VARLINK_TYPE_OBJECT:
                return json_object_is_type(v, json_type_object);
        case VARLINK_TYPE_ARRAY:
                return json_object_is_type(v, json_type_array);
        }
        return false;
}

/* NULL when the parameters fit the table, else the offending key. */
static const char *check_parameters(const VarlinkField *in, struct json_object *params)
{
        json_object_object_foreach(params, key, val)
        {
                const VarlinkField *f = NULL;

                for (const VarlinkField *i = in; i && i->name; i++)
                        if (strcmp(i->name, key) == 0)
                                f = i;
                if (!f)
                        return key;
                if (json_object_is_type(val, json_type_null) && !f->required)
                        continue;
                if (!type_matches(val, f->type))
                        return key;
        }
        for (const VarlinkField *i = in; i && i->name; i++) {
                struct json_object *v;
                if (i->required && (!json_object_object_get_ex(params, i->name, &v) ||
                                    json_object_is_type(v, json_type_null)))
                        return i->name;
        }
        return NULL;
}

static int service_method(VarlinkRequest *req, const char *method, struct json_object *params)
{
        VarlinkServer *s = req->server;
        struct json_object *o, *a, *v;
        int r;

        if (strcmp(method, "GetInfo") == 0) {
                const char *bad = check_parameters(NULL, params);

                if (bad)
                        return varlink_request_error_invalid_parameter(req, bad);
                o = json_object_new_object();
                a = json_object_new_array();
                if (!o || !a) {
                        json_object_put(o);
                        json_object_put(a);
                        return -ENOMEM;
                }
                json_object_object_add(o, "vendor", json_object_new_string(s->vendor));
                json_object_object_add(o, "product", json_object_new_string(s->product));
                json_object_object_add(o, "version", json_object_new_string(s->version));
                json_object_object_add(o, "url", json_object_new_string(s->url));
                json_object_array_add(a, json_object_new_string(SERVICE_INTERFACE));
                for (size_t i = 0; i < s->n_ifaces; i++)
                        json_object_array_add(a, json_object_new_string(s->ifaces[i].name));
                json_object_object_add(o, "interfaces", a);
                r = varlink_request_reply(req, o, false);
                json_object_put(o);
                return r;
        }
        if (strcmp(method, "GetInterfaceDescription") == 0) {
                static const VarlinkField in[] = {{"interface", VARLINK_TYPE_STRING, true}, {0}};
                const char *bad = check_parameters(in, params), *name, *desc = NULL;

                if (bad)
                        return varlink_request_error_invalid_parameter(req, bad);
                json_object_object_get_ex(params, "interface", &v);
                name = json_object_get_string(v);
                if (strcmp(name, SERVICE_INTERFACE) == 0)
                        desc = service_description;
                for (size_t i = 0; i < s->n_ifaces; i++)
                        if (strcmp(s->ifaces[i].name, name) == 0)
                                desc = s->ifaces[i].description;
                if (!desc)
                        return error_str(req, VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", name);
                o = json_object_new_object();
                if (!o)
                        return -ENOMEM;
                json_object_object_add(o, "description", json_object_new_string(desc));
                r = varlink_request_reply(req, o, false);
                json_object_put(o);
                return r;
        }
        return error_str(req, VARLINK_ERROR_METHOD_NOT_FOUND, "method", req->call->method);
}

/* Returns 0, or non-zero when the peer must be dropped. */
static int dispatch(Peer *p, const char *msg, size_t n)
{
        VarlinkServer *s = p->server;
        VarlinkCall call;
        VarlinkRequest req = {.server = s, .peer = p, .call = &call};
        const VarlinkMethod *m = NULL;
        char iface[VARLINK_NAME_MAX];
        const char *dot, *member, *bad;
        int r;

        r = varlink_call_parse(msg, n, &call);
        if (r != 0)
                return r;
        dot = strrchr(call.method, '.');
        memcpy(iface, call.method, (size_t)(dot - call.method));
        iface[dot - call.method] = '\0';
        member = dot + 1;

        if (call.upgrade) {
                r = error_str(&req, VARLINK_ERROR_METHOD_NOT_IMPLEMENTED, "method", call.method);
        } else if (strcmp(iface, SERVICE_INTERFACE) == 0) {
                r = service_method(&req, member, call.parameters);
        } else {
                for (size_t i = 0; i < s->n_ifaces && !req.iface; i++)
                        if (strcmp(s->ifaces[i].name, iface) == 0)
                                req.iface = &s->ifaces[i];
                if (req.iface)
                        for (const VarlinkMethod *i = req.iface->methods; i && i->name; i++)
                                if (strcmp(i->name, member) == 0)
                                        m = i;
                if (!req.iface)
                        r = error_str(&req, VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", iface);
                else if (!m)
                        r = error_str(&req, VARLINK_ERROR_METHOD_NOT_FOUND, "method", call.method);
                else if (!m->fn)
                        r = error_str(&req, VARLINK_ERROR_METHOD_NOT_IMPLEMENTED, "method",
                                      call.method);
                else if ((bad = check_parameters(m->in, call.parameters)))
                        r = varlink_request_error_invalid_parameter(&req, bad);
                else
                        r = m->fn(&req, call.parameters, req.iface->userdata);
        }
        if (!req.done && !req.queue_err) {
                /* A handler that failed, or forgot to answer. */
                char name[VARLINK_NAME_MAX + 32];

                snprintf(name, sizeof(name), "%s.InternalError",
                         req.iface ? req.iface->name : iface);
                error_str(&req, name, "message", strerror(r < 0 ? -r : EPROTO));
        }
        varlink_call_clear(&call);
        return req.queue_err;
}

/* ---- the loop ---------------------------------------------------------------- */

static void peer_update(Peer *p)
{
        VarlinkServer *s = p->server;
        uint32_t events;
        bool busy;

        if (p->dead)
                return;
        /* While replies wait, the peer's further calls wait too. */
        events = varlink_conn_wants_write(p->conn) ? EPOLLOUT : EPOLLIN;
        if (events != p->events) {
                struct epoll_event ev = {.events = events, .data.ptr = &p->source};
                if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, varlink_conn_fd(p->conn), &ev) < 0) {
                        peer_drop(p);
                        return;
                }
                p->events = events;
        }
        busy = varlink_conn_wants_write(p->conn) || varlink_conn_pending_input(p->conn);
        if (!busy)
                p->busy_ms = 0;
        else if (!p->busy_ms)
                p->busy_ms = now_ms();
}

static void peer_process(Peer *p)
{
        const char *msg;
        size_t n;
        int r, filled = 0;

        for (;;) {
                r = varlink_conn_flush(p->conn);
                if (r < 0)
                        goto drop;
                if (r == 0)
                        break; /* replies still queued: read no more calls */
                r = varlink_conn_next(p->conn, &msg, &n);
                if (r > 0) {
                        if (dispatch(p, msg, n) != 0)
                                goto drop;
                        continue;
                }
                if (filled)
                        break;
                /* One read per wake-up. */
                filled = 1;
                r = varlink_conn_fill(p->conn);
                if (r < 0 || r > 1)
                        goto drop;
                if (r == 0)
                        break;
        }
        peer_update(p);
        return;
drop:
        peer_drop(p);
}

static void sweep(VarlinkServer *s)
{
        uint64_t expire, now = now_ms();
        Peer *next;

        if (s->stall_ms <= 0)
                return;
        expire = (uint64_t)s->stall_ms;
        for (Peer *p = s->peers; p; p = next) {
                next = p->next;
                if (p->busy_ms && now - p->busy_ms >= expire)
                        peer_drop(p);
        }
}

int varlink_server_process(VarlinkServer *s)
{
        struct epoll_event evs[32];
        int n;

        n = epoll_wait(s->epfd, evs, 32, 0);
        if (n < 0)
                return errno == EINTR ? 0 : -errno;
        for (int i = 0; i < n; i++) {
                Source *src = evs[i].data.ptr;

                switch (src->type) {
                case SOURCE_LISTENER:
                        accept_peers(s, (Listener *)src);
                        break;
                case SOURCE_TIMER: {
                        uint64_t ticks;
                        (void)!read(s->timerfd, &ticks, sizeof(ticks));
                        sweep(s);
                        break;
                }
                case SOURCE_PEER: {
                        Peer *p = (Peer *)src;
                        if (!p->dead)
                                peer_process(p);
                        break;
                }
                }
        }
        reap(s);
        return 0;
}

int varlink_server_run_once(VarlinkServer *s, int timeout_ms)
{
        /* An epoll fd polls readable while any of its sources is ready. */
        struct pollfd pfd = {.fd = s->epfd, .events = POLLIN};

        if (poll(&pfd, 1, timeout_ms) < 0)
                return -errno;
        return varlink_server_process(s);
}
