#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The systemd backend end to end against a real systemd 252 booted in a
# container (systemd-nspawn over a debootstrapped Debian 12 tree), with the
# build installed into it by `meson install`: danaus-manager.socket
# activation, CreatePool -> transient danaus-POOL.slice + danaus-fsd@POOL,
# limits read from the kernel (the fsd's memory cgroup, its threads'
# Cpus_allowed_list), the journal's DANAUS_POOL= field, UpdatePool live,
# a manager restart adopting the service, systemd restarting a killed
# service, DestroyPool leaving nothing.
#
# Run by hand (suite 'systemd'; the tree is built once, ~40 s and ~250 MB,
# into $DANAUS_NSPAWN_ROOT, default /var/tmp/danaus-nspawn/root):
#   meson test -C build --suite systemd
# Needs root, systemd-nspawn, debootstrap (for the first run) and a Debian
# mirror; else 77. On cgroup v1/hybrid hosts systemd does not enforce
# AllowedCPUs=: the manager's CPUAffinity= drop-in pins the service there.
set -euo pipefail
: "${DANAUS_SRC:?}" "${DANAUS_BUILD:?}"

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || skip "needs root"
command -v systemd-nspawn >/dev/null || skip "no systemd-nspawn (package systemd-container)"
[ -c /dev/fuse ] || skip "no /dev/fuse"

ROOT=${DANAUS_NSPAWN_ROOT:-/var/tmp/danaus-nspawn/root}
case "$ROOT" in /*/*) ;; *) fail "DANAUS_NSPAWN_ROOT must be an absolute path below /" ;; esac
if [ ! -e "$ROOT/.danaus-ready" ]; then
        command -v debootstrap >/dev/null || skip "no debootstrap to build $ROOT"
        mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
        mkdir -p "$(dirname "$ROOT")"
        echo "# building $ROOT from ${mirror:-http://deb.debian.org/debian}"
        debootstrap --variant=minbase \
                --include=systemd,systemd-sysv,dbus,procps,libfuse3-3,fuse3,libjson-c5,python3-minimal \
                bookworm "$ROOT" "${mirror:-http://deb.debian.org/debian}" >/dev/null ||
                skip "debootstrap failed (no mirror?)"
        touch "$ROOT/.danaus-ready"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/danaus-sdtest.XXXXXX")
case "$T" in */danaus-sdtest.*) ;; *) fail "bad temporary directory" ;; esac
NSPAWN=""
CGS=()
cleanup() {
        local rc=$? d
        if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
                kill -TERM "$NSPAWN" 2>/dev/null || true
                for _ in $(seq 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$NSPAWN" 2>/dev/null || true
                wait "$NSPAWN" 2>/dev/null || true
        fi
        # the container's cgroups, deepest first (its processes are gone)
        for d in "${CGS[@]}"; do
                [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        done
        rm -rf --one-file-system "$T"
        exit $rc
}
trap cleanup EXIT

# The build, installed as Debian would have it (prefix from the build).
meson install -C "$DANAUS_BUILD" --no-rebuild --quiet --destdir "$T/payload" >"$T/install.log" 2>&1 ||
        { cat "$T/install.log"; fail "meson install"; }
cp "$DANAUS_SRC/tests/manager/systemd-inner.sh" "$T/payload/danaus-inner.sh"

# The container gets cgroups of its own in every hierarchy it will write,
# so its systemd never touches the host's: on v1/hybrid hosts (these
# machines) made here; on a cgroup v2 host only a delegated scope from the
# host's systemd will do.
own() { awk -F: -v c="$1" '$2 ~ "(^|,)"c"(,|$)" {print $3}' /proc/self/cgroup; }
mkcg() { # HIERARCHY-DIR: creates CG (not in a subshell: CGS must see it)
        CG="$1/danaus-nspawn-$$"
        CGS+=("$CG")
        mkdir -p "$CG"
}
NSPAWN_ARGS=(--quiet --register=no --keep-unit --private-network --volatile=overlay
        --bind=/dev/fuse --bind-ro="$T/payload:/danaus" -D "$ROOT" -b)
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
        [ -d /run/systemd/system ] || skip "cgroup v2 without systemd: no delegated cgroup for the container"
        systemd-run --quiet --scope -p Delegate=yes --unit="danaus-nspawn-$$" \
                systemd-nspawn "${NSPAWN_ARGS[@]}" >"$T/nspawn.log" 2>&1 &
        NSPAWN=$!
else
        mkcg "/sys/fs/cgroup/systemd$(own name=systemd)"
        CG_SD=$CG
        mkcg "/sys/fs/cgroup/cpuset$(own cpuset)"
        CG_CPUSET=$CG
        cat "$(dirname "$CG_CPUSET")/cpuset.cpus" >"$CG_CPUSET/cpuset.cpus"
        cat "$(dirname "$CG_CPUSET")/cpuset.mems" >"$CG_CPUSET/cpuset.mems"
        mkcg "/sys/fs/cgroup/memory$(own memory)"
        CG_MEM=$CG
        (
                for d in "$CG_SD" "$CG_CPUSET" "$CG_MEM"; do echo $BASHPID >"$d/cgroup.procs"; done
                exec systemd-nspawn "${NSPAWN_ARGS[@]}"
        ) >"$T/nspawn.log" 2>&1 &
        NSPAWN=$!
fi

leader() {
        local p
        for p in $(pgrep -P "$NSPAWN" 2>/dev/null); do
                if awk '/^NSpid:/ {exit !($NF == 1)}' "/proc/$p/status" 2>/dev/null; then
                        echo "$p"
                        return 0
                fi
        done
        return 1
}
LEADER=""
for _ in $(seq 100); do LEADER=$(leader) && break; sleep 0.1; done
[ -n "$LEADER" ] || { cat "$T/nspawn.log"; fail "the container did not start"; }
inside() { nsenter -t "$LEADER" -m -u -i -n -p -C -r -w "$@"; }
for _ in $(seq 100); do
        state=$(inside systemctl is-system-running 2>/dev/null || true)
        case "$state" in running | degraded) break ;; esac
        sleep 0.2
done
echo "# container up: $state"

rc=0
inside bash /danaus/danaus-inner.sh || rc=$?
inside systemctl poweroff >/dev/null 2>&1 || true
for _ in $(seq 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.1; done
[ $rc = 0 ] || fail "the checks inside the container failed ($rc)"
echo "systemd backend: all checks passed"
