#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Review of issue 13 (change notifications): two mounts A and B of one
# directory of a pool. A process has its cwd in A/cw; another renames the
# directory through B (cw -> cw2). The directory still exists: creating a
# file in the cwd, and in A/cw2 by its new path, must work (as on bind
# mounts of ext4; reference mode: one directory).
# On core 3069cf9: FAILS: both ENOENT, and still 1 s later: the core reports
# a rename's old name as a deletion (libdanaus/core/ops-name.c, rename:
# notify_entry(olddir, oldname, srcn, true, ...)), the front sends
# fuse_lowlevel_notify_delete(), and A's kernel marks the directory's inode
# dead (S_DEAD, nlink 0) although it lives on under its new name.
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
{ "pool": "review_rename_other_mount", "backend": { "type": "local", "root": "$T_ROOT" },
  "mounts": [ { "mountpoint": "$A", "branches": [ {"path": "b", "mode": "rw"} ] },
              { "mountpoint": "$B", "branches": [ {"path": "b", "mode": "rw"} ] } ] }
JSON
        danaus_start "$T_DIR/pool.json"
fi
out=$(python3 - "$A" "$B" <<'PY'
import os, sys, time
A, B = sys.argv[1], sys.argv[2]
def t(name, f):
    try:
        f()
        print("ok - " + name)
    except OSError as e:
        print("not ok - " + name + ": " + e.strerror)
os.mkdir(A + "/cw")
os.chdir(A + "/cw")
os.rename(B + "/cw", B + "/cw2")
time.sleep(0.5)  # the invalidations reach A
t("create in the cwd renamed through the other mount", lambda: open("f1", "w").close())
t("create in it by its new path", lambda: open(A + "/cw2/f2", "w").close())
os.chdir("/")
time.sleep(1)
t("create by its new path 1 s later", lambda: open(A + "/cw2/f3", "w").close())
os.mkdir(A + "/d")
fd = os.open(A + "/d", os.O_RDONLY | os.O_DIRECTORY)
os.rename(B + "/d", B + "/d2")
time.sleep(0.5)
t("mkdir in a directory held open, renamed through the other mount", lambda: os.mkdir(A + "/d2/sub"))
os.close(fd)
PY
)
echo "$out"
R_FAILED=$(grep -c '^not ok' <<<"$out" || true)
t_ref_mode || danaus_stop
r_exit
