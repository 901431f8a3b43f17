#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Race drivers for test-union-races.sh (issue 13, "Union races").
#   races.py copyup-unlink DIR N       one process opens lower files for
#       append (copy-up, no O_CREAT) and writes, another unlinks them, in the
#       same order; prints the names whose unlink succeeded.
#   races.py rmdir-vs-create MNTDIR UPPERDIR DELAY_MS   a thread calls
#       rmdir MNTDIR; DELAY_MS later a real file appears in UPPERDIR (the
#       backend's upper directory of the merged MNTDIR: a creator the
#       kernel's directory locks do not serialize, as the fast path will
#       be), removed again once rmdir returned; prints the rmdir's result (0
#       or the errno name).
#   races.py lookups DIR FIRST N STOPFILE   stats DIR/fFIRST..f(FIRST+N-1)
#       (each name once: every stat is a LOOKUP) until STOPFILE exists;
#       prints the count and the slowest stat in ms.
import errno
import os
import sys
import threading
import time


def copyup_unlink(d, n):
    names = [f"f{i:05d}" for i in range(n)]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        for name in names:
            try:
                fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_APPEND)
                os.write(fd, b"appended\n")
                os.close(fd)
            except OSError:
                pass
        os._exit(0)
    os.close(r)
    os.write(w, b"x")
    unlinked = []
    for name in names:
        try:
            os.unlink(os.path.join(d, name))
            unlinked.append(name)
        except OSError as e:
            if e.errno != errno.ENOENT:
                print(f"unlink {name}: {e}", file=sys.stderr)
    os.waitpid(pid, 0)
    for name in unlinked:
        print(name)


def rmdir_vs_create(mntdir, upperdir, delay_ms):
    x = os.path.join(upperdir, "x-created-behind")
    res = []

    def remover():
        try:
            os.rmdir(mntdir)
            res.append("0")
        except OSError as e:
            res.append(errno.errorcode.get(e.errno, str(e.errno)))

    t = threading.Thread(target=remover)
    t.start()
    time.sleep(delay_ms / 1000)
    try:
        os.close(os.open(x, os.O_WRONLY | os.O_CREAT, 0o644))
    except OSError:
        pass
    t.join()
    try:
        os.unlink(x)
    except OSError:
        pass
    print(res[0])


def lookups(d, first, n, stopfile):
    worst = 0.0
    count = 0
    i = first
    while not os.path.exists(stopfile) and i < first + n:
        t0 = time.monotonic()
        try:
            os.stat(os.path.join(d, f"f{i}"))
        except OSError as e:
            print(f"stat f{i}: {e}", file=sys.stderr)
        dt = time.monotonic() - t0
        worst = max(worst, dt)
        count += 1
        i += 1
        time.sleep(0.002)
    print(count, int(worst * 1000))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "copyup-unlink":
        copyup_unlink(sys.argv[2], int(sys.argv[3]))
    elif cmd == "rmdir-vs-create":
        rmdir_vs_create(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    elif cmd == "lookups":
        lookups(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        sys.exit(f"unknown command {cmd}")
