#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 13, "fsyncdir returns 0 and does nothing": fsync(2) of a directory
# through the mount, after creating entries in it, must reach the backend.
# Observed with strace attached to danaus-fsd (all threads): while a
# program fsyncs the directory, danaus-fsd must call fsync or fdatasync on
# that directory of the backend (strace -y names the fd's path), or
# syncfs. On a plain one-branch mount and on a union (the upper directory).
# Control: the fsync of a file in it shows as an fsync of the backend file.
# On main (d19e305): FAILS: no such call (fsyncdir answers 0 at once).
# Reference mode: the fsync itself is checked (no service to trace).
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/rlib.sh"
t_init
command -v strace >/dev/null || skip "strace missing (Debian package strace)"

# check WHAT DIR BACKEND_DIR
check() {
        local what=$1 dir=$2 bdir=$3 spid
        mkdir -p "$dir"
        bdir=$(realpath "$bdir")  # as strace -y shows it
        echo x >"$dir/new-file"
        mkdir "$dir/new-dir"
        if [ "$MNT_KIND" != danaus ]; then
                python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY); os.fsync(fd)' "$dir" &&
                        r_ok "$what: fsync of the directory" || r_not_ok "$what: fsync of the directory failed"
                return
        fi
        rm -f "$T_DIR/strace.$what"
        strace -f -qq -y -e trace=fsync,fdatasync,syncfs -o "$T_DIR/strace.$what" -p "$FSD_PID" &
        spid=$!
        T_PIDS+=("$spid")
        sleep 1  # attached to every thread
        python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY); os.fsync(fd)' "$dir" ||
                r_not_ok "$what: fsync of the directory failed"
        # control: a file's fsync shows in the trace (the tracing works)
        python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDWR); os.write(fd, b"y"); os.fsync(fd)' "$dir/new-file"
        sleep 0.5
        kill -INT "$spid"; wait "$spid" 2>/dev/null || true
        grep -Eq "(fsync|fdatasync)\([0-9]+<$bdir/new-file>\)" "$T_DIR/strace.$what" ||
                fail "$what: control: the fsync of a file does not show in the trace: $(head -5 "$T_DIR/strace.$what")"
        if grep -Eq "(fsync|fdatasync)\([0-9]+<$bdir>\)|syncfs\(" "$T_DIR/strace.$what"; then
                r_ok "$what: fsyncdir reached the backend: $(grep -Em1 "(fsync|fdatasync)\([0-9]+<$bdir>\)|syncfs\(" "$T_DIR/strace.$what")"
        else
                r_not_ok "$what: danaus-fsd made no fsync/fdatasync of $bdir nor syncfs (seen: $(grep -v new-file "$T_DIR/strace.$what" | head -3 | tr '\n' ' '))"
        fi
}

mkdir -p "$T_ROOT/b/d"
t_mount plain b:rw
check plain "$MNT/d" "$T_ROOT/b/d"
t_check_mount
t_umount

mkdir -p "$T_ROOT/up" "$T_ROOT/low/ld"
echo lower >"$T_ROOT/low/ld/l"
t_mount union up:rw low:ro
check union "$MNT/ld" "$T_ROOT/up/ld"
t_check_mount
t_umount
r_exit
