#!/usr/bin/env python3
"""qmp.py - send QMP commands to a QEMU over its unix socket: qmp.py SOCKET JSON... prints each command's reply (one JSON line); exit 1 on an error reply."""
import json
import socket
import sys
import time


def connect(path, seconds=30):
    end = time.time() + seconds
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.time() > end:
                raise
            time.sleep(0.1)


def main():
    s = connect(sys.argv[1])
    f = s.makefile("rw")

    def reply():
        # Skip asynchronous events; return the next return/error object.
        while True:
            line = f.readline()
            if not line:
                raise SystemExit("qmp: connection closed")
            obj = json.loads(line)
            if "return" in obj or "error" in obj or "QMP" in obj:
                return obj

    reply()  # greeting
    f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
    f.flush()
    reply()
    status = 0
    for cmd in sys.argv[2:]:
        f.write(cmd + "\n")
        f.flush()
        obj = reply()
        print(json.dumps(obj))
        if "error" in obj:
            status = 1
    sys.exit(status)


if __name__ == "__main__":
    main()
