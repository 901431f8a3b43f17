#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A merged directory moved while the kernel holds its subdirectories: the
# union copies the merged subtree up and marks it opaque; the nodes the
# kernel still holds for the moved subdirectories must show the new state
# (what the copy kept, not the lower branch's content a whiteout hid), and
# names can be created in them. Found by the differential tester (seed 1,
# 60 s timeouts): "open h/f/d/h/h O_CREAT" failed with ENOENT/EEXIST after
# "unlink e/h/h" and "rename e -> h/f/d".
# Reference mode (DANAUS_TEST_DIR): the same on overlayfs (mv copies then).
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/lib.sh"
t_init
mkdir -p "$T_ROOT/l1/e/h" "$T_ROOT/up"
echo low >"$T_ROOT/l1/e/h/h"
echo kept >"$T_ROOT/l1/e/h/k"
t_mount dirmove up:rw l1:ro
M=$MNT
# the kernel looks e/h up and keeps it
expect_eq "lower listing" "$(ls "$M/e/h" | tr '\n' ' ')" "h k "
rm "$M/e/h/h"
mkdir "$M/x"
mv "$M/e" "$M/x/d"
expect_eq "moved listing" "$(ls "$M/x/d/h" | tr '\n' ' ')" "k "
expect_eq "a whited-out name stays gone" "$(test -e "$M/x/d/h/h" && echo there || echo gone)" gone
expect_eq "kept content" "$(cat "$M/x/d/h/k")" kept
echo new >"$M/x/d/h/h" || fail "cannot create x/d/h/h in the moved directory"
expect_eq "created in the moved directory" "$(cat "$M/x/d/h/h")" new
expect_eq "old name gone" "$(test -e "$M/e" && echo there || echo gone)" gone
t_check_mount
t_umount
# what a fresh mount shows
t_mount dirmove2 up:rw l1:ro
expect_eq "after a remount" "$(ls "$MNT/x/d/h" | tr '\n' ' ')" "h k "
expect_eq "after a remount: content" "$(cat "$MNT/x/d/h/h")" new
t_umount
echo "ok - a moved merged directory's held subdirectories"
