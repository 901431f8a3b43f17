#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs INSIDE the systemd container of test-units-systemd.sh, after
# `meson install` put Danaus there: the installed units under a real
# systemd. Prints "PASS" last when every check held.
set -eu
fail() { echo "FAIL: $*"; exit 1; }
note() { echo "# $*"; }
CTL=$(command -v danausctl || echo /usr/local/bin/danausctl)
wait_for() { # wait_for SECONDS CMD...
        n=$(($1 * 10)); shift
        while [ $n -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; n=$((n - 1)); done
        return 1
}

systemctl daemon-reload
mkdir -p /var/lib/danaus/pools /srv/dt/c1 /srv/dt/c2 /srv/dt/img
echo img >/srv/dt/img/f
cat >/var/lib/danaus/pools/tenantA.json <<JSON
{ "pool": "tenantA", "backend": { "type": "local", "root": "/srv/dt" },
  "mounts": [ { "mountpoint": "/danaus/tenantA/c1",
                "branches": [ { "path": "c1", "mode": "rw" }, { "path": "img", "mode": "ro" } ] } ] }
JSON

note "systemctl start danaus-fsd@tenantA (Type=notify, hardened)"
systemctl start danaus-fsd@tenantA || { journalctl -u danaus-fsd@tenantA --no-pager | tail; fail "start"; }
[ "$(systemctl show -p ActiveState --value danaus-fsd@tenantA)" = active ] || fail "not active"
[ "$(systemctl show -p Type --value danaus-fsd@tenantA)" = notify ] || fail "not Type=notify"
grep -q "^danaus:tenantA /danaus/tenantA/c1 fuse.danaus " /proc/mounts || fail "mount not visible"
[ "$(cat /danaus/tenantA/c1/f)" = img ] || fail "read through the mount"
echo new >/danaus/tenantA/c1/new.txt
[ "$(cat /srv/dt/c1/new.txt)" = new ] || fail "write through the mount"
systemctl show -p ControlGroup --value danaus-fsd@tenantA | grep -q "^/danaus.slice/danaus-tenantA.slice/danaus-fsd@tenantA.service$" \
        || fail "not in danaus-tenantA.slice: $(systemctl show -p ControlGroup --value danaus-fsd@tenantA)"
[ -S /run/danaus/pools/tenantA/fsd.sock ] || fail "no control socket"

note "the unit's hardening (capabilities, seccomp, devices) lets every kind of operation through"
pid=$(systemctl show -p MainPID --value danaus-fsd@tenantA)
grep -q "^Seccomp:[[:space:]]*2" /proc/$pid/status || fail "no seccomp filter on the service"
grep -q "^NoNewPrivs:[[:space:]]*1" /proc/$pid/status || fail "NoNewPrivs not set"
grep -q "^CapBnd:[[:space:]]*000001ffffffffff" /proc/$pid/status && fail "capabilities not bounded"
M=/danaus/tenantA/c1
cd "$M"
mkfifo fifo && [ -p /srv/dt/c1/fifo ] || fail "mkfifo"
mknod null2 c 1 3 && [ -c /srv/dt/c1/null2 ] || fail "mknod (CAP_MKNOD)"
echo data >file && chown 4321:4322 file && [ "$(stat -c %u:%g /srv/dt/c1/file)" = 4321:4322 ] || fail "chown"
chmod 4755 file && [ "$(stat -c %a /srv/dt/c1/file)" = 4755 ] || fail "chmod setuid"
setfattr -n user.k -v v file && [ "$(getfattr --absolute-names --only-values -n user.k /srv/dt/c1/file)" = v ] || fail "setxattr"
setfattr -n trusted.k -v t file && [ "$(getfattr --absolute-names --only-values -n trusted.k /srv/dt/c1/file)" = t ] || fail "trusted xattr"
ln file hard && [ "$(stat -c %h /srv/dt/c1/file)" = 2 ] || fail "link"
ln -s file sym && [ "$(readlink /srv/dt/c1/sym)" = file ] || fail "symlink"
mv hard moved && [ -e /srv/dt/c1/moved ] || fail "rename"
touch -d @978307200 file && [ "$(stat -c %Y /srv/dt/c1/file)" = 978307200 ] || fail "utimensat"
fallocate -l 1M big && [ "$(stat -c %s /srv/dt/c1/big)" = 1048576 ] || fail "fallocate"
truncate -s 10 big && [ "$(stat -c %s /srv/dt/c1/big)" = 10 ] || fail "truncate"
mkdir -p d/e && rmdir d/e && [ -d /srv/dt/c1/d ] || fail "mkdir/rmdir"
echo more >>f && [ "$(cat /srv/dt/c1/f)" = "img
more" ] || fail "copy-up of a lower file"
rm f && [ -e /srv/dt/c1/.wh.f ] && [ ! -e f ] || fail "whiteout"
sync && cd /

note "journal: the unit's lines and the DANAUS_POOL= field"
wait_for 5 sh -c 'journalctl -u danaus-fsd@tenantA --no-pager | grep -q "serving a union"' \
        || fail "journalctl -u shows nothing: $(journalctl -u danaus-fsd@tenantA --no-pager | tail -3)"
journalctl DANAUS_POOL=tenantA --no-pager -o verbose | grep -q "MESSAGE=pool tenantA: serving 1 mount" \
        || fail "no DANAUS_POOL=tenantA message"

note "Restart=on-failure after SIGKILL (the dead FUSE mount is cleared)"
pid=$(systemctl show -p MainPID --value danaus-fsd@tenantA)
kill -9 "$pid"
wait_for 15 sh -c '[ "$(systemctl show -p NRestarts --value danaus-fsd@tenantA)" = 1 ] && [ "$(systemctl show -p ActiveState --value danaus-fsd@tenantA)" = active ]' \
        || fail "no restart: $(systemctl show -p NRestarts,ActiveState,Result danaus-fsd@tenantA)"
[ "$(cat /danaus/tenantA/c1/new.txt)" = new ] || fail "data after the restart"

note "systemctl stop: clean exit, nothing left"
systemctl stop danaus-fsd@tenantA
[ "$(systemctl show -p Result --value danaus-fsd@tenantA)" = success ] || fail "stop result"
grep -q " /danaus/tenantA/c1 " /proc/mounts && fail "still mounted after stop"
[ -e /run/danaus/pools/tenantA ] && fail "runtime directory left"
systemctl start danaus-fsd@nosuch 2>/dev/null && fail "a pool without a definition started"
rm /var/lib/danaus/pools/tenantA.json

note "danaus-manager.socket activation, systemd backend, danausctl"
systemctl start danaus-manager.socket
out=$($CTL status) || fail "danausctl status: $out"
[ "$(systemctl show -p ActiveState --value danaus-manager.service)" = active ] || fail "manager not activated"
$CTL pool create tB --backend local:/srv/dt --mount /danaus/tB/c1=c1,img >/dev/null || fail "pool create"
[ "$($CTL --json pool show tB | python3 -c 'import json,sys; print(json.load(sys.stdin)["pool"]["state"])')" = running ] \
        || fail "tB not running"
systemctl show -p ControlGroup --value danaus-fsd@tB | grep -q "^/danaus.slice/danaus-tB.slice/" || fail "tB not in its slice"
out=$($CTL run tB -- sh -c 'echo $DANAUS_POOL; cat /proc/self/cgroup; echo viarun >/danaus/tB/c1/r.txt') || fail "run: $out"
echo "$out" | head -1 | grep -qx tB || fail "run: DANAUS_POOL: $out"
echo "$out" | grep -q "name=systemd:/danaus.slice/danaus-tB.slice/.*\.scope$\|^0::/danaus.slice/danaus-tB.slice/" || fail "run: not in the slice: $out"
[ "$(cat /srv/dt/c1/r.txt)" = viarun ] || fail "run: the write did not arrive"
$CTL mount add tB --mount /danaus/tB/c2=c2 >/dev/null || fail "mount add"
grep -q " /danaus/tB/c2 fuse.danaus " /proc/mounts || fail "c2 not mounted"
$CTL mount remove tB /danaus/tB/c2 >/dev/null || fail "mount remove"
grep -q " /danaus/tB/c2 " /proc/mounts && fail "c2 still mounted"
$CTL pool destroy tB || fail "destroy"
grep -q " /danaus/tB/" /proc/mounts && fail "tB still mounted after destroy"
[ "$(systemctl show -p ActiveState --value danaus-fsd@tB)" = active ] && fail "danaus-fsd@tB still active"
echo PASS
