#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Review of issue 13 (union on handles): a write to one name of a lower
# file with two hard links must land in THAT name. Lower: hl1, hl2 (one
# inode). stat hl1 hl2 (the second lookup is hl2), then append to hl1
# through the union, then remount. Expected (as overlayfs): hl1 holds the
# appended data (overlayfs without index: hl2 keeps the old data).
# On core 283d91d: FAILS: the copy-up is made under the node's last looked-up
# name (up/hl2), so after a remount (or drop_caches) hl1 shows the old data
# and hl2 the new one.
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/rlib.sh"
t_init
L=$T_ROOT/low
mkdir -p "$T_ROOT/up" "$L"
echo hl >"$L/hl1"
ln "$L/hl1" "$L/hl2"
t_mount union up:rw low:ro
stat "$MNT/hl1" "$MNT/hl2" >/dev/null
echo Z >>"$MNT/hl1"
if [ "$MNT_KIND" = danaus ]; then
        t_umount
        t_mount union2 up:rw low:ro
fi
got=$(tr '\n' . <"$MNT/hl1")
[ "$got" = "hl.Z." ] && r_ok "hl1 holds the write" || r_not_ok "hl1 after the write and a remount: '$got' (hl2: '$(tr '\n' . <"$MNT/hl2")', upper: $(ls "$T_ROOT/up" | tr '\n' ' '))"
t_umount

# The same after the other link was unlinked: on 283d91d the node's only
# name (hl2) is gone, the copy-up gets no name, and the append to hl1,
# acknowledged, is lost (hl1 shows the old data after a remount).
rm -rf --one-file-system "${T_ROOT:?}/up" "${T_ROOT:?}/low"
mkdir -p "$T_ROOT/up" "$L"
echo hl >"$L/hl1"
ln "$L/hl1" "$L/hl2"
t_mount union3 up:rw low:ro
stat "$MNT/hl1" "$MNT/hl2" >/dev/null
rm "$MNT/hl2"
echo Z >>"$MNT/hl1"
if [ "$MNT_KIND" = danaus ]; then
        t_umount
        t_mount union4 up:rw low:ro
fi
got=$(tr '\n' . <"$MNT/hl1")
[ "$got" = "hl.Z." ] && r_ok "hl1 holds the write after hl2's unlink" || r_not_ok "hl1 after rm hl2, a write and a remount: '$got' (upper: $(ls -a "$T_ROOT/up" | tr '\n' ' '))"
[ ! -e "$MNT/hl2" ] && r_ok "hl2 stays unlinked" || r_not_ok "hl2 came back"
t_umount
r_exit
