#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# danausctl against the real danaus-manager (direct backend) and danaus-fsd:
# pool create / list / show --json / run / mount add+remove (busy refused,
# forced works) / update (checked in the kernel's cgroup file) / destroy
# (nothing left), the one-line errors and exit codes, and the policy: a
# non-root caller is refused outside its rule and served inside it.
# Needs root, /dev/fuse and cgroups with cpuset+memory (v1 or v2), else 77.
. "$DANAUS_SRC/tests/fuse/lib.sh"
require_fuse
MANAGER=$DANAUS_BUILD/danaus-manager/danaus-manager
[ -x "$MANAGER" ] || fail "no danaus-manager in the build"
t_setup

CG=danaus_ctltest$$
MPID=""
# On any exit: the pools this test made are destroyed and its manager
# stopped (so their cgroups go), then the manager's emptied parent cgroups
# are removed, then lib.sh's cleanup. No command here may fail last: set -e
# would end the trap early.
ctl_cleanup() {
        local rc=$? d p
        if [ -n "$MPID" ] && kill -0 "$MPID" 2>/dev/null; then
                for p in ctl1 tenant_a; do
                        "$T_DIR/danausctl" --socket "$T_DIR/manager.sock" pool destroy $p >/dev/null 2>&1 || true
                done
                kill -TERM "$MPID" 2>/dev/null || true
                for _ in $(seq 50); do kill -0 "$MPID" 2>/dev/null || break; sleep 0.1; done
        fi
        for d in /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/"$CG" /sys/fs/cgroup/*/*/*/"$CG"; do
                if [ -d "$d" ]; then rmdir "$d" 2>/dev/null || true; fi
        done
        (exit $rc)
        t_cleanup
}
trap ctl_cleanup EXIT

# the binary runs as a non-root user too: a copy that user can reach
cp "$DANAUS_BUILD/danausctl/danausctl" "$T_DIR/danausctl"
chmod 755 "$T_DIR/danausctl"
CTL="$T_DIR/danausctl --socket $T_DIR/manager.sock"
AS_TENANT="setpriv --reuid 47120 --regid 47110 --clear-groups"
CPU=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status | cut -d, -f1 | cut -d- -f1)

B=$T_DIR/backend
mkdir -p "$B/images/base/etc" "$B/containers/c1" "$B/containers/c2" "$B/containers/t1"
echo "from the image" >"$B/images/base/etc/motd"
cat >"$T_DIR/policy.json" <<JSON
{ "rules": [ { "group": 47110, "pools": ["tenant_*"], "max_cpus": 1, "max_memory": "512M",
               "backends": ["local"], "backend_roots": ["$B"], "mount_roots": ["$T_DIR/mnt"] } ] }
JSON
cat >"$T_DIR/pool.json" <<JSON
{ "pool": "ctl1",
  "resources": { "cpus": "$CPU", "memory_max": "256M" },
  "backend": { "type": "local", "root": "$B" },
  "mounts": [ { "mountpoint": "$T_DIR/mnt/c1",
                "branches": [ { "path": "containers/c1", "mode": "rw" },
                              { "path": "images/base", "mode": "ro" } ] } ] }
JSON
cat >"$T_DIR/mount.json" <<JSON
{ "mountpoint": "$T_DIR/mnt/c2", "branches": [ { "path": "containers/c2", "mode": "rw" },
                                               { "path": "images/base", "mode": "ro" } ] }
JSON
T_MOUNTS+=("$T_DIR/mnt/c1" "$T_DIR/mnt/c2" "$T_DIR/mnt/t1")

# expect RC CMD...: runs CMD, wants exit status RC and (on failure) exactly
# one line on stderr starting "danausctl: "; the output is in $OUT/$ERR.
expect() {
        local want=$1 rc=0; shift
        "$@" >"$T_DIR/out" 2>"$T_DIR/err" || rc=$?
        OUT=$(cat "$T_DIR/out"); ERR=$(cat "$T_DIR/err")
        [ "$rc" = "$want" ] || fail "$* exited $rc, wanted $want: $OUT $ERR"
        if [ "$want" != 0 ]; then
                [ "$(wc -l <"$T_DIR/err")" = 1 ] || fail "$*: not one line on stderr: $ERR"
                case "$ERR" in "danausctl: "*) ;; *) fail "$*: bad message: $ERR" ;; esac
        fi
}
json() { python3 -c "import json,sys; d=json.load(open('$T_DIR/out')); print($1)"; }

note "the manager, direct backend"
"$MANAGER" --socket "$T_DIR/manager.sock" --state-dir "$T_DIR/state" --runtime-dir "$T_DIR/run" \
        --policy "$T_DIR/policy.json" --backend direct --fsd "$DANAUS_FSD" --cgroup-name "$CG" \
        >>"$T_DIR/manager.log" 2>&1 &
MPID=$!
T_PIDS+=("$MPID")
for _ in $(seq 100); do [ -S "$T_DIR/manager.sock" ] && break; sleep 0.05; done
kill -0 $MPID 2>/dev/null || { cat "$T_DIR/manager.log" >&2; skip_or_fail=1; }
if [ "${skip_or_fail:-0}" = 1 ]; then
        grep -q "cgroup" "$T_DIR/manager.log" && skip "the direct backend has no cgroups here"
        fail "danaus-manager did not start"
fi
expect 0 $CTL status
echo "$OUT" | grep -q "^pools: *0" || fail "status: $OUT"

note "pool create / list / show"
expect 0 $CTL pool create --file "$T_DIR/pool.json"
is_mounted "$T_DIR/mnt/c1" || fail "c1 not mounted after create"
expect 0 $CTL pool list
echo "$OUT" | head -1 | grep -q "^NAME *STATE *BACKEND *CPUS *MEMORY *PID *MOUNTS" || fail "list header: $OUT"
echo "$OUT" | grep -q "^ctl1 *running *direct *$CPU " || fail "list row: $OUT"
expect 0 $CTL --json pool list
[ "$(json '[p["name"] for p in d["pools"]]')" = "['ctl1']" ] || fail "list --json: $OUT"
expect 0 $CTL pool show ctl1 --json
[ "$(json 'd["pool"]["state"]')" = running ] || fail "show --json state: $OUT"
[ "$(json 'd["pool"]["cpus"]')" = "$CPU" ] || fail "show --json cpus: $OUT"
[ "$(json 'd["pool"]["mounts"][0]["mountpoint"]')" = "$T_DIR/mnt/c1" ] || fail "show --json mounts: $OUT"
FSD=$(json 'd["pool"]["pid"]')
kill -0 "$FSD" || fail "the pool's danaus-fsd $FSD is not running"
json '"\n".join(d["pool"]["cgroups"])' >"$T_DIR/cgroups"
[ -s "$T_DIR/cgroups" ] || fail "no cgroups reported"
expect 0 $CTL pool show ctl1
echo "$OUT" | grep -q "^state: *running" || fail "show: $OUT"

note "run: in the pool's cgroups, on its CPU, with DANAUS_POOL"
expect 0 $CTL run ctl1 -- sh -c "echo \$DANAUS_POOL; grep Cpus_allowed_list /proc/self/status; cat /proc/self/cgroup; echo through > $T_DIR/mnt/c1/run.txt; cat $T_DIR/mnt/c1/etc/motd"
echo "$OUT" | head -1 | grep -qx ctl1 || fail "run: DANAUS_POOL: $OUT"
echo "$OUT" | grep -q "^Cpus_allowed_list:[[:space:]]*$CPU\$" || fail "run: affinity: $OUT"
echo "$OUT" | grep -qx "from the image" || fail "run: read through the mount: $OUT"
while read -r cg; do
        rel=${cg#/sys/fs/cgroup}
        rel=${rel#/*/}          # v1: drop the controller's directory
        echo "$OUT" | grep -q "/${rel#/}\$" || echo "$OUT" | grep -q ":${rel}\$" \
                || fail "run: not in cgroup $cg: $OUT"
done <"$T_DIR/cgroups"
[ "$(cat "$B/containers/c1/run.txt")" = through ] || fail "run: the write did not reach the branch"
# the preload library goes into LD_PRELOAD when it exists (any real shared
# library stands in for it until libdanaus-preload.so is built)
SO=$(ldd "$DANAUS_FSD" | awk '/libjson-c/ {print $3}')
[ -f "$SO" ] || fail "no libjson-c found to stand in for the preload library"
expect 0 env DANAUS_PRELOAD="$SO" LD_PRELOAD= $CTL run ctl1 -- sh -c 'echo "[$LD_PRELOAD]"'
[ "$OUT" = "[$SO]" ] || fail "run: LD_PRELOAD with the library: $OUT"
expect 0 env DANAUS_PRELOAD=/nonexistent/libdanaus-preload.so LD_PRELOAD= $CTL run ctl1 -- sh -c 'echo "[$LD_PRELOAD]"'
[ "$OUT" = "[]" ] || fail "run: LD_PRELOAD without the library: $OUT"
expect 127 $CTL run ctl1 -- /nonexistent/cmd
rc=0; $CTL run ctl1 -- sh -c 'exit 3' || rc=$?
[ $rc = 3 ] || fail "run: the command's exit status 3 came back as $rc"

note "mount add / remove (busy refused, forced works)"
expect 0 $CTL mount add ctl1 --file "$T_DIR/mount.json"
is_mounted "$T_DIR/mnt/c2" || fail "c2 not mounted"
[ "$(cat "$T_DIR/mnt/c2/etc/motd")" = "from the image" ] || fail "c2 does not show the image"
(cd "$T_DIR/mnt/c2" && exec sleep 60) &
HOLD=$!
T_PIDS+=("$HOLD")
sleep 0.2
expect 1 $CTL mount remove ctl1 "$T_DIR/mnt/c2"
echo "$ERR" | grep -qi busy || fail "busy remove: $ERR"
is_mounted "$T_DIR/mnt/c2" || fail "a refused remove unmounted c2"
expect 0 $CTL mount remove ctl1 "$T_DIR/mnt/c2" --force
is_mounted "$T_DIR/mnt/c2" && fail "c2 still mounted after --force"
kill $HOLD 2>/dev/null || true
is_mounted "$T_DIR/mnt/c1" || fail "c1 went away with c2"
expect 0 $CTL --json pool show ctl1
[ "$(json 'len(d["pool"]["mounts"])')" = 1 ] || fail "mounts after remove: $OUT"

note "update: the kernel's memory limit follows"
expect 0 $CTL pool update ctl1 --memory 128M
lim=""
while read -r cg; do
        for f in memory.max memory.limit_in_bytes; do [ -f "$cg/$f" ] && lim=$(cat "$cg/$f"); done
done <"$T_DIR/cgroups"
[ "$lim" = 134217728 ] || fail "memory limit in the kernel: '$lim'"

note "errors: one line, exit 1 (refused) or 2 (usage)"
expect 1 $CTL pool show nosuch
echo "$ERR" | grep -q "no such pool" || fail "$ERR"
expect 1 $CTL pool create --file "$T_DIR/pool.json"
echo "$ERR" | grep -q "exists" || fail "$ERR"
echo '{"pool": "x", "backend": {"type": "local", "root": "/"}, "mounts": [], "bogus": 1}' >"$T_DIR/bad.json"
expect 1 $CTL pool create --file "$T_DIR/bad.json"
echo "$ERR" | grep -q "bad.json: bogus: unknown key" || fail "$ERR"
expect 2 $CTL pool frobnicate
expect 2 $CTL mount remove ctl1
expect 1 "$T_DIR/danausctl" --socket "$T_DIR/nothing.sock" pool list

note "policy: a non-root caller (uid 47120, gid 47110)"
expect 0 $AS_TENANT $CTL --json pool list
[ "$(json 'len(d["pools"])')" = 0 ] || fail "the tenant sees root's pool: $OUT"
expect 1 $AS_TENANT $CTL pool show ctl1
echo "$ERR" | grep -q "permission denied" || fail "$ERR"
expect 1 $AS_TENANT $CTL pool destroy ctl1
echo "$ERR" | grep -q "permission denied" || fail "$ERR"
expect 1 $AS_TENANT $CTL pool create tenant_a --backend "local:$B" --cpus "$CPU" --memory 1G \
        --mount "$T_DIR/mnt/t1=containers/t1"
echo "$ERR" | grep -q "permission denied: resources.memory_max: 1G exceeds max_memory 512M" || fail "$ERR"
expect 1 $AS_TENANT $CTL pool create tenant_a --backend "local:/etc" --cpus "$CPU" --memory 256M \
        --mount "$T_DIR/mnt/t1=."
echo "$ERR" | grep -q "permission denied: backend.root" || fail "$ERR"
expect 1 $AS_TENANT $CTL pool create other --backend "local:$B" --cpus "$CPU" --memory 256M \
        --mount "$T_DIR/mnt/t1=containers/t1"
echo "$ERR" | grep -q "permission denied: uid 47120: no rule" || fail "$ERR"
grep -q "denied create to uid 47120" "$T_DIR/manager.log" || fail "no denial in the manager's log"
expect 0 $AS_TENANT $CTL pool create tenant_a --backend "local:$B" --cpus "$CPU" --memory 256M \
        --mount "$T_DIR/mnt/t1=containers/t1"
is_mounted "$T_DIR/mnt/t1" || fail "the tenant's pool is not mounted"
expect 0 $AS_TENANT $CTL pool destroy tenant_a
is_mounted "$T_DIR/mnt/t1" && fail "the tenant's pool is still mounted"

note "destroy: nothing left"
expect 0 $CTL pool destroy ctl1
is_mounted "$T_DIR/mnt/c1" && fail "c1 still mounted after destroy"
for _ in $(seq 50); do kill -0 "$FSD" 2>/dev/null || break; sleep 0.1; done
kill -0 "$FSD" 2>/dev/null && fail "danaus-fsd $FSD still runs after destroy"
while read -r cg; do [ -d "$cg" ] && fail "cgroup $cg left after destroy"; done <"$T_DIR/cgroups"
[ -e "$T_DIR/run/pools/ctl1/fsd.sock" ] && fail "control socket left after destroy"
[ -e "$T_DIR/state/ctl1.json" ] && fail "definition left after destroy"
expect 0 $CTL --json pool list
[ "$(json 'len(d["pools"])')" = 0 ] || fail "pools left: $OUT"
kill -TERM $MPID
wait $MPID || fail "the manager exited non-zero on SIGTERM"
echo PASS
