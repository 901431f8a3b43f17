#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Logging goes to the journal with structured fields when journald is there:
# in a private mount namespace a receiver takes journald's place at
# /run/systemd/journal/socket, danaus-fsd serves and stops, and the
# datagrams must carry MESSAGE=, PRIORITY=, SYSLOG_IDENTIFIER=danaus-fsd,
# DANAUS_POOL= and POOL=. Without the socket the same messages go to stderr.
# Needs root, /dev/fuse, unshare and a build with libsystemd (else 77).
. "$DANAUS_SRC/tests/fuse/lib.sh"
require_fuse
grep -q '#define HAVE_SYSTEMD 1' "$DANAUS_BUILD/danaus-config.h" || skip "built without libsystemd"
command -v unshare >/dev/null || skip "no unshare"
t_setup

B=$T_DIR/backend
mkdir -p "$B/c"
cat >"$T_DIR/pool.json" <<JSON
{ "pool": "jtest", "backend": { "type": "local", "root": "$B" },
  "mounts": [ { "mountpoint": "$T_DIR/mnt", "branches": [ { "path": "c", "mode": "rw" } ] } ] }
JSON
cat >"$T_DIR/inner.sh" <<'SH'
set -eu
T=$1
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal
python3 - "$T/journal.txt" <<'PY' &
import os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/run/systemd/journal/socket")
open(sys.argv[1] + ".ready", "w").close()
s.settimeout(0.2)
out = open(sys.argv[1], "w")
# until the service has exited (the stop file) and nothing more comes
while True:
    try:
        d = s.recv(1 << 20)
    except socket.timeout:
        if os.path.exists(sys.argv[1] + ".stop"):
            break
        continue
    fields, i = {}, 0
    while i < len(d):
        nl = d.index(b"\n", i)
        line = d[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:  # binary form: NAME\n, 64-bit little-endian length, value, \n
            k = line
            n = struct.unpack("<Q", d[nl + 1:nl + 9])[0]
            v = d[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        fields[k.decode()] = v.decode()
    out.write(repr(fields) + "\n")
    out.flush()
PY
RECV=$!
for _ in $(seq 100); do [ -e "$T/journal.txt.ready" ] && break; sleep 0.05; done
"$DANAUS_FSD" --config "$T/pool.json" 2>"$T/stderr.txt" &
FSD=$!
for _ in $(seq 100); do grep -q " $T/mnt " /proc/mounts && break; sleep 0.05; done
grep -q " $T/mnt " /proc/mounts
kill -TERM $FSD
wait $FSD
touch "$T/journal.txt.stop"
wait $RECV
SH
unshare -m --propagation private bash "$T_DIR/inner.sh" "$T_DIR" || fail "the namespace run failed"
python3 - "$T_DIR/journal.txt" <<'PY' || { cat "$T_DIR/journal.txt" "$T_DIR/stderr.txt" >&2; fail "journal fields"; }
import ast, sys
msgs = [ast.literal_eval(l) for l in open(sys.argv[1])]
assert msgs, "nothing reached the journal socket"
serving = [m for m in msgs if "serving" in m.get("MESSAGE", "")]
assert serving, msgs
for m in msgs:
    assert m["SYSLOG_IDENTIFIER"] == "danaus-fsd", m
    assert m["DANAUS_POOL"] == "jtest" and m["POOL"] == "jtest", m
    assert m["PRIORITY"] in ("3", "4", "6", "7"), m
print("#", len(msgs), "journal messages with their fields")
PY
# everything went to the journal: nothing logged on stderr
[ ! -s "$T_DIR/stderr.txt" ] || { cat "$T_DIR/stderr.txt" >&2; fail "stderr used although the journal was there"; }

note "without the journal socket: the same messages on stderr"
"$DANAUS_FSD" --config "$T_DIR/pool.json" --no-control 2>"$T_DIR/stderr2.txt" &
FSD_PID=$!
T_PIDS+=("$FSD_PID")
T_MOUNTS+=("$T_DIR/mnt")
for _ in $(seq 100); do is_mounted "$T_DIR/mnt" && break; sleep 0.05; done
kill -TERM "$FSD_PID"
wait "$FSD_PID" || fail "danaus-fsd exited non-zero"
if [ -S /run/systemd/journal/socket ]; then
        note "this host runs journald: stderr check skipped"
else
        grep -q "^danaus-fsd\[jtest\]: info: .*serving" "$T_DIR/stderr2.txt" \
                || { cat "$T_DIR/stderr2.txt" >&2; fail "no stderr log"; }
fi
echo PASS
