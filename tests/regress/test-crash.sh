#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 13 item 4: what a crash of danaus-fsd can lose. Data that was
# fsynced (or fdatasynced, or written with O_SYNC) through the mount is on
# the backend when danaus-fsd is killed with SIGKILL: nothing fsynced is
# lost, on a plain mount and on a union (whose copy-up is durable by
# default). After the crash the dead mount is detached at restart and the
# data reads back through the new mount. What a crash may lose is written in
# docs/architecture.md: writes the kernel still held dirty (writeback
# caching) that nobody fsynced.
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/rlib.sh"
t_init
t_ref_mode && { echo "SKIP: a crash of the service is only meaningful for Danaus"; exit 77; }

head -c $((8 << 20)) /dev/urandom >"$T_DIR/src"
want=$(sha256sum <"$T_DIR/src" | cut -d' ' -f1)

# put FILE MODE: writes src into FILE and makes it durable (MODE: fsync,
# fdatasync or osync), leaving the fd open while the service is killed.
N_PUT=0
put() {
        N_PUT=$((N_PUT + 1))
        python3 -c 'import os, sys, time
mode = sys.argv[3]
flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_SYNC if mode == "osync" else 0)
fd = os.open(sys.argv[2], flags, 0o644)
data = open(sys.argv[1], "rb").read()
for i in range(0, len(data), 1 << 20):
    os.write(fd, data[i:i + (1 << 20)])
if mode == "fsync":
    os.fsync(fd)
elif mode == "fdatasync":
    os.fdatasync(fd)
open(sys.argv[4], "w").close()
time.sleep(300)' "$T_DIR/src" "$1" "$2" "$T_DIR/done.$N_PUT" &
        T_PIDS+=("$!")
        PUTTER=$!
        for _ in $(seq 600); do
                [ -e "$T_DIR/done.$N_PUT" ] && return
                kill -0 "$PUTTER" 2>/dev/null || fail "writer $2 died"
                sleep 0.1
        done
        fail "writer $2 did not finish in 60 s"
}

crash() {  # crash: SIGKILL danaus-fsd and its writer; the mount is left dead
        kill -KILL "$FSD_PID"
        wait "$FSD_PID" 2>/dev/null || true
        kill -KILL "$PUTTER" 2>/dev/null; wait "$PUTTER" 2>/dev/null || true
}

check() {  # check FILE WHAT
        local got
        got=$(sha256sum <"$1" 2>/dev/null | cut -d' ' -f1) || true
        if [ "$got" = "$want" ]; then r_ok "$2"; else
                r_not_ok "$2: $(stat -c %s "$1" 2>/dev/null || echo missing) bytes, checksum differs"
        fi
}

# Plain mount.
mkdir -p "$T_ROOT/plain"
t_mount plain plain:rw
for m in fsync fdatasync osync; do
        put "$MNT/$m" "$m"
done
crash
for m in fsync fdatasync osync; do
        check "$T_ROOT/plain/$m" "plain, $m then SIGKILL: in the backend"
done
danaus_start "$T_DIR/plain.json"
for m in fsync fdatasync osync; do
        check "$MNT/$m" "plain, $m then SIGKILL: read back after restart"
done
t_umount

# Union: the fsynced file is a copy-up of a lower file, and a new file.
mkdir -p "$T_ROOT/upper" "$T_ROOT/lower"
echo "lower data" >"$T_ROOT/lower/old"
t_mount union upper:rw lower:ro
put "$MNT/old" fsync
crash
check "$T_ROOT/upper/old" "union, copied-up file fsynced then SIGKILL: in the upper branch"
danaus_start "$T_DIR/union.json"
check "$MNT/old" "union, copied-up file fsynced then SIGKILL: read back after restart"
t_umount
r_exit
