#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""OCI image-layer helpers for the differential tests.

  layers.py merge DEST LAYER...       apply OCI layers (bottom first) onto DEST:
                                      the expected merged view, computed
                                      independently of any union filesystem
  layers.py to-overlay SRC DEST [LOWER]
                                      copy an OCI layer into overlayfs format:
                                      .wh.NAME -> char device 0:0 NAME,
                                      DIR/.wh..wh..opq -> trusted.overlay.opaque=y;
                                      LOWER: merged view of the layers below
  layers.py tree DIR                  print one line per entry (type, mode,
                                      uid:gid, size, sha256 or link target,
                                      user.* xattrs), sorted, for diffing

OCI rules (image-spec layer.md): in a layer, `.wh..wh..opq` in a directory
hides all lower content of that directory; `.wh.NAME` hides NAME below; other
entries replace the lower entry of the same name (a directory over a
directory merges).
"""
import hashlib
import os
import shutil
import stat
import sys

WH = ".wh."
OPQ = ".wh..wh..opq"


def copy_xattrs(src, dst, replace=True):
    if replace:
        for n in os.listxattr(dst, follow_symlinks=False):
            if n.startswith("user."):
                os.removexattr(dst, n, follow_symlinks=False)
    for n in os.listxattr(src, follow_symlinks=False):
        if n.startswith("user."):
            os.setxattr(dst, n, os.getxattr(src, n, follow_symlinks=False), follow_symlinks=False)


def remove(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def copy_meta(src, dst, st):
    os.lchown(dst, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    copy_xattrs(src, dst)


def apply_layer(layer, dest):
    def walk(rel):
        sdir = os.path.join(layer, rel)
        ddir = os.path.join(dest, rel)
        names = sorted(os.listdir(sdir))
        if OPQ in names:
            for n in os.listdir(ddir):
                remove(os.path.join(ddir, n))
        for n in names:
            if n.startswith(WH) and n != OPQ:
                remove(os.path.join(ddir, n[len(WH):]))
        for n in names:
            if n.startswith(WH):
                continue
            s = os.path.join(sdir, n)
            d = os.path.join(ddir, n)
            st = os.lstat(s)
            if stat.S_ISDIR(st.st_mode):
                try:
                    dst = os.lstat(d)
                    if not stat.S_ISDIR(dst.st_mode):
                        remove(d)
                        os.mkdir(d)
                except FileNotFoundError:
                    os.mkdir(d)
                walk(os.path.join(rel, n))
                copy_meta(s, d, st)
            else:
                remove(d)
                if stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(s), d)
                elif stat.S_ISREG(st.st_mode):
                    shutil.copyfile(s, d)
                else:
                    os.mknod(d, st.st_mode, st.st_rdev)
                copy_meta(s, d, st)
    walk("")


def merge(dest, layers):
    os.makedirs(dest, exist_ok=True)
    for layer in layers:
        apply_layer(layer, dest)


def to_overlay(src, dest, lower=None):
    """A whiteout that hides nothing (no such name in LOWER, the merged view
    of the layers below, or under an opaque directory of this layer) is
    dropped: overlayfs would show it in a non-merged directory, OCI ignores it."""
    shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)
    for root, dirs, files in os.walk(dest):
        rel = os.path.relpath(root, dest)
        for n in list(dirs) + files:
            p = os.path.join(root, n)
            if n == OPQ:
                os.unlink(p)
                os.setxattr(root, "trusted.overlay.opaque", b"y")
            elif n.startswith(WH):
                os.unlink(p)
                if lower is not None:
                    parts = [] if rel == "." else rel.split(os.sep)
                    opaque = any(os.path.exists(os.path.join(src, *parts[:i], OPQ)) for i in range(1, len(parts) + 1))
                    if opaque or not os.path.lexists(os.path.join(lower, rel, n[len(WH):])):
                        continue
                os.mknod(os.path.join(root, n[len(WH):]), stat.S_IFCHR | 0o000, os.makedev(0, 0))


def tree(top):
    out = []
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(root, n)
            rel = os.path.relpath(p, top)
            st = os.lstat(p)
            m = st.st_mode
            if stat.S_ISREG(m):
                with open(p, "rb") as f:
                    what = "size=%d sha=%s nlink=%d" % (st.st_size, hashlib.sha256(f.read()).hexdigest()[:16], st.st_nlink)
            elif stat.S_ISLNK(m):
                what = "-> " + os.readlink(p)
            elif stat.S_ISDIR(m):
                what = ""
            else:
                what = "rdev=%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
            try:
                xs = sorted(x for x in os.listxattr(p, follow_symlinks=False) if x.startswith("user."))
                xa = " ".join("%s=%s" % (x, os.getxattr(p, x, follow_symlinks=False).hex()) for x in xs)
            except OSError as e:
                xa = "xattr-error=%s" % e.errno
            out.append("%s %s 0%o %d:%d %s %s" % (rel, stat.filemode(m)[0], stat.S_IMODE(m), st.st_uid, st.st_gid, what, xa))
    print("\n".join(out))


def main(argv):
    if len(argv) >= 3 and argv[1] == "merge":
        merge(argv[2], argv[3:])
    elif len(argv) in (4, 5) and argv[1] == "to-overlay":
        to_overlay(argv[2], argv[3], argv[4] if len(argv) == 5 else None)
    elif len(argv) == 3 and argv[1] == "tree":
        tree(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
