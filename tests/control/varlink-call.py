#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A minimal varlink client for tests, written from the spec independently of
libdanaus/varlink (so a bug shared by both sides cannot hide):

  varlink-call.py SOCKET METHOD [PARAMETERS-JSON]   prints the reply's JSON;
      exit 0 for a reply, 1 for an error reply, 2 when the connection fails
  varlink-call.py --raw SOCKET BYTES   sends BYTES (Python escapes allowed),
      prints what comes back until EOF or 2 s (for malformed input tests)
"""
import json
import socket
import sys


def call(path, method, params):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    s.sendall(json.dumps({"method": method, "parameters": params}).encode() + b"\0")
    buf = b""
    while b"\0" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("the service hung up before replying")
        buf += chunk
    s.close()
    return json.loads(buf[: buf.index(b"\0")])


def raw(path, data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(path)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    print(out.decode(errors="replace"))


def main():
    if sys.argv[1] == "--raw":
        raw(sys.argv[2], sys.argv[3].encode().decode("unicode_escape").encode("latin-1"))
        return 0
    params = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    try:
        reply = call(sys.argv[1], sys.argv[2], params)
    except (OSError, ValueError) as e:
        print(f"varlink-call: {e}", file=sys.stderr)
        return 2
    print(json.dumps(reply))
    return 1 if "error" in reply else 0


sys.exit(main())
