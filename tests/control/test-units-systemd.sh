#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The units under a real systemd: this host's own root, with an overlay on
# tmpfs, booted in systemd-nspawn (../shared/notes/systemd.md); `meson
# install --destdir` puts this build inside, then units-check.sh runs there:
# systemctl start/stop/restart of danaus-fsd@POOL, the journal, socket
# activation of the manager and danausctl with the systemd backend.
# Needs root, /dev/fuse, systemd-nspawn, the systemd package and overlayfs
# (else 77). ~15 s.
. "$DANAUS_SRC/tests/fuse/lib.sh"
require_fuse
command -v systemd-nspawn >/dev/null || skip "no systemd-nspawn (apt-get install systemd-container)"
[ -x /lib/systemd/systemd ] || skip "no systemd package on this host"
[ -x "$DANAUS_BUILD/danaus-manager/danaus-manager" ] || fail "no danaus-manager in the build"
t_setup
ROOT=$T_DIR/root
NSPAWN=""
CGS=()
ns_cleanup() {
        local rc=$? c
        if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
                kill -TERM "$NSPAWN" 2>/dev/null || true # nspawn powers the container off
                for _ in $(seq 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$NSPAWN" 2>/dev/null || true
        fi
        for m in "$ROOT" "$T_DIR/tmp"; do
                if mountpoint -q "$m"; then umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; fi
        done
        # nspawn leaves payload/ and supervisor/ (and systemd's own) below it
        for c in "${CGS[@]}"; do
                if [ -d "$c" ]; then find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
        done
        (exit $rc)
        t_cleanup
}
trap ns_cleanup EXIT

mkdir -p "$T_DIR/tmp" "$ROOT"
mount -t tmpfs tmpfs "$T_DIR/tmp"
mkdir "$T_DIR/tmp/upper" "$T_DIR/tmp/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$T_DIR/tmp/upper,workdir=$T_DIR/tmp/work" "$ROOT" \
        || skip "no overlayfs over / here"
meson install -C "$DANAUS_BUILD" --destdir "$ROOT" --no-rebuild >"$T_DIR/install.log" 2>&1 \
        || { cat "$T_DIR/install.log" >&2; fail "meson install into the container"; }
cp "$DANAUS_SRC/tests/control/units-check.sh" "$ROOT/root/units-check.sh"
# no console login prompt, a short boot
ln -sf /dev/null "$ROOT/etc/systemd/system/console-getty.service"

# Its own cgroups (the notes: two containers started from one cgroup share it)
(
        for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
                [ -d "$h" ] || continue
                mkdir -p "$h/danaus-nspawn-$$" && echo $BASHPID >"$h/danaus-nspawn-$$/cgroup.procs" || true
        done
        exec systemd-nspawn --quiet --register=no --keep-unit --private-network \
                --bind=/dev/fuse -D "$ROOT" -b </dev/null >"$T_DIR/boot.log" 2>&1
) &
NSPAWN=$!
for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do CGS+=("$h/danaus-nspawn-$$"); done

# the container's init: the nspawn child whose NSpid ends in 1
LEADER=""
for _ in $(seq 200); do
        for p in $(pgrep -P "$NSPAWN" 2>/dev/null) $(for q in $(pgrep -P "$NSPAWN" 2>/dev/null); do pgrep -P "$q"; done); do
                if awk '/^NSpid/ { exit !($NF == 1) }' "/proc/$p/status" 2>/dev/null; then LEADER=$p; break; fi
        done
        [ -n "$LEADER" ] && break
        kill -0 "$NSPAWN" 2>/dev/null || { cat "$T_DIR/boot.log" >&2; fail "systemd-nspawn exited"; }
        sleep 0.1
done
[ -n "$LEADER" ] || fail "no container init found"
IN="nsenter -t $LEADER -m -u -i -n -p -C -r -w"
state=""
for _ in $(seq 300); do
        state=$($IN systemctl is-system-running 2>/dev/null || true)
        case "$state" in running | degraded) break ;; esac
        sleep 0.1
done
case "$state" in running | degraded) note "container booted: $state" ;; *) cat "$T_DIR/boot.log" >&2; fail "boot: '$state'" ;; esac

$IN sh /root/units-check.sh >"$T_DIR/check.log" 2>&1 || true
cat "$T_DIR/check.log"
tail -1 "$T_DIR/check.log" | grep -qx PASS || fail "inside the container: $(grep FAIL "$T_DIR/check.log")"
echo PASS
