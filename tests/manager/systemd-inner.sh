#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs inside the container of test-systemd.sh (a booted systemd 252), with
# the build installed under /danaus (read-only). Every limit is read from
# the kernel: the service's memory cgroup file and its threads'
# Cpus_allowed_list; systemctl is only asked which units exist and which pid
# is the service's main process.
set -euo pipefail
fail() { echo "FAIL (inside): $*" >&2; journalctl --no-pager -n 60 >&2 || true; exit 1; }
step() { echo "ok - $*"; }

V2=0
[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] && V2=1
if [ $V2 = 0 ]; then
        # The v1 controllers come read-only into nspawn; systemd needs them rw.
        for c in memory cpuset; do mount -o remount,bind,rw "/sys/fs/cgroup/$c"; done
        systemctl daemon-reexec
        sleep 1
fi
tar -C /danaus -cf - . | tar -C / -xf - --keep-directory-symlink
rm -f /danaus-inner.sh
systemctl daemon-reload
systemd-tmpfiles --create >/dev/null 2>&1 || true
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CTL="danausctl --timeout 60"

ncpu=$(nproc)
CPU_A=0
CPU_B=$((ncpu > 1 ? 1 : 0))
mkdir -p /srv/danaus/images/base/etc /srv/danaus/containers/c1 /danaus-mnt/sd1
echo "from the image" >/srv/danaus/images/base/etc/motd
cat >/root/sd1.json <<JSON
{ "pool": "sd1", "resources": { "cpus": "$CPU_A", "memory_max": "256M" },
  "backend": { "type": "local", "root": "/srv/danaus" },
  "mounts": [ { "mountpoint": "/danaus-mnt/sd1",
                "branches": [ { "path": "containers/c1", "mode": "rw" },
                              { "path": "images/base", "mode": "ro" } ] } ] }
JSON

systemctl start danaus-manager.socket
$CTL pool create --file /root/sd1.json >/dev/null || fail "pool create"
systemctl is-active --quiet danaus-manager.service || fail "the socket did not activate the manager"
systemctl is-active --quiet danaus-fsd@sd1.service || fail "danaus-fsd@sd1 not active"
systemctl is-active --quiet danaus-sd1.slice || fail "danaus-sd1.slice not active"
step "socket activation; CreatePool -> danaus-sd1.slice + danaus-fsd@sd1.service"

main_pid() { systemctl show -p MainPID --value danaus-fsd@sd1.service; }
mem_limit() { # the memory limit of the slice pid $1 is in (the service inherits it)
        local path
        if [ $V2 = 1 ]; then
                path=$(awk -F: '$1 == 0 {print $3}' "/proc/$1/cgroup")
        else
                path=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' "/proc/$1/cgroup")
        fi
        case "$path" in *danaus.slice/danaus-sd1.slice/*) ;; *) fail "pid $1 in memory cgroup $path" ;; esac
        if [ $V2 = 1 ]; then
                cat "/sys/fs/cgroup${path%/danaus-fsd@sd1.service}/memory.max"
        else
                cat "/sys/fs/cgroup/memory${path%/danaus-fsd@sd1.service}/memory.limit_in_bytes"
        fi
}
cpus_of() { # one Cpus_allowed_list shared by every thread of pid $1
        cat /proc/"$1"/task/*/status | awk '/^Cpus_allowed_list/ {print $2}' | sort -u | tr '\n' ' ' |
                sed 's/ $//'
}
PID=$(main_pid)
[ "$PID" -gt 0 ] || fail "no MainPID"
[ "$(mem_limit "$PID")" = $((256 << 20)) ] || fail "memory limit $(mem_limit "$PID")"
[ "$(cpus_of "$PID")" = "$CPU_A" ] || fail "cpus $(cpus_of "$PID"), wanted $CPU_A"
grep -q " /danaus-mnt/sd1 fuse.danaus " /proc/mounts || fail "no mount"
[ "$(cat /danaus-mnt/sd1/etc/motd)" = "from the image" ] || fail "read through the mount"
step "limits in the kernel: memory.limit_in_bytes of the slice, Cpus_allowed_list of every thread"

journalctl --no-pager -u danaus-fsd@sd1 | grep -q "serving" || fail "journalctl -u danaus-fsd@sd1"
journalctl --no-pager DANAUS_POOL=sd1 | grep -q "created" || fail "journalctl DANAUS_POOL=sd1"
step "journal: -u danaus-fsd@sd1 and DANAUS_POOL=sd1"

$CTL pool update sd1 --cpus "$CPU_B" --memory 128M >/dev/null || fail "pool update"
[ "$(main_pid)" = "$PID" ] || fail "update restarted the service"
[ "$(mem_limit "$PID")" = $((128 << 20)) ] || fail "memory after update $(mem_limit "$PID")"
[ "$(cpus_of "$PID")" = "$CPU_B" ] || fail "cpus after update $(cpus_of "$PID")"
step "UpdatePool applied live (same pid)"

systemctl restart danaus-manager.service
$CTL --json pool show sd1 | grep -q '"state": *"running"' || fail "state after manager restart"
[ "$(main_pid)" = "$PID" ] || fail "the manager's restart restarted the service"
step "manager restart: the service adopted, not restarted"

kill -KILL "$PID"
for _ in $(seq 100); do
        NEW=$(main_pid)
        [ "$NEW" != 0 ] && [ "$NEW" != "$PID" ] && systemctl is-active --quiet danaus-fsd@sd1 && break
        sleep 0.1
done
{ [ "$NEW" != "$PID" ] && [ "$NEW" != 0 ]; } || fail "systemd did not restart the killed service"
[ "$(mem_limit "$NEW")" = $((128 << 20)) ] || fail "memory after restart"
[ "$(cpus_of "$NEW")" = "$CPU_B" ] || fail "cpus after restart $(cpus_of "$NEW")"
for _ in $(seq 50); do [ -e /danaus-mnt/sd1/etc/motd ] && break; sleep 0.1; done
[ "$(cat /danaus-mnt/sd1/etc/motd)" = "from the image" ] || fail "mount after restart"
step "a killed service restarted by systemd in its slice, limits kept"

$CTL pool destroy sd1 >/dev/null || fail "pool destroy"
! systemctl is-active --quiet danaus-fsd@sd1.service || fail "service still active"
! systemctl is-active --quiet danaus-sd1.slice || fail "slice still active"
! grep -q " /danaus-mnt/sd1 " /proc/mounts || fail "mount left"
[ ! -e /var/lib/danaus/pools/sd1.json ] || fail "state left"
[ ! -e /run/systemd/system/danaus-fsd@sd1.service.d ] || fail "drop-in left"
! kill -0 "$NEW" 2>/dev/null || fail "process left"
if [ -d /sys/fs/cgroup/memory/danaus.slice/danaus-sd1.slice ] ||
        [ -d /sys/fs/cgroup/danaus.slice/danaus-sd1.slice ]; then
        fail "cgroup left"
fi
step "DestroyPool: no unit, slice, mount, drop-in, state, process or cgroup left"
