#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Real programs on a union mount: cp -a in and diff -r, tar round trip,
# sqlite3 (rollback journal and WAL), git, make + exec of the built binary.
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/lib.sh"
t_init

# a source tree with the usual variety: sizes, modes, symlinks, a hard
# link, empty files and directories, odd names, old mtimes, an xattr
S=$T_DIR/src
mkdir -p "$S/a/b/c" "$S/empty-dir" "$S/dir with spaces"
head -c 300000 /dev/urandom >"$S/a/random.bin"
seq 1 20000 >"$S/a/b/numbers.txt"
: >"$S/empty"
printf 'exec\n' >"$S/a/b/c/script.sh"; chmod 750 "$S/a/b/c/script.sh"
printf 'ro\n' >"$S/readonly"; chmod 444 "$S/readonly"
printf 'sp\n' >"$S/dir with spaces/file ü €.txt"
ln -s a/b/numbers.txt "$S/link-to-numbers"
ln -s ../dangling "$S/a/dangling-link"
ln "$S/a/b/numbers.txt" "$S/hardlink-numbers"
setfattr -n user.tag -v src "$S/a/random.bin"
touch -d '2001-02-03 04:05:06.123456789' "$S/a/b/numbers.txt" "$S/empty-dir"
cp -r "$DANAUS_SRC/tests" "$S/project-tests" 2>/dev/null || true

# a lower layer with the same tree (the image) and programs, rw on top
mkdir -p "$T_ROOT/rw" "$T_ROOT/ro"
cp -a "$S" "$T_ROOT/ro/image"
mkdir "$T_ROOT/ro/bin"
printf '#!/bin/sh\necho lower exec\n' >"$T_ROOT/ro/bin/run.sh"
chmod 755 "$T_ROOT/ro/bin/run.sh"
cp /bin/true "$T_ROOT/ro/bin/true-copy"
t_mount prog rw:rw ro:ro
M=$MNT

# what cp -a preserves: name, type, mode, owner, size, mtime (ns), link target
attrs() { (cd "$1" && find . -printf '%p %y %m %u:%g %s %T@ %l\n' | grep -v '^\. ' | sort); }
D=(diff -r --no-dereference)

# cp -a in, diff -r and attributes
cp -a "$S" "$M/copy" || fail "cp -a"
"${D[@]}" "$S" "$M/copy" || fail "diff -r after cp -a"
diff <(attrs "$S") <(attrs "$M/copy") || fail "attributes after cp -a"
[ "$(stat -c %i "$M/copy/a/b/numbers.txt")" = "$(stat -c %i "$M/copy/hardlink-numbers")" ] ||
        fail "cp -a lost the hard link"
expect_eq "xattr after cp -a" "$(getfattr --absolute-names --only-values -n user.tag "$M/copy/a/random.bin" 2>&1)" src
echo "ok - cp -a in, diff -r"
# the image in the lower branch is seen as it is, and copies out
"${D[@]}" "$S" "$M/image" || fail "diff -r of the lower image"
diff <(attrs "$S") <(attrs "$M/image") || fail "attributes of the lower image"
cp -a "$M/image" "$T_DIR/out" && "${D[@]}" "$S" "$T_DIR/out" || fail "cp -a out of the mount"
echo "ok - lower image reads back"

# tar round trip: pack on the mount (lower and upper trees), unpack on it
tar --format=posix -C "$M" -cf "$M/tree.tar" copy image || fail "tar c"
mkdir "$M/untar"
tar -C "$M/untar" -xf "$M/tree.tar" || fail "tar x"
"${D[@]}" "$S" "$M/untar/copy" || fail "diff after tar x (copy)"
"${D[@]}" "$S" "$M/untar/image" || fail "diff after tar x (image)"
diff <(attrs "$S") <(attrs "$M/untar/image") || fail "attributes after tar x"
# tar must not see files change under it
tar -C "$M" -cf /dev/null image 2>"$T_DIR/tar.err" || { cat "$T_DIR/tar.err"; fail "tar c of the lower tree"; }
[ ! -s "$T_DIR/tar.err" ] || { cat "$T_DIR/tar.err"; fail "tar warned"; }
# modify the image (copy-ups, whiteouts) and the same outside, compare
cp -a "$S" "$T_DIR/expect"
for d in "$M/image" "$T_DIR/expect"; do
        echo changed >>"$d/empty"  # (not a hard-linked file: overlayfs breaks lower hard links on copy-up)
        rm -r "$d/a/b/c"
        mv "$d/readonly" "$d/renamed"
        chmod 700 "$d/a"
        mkdir "$d/a/b/c" && echo new >"$d/a/b/c/new"
done
"${D[@]}" "$T_DIR/expect" "$M/image" || fail "modified image differs"
tar -C "$M" -cf - image | tar -C "$T_DIR" -xf - --transform 's,^image,image-tar,' || fail "tar pipe out"
"${D[@]}" "$T_DIR/expect" "$T_DIR/image-tar" || fail "tar of the modified image"
echo "ok - tar round trip"

# sqlite3: 10,000 rows in one transaction, rollback journal then WAL
command -v sqlite3 >/dev/null || skip "no sqlite3"
for jm in delete wal; do
        db=$M/test-$jm.db
        out=$(sqlite3 "$db" <<SQL 2>&1
PRAGMA journal_mode=$jm;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v BLOB);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
INSERT INTO t SELECT i, 'row ' || i, randomblob(100) FROM n;
COMMIT;
CREATE INDEX t_name ON t(name);
UPDATE t SET name = name || '!' WHERE id % 7 = 0;
DELETE FROM t WHERE id % 10 = 0;
PRAGMA integrity_check;
SELECT count(*) FROM t;
SQL
) || fail "sqlite3 ($jm): $out"
        expect_eq "sqlite3 $jm" "$(echo "$out" | tr '\n' ' ')" "$jm ok 9000 "
        out=$(sqlite3 "$db" 'PRAGMA integrity_check; SELECT count(*), sum(length(v)) FROM t;' 2>&1)
        expect_eq "sqlite3 $jm reopen" "$(echo "$out" | tr '\n' ' ')" "ok 9000|900000 "
done
out=$(sqlite3 "$M/test-wal.db" 'SELECT count(*) FROM t WHERE name LIKE "%!";' 2>&1)
expect_eq "sqlite3 wal query" "$out" 1286
echo "ok - sqlite3"

# git
command -v git >/dev/null || skip "no git"
G=(git -c user.name=Danaus -c user.email=danaus@example.invalid -c init.defaultBranch=main
   -c core.fsync=all -c safe.directory='*')
(
        set -e
        cd "$M/copy"
        "${G[@]}" init -q
        "${G[@]}" add -A
        "${G[@]}" commit -q -m first
        echo more >>a/b/numbers.txt
        git mv empty moved-empty
        "${G[@]}" commit -q -am second
        "${G[@]}" gc -q
        "${G[@]}" fsck --full --strict
        [ -z "$("${G[@]}" status --porcelain)" ]
        [ "$("${G[@]}" rev-list --count HEAD)" = 2 ]
        "${G[@]}" clone -q . "$M/clone"
) >"$T_DIR/git.log" 2>&1 || { cat "$T_DIR/git.log"; fail "git"; }
"${D[@]}" -x .git -x empty-dir "$M/copy" "$M/clone" || fail "git clone differs"
echo "ok - git"

# make: build a C program on the mount and exec it from there
command -v make >/dev/null && command -v cc >/dev/null || skip "no make/cc"
mkdir "$M/build"
cat >"$M/build/main.c" <<'C'
#include <stdio.h>
#include "greet.h"
int main(void) { printf("%s %d\n", greeting(), 6 * 7); return 0; }
C
cat >"$M/build/greet.h" <<'C'
const char *greeting(void);
C
cat >"$M/build/greet.c" <<'C'
#include "greet.h"
const char *greeting(void) { return "hello from danaus"; }
C
printf 'prog: main.o greet.o\n\t$(CC) -o $@ $^\n%%.o: %%.c greet.h\n\t$(CC) -O1 -c -o $@ $<\nclean:\n\trm -f prog *.o\n' >"$M/build/Makefile"
make -s -C "$M/build" >"$T_DIR/make.log" 2>&1 || { cat "$T_DIR/make.log"; fail "make"; }
expect_eq "built program" "$("$M/build/prog")" "hello from danaus 42"
# an incremental rebuild sees the new mtime
sleep 1.1
sed -i 's/hello/hi/' "$M/build/greet.c"
make -s -C "$M/build" >>"$T_DIR/make.log" 2>&1 || { cat "$T_DIR/make.log"; fail "make (rebuild)"; }
expect_eq "rebuilt program" "$("$M/build/prog")" "hi from danaus 42"
make -s -q -C "$M/build" prog || fail "make -q: not up to date"
# exec from the lower layer: a script and a binary
expect_eq "lower script" "$("$M/bin/run.sh")" "lower exec"
expect_eq "lower binary" "$("$M/bin/true-copy" && echo ran)" ran
echo "ok - make, exec from the mount"

t_check_mount
t_umount
