/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests: the varlink codec (libdanaus/varlink). The message parsers on
 * good and malformed input, the connection's framing over a real socketpair
 * (a half-sent message, the size limit and limit+1, a hang-up mid-message),
 * and a real server on a unix socket in a thread: org.varlink.service, the
 * method tables' parameter checks, oneway and more, and peers that stall,
 * send too much or never read, which must not block anyone else.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "varlink/varlink.h"

static int64_t ms_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- codec ------------------------------------------------------------------ */

static int parse_call(const char *s, VarlinkCall *call)
{
        return varlink_call_parse(s, strlen(s), call);
}

START_TEST(test_call_good)
{
        VarlinkCall call;
        struct json_object *v;

        ck_assert_int_eq(parse_call("{\"method\":\"io.danaus.Manager.GetPool\","
                                    "\"parameters\":{\"name\":\"a\"}}",
                                    &call),
                         0);
        ck_assert_str_eq(call.method, "io.danaus.Manager.GetPool");
        ck_assert(json_object_object_get_ex(call.parameters, "name", &v));
        ck_assert_str_eq(json_object_get_string(v), "a");
        ck_assert(!call.more && !call.oneway);
        varlink_call_clear(&call);

        /* parameters absent or null: an empty object; whitespace around */
        ck_assert_int_eq(parse_call(" {\"method\":\"a.b.C\",\"more\":true}\n", &call), 0);
        ck_assert(call.more);
        ck_assert_int_eq(json_object_object_length(call.parameters), 0);
        varlink_call_clear(&call);
        ck_assert_int_eq(
            parse_call("{\"method\":\"a.b.C\",\"parameters\":null,\"oneway\":true}", &call), 0);
        ck_assert(call.oneway);
        varlink_call_clear(&call);
}
END_TEST

START_TEST(test_call_malformed)
{
        static const char *const bad[] = {
            "",
            "null",
            "[]",
            "\"x\"",
            "{}",
            "{\"method\":1}",
            "{\"method\":\"GetInfo\"}",                     /* no interface */
            "{\"method\":\"org.varlink.service.\"}",        /* no member */
            "{\"method\":\"org.varlink.service.getInfo\"}", /* lower-case member */
            "{\"method\":\"org..service.GetInfo\"}",
            "{\"method\":\"1org.varlink.GetInfo\"}",
            "{\"method\":\"a.b.C\",\"parameters\":[]}",
            "{\"method\":\"a.b.C\",\"parameters\":\"x\"}",
            "{\"method\":\"a.b.C\",\"more\":1}",
            "{\"method\":\"a.b.C\",\"oneway\":\"yes\"}",
            "{\"method\":\"a.b.C\",\"oneway\":true,\"more\":true}",
            "{\"method\":\"a.b.C\",\"bogus\":true}",
            "{\"method\":\"a.b.C\"} {}", /* trailing data */
            "{\"method\":\"a.b.C\"",     /* cut */
            "{\"method\":\"a.b.C\",}",   /* not strict JSON */
            "{'method':'a.b.C'}",
            "{\"method\":\"a.b.\xff\"}", /* not UTF-8 */
        };
        VarlinkCall call;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = parse_call(bad[i], &call);
                ck_assert_msg(r == VARLINK_E_PROTO, "accepted %zu: %s (%d)", i, bad[i], r);
                ck_assert_ptr_null(call.method);
                ck_assert_ptr_null(call.parameters);
        }
}
END_TEST

START_TEST(test_call_deep_nesting)
{
        /* 10000 nested arrays: refused by the depth limit, no stack overflow */
        size_t n = 10000, len = 0;
        char *s = malloc(2 * n + 64);
        VarlinkCall call;

        len += (size_t)sprintf(s, "{\"method\":\"a.b.C\",\"parameters\":{\"x\":");
        memset(s + len, '[', n);
        len += n;
        memset(s + len, ']', n);
        len += n;
        strcpy(s + len, "}}");
        ck_assert_int_eq(parse_call(s, &call), VARLINK_E_PROTO);
        free(s);
}
END_TEST

static int parse_reply(const char *s, VarlinkReply *reply)
{
        return varlink_reply_parse(s, strlen(s), reply);
}

START_TEST(test_reply)
{
        VarlinkReply reply;

        ck_assert_int_eq(parse_reply("{\"parameters\":{\"a\":1},\"continues\":true}", &reply), 0);
        ck_assert(reply.continues);
        ck_assert_ptr_null(reply.error);
        varlink_reply_clear(&reply);
        ck_assert_int_eq(parse_reply("{\"error\":\"io.danaus.Manager.NoSuchPool\"}", &reply), 0);
        ck_assert_str_eq(reply.error, "io.danaus.Manager.NoSuchPool");
        ck_assert_int_eq(json_object_object_length(reply.parameters), 0);
        varlink_reply_clear(&reply);
        ck_assert_int_eq(parse_reply("{\"error\":\"x\"}", &reply), VARLINK_E_PROTO);
        ck_assert_int_eq(parse_reply("{\"error\":\"a.b.C\",\"continues\":true}", &reply),
                         VARLINK_E_PROTO);
        ck_assert_int_eq(parse_reply("{\"method\":\"a.b.C\"}", &reply), VARLINK_E_PROTO);
}
END_TEST

START_TEST(test_encode_roundtrip)
{
        struct json_object *p = json_object_new_object(), *v;
        VarlinkCall call;
        VarlinkReply reply;
        char *buf;
        size_t n;

        json_object_object_add(p, "name", json_object_new_string("a/b \"q\""));
        ck_assert_int_eq(
            varlink_encode_call("io.danaus.Manager.GetPool", p, VARLINK_CALL_MORE, &buf, &n), 0);
        ck_assert_int_eq(buf[n - 1], '\0');
        ck_assert_uint_eq(strlen(buf), n - 1);
        ck_assert_int_eq(varlink_call_parse(buf, n - 1, &call), 0);
        ck_assert(call.more && !call.oneway);
        ck_assert(json_object_object_get_ex(call.parameters, "name", &v));
        ck_assert_str_eq(json_object_get_string(v), "a/b \"q\"");
        varlink_call_clear(&call);
        free(buf);

        ck_assert_int_eq(varlink_encode_error("a.b.Oops", p, &buf, &n), 0);
        ck_assert_int_eq(varlink_reply_parse(buf, n - 1, &reply), 0);
        ck_assert_str_eq(reply.error, "a.b.Oops");
        varlink_reply_clear(&reply);
        free(buf);

        ck_assert_int_eq(varlink_encode_call("nointerface", p, 0, &buf, &n), -EINVAL);
        ck_assert_int_eq(
            varlink_encode_call("a.b.C", p, VARLINK_CALL_MORE | VARLINK_CALL_ONEWAY, &buf, &n),
            -EINVAL);
        json_object_put(p);
}
END_TEST

START_TEST(test_names)
{
        ck_assert(varlink_interface_name_valid("org.varlink.service"));
        ck_assert(varlink_interface_name_valid("io.danaus.Manager"));
        ck_assert(varlink_interface_name_valid("a-b.c"));
        ck_assert(!varlink_interface_name_valid("single"));
        ck_assert(!varlink_interface_name_valid("a.-b"));
        ck_assert(!varlink_interface_name_valid("a..b"));
        ck_assert(!varlink_interface_name_valid("a.b."));
        ck_assert(varlink_member_name_valid("io.danaus.Manager.CreatePool"));
        ck_assert(!varlink_member_name_valid("io.danaus.Manager.createPool"));
        ck_assert(!varlink_member_name_valid("io.danaus.Manager.Create_Pool"));
}
END_TEST

/* ---- connection framing ------------------------------------------------------- */

static void pair(int sv[2])
{
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

START_TEST(test_conn_half_sent)
{
        const char msg[] = "{\"method\":\"a.b.C\"}";
        VarlinkConn *c;
        const char *m;
        size_t n;
        int sv[2];

        pair(sv);
        ck_assert_int_eq(varlink_conn_new(&c, sv[0], 0), 0);
        ck_assert_int_eq(write(sv[1], msg, 7), 7);
        ck_assert_int_eq(varlink_conn_fill(c), 0);
        ck_assert(varlink_conn_pending_input(c));
        ck_assert_int_eq(varlink_conn_next(c, &m, &n), 0);
        /* the rest, its NUL, and a second whole message in one write */
        ck_assert_int_eq(write(sv[1], msg + 7, sizeof(msg) - 7), (ssize_t)(sizeof(msg) - 7));
        ck_assert_int_eq(write(sv[1], msg, sizeof(msg)), (ssize_t)sizeof(msg));
        ck_assert_int_eq(varlink_conn_fill(c), 1);
        ck_assert_int_eq(varlink_conn_next(c, &m, &n), 1);
        ck_assert_uint_eq(n, sizeof(msg) - 1);
        ck_assert_int_eq(memcmp(m, msg, n), 0);
        ck_assert_int_eq(varlink_conn_fill(c), 1);
        ck_assert_int_eq(varlink_conn_next(c, &m, &n), 1);
        ck_assert_int_eq(memcmp(m, msg, n), 0);
        ck_assert_int_eq(varlink_conn_next(c, &m, &n), 0);
        ck_assert(!varlink_conn_pending_input(c));
        /* nothing more: would block, not an error */
        ck_assert_int_eq(varlink_conn_fill(c), 0);
        close(sv[1]);
        ck_assert_int_eq(varlink_conn_fill(c), -ECONNRESET);
        varlink_conn_free(c);
}
END_TEST

static int fill_all(VarlinkConn *c)
{
        int r;

        for (int i = 0; i < 1000; i++) {
                r = varlink_conn_fill(c);
                if (r != 0)
                        return r;
        }
        return 0;
}

START_TEST(test_conn_limit)
{
        /* max 64: a 63-byte message + NUL fits; 64 + NUL does not */
        char buf[130];
        VarlinkConn *c;
        const char *m;
        size_t n;
        int sv[2];

        pair(sv);
        ck_assert_int_eq(varlink_conn_new(&c, sv[0], 64), 0);
        memset(buf, 'x', 63);
        buf[63] = '\0';
        ck_assert_int_eq(write(sv[1], buf, 64), 64);
        ck_assert_int_eq(fill_all(c), 1);
        ck_assert_int_eq(varlink_conn_next(c, &m, &n), 1);
        ck_assert_uint_eq(n, 63);
        memset(buf, 'y', 64);
        buf[64] = '\0';
        ck_assert_int_eq(write(sv[1], buf, 65), 65);
        ck_assert_int_eq(fill_all(c), VARLINK_E_TOO_LARGE);
        varlink_conn_free(c);
        close(sv[1]);
}
END_TEST

START_TEST(test_conn_eof_mid_message)
{
        VarlinkConn *c;
        int sv[2];

        pair(sv);
        ck_assert_int_eq(varlink_conn_new(&c, sv[0], 0), 0);
        ck_assert_int_eq(write(sv[1], "{\"meth", 6), 6);
        close(sv[1]);
        ck_assert_int_eq(fill_all(c), VARLINK_E_EOF);
        varlink_conn_free(c);
}
END_TEST

START_TEST(test_conn_output_bound)
{
        /* A peer that never reads: the queue stops at 4 messages' worth. */
        char buf[64];
        VarlinkConn *c;
        int sv[2], r = 0, queued = 0;

        pair(sv);
        ck_assert_int_eq(varlink_conn_new(&c, sv[0], 64), 0);
        memset(buf, 'z', 63);
        buf[63] = '\0';
        for (int i = 0; i < 100000 && r == 0; i++) {
                r = varlink_conn_queue(c, buf, 64);
                if (r == 0) {
                        queued++;
                        ck_assert_int_ge(varlink_conn_flush(c), 0);
                }
        }
        ck_assert_int_eq(r, -ENOBUFS);
        ck_assert(varlink_conn_wants_write(c));
        ck_assert_int_eq(varlink_conn_queue(c, "x", 1), -EINVAL); /* no NUL */
        varlink_conn_free(c);
        close(sv[1]);
}
END_TEST

/* ---- a real server ------------------------------------------------------------- */

static const char test_description[] = "# A test interface\n"
                                       "interface io.danaus.Test\n"
                                       "method Echo(text: string, n: ?int) -> (text: string)\n"
                                       "method Count(n: int) -> (i: int)\n"
                                       "method Fail() -> ()\n"
                                       "method Later() -> ()\n"
                                       "error InternalError (message: string)\n";

static atomic_int oneway_calls;

static int m_echo(VarlinkRequest *req, struct json_object *params, void *userdata)
{
        struct json_object *v, *o = json_object_new_object();
        int r;

        if (varlink_request_oneway(req))
                atomic_fetch_add(&oneway_calls, 1);
        json_object_object_get_ex(params, "text", &v);
        json_object_object_add(o, "text", json_object_get(v));
        r = varlink_request_reply(req, o, false);
        json_object_put(o);
        /* a second answer is refused */
        ck_assert_int_eq(varlink_request_reply(req, NULL, false), -EALREADY);
        return r;
}

static int m_count(VarlinkRequest *req, struct json_object *params, void *userdata)
{
        struct json_object *v;
        int64_t n;

        json_object_object_get_ex(params, "n", &v);
        n = json_object_get_int64(v);
        if (!varlink_request_wants_more(req))
                return varlink_request_error(req, VARLINK_ERROR_EXPECTED_MORE, NULL);
        for (int64_t i = 0; i < n; i++) {
                struct json_object *o = json_object_new_object();
                json_object_object_add(o, "i", json_object_new_int64(i));
                varlink_request_reply(req, o, i + 1 < n);
                json_object_put(o);
        }
        return 0;
}

static int m_fail(VarlinkRequest *req, struct json_object *params, void *userdata)
{
        return -ENOSPC;
}

static const VarlinkField in_echo[] = {
    {"text", VARLINK_TYPE_STRING, true},
    {"n", VARLINK_TYPE_INT, false},
    {0},
};
static const VarlinkField in_count[] = {{"n", VARLINK_TYPE_INT, true}, {0}};
static const VarlinkMethod test_methods[] = {
    {"Echo", m_echo, in_echo},
    {"Count", m_count, in_count},
    {"Fail", m_fail, NULL},
    {"Later", NULL, NULL},
    {NULL},
};

typedef struct TestServer {
        VarlinkServer *server;
        pthread_t thread;
        atomic_bool stop;
        char dir[64], path[128];
} TestServer;

static void *serve(void *arg)
{
        TestServer *t = arg;

        while (!atomic_load(&t->stop))
                varlink_server_run_once(t->server, 50);
        return NULL;
}

static void server_start(TestServer *t, unsigned max_conn, int stall_ms)
{
        VarlinkServerInfo info = {"Danaus", "test", "1", "https://example.invalid"};
        int fd;

        snprintf(t->dir, sizeof(t->dir), "/tmp/test-varlink.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(t->dir));
        snprintf(t->path, sizeof(t->path), "%s/s", t->dir);
        ck_assert_int_eq(varlink_server_new(&t->server, &info, max_conn), 0);
        ck_assert_int_eq(varlink_server_add_interface(t->server, "io.danaus.Test", test_description,
                                                      test_methods, NULL),
                         0);
        /* a description that does not name its interface is refused */
        ck_assert_int_eq(varlink_server_add_interface(t->server, "io.danaus.Other",
                                                      test_description, test_methods, NULL),
                         -EINVAL);
        varlink_server_set_stall_timeout(t->server, stall_ms);
        fd = varlink_listen_unix(t->path, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(varlink_server_add_listener(t->server, fd), 0);
        atomic_store(&t->stop, false);
        ck_assert_int_eq(pthread_create(&t->thread, NULL, serve, t), 0);
}

static void server_stop(TestServer *t)
{
        atomic_store(&t->stop, true);
        pthread_join(t->thread, NULL);
        varlink_server_free(t->server);
        unlink(t->path);
        rmdir(t->dir);
}

static int raw_connect(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        return fd;
}

/* Calls method with params (JSON text) on a fresh client; returns the reply. */
static void call(const char *path, const char *method, const char *params, unsigned flags,
                 VarlinkReply *reply)
{
        struct json_object *p = params ? json_tokener_parse(params) : NULL;
        VarlinkClient *c;

        ck_assert_int_eq(varlink_client_connect(&c, path), 0);
        ck_assert_int_eq(varlink_client_call(c, method, p, flags, 5000, reply), 0);
        varlink_client_free(c);
        json_object_put(p);
}

static const char *str(struct json_object *o, const char *key)
{
        struct json_object *v;

        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return json_object_get_string(v);
}

START_TEST(test_server_service)
{
        TestServer t;
        VarlinkReply r;

        server_start(&t, 0, 0);
        call(t.path, "org.varlink.service.GetInfo", NULL, 0, &r);
        ck_assert_ptr_null(r.error);
        ck_assert_str_eq(str(r.parameters, "product"), "test");
        ck_assert_str_eq(str(r.parameters, "interfaces"),
                         "[ \"org.varlink.service\", \"io.danaus.Test\" ]");
        varlink_reply_clear(&r);
        call(t.path, "org.varlink.service.GetInterfaceDescription",
             "{\"interface\":\"io.danaus.Test\"}", 0, &r);
        ck_assert_str_eq(str(r.parameters, "description"), test_description);
        varlink_reply_clear(&r);
        call(t.path, "org.varlink.service.GetInterfaceDescription",
             "{\"interface\":\"org.varlink.service\"}", 0, &r);
        ck_assert_ptr_nonnull(strstr(str(r.parameters, "description"), "method GetInfo()"));
        varlink_reply_clear(&r);
        call(t.path, "org.varlink.service.GetInterfaceDescription", "{\"interface\":\"no.such\"}",
             0, &r);
        ck_assert_str_eq(r.error, VARLINK_ERROR_INTERFACE_NOT_FOUND);
        ck_assert_str_eq(str(r.parameters, "interface"), "no.such");
        varlink_reply_clear(&r);
        call(t.path, "org.varlink.service.GetInterfaceDescription", "{}", 0, &r);
        ck_assert_str_eq(r.error, VARLINK_ERROR_INVALID_PARAMETER);
        ck_assert_str_eq(str(r.parameters, "parameter"), "interface");
        varlink_reply_clear(&r);
        call(t.path, "org.varlink.service.GetInfo", "{\"x\":1}", 0, &r);
        ck_assert_str_eq(r.error, VARLINK_ERROR_INVALID_PARAMETER);
        varlink_reply_clear(&r);
        server_stop(&t);
}
END_TEST

START_TEST(test_server_methods)
{
        TestServer t;
        VarlinkReply r;

        server_start(&t, 0, 0);
        call(t.path, "io.danaus.Test.Echo", "{\"text\":\"hi\"}", 0, &r);
        ck_assert_ptr_null(r.error);
        ck_assert_str_eq(str(r.parameters, "text"), "hi");
        varlink_reply_clear(&r);
        /* the table: unknown key, wrong type, missing; null for an optional one */
        call(t.path, "io.danaus.Test.Echo", "{\"text\":\"hi\",\"extra\":1}", 0, &r);
        ck_assert_str_eq(r.error, VARLINK_ERROR_INVALID_PARAMETER);
        ck_assert_str_eq(str(r.parameters, "parameter"), "extra");
        varlink_reply_clear(&r);
        call(t.path, "io.danaus.Test.Echo", "{\"text\":1}", 0, &r);
        ck_assert_str_eq(str(r.parameters, "parameter"), "text");
        varlink_reply_clear(&r);
        call(t.path, "io.danaus.Test.Echo", "{\"n\":1}", 0, &r);
        ck_assert_str_eq(str(r.parameters, "parameter"), "text");
        varlink_reply_clear(&r);
        call(t.path, "io.danaus.Test.Echo", "{\"text\":\"a\",\"n\":null}", 0, &r);
        ck_assert_ptr_null(r.error);
        varlink_reply_clear(&r);
        call(t.path, "io.danaus.Test.Nope", NULL, 0, &r);
        ck_assert_str_eq(r.error, VARLINK_ERROR_METHOD_NOT_FOUND);
        varlink_reply_clear(&r);
        call(t.path, "io.danaus.Nope.Echo", NULL, 0, &r);
        ck_assert_str_eq(r.error, VARLINK_ERROR_INTERFACE_NOT_FOUND);
        varlink_reply_clear(&r);
        call(t.path, "io.danaus.Test.Later", NULL, 0, &r);
        ck_assert_str_eq(r.error, VARLINK_ERROR_METHOD_NOT_IMPLEMENTED);
        varlink_reply_clear(&r);
        /* a handler that fails without answering */
        call(t.path, "io.danaus.Test.Fail", NULL, 0, &r);
        ck_assert_str_eq(r.error, "io.danaus.Test.InternalError");
        ck_assert_str_eq(str(r.parameters, "message"), strerror(ENOSPC));
        varlink_reply_clear(&r);
        server_stop(&t);
}
END_TEST

START_TEST(test_server_more_oneway)
{
        TestServer t;
        VarlinkClient *c;
        VarlinkReply r;
        struct json_object *p = json_tokener_parse("{\"n\":3}");
        int i = 0;

        server_start(&t, 0, 0);
        ck_assert_int_eq(varlink_client_connect(&c, t.path), 0);
        ck_assert_int_eq(
            varlink_client_call(c, "io.danaus.Test.Count", p, VARLINK_CALL_MORE, 5000, &r), 0);
        for (;;) {
                ck_assert_ptr_null(r.error);
                ck_assert_int_eq(json_object_get_int(json_object_object_get(r.parameters, "i")), i);
                i++;
                if (!r.continues)
                        break;
                varlink_reply_clear(&r);
                ck_assert_int_eq(varlink_client_read_reply(c, 5000, &r), 0);
        }
        varlink_reply_clear(&r);
        ck_assert_int_eq(i, 3);
        /* without more */
        ck_assert_int_eq(varlink_client_call(c, "io.danaus.Test.Count", p, 0, 5000, &r), 0);
        ck_assert_str_eq(r.error, VARLINK_ERROR_EXPECTED_MORE);
        varlink_reply_clear(&r);
        /* oneway: no answer comes, the next call's answer is the next one */
        json_object_put(p);
        p = json_tokener_parse("{\"text\":\"quiet\"}");
        atomic_store(&oneway_calls, 0);
        ck_assert_int_eq(
            varlink_client_call(c, "io.danaus.Test.Echo", p, VARLINK_CALL_ONEWAY, 5000, &r), 0);
        json_object_put(p);
        p = json_tokener_parse("{\"text\":\"loud\"}");
        ck_assert_int_eq(varlink_client_call(c, "io.danaus.Test.Echo", p, 0, 5000, &r), 0);
        ck_assert_str_eq(str(r.parameters, "text"), "loud");
        ck_assert_int_eq(atomic_load(&oneway_calls), 1);
        varlink_reply_clear(&r);
        json_object_put(p);
        varlink_client_free(c);
        server_stop(&t);
}
END_TEST

/* 0 when the server closed fd within timeout_ms (EOF or reset). */
static int wait_closed(int fd, int timeout_ms)
{
        char buf[4096];
        int64_t end = ms_now() + timeout_ms;

        while (ms_now() < end) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                ssize_t n;
                if (poll(&pfd, 1, 100) <= 0)
                        continue;
                n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return 0;
        }
        return -ETIMEDOUT;
}

START_TEST(test_server_hostile_peers)
{
        TestServer t;
        VarlinkReply r;
        int half, big, garbage, deaf;
        char *blob;
        size_t n_blob = VARLINK_MESSAGE_MAX + 4096;
        int64_t t0;

        server_start(&t, 0, 1000);
        /* half a message, then silence */
        half = raw_connect(t.path);
        ck_assert_int_eq(write(half, "{\"method\":\"io.danaus.Te", 23), 23);
        /* a peer that sends calls but never reads the answers */
        deaf = raw_connect(t.path);
        {
                const char msg[] = "{\"method\":\"org.varlink.service.GetInterfaceDescription\","
                                   "\"parameters\":{\"interface\":\"org.varlink.service\"}}";
                /* Until the server stops reading it (its replies fill the
                 * socket): only then is the peer stalled, not merely idle. */
                int64_t end = ms_now() + 10000;
                while (ms_now() < end) {
                        struct pollfd pfd = {.fd = deaf, .events = POLLOUT};
                        if (poll(&pfd, 1, 300) == 0)
                                break;
                        if (send(deaf, msg, sizeof(msg), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
                            errno != EAGAIN)
                                break;
                }
        }
        /* garbage: dropped at once */
        garbage = raw_connect(t.path);
        ck_assert_int_eq(write(garbage, "not json\0", 9), 9);
        ck_assert_int_eq(wait_closed(garbage, 2000), 0);
        /* over the limit: dropped, while the others still get answers */
        big = raw_connect(t.path);
        blob = malloc(n_blob);
        memset(blob, ' ', n_blob);
        {
                size_t off = 0;
                int64_t end = ms_now() + 5000;
                while (off < n_blob && ms_now() < end) {
                        ssize_t w =
                            send(big, blob + off, n_blob - off, MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (w > 0)
                                off += (size_t)w;
                        else if (w < 0 && errno != EAGAIN)
                                break;
                        else
                                usleep(1000);
                }
        }
        free(blob);
        ck_assert_int_eq(wait_closed(big, 3000), 0);
        t0 = ms_now();
        call(t.path, "io.danaus.Test.Echo", "{\"text\":\"still here\"}", 0, &r);
        ck_assert_str_eq(str(r.parameters, "text"), "still here");
        ck_assert_int_lt(ms_now() - t0, 500);
        varlink_reply_clear(&r);
        /* the stalled and the deaf peer are dropped after the stall timeout */
        ck_assert_int_eq(wait_closed(half, 4000), 0);
        {
                /* the deaf peer: closed by the server while its replies sit
                 * unread (reading them would end its stall) */
                struct pollfd pfd = {.fd = deaf, .events = POLLRDHUP};
                ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
                ck_assert(pfd.revents & (POLLRDHUP | POLLHUP));
        }
        ck_assert_uint_eq(varlink_server_n_connections(t.server), 0);
        close(half);
        close(big);
        close(garbage);
        close(deaf);
        server_stop(&t);
}
END_TEST

START_TEST(test_server_connection_limit)
{
        TestServer t;
        VarlinkReply r;
        int fds[4];

        server_start(&t, 4, 0);
        for (int i = 0; i < 4; i++)
                fds[i] = raw_connect(t.path);
        /* a fifth (root may take all slots) is closed at once */
        {
                int extra = raw_connect(t.path);
                ck_assert_int_eq(wait_closed(extra, 2000), 0);
                close(extra);
        }
        close(fds[0]);
        usleep(100000);
        call(t.path, "io.danaus.Test.Echo", "{\"text\":\"in\"}", 0, &r);
        ck_assert_ptr_null(r.error);
        varlink_reply_clear(&r);
        for (int i = 1; i < 4; i++)
                close(fds[i]);
        server_stop(&t);
}
END_TEST

START_TEST(test_server_uid_limit)
{
        /* A non-root uid may hold a quarter of the slots (2 of 8), so one
         * tenant cannot lock the others out; the check runs as uid 47140 in
         * a child (SO_PEERCRED is taken at connect). */
        TestServer t;
        VarlinkReply r;
        pid_t pid;
        int status;

        ck_assert_msg(geteuid() == 0, "needs root to act as another uid (CI runs as root)");
        server_start(&t, 8, 0);
        ck_assert_int_eq(chmod(t.dir, 0755), 0);
        ck_assert_int_eq(chmod(t.path, 0666), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int fds[3];
                if (setresgid(47141, 47141, 47141) < 0 || setresuid(47140, 47140, 47140) < 0)
                        _exit(10);
                for (int i = 0; i < 3; i++)
                        fds[i] = raw_connect(t.path);
                /* the third is closed at once, the first two stay */
                if (wait_closed(fds[2], 2000) != 0)
                        _exit(11);
                if (wait_closed(fds[0], 300) == 0 || wait_closed(fds[1], 300) == 0)
                        _exit(12);
                _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
        /* root is not held to it */
        call(t.path, "io.danaus.Test.Echo", "{\"text\":\"root\"}", 0, &r);
        ck_assert_ptr_null(r.error);
        varlink_reply_clear(&r);
        server_stop(&t);
}
END_TEST

START_TEST(test_client_bad_server)
{
        /* A server that answers garbage, or hangs up, or stays silent. */
        VarlinkClient *c;
        VarlinkReply r;
        int sv[2];

        pair(sv);
        ck_assert_int_eq(varlink_client_new(&c, sv[0]), 0);
        ck_assert_int_eq(write(sv[1], "[1,2]\0", 6), 6);
        ck_assert_int_eq(varlink_client_call(c, "a.b.C", NULL, 0, 1000, &r), VARLINK_E_PROTO);
        ck_assert_int_eq(varlink_client_call(c, "a.b.C", NULL, 0, 100, &r), -ETIMEDOUT);
        close(sv[1]);
        ck_assert_int_eq(varlink_client_call(c, "a.b.C", NULL, 0, 1000, &r), -ECONNRESET);
        varlink_client_free(c);
}
END_TEST

static Suite *varlink_suite(void)
{
        Suite *s = suite_create("varlink");
        TCase *tc;

        tc = tcase_create("codec");
        tcase_add_test(tc, test_call_good);
        tcase_add_test(tc, test_call_malformed);
        tcase_add_test(tc, test_call_deep_nesting);
        tcase_add_test(tc, test_reply);
        tcase_add_test(tc, test_encode_roundtrip);
        tcase_add_test(tc, test_names);
        suite_add_tcase(s, tc);

        tc = tcase_create("connection");
        tcase_add_test(tc, test_conn_half_sent);
        tcase_add_test(tc, test_conn_limit);
        tcase_add_test(tc, test_conn_eof_mid_message);
        tcase_add_test(tc, test_conn_output_bound);
        tcase_add_test(tc, test_client_bad_server);
        suite_add_tcase(s, tc);

        tc = tcase_create("server");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_server_service);
        tcase_add_test(tc, test_server_methods);
        tcase_add_test(tc, test_server_more_oneway);
        tcase_add_test(tc, test_server_hostile_peers);
        tcase_add_test(tc, test_server_connection_limit);
        tcase_add_test(tc, test_server_uid_limit);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(varlink_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
