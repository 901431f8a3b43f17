// SPDX-License-Identifier: LGPL-2.1-or-later
/* ocreat PATH MODE: umask 0, open(PATH, O_WRONLY | O_CREAT, MODE) (octal),
 * following a symlink at PATH; for test-security.sh (run under setpriv). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
        if (argc != 3) {
                fprintf(stderr, "usage: ocreat PATH MODE\n");
                return 2;
        }
        umask(0);
        int fd = open(argv[1], O_WRONLY | O_CREAT, (mode_t)strtoul(argv[2], NULL, 8));
        if (fd < 0) {
                perror(argv[1]);
                return 1;
        }
        return close(fd) < 0;
}
