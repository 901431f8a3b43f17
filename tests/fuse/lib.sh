# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared helpers for the FUSE integration tests (source it; bash only).
#
# Environment, set by meson (tests/meson.build):
#   DANAUS_FSD     path of the danaus-fsd binary under test
#   DANAUS_BUILD   the build directory (helper programs live below it)
#   DANAUS_SRC     the source directory
# A test that cannot run here (no /dev/fuse, not root where it must be)
# exits 77. Every test kills only the PIDs it started and unmounts what it
# mounted, from an EXIT trap, so a failure never wedges the next test.

set -euo pipefail

: "${DANAUS_FSD:?DANAUS_FSD must name the danaus-fsd binary}"
DANAUS_BUILD=${DANAUS_BUILD:-$(dirname "$(dirname "$DANAUS_FSD")")}

T_PIDS=()
T_MOUNTS=()
T_DIR=""

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "# $*"; }

require_fuse() {
        [ -c /dev/fuse ] || skip "no /dev/fuse"
        [ "$(id -u)" = 0 ] || skip "needs root (allow_other mounts, overlayfs)"
}

# t_setup: a private scratch directory, removed at exit.
t_setup() {
        T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/danaus-test.XXXXXX")
        # Every "rm -rf $T_DIR/..." relies on this: never run with it empty.
        case "$T_DIR" in */danaus-test.*) ;; *) echo "FAIL: bad T_DIR '$T_DIR'" >&2; exit 1 ;; esac
        chmod 755 "$T_DIR"
        trap t_cleanup EXIT
}

t_cleanup() {
        local rc=$? m p
        for m in "${T_MOUNTS[@]}"; do
                if grep -q " $m " /proc/mounts 2>/dev/null; then
                        umount -l "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true
                fi
        done
        for p in "${T_PIDS[@]}"; do
                kill -TERM "$p" 2>/dev/null || true
        done
        for p in "${T_PIDS[@]}"; do
                for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$p" 2>/dev/null || true
        done
        case "$T_DIR" in */danaus-test.*) rm -rf --one-file-system "$T_DIR" ;; esac
        exit $rc
}

is_mounted() { grep -q " $1 fuse.danaus " /proc/mounts; }

# danaus_start CONFIG: starts danaus-fsd in the background, waits until each
# mount point of CONFIG is mounted. Sets FSD_PID. Log in $T_DIR/fsd.log.
danaus_start() {
        local cfg=$1 mp
        "$DANAUS_FSD" --config "$cfg" >>"$T_DIR/fsd.log" 2>&1 &
        FSD_PID=$!
        T_PIDS+=("$FSD_PID")
        for mp in $(python3 -c 'import json,sys; [print(m["mountpoint"]) for m in json.load(open(sys.argv[1]))["mounts"]]' "$cfg"); do
                T_MOUNTS+=("$mp")
                for _ in $(seq 100); do
                        is_mounted "$mp" && break
                        kill -0 "$FSD_PID" 2>/dev/null || { cat "$T_DIR/fsd.log" >&2; fail "danaus-fsd exited before mounting $mp"; }
                        sleep 0.05
                done
                is_mounted "$mp" || { cat "$T_DIR/fsd.log" >&2; fail "$mp not mounted after 5 s"; }
        done
}

# danaus_stop: SIGTERM, then require a clean exit (status 0) and no mount left.
danaus_stop() {
        local rc=0 m
        kill -TERM "$FSD_PID"
        wait "$FSD_PID" || rc=$?
        for m in "${T_MOUNTS[@]}"; do
                is_mounted "$m" && fail "$m still mounted after SIGTERM"
        done
        [ $rc = 0 ] || { cat "$T_DIR/fsd.log" >&2; fail "danaus-fsd exited with $rc"; }
}

# write_pool FILE POOL ROOT MOUNTPOINT BRANCH[:rw|:ro]...: a one-mount pool
# definition on the local backend. The first branch is the top. T_COPY_UP,
# when set, is the mount's "copy_up" ("durable" or "volatile").
write_pool() {
        local file=$1 pool=$2 root=$3 mp=$4; shift 4
        local b sep="" branches=""
        for b in "$@"; do
                branches+="$sep{\"path\": \"${b%:*}\", \"mode\": \"${b##*:}\"}"
                sep=", "
        done
        cat >"$file" <<JSON
{
  "pool": "$pool",
  "backend": { "type": "local", "root": "$root" },
  "mounts": [ { "mountpoint": "$mp", ${T_COPY_UP:+\"copy_up\": \"$T_COPY_UP\", }"branches": [ $branches ] } ]
}
JSON
}

# ---------------------------------------------------------------------------
# Additions for the integration suite (tests/fuse/test-*.sh).
#
# Reference mode: DANAUS_TEST_DIR=DIR runs the same checks without
# danaus-fsd, to tell a test's own mistakes from Danaus bugs. The scratch
# directory then lives under DIR; a one-branch mount is the branch
# directory itself (a plain directory of DIR's filesystem) and a union mount
# is a kernel overlayfs mount of the same branches (OCI whiteouts in the
# lower branches converted to overlayfs form first). Scripts set
#   DANAUS_FSD=${DANAUS_FSD:-/nonexistent/danaus-fsd/danaus-fsd}
# before sourcing this file when they allow reference mode.

t_ref_mode() { [ -n "${DANAUS_TEST_DIR:-}" ]; }

# t_init: the common start of a test: checks the environment, makes T_DIR
# (and T_ROOT=$T_DIR/root, the backend root holding the branches).
t_init() {
        DANAUS_SRC=${DANAUS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
        if t_ref_mode; then
                [ -d "$DANAUS_TEST_DIR" ] || fail "DANAUS_TEST_DIR=$DANAUS_TEST_DIR is not a directory"
                [ "$(id -u)" = 0 ] || skip "reference mode needs root"
                TMPDIR=$DANAUS_TEST_DIR t_setup
                note "reference mode on $DANAUS_TEST_DIR ($(stat -f -c %T "$DANAUS_TEST_DIR"))"
        else
                require_fuse
                [ -x "$DANAUS_FSD" ] || fail "danaus-fsd not built: $DANAUS_FSD"
                t_setup
        fi
        T_ROOT=$T_DIR/root
        mkdir -p "$T_ROOT"
        T_NAME=$(basename "$0" .sh)
}

# t_mount NAME BRANCH:rw [BRANCH:ro...]: mounts the branches (directories
# under $T_ROOT, prepared by the caller) and sets MNT. Danaus mode: the pool
# "<test>_<NAME>" with mount point $T_DIR/mnt-NAME, started with danaus_start
# (so one t_mount at a time; t_umount before the next). MNT_KIND is
# danaus, plain (reference, one branch) or overlay (reference, union).
t_mount() {
        local name=$1 b lowers="" sep=""; shift
        if ! t_ref_mode; then
                MNT=$T_DIR/mnt-$name
                mkdir -p "$MNT"
                local pool="${T_NAME#test-}_$name"
                write_pool "$T_DIR/$name.json" "${pool//[^A-Za-z0-9_.]/_}" "$T_ROOT" "$MNT" "$@"
                danaus_start "$T_DIR/$name.json"
                MNT_KIND=danaus
                return
        fi
        if [ $# = 1 ]; then
                MNT=$T_ROOT/${1%:*}
                MNT_KIND=plain
                return
        fi
        MNT=$T_DIR/mnt-$name
        mkdir -p "$MNT" "$T_DIR/work-$name"
        for b in "${@:2}"; do
                t_oci_to_overlay "$T_ROOT/${b%:*}"
                lowers+="$sep$T_ROOT/${b%:*}"
                sep=:
        done
        mount -t overlay overlay \
                -o "lowerdir=$lowers,upperdir=$T_ROOT/${1%:*},workdir=$T_DIR/work-$name" "$MNT" ||
                fail "cannot mount overlayfs for the reference run"
        T_MOUNTS+=("$MNT")
        MNT_KIND=overlay
}

# t_umount: undoes the last t_mount (Danaus: danaus_stop, which requires a
# clean exit of danaus-fsd).
t_umount() {
        case $MNT_KIND in
        danaus) danaus_stop ;;
        overlay) umount "$MNT" ;;
        esac
}

# t_oci_to_overlay DIR: rewrites OCI whiteouts (.wh.NAME, .wh..wh..opq) in a
# branch into overlayfs whiteouts (0/0 character devices, opaque xattr).
t_oci_to_overlay() {
        local f d n
        while IFS= read -r -d '' f; do
                d=$(dirname "$f"); n=$(basename "$f")
                rm -f "$f"
                if [ "$n" = .wh..wh..opq ]; then
                        setfattr -n trusted.overlay.opaque -v y "$d"
                else
                        mknod "$d/${n#.wh.}" c 0 0
                fi
        done < <(find "$1" -name '.wh.*' -print0)
}

# t_helper NAME: prints the path of helper program NAME (tests/fuse/NAME.c),
# from the build directory, else compiled into $T_DIR/bin (reference runs
# without a build).
t_helper() {
        local n=$1 p
        for p in "$DANAUS_BUILD/tests/fuse/$n" "$DANAUS_SRC/build-integ/tests/fuse/$n"; do
                [ -x "$p" ] && { echo "$p"; return; }
        done
        p=$T_DIR/bin/$n
        if [ ! -x "$p" ]; then
                mkdir -p "$T_DIR/bin"
                cc -O2 -Wall -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -o "$p" "$DANAUS_SRC/tests/fuse/$n.c" >&2 ||
                        fail "cannot build helper $n"
        fi
        echo "$p"
}

# t_user NAME: makes sure local user NAME exists (useradd, no home); prints
# its uid. Skips the test when users cannot be created.
t_user() {
        id -u "$1" >/dev/null 2>&1 ||
                useradd -M -N -s /bin/sh "$1" >/dev/null 2>&1 ||
                id -u "$1" >/dev/null 2>&1 || skip "cannot create user $1"
        id -u "$1"
}

# t_group NAME: makes sure local group NAME exists; prints its gid.
t_group() {
        getent group "$1" >/dev/null ||
                groupadd "$1" >/dev/null 2>&1 ||
                getent group "$1" >/dev/null || skip "cannot create group $1"
        getent group "$1" | cut -d: -f3
}

# as_user UID GID[,SUPP...] CMD...: runs CMD with exactly those credentials.
as_user() {
        local uid=$1 gids=$2; shift 2
        local g=${gids%%,*} supp=--clear-groups
        [ "$gids" != "$g" ] && supp=--groups=${gids#*,}
        setpriv --reuid="$uid" --regid="$g" $supp -- "$@"
}

# expect_eq WHAT GOT WANT: fails the test unless GOT = WANT.
expect_eq() {
        [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
}

# t_check_mount: after a test's work, the Danaus mount is still up and its
# service alive (a crash shows here, not as a confusing later error).
t_check_mount() {
        [ "$MNT_KIND" = danaus ] || return 0
        kill -0 "$FSD_PID" 2>/dev/null || { cat "$T_DIR/fsd.log" >&2; fail "danaus-fsd died"; }
        is_mounted "$MNT" || fail "$MNT no longer mounted"
}
