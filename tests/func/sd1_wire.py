#!/usr/bin/env python3
# sd1_wire.py - drives sheep with raw Sheepdog 1.0-format requests for each internal op dog uses and checks sizes and fields; prints "ok - WHAT" / "not ok - WHAT" lines.
#
# Usage: sd1_wire.py PORT0 PORT1 PORT2   (three sheep, zones 0..2, unformatted,
# the third to be killed at the end). Layouts from REFERENCE.md and, where it is
# silent, Sheepdog 1.0's public headers (80-byte struct sd_node, 48-byte epoch
# log header + 6144 nodes, 24-byte recovery_state, 16-byte recovery_throttling).
import socket, struct, sys, time

P = [int(a) for a in sys.argv[1:4]]
NODE = 80
MAX_NODES = 6144
ELOG = 48 + MAX_NODES * NODE
WRITE = 0x01

def say(good, what):
    print(("ok - " if good else "not ok - ") + what)
    sys.stdout.flush()

def req(port, proto, op, rest=b"", data=b"", dlen=None, flags=0, epoch=0):
    if data:
        flags |= WRITE
    if dlen is None:
        dlen = len(data)
    h = struct.pack("<BBHIII", proto, op, flags, epoch, 7, dlen) + rest.ljust(32, b"\0")[:32]
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(h + data)
    r = b""
    while len(r) < 48:
        c = s.recv(48 - len(r))
        if not c:
            raise IOError("closed")
        r += c
    n = struct.unpack_from("<I", r, 12)[0]
    body = b""
    while len(body) < n:
        c = s.recv(min(1 << 20, n - len(body)))
        if not c:
            raise IOError("closed in payload")
        body += c
    s.close()
    return r, body

def result(r):
    return struct.unpack_from("<I", r, 16)[0]

def node_ok(b, off, port, zone, gateway=False):
    rb = b[off:off + 24]
    addr = b[off + 24:off + 40]
    p, = struct.unpack_from("<H", b, off + 40)
    io = b[off + 42:off + 58]
    vn, = struct.unpack_from("<H", b, off + 64)
    z, = struct.unpack_from("<I", b, off + 68)
    space, = struct.unpack_from("<Q", b, off + 72)
    return (rb == b"\0" * 24 and addr == b"\0" * 12 + bytes([127, 0, 0, 1]) and p == port and
            io == b"\0" * 16 and z == zone and vn == 128 and space > 0)

INTERNAL = 0x0a

# -- before the format --
r, b = req(P[0], 2, 0x18)
say(result(r) == 0, "GET_CLUSTER_DEFAULT (0x18) before format: SUCCESS (Sheepdog answers it)")
r, b = req(P[0], INTERNAL, 0x87, dlen=0)
say(result(r) == 0x16 and len(b) == 0, "STAT_CLUSTER (0x87) before format: WAIT_FOR_FORMAT, no records")

r, b = req(P[0], INTERNAL, 0x82, dlen=MAX_NODES * NODE)
nr, idx = struct.unpack_from("<II", r, 20)
say(result(r) == 0 and len(b) == 3 * NODE and nr == 3,
    "GET_NODE_LIST (0x82): 3 nodes of 80 bytes (got %d bytes, nr_nodes %d)" % (len(b), nr))
say(all(node_ok(b, i * NODE, P[i], i) for i in range(3)),
    "GET_NODE_LIST: rb zero, IPv4 in addr[12..15], port @40, vnodes @64, zone @68, space @72, sorted")
say(idx == 0, "GET_NODE_LIST: local_idx @24 names the answering node (%d)" % idx)
r1, _ = req(P[1], INTERNAL, 0x82, dlen=MAX_NODES * NODE)
say(struct.unpack_from("<I", r1, 24)[0] == 1, "GET_NODE_LIST on the second sheep: local_idx 1")
r, b = req(P[0], 0x07, 0x82, dlen=MAX_NODES * NODE)
say(result(r) == 0x14, "GET_NODE_LIST with proto_ver 7: VER_MISMATCH")

# -- format as Sheepdog's dog sends it --
now = int(time.time())
rest = struct.pack("<QQBBHIIB", 0, now << 32, 2, 0, 0, 0, 0, 22)
r, b = req(P[0], INTERNAL, 0x84, rest, b"plain".ljust(16, b"\0"))
say(result(r) == 0, "MAKE_FS (0x84): ctime @24 (s<<32), copies @32, shift @44, store name payload")
r, b = req(P[0], INTERNAL, 0x84, rest, b"nosuch".ljust(16, b"\0"))
say(result(r) == 0x8a, "MAKE_FS with an unknown store: NO_STORE")
r, b = req(P[0], INTERNAL, 0x84, rest, b"plain".ljust(16, b"\0"))
say(result(r) == 0, "MAKE_FS again (plain)")

r, b = req(P[1], 2, 0x18)
say(result(r) == 0 and struct.unpack_from("<BBB", r, 20) == (2, 0, 22),
    "GET_CLUSTER_DEFAULT: nr_copies @20 = 2, copy_policy @21 = 0, shift @22 = 22")

r, b = req(P[1], INTERNAL, 0x87, dlen=4 * ELOG)
say(result(r) == 0 and len(b) == ELOG, "STAT_CLUSTER: one epoch log of %d bytes (got %d)" % (ELOG, len(b)))
if len(b) >= ELOG:
    ctime, t, ep, nn, dis, cp, pol, shift, flags = struct.unpack_from("<QQIIBBBBxxH", b, 0)
    drv = b[32:48].rstrip(b"\0")
    say(ctime >> 32 == now and ep == 1 and nn == 3 and cp == 2 and pol == 0 and dis == 0 and
        drv == b"plain" and abs(t - now) < 120,
        "STAT_CLUSTER epoch log: ctime @0 (s<<32), time @8, epoch 1 @16, 3 nodes @20, copies @25, "
        "drv_name @32 'plain' (%x %d %d %d %d %s)" % (ctime, t, ep, nn, cp, drv))
    say(all(node_ok(b, 48 + i * NODE, P[i], i) for i in range(3)), "STAT_CLUSTER: nodes at @48, 80 bytes each")
    r2, b2 = req(P[1], INTERNAL, 0xa2, struct.pack("<QQBBBBI", 0, 0, 0, 0, 0, 0, 1), dlen=3 * NODE + 8)
    say(result(r2) == 0 and len(b2) == 3 * NODE + 8 and b2[:3 * NODE] == b[48:48 + 3 * NODE] and
        struct.unpack_from("<Q", b2, 3 * NODE)[0] == t,
        "GET_EPOCH (0xa2) tgt_epoch @36 = 1: the epoch's nodes (80 bytes each), then its time")
r, b = req(P[1], INTERNAL, 0xa2, struct.pack("<QQBBBBI", 0, 0, 0, 0, 0, 0, 9), dlen=3 * NODE + 8)
say(result(r) == 0x0e, "GET_EPOCH of an epoch never logged: NO_TAG")
r, b = req(P[1], INTERNAL, 0x87, dlen=100)
say(result(r) == 0x05, "STAT_CLUSTER with room for less than one record: INVALID_PARMS")

# -- VDIs: in-use and deleted bitmaps --
name = b"wire".ljust(256, b"\0")
r, b = req(P[0], 2, 0x11, struct.pack("<QIBBBB", 8 << 20, 0, 2, 0, 0, 22), name)
vid = struct.unpack_from("<I", r, 24)[0]
say(result(r) == 0 and vid == 0xb14178, "NEW_VDI 'wire': vdi_id @24 (%x)" % vid)
r, b = req(P[2], 2, 0x15, dlen=1 << 21)
say(result(r) == 0 and len(b) == 1 << 21 and b[vid // 8] & (1 << vid % 8),
    "READ_VDIS (0x15): 2^24-bit bitmap with the VDI's bit")
r, b = req(P[2], INTERNAL, 0xc9, dlen=1 << 21)
say(result(r) == 0 and len(b) == 1 << 21 and not b[vid // 8] & (1 << vid % 8),
    "READ_DEL_VDIS (0xc9): 2^24-bit bitmap, a live VDI's bit clear")

# -- node and recovery ops --
r, b = req(P[2], INTERNAL, 0x86)
size, free = struct.unpack_from("<QQ", r, 32)
say(result(r) == 0 and size > 0 and free <= size, "STAT_SHEEP (0x86): store_size @32, store_free @40")
r, b = req(P[0], INTERNAL, 0x97, dlen=24)
if len(b) == 24:
    inr, st, fin, tot = struct.unpack_from("<BxxxIQQ", b, 0)
say(result(r) == 0 and len(b) == 24 and inr in (0, 1) and st in (0, 1, 2) and fin <= tot,
    "STAT_RECOVERY (0x97): Sheepdog's 24-byte recovery_state")
r, b = req(P[0], INTERNAL, 0xcb, data=struct.pack("<IxxxxQ", 8, 100))
say(result(r) == 0, "SET_RECOVERY (0xcb): 16-byte recovery_throttling accepted")
r, b = req(P[0], INTERNAL, 0xca, dlen=16)
say(result(r) == 0 and len(b) == 16 and struct.unpack("<IxxxxQ", b) == (8, 100),
    "GET_RECOVERY (0xca): max_exec_count @0 = 8, queue_work_interval @8 = 100")
r, b = req(P[0], INTERNAL, 0xcb, data=struct.pack("<II", 8, 100))
say(result(r) == 0x05, "SET_RECOVERY with 8 bytes: INVALID_PARMS")
r, b = req(P[0], INTERNAL, 0xa9)
r2, b2 = req(P[1], INTERNAL, 0x87, dlen=ELOG)
say(result(r) == 0 and len(b2) == ELOG and b2[24] == 1, "DISABLE_RECOVER (0xa9): disable_recovery @24 = 1")
r, b = req(P[0], INTERNAL, 0xa8)
r2, b2 = req(P[1], INTERNAL, 0x87, dlen=ELOG)
say(result(r) == 0 and len(b2) == ELOG and b2[24] == 0, "ENABLE_RECOVER (0xa8): disable_recovery @24 = 0")

r, b = req(P[2], INTERNAL, 0x9a)
say(result(r) == 0, "KILL_NODE (0x9a) to the third sheep")
ok = False
for _ in range(100):
    time.sleep(0.1)
    r, b = req(P[0], INTERNAL, 0x82, dlen=MAX_NODES * NODE)
    if len(b) == 2 * NODE:
        ok = True
        break
say(ok, "after KILL_NODE: GET_NODE_LIST lists 2 nodes")
r, b = req(P[0], INTERNAL, 0x87, dlen=ELOG * 2)
say(result(r) == 0 and len(b) == 2 * ELOG and struct.unpack_from("<II", b, 16) == (2, 2) and
    struct.unpack_from("<II", b, ELOG + 16) == (1, 3),
    "STAT_CLUSTER: newest first, epoch 2 (2 nodes) then epoch 1 (3 nodes)")
r, b = req(P[1], INTERNAL, 0x85)
say(result(r) == 0, "SHUTDOWN (0x85)")
