#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 13, "What a real filesystem does and this one does not yet", each
# through a plain one-branch mount (reference mode: the same script on a
# plain directory, DANAUS_TEST_DIR, shows the kernel's answers):
#  dio     a buffered reader sees the bytes of a completed asynchronous
#          O_DIRECT write (dio-aio.c: io_submit/io_getevents)
#  seek    lseek SEEK_DATA/SEEK_HOLE on a sparse file
#  acl     POSIX ACLs: chmod keeps the mask in step; a directory's default
#          ACL is inherited by new files and directories; a setfacl shows
#          in the mode at once; named entries are enforced; the set-group-ID
#          rules with ACLs (setfacl by an owner outside the file's group
#          drops S_ISGID, as chmod does)
#  atime   a read updates atime under relatime (atime older than a day,
#          and a read after a write), and atime is kept across a remount
#  xattrs  a file with 2,000 user.* xattrs lists them all (branch on a
#          tmpfs: ext4 holds only a block of xattrs per inode)
#  seekdir seekdir back to an earlier telldir position continues the
#          listing to its end (dirlist.c)
#  cwd     a process whose cwd is a directory another process keeps
#          renaming creates files in it by relative names without error
# On main (d19e305): FAILS 12 checks:
#  seek: "No such device or address 4194304 0 No such device or address No
#    such device or address No such device or address" (the backend is
#    asked while the data is still in the kernel's page cache);
#  acl: the mode stays 664 through setfacl u:1234:rwx, m::r, o::r-x, -b
#    (ext4: 674 644 675 665);
#    default ACL not inherited (mask r-- / r-x where ext4 gives rw- /
#    rwx), a named-user entry does not grant write, setfacl by an owner
#    outside the group keeps S_ISGID (2755), a set-group-ID directory with
#    a default ACL gives 2755/644 instead of 2775/664;
#  atime: "still 1000000000 after a read", and not updated by a read after
#    a write;
#  seekdir after changes: "seekdir back to entry 2000: 0 of 1002 again";
#  cwd: "create f39: failed ... 3 errors" (ENOENT; 3 to 15 per run).
# Passing on main (kept as guards; the issue's failures not reproduced with
# d19e305 on kernel 6.18): dio (also with buffered reads racing the
# writes), chmod keeping the ACL mask, 2,000 xattrs listed (also a 64 KiB
# list), plain seekdir.
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/rlib.sh"
t_init
command -v setfacl >/dev/null || skip "setfacl missing (Debian package acl)"
DIO=$(r_helper dio-aio)
DL=$(r_helper dirlist)

U=1234 G=1234 U2=1235
expect() {  # expect WHAT GOT WANT
        [ "$2" = "$3" ] && r_ok "$1" || r_not_ok "$1: got '$(echo $2)', expected '$(echo $3)'"
}

mkdir -p "$T_ROOT/b"
X=$T_DIR/xa
mkdir -p "$X"
if ! t_ref_mode; then
        # the xattr branch: a tmpfs inside the backend root
        mkdir -p "$T_ROOT/x"
        mount -t tmpfs -o size=32m,mode=755 danaus-xa "$T_ROOT/x" || skip "cannot mount tmpfs"
        T_MOUNTS+=("$T_ROOT/x")
fi
t_mount realfs b:rw
M=$MNT

# --- dio ---------------------------------------------------------------------
out=$("$DIO" "$M/dio" 2>&1); rc=$?
case $rc in
0) r_ok "dio: $out" ;;
77) note "dio: O_DIRECT or AIO unsupported here: $out"; [ "$MNT_KIND" = danaus ] && r_not_ok "dio: $out" ;;
*) r_not_ok "dio: $out" ;;
esac

# --- seek --------------------------------------------------------------------
# written and sought through one fd, nothing flushed in between (as
# xfstests' seek_sanity_test does): a 16 MiB file with 64 KiB of data at
# 4 MiB, and a 64 KiB file of data only
out=$(python3 - "$M/sparse" <<'PY' 2>&1
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 16 << 20)
os.pwrite(fd, b"x" * 65536, 4 << 20)
fd2 = os.open(sys.argv[1] + "2", os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd2, b"x" * 65536, 0)
res = []
for f, off, wh in ((fd, 0, os.SEEK_DATA), (fd, 4 << 20, os.SEEK_HOLE), (fd, 0, os.SEEK_HOLE),
                   (fd, (4 << 20) + 65536, os.SEEK_DATA), (fd2, 0, os.SEEK_DATA), (fd2, 0, os.SEEK_HOLE)):
    try:
        res.append(str(os.lseek(f, off, wh)))
    except OSError as e:
        res.append(e.strerror)
print(" ".join(res))
PY
)
expect "seek: SEEK_DATA 0, SEEK_HOLE 4M, SEEK_HOLE 0, SEEK_DATA after the data; data-only file: SEEK_DATA 0, SEEK_HOLE 0" \
        "$out" "4194304 4259840 0 No such device or address 0 65536"

# --- acl ---------------------------------------------------------------------
touch "$M/acl-f"
chmod 664 "$M/acl-f"
setfacl -m u:$U:rwx "$M/acl-f"
chmod 640 "$M/acl-f"
expect "acl: chmod 640 sets the mask to r--" "$(getfacl -pcn "$M/acl-f" 2>&1)" \
        "$(printf 'user::rw-\nuser:%s:rwx\t#effective:r--\ngroup::rw-\t#effective:r--\nmask::r--\nother::---' $U)"
expect "acl: the mode shows the mask" "$(stat -c %a "$M/acl-f")" 640
# and the other way: an ACL change shows in the mode at once
touch "$M/acl-m"; chmod 664 "$M/acl-m"
modes=""
for a in u:$U:rwx m::r o::r-x; do
        setfacl -m $a "$M/acl-m"
        modes+="$(stat -c %a "$M/acl-m") "
done
setfacl -b "$M/acl-m"
modes+="$(stat -c %a "$M/acl-m")"
expect "acl: setfacl u:$U:rwx, m::r, o::r-x, -b: the mode after each" "$modes" "674 644 675 665"
mkdir "$M/acl-d"
chmod 750 "$M/acl-d"
setfacl -d -m u:$U:rwx,g::r-x,o::- "$M/acl-d"
(umask 022; touch "$M/acl-d/f"; mkdir "$M/acl-d/sub")
expect "acl: a new file inherits the default ACL" "$(getfacl -pcn "$M/acl-d/f" 2>&1)" \
        "$(printf 'user::rw-\nuser:%s:rwx\t#effective:rw-\ngroup::r-x\t#effective:r--\nmask::rw-\nother::---' $U)"
expect "acl: a new directory inherits it as access and default ACL" "$(getfacl -pcn "$M/acl-d/sub" 2>&1)" \
        "$(printf 'user::rwx\nuser:%s:rwx\ngroup::r-x\nmask::rwx\nother::---\ndefault:user::rwx\ndefault:user:%s:rwx\ndefault:group::r-x\ndefault:mask::rwx\ndefault:other::---' $U $U)"
# the ACL is enforced: uid $U may write the file through its entry
chmod 600 "$M/acl-d/f"; setfacl -m u:$U:rw "$M/acl-d/f"; chmod 755 "$M/acl-d"
as_user $U $G sh -c "echo x >>'$M/acl-d/f'" 2>/dev/null && r_ok "acl: a named-user entry grants write" ||
        r_not_ok "acl: uid $U denied write despite user:$U:rw"
# set-group-ID: a file of uid $U, group 0 (not one of $U's), mode 2755
touch "$M/acl-sg"; chown $U:0 "$M/acl-sg"; chmod 2755 "$M/acl-sg"
as_user $U $G setfacl -m u:$U2:rx "$M/acl-sg" || r_not_ok "acl: setfacl by the owner failed"
expect "acl: setfacl by an owner outside the group drops S_ISGID" "$(stat -c %a "$M/acl-sg")" 755
# a set-group-ID directory with a default ACL: new entries get its group, subdirectories the bit
mkdir "$M/acl-sgd"; chown 0:$G "$M/acl-sgd"; chmod 2775 "$M/acl-sgd"
setfacl -d -m g:$G:rwx "$M/acl-sgd"
mkdir "$M/acl-sgd/sub"; touch "$M/acl-sgd/f"
expect "acl: set-group-ID directory with a default ACL: new entries" \
        "$(stat -c '%g %a' "$M/acl-sgd/sub" "$M/acl-sgd/f" | tr '\n' ' ')" "$G 2775 $G 664 "

# --- atime -------------------------------------------------------------------
echo data >"$M/at1"
touch -a -d @1000000000 "$M/at1"
sleep 0.1
cat "$M/at1" >/dev/null
a1=$(stat -c %X "$M/at1")
[ "$a1" -gt $(($(date +%s) - 60)) ] && r_ok "atime: a read updates an atime older than a day" ||
        r_not_ok "atime: still $a1 after a read (relatime: older than a day)"
echo data >"$M/at2"
touch -a -d "-1 hour" "$M/at2"
sleep 1.1
echo more >>"$M/at2"
cat "$M/at2" >/dev/null
a2=$(stat -c %X "$M/at2") m2=$(stat -c %Y "$M/at2")
[ "$a2" -ge "$m2" ] && r_ok "atime: a read after a write updates it" ||
        r_not_ok "atime: $a2 after a read, older than the write's mtime $m2 (relatime)"
t_umount
t_mount realfs b:rw
M=$MNT
expect "atime: kept across a remount" "$(stat -c %X "$M/at1") $(stat -c %X "$M/at2")" "$a1 $a2"

# --- xattrs ------------------------------------------------------------------
if t_ref_mode; then
        mount -t tmpfs -o size=32m danaus-xa "$X" || skip "cannot mount tmpfs"
        T_MOUNTS+=("$X")
        xf=$X/f
        umount_x() { umount "$X"; }
else
        t_umount
        t_mount xattrs x:rw
        xf=$MNT/f
        umount_x() { t_umount; }
fi
touch "$xf"
out=$(python3 - "$xf" <<'PY' 2>&1
import os, sys
f = sys.argv[1]
for i in range(2000):
    os.setxattr(f, "user.attr%04d" % i, b"value %d" % i)
names = os.listxattr(f)
print(len([n for n in names if n.startswith("user.attr")]))
PY
)
expect "xattrs: 2,000 user.* xattrs set and listed" "$out" 2000
umount_x
if ! t_ref_mode; then t_mount realfs b:rw; M=$MNT; fi

# --- seekdir -----------------------------------------------------------------
mkdir "$M/sd"
(cd "$M/sd" && touch $(seq -f 'entry-%05g-with-a-name-long-enough-for-several-reads' 0 2999))
out=$("$DL" seekdir "$M/sd" 1000 2>&1) && r_ok "seekdir: $out" || r_not_ok "seekdir: $(echo $out)"
out=$("$DL" seekdir "$M/sd" 2900 2>&1) && r_ok "seekdir: $out" || r_not_ok "seekdir: $(echo $out)"
# the entries before the position removed and the directory listed by
# another reader before the seekdir: the rest must still come
out=$("$DL" seekdir "$M/sd" 2000 change 2>&1) && r_ok "seekdir after changes: $(echo $out)" ||
        r_not_ok "seekdir after changes: $(echo $out)"

# --- cwd ---------------------------------------------------------------------
mkdir -p "$M/cw/a/work" "$M/cw/b"
rm -f "$T_DIR/cwd.stop" "$T_DIR/cwd.ready"
# The creator enters the directory before the mover starts (else its cd
# races the first move), then creates by relative name while it moves.
(
        cd "$M/cw/a/work" || { echo "cd failed"; exit 0; }
        : >"$T_DIR/cwd.ready"
        while [ ! -e "$T_DIR/cwd.go" ]; do sleep 0.01; done
        errs=0
        for i in $(seq 1 400); do
                echo "$i" >"f$i" 2>/dev/null || { errs=$((errs + 1)); [ $errs -le 2 ] && echo "create f$i: failed"; }
                mkdir "d$i" 2>/dev/null || errs=$((errs + 1))
        done
        echo "$errs errors"
) >"$T_DIR/cwd.out" &
CREATOR=$!
T_PIDS+=("$CREATOR")
for _ in $(seq 500); do [ -e "$T_DIR/cwd.ready" ] && break; sleep 0.01; done
(
        while [ ! -e "$T_DIR/cwd.stop" ]; do
                mv "$M/cw/a/work" "$M/cw/b/work" 2>/dev/null
                mv "$M/cw/b/work" "$M/cw/a/work" 2>/dev/null
        done
) &
MOVER=$!
T_PIDS+=("$MOVER")
: >"$T_DIR/cwd.go"
wait "$CREATOR" 2>/dev/null || true
: >"$T_DIR/cwd.stop"
wait "$MOVER" 2>/dev/null || true
out=$(cat "$T_DIR/cwd.out")
expect "cwd: 800 creations by relative name in a directory being renamed" "$(echo $out)" "0 errors"
n=$(find "$M/cw" -name 'f*' -type f | wc -l)
expect "cwd: all files there" "$n" 400
t_check_mount
t_umount
r_exit
