#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Kernel caches of one mount stay coherent with changes made through another
# mount of the same pool (issue 13, "caching made safe"): two mounts A and B
# of the same directory share the core's nodes, so a change through A
# reaches B's kernel as an invalidation (fuse-notify.c), although B's kernel
# trusts entries and attributes for 60 s. Each check first makes B's kernel
# cache the old state, then changes it through A, then looks through B at
# once.
#
# Not checked, because the kernel cannot do it: under writeback caching
# (FUSE_CAP_WRITEBACK_CACHE) the kernel trusts its own size, mtime and ctime
# of a regular file it has in memory over the server's, even after an
# invalidation (fs/fuse/inode.c fuse_get_cache_mask), so a truncate or
# utimens of a file through A shows through B only once B's kernel has
# dropped the inode. Directories and every other attribute are checked.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

require_fuse
[ -x "$DANAUS_FSD" ] || fail "danaus-fsd not built: $DANAUS_FSD"
t_setup
R=$T_DIR/root
mkdir -p "$R/b" "$T_DIR/a" "$T_DIR/bm"
A=$T_DIR/a B=$T_DIR/bm
cat >"$T_DIR/pool.json" <<JSON
{
  "pool": "coherence",
  "backend": { "type": "local", "root": "$R" },
  "mounts": [
    { "mountpoint": "$A", "branches": [ { "path": "b", "mode": "rw" } ] },
    { "mountpoint": "$B", "branches": [ { "path": "b", "mode": "rw" } ] }
  ]
}
JSON
danaus_start "$T_DIR/pool.json"
n=0
check() {  # check WHAT GOT WANT
        n=$((n + 1))
        [ "$2" = "$3" ] || fail "$1: B shows '$2', expected '$3'"
        echo "ok $n - $1"
}

# attributes: chmod, chown; utimens of a directory
echo hello >"$A/f"
sync "$A/f"
check "new file" "$(stat -c '%a %s' "$B/f")" "644 6"
chmod 600 "$A/f"
check "chmod" "$(stat -c %a "$B/f")" 600
chown 1234:1234 "$A/f"
check "chown" "$(stat -c '%u:%g' "$B/f")" 1234:1234
mkdir "$A/t"
check "directory mtime before" "$(stat -c %F "$B/t")" directory
touch -m -d @1500000000 "$A/t"
check "utimens of a directory" "$(stat -c %Y "$B/t")" 1500000000

# data: B has the pages cached; A writes and syncs (A's kernel writes back)
printf 'old data' >"$A/d"
sync "$A/d"
check "data before" "$(cat "$B/d")" "old data"
printf 'NEW' | dd of="$A/d" conv=notrunc,fsync status=none
check "data after a write through A" "$(cat "$B/d")" "NEW data"

# names: B has the entries (and the listing) cached
mkdir "$A/dir"
: >"$A/dir/x"
check "listing before" "$(ls "$B/dir" | tr '\n' ' ')" "x "
: >"$A/dir/y"
check "a name created through A" "$(ls "$B/dir" | tr '\n' ' ')" "x y "
stat "$B/dir/x" >/dev/null
mv "$A/dir/x" "$A/dir/z"
check "rename: the old name" "$(stat -c %n "$B/dir/x" 2>&1 >/dev/null | grep -c 'No such file')" 1
check "rename: the new name" "$(ls "$B/dir" | tr '\n' ' ')" "y z "
stat "$B/dir/y" >/dev/null
rm "$A/dir/y"
check "unlink" "$(test -e "$B/dir/y" && echo there || echo gone)" gone
mkdir "$A/dir/sub"
stat "$B/dir/sub" >/dev/null
rmdir "$A/dir/sub"
check "rmdir" "$(test -e "$B/dir/sub" && echo there || echo gone)" gone
# a negative entry B's kernel holds
test -e "$B/dir/late" && fail "late exists too early"
: >"$A/dir/late"
check "a name B had looked up in vain" "$(test -e "$B/dir/late" && echo there || echo gone)" there
# a name replaced by another file through A
echo one >"$A/dir/r1"
echo two >"$A/dir/r2"
check "before rename over" "$(cat "$B/dir/r1")" one
mv "$A/dir/r2" "$A/dir/r1"
check "rename over a name" "$(cat "$B/dir/r1")" two

# ACLs: B's kernel checks them from its cache
if command -v setfacl >/dev/null; then
        echo acl >"$A/acl"
        chmod 600 "$A/acl"
        as_user 1234 1234 cat "$B/acl" >/dev/null 2>&1 && fail "uid 1234 reads a 600 file"
        setfacl -m u:1234:r "$A/acl"
        check "an ACL set through A grants through B" "$(as_user 1234 1234 cat "$B/acl" 2>&1)" acl
fi

MNT=$A MNT_KIND=danaus t_check_mount
danaus_stop
echo "# coherence: $n checks passed"
