#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 13, "Union races" (on a union: rw over one read-only lower branch).
#  1. copy-up racing unlink: one process opens lower files for append (a
#     copy-up; open without O_CREAT takes no directory lock in the kernel)
#     while another unlinks them, in the same order. Every name whose unlink
#     succeeded must stay gone (listing, and after a remount).
#  2. a failed rmdir must not bring deleted names back: merged directories
#     whose 300 lower files were all deleted (whiteouts); rmdir of each while
#     a real file appears in the directory's upper copy 0.5 to 8 ms later,
#     behind the kernel's locks (directly in the upper branch: what the fast
#     path will do). Whatever rmdir returns, no deleted lower name shows
#     again (checked after a remount).
#  3. a lookup in an unrelated directory while a large merged directory
#     (3000 lower files) is renamed (copied up whole) must not wait for the
#     rename: the slowest of the stats of names never looked up before, made
#     meanwhile (one every 2 ms), must stay under 250 ms or a third of the
#     rename's time (the issue saw 977 ms).
# On main (d19e305): FAILS all three: 1: "314 unlinked files back in the
# listing" of 1500 (and after a remount): the copy-up is published after
# the whiteout; 2: "3300 deleted names back in 14 directories left" of 16:
# rmdir removed the whiteouts, then failed with ENOTEMPTY; 3: "a lookup in
# an unrelated directory waited 1142 ms during a 1450 ms rename" (up to
# 7323 of 7550 ms on a loaded machine).
# Reference mode (kernel overlayfs): 1 and 3 run and pass; 2 is skipped
# (overlayfs does not allow changes to its upper directory behind its back).
DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
. "$(dirname "$0")/rlib.sh"
t_init
RACES="python3 $R_SRC/races.py"
N_CU=${N_CU:-1500}
N_RM=${N_RM:-16}
N_BIG=${N_BIG:-3000}

mkdir -p "$T_ROOT/up"
python3 - "$T_ROOT/low" "$N_CU" "$N_RM" "$N_BIG" <<'PY'
import os, sys
low, n_cu, n_rm, n_big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def mk(path, data=b""):
    with open(path, "wb") as f:
        f.write(data)
os.makedirs(f"{low}/cu")
for i in range(n_cu):
    mk(f"{low}/cu/f{i:05d}", b"lower %d\n" % i)
for d in range(1, n_rm + 1):
    os.makedirs(f"{low}/rm{d:02d}")
    for i in range(300):
        mk(f"{low}/rm{d:02d}/f{i:03d}")
for sub in "abc":
    os.makedirs(f"{low}/big/{sub}")
for i in range(n_big):
    mk(f"{low}/big/{'abc'[i % 3]}/f{i}", b"%d\n" % i)
os.makedirs(f"{low}/other")
for i in range(8000):
    mk(f"{low}/other/f{i}")
PY
note "lower branch ready ($SECONDS s)"

t_mount races up:rw low:ro

# --- 1. copy-up racing unlink ----------------------------------------------
$RACES copyup-unlink "$MNT/cu" "$N_CU" >"$T_DIR/unlinked" || fail "copyup-unlink driver failed"
note "$(wc -l <"$T_DIR/unlinked") unlinks succeeded"
ls "$MNT/cu" | sort >"$T_DIR/cu.after"
back=$(comm -12 "$T_DIR/unlinked" "$T_DIR/cu.after" | wc -l)
[ "$back" = 0 ] && r_ok "copy-up vs unlink: no unlinked file in the listing" ||
        r_not_ok "copy-up vs unlink: $back unlinked files back in the listing (e.g. $(comm -12 "$T_DIR/unlinked" "$T_DIR/cu.after" | head -3 | tr '\n' ' '))"

note "copy-up vs unlink done ($SECONDS s)"
# --- 2. rmdir racing a creator behind the kernel's locks -------------------
if [ "$MNT_KIND" = danaus ]; then
        for d in $(seq -f %02g 1 $N_RM); do rm -f "$MNT/rm$d"/f*; done
        for d in $(seq -f %02g 1 $N_RM); do
                [ -z "$(ls -A "$MNT/rm$d")" ] || fail "rm$d not empty after rm"
                [ -d "$T_ROOT/up/rm$d" ] || fail "rm$d has no upper copy"
        done
        # the file appears 0.5 to 8 ms into the rmdir (one of 300 whiteouts
        # takes main about 7 ms to remove)
        for d in $(seq -f %02g 1 $N_RM); do
                $RACES rmdir-vs-create "$MNT/rm$d" "$T_ROOT/up/rm$d" "$(((10#$d % 16 + 1) * 5))e-1"
        done | sort | uniq -c | sed 's/^/# rmdir results: /'
else
        note "reference mode: rmdir race skipped (overlayfs forbids changes to its upper behind its back)"
fi

note "rmdir races done ($SECONDS s)"
# --- 3. lookups while a large merged directory is renamed -------------------
rm -f "$T_DIR/stop"
$RACES lookups "$MNT/other" 0 2000 "$T_DIR/stop" >"$T_DIR/lookups.base" &
sleep 0.5; : >"$T_DIR/stop"; wait $!
read -r base_n base_ms <"$T_DIR/lookups.base"
rm -f "$T_DIR/stop"
$RACES lookups "$MNT/other" 2000 6000 "$T_DIR/stop" >"$T_DIR/lookups.during" &
LPID=$!
sleep 0.2
t0=$(r_now_ms)
mv "$MNT/big" "$MNT/big2" || r_not_ok "rename of the large merged directory failed"
t1=$(r_now_ms)
sleep 0.1
: >"$T_DIR/stop"
wait $LPID
read -r dur_n dur_ms <"$T_DIR/lookups.during"
note "rename of a merged directory of $N_BIG files: $((t1 - t0)) ms; lookups: slowest ${base_ms} ms of $base_n before, ${dur_ms} ms of $dur_n during"
[ "$(find "$MNT/big2" -type f | wc -l)" = "$N_BIG" ] || r_not_ok "big2 does not hold $N_BIG files"
# (a loaded machine may delay one stat a little: only a wait of over 250 ms
# that is also a third of the rename's time counts as waiting for it)
[ "$dur_ms" -le 250 ] || [ $((dur_ms * 3)) -le $((t1 - t0)) ] && r_ok "lookups during the rename: slowest $dur_ms ms" ||
        r_not_ok "a lookup in an unrelated directory waited $dur_ms ms during a $((t1 - t0)) ms rename"
t_check_mount

note "rename done ($SECONDS s)"
# --- after a remount --------------------------------------------------------
t_umount
t_mount races up:rw low:ro
ls "$MNT/cu" | sort >"$T_DIR/cu.remount"
back=$(comm -12 "$T_DIR/unlinked" "$T_DIR/cu.remount" | wc -l)
[ "$back" = 0 ] && r_ok "copy-up vs unlink: none back after a remount" ||
        r_not_ok "copy-up vs unlink: $back unlinked files back after a remount"
if [ "$MNT_KIND" = danaus ]; then
        n_back=0 dirs=0
        for d in $(seq -f %02g 1 $N_RM); do
                [ -d "$MNT/rm$d" ] || continue
                dirs=$((dirs + 1))
                n=$(ls "$MNT/rm$d" | grep -c '^f' || true)
                n_back=$((n_back + n))
        done
        [ "$n_back" = 0 ] && r_ok "failed rmdirs: no deleted name back ($dirs directories left)" ||
                r_not_ok "failed rmdirs: $n_back deleted names back in $dirs directories left"
fi
t_check_mount
t_umount
r_exit
