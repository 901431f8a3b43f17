#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Permission checks as non-root users on a union mount (allow_other,
# default_permissions): mode bits, ownership of new files, sticky
# directories, supplementary groups, setgid directories, lower files.
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/lib.sh"
t_init
command -v setpriv >/dev/null || skip "no setpriv"
PC=$(t_helper posix-check)

UA=$(t_user danaus-test)
UB=$(t_user danaus-test2)
GA=$(id -g danaus-test)
GB=$(id -g danaus-test2)
G=$(t_group danaus-grp)
# the users' groups come from as_user only (setpriv), not from /etc/group
note "users $UA:$GA and $UB:$GB, group $G"

mkdir -p "$T_ROOT/rw" "$T_ROOT/ro"
R=$T_ROOT/ro
printf 'root\n' >"$R/root644"; chmod 644 "$R/root644"
printf 'mine\n' >"$R/userfile"; chown "$UA:$GA" "$R/userfile"; chmod 600 "$R/userfile"
mkdir "$R/grpdir"; chown "0:$G" "$R/grpdir"; chmod 770 "$R/grpdir"
printf 'grp\n' >"$R/grpdir/grpfile"; chown "0:$G" "$R/grpdir/grpfile"; chmod 660 "$R/grpdir/grpfile"
printf 'ro grp\n' >"$R/grpread"; chown "0:$G" "$R/grpread"; chmod 640 "$R/grpread"
mkdir "$R/private"; chmod 700 "$R/private"; : >"$R/private/x"
# a lower directory tree owned by the user: copy-up must keep owners/modes
mkdir -p "$R/udir/sub"; printf 'f\n' >"$R/udir/f"; printf 'g\n' >"$R/udir/sub/g"
chown -R "$UA:$GA" "$R/udir"; chmod 700 "$R/udir" "$R/udir/sub"
t_mount perms rw:rw ro:ro
M=$MNT
chmod 755 "$M"
mkdir "$M/open" "$M/sticky" "$M/sgid"
chmod 777 "$M/open"
chmod 1777 "$M/sticky"
chown "0:$G" "$M/sgid"; chmod 2775 "$M/sgid"
printf 'upper root\n' >"$M/up644"; chmod 644 "$M/up644"

A=(as_user "$UA" "$GA" "$PC" try)
AG=(as_user "$UA" "$GA,$G" "$PC" try)
B=(as_user "$UB" "$GB" "$PC" try)
FAILED=0
chk() {  # chk WANT CMD...: the result of one posix-check try
        local want=$1 got; shift
        got=$("$@" 2>&1) || true
        [ "$got" = "$want" ] || { echo "not ok - ${*: -3}: got $got, expected $want" >&2; FAILED=1; }
}

# root's files (lower and upper): readable, not writable, not removable
for f in root644 up644; do
        chk OK "${A[@]}" read "$M/$f"
        chk EACCES "${A[@]}" write "$M/$f"
        chk EACCES "${A[@]}" append "$M/$f"
        chk EACCES "${A[@]}" truncate "$M/$f"
        chk EACCES "${A[@]}" unlink "$M/$f"
        chk EACCES "${A[@]}" rename "$M/$f" "$M/open/stolen"
        chk EPERM "${A[@]}" chmod "$M/$f" 666
        chk EPERM "${A[@]}" chown "$M/$f" "$UA"
        chk EACCES "${A[@]}" setxattr "$M/$f"
        chk EACCES "${A[@]}" utime-now "$M/$f"
        chk EPERM "${A[@]}" utime-set "$M/$f"
        chk EACCES "${A[@]}" create "$M/new-in-root-dir"
done
[ ! -e "$T_ROOT/rw/root644" ] || { echo "not ok - denied write copied root644 up" >&2; FAILED=1; }
expect_eq "root644 content" "$(cat "$M/root644")" root

# a 0777 directory: new files and directories belong to the caller
chk OK "${A[@]}" create "$M/open/a-file" 666
chk OK "${A[@]}" mkdir "$M/open/a-dir" 777
expect_eq "owner of a-file" "$(stat -c %u:%g "$M/open/a-file")" "$UA:$GA"
expect_eq "owner of a-dir" "$(stat -c %u:%g "$M/open/a-dir")" "$UA:$GA"
expect_eq "owner of a-file in the branch" "$(stat -c %u:%g "$T_ROOT/rw/open/a-file")" "$UA:$GA"
chk OK "${A[@]}" chmod "$M/open/a-file" 600
chk EACCES "${B[@]}" read "$M/open/a-file"
chk EACCES "${B[@]}" create "$M/open/a-dir/b-file"
chk OK "${A[@]}" utime-set "$M/open/a-file"
chk EPERM "${A[@]}" chown "$M/open/a-file" "$UB"
chk EPERM "${A[@]}" chgrp "$M/open/a-file" "$G"
chk OK "${AG[@]}" chgrp "$M/open/a-file" "$G"
expect_eq "group after chgrp" "$(stat -c %g "$M/open/a-file")" "$G"

# a lower file owned by the user: writable (copy-up keeps the owner)
chk OK "${A[@]}" append "$M/userfile"
expect_eq "owner of userfile after copy-up" "$(stat -c %u:%g:%a "$M/userfile")" "$UA:$GA:600"
chk EACCES "${B[@]}" read "$M/userfile"
expect_eq "lower userfile" "$(cat "$R/userfile")" mine

# inside the user's own lower directories: create, write, remove, rename
chk OK "${A[@]}" create "$M/udir/new"
chk OK "${A[@]}" append "$M/udir/sub/g"
chk OK "${A[@]}" unlink "$M/udir/f"
chk OK "${A[@]}" mkdir "$M/udir/d"
chk OK "${A[@]}" rename "$M/udir/new" "$M/udir/sub/new"
chk ENOENT "${A[@]}" read "$M/udir/f"
for d in udir udir/sub; do
        expect_eq "owner/mode of $d" "$(stat -c %u:%g:%a "$M/$d")" "$UA:$GA:700"
        [ -d "$T_ROOT/rw/$d" ] && expect_eq "owner/mode of rw/$d" "$(stat -c %u:%g:%a "$T_ROOT/rw/$d")" "$UA:$GA:700"
done
chk EACCES "${B[@]}" readdir "$M/udir"
chk EACCES "${B[@]}" create "$M/udir/b"
expect_eq "lower udir untouched" "$(ls "$R/udir" | tr '\n' ' ')" "f sub "

# sticky directory
chk OK "${B[@]}" create "$M/sticky/b-file" 666
chk OK "${A[@]}" create "$M/sticky/a-file" 666
chk EPERM "${A[@]}" unlink "$M/sticky/b-file"
chk EPERM "${A[@]}" rename "$M/sticky/b-file" "$M/sticky/mine"
chk EPERM "${A[@]}" rename "$M/sticky/a-file" "$M/sticky/b-file"
chk OK "${B[@]}" chmod "$M/sticky/b-file" 666
chk OK "${A[@]}" write "$M/sticky/b-file"
chk OK "${A[@]}" unlink "$M/sticky/a-file"
[ -e "$M/sticky/b-file" ] || { echo "not ok - b-file removed from the sticky dir" >&2; FAILED=1; }
chk OK "$PC" try unlink "$M/sticky/b-file"

# groups: supplementary group membership grants group access
chk EACCES "${A[@]}" readdir "$M/grpdir"
chk EACCES "${A[@]}" read "$M/grpdir/grpfile"
chk EACCES "${A[@]}" read "$M/grpread"
chk OK "${AG[@]}" readdir "$M/grpdir"
chk OK "${AG[@]}" read "$M/grpdir/grpfile"
chk OK "${AG[@]}" write "$M/grpdir/grpfile"
chk OK "${AG[@]}" read "$M/grpread"
chk EACCES "${AG[@]}" write "$M/grpread"
chk OK "${AG[@]}" create "$M/grpdir/by-a"
expect_eq "owner of grpdir/by-a" "$(stat -c %u:%g "$M/grpdir/by-a")" "$UA:$GA"
chk EACCES "${B[@]}" create "$M/grpdir/by-b"
expect_eq "grpfile owner after group write" "$(stat -c %u:%g:%a "$M/grpdir/grpfile")" "0:$G:660"
# setgid directory: new entries take its group, subdirectories the bit
chk EACCES "${A[@]}" create "$M/sgid/x"
chk OK "${AG[@]}" create "$M/sgid/f"
chk OK "${AG[@]}" mkdir "$M/sgid/d"
expect_eq "group in setgid dir" "$(stat -c %u:%g "$M/sgid/f")" "$UA:$G"
expect_eq "subdir of setgid dir" "$(stat -c %g:%a "$M/sgid/d")" "$G:2755"

# a private directory
chk EACCES "${A[@]}" readdir "$M/private"
chk EACCES "${A[@]}" read "$M/private/x"
chk EACCES "${A[@]}" create "$M/private/y"
chk OK "$PC" try read "$M/private/x"

t_check_mount
t_umount
[ $FAILED = 0 ] || fail "permission checks failed"
echo "ok - permissions as non-root users"
