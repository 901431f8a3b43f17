#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 13, "Deep paths": from a directory inside the mount, `mkdir -p` of a
# relative path of PATH_MAX-1 bytes (coreutils makes it one component at a
# time), then, with the cwd walked down there one `cd` at a time, mkdir,
# create, link, rename, symlink, chmod, chown, truncate, unlink, rmdir (and
# stat, read, readlink, xattrs) with relative names: each must succeed, as
# on ext4 and on the kernel's overlayfs. Run on a one-branch mount and on a
# union (the start directory in a read-only lower branch).
# On main (d19e305): FAILS on both mounts: `mkdir -p` fails with "File name
# too long" at the 16th component (its path from the mount's root passes
# PATH_MAX: the service rebuilds every path from the mount's root), so the
# deepest directory does not exist and no call there can be made.
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/rlib.sh"
t_init

# 15 components of 255 bytes, then one of 255: 16 * 255 + 15 = 4095 bytes
seg=$(printf 'd%.0s' $(seq 254))
rel=""
for i in $(seq -w 1 16); do rel+="${rel:+/}${i:1}$seg"; done
expect_eq "relative path length" "${#rel}" 4095

# deep_ops WHAT START: the checks, from START (a directory of the mount).
deep_ops() {
        local what=$1 start=$2 c
        (
                set +e
                fails=0
                t() {  # t DESC CMD...
                        local out
                        if out=$("${@:2}" 2>&1); then echo "ok - $what: $1"; else
                                echo "not ok - $what: $1: $out"; fails=$((fails + 1)); fi
                }
                cd "$start" || exit 99
                t "mkdir -p of a 4095-byte relative path" mkdir -p "$rel"
                n=0
                for c in ${rel//\// }; do
                        cd -P "$c" 2>/dev/null || {
                                echo "not ok - $what: cannot cd into component $((n + 1)) (the rest is not tried)"
                                exit 1
                        }
                        n=$((n + 1))
                done
                t "mkdir" mkdir sub
                t "create" sh -c 'echo hello >file'
                t "read" grep -q hello file
                t "stat" stat file
                t "link" ln file hard
                t "link count" test "$(stat -c %h file 2>/dev/null)" = 2
                t "rename" mv file moved
                t "rename a directory" mv sub sub2
                t "symlink" ln -s moved sym
                t "readlink" test "$(readlink sym 2>/dev/null)" = moved
                t "read through the symlink" grep -q hello sym
                t "chmod" chmod 600 moved
                t "mode after chmod" test "$(stat -c %a moved 2>/dev/null)" = 600
                t "chown" chown 1234:1234 moved
                t "owner after chown" test "$(stat -c %u:%g moved 2>/dev/null)" = 1234:1234
                t "truncate" truncate -s 100000 moved
                t "size after truncate" test "$(stat -c %s moved 2>/dev/null)" = 100000
                t "setxattr" setfattr -n user.deep -v 1 moved
                t "getxattr" getfattr -n user.deep moved
                t "touch" touch -d @1000000000 moved
                t "mtime after touch" test "$(stat -c %Y moved 2>/dev/null)" = 1000000000
                t "unlink" rm sym hard moved
                t "rmdir" rmdir sub2
                t "empty after all" test -z "$(ls -A)"
                exit $fails
        )
}

mkdir -p "$T_ROOT/plain/start"
t_mount plain plain:rw
deep_ops plain "$MNT/start" || R_FAILED=$((R_FAILED + 1))
t_check_mount
t_umount

mkdir -p "$T_ROOT/up" "$T_ROOT/low/start"
echo lower >"$T_ROOT/low/start/l"
t_mount union up:rw low:ro
deep_ops union "$MNT/start" || R_FAILED=$((R_FAILED + 1))
t_check_mount
t_umount
r_exit
