#!/usr/bin/env python3
# sd_lockclient.py - a Sheepdog-protocol client for 067 that writes a VDI's data object without taking its lock.
#
# Usage: sd_lockclient.py PORT VDI write
# Looks VDI up (GET_VDI_INFO), then sends WRITE_OBJ of 4 KiB into data
# object 0 and CREATE_AND_WRITE_OBJ into object 15 (unallocated), on a
# connection that never sent LOCK_VDI. Prints "ok: ..." and exits 0 when both
# are refused with VDI_LOCKED (0x07); "fail: ..." and 1 otherwise.
import socket, struct, sys

from wirelib import sd1_call

port, vdi = int(sys.argv[1]), sys.argv[2]
OP_CREATE_AND_WRITE, OP_WRITE, OP_GET_VDI_INFO = 0x01, 0x03, 0x14
F_WRITE, RES_VDI_LOCKED = 0x01, 0x07


s = socket.create_connection(("127.0.0.1", port), timeout=30)
p = vdi.encode().ljust(256, b"\0") + b"\0" * 256
r, h, _ = sd1_call(s, OP_GET_VDI_INFO, F_WRITE, len(p), b"", p)
if r != 0:
    print("fail: GET_VDI_INFO %s: result %#x" % (vdi, r))
    sys.exit(1)
vid = struct.unpack("<I", h[24:28])[0]
res = []
for op, idx in ((OP_WRITE, 0), (OP_CREATE_AND_WRITE, 15)):
    oid = (vid << 32) | idx
    r, _, _ = sd1_call(s, op, F_WRITE, 4096, struct.pack("<QQBBBBII", oid, 0, 0, 0, 0, 0, 0, 0), b"\xee" * 4096)
    res.append(r)
okay = all(r == RES_VDI_LOCKED for r in res)
print(("ok: " if okay else "fail: ") + "unlocked client writes to VDI %x: results %s (want 0x7)" % (vid, [hex(r) for r in res]))
sys.exit(0 if okay else 1)
