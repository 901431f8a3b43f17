#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# danaus-fsd lifecycle: start/stop, unmount from outside, several mounts,
# stale mounts of a crashed service, refusing a live mount, bad definitions.
# (DESIGN.md "Interfaces operators and tests rely on".)
source "$DANAUS_SRC/tests/fuse/lib.sh"
require_fuse
t_setup

ROOT=$T_DIR/root
mkdir -p "$ROOT/a" "$ROOT/b"
echo hello-a >"$ROOT/a/file"
echo hello-b >"$ROOT/b/file"

# wait_exit PID SECONDS: waits for our child PID to end and sets rc to its
# status, or to "running" when it is still there after SECONDS. (Not in a
# $(...) subshell: only this shell can wait for its children.)
wait_exit() {
        local pid=$1
        for _ in $(seq $(($2 * 20))); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null; then rc=running; return; fi
        rc=0
        wait "$pid" || rc=$?
}

# n_mounts MP: how many mounts /proc/mounts lists at MP (dead ones too).
n_mounts() { awk -v mp="$1" '$2 == mp' /proc/mounts | wc -l; }

# no_mount_left MP
no_mount_left() { [ "$(n_mounts "$1")" = 0 ] || fail "$1 still mounted: $(grep " $1 " /proc/mounts)"; }

note "start, /proc/mounts, I/O, SIGTERM"
MP1=$T_DIR/mnt1
write_pool "$T_DIR/p1.json" lc1 "$ROOT" "$MP1" a:rw
danaus_start "$T_DIR/p1.json"
grep -q "^danaus:lc1 $MP1 fuse.danaus " /proc/mounts || fail "no 'danaus:lc1 $MP1 fuse.danaus' in /proc/mounts"
grep -q "^danaus:lc1 $MP1 fuse.danaus [^ ]*allow_other" /proc/mounts || fail "not mounted allow_other"
[ "$(cat "$MP1/file")" = hello-a ] || fail "cannot read through the mount"
echo new >"$MP1/new" && [ "$(cat "$ROOT/a/new")" = new ] || fail "write did not reach the backend"
danaus_stop
no_mount_left "$MP1"

note "SIGINT with a busy mount (cwd and an open file inside)"
danaus_start "$T_DIR/p1.json"
( cd "$MP1" && exec 3<"$MP1/file" && sleep 30 ) &
HOLDER=$!
T_PIDS+=("$HOLDER")
sleep 0.2
kill -INT "$FSD_PID"
wait_exit "$FSD_PID" 10
[ "$rc" = 0 ] || { cat "$T_DIR/fsd.log" >&2; fail "SIGINT on a busy mount: status $rc"; }
no_mount_left "$MP1"
kill "$HOLDER" 2>/dev/null || true
wait "$HOLDER" 2>/dev/null || true

note "umount from outside of the only mount: exits 0 by itself"
danaus_start "$T_DIR/p1.json"
umount "$MP1"
wait_exit "$FSD_PID" 10
[ "$rc" = 0 ] || fail "after umount: status $rc (want 0)"
no_mount_left "$MP1"

note "fusermount3 -u works the same"
danaus_start "$T_DIR/p1.json"
fusermount3 -u "$MP1"
wait_exit "$FSD_PID" 10
[ "$rc" = 0 ] || fail "after fusermount3 -u: status $rc (want 0)"

note "two mounts: one goes, the other is still served; the last one ends the service"
MP2=$T_DIR/mnt2
MP3=$T_DIR/sub/dir/mnt3 # created by the service
cat >"$T_DIR/p2.json" <<JSON
{
  "pool": "lc2",
  "backend": { "type": "local", "root": "$ROOT" },
  "mounts": [
    { "mountpoint": "$MP2", "branches": [ { "path": "a", "mode": "rw" } ] },
    { "mountpoint": "$MP3", "branches": [ { "path": "b", "mode": "ro" } ] }
  ]
}
JSON
danaus_start "$T_DIR/p2.json"
grep -q " $MP3 fuse.danaus ro," /proc/mounts || fail "read-only mount $MP3 is not ro"
umount "$MP2"
sleep 0.3
kill -0 "$FSD_PID" 2>/dev/null || fail "the service ended with one mount still there"
[ "$(cat "$MP3/file")" = hello-b ] || fail "the remaining mount is not served"
! echo x 2>/dev/null >"$MP3/x" || fail "wrote to a read-only mount"
umount "$MP3"
wait_exit "$FSD_PID" 10
[ "$rc" = 0 ] || fail "after the last umount: status $rc (want 0)"
no_mount_left "$MP2"
no_mount_left "$MP3"

note "stale mount of a killed service: detached at the next start"
danaus_start "$T_DIR/p1.json"
kill -KILL "$FSD_PID"
wait "$FSD_PID" 2>/dev/null || true
out=$(stat "$MP1" 2>&1 || true) # (pipefail: stat's own status would win over grep's)
grep -q "not connected" <<<"$out" || fail "the mount of a killed service is not dead (ENOTCONN): $out"
"$DANAUS_FSD" --config "$T_DIR/p1.json" >>"$T_DIR/fsd.log" 2>&1 &
FSD_PID=$!
T_PIDS+=("$FSD_PID")
for _ in $(seq 100); do
        [ "$(cat "$MP1/file" 2>/dev/null)" = hello-a ] && break
        kill -0 "$FSD_PID" 2>/dev/null || { cat "$T_DIR/fsd.log" >&2; fail "restart over a stale mount failed"; }
        sleep 0.05
done
[ "$(cat "$MP1/file")" = hello-a ] || fail "restart over a stale mount does not serve"
[ "$(n_mounts "$MP1")" = 1 ] || fail "the stale mount was not detached: $(grep " $MP1 " /proc/mounts)"
grep -q "dead FUSE mount" "$T_DIR/fsd.log" || fail "no log line about the stale mount"

note "a second service on a live mount is refused"
rc=0
"$DANAUS_FSD" --config "$T_DIR/p1.json" >"$T_DIR/second.out" 2>"$T_DIR/second.err" || rc=$?
[ "$rc" = 1 ] || fail "second service on a live mount: status $rc (want 1)"
[ "$(wc -l <"$T_DIR/second.err")" = 1 ] || fail "want one line, got: $(cat "$T_DIR/second.err")"
grep -q "^danaus-fsd: .*$MP1.*already" "$T_DIR/second.err" || fail "unclear refusal: $(cat "$T_DIR/second.err")"
[ "$(n_mounts "$MP1")" = 1 ] || fail "the refused service mounted something"
[ "$(cat "$MP1/file")" = hello-a ] || fail "the first service stopped serving"
danaus_stop
no_mount_left "$MP1"

note "bad definitions: status 1, one line naming the key, nothing mounted"
BADMP=$T_DIR/badmnt
good_mount="\"mounts\": [ { \"mountpoint\": \"$BADMP\", \"branches\": [ { \"path\": \"a\", \"mode\": \"rw\" } ] } ]"
backend="\"backend\": { \"type\": \"local\", \"root\": \"$ROOT\" }"
# name|file content|what the message must mention
bad_cases=(
        "missing||No such file"
        "json|{ \"pool\": \"x\", |JSON"
        "unknown|{ \"pool\": \"x\", \"colour\": \"red\", $backend, $good_mount }|colour"
        "type|{ \"pool\": 5, $backend, $good_mount }|pool"
        "nobranches|{ \"pool\": \"x\", $backend, \"mounts\": [ { \"mountpoint\": \"$BADMP\" } ] }|branches"
        "mode|{ \"pool\": \"x\", $backend, \"mounts\": [ { \"mountpoint\": \"$BADMP\", \"branches\": [ { \"path\": \"a\", \"mode\": \"rx\" } ] } ] }|mode"
        "nobranchdir|{ \"pool\": \"x\", $backend, \"mounts\": [ { \"mountpoint\": \"$BADMP\", \"branches\": [ { \"path\": \"nope\", \"mode\": \"rw\" } ] } ] }|nope"
)
for c in "${bad_cases[@]}"; do
        IFS='|' read -r name content want <<<"$c"
        f=$T_DIR/bad-$name.json
        [ "$name" = missing ] || printf '%s\n' "$content" >"$f"
        rc=0
        timeout 10 "$DANAUS_FSD" --config "$f" >"$T_DIR/bad.out" 2>"$T_DIR/bad.err" || rc=$?
        [ "$rc" = 1 ] || fail "bad definition '$name': status $rc (want 1)"
        [ "$(wc -l <"$T_DIR/bad.err")" = 1 ] || fail "bad definition '$name': want one line, got: $(cat "$T_DIR/bad.err")"
        grep -q "^danaus-fsd: $f: " "$T_DIR/bad.err" || fail "bad definition '$name': not 'danaus-fsd: FILE: ...': $(cat "$T_DIR/bad.err")"
        grep -qi -- "$want" "$T_DIR/bad.err" || fail "bad definition '$name': does not mention '$want': $(cat "$T_DIR/bad.err")"
        grep -q "fuse.danaus" /proc/mounts && grep -q " $BADMP " /proc/mounts && fail "bad definition '$name' mounted something"
        [ ! -e "$BADMP" ] || fail "bad definition '$name' created the mount point"
done

note "usage"
[[ "$("$DANAUS_FSD" --version)" == "danaus-fsd "* ]] || fail "--version"
[[ "$("$DANAUS_FSD" --help)" == *--config* ]] || fail "--help"
rc=0; "$DANAUS_FSD" 2>/dev/null || rc=$?
[ "$rc" != 0 ] || fail "no --config accepted"

echo "PASS: lifecycle"
