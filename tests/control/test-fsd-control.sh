#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# danaus-fsd's control socket (io.danaus.Fsd): mounts added and removed live
# while another mount is busy being written to; that mount's data stays
# intact; a busy mount is refused unless forced; the service keeps running
# when its mounts come and go through the socket; bad requests and callers
# are refused. Needs root and /dev/fuse (else 77).
. "$DANAUS_SRC/tests/fuse/lib.sh"
require_fuse
t_setup

VC="$DANAUS_SRC/tests/control/varlink-call.py"
# the system python: a non-root caller may not reach a per-user one
SYSPY=/usr/bin/python3
SOCK=$T_DIR/fsd.sock
B=$T_DIR/backend
mkdir -p "$B/images/base/etc" "$B/containers/a" "$B/containers/b" "$B/containers/c"
echo "from the image" >"$B/images/base/etc/motd"
cat >"$T_DIR/pool.json" <<JSON
{ "pool": "ctltest",
  "backend": { "type": "local", "root": "$B" },
  "mounts": [ { "mountpoint": "$T_DIR/mnt/a",
                "branches": [ { "path": "containers/a", "mode": "rw" },
                              { "path": "images/base", "mode": "ro" } ] } ] }
JSON
mount_json() { # mount_json MOUNTPOINT TOP
        printf '{"mount": {"mountpoint": "%s", "branches": [{"path": "containers/%s", "mode": "rw"}, {"path": "images/base", "mode": "ro"}]}}' "$1" "$2"
}
vcall() { python3 "$VC" "$SOCK" "$@"; }
expect_error() { # expect_error ERROR-NAME METHOD PARAMS
        local want=$1 out rc=0; shift
        out=$(vcall "$@") || rc=$?
        [ $rc = 1 ] || fail "$* answered rc=$rc: $out (wanted $want)"
        echo "$out" | grep -q "\"error\": \"$want\"" || fail "$*: $out (wanted $want)"
        echo "$out"
}
fsd_alive() { kill -0 "$FSD_PID" 2>/dev/null || { cat "$T_DIR/fsd.log" >&2; fail "danaus-fsd died"; }; }

"$DANAUS_FSD" --config "$T_DIR/pool.json" --control "$SOCK" >>"$T_DIR/fsd.log" 2>&1 &
FSD_PID=$!
T_PIDS+=("$FSD_PID")
T_MOUNTS+=("$T_DIR/mnt/a" "$T_DIR/mnt/b" "$T_DIR/mnt/c")
for _ in $(seq 100); do [ -S "$SOCK" ] && is_mounted "$T_DIR/mnt/a" && break; fsd_alive; sleep 0.05; done
[ -S "$SOCK" ] || fail "no control socket"
is_mounted "$T_DIR/mnt/a" || fail "mount a missing"

# A writer keeps mount a busy: one open file, a numbered line at a time.
(
        exec 3>"$T_DIR/mnt/a/busy.log"
        i=0
        while [ ! -e "$T_DIR/stop" ]; do
                printf 'line %08d\n' $i >&3 || { echo "write $i failed" >"$T_DIR/writer.err"; exit 1; }
                i=$((i + 1))
        done
        echo $i >"$T_DIR/writer.count"
) &
WRITER=$!
T_PIDS+=("$WRITER")
sleep 0.3

note "GetInterfaceDescription and GetInfo"
vcall org.varlink.service.GetInterfaceDescription '{"interface": "io.danaus.Fsd"}' | grep -q 'method RemoveMount' \
        || fail "no interface description"
vcall org.varlink.service.GetInfo | grep -q '"io.danaus.Fsd"' || fail "GetInfo lacks io.danaus.Fsd"

note "add mount b while a is written to"
vcall io.danaus.Fsd.AddMount "$(mount_json "$T_DIR/mnt/b" b)" >/dev/null || fail "AddMount b failed"
is_mounted "$T_DIR/mnt/b" || fail "b not mounted"
grep -q "^danaus:ctltest $T_DIR/mnt/b fuse.danaus" /proc/mounts || fail "b's source is not danaus:ctltest"
[ "$(cat "$T_DIR/mnt/b/etc/motd")" = "from the image" ] || fail "b does not show the image"
echo "in b" >"$T_DIR/mnt/b/new.txt"
[ "$(cat "$B/containers/b/new.txt")" = "in b" ] || fail "b's write did not reach its branch"
st=$(vcall io.danaus.Fsd.GetStatus)
python3 - "$st" "$T_DIR" <<'PY' || fail "GetStatus: $st"
import json, sys
s = json.loads(sys.argv[1])["parameters"]
mps = sorted(m["mountpoint"] for m in s["mounts"])
assert s["pool"] == "ctltest", s
assert mps == [sys.argv[2] + "/mnt/a", sys.argv[2] + "/mnt/b"], mps
assert s["requests"]["add_mount"] == 1, s
# both fronts served requests (a is written to, b was read and written)
fr = {m["mountpoint"]: m["fuse_requests"] for m in s["mounts"]}
assert all(n > 0 for n in fr.values()), fr
PY

note "refusals: overlap, duplicate, bad definition, unknown mount, non-root caller"
expect_error io.danaus.Fsd.MountExists io.danaus.Fsd.AddMount "$(mount_json "$T_DIR/mnt/b" c)" >/dev/null
expect_error io.danaus.Fsd.MountExists io.danaus.Fsd.AddMount "$(mount_json "$T_DIR/mnt/a/sub" c)" >/dev/null
out=$(expect_error io.danaus.Fsd.InvalidMount io.danaus.Fsd.AddMount \
        "{\"mount\": {\"mountpoint\": \"$T_DIR/mnt/c\", \"branches\": [{\"path\": \"containers/c\", \"mode\": \"rx\"}]}}")
echo "$out" | grep -q 'mount.branches\[0\].mode' || fail "InvalidMount does not name the key: $out"
expect_error io.danaus.Fsd.MountFailed io.danaus.Fsd.AddMount "$(mount_json "$T_DIR/mnt/c" nonexistent)" >/dev/null
is_mounted "$T_DIR/mnt/c" && fail "a failed AddMount left a mount"
expect_error org.varlink.service.InvalidParameter io.danaus.Fsd.AddMount '{"mount": 3}' >/dev/null
expect_error io.danaus.Fsd.NoSuchMount io.danaus.Fsd.RemoveMount "{\"mountpoint\": \"$T_DIR/mnt/zzz\"}" >/dev/null
out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$SYSPY" "$VC" "$SOCK" io.danaus.Fsd.RemoveMount \
        "{\"mountpoint\": \"$T_DIR/mnt/b\"}") && fail "non-root RemoveMount was accepted"
echo "$out" | grep -q PermissionDenied || fail "non-root RemoveMount: $out"
setpriv --reuid 65534 --regid 65534 --clear-groups "$SYSPY" "$VC" "$SOCK" io.danaus.Fsd.GetStatus >/dev/null \
        || fail "non-root GetStatus refused"
note "hostile definitions: too many branches, too long paths, .., NUL, wrong types"
many=$(python3 -c 'import json,sys; print(json.dumps({"mount": {"mountpoint": sys.argv[1], "branches": [{"path": "images/base", "mode": "ro"}] * 129}}))' "$T_DIR/mnt/c")
out=$(expect_error io.danaus.Fsd.InvalidMount io.danaus.Fsd.AddMount "$many")
echo "$out" | grep -q "more than 128 branches" || fail "129 branches: $out"
long=$(python3 -c 'import json,sys; print(json.dumps({"mount": {"mountpoint": sys.argv[1] + "/" + "x" * 5000, "branches": [{"path": "c", "mode": "rw"}]}}))' "$T_DIR/mnt")
out=$(expect_error io.danaus.Fsd.InvalidMount io.danaus.Fsd.AddMount "$long")
echo "$out" | grep -q "mount.mountpoint: too long" || fail "long mountpoint: $out"
out=$(expect_error io.danaus.Fsd.InvalidMount io.danaus.Fsd.AddMount \
        "{\"mount\": {\"mountpoint\": \"$T_DIR/mnt/c\", \"branches\": [{\"path\": \"../../etc\", \"mode\": \"rw\"}]}}")
echo "$out" | grep -q 'mount.branches\[0\].path' || fail "..: $out"
out=$(expect_error io.danaus.Fsd.InvalidMount io.danaus.Fsd.AddMount \
        "{\"mount\": {\"mountpoint\": \"$T_DIR/mnt/c\\u0000x\", \"branches\": [{\"path\": \"c\", \"mode\": \"rw\"}]}}")
echo "$out" | grep -q 'NUL' || fail "NUL: $out"
expect_error io.danaus.Fsd.InvalidMount io.danaus.Fsd.AddMount \
        "{\"mount\": {\"mountpoint\": \"$T_DIR/mnt/c\", \"branches\": \"c\"}}" >/dev/null
expect_error org.varlink.service.InvalidParameter io.danaus.Fsd.RemoveMount '{"mountpoint": 7}' >/dev/null
expect_error org.varlink.service.InvalidParameter io.danaus.Fsd.RemoveMount "{\"mountpoint\": \"$T_DIR/mnt/b\", \"force\": \"yes\"}" >/dev/null
expect_error io.danaus.Fsd.NoSuchMount io.danaus.Fsd.RemoveMount '{"mountpoint": "relative/path"}' >/dev/null
is_mounted "$T_DIR/mnt/c" && fail "a refused AddMount left a mount"

note "malformed input is dropped, the service stays"
python3 "$VC" --raw "$SOCK" 'not json\0' >/dev/null
python3 "$VC" --raw "$SOCK" '{"method": "io.danaus.Fsd.GetStatus", "parameters": {' >/dev/null
python3 - "$SOCK" <<'PY' || fail "an oversized message was not refused"
# 2 MiB without a NUL: over the 1 MiB bound; the service must hang up
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
try:
    s.sendall(b'{"method": "io.danaus.Fsd.GetStatus", "parameters": {"x": "' + b"a" * (2 << 20))
except (BrokenPipeError, ConnectionResetError):
    sys.exit(0)
sys.exit(0 if s.recv(100) == b"" else 1)
PY
fsd_alive
is_mounted "$T_DIR/mnt/b" || fail "b vanished"

note "remove b (idle) while a is written to"
vcall io.danaus.Fsd.RemoveMount "{\"mountpoint\": \"$T_DIR/mnt/b\"}" >/dev/null || fail "RemoveMount b failed"
is_mounted "$T_DIR/mnt/b" && fail "b still mounted"
[ "$(cat "$B/containers/b/new.txt")" = "in b" ] || fail "b's data lost after remove"
is_mounted "$T_DIR/mnt/a" || fail "a went away with b"

note "a is busy: refused without force"
out=$(expect_error io.danaus.Fsd.MountBusy io.danaus.Fsd.RemoveMount "{\"mountpoint\": \"$T_DIR/mnt/a\"}")
echo "$out" | grep -q busy || fail "MountBusy without a message: $out"
is_mounted "$T_DIR/mnt/a" || fail "a refused removal but went away"

note "the writer's data in a is intact"
touch "$T_DIR/stop"
wait "$WRITER" || fail "the writer failed: $(cat "$T_DIR/writer.err" 2>/dev/null)"
fsd_alive
python3 - "$T_DIR/mnt/a/busy.log" "$B/containers/a/busy.log" "$(cat "$T_DIR/writer.count")" <<'PY' || fail "busy.log damaged"
import sys
n = int(sys.argv[3])
want = "".join("line %08d\n" % i for i in range(n))
for p in sys.argv[1:3]:
    got = open(p).read()
    assert got == want, (p, len(got), len(want))
print("#", n, "lines intact")
PY

note "forced removal of a busy mount (a cwd inside)"
(cd "$T_DIR/mnt/a" && exec sleep 60) &
HOLDER=$!
T_PIDS+=("$HOLDER")
sleep 0.2
expect_error io.danaus.Fsd.MountBusy io.danaus.Fsd.RemoveMount "{\"mountpoint\": \"$T_DIR/mnt/a\"}" >/dev/null
vcall io.danaus.Fsd.RemoveMount "{\"mountpoint\": \"$T_DIR/mnt/a\", \"force\": true}" >/dev/null \
        || fail "forced RemoveMount failed"
is_mounted "$T_DIR/mnt/a" && fail "a still mounted after a forced remove"
kill "$HOLDER" 2>/dev/null || true
sleep 0.3
fsd_alive
vcall io.danaus.Fsd.GetStatus | grep -q '"mounts": \[\]' || fail "mounts left after removing all"

note "a service without mounts takes new ones; SIGTERM ends it cleanly"
vcall io.danaus.Fsd.AddMount "$(mount_json "$T_DIR/mnt/c" c)" >/dev/null || fail "AddMount c failed"
is_mounted "$T_DIR/mnt/c" || fail "c not mounted"
[ "$(cat "$T_DIR/mnt/c/etc/motd")" = "from the image" ] || fail "c does not show the image"
kill -TERM "$FSD_PID"
rc=0; wait "$FSD_PID" || rc=$?
[ $rc = 0 ] || { cat "$T_DIR/fsd.log" >&2; fail "danaus-fsd exited $rc"; }
is_mounted "$T_DIR/mnt/c" && fail "c left mounted"
[ -e "$SOCK" ] && fail "the control socket was left behind"
grep -q "added through the control socket" "$T_DIR/fsd.log" || fail "no log of the added mount"

note "the default control socket, /run/danaus/pools/POOL/fsd.sock, and its directory go at exit"
P2=ctltest$$
DEF=/run/danaus/pools/$P2
[ -e "$DEF" ] && fail "$DEF exists before the test"
sed "s/\"ctltest\"/\"$P2\"/" "$T_DIR/pool.json" >"$T_DIR/pool2.json"
"$DANAUS_FSD" --config "$T_DIR/pool2.json" >>"$T_DIR/fsd2.log" 2>&1 &
FSD_PID=$!
T_PIDS+=("$FSD_PID")
for _ in $(seq 100); do [ -S "$DEF/fsd.sock" ] && break; fsd_alive; sleep 0.05; done
[ -S "$DEF/fsd.sock" ] || fail "no default control socket"
python3 "$VC" "$DEF/fsd.sock" io.danaus.Fsd.GetStatus | grep -q "\"pool\": \"$P2\"" || fail "GetStatus on the default socket"
note "a second service of the same pool name keeps running without a control socket"
mkdir -p "$T_DIR/other"
sed "s|$T_DIR/mnt/a|$T_DIR/other/a|" "$T_DIR/pool2.json" >"$T_DIR/pool3.json"
"$DANAUS_FSD" --config "$T_DIR/pool3.json" >>"$T_DIR/fsd3.log" 2>&1 &
P3=$!
T_PIDS+=("$P3")
T_MOUNTS+=("$T_DIR/other/a")
for _ in $(seq 100); do is_mounted "$T_DIR/other/a" && break; sleep 0.05; done
is_mounted "$T_DIR/other/a" || { cat "$T_DIR/fsd3.log" >&2; fail "the second service did not start"; }
grep -q "no control socket: .*another service answers there" "$T_DIR/fsd3.log" || fail "no warning: $(cat "$T_DIR/fsd3.log")"
python3 "$VC" "$DEF/fsd.sock" io.danaus.Fsd.GetStatus | grep -q "\"pid\": $FSD_PID" || fail "the first service lost its socket"
kill -TERM "$P3"; wait "$P3" || fail "the second service exited non-zero"
[ -S "$DEF/fsd.sock" ] || fail "the second service removed the first one's socket"
kill -TERM "$FSD_PID"
wait "$FSD_PID" || fail "danaus-fsd exited non-zero"
[ -e "$DEF" ] && fail "$DEF left behind"
echo "PASS"
