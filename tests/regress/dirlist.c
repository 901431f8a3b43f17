// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Directory listing checks for test-listings.sh and test-realfs.sh.
 *
 *   dirlist interleave DIR BUFSIZE [change]
 *       Two fds of DIR read with getdents64 in turns (BUFSIZE bytes each
 *       call) until both reach the end. Each must return every entry of
 *       the directory exactly once. With "change": after each turn up to
 *       10 names the first reader has already returned are removed and one
 *       "new-N" is created (through DIR), and the second reader starts (at
 *       offset 0) only at the third turn; POSIX leaves it open whether a
 *       reader sees a name removed or added after its opendir, so those
 *       may show once or not at all; every other name exactly once.
 *   dirlist seekdir DIR K [change]
 *       readdir to the end, remembering telldir() before the K-th entry;
 *       seekdir() back there: readdir must return the same entries from the
 *       K-th to the end. With "change": before the seekdir, the first K/2
 *       entries (already returned) are removed and another reader lists
 *       the directory; entries from the K-th on are unchanged and must all
 *       come again.
 * Prints what is wrong and exits 1, else exits 0.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_NAMES 100000

struct linux_dirent64 {
        unsigned long long d_ino;
        long long d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
};

static char *names[MAX_NAMES];
static char *buf; /* getdents64 buffer (global: reachable until exit) */
static int n_names;

static int name_index(const char *s, int add)
{
        for (int i = 0; i < n_names; i++)
                if (strcmp(names[i], s) == 0)
                        return i;
        if (!add || n_names == MAX_NAMES)
                return -1;
        names[n_names] = strdup(s);
        return n_names++;
}

static int dots(const char *s)
{
        return strcmp(s, ".") == 0 || strcmp(s, "..") == 0;
}

static int interleave(const char *dir, size_t bufsize, int change)
{
        static int seen[2][MAX_NAMES];
        static char initial[MAX_NAMES], changed[MAX_NAMES];
        int fd[2], done[2] = {0, 0}, turn = 0, bad = 0, n_new = 0;
        DIR *d = opendir(dir);
        struct dirent *de;

        buf = malloc(bufsize);
        if (!d || !buf) {
                perror(dir);
                return 2;
        }
        while ((de = readdir(d)))
                if (!dots(de->d_name))
                        initial[name_index(de->d_name, 1)] = 1;
        closedir(d);
        for (int r = 0; r < 2; r++) {
                fd[r] = open(dir, O_RDONLY | O_DIRECTORY);
                if (fd[r] < 0) {
                        perror(dir);
                        return 2;
                }
        }
        while (!done[0] || !done[1]) {
                for (int r = 0; r < 2; r++) {
                        if (done[r] || (change && r == 1 && turn < 2))
                                continue;
                        long n = syscall(SYS_getdents64, fd[r], buf, bufsize);
                        if (n < 0) {
                                fprintf(stderr, "getdents64 (reader %d): %s\n", r, strerror(errno));
                                return 1;
                        }
                        if (n == 0)
                                done[r] = 1;
                        for (long o = 0; o < n;) {
                                struct linux_dirent64 *e = (void *)(buf + o);
                                o += e->d_reclen;
                                if (dots(e->d_name))
                                        continue;
                                int i = name_index(e->d_name, 1);
                                if (i >= 0)
                                        seen[r][i]++;
                        }
                }
                if (change) {
                        char p[4096];
                        int k = 0;
                        /* up to 10 names the first reader has already
                         * returned are removed, one is added */
                        for (int i = 0; i < n_names && k < 10; i++) {
                                if (!initial[i] || changed[i] || !seen[0][i])
                                        continue;
                                snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
                                if (unlink(p) < 0)
                                        perror(p);
                                changed[i] = 1;
                                k++;
                        }
                        snprintf(p, sizeof(p), "%s/new-%d", dir, n_new++);
                        int f = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
                        if (f < 0)
                                perror(p);
                        else
                                close(f);
                }
                turn++;
        }
        for (int r = 0; r < 2; r++) {
                int skipped = 0, twice = 0, unknown = 0;
                for (int i = 0; i < n_names; i++) {
                        int chg = changed[i] || !initial[i];
                        if (seen[r][i] > 1) {
                                if (twice++ < 3)
                                        fprintf(stderr, "reader %d: %s seen %d times\n", r,
                                                names[i], seen[r][i]);
                        } else if (!chg && !seen[r][i]) {
                                if (skipped++ < 3)
                                        fprintf(stderr, "reader %d: %s skipped\n", r, names[i]);
                        } else if (!initial[i] && strncmp(names[i], "new-", 4) != 0 && seen[r][i]) {
                                unknown++;
                        }
                }
                printf("reader %d: %d turns, %d entries skipped, %d seen twice, %d unknown\n", r,
                       turn, skipped, twice, unknown);
                bad |= skipped || twice || unknown;
        }
        return bad;
}

static int seek_back(const char *dir, int k, int change)
{
        static char *before[MAX_NAMES];
        int n_before = 0;
        DIR *d = opendir(dir);
        struct dirent *de;
        long pos = -1;
        int n = 0, m = 0, bad = 0;

        if (!d) {
                perror(dir);
                return 2;
        }
        for (;;) {
                if (n == k)
                        pos = telldir(d);
                de = readdir(d);
                if (!de)
                        break;
                if (n >= k && name_index(de->d_name, 1) < 0) {
                        fprintf(stderr, "too many names\n");
                        return 2;
                }
                if (n < k / 2 && !dots(de->d_name))
                        before[n_before++] = strdup(de->d_name);
                n++;
        }
        if (pos < 0) {
                fprintf(stderr, "%s: fewer than %d entries\n", dir, k);
                return 2;
        }
        if (change) {
                char p[4096];
                for (int i = 0; i < n_before; i++) {
                        snprintf(p, sizeof(p), "%s/%s", dir, before[i]);
                        if (unlink(p) < 0)
                                perror(p);
                }
                DIR *d2 = opendir(dir);
                int n2 = 0;
                while (d2 && readdir(d2))
                        n2++;
                if (d2)
                        closedir(d2);
                printf("removed %d entries before the position; another reader listed %d\n",
                       n_before, n2);
        }
        seekdir(d, pos);
        while ((de = readdir(d))) {
                if (m >= n_names || strcmp(de->d_name, names[m]) != 0) {
                        fprintf(stderr, "after seekdir: entry %d is %s, first pass had %s\n", k + m,
                                de->d_name, m < n_names ? names[m] : "(end)");
                        bad = 1;
                        break;
                }
                m++;
        }
        if (!bad && m != n_names) {
                fprintf(stderr,
                        "after seekdir to entry %d: %d entries, the first pass had %d more (ended "
                        "early)\n",
                        k, m, n_names);
                bad = 1;
        }
        printf("%d entries; seekdir back to entry %d: %d of %d again\n", n, k, m, n_names);
        closedir(d);
        return bad;
}

int main(int argc, char **argv)
{
        if (argc >= 4 && strcmp(argv[1], "interleave") == 0)
                return interleave(argv[2], strtoul(argv[3], NULL, 0),
                                  argc > 4 && strcmp(argv[4], "change") == 0);
        if (argc >= 4 && strcmp(argv[1], "seekdir") == 0)
                return seek_back(argv[2], atoi(argv[3]),
                                 argc > 4 && strcmp(argv[4], "change") == 0);
        fprintf(stderr,
                "usage: dirlist interleave DIR BUFSIZE [change] | seekdir DIR K [change]\n");
        return 2;
}
