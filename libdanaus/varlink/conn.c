/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Varlink Connection: a non-blocking, buffered unix stream socket that hands
 * out whole NUL-terminated messages.
 *
 * Input: bytes accumulate in one buffer that never grows past max_message;
 * [in_start, in_end) is unconsumed, [in_start, in_scan) is known to hold no
 * NUL. A message is whole when a NUL is found; a run of max_message bytes
 * without one is VARLINK_E_TOO_LARGE. One fill reads at most one buffer's
 * worth, so a fast peer cannot monopolise the caller's loop.
 * Output: encoded messages are appended to a queue bounded at 4 messages'
 * worth; a peer that does not read its replies gets -ENOBUFS, not our memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "varlink/varlink.h"

struct VarlinkConn {
        int fd;
        struct ucred peer;
        size_t max_message;
        char *in;
        size_t in_size, in_start, in_scan, in_end;
        bool eof;
        char *out;
        size_t out_size, out_start, out_end;
};

int varlink_conn_new(VarlinkConn **connp, int fd, size_t max_message)
{
        VarlinkConn *c;
        socklen_t len = sizeof(c->peer);
        int flags;

        if (fd < 0)
                return -EBADF;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = fd;
        c->max_message = max_message ? max_message : VARLINK_MESSAGE_MAX;
        if (c->max_message < 2)
                c->max_message = 2;
        c->peer = (struct ucred){.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->peer, &len) < 0)
                c->peer = (struct ucred){.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
                int r = -errno;
                free(c);
                return r;
        }
        *connp = c;
        return 0;
}

VarlinkConn *varlink_conn_free(VarlinkConn *c)
{
        if (!c)
                return NULL;
        if (c->fd >= 0)
                close(c->fd);
        free(c->in);
        free(c->out);
        free(c);
        return NULL;
}

int varlink_conn_fd(const VarlinkConn *c)
{
        return c->fd;
}

const struct ucred *varlink_conn_peer(const VarlinkConn *c)
{
        return &c->peer;
}

static bool has_message(VarlinkConn *c)
{
        char *nul;

        if (c->in_scan < c->in_end) {
                nul = memchr(c->in + c->in_scan, '\0', c->in_end - c->in_scan);
                if (nul)
                        return true;
                c->in_scan = c->in_end;
        }
        return false;
}

int varlink_conn_fill(VarlinkConn *c)
{
        ssize_t n;

        if (has_message(c))
                return 1;
        if (c->in_end - c->in_start >= c->max_message)
                return VARLINK_E_TOO_LARGE;
        if (c->eof)
                return c->in_end > c->in_start ? VARLINK_E_EOF : -ECONNRESET;
        /* Move the unconsumed part to the front, then read into the rest. */
        if (c->in_start > 0) {
                memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
                c->in_end -= c->in_start;
                c->in_scan -= c->in_start;
                c->in_start = 0;
        }
        if (!c->in) {
                /* Start small; grow to max_message only for a large message. */
                c->in_size = c->max_message < 4096 ? c->max_message : 4096;
                c->in = malloc(c->in_size);
                if (!c->in)
                        return -ENOMEM;
        } else if (c->in_end == c->in_size) {
                size_t size = c->in_size * 2 < c->max_message ? c->in_size * 2 : c->max_message;
                char *in = realloc(c->in, size);
                if (!in)
                        return -ENOMEM;
                c->in = in;
                c->in_size = size;
        }
        n = recv(c->fd, c->in + c->in_end, c->in_size - c->in_end, MSG_DONTWAIT);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                return -errno;
        }
        if (n == 0) {
                c->eof = true;
                return c->in_end > c->in_start ? VARLINK_E_EOF : -ECONNRESET;
        }
        c->in_end += (size_t)n;
        if (has_message(c))
                return 1;
        if (c->in_end - c->in_start >= c->max_message)
                return VARLINK_E_TOO_LARGE;
        return 0;
}

int varlink_conn_next(VarlinkConn *c, const char **msgp, size_t *np)
{
        char *nul;

        if (!has_message(c))
                return 0;
        nul = memchr(c->in + c->in_scan, '\0', c->in_end - c->in_scan);
        *msgp = c->in + c->in_start;
        *np = (size_t)(nul - (c->in + c->in_start));
        c->in_start = c->in_scan = (size_t)(nul - c->in) + 1;
        return 1;
}

int varlink_conn_queue(VarlinkConn *c, const char *buf, size_t n)
{
        size_t pending = c->out_end - c->out_start, limit = 4 * c->max_message;

        if (n == 0 || buf[n - 1] != '\0')
                return -EINVAL;
        if (n > limit - pending || pending > limit)
                return -ENOBUFS;
        if (c->out_start > 0 && c->out_end + n > c->out_size) {
                memmove(c->out, c->out + c->out_start, pending);
                c->out_start = 0;
                c->out_end = pending;
        }
        if (c->out_end + n > c->out_size) {
                size_t size = c->out_size ? c->out_size : 4096;
                char *out;

                while (size < c->out_end + n)
                        size *= 2;
                out = realloc(c->out, size);
                if (!out)
                        return -ENOMEM;
                c->out = out;
                c->out_size = size;
        }
        memcpy(c->out + c->out_end, buf, n);
        c->out_end += n;
        return 0;
}

int varlink_conn_flush(VarlinkConn *c)
{
        while (c->out_start < c->out_end) {
                ssize_t n = send(c->fd, c->out + c->out_start, c->out_end - c->out_start,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                c->out_start += (size_t)n;
        }
        c->out_start = c->out_end = 0;
        return 1;
}

bool varlink_conn_wants_write(const VarlinkConn *c)
{
        return c->out_end > c->out_start;
}

bool varlink_conn_pending_input(const VarlinkConn *c)
{
        return c->in_end > c->in_start;
}
