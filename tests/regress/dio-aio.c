// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dio-aio FILE: a buffered reader must see what an asynchronous O_DIRECT
 * write to the same range wrote once it has completed (test-realfs.sh).
 * FILE (created) gets 1 MiB of 'A' through a buffered fd, read back through
 * it (pages cached); then for each of 16 rounds, an O_DIRECT fd writes the
 * whole 1 MiB with a new byte as 16 asynchronous 64 KiB writes (Linux AIO,
 * io_submit with raw syscalls: no libaio needed), the buffered fd reads
 * the file while they are in flight (what it gets then is not checked),
 * the writes complete (io_getevents), and the buffered fd reads the file
 * again: every byte must be the new one, as on ext4, whose direct I/O
 * completion drops the pages a racing buffered read brought in.
 * Exits 0 if so, 1 with the first stale byte, 77 if O_DIRECT or AIO is not
 * supported here.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SZ    (1 << 20)
#define CHUNK (64 << 10)

static char *buf, *rbuf; /* global: reachable until exit (LeakSanitizer) */

int main(int argc, char **argv)
{
        aio_context_t ctx = 0;
        int fd, dfd, bad = 0;

        if (argc != 2) {
                fprintf(stderr, "usage: dio-aio FILE\n");
                return 2;
        }
        fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
                perror(argv[1]);
                return 1;
        }
        if (posix_memalign((void **)&buf, 4096, CHUNK) || !(rbuf = malloc(SZ)))
                return 1;
        memset(rbuf, 'A', SZ);
        if (pwrite(fd, rbuf, SZ, 0) != SZ || fsync(fd) < 0 || pread(fd, rbuf, SZ, 0) != SZ) {
                perror("buffered write/read");
                return 1;
        }
        dfd = open(argv[1], O_RDWR | O_DIRECT);
        if (dfd < 0) {
                perror("open O_DIRECT");
                return errno == EINVAL ? 77 : 1;
        }
        if (syscall(SYS_io_setup, 8, &ctx) < 0) {
                perror("io_setup");
                return 77;
        }
        for (int round = 0; round < 16 && !bad; round++) {
                struct iocb cb[SZ / CHUNK], *cbs[SZ / CHUNK];
                struct io_event ev[SZ / CHUNK];
                char c = (char)('a' + round);
                int n = SZ / CHUNK, got = 0;

                memset(buf, c, CHUNK);
                memset(cb, 0, sizeof(cb));
                for (int i = 0; i < n; i++) {
                        cb[i].aio_fildes = (unsigned)dfd;
                        cb[i].aio_lio_opcode = IOCB_CMD_PWRITE;
                        cb[i].aio_buf = (unsigned long)buf;
                        cb[i].aio_nbytes = CHUNK;
                        cb[i].aio_offset = (long long)i * CHUNK;
                        cbs[i] = &cb[i];
                }
                if (syscall(SYS_io_submit, ctx, n, cbs) != n) {
                        perror("io_submit");
                        return 1;
                }
                if (pread(fd, rbuf, SZ, 0) != SZ) { /* racing: not checked */
                        perror("buffered read");
                        return 1;
                }
                while (got < n) {
                        long r = syscall(SYS_io_getevents, ctx, 1, n - got, ev, NULL);
                        if (r < 1) {
                                perror("io_getevents");
                                return 1;
                        }
                        for (long i = 0; i < r; i++)
                                if (ev[i].res != CHUNK) {
                                        fprintf(stderr, "async O_DIRECT write: result %lld\n",
                                                (long long)ev[i].res);
                                        return 1;
                                }
                        got += (int)r;
                }
                if (pread(fd, rbuf, SZ, 0) != SZ) {
                        perror("buffered read");
                        return 1;
                }
                for (int i = 0; i < SZ; i++)
                        if (rbuf[i] != c) {
                                printf("round %d: byte %d is '%c' after the async O_DIRECT writes "
                                       "of '%c' completed\n",
                                       round, i, rbuf[i], c);
                                bad = 1;
                                break;
                        }
        }
        syscall(SYS_io_destroy, ctx);
        if (!bad)
                printf("16 rounds of 16 async O_DIRECT writes, each seen by the buffered reader\n");
        return bad;
}
