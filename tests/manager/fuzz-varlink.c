/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target: the varlink decoder. Each input is a byte stream a peer could
 * send: it goes through a VarlinkConn over a real socketpair in pieces (the
 * framing at NUL, the size limit, a hang-up mid-message), and every message
 * that comes out is parsed as a call and as a reply; what parses is encoded
 * again and must parse to the same thing.
 *
 * Built two ways: with clang's libFuzzer (-fsanitize=fuzzer, when clang is
 * installed), or, with FUZZ_STANDALONE, as a driver with a main() that runs
 * the seed files given and then mutates them with a fixed-seed PRNG for a
 * bounded number of inputs (DANAUS_FUZZ_RUNS, default 20000).
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "varlink/varlink.h"

#define FUZZ_MAX_MESSAGE 512

static void check_message(const char *msg, size_t n)
{
        VarlinkCall call, again;
        VarlinkReply reply, reply2;
        char *buf;
        size_t len;

        if (varlink_call_parse(msg, n, &call) == 0) {
                unsigned flags =
                    (call.more ? VARLINK_CALL_MORE : 0) | (call.oneway ? VARLINK_CALL_ONEWAY : 0);
                if (varlink_encode_call(call.method, call.parameters, flags, &buf, &len) == 0) {
                        int r = varlink_call_parse(buf, len - 1, &again);
                        if (r != 0 || strcmp(again.method, call.method) != 0 ||
                            again.more != call.more || again.oneway != call.oneway) {
                                fprintf(stderr, "call round trip failed: %.*s -> %s\n", (int)n, msg,
                                        buf);
                                abort();
                        }
                        varlink_call_clear(&again);
                        free(buf);
                }
                varlink_call_clear(&call);
        }
        if (varlink_reply_parse(msg, n, &reply) == 0) {
                int r = reply.error
                            ? varlink_encode_error(reply.error, reply.parameters, &buf, &len)
                            : varlink_encode_reply(reply.parameters, reply.continues, &buf, &len);
                if (r == 0) {
                        if (varlink_reply_parse(buf, len - 1, &reply2) != 0 ||
                            !reply2.error != !reply.error) {
                                fprintf(stderr, "reply round trip failed: %s\n", buf);
                                abort();
                        }
                        varlink_reply_clear(&reply2);
                        free(buf);
                }
                varlink_reply_clear(&reply);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One read, then every whole message; false once the stream is over. */
static bool drain(VarlinkConn *c)
{
        const char *msg;
        size_t n;
        int r = varlink_conn_fill(c);

        while (varlink_conn_next(c, &msg, &n) > 0) {
                assert(n < FUZZ_MAX_MESSAGE);
                assert(msg[n] == '\0' && memchr(msg, 0, n) == NULL);
                check_message(msg, n);
        }
        return r >= 0 && r <= 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        VarlinkConn *c = NULL;
        size_t off = 0, step;
        bool open = true;
        int sv[2];

        if (size > 4 * FUZZ_MAX_MESSAGE)
                return 0;
        /* Whole input, as the parsers see a message (no NUL inside). */
        if (!memchr(data, 0, size))
                check_message((const char *)data, size);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return 0;
        if (varlink_conn_new(&c, sv[0], FUZZ_MAX_MESSAGE) < 0) {
                close(sv[0]);
                close(sv[1]);
                return 0;
        }
        /* Pieces of a size taken from the first byte: half-sent messages. */
        step = size ? (size_t)(data[0] % 61) + 1 : 1;
        while (off < size && open) {
                size_t k = size - off < step ? size - off : step;
                if (write(sv[1], data + off, k) != (ssize_t)k)
                        break;
                off += k;
                open = drain(c);
        }
        close(sv[1]);
        /* The hang-up: every message before it comes out, then an error. */
        for (int i = 0; i < 64 && open; i++)
                open = drain(c);
        assert(!open);
        varlink_conn_free(c);
        return 0;
}

#ifdef FUZZ_STANDALONE
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
        /* xorshift64*: fixed seed, so a failure reproduces */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 2685821657736338717ULL;
}

static const char *const seeds_builtin[] = {
    "{\"method\":\"io.danaus.Manager.CreatePool\",\"parameters\":{\"definition\":{\"pool\":"
    "\"a\",\"mounts\":[{\"mountpoint\":\"/m\",\"branches\":[{\"path\":\"x\",\"mode\":\"rw\"}]}]}}}",
    "{\"method\":\"org.varlink.service.GetInfo\",\"more\":true}",
    "{\"parameters\":{\"pools\":[]},\"continues\":true}",
    "{\"error\":\"io.danaus.Manager.NoSuchPool\",\"parameters\":{\"name\":\"x\"}}",
    "{\"method\":\"a.b.C\",\"oneway\":true,\"parameters\":{\"s\":\"\\u00e9\\n\",\"n\":-1.5e3}}",
};

static const char alphabet[] = "{}[]\":,\\0123456789.-+eEtruefalsnl \n\t\x00\xff\xc3\xa9u";

static size_t mutate(uint8_t *buf, size_t n, size_t cap)
{
        int k = 1 + (int)(rng() % 4);

        for (int i = 0; i < k; i++) {
                size_t pos = n ? (size_t)(rng() % n) : 0;
                switch (rng() % 5) {
                case 0: /* flip a bit */
                        if (n)
                                buf[pos] ^= (uint8_t)(1u << (rng() % 8));
                        break;
                case 1: /* insert a JSON-ish byte */
                        if (n < cap) {
                                memmove(buf + pos + 1, buf + pos, n - pos);
                                buf[pos] = (uint8_t)alphabet[rng() % (sizeof(alphabet) - 1)];
                                n++;
                        }
                        break;
                case 2: /* delete a byte */
                        if (n) {
                                memmove(buf + pos, buf + pos + 1, n - pos - 1);
                                n--;
                        }
                        break;
                case 3: /* truncate */
                        n = pos;
                        break;
                case 4: /* duplicate a range (nesting, repeated messages) */
                        if (n && n < cap) {
                                size_t len = (size_t)(rng() % (n - pos)) + 1;
                                if (n + len > cap)
                                        len = cap - n;
                                memmove(buf + pos + len, buf + pos, n - pos);
                                n += len;
                        }
                        break;
                }
        }
        return n;
}

int main(int argc, char **argv)
{
        const char *runs_env = getenv("DANAUS_FUZZ_RUNS");
        long runs = runs_env ? strtol(runs_env, NULL, 10) : 20000;
        uint8_t buf[4 * FUZZ_MAX_MESSAGE];
        size_t n_seeds = sizeof(seeds_builtin) / sizeof(seeds_builtin[0]);

        for (int i = 1; i < argc; i++) {
                FILE *f = fopen(argv[i], "rb");
                size_t n;
                if (!f) {
                        fprintf(stderr, "fuzz-varlink: %s: %s\n", argv[i], strerror(errno));
                        return 1;
                }
                n = fread(buf, 1, sizeof(buf), f);
                fclose(f);
                LLVMFuzzerTestOneInput(buf, n);
        }
        for (long i = 0; i < runs; i++) {
                const char *seed = seeds_builtin[rng() % n_seeds];
                size_t n = strlen(seed) + 1; /* with its NUL: a framed message */
                memcpy(buf, seed, n);
                /* sometimes two messages back to back */
                if (rng() % 4 == 0 && 2 * n <= sizeof(buf)) {
                        memcpy(buf + n, seed, n);
                        n *= 2;
                }
                n = mutate(buf, n, sizeof(buf));
                LLVMFuzzerTestOneInput(buf, n);
        }
        printf("fuzz-varlink: %ld random inputs and %d files, no failure\n", runs, argc - 1);
        return 0;
}
#endif
