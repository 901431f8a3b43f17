#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# POSIX checks (posix-check.c) on a union mount (rw over two ro branches
# with prepared content, branch directories inspected for copy-up and
# whiteouts) and on a plain one-branch mount holding the merged view.
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/lib.sh"
t_init
PC=$(t_helper posix-check)

mk() {  # mk FILE CONTENT [MODE]
        mkdir -p "$(dirname "$1")"
        printf '%b' "$2" >"$1"
        chmod "${3:-644}" "$1"
}

# ro1: the upper of the two image layers; ro2: the bottom one.
make_ro1() {
        local d=$1
        mkdir -p "$d"
        mk "$d/lfile" 'lower file one\n'
        mk "$d/shadow" 'from ro1\n'
        mk "$d/ldir/a" 'a\n'
        mk "$d/ldir/sub/b" 'b\n'
        mk "$d/opq/top" 'top\n'
        mk "$d/lexec" '#!/bin/sh\necho hi\n' 755
        ln -s lfile "$d/llink"
        mk "$d/app_l" 'lower app\n'
        mk "$d/cu_chmod" 'chmod me\n'
        chown 4321:4322 "$d/cu_chmod"
        setfattr -n user.keep -v yes "$d/cu_chmod"
        touch -d @978307200 "$d/cu_chmod"
        mk "$d/ul_1" 'ul1\n'
        mk "$d/ul_both" 'ul both ro1\n'
        mk "$d/del/f1" 'f1\n'
        mk "$d/rn_dst_l" 'old dst\n'
        mk "$d/rdir/x" 'x\n'
        mk "$d/hl_l" 'link me\n'
        mk "$d/xa_l" 'xattr lower\n'
        setfattr -n user.lower -v ro1 "$d/xa_l"
        mk "$d/xa_l2" 'xattr lower 2\n'
        setfattr -n user.lower -v ro1 "$d/xa_l2"
        mk "$d/ino_cu" 'ino\n'
        mk "$d/uo_l" 'uo_l\n'
        mk "$d/uo_w" 'lower, written after unlink\n'
        mk "$d/uo_t" 'truncated by name\n'
        mk "$d/mm_l" 'old lower\n'
        for i in $(seq -w 0 29); do mk "$d/sdir/l$i" "l$i"; done
}
make_ro2() {
        local d=$1
        mkdir -p "$d"
        mk "$d/shadow" 'from ro2\n'
        mk "$d/l2file" 'lower two\n'
        mk "$d/ldir/c" 'c\n'
        mk "$d/hidden" 'should be hidden\n'
        mk "$d/opq/below" 'below\n'
        mk "$d/ul_2" 'ul2\n'
        mk "$d/ul_both" 'ul both ro2\n'
        mk "$d/del/f2" 'f2\n'
        mk "$d/trunc_l" 'bottom data\n'
        mk "$d/rn_l" 'rename me\n'
        mk "$d/rdir/y/z" 'z\n'
        mk "$d/attr_l" 'attr\n'
        for i in $(seq -w 0 29); do mk "$d/sdir/m$i" "m$i"; done
}
make_rw() {
        mkdir -p "$1"
        mk "$1/ufile" 'upper\n'
}
state() {  # the merged view: names, types, modes, owners, sizes, mtimes, link targets, data
        (cd "$1" && find . -printf '%p %y %m %u:%g %s %T@ %l\n' | sort &&
                find . -type f -exec md5sum {} + | sort -k2)
}
snapshot() {  # the read-only branches: names, modes, owners, sizes, mtimes, data, xattrs
        (cd "$T_ROOT" && find ro1 ro2 -exec stat -c '%n %a %u:%g %s %Y' {} + | sort &&
                find ro1 ro2 -type f -exec md5sum {} + | sort -k2 &&
                getfattr -R -d -m - ro1 ro2 2>/dev/null)
}

# --- union: rw over ro1 over ro2 -------------------------------------------
make_rw "$T_ROOT/rw"
make_ro1 "$T_ROOT/ro1"
make_ro2 "$T_ROOT/ro2"
# OCI whiteout and opaque marker inside the image layers
: >"$T_ROOT/ro1/.wh.hidden"
: >"$T_ROOT/ro1/opq/.wh..wh..opq"
snapshot >"$T_DIR/lower.before"

t_mount union rw:rw ro1:ro ro2:ro
wh=oci
[ "$MNT_KIND" = overlay ] && wh=overlay
rc=0
"$PC" union "$MNT" --upper "$T_ROOT/rw" --lower "$T_ROOT/ro1" --lower "$T_ROOT/ro2" --whiteout $wh || rc=1
t_check_mount
state "$MNT" >"$T_DIR/union.state"
t_umount
# everything the checks did (whiteouts, opaque and renamed directories,
# copy-ups) survives a remount
t_mount union rw:rw ro1:ro ro2:ro
state "$MNT" >"$T_DIR/union.state2"
diff -u "$T_DIR/union.state" "$T_DIR/union.state2" || { echo "not ok - union view changed across a remount"; rc=1; }
t_umount
if [ "$MNT_KIND" = danaus ]; then
        # the same checks on a fresh top with copy-ups not synced before they
        # are published ("copy_up": "volatile")
        make_rw "$T_ROOT/vrw"
        T_COPY_UP=volatile t_mount volatile vrw:rw ro1:ro ro2:ro
        grep -q '"copy_up": "volatile"' "$T_DIR/volatile.json" || { echo "not ok - copy_up not in the pool"; rc=1; }
        "$PC" union "$MNT" --upper "$T_ROOT/vrw" --lower "$T_ROOT/ro1" --lower "$T_ROOT/ro2" --whiteout oci || rc=1
        t_umount
fi
if [ "$MNT_KIND" = danaus ]; then
        # the read-only branches are what they were
        snapshot >"$T_DIR/lower.after"
        diff -u "$T_DIR/lower.before" "$T_DIR/lower.after" || { echo "not ok - read-only branches modified"; rc=1; }
        # whiteouts in the upper branch are plain OCI .wh. files
        for w in .wh.ul_1 .wh.ul_2 .wh.rn_l .wh.uo_l ldir/.wh.a; do
                [ -f "$T_ROOT/rw/$w" ] || { echo "not ok - rw/$w missing after the run"; rc=1; }
        done
fi

# --- branches on different filesystems: inode numbers stay unique ----------
# (two tmpfs image layers hand out the same small inode numbers)
mkdir -p "$T_ROOT/xrw" "$T_ROOT/x1" "$T_ROOT/x2"
if mount -t tmpfs -o size=4m danaus-test "$T_ROOT/x1" && mount -t tmpfs -o size=4m danaus-test "$T_ROOT/x2"; then
        T_MOUNTS+=("$T_ROOT/x1" "$T_ROOT/x2")
        for x in x1 x2; do
                mkdir "$T_ROOT/$x/d-$x"
                for i in 1 2 3 4 5; do echo "$x $i" >"$T_ROOT/$x/f$i-$x"; echo "$i" >"$T_ROOT/$x/d-$x/g$i"; done
        done
        t_mount xdev xrw:rw x1:ro x2:ro
        "$PC" union "$MNT" --only tree-unique-ino || rc=1
        t_umount
        umount "$T_ROOT/x1" "$T_ROOT/x2"
else
        note "no tmpfs: skipping the different-filesystems case"
fi

# --- plain: one branch holding the merged view ------------------------------
make_rw "$T_ROOT/plain"
make_ro1 "$T_ROOT/plain"
make_ro2 "$T_ROOT/plain.ro2"
# merge: ro2's names not already in ro1, minus the whited-out and opaque ones
(cd "$T_ROOT/plain.ro2" && rm -rf hidden opq && cp -an . "$T_ROOT/plain/")
rm -rf "$T_ROOT/plain.ro2"
t_mount plain plain:rw
"$PC" plain "$MNT" || rc=1
t_check_mount
t_umount
exit $rc
