#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 13, "Branches on different filesystems": upper on one tmpfs, lower
# on another (as a user may well set up). tmpfs numbers its inodes from the
# same small values, so a copy-up's inode number on the upper filesystem can
# equal the original's on the lower one. Sequences, each on every one of
# N lower files (so that some numbers collide):
#  a. `truncate -s 1` of a lower file, then open and read it in a new process
#  b. copy-up (chmod), then write the copied-up file and close it
#  c. hard link of a copied-up file; d. rename of a copied-up file
#  e. stat, getfattr and readlink after the copy-up name the right object
# The same sequences on a control union whose branches share one filesystem
# must pass everywhere (that they do on main shows the test itself is right).
# On main (d19e305): the different-filesystems run FAILS, 48 of 60 checks:
# a: cat of the truncated file "No such file or directory"; b: the write
# "Stale file handle" (the issue saw EIO at close), then the file is gone;
# c: ln "succeeds" but the link count stays 1 and the link is unreadable;
# d: the renamed file unreadable; e passes. The control run passes (all 60).
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/rlib.sh"
t_init
N=12

prepare() {  # prepare LOWER: N files of each kind, in creation order
        local d=$1 i
        for i in $(seq -w 1 $N); do
                for k in tr wr ln mv at; do echo "$k $i data" >"$d/$k$i"; done
                ln -s "at$i" "$d/sl$i"
                setfattr -n user.which -v "lower $i" "$d/at$i"
        done
}

# run WHAT: the sequences on the mounted union $MNT
run() {
        local what=$1 i f out
        for i in $(seq -w 1 $N); do
                f=$MNT/tr$i
                if out=$(truncate -s 1 "$f" 2>&1 && bash -c 'cat "$1"' _ "$f" 2>&1) && [ "$out" = t ]; then :; else
                        r_not_ok "$what: truncate -s 1 tr$i, then read in a new process: '$out'"; fi
                f=$MNT/wr$i
                if out=$(chmod 600 "$f" 2>&1 && bash -c 'exec 3>>"$1" && echo more >&3 && exec 3>&-' _ "$f" 2>&1) &&
                        [ "$(cat "$f" 2>&1)" = "$(printf 'wr %s data\nmore' "$i")" ]; then :; else
                        r_not_ok "$what: write and close copied-up wr$i: '$out' / '$(cat "$f" 2>&1)'"; fi
                f=$MNT/ln$i
                if out=$(chmod 600 "$f" 2>&1 && ln "$f" "$f.link" 2>&1) &&
                        [ "$(stat -c %h "$f" 2>&1)" = 2 ] && [ "$(cat "$f.link" 2>&1)" = "ln $i data" ]; then :; else
                        r_not_ok "$what: hard link of copied-up ln$i: '$out' links=$(stat -c %h "$f" 2>&1)"; fi
                f=$MNT/mv$i
                if out=$(chmod 600 "$f" 2>&1 && mv "$f" "$f.new" 2>&1) &&
                        [ "$(cat "$f.new" 2>&1)" = "mv $i data" ] && [ ! -e "$f" ]; then :; else
                        r_not_ok "$what: rename of copied-up mv$i: '$out'"; fi
                f=$MNT/at$i
                if out=$(chmod 640 "$f" 2>&1 && stat -c %a "$f" 2>&1 && getfattr --absolute-names --only-values -n user.which "$f" 2>&1 &&
                        readlink "$MNT/sl$i" 2>&1) && [ "$out" = "$(printf '640\nlower %sat%s' "$i" "$i")" ]; then :; else
                        r_not_ok "$what: attributes of copied-up at$i: '$(echo $out)'"; fi
        done
        # and everything as expected from a fresh view
        umount_union
        mount_union "$what"
        for i in $(seq -w 1 $N); do
                [ "$(cat "$MNT/tr$i" 2>&1)" = t ] || r_not_ok "$what: tr$i after a remount: $(cat "$MNT/tr$i" 2>&1)"
                [ "$(cat "$MNT/ln$i.link" 2>&1)" = "ln $i data" ] || r_not_ok "$what: ln$i.link after a remount"
                [ "$(cat "$MNT/mv$i.new" 2>&1)" = "mv $i data" ] || r_not_ok "$what: mv$i.new after a remount"
        done
        t_check_mount
        umount_union
}

# mount_union NAME: the union of $T_ROOT/$UP over $T_ROOT/low. Reference
# mode mounts overlayfs itself, with its work directory on the upper's
# filesystem ($T_ROOT/$UP/../work).
mount_union() {
        if ! t_ref_mode; then
                t_mount "$1" "$UP:rw" low:ro
                return
        fi
        MNT=$T_DIR/mnt-$1
        mkdir -p "$MNT" "$T_ROOT/$UP/../work"
        mount -t overlay overlay -o "lowerdir=$T_ROOT/low,upperdir=$T_ROOT/$UP,workdir=$T_ROOT/$UP/../work" "$MNT" ||
                fail "cannot mount overlayfs for the reference run"
        T_MOUNTS+=("$MNT")
        MNT_KIND=overlay
}
umount_union() { t_umount; }

# --- control: both branches on one filesystem -------------------------------
UP=u/up
mkdir -p "$T_ROOT/u/up" "$T_ROOT/low"
prepare "$T_ROOT/low"
before=$R_FAILED
mount_union control
run control
[ $R_FAILED = $before ] && r_ok "control (one filesystem)" || note "the control run failed: the test itself is wrong"
control_failed=$((R_FAILED - before))

# --- upper and lower on two tmpfs mounts ------------------------------------
X=$T_DIR/xdev
mkdir -p "$X"
T_ROOT_SAVED=$T_ROOT
T_ROOT=$X
mkdir -p "$X/u" "$X/low"
mount -t tmpfs -o size=16m,mode=755 danaus-up "$X/u" || skip "cannot mount tmpfs"
T_MOUNTS+=("$X/u")
mkdir "$X/u/up"
mount -t tmpfs -o size=16m,mode=755 danaus-low "$X/low" || skip "cannot mount tmpfs"
T_MOUNTS+=("$X/low")
prepare "$X/low"
before=$R_FAILED
mount_union xdev
run xdev
[ $R_FAILED = $before ] && r_ok "upper and lower on two tmpfs" || note "$((R_FAILED - before)) failures with upper and lower on two tmpfs"
umount "$X/u" "$X/low"
T_ROOT=$T_ROOT_SAVED
[ $control_failed = 0 ] || fail "the control run failed: the test itself is wrong"
r_exit
