#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Differential test against the kernel's overlayfs.
#
# Two OCI-style layers are built as real tar files with GNU tar (modes,
# owners, symlinks, a hard link, a whiteout .wh.NAME hiding a layer-1 file and
# a layer-1 directory, an opaque directory .wh..wh..opq, nested directories)
# and unpacked as they are into two branch directories: that is the OCI
# format Danaus serves. The same layers converted to overlayfs format
# (whiteout = char device 0:0, opaque = trusted.overlay.opaque=y) are mounted
# with the kernel's overlayfs. Danaus mounts an empty rw branch over the two
# OCI branches. The merged trees are compared (type, mode, uid:gid, size,
# content sha256, link target, nlink of files, user.* xattrs), then the same
# modifications are applied to both mounts and the trees compared again.
# Finally Danaus' rw branch must hold exactly the expected copy-ups and
# .wh. whiteouts, and the ro branches must be untouched.
#
# Exit 0 pass, 1 fail, 77 skip.

set -euo pipefail
: "${DANAUS_SRC:?DANAUS_SRC must name the source directory}"
[ -r "$DANAUS_SRC/tests/fuse/lib.sh" ] || { echo "FAIL: $DANAUS_SRC/tests/fuse/lib.sh not found" >&2; exit 1; }
source "$DANAUS_SRC/tests/fuse/lib.sh" || exit 1

require_fuse
[ -x "$DANAUS_FSD" ] || skip "danaus-fsd not built ($DANAUS_FSD)"
command -v python3 >/dev/null || skip "no python3"
command -v setfattr >/dev/null || skip "no setfattr (attr)"
# (grep -q would stop reading early: with pipefail the writer's SIGPIPE fails the test)
tar --version 2>/dev/null | grep 'GNU tar' >/dev/null || skip "needs GNU tar"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || skip "no overlayfs in this kernel"

LAYERS="$DANAUS_SRC/tests/difftest/layers.py"
t_setup
[ -n "$T_DIR" ] && [ -d "$T_DIR" ] || { echo "FAIL: no scratch directory" >&2; exit 1; }
S1=$T_DIR/src1 S2=$T_DIR/src2         # layer sources, packed with tar
R=$T_DIR/root                         # Danaus backend root: up, oci1, oci2
OVL=$T_DIR/ovl DAN=$T_DIR/dan         # the two mount points
mkdir -p "$S1" "$S2" "$R/up" "$R/oci1" "$R/oci2" "$T_DIR/ovl2" "$T_DIR/ovlup" "$T_DIR/ovlwork" "$OVL" "$DAN"
chmod 755 "$R" "$OVL" "$DAN"

# ---- layer 1 ----
(
        cd "$S1"
        mkdir -p etc bin usr/lib usr/share/doc/guide opt/app/data var/cache var/lib/y home/user tmp srv/ro
        printf 'root:x:0:0:root:/root:/bin/sh\n' >etc/passwd
        printf 'root:*:19000::::::\n' >etc/shadow && chmod 0600 etc/shadow
        printf 'root:x:0:\n' >etc/group
        echo layer1-host >etc/hostname
        echo "welcome" >etc/motd
        head -c 30000 /dev/urandom >bin/tool && chmod 0755 bin/tool
        ln bin/tool bin/tool2                      # a hard link
        ln -s tool bin/sh
        head -c 20000 /dev/urandom >usr/lib/libx.so.1 && chmod 0755 usr/lib/libx.so.1
        ln -s libx.so.1 usr/lib/libx.so
        echo "read me" >usr/share/doc/readme && chmod 0444 usr/share/doc/readme
        echo intro >usr/share/doc/guide/intro
        echo "key=1" >opt/app/conf && chmod 0640 opt/app/conf
        head -c 200000 /dev/urandom >opt/app/data/big
        echo small >opt/app/data/small
        echo a >var/cache/a; echo b >var/cache/b
        echo x >var/lib/x; echo z >var/lib/y/z
        echo secret >home/user/file && chmod 0600 home/user/file
        chown -R 1000:1000 home/user && chmod 0700 home/user
        chmod 1777 tmp
        echo f >srv/ro/f && chmod 0555 srv/ro
        setfattr -n user.layer -v one etc/passwd
        setfattr -n user.origin -v l1 usr/lib/libx.so.1
)
# ---- layer 2: whiteouts, an opaque directory, replaced and new files ----
(
        cd "$S2"
        mkdir -p etc var/cache home bin opt/app usr/share/doc/guide
        : >etc/.wh.shadow                          # hides a layer-1 file
        : >home/.wh.user                           # hides a layer-1 directory
        : >var/cache/.wh..wh..opq                  # opaque: hides var/cache/{a,b}
        echo c >var/cache/c
        printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n' >etc/passwd
        setfattr -n user.layer -v two etc/passwd
        echo "new tool" >bin/newtool && chmod 0755 bin/newtool
        echo "key=2" >opt/app/conf && chmod 0600 opt/app/conf
        : >usr/share/doc/guide/.wh.intro
        echo new >usr/share/doc/guide/new
        chmod 0750 opt
)
tar_opts=(--numeric-owner --xattrs --xattrs-include='user.*')
tar -C "$S1" "${tar_opts[@]}" -cf "$T_DIR/layer1.tar" .
tar -C "$S2" "${tar_opts[@]}" -cf "$T_DIR/layer2.tar" .
tar -tvf "$T_DIR/layer2.tar" | grep '\.wh\.\.wh\.\.opq' >/dev/null || fail "layer 2 lost its opaque marker"
tar -C "$R/oci1" "${tar_opts[@]}" -xpf "$T_DIR/layer1.tar"
tar -C "$R/oci2" "${tar_opts[@]}" -xpf "$T_DIR/layer2.tar"
[ "$(stat -c %h "$R/oci1/bin/tool")" = 2 ] || fail "tar did not keep the hard link"

# overlayfs format of layer 2 (layer 1 has no whiteouts and serves both)
python3 "$LAYERS" to-overlay "$R/oci2" "$T_DIR/ovl2" "$R/oci1"
python3 "$LAYERS" tree "$R/oci1" >"$T_DIR/oci1.before"
python3 "$LAYERS" tree "$R/oci2" >"$T_DIR/oci2.before"

mount -t overlay overlay \
      -o "lowerdir=$T_DIR/ovl2:$R/oci1,upperdir=$T_DIR/ovlup,workdir=$T_DIR/ovlwork" "$OVL"
T_MOUNTS+=("$OVL")
write_pool "$T_DIR/pool.json" ovldiff "$R" "$DAN" up:rw oci2:ro oci1:ro
danaus_start "$T_DIR/pool.json"

failed=0
compare() {
        local when=$1
        python3 "$LAYERS" tree "$OVL" >"$T_DIR/ovl.$when"
        python3 "$LAYERS" tree "$DAN" >"$T_DIR/dan.$when"
        if ! diff -u "$T_DIR/ovl.$when" "$T_DIR/dan.$when" >"$T_DIR/diff.$when"; then
                echo "FAIL: merged trees differ $when (- overlayfs, + danaus):" >&2
                cat "$T_DIR/diff.$when" >&2
                failed=1
        else
                note "merged trees agree $when ($(wc -l <"$T_DIR/ovl.$when") entries)"
        fi
}

# Sanity of the expected merged view on the overlayfs side.
[ ! -e "$OVL/etc/shadow" ] && [ ! -e "$OVL/home/user" ] && [ ! -e "$OVL/var/cache/a" ] &&
        [ -e "$OVL/var/cache/c" ] && [ ! -e "$OVL/usr/share/doc/guide/intro" ] ||
        fail "overlayfs merged view is not what the layers say (test setup broken)"

compare "after mount"

# ---- the same modifications on both ----
step_log=$T_DIR/steps
modify() {
        local M=${1:?} tag=$2
        mountpoint -q "$M" || fail "$M is not mounted"
        step() {
                local rc=0
                "$@" >/dev/null 2>"$T_DIR/step.err" || rc=$?
                echo "$rc $*" | sed "s|$M|MNT|g" >>"$step_log.$tag"
                [ $rc = 0 ] || { echo "# [$tag] $* -> $rc: $(head -c 300 "$T_DIR/step.err")"; }
        }
        step sh -c "echo appended >>'$M/etc/group'"                              # append to a lower file
        step dd if=/dev/zero of="$M/usr/lib/libx.so.1" bs=1 count=100 seek=5000 conv=notrunc status=none
        step chmod 0700 "$M/bin/newtool"                                         # chmod a lower file
        step rm "$M/etc/motd"                                                    # delete, then recreate
        step sh -c "echo recreated >'$M/etc/motd'"
        step rm "$M/usr/share/doc/readme"                                        # delete a lower file
        step rm -rf "$M/opt/app/data"                                            # delete a lower dir
        step sh -c "echo new >'$M/newfile'"
        step mkdir -p "$M/newdir/sub"
        step sh -c "echo deep >'$M/newdir/sub/f'"
        step mv "$M/etc/hostname" "$M/etc/hostname.old"                          # rename a lower file
        step mkdir "$M/home/user"                                                # mkdir over a whited-out dir
        step sh -c "echo n >'$M/home/user/new'"
        step rm -rf "$M/var/lib"                                                 # delete a lower dir, recreate it
        step mkdir "$M/var/lib"
        step ln -s ../etc/passwd "$M/newdir/pw"                                  # symlink
        step ln "$M/etc/passwd" "$M/newdir/hardpw"                               # hard link to a lower file
        step setfattr -n user.x -v 1 "$M/usr/share/doc/guide/new"                # xattr on a lower file
        step truncate -s 3 "$M/opt/app/conf"                                     # truncate a lower file
        step cat "$M/usr/lib/libx.so" "$M/bin/tool" "$M/srv/ro/f"                # reads: no copy-up
        step mv "$M/usr/share/doc" "$M/usr/share/docs"                           # rename a lower dir
        step ls -laR "$M"
}
modify "$OVL" ovl
modify "$DAN" dan
if ! diff -u "$step_log.ovl" "$step_log.dan" >&2; then
        echo "FAIL: exit statuses of the modifications differ (- overlayfs, + danaus)" >&2
        failed=1
fi
compare "after modifications"

# Read back through a fresh mount too: what Danaus wrote to its branches is
# what it serves after a restart.
danaus_stop
danaus_start "$T_DIR/pool.json"
compare "after remount"

# ---- Danaus' rw branch: exactly the copy-ups and whiteouts expected ----
# TYPE PATH; lines with a leading '?' may be there or not (an opaque marker in
# a directory that hides nothing is harmless).
cat >"$T_DIR/up.expected" <<'EOF'
d bin
f bin/newtool
d etc
f etc/.wh.hostname
f etc/group
f etc/hostname.old
f etc/motd
f etc/passwd
d home
d home/user
?f home/user/.wh..wh..opq
f home/user/new
d newdir
?f newdir/.wh..wh..opq
f newdir/hardpw
l newdir/pw
d newdir/sub
f newdir/sub/f
?f newdir/sub/.wh..wh..opq
f newfile
d opt
d opt/app
f opt/app/.wh.data
f opt/app/conf
d usr
d usr/lib
f usr/lib/libx.so.1
d usr/share
f usr/share/.wh.doc
d usr/share/docs
?f usr/share/docs/.wh..wh..opq
d usr/share/docs/guide
?f usr/share/docs/guide/.wh..wh..opq
f usr/share/docs/guide/new
d var
d var/lib
f var/lib/.wh..wh..opq
EOF
(cd "$R/up" && find . -mindepth 1 -printf '%y %P\n' | sort) >"$T_DIR/up.actual"
grep -v '^?' "$T_DIR/up.expected" | sort >"$T_DIR/up.required"
sed -n 's/^?//p' "$T_DIR/up.expected" | sort >"$T_DIR/up.optional"
missing=$(comm -23 "$T_DIR/up.required" "$T_DIR/up.actual")
extra=$(comm -13 "$T_DIR/up.required" "$T_DIR/up.actual" | comm -23 - "$T_DIR/up.optional")
if [ -n "$missing$extra" ]; then
        echo "FAIL: Danaus rw branch content is not as expected" >&2
        [ -z "$missing" ] || { echo "  missing:" >&2; echo "$missing" | sed 's/^/    /' >&2; }
        [ -z "$extra" ] || { echo "  unexpected:" >&2; echo "$extra" | sed 's/^/    /' >&2; }
        failed=1
fi
# whiteouts are empty regular files
bad_wh=$(cd "$R/up" && find . -name '.wh.*' \( ! -type f -o -size +0 \) -print)
[ -z "$bad_wh" ] || { echo "FAIL: whiteouts that are not empty regular files: $bad_wh" >&2; failed=1; }
python3 "$LAYERS" tree "$R/oci1" | cmp -s - "$T_DIR/oci1.before" || { echo "FAIL: ro branch oci1 modified" >&2; failed=1; }
python3 "$LAYERS" tree "$R/oci2" | cmp -s - "$T_DIR/oci2.before" || { echo "FAIL: ro branch oci2 modified" >&2; failed=1; }

danaus_stop
umount "$OVL"
[ $failed = 0 ] || fail "overlay differential test found differences"
note "Danaus and overlayfs agree"
exit 0
