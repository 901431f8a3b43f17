#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Differential random test of a Danaus union mount against a plain directory.
#
#   test-difftest.sh [--long] [--overlay]
#
# Builds two read-only OCI-style layers (random trees from difftest --prefill
# plus fixed content: a whiteout and an opaque directory in the upper layer),
# computes the expected merged view B independently (layers.py merge), mounts
# Danaus with one empty rw branch over the two ro branches, and runs difftest
# with fixed seeds; before each seed the rw branch and B are reset. Checks
# afterwards that the ro branches were not touched and that the rw branch
# holds only names the operations can create (no stray temp files). Then runs
# difftest once more on a plain single-branch mount.
#
# --long (or DIFFTEST_LONG=1): many seeds x 100k operations.
# --overlay: run the union part against the kernel's overlayfs instead (the
#            same layers converted), to check the tester itself.
# DIFFTEST_SEEDS="..." / DIFFTEST_OPS=N override the seeds / operation count.
# On a divergence the output names the seed and op; rerun with
# DIFFTEST_SEEDS=<seed> DIFFTEST_VERBOSE=1 to see every operation.

set -euo pipefail
: "${DANAUS_SRC:?DANAUS_SRC must name the source directory}"
[ -r "$DANAUS_SRC/tests/fuse/lib.sh" ] || { echo "FAIL: $DANAUS_SRC/tests/fuse/lib.sh not found" >&2; exit 1; }
source "$DANAUS_SRC/tests/fuse/lib.sh" || exit 1

long=${DIFFTEST_LONG:-0}
target=danaus
for a in "$@"; do
        case $a in
        --long) long=1 ;;
        --overlay) target=overlay ;;
        *) echo "usage: $0 [--long] [--overlay]" >&2; exit 2 ;;
        esac
done

require_fuse
if [ $target = danaus ]; then
        [ -x "$DANAUS_FSD" ] || skip "danaus-fsd not built ($DANAUS_FSD)"
fi
DIFFTEST=${DIFFTEST:-$DANAUS_BUILD/tests/difftest/difftest}
[ -x "$DIFFTEST" ] || fail "difftest not built ($DIFFTEST)"
LAYERS="$DANAUS_SRC/tests/difftest/layers.py"
command -v python3 >/dev/null || skip "no python3"
command -v setfattr >/dev/null || skip "no setfattr (attr)"

if [ "$long" = 1 ]; then
        seeds=${DIFFTEST_SEEDS:-$(seq 1 20)}
        ops=${DIFFTEST_OPS:-100000}
else
        seeds=${DIFFTEST_SEEDS:-"1 2 3"}
        ops=${DIFFTEST_OPS:-3000}
fi
dt_args=(--ops "$ops" --op-timeout 30)
[ "${DIFFTEST_VERBOSE:-0}" = 1 ] && dt_args+=(--verbose)

t_setup
[ -n "$T_DIR" ] && [ -d "$T_DIR" ] || { echo "FAIL: no scratch directory" >&2; exit 1; }
R=$T_DIR/root             # the pool's backend root
MNT=$T_DIR/mnt
EXPECT=$T_DIR/expect      # plain directory: the expected state
mkdir -p "$R/l1" "$R/l2" "$MNT"
chmod 755 "$R" "$MNT"

# ---- the layers ----
# l1 (bottom): fixed content first, on the tester's name pool (a..h) so the
# random operations hit it, then a random tree.
mkdir -p "$R/l1/a/b/c" "$R/l1/a/d"
echo one >"$R/l1/a/b/f"
echo two >"$R/l1/a/g"
echo three >"$R/l1/a/d/e"
printf 'x%.0s' $(seq 5000) >"$R/l1/a/h"
chmod 0640 "$R/l1/a/h"
ln -s b/f "$R/l1/a/e"
setfattr -n user.x -v lower "$R/l1/a/g"
"$DIFFTEST" --prefill --seed 1001 "$R/l1"
# l2: a whiteout (a/.wh.g hides a/g), an opaque directory (a/b hides l1's
# a/b/c and a/b/f, holds its own a/b/e), a file replacing a lower one,
# then a random tree and random whiteouts/opaque markers over l1's names.
mkdir -p "$R/l2/a/b"
: >"$R/l2/a/.wh.g"
: >"$R/l2/a/b/.wh..wh..opq"
echo four >"$R/l2/a/b/e"
echo "upper h" >"$R/l2/a/h"
"$DIFFTEST" --prefill --seed 1002 --whiteouts "$R/l1" "$R/l2"
python3 "$LAYERS" tree "$R/l1" >"$T_DIR/l1.before"
python3 "$LAYERS" tree "$R/l2" >"$T_DIR/l2.before"
note "layers: l1 $(wc -l <"$T_DIR/l1.before") entries, l2 $(wc -l <"$T_DIR/l2.before") entries" \
     "($(grep -c '\.wh\.' "$T_DIR/l2.before" || true) whiteouts/opaque markers)"

if [ $target = overlay ]; then
        python3 "$LAYERS" to-overlay "$R/l2" "$T_DIR/l2ovl" "$R/l1"
fi

reset_expect() {
        rm -rf -- "${EXPECT:?}"
        mkdir -p "$EXPECT"
        python3 "$LAYERS" merge "$EXPECT" "$@"
}

mount_union() {
        rm -rf -- "${R:?}/up" "${T_DIR:?}/work"
        mkdir -p "$R/up" "$T_DIR/work"
        if [ $target = overlay ]; then
                mount -t overlay overlay \
                      -o "lowerdir=$T_DIR/l2ovl:$R/l1,upperdir=$R/up,workdir=$T_DIR/work" "$MNT"
                T_MOUNTS+=("$MNT")
        else
                write_pool "$T_DIR/pool.json" difftest "$R" "$MNT" up:rw l2:ro l1:ro
                danaus_start "$T_DIR/pool.json"
        fi
}

umount_union() {
        if [ $target = overlay ]; then
                umount "$MNT"
        else
                danaus_stop
        fi
}

run_difftest() {
        local seed=$1 what=$2
        mountpoint -q "$MNT" || fail "$MNT is not mounted"
        if ! "$DIFFTEST" --seed "$seed" "${dt_args[@]}" "$MNT" "$EXPECT"; then
                if [ $target = danaus ]; then
                        echo "--- last lines of the fsd log:" >&2
                        tail -n 30 "$T_DIR/fsd.log" >&2 || true
                fi
                fail "difftest diverged on $what, seed $seed (rerun: DIFFTEST_SEEDS=$seed DIFFTEST_VERBOSE=1 $0)"
        fi
}

# Names the operations can leave in the rw branch: pool names, whiteouts of
# pool names and opaque markers. Anything else is a stray temp file.
check_upper() {
        local stray
        stray=$(cd "$R/up" && find . -mindepth 1 | grep -Ev '/([a-h]|\.wh\.[a-h]|\.wh\.\.wh\.\.opq)$' || true)
        [ -z "$stray" ] || fail "unexpected entries in the rw branch: $(echo $stray | head -c 500)"
        python3 "$LAYERS" tree "$R/l1" | cmp -s - "$T_DIR/l1.before" || fail "read-only branch l1 was modified"
        python3 "$LAYERS" tree "$R/l2" | cmp -s - "$T_DIR/l2.before" || fail "read-only branch l2 was modified"
}

# ---- union: rw branch over the two ro layers ----
for seed in $seeds; do
        reset_expect "$R/l1" "$R/l2"
        mount_union
        run_difftest "$seed" "the union ($target)"
        umount_union
        check_upper
done

# ---- plain single-branch mount ----
if [ $target = danaus ]; then
        mkdir -p "$R/plain"
        "$DIFFTEST" --prefill --seed 1003 "$R/plain"
        reset_expect "$R/plain"
        write_pool "$T_DIR/plain.json" difftest "$R" "$MNT" plain:rw
        danaus_start "$T_DIR/plain.json"
        run_difftest 4 "the plain mount"
        danaus_stop
fi
note "difftest: all seeds agree ($target)"
exit 0
