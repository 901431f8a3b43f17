#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 10,000 files in one directory of a union mount: create, count via
# readdir and ls, stat a sample, delete all; also a merged directory with
# lower entries (readdir continues correctly across branches and whiteouts).
# Runs under a limit of 256 fds, danaus-fsd included: nodes keep at most
# half of them as io files, and every file still reads back past that.
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/lib.sh"
t_init

N=10000
ulimit -n 256 || fail "cannot lower the fd limit"
mkdir -p "$T_ROOT/rw" "$T_ROOT/ro/merged"
# 500 lower files in the merged directory, 100 of them to be deleted
python3 - "$T_ROOT/ro/merged" <<'PY'
import os, sys
for i in range(500):
    with open(os.path.join(sys.argv[1], "low%04d" % i), "w") as f:
        f.write("low %d\n" % i)
PY
t_mount many rw:rw ro:ro

python3 - "$MNT" "$N" <<'PY' || fail "python checks"
import os, sys, random, time
mnt, n = sys.argv[1], int(sys.argv[2])
d = os.path.join(mnt, "big")
os.mkdir(d)
t0 = time.time()
for i in range(n):
    fd = os.open(os.path.join(d, "file-%05d" % i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"%d\n" % i)
    os.close(fd)
t1 = time.time()
names = os.listdir(d)
assert len(names) == n, "listdir: %d names" % len(names)
assert len(set(names)) == n, "duplicate names in readdir"
assert set(names) == {"file-%05d" % i for i in range(n)}, "wrong names"
seen = 0
with os.scandir(d) as it:
    for e in it:
        seen += 1
assert seen == n, "scandir: %d" % seen
random.seed(1)
for i in random.sample(range(n), 200):
    p = os.path.join(d, "file-%05d" % i)
    st = os.stat(p)
    assert st.st_size == len(b"%d\n" % i), (p, st.st_size)
    with open(p, "rb") as f:
        assert f.read() == b"%d\n" % i, p
for i in range(n):  # every file once more: far more files than fds
    with open(os.path.join(d, "file-%05d" % i), "rb") as f:
        assert f.read() == b"%d\n" % i, i
st_inos = {os.lstat(os.path.join(d, x)).st_ino for x in names[:2000]}
assert len(st_inos) == 2000, "st_ino not unique: %d" % len(st_inos)
t2 = time.time()
print("# create %.1fs, list+stat %.1fs" % (t1 - t0, t2 - t1))

# merged directory: 500 lower + 2000 new, 100 lower deleted
m = os.path.join(mnt, "merged")
for i in range(2000):
    open(os.path.join(m, "up%04d" % i), "w").close()
for i in range(0, 500, 5):
    os.unlink(os.path.join(m, "low%04d" % i))
names = os.listdir(m)
assert len(names) == 2400 and len(set(names)) == 2400, "merged listdir %d (%d unique)" % (len(names), len(set(names)))
assert not any(x.startswith(".wh.") for x in names), "whiteout visible"
assert "low0000" not in names and "low0001" in names
PY

c=$(ls "$MNT/big" | wc -l)
expect_eq "ls | wc -l" "$c" $N
c=$(ls -f "$MNT/big" | wc -l)
expect_eq "ls -f | wc -l" "$c" $((N + 2))
c=$(find "$MNT/big" -type f | wc -l)
expect_eq "find -type f" "$c" $N
c=$(ls "$MNT/merged" | wc -l)
expect_eq "merged ls | wc -l" "$c" 2400

# delete everything (find -delete unlinks while it reads the directory)
find "$MNT/big" -type f -delete
c=$(ls -A "$MNT/big" | wc -l)
expect_eq "after delete" "$c" 0
rmdir "$MNT/big"
[ ! -e "$MNT/big" ] || fail "big still there"
rm -rf "$MNT/merged"
[ ! -e "$MNT/merged" ] || fail "merged still there"
[ "$(ls "$T_ROOT/ro/merged" | wc -l)" = 500 ] || fail "lower branch modified"
t_check_mount
t_umount
if [ "$MNT_KIND" = danaus ]; then
        c=$(find "$T_ROOT/rw" -name 'file-*' | wc -l)
        expect_eq "files left in the rw branch" "$c" 0
fi
echo "ok - $N files in one directory"
