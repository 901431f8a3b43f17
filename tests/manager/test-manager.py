#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""danaus-manager end to end with the direct backend, against the real
danaus-fsd and the kernel's cgroups.

Limits are checked where the kernel keeps them, never in the manager's own
report: the service's pid comes from its control socket's SO_PEERCRED, its
cgroups from /proc/PID/cgroup, the limits from those cgroups' files, the
CPUs from /proc/PID/task/*/status Cpus_allowed_list. The varlink client here
is written from the spec, independently of libdanaus/varlink.

Covered: introspection (GetInfo, GetInterfaceDescription = the .varlink
file); CreatePool with limits; the errors (PoolExists, NoSuchPool,
InvalidParameter naming the key, MethodNotFound); malformed, oversized and
half-sent messages and a stalled client while others are served; live
AddMount/RemoveMount without a restart (busy refused, forced works);
UpdatePool applied live, a refused value leaving the limits as they were;
the state file written atomically; a manager restart re-adopting the
running service (same pid); a killed service restarted in its cgroup; a
corrupt state file skipped; socket activation (LISTEN_FDS); the policy for a
non-root caller; DestroyPool leaving nothing (process, mount, cgroup, socket,
state file).

Needs root, /dev/fuse, setpriv and cgroup cpuset+memory (v1 or v2); else 77.
"""
import glob
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("DANAUS_BUILD", "")
MANAGER = os.path.join(BUILD, "danaus-manager", "danaus-manager")
FSD = os.environ.get("DANAUS_FSD", os.path.join(BUILD, "danaus-fsd", "danaus-fsd"))
SRC = os.environ.get("DANAUS_SRC", "")
TENANT_UID, TENANT_GID = 47130, 47131


def skip(msg):
    print(f"SKIP: {msg}")
    sys.exit(77)


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


# ---- a varlink client from the spec ---------------------------------------------


def recv_message(s, buf=b""):
    while b"\0" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("hung up before a whole reply")
        buf += chunk
    i = buf.index(b"\0")
    return json.loads(buf[:i]), buf[i + 1:]


def call(path, method, params=None, timeout=30):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    msg = {"method": method}
    if params is not None:
        msg["parameters"] = params
    s.sendall(json.dumps(msg).encode() + b"\0")
    reply, _ = recv_message(s)
    s.close()
    return reply


def ok(reply, what):
    check("error" not in reply, f"{what}: {reply}")
    return reply.get("parameters", {})


def err(reply, name, what):
    check(reply.get("error") == name, f"{what}: expected {name}, got {reply}")
    return reply.get("parameters", {})


def peer_pid(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    cred = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    s.close()
    return struct.unpack("3i", cred)[0]


# ---- the kernel's view ------------------------------------------------------------


def cgroup_mounts():
    """controller (or "" for v2) -> (mount point, hierarchy root)"""
    out = {}
    for line in open("/proc/self/mountinfo"):
        pre, post = line.split(" - ", 1)
        f = pre.split()
        fstype, _src, opts = post.split()[:3]
        if fstype == "cgroup2":
            out.setdefault("", (f[4], f[3]))
        elif fstype == "cgroup":
            for o in opts.split(","):
                out.setdefault(o, (f[4], f[3]))
    return out


def cgroup_dir(pid, controller):
    mounts = cgroup_mounts()
    for line in open(f"/proc/{pid}/cgroup"):
        hid, ctrls, path = line.rstrip("\n").split(":", 2)
        if (controller == "" and hid == "0") or controller in ctrls.split(","):
            mnt, root = mounts[controller]
            if root != "/" and path.startswith(root):
                path = path[len(root):]
            return mnt + path
    raise Failure(f"pid {pid} has no {controller or 'v2'} cgroup")


V2 = " /sys/fs/cgroup cgroup2 " in open("/proc/self/mounts").read()


def kernel_limits(pid):
    """(CPUs of every thread, memory limit in bytes or None) as the kernel has them"""
    cpus = set()
    for st in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            for line in open(st):
                if line.startswith("Cpus_allowed_list:"):
                    cpus.add(line.split()[1])
        except FileNotFoundError:
            pass
    if V2:
        d = cgroup_dir(pid, "")
        mem = open(os.path.join(d, "memory.max")).read().strip()
        mem = None if mem == "max" else int(mem)
    else:
        d = cgroup_dir(pid, "memory")
        mem = int(open(os.path.join(d, "memory.limit_in_bytes")).read())
        mem = None if mem >= 1 << 62 else mem
    check(len(cpus) == 1, f"threads of {pid} disagree on their CPUs: {cpus}")
    return cpus.pop(), mem


N_SCOPES = [0]


def delegated(cmd):
    """On cgroup v2 the manager needs a cgroup of its own to pass cpuset and
    memory down (no processes beside it): a delegated scope of the host's
    systemd. (Untested on these v1/hybrid machines.)"""
    if not V2:
        return cmd
    N_SCOPES[0] += 1
    return ["systemd-run", "--quiet", "--scope", "-p", "Delegate=yes",
            f"--unit=danaus-mgrtest-{os.getpid()}-{N_SCOPES[0]}", *cmd]


def fuse_mounts(pool):
    out = []
    for line in open("/proc/mounts"):
        f = line.split()
        if f[0] == f"danaus:{pool}" and f[2] == "fuse.danaus":
            out.append(f[1])
    return out


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise Failure(f"timed out: {what}")


# ---- the test -------------------------------------------------------------------


class Test:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="danaus-mgrtest.")
        check("danaus-mgrtest." in self.dir, "bad temporary directory")
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "manager.sock")
        self.state = os.path.join(self.dir, "state")
        self.run = os.path.join(self.dir, "run")
        self.cgname = f"danaus_mgrtest{os.getpid()}"
        self.policy = os.path.join(self.dir, "policy.json")
        self.backend = os.path.join(self.dir, "backend")
        self.mgr = None
        self.log = open(os.path.join(self.dir, "manager.log"), "ab")
        self.n = 0
        for d in ("images/base/etc", "containers/c1", "containers/c2", "tenant/t1"):
            os.makedirs(os.path.join(self.backend, d))
        with open(os.path.join(self.backend, "images/base/etc/motd"), "w") as f:
            f.write("from the image\n")
        os.chmod(os.path.join(self.backend, "tenant"), 0o777)
        os.chmod(os.path.join(self.backend, "tenant/t1"), 0o777)
        with open(self.policy, "w") as f:
            json.dump({"rules": [{"group": TENANT_GID, "pools": ["tenant_*"],
                                  "max_memory": "512M", "backends": ["local"],
                                  "backend_roots": [self.backend + "/tenant"],
                                  "mount_roots": [self.dir + "/tmnt"]}]}, f)
        cpus = sorted(os.sched_getaffinity(0))
        self.cpu_a = str(cpus[0])
        self.cpu_b = str(cpus[-1])

    def step(self, what):
        self.n += 1
        print(f"ok {self.n} - {what}", flush=True)

    def definition(self, pool, mounts, cpus=None, memory="256M"):
        d = {"pool": pool, "backend": {"type": "local", "root": self.backend}, "mounts": mounts}
        res = {}
        if cpus:
            res["cpus"] = cpus
        if memory:
            res["memory_max"] = memory
        if res:
            d["resources"] = res
        return d

    def mount(self, name, top):
        mp = os.path.join(self.dir, "mnt", name)
        os.makedirs(mp, exist_ok=True)
        return {"mountpoint": mp, "branches": [{"path": top, "mode": "rw"},
                                              {"path": "images/base", "mode": "ro"}]}

    def start_manager(self, env=None, pass_fds=(), args=()):
        cmd = [MANAGER, "--socket", self.sock, "--state-dir", self.state, "--runtime-dir",
               self.run, "--policy", self.policy, "--backend", "direct", "--fsd", FSD,
               "--cgroup-name", self.cgname, "--stall-timeout", "1000", *args]
        self.mgr = subprocess.Popen(delegated(cmd), stdout=self.log, stderr=self.log, env=env,
                                    pass_fds=pass_fds)
        wait_for(lambda: self.answers(), 10, "the manager answers")

    def answers(self):
        if self.mgr.poll() is not None:
            raise Failure(f"the manager exited with {self.mgr.returncode}")
        try:
            return "error" not in call(self.sock, "org.varlink.service.GetInfo", timeout=2)
        except OSError:
            return False

    def stop_manager(self):
        self.mgr.send_signal(signal.SIGTERM)
        rc = self.mgr.wait(timeout=20)
        check(rc == 0, f"the manager exited with {rc} on SIGTERM")
        self.mgr = None

    def ctl(self, pool):
        return os.path.join(self.run, "pools", pool, "fsd.sock")

    def m(self, method, params=None):
        return call(self.sock, "io.danaus.Manager." + method, params)

    def cleanup(self):
        # Our pools' processes, mounts and cgroups; then the temporary tree.
        for mp in glob.glob(os.path.join(self.dir, "mnt", "*")) + \
                glob.glob(os.path.join(self.dir, "tmnt", "*")):
            subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
        if self.mgr is not None:
            self.mgr.kill()
            self.mgr.wait()
        for base in glob.glob(f"/sys/fs/cgroup/**/{self.cgname}", recursive=True):
            for procs in glob.glob(os.path.join(base, "*", "cgroup.procs")):
                for pid in open(procs).read().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.2)
            for d in glob.glob(os.path.join(base, "*")):
                if os.path.isdir(d):
                    os.rmdir(d)
            os.rmdir(base)
        for mp in glob.glob(os.path.join(self.dir, "mnt", "*")):
            subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def dump_log(self):
        self.log.flush()
        sys.stderr.write(open(os.path.join(self.dir, "manager.log")).read()[-6000:])

    # ---- the steps ----

    def run_all(self):
        self.start_manager()
        info = ok(call(self.sock, "org.varlink.service.GetInfo"), "GetInfo")
        check("io.danaus.Manager" in info["interfaces"], f"GetInfo: {info}")
        desc = ok(call(self.sock, "org.varlink.service.GetInterfaceDescription",
                       {"interface": "io.danaus.Manager"}), "GetInterfaceDescription")
        check(desc["description"] == open(os.path.join(
            SRC, "danaus-manager", "io.danaus.Manager.varlink")).read(),
            "GetInterfaceDescription differs from io.danaus.Manager.varlink")
        err(self.m("Frobnicate"), "org.varlink.service.MethodNotFound", "unknown method")
        self.step("introspection")

        m1, m2 = self.mount("c1", "containers/c1"), self.mount("c2", "containers/c2")
        d = self.definition("mgr1", [m1], cpus=self.cpu_a, memory="256M")
        pool = ok(self.m("CreatePool", {"definition": d}), "CreatePool")["pool"]
        check(pool["state"] == "running", f"state after create: {pool['state']}")
        pid = peer_pid(self.ctl("mgr1"))
        check(fuse_mounts("mgr1") == [m1["mountpoint"]], f"mounts: {fuse_mounts('mgr1')}")
        check(kernel_limits(pid) == (self.cpu_a, 256 << 20),
              f"kernel limits after create: {kernel_limits(pid)}")
        with open(os.path.join(m1["mountpoint"], "etc/motd")) as f:
            check(f.read() == "from the image\n", "read through the pool")
        with open(os.path.join(m1["mountpoint"], "new.txt"), "w") as f:
            f.write("written\n")
        check(os.path.exists(os.path.join(self.backend, "containers/c1/new.txt")), "copy in c1")
        saved = json.load(open(os.path.join(self.state, "mgr1.json")))
        check(saved == d, f"state file: {saved}")
        check(not glob.glob(os.path.join(self.state, ".*")), "temporary files left in state")
        self.step("CreatePool: service up in its cgroups, limits in the kernel, state stored")

        err(self.m("CreatePool", {"definition": d}), "io.danaus.Manager.PoolExists", "twice")
        err(self.m("GetPool", {"name": "nope"}), "io.danaus.Manager.NoSuchPool", "GetPool")
        bad = json.loads(json.dumps(d))
        bad["pool"] = "mgr_bad"
        bad["mounts"][0]["branches"][1]["mode"] = "rx"
        p = err(self.m("CreatePool", {"definition": bad}), "io.danaus.Manager.InvalidParameter",
                "bad mode")
        check(p["parameter"] == "definition.mounts[0].branches[1].mode", f"names the key: {p}")
        bad = self.definition("mgr_overlap", [self.mount("c1", "containers/c2")])
        p = err(self.m("CreatePool", {"definition": bad}), "io.danaus.Manager.InvalidParameter",
                "overlap with another pool")
        check("mgr1" in p["message"], f"overlap message: {p}")
        p = err(self.m("GetPool", {"name": 5}), "org.varlink.service.InvalidParameter",
                "wrong type")
        check(p["parameter"] == "name", f"{p}")
        check(not os.path.exists(os.path.join(self.state, "mgr_bad.json")), "refused stored")
        self.step("errors: PoolExists, NoSuchPool, InvalidParameter naming the key")

        self.hostile_clients()
        self.step("malformed, oversized, half-sent and stalled clients do not block others")

        # live mounts: the service keeps its pid, the first mount keeps serving
        held = open(os.path.join(m1["mountpoint"], "new.txt"))
        pool = ok(self.m("AddMount", {"name": "mgr1", "mount": m2}), "AddMount")["pool"]
        check(peer_pid(self.ctl("mgr1")) == pid, "AddMount restarted the service")
        check(sorted(fuse_mounts("mgr1")) == sorted([m1["mountpoint"], m2["mountpoint"]]),
              f"after AddMount: {fuse_mounts('mgr1')}")
        check(len(json.load(open(os.path.join(self.state, "mgr1.json")))["mounts"]) == 2,
              "AddMount stored")
        check(held.read() == "written\n", "a file held open on the first mount")
        os.chdir(m2["mountpoint"])
        err(self.m("RemoveMount", {"name": "mgr1", "mountpoint": m2["mountpoint"]}),
            "io.danaus.Manager.MountBusy", "busy mount")
        os.chdir("/")
        check(m2["mountpoint"] in fuse_mounts("mgr1"), "busy mount removed anyway")
        busy = open(os.path.join(m2["mountpoint"], "etc/motd"))
        ok(self.m("RemoveMount", {"name": "mgr1", "mountpoint": m2["mountpoint"],
                                  "force": True}), "forced RemoveMount")
        try:
            busy.close()  # its connection was aborted: the close may fail
        except OSError:
            pass
        check(fuse_mounts("mgr1") == [m1["mountpoint"]], f"after RemoveMount: {fuse_mounts('mgr1')}")
        check(peer_pid(self.ctl("mgr1")) == pid, "RemoveMount restarted the service")
        held.seek(0)
        check(held.read() == "written\n", "the first mount after RemoveMount")
        held.close()
        err(self.m("RemoveMount", {"name": "mgr1", "mountpoint": m1["mountpoint"]}),
            "io.danaus.Manager.InvalidParameter", "removing the last mount")
        err(self.m("RemoveMount", {"name": "mgr1", "mountpoint": "/nowhere"}),
            "io.danaus.Manager.NoSuchMount", "unknown mount")
        self.step("AddMount/RemoveMount live: same pid, other mount undisturbed, busy refused")

        ok(self.m("UpdatePool", {"name": "mgr1", "cpus": self.cpu_b, "memory_max": "128M"}),
           "UpdatePool")
        check(kernel_limits(pid) == (self.cpu_b, 128 << 20), f"after update: {kernel_limits(pid)}")
        p = err(self.m("UpdatePool", {"name": "mgr1", "cpus": "4000"}),
                "io.danaus.Manager.InvalidParameter", "CPU out of range")
        check(p["parameter"] == "cpus", f"{p}")
        p = err(self.m("UpdatePool", {"name": "mgr1", "memory_max": "lots"}),
                "io.danaus.Manager.InvalidParameter", "bad size")
        check(p["parameter"] == "memory_max", f"{p}")
        check(kernel_limits(pid) == (self.cpu_b, 128 << 20), "a refused update changed limits")
        ok(self.m("UpdatePool", {"name": "mgr1", "memory_max": ""}), "removing the limit")
        check(kernel_limits(pid) == (self.cpu_b, None), f"no limit: {kernel_limits(pid)}")
        ok(self.m("UpdatePool", {"name": "mgr1", "memory_max": "256M"}), "UpdatePool")
        saved = json.load(open(os.path.join(self.state, "mgr1.json")))
        check(saved["resources"] == {"cpus": self.cpu_b, "memory_max": "256M"}, f"{saved}")
        self.step("UpdatePool applied live in the kernel; refused values change nothing")

        # a corrupt definition beside the good one: skipped, not fatal
        with open(os.path.join(self.state, "broken.json"), "w") as f:
            f.write("{ not json")
        with open(os.path.join(self.state, ".mgr1.json.tmp"), "w") as f:
            f.write("{ half a save")
        self.stop_manager()
        check(peer_pid(self.ctl("mgr1")) == pid, "the service died with the manager")
        self.start_manager()
        pool = ok(self.m("GetPool", {"name": "mgr1"}), "GetPool")["pool"]
        check(pool["state"] == "running" and peer_pid(self.ctl("mgr1")) == pid,
              f"not re-adopted: {pool['state']}")
        check(not os.path.exists(os.path.join(self.state, ".mgr1.json.tmp")), "tmp left")
        check(os.path.exists(os.path.join(self.state, "broken.json")), "broken file removed")
        names = [p["name"] for p in ok(self.m("ListPools"), "ListPools")["pools"]]
        check(names == ["mgr1"], f"ListPools: {names}")
        os.unlink(os.path.join(self.state, "broken.json"))
        self.step("manager restart: the running service re-adopted (same pid)")

        os.kill(pid, signal.SIGKILL)
        new = wait_for(lambda: self.new_pid("mgr1", pid), 15, "the service restarted")
        check(kernel_limits(new) == (self.cpu_b, 256 << 20), f"restarted: {kernel_limits(new)}")
        wait_for(lambda: fuse_mounts("mgr1") == [m1["mountpoint"]] and
                 os.path.exists(os.path.join(m1["mountpoint"], "new.txt")), 10, "remounted")
        pool = ok(self.m("GetPool", {"name": "mgr1"}), "GetPool")["pool"]
        check(pool["restarts"] == 1 and pool["pid"] == new, f"after restart: {pool}")
        pid = new
        self.step("a killed service is restarted in its cgroups, mounts served again")

        self.policy_checks()
        self.step("policy: a non-root caller refused outside its rule, served inside it")

        ok(self.m("DestroyPool", {"name": "mgr1"}), "DestroyPool")
        self.check_gone("mgr1", pid)
        err(self.m("DestroyPool", {"name": "mgr1"}), "io.danaus.Manager.NoSuchPool", "again")
        self.step("DestroyPool: no process, mount, cgroup, socket or state left")

        self.stop_manager()
        check(not glob.glob(f"/sys/fs/cgroup/**/{self.cgname}", recursive=True),
              "the manager's cgroup base left behind")
        self.socket_activation()
        self.step("socket activation (LISTEN_FDS)")

    def new_pid(self, pool, old):
        try:
            p = peer_pid(self.ctl(pool))
        except OSError:
            return None
        return p if p != old else None

    def check_gone(self, pool, pid):
        check(not os.path.exists(f"/proc/{pid}"), f"pid {pid} still there")
        check(fuse_mounts(pool) == [], f"mounts left: {fuse_mounts(pool)}")
        check(not glob.glob(f"/sys/fs/cgroup/**/{self.cgname}/{pool}", recursive=True),
              "cgroup left")
        check(not os.path.exists(os.path.join(self.run, "pools", pool)), "runtime dir left")
        check(not os.path.exists(os.path.join(self.state, pool + ".json")), "state left")

    def hostile_clients(self):
        half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        half.connect(self.sock)
        half.sendall(b'{"method":"io.danaus.Manager.GetPo')
        garbage = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        garbage.connect(self.sock)
        garbage.settimeout(5)
        garbage.sendall(b"\xff\xfe{]\0")
        check(garbage.recv(100) == b"", "garbage: not disconnected")
        big = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        big.connect(self.sock)
        big.settimeout(10)
        try:
            big.sendall(b'{"method":"io.danaus.Manager.GetPool","parameters":{"name":"' +
                        b"x" * (2 << 20))
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            check(big.recv(100) == b"", "oversized: not disconnected")
        except ConnectionResetError:
            pass
        t0 = time.monotonic()
        ok(self.m("GetPool", {"name": "mgr1"}), "GetPool beside a stalled client")
        check(time.monotonic() - t0 < 2, "served slowly beside a stalled client")
        half.settimeout(5)
        check(half.recv(100) == b"", "stalled client not dropped after the stall timeout")
        for s in (half, garbage, big):
            s.close()
        check(self.mgr.poll() is None, "the manager died")

    def as_tenant(self, method, params):
        code = ("import json,socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);"
                "s.sendall(json.dumps({'method':sys.argv[2],'parameters':json.loads(sys.argv[3])})"
                ".encode()+b'\\0');b=b''\nwhile b'\\0' not in b: b+=s.recv(65536)\n"
                "print(b[:b.index(b'\\0')].decode())")
        out = subprocess.run(["setpriv", "--reuid", str(TENANT_UID), "--regid", str(TENANT_GID),
                              "--clear-groups", sys.executable, "-c", code, self.sock,
                              "io.danaus.Manager." + method, json.dumps(params)],
                             capture_output=True, text=True, timeout=60)
        check(out.returncode == 0, f"tenant client failed: {out.stderr}")
        return json.loads(out.stdout)

    def policy_checks(self):
        tmnt = os.path.join(self.dir, "tmnt", "t1")
        os.makedirs(tmnt)
        d = {"pool": "tenant_a", "resources": {"memory_max": "256M"},
             "backend": {"type": "local", "root": self.backend + "/tenant"},
             "mounts": [{"mountpoint": tmnt, "branches": [{"path": "t1", "mode": "rw"}]}]}
        names = [p["name"] for p in self.as_tenant("ListPools", {})["parameters"]["pools"]]
        check(names == [], f"the tenant sees {names}")
        err(self.as_tenant("GetPool", {"name": "mgr1"}), "io.danaus.Manager.PermissionDenied",
            "GetPool of another pool")
        err(self.as_tenant("DestroyPool", {"name": "mgr1"}),
            "io.danaus.Manager.PermissionDenied", "DestroyPool of another pool")
        over = json.loads(json.dumps(d))
        over["resources"]["memory_max"] = "1G"
        err(self.as_tenant("CreatePool", {"definition": over}),
            "io.danaus.Manager.PermissionDenied", "over the ceiling")
        check(not os.path.exists(os.path.join(self.state, "tenant_a.json")), "refused but stored")
        ok(self.as_tenant("CreatePool", {"definition": d}), "tenant CreatePool")
        pid = peer_pid(self.ctl("tenant_a"))
        check(kernel_limits(pid)[1] == 256 << 20, "tenant pool limit")
        names = [p["name"] for p in self.as_tenant("ListPools", {})["parameters"]["pools"]]
        check(names == ["tenant_a"], f"the tenant sees {names}")
        err(self.as_tenant("UpdatePool", {"name": "tenant_a", "memory_max": "2G"}),
            "io.danaus.Manager.PermissionDenied", "update over the ceiling")
        check(kernel_limits(pid)[1] == 256 << 20, "a denied update changed the limit")
        ok(self.as_tenant("DestroyPool", {"name": "tenant_a"}), "tenant DestroyPool")
        self.check_gone("tenant_a", pid)

    def socket_activation(self):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(self.sock)
        ls.listen(16)
        fd = ls.fileno()
        # the child must see the socket as fd 3 and LISTEN_PID as its own pid
        wrapper = ("import os,sys\nos.dup2(int(sys.argv[1]),3)\n"
                   "os.environ['LISTEN_PID']=str(os.getpid());os.environ['LISTEN_FDS']='1'\n"
                   "os.execv(sys.argv[2],sys.argv[2:])")
        cmd = [sys.executable, "-c", wrapper, str(fd), MANAGER, "--socket",
               os.path.join(self.dir, "unused.sock"), "--state-dir", self.state,
               "--runtime-dir", self.run, "--policy", self.policy, "--backend", "direct",
               "--fsd", FSD, "--cgroup-name", self.cgname]
        self.mgr = subprocess.Popen(delegated(cmd), stdout=self.log, stderr=self.log,
                                    pass_fds=(fd,))
        ls.close()
        wait_for(lambda: self.answers(), 10, "the socket-activated manager answers")
        check(not os.path.exists(os.path.join(self.dir, "unused.sock")),
              "listened on its own socket despite LISTEN_FDS")
        self.stop_manager()


def main():
    if os.geteuid() != 0:
        skip("needs root")
    if not os.path.exists("/dev/fuse"):
        skip("no /dev/fuse")
    if not shutil.which("setpriv"):
        skip("no setpriv")
    if not os.access(MANAGER, os.X_OK) or not os.access(FSD, os.X_OK):
        print(f"FAIL: no {MANAGER} or {FSD}")
        return 1
    mounts = cgroup_mounts()
    if not ("" in mounts and V2) and not ("cpuset" in mounts and "memory" in mounts):
        skip("no cgroup cpuset and memory controllers")
    if V2 and not os.path.isdir("/run/systemd/system"):
        skip("cgroup v2 without systemd: no delegated cgroup for the manager")
    t = Test()
    try:
        t.run_all()
    except Exception as e:  # a failure of any kind: report it with the logs
        print(f"FAIL: step {t.n + 1}: {type(e).__name__}: {e}")
        t.dump_log()
        return 1
    finally:
        os.chdir("/")
        t.cleanup()
    print(f"{t.n} steps passed")
    return 0


sys.exit(main())
