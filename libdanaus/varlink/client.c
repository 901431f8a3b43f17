/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Varlink Client: blocking calls with a deadline, over a VarlinkConn.
 *
 * The socket stays non-blocking; the client polls until the whole call is
 * written and a whole reply is read, or the deadline passes. A server that
 * sends garbage or an oversized reply is a protocol error, never a crash.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "varlink/varlink.h"

struct VarlinkClient {
        VarlinkConn *conn;
};

int varlink_client_new(VarlinkClient **clientp, int fd)
{
        VarlinkClient *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        r = varlink_conn_new(&c->conn, fd, 0);
        if (r < 0) {
                free(c);
                return r;
        }
        *clientp = c;
        return 0;
}

int varlink_client_connect(VarlinkClient **clientp, const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd, r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        r = varlink_client_new(clientp, fd);
        if (r < 0)
                close(fd);
        return r;
}

VarlinkClient *varlink_client_free(VarlinkClient *c)
{
        if (!c)
                return NULL;
        varlink_conn_free(c->conn);
        free(c);
        return NULL;
}

static int64_t deadline_of(int timeout_ms)
{
        struct timespec ts;

        if (timeout_ms < 0)
                return -1;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
}

/* Waits for events until the deadline; -ETIMEDOUT when it passed. */
static int wait_for(VarlinkClient *c, short events, int64_t deadline)
{
        struct pollfd pfd = {.fd = varlink_conn_fd(c->conn), .events = events};
        int timeout = -1, n;

        if (deadline >= 0) {
                struct timespec ts;
                int64_t now;

                clock_gettime(CLOCK_MONOTONIC, &ts);
                now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
                if (now >= deadline)
                        return -ETIMEDOUT;
                timeout = (int)(deadline - now);
        }
        n = poll(&pfd, 1, timeout);
        if (n < 0)
                return errno == EINTR ? 0 : -errno;
        if (n == 0)
                return -ETIMEDOUT;
        return 0;
}

static int read_reply(VarlinkClient *c, int64_t deadline, VarlinkReply *reply)
{
        const char *msg;
        size_t n;
        int r;

        for (;;) {
                if (varlink_conn_next(c->conn, &msg, &n) > 0)
                        return varlink_reply_parse(msg, n, reply);
                r = varlink_conn_fill(c->conn);
                if (r < 0 || r > 1)
                        return r == VARLINK_E_EOF ? -ECONNRESET : r;
                if (r == 1)
                        continue;
                r = wait_for(c, POLLIN, deadline);
                if (r < 0)
                        return r;
        }
}

int varlink_client_call(VarlinkClient *c, const char *method, struct json_object *parameters,
                        unsigned flags, int timeout_ms, VarlinkReply *reply)
{
        int64_t deadline = deadline_of(timeout_ms);
        char *buf = NULL;
        size_t n = 0;
        int r;

        *reply = (VarlinkReply){0};
        r = varlink_encode_call(method, parameters, flags, &buf, &n);
        if (r < 0)
                return r;
        r = varlink_conn_queue(c->conn, buf, n);
        free(buf);
        if (r < 0)
                return r;
        for (;;) {
                r = varlink_conn_flush(c->conn);
                if (r < 0)
                        return r == -EPIPE ? -ECONNRESET : r;
                if (r == 1)
                        break;
                r = wait_for(c, POLLOUT, deadline);
                if (r < 0)
                        return r;
        }
        if (flags & VARLINK_CALL_ONEWAY)
                return 0;
        return read_reply(c, deadline, reply);
}

int varlink_client_read_reply(VarlinkClient *c, int timeout_ms, VarlinkReply *reply)
{
        *reply = (VarlinkReply){0};
        return read_reply(c, deadline_of(timeout_ms), reply);
}
