#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 13, "Branches on different filesystems", last point: setattr,
# getattr, xattr and readlink must act on the node the kernel names (an
# open fd), not on whatever its remembered path holds now. Plain one-branch
# mount; while a process holds fds of a file and of a symlink, both are
# renamed in the backend directory and other ones take their names (what
# another client of the backend may do). Through the held fds: fchmod,
# fsetxattr, ftruncate, fstat (after the attribute timeout) and
# readlinkat(fd, "") must act on the renamed originals.
# On main (d19e305): FAILS: fchmod, fsetxattr and ftruncate change the new
# file at the old name ("new 0o600 1 3"), the original keeps "0o644 - 18",
# and readlinkat returns "newer-target": the service acts on the path it
# rebuilds from cached names. (fstat happens to look right: it shows the
# new file, which got the changes.)
# Reference mode: the same on a plain directory (the renames done in it).
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/rlib.sh"
t_init

mkdir -p "$T_ROOT/b"
echo "the original file" >"$T_ROOT/b/a"
chmod 644 "$T_ROOT/b/a"
ln -s original-target "$T_ROOT/b/l"
t_mount stale b:rw
B=$T_ROOT/b
out=$(python3 - "$MNT" "$B" <<'PY' 2>&1
import ctypes, os, sys, time
mnt, b = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(f"{mnt}/a", os.O_RDWR)
lfd = os.open(f"{mnt}/l", os.O_PATH | os.O_NOFOLLOW)
os.fstat(fd)
# behind the mount: the originals move away, new ones take their names
os.rename(f"{b}/a", f"{b}/a.orig")
with open(f"{b}/a", "w") as f:
    f.write("a newer, longer file at the old name\n")
os.chmod(f"{b}/a", 0o644)
os.rename(f"{b}/l", f"{b}/l.orig")
os.symlink("newer-target", f"{b}/l")
res = []
def t(what, fn):
    try:
        fn()
    except OSError as e:
        res.append(f"{what}: {e.strerror}")
t("fchmod", lambda: os.fchmod(fd, 0o600))
t("fsetxattr", lambda: os.setxattr(fd, "user.stale", b"1"))
t("ftruncate", lambda: os.ftruncate(fd, 3))
time.sleep(1.2)  # past the attribute timeout
st = os.fstat(fd)
buf = ctypes.create_string_buffer(256)
n = libc.readlinkat(lfd, b"", buf, 256)
target = buf.raw[:n].decode() if n >= 0 else os.strerror(ctypes.get_errno())
def mode(p): return oct(os.stat(p).st_mode & 0o777)
def xa(p):
    try: return os.getxattr(p, "user.stale").decode()
    except OSError: return "-"
print(" ".join(res) or "calls ok")
print("fstat size", st.st_size, "mode", oct(st.st_mode & 0o777))
print("readlink", target)
print("original", mode(f"{b}/a.orig"), xa(f"{b}/a.orig"), os.stat(f"{b}/a.orig").st_size)
print("new", mode(f"{b}/a"), xa(f"{b}/a"), os.stat(f"{b}/a").st_size)
PY
)
echo "$out" | sed 's/^/# /'
line() { echo "$out" | grep "^$1" | head -1; }
expect() { [ "$2" = "$3" ] && r_ok "$1" || r_not_ok "$1: got '$2', expected '$3'"; }
expect "calls through the fds succeed" "$(line calls)" "calls ok"
expect "fstat: the original's attributes" "$(line fstat)" "fstat size 3 mode 0o600"
expect "readlinkat(fd, \"\"): the original's target" "$(line readlink)" "readlink original-target"
expect "the original got mode, xattr and size" "$(line original)" "original 0o600 1 3"
expect "the new file at the old name is untouched" "$(line new)" "new 0o644 - 37"
t_check_mount
t_umount
r_exit
