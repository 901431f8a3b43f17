#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# meson install puts units, binaries, man pages and the policy where Debian
# expects them: a real install of this build with --destdir, the layout of a
# --prefix=/usr configuration (Debian's) from meson's own list, the units
# checked by systemd-analyze verify, the man pages by man --warnings.
set -euo pipefail
: "${DANAUS_BUILD:?}" "${DANAUS_SRC:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "# $*"; }

T=$(mktemp -d "${TMPDIR:-/tmp}/danaus-install.XXXXXX")
case "$T" in */danaus-install.*) ;; *) fail "bad temp dir '$T'" ;; esac
trap 'rm -rf --one-file-system "$T"' EXIT

note "meson install --destdir"
meson install -C "$DANAUS_BUILD" --destdir "$T/root" --no-rebuild >"$T/install.log" 2>&1 \
        || { cat "$T/install.log" >&2; fail "meson install failed"; }
prefix=$(meson introspect "$DANAUS_BUILD" --buildoptions | python3 -c \
        'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo "$prefix/lib/systemd/system")
for f in "$prefix/sbin/danaus-fsd" "$prefix/bin/danausctl"; do
        [ -x "$T/root$f" ] || fail "$f not installed executable"
done
for f in danaus-manager.service danaus-manager.socket danaus-fsd@.service danaus.slice; do
        [ -f "$T/root$unitdir/$f" ] || fail "$unitdir/$f not installed"
done
for f in man1/danausctl.1 man5/danaus-policy.5 man8/danaus-fsd.8 man8/danaus-manager.8; do
        [ -f "$T/root$prefix/share/man/$f" ] || fail "$prefix/share/man/$f not installed"
        grep -q '@VERSION@' "$T/root$prefix/share/man/$f" && fail "$f: @VERSION@ not replaced"
        out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$T/root$prefix/share/man/$f" 2>&1 >/dev/null || true)
        [ -z "$out" ] || fail "$f: man warns: $out"
done
find "$T/root" -name policy.json | grep -q /etc/danaus/policy.json || fail "no /etc/danaus/policy.json"
find "$T/root" -path '*tmpfiles.d/danaus.conf' | grep -q . || fail "no tmpfiles.d/danaus.conf"
grep -q "^ExecStart=$prefix/sbin/danaus-fsd --config /var/lib/danaus/pools/%i.json" \
        "$T/root$unitdir/danaus-fsd@.service" || fail "danaus-fsd@.service: ExecStart not substituted"
grep -q '@sbindir@' "$T/root$unitdir"/* && fail "a unit still holds @sbindir@"

note "the units pass systemd-analyze verify (ExecStart pointed at this build)"
if command -v systemd-analyze >/dev/null; then
        mkdir -p "$T/units"
        for f in "$T/root$unitdir"/*; do
                sed -e "s|$prefix/sbin/danaus-fsd|$DANAUS_BUILD/danaus-fsd/danaus-fsd|" \
                    -e "s|$prefix/sbin/danaus-manager|$DANAUS_BUILD/danaus-manager/danaus-manager|" \
                    "$f" >"$T/units/$(basename "$f")"
        done
        cp "$T/units/danaus-fsd@.service" "$T/units/danaus-fsd@tenantA.service"
        units=("$T/units/danaus-fsd@tenantA.service" "$T/units/danaus.slice" "$T/units/danaus-manager.socket")
        [ -x "$DANAUS_BUILD/danaus-manager/danaus-manager" ] && units+=("$T/units/danaus-manager.service")
        out=$(systemd-analyze verify --man=no "${units[@]}" 2>&1) || fail "systemd-analyze verify: $out"
        # verify prints problems without failing for some of them
        echo "$out" | grep -v -e 'sysinit.target' -e '^$' && fail "systemd-analyze verify: $out"
else
        note "no systemd-analyze here: unit syntax not verified"
fi

note "Debian's layout: --prefix=/usr, from meson's list of installed files"
meson setup "$T/deb" "$DANAUS_SRC" --prefix=/usr >"$T/setup.log" 2>&1 || { cat "$T/setup.log" >&2; fail "setup --prefix=/usr"; }
meson introspect "$T/deb" --installed >"$T/installed.json"
python3 - "$T/installed.json" <<'PY' || fail "Debian layout"
import json, sys
dests = set(json.load(open(sys.argv[1])).values())
want = ["/usr/sbin/danaus-fsd", "/usr/bin/danausctl", "/etc/danaus/policy.json",
        "/usr/share/man/man1/danausctl.1", "/usr/share/man/man5/danaus-policy.5",
        "/usr/share/man/man8/danaus-fsd.8", "/usr/share/man/man8/danaus-manager.8"]
missing = [w for w in want if w not in dests]
units = [d for d in dests if d.endswith("/danaus-fsd@.service")]
assert not missing, missing
assert units and units[0] in ("/lib/systemd/system/danaus-fsd@.service",
                              "/usr/lib/systemd/system/danaus-fsd@.service"), units
print("#", len(dests), "files in Debian's places")
PY
echo PASS
