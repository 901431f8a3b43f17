# SPDX-License-Identifier: LGPL-2.1-or-later
# Helpers for the regression tests of issue 13 (tests/regress/test-*.sh).
# Source it after setting DANAUS_FSD's default; it sources ../fuse/lib.sh
# (t_init, t_mount, t_umount, reference mode with DANAUS_TEST_DIR, ...).
#
# Run against any danaus-fsd binary, e.g. the one of an older build:
#   DANAUS_FSD=/tmp/build-main/danaus-fsd/danaus-fsd bash tests/regress/test-X.sh
# or on the kernel (plain directory / overlayfs) to check the expectation:
#   DANAUS_TEST_DIR=/tmp/ref bash tests/regress/test-X.sh

. "$(dirname "${BASH_SOURCE[0]}")/../fuse/lib.sh"

R_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# r_helper NAME: prints the path of helper program NAME
# (tests/regress/NAME.c): the meson build's when this build has it, else
# compiled into $T_DIR/bin (reference runs, or a danaus-fsd from another
# build).
r_helper() {
        local n=$1 p=$DANAUS_BUILD/tests/regress/$1
        if [ -x "$p" ] && [ "$p" -nt "$R_SRC/$n.c" ]; then
                echo "$p"
                return
        fi
        p=$T_DIR/bin/$n
        if [ ! -x "$p" ]; then
                mkdir -p "$T_DIR/bin"
                cc -O2 -Wall -Wextra -pthread -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -o "$p" \
                        "$R_SRC/$n.c" >&2 || fail "cannot build helper $n"
        fi
        echo "$p"
}

# r_failures: the count of "not ok" checks so far; r_not_ok MSG records one
# (a test runs all its checks, then exits 1 if any failed).
R_FAILED=0
r_not_ok() { echo "not ok - $*"; R_FAILED=$((R_FAILED + 1)); }
r_ok() { echo "ok - $*"; }
r_check() {  # r_check MSG CMD...: runs CMD, records ok/not ok
        local msg=$1; shift
        if "$@"; then r_ok "$msg"; else r_not_ok "$msg"; fi
}
r_exit() {
        if [ "$R_FAILED" -gt 0 ]; then
                echo "$R_FAILED check(s) failed"
                [ "${MNT_KIND:-}" = danaus ] && [ -s "$T_DIR/fsd.log" ] && tail -20 "$T_DIR/fsd.log"
                exit 1
        fi
        exit 0
}

# r_now_ms: a monotonic clock in milliseconds.
r_now_ms() { local t; read -r t _ </proc/uptime; echo $(( ${t%.*} * 1000 + 10#${t#*.} * 10 )); }
