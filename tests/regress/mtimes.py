#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# For test-mtimes.sh: what man-db's gdbm files get. For each of N files:
# create DIR/NAME.tmp, pwrite 100 bytes at three offsets far apart (three
# separate write-back WRITEs), rename it to DIR/NAME, fsync, fstat, close.
# Prints "NAME MTIME_NS" with the mtime the kernel reported after the fsync.
#   mtimes.py write DIR N
#   mtimes.py stat DIR...   prints "NAME MTIME_NS" of every file of DIR
import os
import sys

if sys.argv[1] == "write":
    d, n = sys.argv[2], int(sys.argv[3])
    buf = b"m" * 100
    for i in range(n):
        name = f"db{i:04d}"
        tmp = os.path.join(d, name + ".tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        for off in (0, 1 << 20, 2 << 20):
            os.pwrite(fd, buf, off)
        os.rename(tmp, os.path.join(d, name))
        os.fsync(fd)
        st = os.fstat(fd)
        os.close(fd)
        print(name, st.st_mtime_ns)
elif sys.argv[1] == "stat":
    for d in sys.argv[2:]:
        for name in sorted(os.listdir(d)):
            print(name, os.lstat(os.path.join(d, name)).st_mtime_ns)
