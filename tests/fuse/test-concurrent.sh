#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Two processes writing one file at once: (a) disjoint regions with pwrite
# (the file grows under both), (b) O_APPEND records, every record intact
# and the count right, (c) both opening the same lower files for writing at
# once (concurrent copy-up) and writing disjoint halves, (d) threads racing
# create/append/unlink/rename/readdir in a merged directory: a coherent
# view that survives a remount.
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/lib.sh"
t_init

NCU=20
mkdir -p "$T_ROOT/rw" "$T_ROOT/ro"
python3 - "$T_ROOT/ro" "$NCU" <<'PY'
import sys, os
for i in range(int(sys.argv[2])):
    with open(os.path.join(sys.argv[1], "cu%02d" % i), "wb") as f:
        f.write(b"L" * 262144)
os.mkdir(os.path.join(sys.argv[1], "shared"))
for i in range(200):
    with open(os.path.join(sys.argv[1], "shared", "f%d" % i), "w") as f:
        f.write("lower %d\n" % i)
PY
cat >"$T_DIR/worker.py" <<'PY'
import os, sys, time
mode, path, me, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
while not os.path.exists(go):
    time.sleep(0.001)
BS, NB = 1000, 4000
def block(i):
    return (b"%07d:" % i) * (BS // 8)
if mode == "pwrite":
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    for i in range(me, NB, 2):
        assert os.pwrite(fd, block(i), i * BS) == BS
    os.close(fd)
elif mode == "append":
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for s in range(3000):
        n = 20 + (s * 37 + me * 11) % 280
        rec = b"P%d %05d %03d " % (me, s, n) + bytes([65 + me]) * n + b"\n"
        assert os.write(fd, rec) == len(rec)
    os.close(fd)
elif mode == "copyup":
    half = 131072
    for i in range(int(sys.argv[5])):
        fd = os.open(os.path.join(path, "cu%02d" % i), os.O_WRONLY)
        for off in range(me * half, (me + 1) * half, 8192):
            os.pwrite(fd, bytes([48 + me]) * 8192, off)
        os.close(fd)
PY

t_mount conc rw:rw ro:ro
run_pair() {  # run_pair MODE PATH [ARG]
        rm -f "$T_DIR/go"
        python3 "$T_DIR/worker.py" "$1" "$2" 0 "$T_DIR/go" "${3:-}" & p0=$!
        python3 "$T_DIR/worker.py" "$1" "$2" 1 "$T_DIR/go" "${3:-}" & p1=$!
        sleep 0.3
        touch "$T_DIR/go"
        wait $p0 || fail "$1 worker 0 failed"
        wait $p1 || fail "$1 worker 1 failed"
}

run_pair pwrite "$MNT/pw"
python3 - "$MNT/pw" <<'PY' || fail "pwrite verification"
import sys
BS, NB = 1000, 4000
data = open(sys.argv[1], "rb").read()
assert len(data) == BS * NB, "size %d" % len(data)
for i in range(NB):
    want = (b"%07d:" % i) * (BS // 8)
    got = data[i * BS:(i + 1) * BS]
    assert got == want, "block %d: %r" % (i, got[:20])
PY
echo "ok - disjoint pwrite from two processes"

run_pair append "$MNT/ap"
python3 - "$MNT/ap" <<'PY' || fail "append verification"
import sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
assert lines[-1] == b"", "no trailing newline"
lines = lines[:-1]
assert len(lines) == 6000, "%d records" % len(lines)
nxt = [0, 0]
for ln in lines:
    p, s, n, payload = ln.split(b" ", 3)
    me, s, n = int(p[1:]), int(s), int(n)
    assert s == nxt[me], "P%d record %d out of order (want %d)" % (me, s, nxt[me])
    nxt[me] += 1
    assert payload == bytes([65 + me]) * n, "torn record P%d %d" % (me, s)
assert nxt == [3000, 3000]
PY
echo "ok - O_APPEND records from two processes"

run_pair copyup "$MNT" $NCU
python3 - "$MNT" "$NCU" "$T_ROOT/ro" <<'PY' || fail "concurrent copy-up verification"
import sys, os
for i in range(int(sys.argv[2])):
    d = open(os.path.join(sys.argv[1], "cu%02d" % i), "rb").read()
    assert len(d) == 262144, "cu%02d size %d" % (i, len(d))
    assert d[:131072] == b"0" * 131072, "cu%02d: first half lost (%r)" % (i, d[:4])
    assert d[131072:] == b"1" * 131072, "cu%02d: second half lost (%r)" % (i, d[131072:131076])
    assert open(os.path.join(sys.argv[3], "cu%02d" % i), "rb").read() == b"L" * 262144, "lower modified"
PY
echo "ok - concurrent copy-up of lower files"

# (overlayfs, the reference, can fail a racing open(O_CREAT) with EEXIST)
python3 - "$MNT/shared" "$MNT_KIND" <<'PY' || fail "namespace race"
import os, sys, random, threading, errno
d = sys.argv[1]
ok_errs = {errno.ENOENT} | ({errno.EEXIST} if sys.argv[2] == "overlay" else set())
errs = []
def worker(seed):
    r = random.Random(seed)
    for k in range(1000):
        i = r.randrange(200)
        p = os.path.join(d, "f%d" % i)
        op = r.randrange(6)
        try:
            if op == 0:
                with open(p, "a") as f:
                    f.write("x")
            elif op == 1:
                os.unlink(p)
            elif op == 2:
                with open(p, "w") as f:
                    f.write("new %d\n" % i)
            elif op == 3:
                os.rename(p, os.path.join(d, "f%d" % r.randrange(200)))
            elif op == 4:
                os.listdir(d)
            else:
                with open(p) as f:
                    f.read()
        except OSError as e:
            if e.errno not in ok_errs:
                errs.append("%d %s: %s" % (op, p, e))
ts = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
assert not errs, errs[:5]
names = os.listdir(d)
assert len(names) == len(set(names)), "duplicate names"
for n in names:
    assert not n.startswith(".wh."), n
    os.stat(os.path.join(d, n))
for n in set("f%d" % i for i in range(200)) - set(names):
    try:
        os.stat(os.path.join(d, n))
        raise AssertionError("%s not listed but stat works" % n)
    except FileNotFoundError:
        pass
print("# namespace race: %d names left" % len(names))
PY
state() { (cd "$1" && find . -printf '%p %y %m %s\n' | sort && find . -type f -exec md5sum {} + | sort -k2); }
state "$MNT/shared" >"$T_DIR/shared.1"
t_check_mount
t_umount
t_mount conc rw:rw ro:ro
state "$MNT/shared" >"$T_DIR/shared.2"
diff -u "$T_DIR/shared.1" "$T_DIR/shared.2" || fail "merged directory changed across a remount"
echo "ok - namespace race in a merged directory"
t_umount
