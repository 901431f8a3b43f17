// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * danaus-bench: file system micro-benchmark used by scripts/bench (issue 9).
 *
 *   danaus-bench --dir DIR --op OP [--threads N] [--reps R] [--iters K]
 *                [--size BYTES] [--cu-size BYTES] [--entries N]
 *                [--file-base B] [--rep-base B] [--tarball PATH] [--label NAME]
 *
 * Prints one line per repetition on stdout:
 *   system=NAME op=OP threads=N rep=R value=V unit=U
 * ("system=" only with --label). Latency ops report wall-clock time divided
 * by the total number of operations of all threads (us/op or ms/op);
 * throughput ops report total bytes of all threads / wall-clock (MB/s,
 * 1 MB = 10^6 bytes). Diagnostics go to stderr; exit status 1 on any error.
 *
 * Layout expected below DIR (created here when missing, so the tool also
 * works on an empty directory; scripts/bench pre-creates the read-only parts
 * in the lower layers so that unions read them from below):
 *   rd/e00000 ... rd/eNNNNN   --entries empty files (stat, open, readdir)
 *   data/r0 ... data/r<N-1>   --size bytes each (pread, seqread*)
 *   cu/f<i>                   --cu-size bytes each (copyup; one per op)
 *   deep/d01/../d30/eNNNNN    --entries empty files 30 levels down (stat-deep)
 *   rn/a/s/eNNNNN             --entries empty files (stat-renamed): setup
 *                             renames rn/a to rn/b once, then stat-renamed
 *                             looks up rn/b/s/eNNNNN (a directory renamed
 *                             through DIR; where rename gives EXDEV, as on
 *                             overlayfs without redirect_dir, rn/b is
 *                             created instead and a note goes to stderr)
 *   work/<pid>/t<i>/          scratch, removed at exit
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CHUNK       (1u << 20) /* sequential I/O unit: 1 MiB */
#define BLK         4096u      /* random I/O unit: 4 KiB */
#define PWRITE_SPAN (16u << 20)

enum op {
        OP_STAT,
        OP_OPEN,
        OP_CREATE,
        OP_PREAD,
        OP_PWRITE,
        OP_SEQREAD,
        OP_SEQREAD_COLD,
        OP_SEQWRITE,
        OP_READDIR,
        OP_COPYUP,
        OP_TAR,
        OP_STAT_DEEP,
        OP_STAT_RENAMED,
};

enum unit { U_US, U_MS, U_MBS };

static const struct opdef {
        const char *name;
        enum op op;
        enum unit unit;
        long iters; /* default per thread and repetition */
} opdefs[] = {
    {"stat", OP_STAT, U_US, 20000},
    {"open", OP_OPEN, U_US, 20000},
    {"create", OP_CREATE, U_US, 5000},
    {"pread", OP_PREAD, U_US, 20000},
    {"pwrite", OP_PWRITE, U_US, 20000},
    {"seqread", OP_SEQREAD, U_MBS, 1},
    {"seqread-cold", OP_SEQREAD_COLD, U_MBS, 1},
    {"seqwrite", OP_SEQWRITE, U_MBS, 1},
    {"readdir", OP_READDIR, U_MS, 10},
    {"copyup", OP_COPYUP, U_MS, 1},
    {"tar", OP_TAR, U_MS, 1},
    {"stat-deep", OP_STAT_DEEP, U_US, 20000},
    {"stat-renamed", OP_STAT_RENAMED, U_US, 20000},
};

#define DEEP_LEVELS 30

static const char *unit_names[] = {"us/op", "ms/op", "MB/s"};

static struct {
        const char *dir;
        const struct opdef *op;
        int threads;
        int reps;
        long iters;
        uint64_t size;
        uint64_t cu_size;
        long entries;
        long file_base;
        long rep_base;
        const char *tarball;
        const char *label;
} cfg = {
    .threads = 1,
    .reps = 5,
    .iters = -1,
    .size = 256u << 20,
    .cu_size = 100u << 20,
    .entries = 10000,
};

struct thr {
        int id;
        pthread_t tid;
        char work[4096]; /* per-thread scratch directory */
        char path[4096]; /* per-op file */
        int fd;
        char *buf;
        uint64_t bytes;
        double t0, t1;
        int err;
        int rep;
};

static pthread_barrier_t barrier;
static char workroot[4096];

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "danaus-bench: ");
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t parse_size(const char *s)
{
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s)
                die("bad size '%s'", s);
        switch (*end) {
        case 'k':
        case 'K':
                v <<= 10;
                end++;
                break;
        case 'm':
        case 'M':
                v <<= 20;
                end++;
                break;
        case 'g':
        case 'G':
                v <<= 30;
                end++;
                break;
        default:
                break;
        }
        if (*end == 'i' || *end == 'B')
                end++;
        if (*end)
                die("bad size '%s'", s);
        return v;
}

static long parse_long(const char *s, long min)
{
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min)
                die("bad number '%s'", s);
        return v;
}

static void pathf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *dst, size_t n, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = vsnprintf(dst, n, fmt, ap);
        va_end(ap);
        if (r < 0 || (size_t)r >= n)
                die("path too long");
}

static void mkdir_p(const char *p)
{
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                die("mkdir %s: %s", p, strerror(errno));
}

/* mkdir -p: every missing component of P (below an existing one) */
static void mkdir_parents(const char *p)
{
        char q[4096];
        pathf(q, sizeof q, "%s", p);
        for (char *c = q + 1; *c; c++)
                if (*c == '/') {
                        *c = '\0';
                        mkdir_p(q);
                        *c = '/';
                }
        mkdir_p(q);
}

/* DIR/e00000 .. : --entries empty files in a new directory tree */
static void make_entries(const char *dir)
{
        char p[4096];
        mkdir_parents(dir);
        for (long i = 0; i < cfg.entries; i++) {
                pathf(p, sizeof p, "%s/e%05ld", dir, i);
                int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (fd < 0)
                        die("create %s: %s", p, strerror(errno));
                close(fd);
        }
}

static void fill_pattern(char *buf, size_t n, unsigned seed)
{
        uint32_t x = 2463534242u ^ seed;
        for (size_t i = 0; i + 4 <= n; i += 4) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                memcpy(buf + i, &x, 4);
        }
}

static void write_all(int fd, const char *buf, size_t n, const char *what)
{
        while (n > 0) {
                ssize_t w = write(fd, buf, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        die("write %s: %s", what, strerror(errno));
                }
                buf += w;
                n -= (size_t)w;
        }
}

/* Creates PATH with SIZE bytes of non-zero data unless it already has that size. */
static void ensure_file(const char *path, uint64_t size)
{
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size)
                return;
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                die("create %s: %s", path, strerror(errno));
        char *buf = malloc(CHUNK);
        if (!buf)
                die("out of memory");
        fill_pattern(buf, CHUNK, (unsigned)size);
        for (uint64_t off = 0; off < size; off += CHUNK) {
                size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
                write_all(fd, buf, n, path);
        }
        free(buf);
        if (close(fd) < 0)
                die("close %s: %s", path, strerror(errno));
}

/* Reads PATH to the end (warms the page caches along the way). */
static uint64_t read_whole(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                die("open %s: %s", path, strerror(errno));
        char *buf = malloc(CHUNK);
        if (!buf)
                die("out of memory");
        uint64_t total = 0;
        for (;;) {
                ssize_t r = read(fd, buf, CHUNK);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        die("read %s: %s", path, strerror(errno));
                }
                if (r == 0)
                        break;
                total += (uint64_t)r;
        }
        free(buf);
        close(fd);
        return total;
}

static int rm_cb(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
        (void)sb;
        (void)type;
        (void)ftw;
        if (remove(p) < 0 && errno != ENOENT)
                fprintf(stderr, "danaus-bench: remove %s: %s\n", p, strerror(errno));
        return 0;
}

static void rm_rf(const char *p)
{
        nftw(p, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
}

static void cleanup_work(void)
{
        if (workroot[0])
                rm_rf(workroot);
}

static int run_cmd(char *const argv[])
{
        pid_t pid;
        int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
        if (rc != 0) {
                fprintf(stderr, "danaus-bench: spawn %s: %s\n", argv[0], strerror(rc));
                return -1;
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -1;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "danaus-bench: %s failed (status %d)\n", argv[0], st);
                return -1;
        }
        return 0;
}

static char entry_dir[4096]; /* rd, deep/d01/../d30 or rn/b/s below cfg.dir */

static void entry_path(char *dst, size_t n, long i)
{
        pathf(dst, n, "%s/%s/e%05ld", cfg.dir, entry_dir[0] ? entry_dir : "rd", i);
}

static long cu_index(int rep, int t)
{
        return cfg.file_base + (long)rep * cfg.threads + t;
}

/* ---- per-thread timed bodies ---- */

#define FAIL(t, ...)                                                                               \
        do {                                                                                       \
                fprintf(stderr, "danaus-bench: " __VA_ARGS__);                                     \
                fputc('\n', stderr);                                                               \
                (t)->err = 1;                                                                      \
                return;                                                                            \
        } while (0)

static void body(struct thr *t)
{
        char p[4096];
        long k = cfg.iters;
        int n = cfg.threads;

        switch (cfg.op->op) {
        case OP_STAT:
        case OP_STAT_DEEP:
        case OP_STAT_RENAMED: {
                struct stat st;
                for (long i = 0; i < k; i++) {
                        entry_path(p, sizeof p, (t->id + i * n) % cfg.entries);
                        if (stat(p, &st) < 0)
                                FAIL(t, "stat %s: %s", p, strerror(errno));
                }
                break;
        }
        case OP_OPEN:
                for (long i = 0; i < k; i++) {
                        entry_path(p, sizeof p, (t->id + i * n) % cfg.entries);
                        int fd = open(p, O_RDONLY | O_CLOEXEC);
                        if (fd < 0)
                                FAIL(t, "open %s: %s", p, strerror(errno));
                        close(fd);
                }
                break;
        case OP_CREATE:
                for (long i = 0; i < k; i++) {
                        pathf(p, sizeof p, "%s/c%ld", t->work, i);
                        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                        if (fd < 0)
                                FAIL(t, "create %s: %s", p, strerror(errno));
                        close(fd);
                        if (unlink(p) < 0)
                                FAIL(t, "unlink %s: %s", p, strerror(errno));
                }
                break;
        case OP_PREAD: {
                uint64_t nblk = cfg.size / BLK;
                uint32_t x = 12345u + (uint32_t)t->id;
                for (long i = 0; i < k; i++) {
                        x = x * 1664525u + 1013904223u;
                        off_t off = (off_t)((x % nblk) * BLK);
                        if (pread(t->fd, t->buf, BLK, off) != (ssize_t)BLK)
                                FAIL(t, "pread %s: %s", t->path, strerror(errno));
                }
                break;
        }
        case OP_PWRITE: {
                uint64_t nblk = PWRITE_SPAN / BLK;
                for (long i = 0; i < k; i++) {
                        off_t off = (off_t)(((uint64_t)i % nblk) * BLK);
                        if (pwrite(t->fd, t->buf, BLK, off) != (ssize_t)BLK)
                                FAIL(t, "pwrite %s: %s", t->path, strerror(errno));
                }
                break;
        }
        case OP_SEQREAD:
        case OP_SEQREAD_COLD:
                for (;;) {
                        ssize_t r = read(t->fd, t->buf, CHUNK);
                        if (r < 0)
                                FAIL(t, "read %s: %s", t->path, strerror(errno));
                        if (r == 0)
                                break;
                        t->bytes += (uint64_t)r;
                }
                if (t->bytes != cfg.size)
                        FAIL(t, "read %s: %" PRIu64 " bytes, expected %" PRIu64, t->path, t->bytes,
                             cfg.size);
                break;
        case OP_SEQWRITE: {
                int fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0)
                        FAIL(t, "create %s: %s", t->path, strerror(errno));
                for (uint64_t off = 0; off < cfg.size; off += CHUNK) {
                        size_t len = cfg.size - off < CHUNK ? (size_t)(cfg.size - off) : CHUNK;
                        ssize_t w = write(fd, t->buf, len);
                        if (w != (ssize_t)len) {
                                int e = errno;
                                close(fd);
                                FAIL(t, "write %s: %s", t->path,
                                     w < 0 ? strerror(e) : "short write");
                        }
                        t->bytes += len;
                }
                if (close(fd) < 0)
                        FAIL(t, "close %s: %s", t->path, strerror(errno));
                break;
        }
        case OP_READDIR:
                pathf(p, sizeof p, "%s/rd", cfg.dir);
                for (long i = 0; i < k; i++) {
                        DIR *d = opendir(p);
                        if (!d)
                                FAIL(t, "opendir %s: %s", p, strerror(errno));
                        long cnt = 0;
                        struct dirent *de;
                        errno = 0;
                        while ((de = readdir(d)) != NULL)
                                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                                        cnt++;
                        int e = errno;
                        closedir(d);
                        if (e)
                                FAIL(t, "readdir %s: %s", p, strerror(e));
                        if (cnt != cfg.entries) /* also catches duplicates in a union */
                                FAIL(t, "readdir %s: %ld entries, expected %ld", p, cnt,
                                     cfg.entries);
                }
                break;
        case OP_COPYUP: {
                int fd = open(t->path, O_WRONLY | O_CLOEXEC);
                if (fd < 0)
                        FAIL(t, "open %s: %s", t->path, strerror(errno));
                if (pwrite(fd, "X", 1, 0) != 1) {
                        int e = errno;
                        close(fd);
                        FAIL(t, "pwrite %s: %s", t->path, strerror(e));
                }
                if (close(fd) < 0)
                        FAIL(t, "close %s: %s", t->path, strerror(errno));
                break;
        }
        case OP_TAR: {
                char *argv[] = {"tar", "-xf", (char *)cfg.tarball, "-C", t->path, NULL};
                if (run_cmd(argv) < 0)
                        FAIL(t, "tar -xf %s -C %s failed", cfg.tarball, t->path);
                break;
        }
        }
}

/* Untimed per-repetition preparation, in the thread before the barrier. */
static void prepare(struct thr *t)
{
        t->fd = -1;
        t->bytes = 0;
        switch (cfg.op->op) {
        case OP_PREAD:
        case OP_SEQREAD:
        case OP_SEQREAD_COLD:
                pathf(t->path, sizeof t->path, "%s/data/r%d", cfg.dir, t->id);
                t->fd = open(t->path, O_RDONLY | O_CLOEXEC);
                if (t->fd < 0)
                        FAIL(t, "open %s: %s", t->path, strerror(errno));
                break;
        case OP_PWRITE:
                pathf(t->path, sizeof t->path, "%s/pw", t->work);
                t->fd = open(t->path, O_WRONLY | O_CLOEXEC);
                if (t->fd < 0)
                        FAIL(t, "open %s: %s", t->path, strerror(errno));
                break;
        case OP_SEQWRITE:
                pathf(t->path, sizeof t->path, "%s/sw", t->work);
                break;
        case OP_COPYUP:
                pathf(t->path, sizeof t->path, "%s/cu/f%ld", cfg.dir, cu_index(t->rep, t->id));
                break;
        case OP_TAR:
                pathf(t->path, sizeof t->path, "%s/x%d", t->work, t->rep);
                if (mkdir(t->path, 0755) < 0)
                        FAIL(t, "mkdir %s: %s", t->path, strerror(errno));
                break;
        default:
                break;
        }
}

/* Untimed per-repetition cleanup, after the timed part. */
static void finish(struct thr *t)
{
        if (t->fd >= 0)
                close(t->fd);
        t->fd = -1;
        switch (cfg.op->op) {
        case OP_SEQWRITE:
                unlink(t->path);
                break;
        case OP_TAR: {
                char *argv[] = {"rm", "-rf", "--one-file-system", t->path, NULL};
                if (run_cmd(argv) < 0)
                        t->err = 1;
                break;
        }
        default:
                break;
        }
}

static void *thread_main(void *arg)
{
        struct thr *t = arg;
        prepare(t);
        pthread_barrier_wait(&barrier);
        if (!t->err) {
                t->t0 = now();
                body(t);
                t->t1 = now();
        }
        finish(t);
        return NULL;
}

/* ---- global setup ---- */

/* Cold read: drops the file's pages (on a FUSE mount: the FUSE inode's
 * pages) and then the whole kernel page cache (backing files too). */
static void drop_caches(void)
{
        sync();
        for (int i = 0; i < cfg.threads; i++) {
                char p[4096];
                pathf(p, sizeof p, "%s/data/r%d", cfg.dir, i);
                int fd = open(p, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
                        close(fd);
                }
        }
        int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "1", 1) != 1) {
                static bool warned;
                if (!warned)
                        fprintf(stderr,
                                "danaus-bench: cannot drop caches (%s); "
                                "cold read is only fadvise(DONTNEED)\n",
                                strerror(errno));
                warned = true;
        }
        if (fd >= 0)
                close(fd);
}

static void setup(struct thr *th)
{
        char p[4096];
        const enum op op = cfg.op->op;

        pathf(p, sizeof p, "%s/work", cfg.dir);
        mkdir_p(p);
        pathf(workroot, sizeof workroot, "%s/work/%ld", cfg.dir, (long)getpid());
        mkdir_p(workroot);
        atexit(cleanup_work);
        for (int i = 0; i < cfg.threads; i++) {
                th[i].id = i;
                pathf(th[i].work, sizeof th[i].work, "%s/t%d", workroot, i);
                mkdir_p(th[i].work);
                th[i].buf = aligned_alloc(4096, CHUNK);
                if (!th[i].buf)
                        die("out of memory");
                fill_pattern(th[i].buf, CHUNK, (unsigned)i + 7);
        }

        if (op == OP_STAT_DEEP) {
                size_t len = 0;
                len += (size_t)snprintf(entry_dir, sizeof entry_dir, "deep");
                for (int l = 1; l <= DEEP_LEVELS; l++)
                        len +=
                            (size_t)snprintf(entry_dir + len, sizeof entry_dir - len, "/d%02d", l);
        } else if (op == OP_STAT_RENAMED) {
                char a[4096], st_p[4096];
                struct stat st;
                pathf(st_p, sizeof st_p, "%s/rn/b/s", cfg.dir);
                if (stat(st_p, &st) < 0) {
                        pathf(a, sizeof a, "%s/rn/a/s", cfg.dir);
                        if (stat(a, &st) < 0)
                                make_entries(a); /* not prepared below: made through DIR */
                        pathf(a, sizeof a, "%s/rn/a", cfg.dir);
                        pathf(p, sizeof p, "%s/rn/b", cfg.dir);
                        if (rename(a, p) < 0) {
                                if (errno != EXDEV)
                                        die("rename %s %s: %s", a, p, strerror(errno));
                                fprintf(stderr,
                                        "danaus-bench: rename %s: EXDEV; "
                                        "rn/b created instead\n",
                                        a);
                                make_entries(st_p);
                        }
                }
                snprintf(entry_dir, sizeof entry_dir, "rn/b/s");
        }

        switch (op) {
        case OP_STAT:
        case OP_STAT_DEEP:
        case OP_STAT_RENAMED:
        case OP_OPEN:
        case OP_READDIR: {
                pathf(p, sizeof p, "%s/%s", cfg.dir, entry_dir[0] ? entry_dir : "rd");
                struct stat st;
                bool fresh = stat(p, &st) < 0;
                mkdir_parents(p);
                for (long i = 0; i < cfg.entries; i++) {
                        entry_path(p, sizeof p, i);
                        if (fresh) {
                                int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                                if (fd < 0)
                                        die("create %s: %s", p, strerror(errno));
                                close(fd);
                        } else if (op != OP_READDIR && stat(p, &st) < 0) {
                                /* also the warm-up: every entry looked up once */
                                die("stat %s: %s (is rd/ populated with --entries files?)", p,
                                    strerror(errno));
                        }
                }
                break;
        }
        case OP_PREAD:
        case OP_SEQREAD:
        case OP_SEQREAD_COLD:
                if (op == OP_PREAD && cfg.size < BLK)
                        die("--size must be at least 4 KiB for pread");
                pathf(p, sizeof p, "%s/data", cfg.dir);
                mkdir_p(p);
                for (int i = 0; i < cfg.threads; i++) {
                        pathf(p, sizeof p, "%s/data/r%d", cfg.dir, i);
                        ensure_file(p, cfg.size);
                        if (op != OP_SEQREAD_COLD)
                                read_whole(p); /* the "cached" ops read warm data */
                }
                break;
        case OP_PWRITE:
                for (int i = 0; i < cfg.threads; i++) {
                        pathf(p, sizeof p, "%s/pw", th[i].work);
                        ensure_file(p, PWRITE_SPAN);
                }
                break;
        case OP_COPYUP:
                pathf(p, sizeof p, "%s/cu", cfg.dir);
                mkdir_p(p);
                for (int r = 0; r < cfg.reps; r++)
                        for (int i = 0; i < cfg.threads; i++) {
                                pathf(p, sizeof p, "%s/cu/f%ld", cfg.dir, cu_index(r, i));
                                struct stat st;
                                if (stat(p, &st) < 0)
                                        ensure_file(p, cfg.cu_size);
                                /* warm the source so copy-up cost is CPU/IPC, not disk */
                                read_whole(p);
                        }
                break;
        case OP_TAR:
                if (!cfg.tarball)
                        die("--op tar needs --tarball");
                if (access(cfg.tarball, R_OK) < 0)
                        die("tarball %s: %s", cfg.tarball, strerror(errno));
                break;
        default:
                break;
        }
}

static void usage(FILE *f)
{
        fprintf(
            f,
            "usage: danaus-bench --dir DIR --op OP [--threads N] [--reps R] [--iters K]\n"
            "                    [--size BYTES] [--cu-size BYTES] [--entries N]\n"
            "                    [--file-base B] [--rep-base B] [--tarball PATH] [--label NAME]\n"
            "ops:");
        for (size_t i = 0; i < sizeof opdefs / sizeof opdefs[0]; i++)
                fprintf(f, " %s", opdefs[i].name);
        fputc('\n', f);
}

int main(int argc, char **argv)
{
        static const struct option lopts[] = {
            {"dir", required_argument, NULL, 'd'},
            {"op", required_argument, NULL, 'o'},
            {"threads", required_argument, NULL, 't'},
            {"reps", required_argument, NULL, 'r'},
            {"iters", required_argument, NULL, 'k'},
            {"size", required_argument, NULL, 's'},
            {"cu-size", required_argument, NULL, 'c'},
            {"entries", required_argument, NULL, 'e'},
            {"file-base", required_argument, NULL, 'f'},
            {"rep-base", required_argument, NULL, 'b'},
            {"tarball", required_argument, NULL, 'a'},
            {"label", required_argument, NULL, 'l'},
            {"help", no_argument, NULL, 'h'},
            {0},
        };
        int c;
        while ((c = getopt_long(argc, argv, "d:o:t:r:k:s:c:e:f:b:a:l:h", lopts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        cfg.dir = optarg;
                        break;
                case 'o':
                        for (size_t i = 0; i < sizeof opdefs / sizeof opdefs[0]; i++)
                                if (strcmp(optarg, opdefs[i].name) == 0)
                                        cfg.op = &opdefs[i];
                        if (!cfg.op)
                                die("unknown op '%s'", optarg);
                        break;
                case 't':
                        cfg.threads = (int)parse_long(optarg, 1);
                        break;
                case 'r':
                        cfg.reps = (int)parse_long(optarg, 1);
                        break;
                case 'k':
                        cfg.iters = parse_long(optarg, 1);
                        break;
                case 's':
                        cfg.size = parse_size(optarg);
                        break;
                case 'c':
                        cfg.cu_size = parse_size(optarg);
                        break;
                case 'e':
                        cfg.entries = parse_long(optarg, 1);
                        break;
                case 'f':
                        cfg.file_base = parse_long(optarg, 0);
                        break;
                case 'b':
                        cfg.rep_base = parse_long(optarg, 0);
                        break;
                case 'a':
                        cfg.tarball = optarg;
                        break;
                case 'l':
                        cfg.label = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (!cfg.dir || !cfg.op || optind != argc) {
                usage(stderr);
                return 2;
        }
        if (cfg.threads > 64)
                die("--threads: at most 64");
        if (cfg.iters < 0)
                cfg.iters = cfg.op->iters;
        /* one file (or one tar run) per thread and repetition */
        if (cfg.op->op == OP_COPYUP || cfg.op->op == OP_TAR || cfg.op->unit == U_MBS)
                cfg.iters = 1;

        struct thr *th = calloc((size_t)cfg.threads, sizeof *th);
        if (!th)
                die("out of memory");
        setup(th);

        int rc = 0;
        for (int r = 0; r < cfg.reps; r++) {
                if (cfg.op->op == OP_SEQREAD_COLD)
                        drop_caches();
                if (pthread_barrier_init(&barrier, NULL, (unsigned)cfg.threads) != 0)
                        die("pthread_barrier_init failed");
                for (int i = 0; i < cfg.threads; i++) {
                        th[i].rep = r;
                        th[i].err = 0;
                        th[i].t0 = th[i].t1 = 0;
                        int e = pthread_create(&th[i].tid, NULL, thread_main, &th[i]);
                        if (e)
                                die("pthread_create: %s", strerror(e));
                }
                double t0 = 0, t1 = 0;
                uint64_t bytes = 0;
                bool err = false;
                for (int i = 0; i < cfg.threads; i++) {
                        pthread_join(th[i].tid, NULL);
                        err |= th[i].err != 0;
                        if (i == 0 || th[i].t0 < t0)
                                t0 = th[i].t0;
                        if (th[i].t1 > t1)
                                t1 = th[i].t1;
                        bytes += th[i].bytes;
                }
                pthread_barrier_destroy(&barrier);
                if (err) {
                        rc = 1;
                        break;
                }
                double wall = t1 - t0, v;
                double ops = (double)cfg.iters * cfg.threads;
                switch (cfg.op->unit) {
                case U_US:
                        v = wall / ops * 1e6;
                        break;
                case U_MS:
                        v = wall / ops * 1e3;
                        break;
                default:
                        v = (double)bytes / wall / 1e6;
                        break;
                }
                if (cfg.label)
                        printf("system=%s ", cfg.label);
                printf("op=%s threads=%d rep=%ld value=%.3f unit=%s\n", cfg.op->name, cfg.threads,
                       cfg.rep_base + r, v, unit_names[cfg.op->unit]);
                fflush(stdout);
        }
        for (int i = 0; i < cfg.threads; i++)
                free(th[i].buf);
        free(th);
        return rc;
}
