#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Review of issue 13 (caching made safe, writeback): two mounts A and B of
# one directory of a pool (as tests/fuse/test-coherence.sh sets up). An
# append through A, then (1 s later, A's file closed) an append through B
# must not overwrite A's bytes; nor may O_APPEND writers on A and B at once
# lose lines. On bind mounts of ext4 (reference mode: one directory) both
# hold.
# On core 9f376f5: FAILS: "one\n" via A then "two\n" via B leaves "two\n"
# (B's kernel keeps its own size of the file under writeback caching, the
# invalidation notwithstanding); 2000+2000 concurrent appends leave 2000.
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/rlib.sh"
t_init
mkdir -p "$T_ROOT/b"
if t_ref_mode; then
        A=$T_ROOT/b B=$T_ROOT/b
else
        A=$T_DIR/a B=$T_DIR/bm
        mkdir -p "$A" "$B"
        cat >"$T_DIR/pool.json" <<JSON
{ "pool": "review_two_mounts_append", "backend": { "type": "local", "root": "$T_ROOT" },
  "mounts": [ { "mountpoint": "$A", "branches": [ {"path": "b", "mode": "rw"} ] },
              { "mountpoint": "$B", "branches": [ {"path": "b", "mode": "rw"} ] } ] }
JSON
        danaus_start "$T_DIR/pool.json"
fi
: >"$A/seq"
cat "$B/seq" >/dev/null # B's kernel knows the file (size 0)
echo one >>"$A/seq"
sleep 1
echo two >>"$B/seq"
got=$(tr '\n' . <"$A/seq")
[ "$got" = "one.two." ] && r_ok "append via A then via B" || r_not_ok "append 'one' via A then 'two' via B gives '$got'"

: >"$A/log"
cat "$B/log" >/dev/null
ap() {
        python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for i in range(2000):
    os.write(fd, (sys.argv[2] + "%05d\n" % i).encode())
os.close(fd)' "$@"
}
ap "$A/log" A &
p1=$!
ap "$B/log" B &
p2=$!
T_PIDS+=("$p1" "$p2")
wait "$p1" "$p2"
n=$(wc -l <"$A/log")
[ "$n" = 4000 ] && r_ok "concurrent O_APPEND via A and B: 4000 lines" || r_not_ok "concurrent O_APPEND via A and B: $n lines of 4000 (A: $(grep -c ^A "$A/log" || true), B: $(grep -c ^B "$A/log" || true))"
t_ref_mode || danaus_stop
r_exit
