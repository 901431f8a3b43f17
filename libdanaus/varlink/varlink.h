/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/*
 * Varlink (https://varlink.org): one JSON object per message, each message
 * ended by a NUL byte, on a unix stream socket. Replies come in call order.
 *
 *   call   {"method":"iface.Method","parameters":{...},"oneway":b,"more":b}
 *   reply  {"parameters":{...},"continues":b}
 *   error  {"error":"iface.ErrorName","parameters":{...}}
 *
 * Three layers, all on json-c:
 *  - the message codec (varlink_call_parse, varlink_reply_parse, the
 *    encoders): strict, bounded, never trusts its input;
 *  - VarlinkConn: a non-blocking buffered connection that reads incrementally
 *    and hands out whole messages; a message over the connection's limit or
 *    a peer that hangs up mid-message is an error for that connection only;
 *  - VarlinkServer (method table + org.varlink.service built in; one epoll
 *    fd to poll from any loop) and VarlinkClient (blocking calls with a
 *    timeout, for danausctl and for the manager talking to danaus-fsd).
 *
 * Errors: negative errno. Positive VARLINK_E_* codes say what the peer did
 * wrong (a protocol violation); the server answers them with a disconnect.
 */
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Default bound on one message, NUL included (both directions). */
#define VARLINK_MESSAGE_MAX (1024 * 1024)
/* Interface and method names: "io.danaus.Manager.CreatePool". */
#define VARLINK_NAME_MAX 256

/* The standard errors (org.varlink.service). */
#define VARLINK_ERROR_INTERFACE_NOT_FOUND    "org.varlink.service.InterfaceNotFound"
#define VARLINK_ERROR_METHOD_NOT_FOUND       "org.varlink.service.MethodNotFound"
#define VARLINK_ERROR_METHOD_NOT_IMPLEMENTED "org.varlink.service.MethodNotImplemented"
#define VARLINK_ERROR_INVALID_PARAMETER      "org.varlink.service.InvalidParameter"
#define VARLINK_ERROR_PERMISSION_DENIED      "org.varlink.service.PermissionDenied"
#define VARLINK_ERROR_EXPECTED_MORE          "org.varlink.service.ExpectedMore"

enum {
        VARLINK_E_PROTO = 1, /* not JSON, not an object, wrong keys or types */
        VARLINK_E_TOO_LARGE, /* a message over the connection's limit */
        VARLINK_E_EOF,       /* the peer hung up in the middle of a message */
};

/* ---- the codec ----------------------------------------------------------- */

typedef struct VarlinkCall {
        char *method;                   /* "iface.Method", validated */
        struct json_object *parameters; /* always an object (empty when absent) */
        bool oneway, more, upgrade;
} VarlinkCall;

typedef struct VarlinkReply {
        char *error;                    /* NULL for a reply, else the error name */
        struct json_object *parameters; /* always an object */
        bool continues;
} VarlinkReply;

/* Parses one message (without its NUL; n bytes, no NUL inside). Returns 0,
 * VARLINK_E_PROTO for anything malformed (unknown keys, wrong types, a method
 * name that is not "reverse.domain.Interface.Method"), -ENOMEM. */
int varlink_call_parse(const char *msg, size_t n, VarlinkCall *call);
void varlink_call_clear(VarlinkCall *call);
int varlink_reply_parse(const char *msg, size_t n, VarlinkReply *reply);
void varlink_reply_clear(VarlinkReply *reply);

/* Encoders: *bufp gets a malloc'ed message WITH its terminating NUL, *np its
 * length including the NUL. parameters may be NULL (sent as {}); it is only
 * read. -ENOMEM, -EINVAL (bad name). */
#define VARLINK_CALL_ONEWAY (1u << 0)
#define VARLINK_CALL_MORE   (1u << 1)
int varlink_encode_call(const char *method, struct json_object *parameters, unsigned flags,
                        char **bufp, size_t *np);
int varlink_encode_reply(struct json_object *parameters, bool continues, char **bufp, size_t *np);
int varlink_encode_error(const char *error, struct json_object *parameters, char **bufp,
                         size_t *np);

/* "a.b.Interface.Method": an interface name (reverse-domain, at least two
 * dot-separated parts of [A-Za-z0-9-], first part starting with a letter),
 * then '.', then a method/error name ([A-Z][A-Za-z0-9]*). */
bool varlink_interface_name_valid(const char *name);
bool varlink_member_name_valid(const char *name); /* interface.Member */

/* ---- one connection -------------------------------------------------------- */

typedef struct VarlinkConn VarlinkConn;

/* Takes ownership of fd (set non-blocking here). max_message: the bound on
 * one incoming message including its NUL (0: VARLINK_MESSAGE_MAX). */
int varlink_conn_new(VarlinkConn **connp, int fd, size_t max_message);
VarlinkConn *varlink_conn_free(VarlinkConn *conn); /* closes fd; returns NULL */
int varlink_conn_fd(const VarlinkConn *conn);
/* The peer's credentials from SO_PEERCRED, read once at varlink_conn_new. */
const struct ucred *varlink_conn_peer(const VarlinkConn *conn);

/* Reads what the socket holds without blocking. Returns 1 when at least one
 * whole message is buffered, 0 when not (yet), -ECONNRESET on a clean EOF
 * between messages, VARLINK_E_TOO_LARGE, VARLINK_E_EOF, or -errno. */
int varlink_conn_fill(VarlinkConn *conn);
/* Takes the next whole buffered message: 1 with *msgp (valid until the next
 * fill/next/free call, NUL-terminated, *np without the NUL), 0 when none. */
int varlink_conn_next(VarlinkConn *conn, const char **msgp, size_t *np);

/* Queues an encoded message (with its NUL, as the encoders give it). The
 * output queue is bounded (4 * max_message): -ENOBUFS when a peer does not
 * read its replies. */
int varlink_conn_queue(VarlinkConn *conn, const char *buf, size_t n);
/* Writes queued output without blocking: 1 when all is written, 0 when some
 * remains (poll for POLLOUT), -errno (-EPIPE: the peer is gone). */
int varlink_conn_flush(VarlinkConn *conn);
bool varlink_conn_wants_write(const VarlinkConn *conn);
/* True while part of a message is buffered (a peer in the middle of one). */
bool varlink_conn_pending_input(const VarlinkConn *conn);

/* ---- server ---------------------------------------------------------------- */

typedef struct VarlinkServer VarlinkServer;
typedef struct VarlinkRequest VarlinkRequest;

/* A parameter a method takes; the server checks the call's parameters against
 * the method's list before the handler runs: an unknown key, a missing
 * required one or a wrong type is answered with InvalidParameter naming the
 * key, and the handler is not called. */
typedef enum VarlinkType {
        VARLINK_TYPE_STRING,
        VARLINK_TYPE_INT,
        VARLINK_TYPE_BOOL,
        VARLINK_TYPE_FLOAT,
        VARLINK_TYPE_OBJECT,
        VARLINK_TYPE_ARRAY,
} VarlinkType;

typedef struct VarlinkField {
        const char *name;
        VarlinkType type;
        bool required;
} VarlinkField;

/* A method handler answers through req (varlink_request_reply/_error) before
 * it returns, once, or several times with continues=true when the call asked
 * for more. It returns 0, or a negative errno: when no answer was sent, the
 * server then answers "<interface>.InternalError" {"message": strerror}
 * (so each interface declares `error InternalError (message: string)`). */
typedef int (*VarlinkMethodFn)(VarlinkRequest *req, struct json_object *parameters, void *userdata);

typedef struct VarlinkMethod {
        const char *name;       /* "CreatePool" (the interface is prefixed) */
        VarlinkMethodFn fn;     /* NULL: MethodNotImplemented */
        const VarlinkField *in; /* terminated by {NULL}; NULL: no parameters */
} VarlinkMethod;

typedef struct VarlinkServerInfo {
        const char *vendor, *product, *version, *url;
} VarlinkServerInfo;

/* info is copied. Connections are limited to max_connections (0: 256);
 * a further one is accepted and closed at once. */
int varlink_server_new(VarlinkServer **serverp, const VarlinkServerInfo *info,
                       unsigned max_connections);
VarlinkServer *varlink_server_free(VarlinkServer *server); /* closes everything */
/* Adds an interface: its name, its description (the .varlink file's text,
 * served by GetInterfaceDescription; must start "interface NAME") and its
 * methods (terminated by {NULL}). Strings are borrowed and must outlive the
 * server. */
int varlink_server_add_interface(VarlinkServer *server, const char *name, const char *description,
                                 const VarlinkMethod *methods, void *userdata);
/* Listens on a bound, listening unix stream socket (the server owns it), e.g.
 * one from sd_listen_fds or from varlink_listen_unix. */
int varlink_server_add_listener(VarlinkServer *server, int fd);
/* Creates the socket at path (an old socket file there is replaced), mode
 * applied with fchmod before listen. Returns the fd or -errno. */
int varlink_listen_unix(const char *path, mode_t mode);
/* An fd (epoll) that becomes readable when the server has work. */
int varlink_server_fd(const VarlinkServer *server);
/* Handles everything ready without blocking (accepts, reads, dispatches,
 * writes, drops broken or idle peers). Returns 0 or a negative errno for a
 * server-wide failure; one peer's failure is never returned. */
int varlink_server_process(VarlinkServer *server);
/* Waits up to timeout_ms (-1: forever) for work, then processes it. -EINTR
 * when a signal came. */
int varlink_server_run_once(VarlinkServer *server, int timeout_ms);
/* A peer that holds an incomplete message or unread replies longer than this
 * is dropped (0 = never; default 30000 ms). Idle peers between messages are
 * kept. */
void varlink_server_set_stall_timeout(VarlinkServer *server, int timeout_ms);
unsigned varlink_server_n_connections(const VarlinkServer *server);

/* Inside a handler: */
const struct ucred *varlink_request_peer(const VarlinkRequest *req);
bool varlink_request_wants_more(const VarlinkRequest *req);
bool varlink_request_oneway(const VarlinkRequest *req);
const char *varlink_request_method(const VarlinkRequest *req);
/* Sends a reply; parameters may be NULL ({}), are only read (the caller
 * keeps its reference). continues needs a call with more. After the last
 * reply (continues=false) or an error, further answers are -EALREADY. On a
 * oneway call nothing is sent and 0 returned. */
int varlink_request_reply(VarlinkRequest *req, struct json_object *parameters, bool continues);
int varlink_request_error(VarlinkRequest *req, const char *error, struct json_object *parameters);
/* InvalidParameter {"parameter": name}. */
int varlink_request_error_invalid_parameter(VarlinkRequest *req, const char *parameter);

/* ---- client ---------------------------------------------------------------- */

typedef struct VarlinkClient VarlinkClient;

/* Connects to a unix socket path (-ENOENT, -ECONNREFUSED, -EACCES ...). */
int varlink_client_connect(VarlinkClient **clientp, const char *path);
/* Adopts a connected stream socket. */
int varlink_client_new(VarlinkClient **clientp, int fd);
VarlinkClient *varlink_client_free(VarlinkClient *client);
/* Sends a call and waits up to timeout_ms (-1: forever) for the first reply.
 * reply is filled (clear it with varlink_reply_clear) and the function
 * returns 0 for a reply AND for an error reply (reply->error set); -ETIMEDOUT,
 * -ECONNRESET (the peer hung up), VARLINK_E_PROTO/TOO_LARGE, -errno.
 * flags: VARLINK_CALL_MORE (then read the rest with varlink_client_read_reply
 * while reply->continues) or VARLINK_CALL_ONEWAY (then reply is cleared and
 * nothing is read). */
int varlink_client_call(VarlinkClient *client, const char *method, struct json_object *parameters,
                        unsigned flags, int timeout_ms, VarlinkReply *reply);
int varlink_client_read_reply(VarlinkClient *client, int timeout_ms, VarlinkReply *reply);
