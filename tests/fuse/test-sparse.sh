#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A sparse file past 4 GiB: one byte at 5 GiB, holes read as zeros, the
# size is exact, little space is used; a new file and a copied-up one.
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/lib.sh"
t_init

G=$((1024 * 1024 * 1024))
OFF=$((5 * G))

check_sparse() {  # check_sparse FILE
        local f=$1 kb
        printf 'X' | dd of="$f" bs=1 seek=$OFF conv=notrunc status=none
        expect_eq "size of $f" "$(stat -c %s "$f")" $((OFF + 1))
        python3 - "$f" "$OFF" <<'PY' || fail "read-back of $f"
import os, sys
f, off = sys.argv[1], int(sys.argv[2])
fd = os.open(f, os.O_RDONLY)
G = 1 << 30
for pos in (4096, G - 1, 4 * G - 2, 4 * G, 4 * G + 12345, off - 65536):
    b = os.pread(fd, 65536, pos)
    assert len(b) == 65536, (pos, len(b))
    assert b == bytes(65536), "hole at %d not zero" % pos
b = os.pread(fd, 10, off - 3)
assert b == b"\0\0\0X", b
assert os.pread(fd, 10, off + 1) == b"", "read past EOF"
assert os.fstat(fd).st_size == off + 1
os.close(fd)
PY
        kb=$(du -k "$f" | cut -f1)
        [ "$kb" -lt 1024 ] || fail "du of $f: $kb KiB, not sparse"
        # a second byte just below 4 GiB (the 32-bit boundary), seen at once
        printf 'Y' | dd of="$f" bs=1 seek=$((4 * G - 1)) conv=notrunc status=none
        expect_eq "byte at 4G-1" "$(dd if="$f" bs=1 skip=$((4 * G - 1)) count=1 status=none)" Y
        expect_eq "size after second byte" "$(stat -c %s "$f")" $((OFF + 1))
        # truncate down past 4 GiB and up again: the byte at 5 GiB is gone
        truncate -s $((4 * G + 1)) "$f"
        truncate -s $((6 * G)) "$f"
        expect_eq "size after truncate" "$(stat -c %s "$f")" $((6 * G))
        [ "$(dd if="$f" bs=1 skip=$OFF count=1 status=none | od -An -tx1 | tr -d ' ')" = 00 ] ||
                fail "byte at 5G survived truncate"
        expect_eq "byte at 4G-1 after truncate" "$(dd if="$f" bs=1 skip=$((4 * G - 1)) count=1 status=none)" Y
        rm "$f"
        [ ! -e "$f" ] || fail "$f still there after rm"
}

mkdir -p "$T_ROOT/rw" "$T_ROOT/ro"
printf 'lower\n' >"$T_ROOT/ro/lower"
t_mount sparse rw:rw ro:ro
: >"$MNT/big"
check_sparse "$MNT/big"
# copy-up of a lower file, then a write at 5 GiB
expect_eq "lower head" "$(head -c 6 "$MNT/lower")" lower
check_sparse "$MNT/lower"
[ "$(cat "$T_ROOT/ro/lower")" = lower ] || fail "lower branch modified"
t_check_mount
t_umount
echo "ok - sparse file past 4 GiB"
