#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The ansible role (deploy/ansible) on this machine: ansible-playbook
# --syntax-check, then a real run with --connection=local and the direct
# backend (binaries of this build, every path in a temporary directory):
# the manager starts, the inventory's pool is created and mounted; a second
# run changes nothing; a changed memory limit is applied. Needs
# ansible-playbook (Debian's ansible-core), root, /dev/fuse and cgroups.
. "$DANAUS_SRC/tests/fuse/lib.sh"
require_fuse
PLAYBOOK=$(command -v ansible-playbook || true)
[ -n "$PLAYBOOK" ] || skip "no ansible-playbook (apt-get install ansible-core)"
t_setup
CG=danaus_anstest$$
# On any exit: the pool destroyed and the manager the playbook started for
# this test (its pid file) stopped, so their cgroups go; then the emptied
# parent cgroups, then lib.sh's cleanup. No command may fail last here: set
# -e would end the trap early.
ans_cleanup() {
        local rc=$? d mpid=""
        [ -s "$T_DIR/manager.pid" ] && mpid=$(cat "$T_DIR/manager.pid")
        if [ -n "$mpid" ] && kill -0 "$mpid" 2>/dev/null; then
                "$DANAUS_BUILD/danausctl/danausctl" --socket "$T_DIR/manager.sock" pool destroy ans1 >/dev/null 2>&1 || true
                kill -TERM "$mpid" 2>/dev/null || true
                for _ in $(seq 50); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
        fi
        for d in /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/"$CG" /sys/fs/cgroup/*/*/*/"$CG"; do
                if [ -d "$d" ]; then rmdir "$d" 2>/dev/null || true; fi
        done
        (exit $rc)
        t_cleanup
}
trap ans_cleanup EXIT
export ANSIBLE_ROLES_PATH=$DANAUS_SRC/deploy/ansible/roles ANSIBLE_NOCOLOR=1 \
       ANSIBLE_LOCAL_TEMP=$T_DIR/ansible-tmp ANSIBLE_REMOTE_TEMP=$T_DIR/ansible-tmp \
       ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_HOME=$T_DIR/ansible-home

note "syntax check"
"$PLAYBOOK" -i "$DANAUS_SRC/deploy/ansible/inventory.example.ini" \
        "$DANAUS_SRC/deploy/ansible/site.yml" --syntax-check >"$T_DIR/syntax.log" 2>&1 \
        || { cat "$T_DIR/syntax.log" >&2; fail "syntax check"; }

B=$T_DIR/backend
mkdir -p "$B/containers/c1" "$B/images/base"
echo "from the image" >"$B/images/base/motd"
printf '[danaus]\nlocalhost ansible_connection=local ansible_become=false ansible_python_interpreter=/usr/bin/python3\n' >"$T_DIR/inventory.ini"
vars() { # vars MEMORY
        cat <<JSON
{ "danaus_build": false, "danaus_backend": "direct",
  "danaus_ctl": "$DANAUS_BUILD/danausctl/danausctl",
  "danaus_manager": "$DANAUS_BUILD/danaus-manager/danaus-manager",
  "danaus_fsd": "$DANAUS_FSD",
  "danaus_socket": "$T_DIR/manager.sock", "danaus_state_dir": "$T_DIR/state",
  "danaus_runtime_dir": "$T_DIR/run", "danaus_config_dir": "$T_DIR/etc",
  "danaus_manager_log": "$T_DIR/manager.log", "danaus_manager_pidfile": "$T_DIR/manager.pid",
  "danaus_cgroup_name": "$CG",
  "danaus_policy": { "rules": [ { "group": 47110, "pools": ["ans*"], "actions": ["show"] } ] },
  "danaus_pools": [ { "pool": "ans1", "resources": { "memory_max": "$1" },
                      "backend": { "type": "local", "root": "$B" },
                      "mounts": [ { "mountpoint": "$T_DIR/mnt/c1",
                                    "branches": [ { "path": "containers/c1", "mode": "rw" },
                                                  { "path": "images/base", "mode": "ro" } ] } ] } ] }
JSON
}
T_MOUNTS+=("$T_DIR/mnt/c1")
play() { # play MEMORY LOG
        vars "$1" >"$T_DIR/vars.json"
        "$PLAYBOOK" -i "$T_DIR/inventory.ini" "$DANAUS_SRC/deploy/ansible/site.yml" \
                -e "@$T_DIR/vars.json" >"$T_DIR/$2" 2>&1 || { cat "$T_DIR/$2" >&2; fail "ansible-playbook ($2)"; }
        grep -E '^localhost' "$T_DIR/$2" | tail -1
}

note "first run: manager started, pool created"
recap=$(play 256M run1.log)
echo "# $recap"
echo "$recap" | grep -q "failed=0" || fail "run 1: $recap"
[ -s "$T_DIR/manager.pid" ] || fail "no manager pid file"
is_mounted "$T_DIR/mnt/c1" || fail "the pool's mount is missing"
[ "$(cat "$T_DIR/mnt/c1/motd")" = "from the image" ] || fail "the mount does not show the image"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); assert p["rules"][0]["group"]==47110' \
        "$T_DIR/etc/policy.json" || fail "policy not written"

note "second run: nothing changes"
recap=$(play 256M run2.log)
echo "# $recap"
echo "$recap" | grep -q "changed=0 .*failed=0" || fail "run 2 not idempotent: $recap"

note "third run: the memory limit changes live"
recap=$(play 128M run3.log)
echo "# $recap"
echo "$recap" | grep -q "failed=0" || fail "run 3: $recap"
"$DANAUS_BUILD/danausctl/danausctl" --socket "$T_DIR/manager.sock" --json pool show ans1 >"$T_DIR/show.json"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["pool"]; assert p["memory_max"]==128<<20, p["memory_max"]' \
        "$T_DIR/show.json" || fail "memory_max not updated"
echo PASS
