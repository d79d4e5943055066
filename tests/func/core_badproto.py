#!/usr/bin/env python3
# core_badproto.py - throws malformed Sheepdog-protocol frames at a sheep and checks each answer (error reply or clean close).
import os, random, socket, struct, sys

HOST = "127.0.0.1"
port = int(sys.argv[1])
count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
vid = int(sys.argv[4], 16) if len(sys.argv) > 4 else 0
rnd = random.Random(seed)
fails = []

RES_SUCCESS, RES_INVALID, RES_NO_VDI, RES_VER_MISMATCH, RES_NO_SUPPORT = 0, 5, 8, 0x14, 0x8b

def hdr(proto, op, flags, epoch, rid, dlen, rest=b""):
    rest = rest.ljust(32, b"\0")[:32]
    return struct.pack("<BBHIII", proto, op, flags, epoch, rid, dlen) + rest

def obj_rest(oid, offset, cow=0, copies=0, policy=0, idx=0):
    return struct.pack("<QQBBBBII", oid, cow, copies, policy, idx, 0, 0, offset) + b"\0" * 4

def conn():
    s = socket.create_connection((HOST, port), timeout=10)
    s.settimeout(10)
    return s

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b

def reply(s):
    h = recv_exact(s, 48)
    if h is None:
        return None
    proto, op, flags, epoch, rid, dlen, result = struct.unpack("<BBHIIII", h[:20])
    if dlen and recv_exact(s, dlen) is None:
        return None
    return (op, rid, result, dlen)

def expect(name, frame, want_results, payload=b"", may_close=False):
    try:
        s = conn()
        s.sendall(frame + payload)
        r = reply(s)
        s.close()
    except (ConnectionError, socket.timeout, OSError) as e:
        if may_close:
            return
        fails.append("%s: %s" % (name, e))
        return
    if r is None:
        if not may_close:
            fails.append("%s: connection closed, wanted %s" % (name, want_results))
        return
    if want_results is not None and r[2] not in want_results:
        fails.append("%s: result 0x%x, wanted %s" % (name, r[2], [hex(x) for x in want_results]))

# 1. Wrong protocol versions, for client and internal ops.
for v in (3, 9, 0x0b, 0xff):
    expect("client op proto %d" % v, hdr(v, 0x02, 0, 0, 1, 0, obj_rest(1 << 32, 0)), [RES_VER_MISMATCH])
for v in (0, 1, 2, 0x0b):
    expect("internal op proto %d" % v, hdr(v, 0x82, 0, 0, 1, 4096), [RES_VER_MISMATCH])
    expect("peer op proto %d" % v, hdr(v, 0xe1, 1, 0, 1, 8), [RES_VER_MISMATCH], b"\0" * 8)

# 2. Unknown opcodes get an error reply, with and without payload (0xc0 is
# ALTER_VDI_COPY since 42a9ac8, as in Sheepdog 1.0: 0xc3 is unused).
for op in list(range(0x06, 0x11)) + list(range(0x19, 0x80)) + [0x80, 0x81, 0x83, 0xc3, 0xdf, 0xe8, 0xff]:
    proto = 0x0a if op >= 0x80 else 2
    expect("unknown op 0x%x" % op, hdr(proto, op, 0, 0, op, 0), [RES_NO_SUPPORT])
    expect("unknown op 0x%x + payload" % op, hdr(proto, op, 1, 0, op, 100), [RES_NO_SUPPORT], os.urandom(100))

# 2b. The two-phase-write peer ops with bad payloads: an error, nothing applied.
RES_NO_OBJ, RES_OLD_EPOCH, RES_NEW_EPOCH = 0x02, 0x81, 0x82
expect("commit without payload", hdr(0x0a, 0xe6, 0, 0, 1, 0), [RES_INVALID])
expect("commit, short payload", hdr(0x0a, 0xe6, 1, 0, 1, 4), [RES_INVALID], b"\1" * 4)
for _ in range(20):
    expect("commit, random payload", hdr(0x0a, 0xe6, 1, 0, 1, 100), [RES_INVALID, RES_NO_OBJ], os.urandom(100))
expect("generation probe, no room", hdr(0x0a, 0xe7, 0, 0, 1, 8), [RES_INVALID, RES_OLD_EPOCH, RES_NEW_EPOCH])
expect("prepare, no write id", hdr(0x0a, 0xe1, 0x4001, 0, 1, 32), [RES_INVALID, RES_OLD_EPOCH, RES_NEW_EPOCH], b"\0" * 32)

# 3. Oversize data_length: the connection is closed (an error reply first is fine).
for dl in (64 * 1024 * 1024 + 1, 0x7fffffff, 0xffffffff):
    expect("oversize write %x" % dl, hdr(2, 0x03, 1, 0, 9, dl, obj_rest(1 << 32, 0)), [RES_INVALID], may_close=True)
    expect("oversize read %x" % dl, hdr(2, 0x02, 0, 0, 9, dl, obj_rest(1 << 32, 0)), [RES_INVALID], may_close=True)

# 4. Out-of-range offsets and unknown VDIs: INVALID_PARMS / NO_VDI, nothing written.
if vid:
    data_oid = vid << 32
    inode_oid = (1 << 63) | (vid << 32)
    for off, ln in ((4 << 20, 1), ((4 << 20) - 1, 2), (0xffffffff, 1), (0xfffff000, 8192)):
        expect("write past object end %x+%x" % (off, ln), hdr(2, 0x03, 1, 0, 2, ln, obj_rest(data_oid, off)), [RES_INVALID], b"x" * ln)
        expect("create past object end %x+%x" % (off, ln), hdr(2, 0x01, 1, 0, 2, ln, obj_rest(data_oid + 7, off)), [RES_INVALID], b"x" * ln)
        expect("read past object end %x+%x" % (off, ln), hdr(2, 0x02, 0, 0, 2, ln, obj_rest(data_oid, off)), [RES_INVALID])
    expect("write past inode end", hdr(2, 0x03, 1, 0, 2, 16, obj_rest(inode_oid, 12587576 - 8)), [RES_INVALID], b"y" * 16)
    expect("object index beyond 2^20", hdr(2, 0x01, 1, 0, 2, 4, obj_rest(data_oid | (1 << 20), 0)), [RES_INVALID], b"zzzz")
    expect("data-less write", hdr(2, 0x03, 0, 0, 2, 4, obj_rest(data_oid, 0)), [RES_INVALID])
expect("object of unknown VDI", hdr(2, 0x01, 1, 0, 3, 4, obj_rest(0xabcdef << 32, 0)), [RES_NO_VDI], b"abcd")
expect("attribute object", hdr(2, 0x01, 1, 0, 3, 4, obj_rest((1 << 61) | (vid << 32), 0)), [RES_NO_SUPPORT, RES_NO_VDI], b"abcd")

# 5. NEW_VDI / GET_VDI_INFO with bad names and policies.
def vdi_rest(size, copies=0, policy=0, shift=0, snapid=0, base=0):
    return struct.pack("<QIBBBBII", size, base, copies, policy, 0, shift, snapid, 0)
name = b"bad-input-vdi".ljust(256, b"\0")
expect("NEW_VDI unterminated name", hdr(2, 0x11, 1, 0, 4, 256, vdi_rest(1 << 30)), [RES_INVALID], b"A" * 256)
expect("NEW_VDI empty name", hdr(2, 0x11, 1, 0, 4, 256, vdi_rest(1 << 30)), [RES_INVALID], b"\0" * 256)
expect("NEW_VDI no payload", hdr(2, 0x11, 0, 0, 4, 0, vdi_rest(1 << 30)), [RES_INVALID])
expect("NEW_VDI size 0", hdr(2, 0x11, 1, 0, 4, 256, vdi_rest(0)), [RES_INVALID], name)
expect("NEW_VDI size too big", hdr(2, 0x11, 1, 0, 4, 256, vdi_rest(1 << 60)), [RES_INVALID], name)
for copies, policy in ((32, 0), (255, 0), (32, 0x80), (6, 0x30), (5, 0x22), (6, 0x20), (17, 0x8f)):
    expect("NEW_VDI policy %d/%#x" % (copies, policy), hdr(2, 0x11, 1, 0, 4, 256, vdi_rest(1 << 30, copies, policy)), [RES_INVALID], name)
for shift in (1, 19, 32, 255):
    expect("NEW_VDI shift %d" % shift, hdr(2, 0x11, 1, 0, 4, 256, vdi_rest(1 << 30, 3, 0, shift)), [RES_INVALID], name)
expect("GET_VDI_INFO unterminated", hdr(2, 0x14, 1, 0, 5, 100, vdi_rest(0)), [RES_INVALID], b"B" * 100)
expect("GET_VDI_INFO unknown", hdr(2, 0x14, 1, 0, 5, 256, vdi_rest(0)), [RES_NO_VDI], b"nope".ljust(256, b"\0"))
expect("DEL_VDI unknown", hdr(2, 0x17, 1, 0, 5, 256, vdi_rest(0)), [RES_NO_VDI], b"nope".ljust(256, b"\0"))
# MAKE_FS in Sheepdog 1.0's layout: old_ctime @16, ctime @24, copies @32,
# copy_policy @33, flags @34, tag @36, nodes_nr @40, block_size_shift @44.
def fmt_rest(copies, policy, shift):
    return struct.pack("<QQBBHIIBxH", 0, 1 << 32, copies, policy, 0, 0, 0, shift, 0)
expect("MAKE_FS bad policy", hdr(0x0a, 0x84, 0, 0, 6, 0, fmt_rest(7, 0x22, 22)), [RES_INVALID])
expect("MAKE_FS bad shift", hdr(0x0a, 0x84, 0, 0, 6, 0, fmt_rest(3, 0, 40)), [RES_INVALID])
expect("FLUSH_VDI obsolete", hdr(2, 0x16, 0, 0, 6, 0), [RES_INVALID])
expect("STAT_CLUSTER tiny buffer", hdr(0x0a, 0x87, 0, 0, 6, 3), [RES_INVALID])
expect("peer write short header", hdr(0x0a, 0xe1, 1, 0, 7, 8), None, b"\0" * 8)
expect("peer op any-epoch garbage mode", hdr(0x0a, 0xe1, 0x8001, 0, 7, 40, obj_rest(vid << 32, 0)), [RES_INVALID],
       struct.pack("<QQIBBBB", 0, 1, 1 << 20, 0, 1, 9, 0) + b"\0" * 8 + b"q" * 8)

# 6. Random garbage, truncated headers, pipelined floods on one connection.
n = 0
while n < count:
    kind = rnd.randrange(4)
    try:
        s = conn()
        if kind == 0:  # pure garbage then close
            s.sendall(os.urandom(rnd.randrange(1, 300)))
        elif kind == 1:  # truncated header
            s.sendall(hdr(2, 0x02, 0, 0, 1, 10)[: rnd.randrange(1, 48)])
        elif kind == 2:  # header promising more payload than sent
            s.sendall(hdr(2, 0x03, 1, 0, 1, 5000, obj_rest(vid << 32, 0)) + os.urandom(rnd.randrange(0, 4999)))
        else:  # a pipeline of random headers (random opcodes/versions/lengths), read what comes back
            frames = b""
            for i in range(50):
                op = rnd.choice([0x01, 0x02, 0x03, 0x04, 0x05, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
                                 0x82, 0x86, 0x87, 0xa2, 0xe0, 0xe2, 0xe3, 0xe4, rnd.randrange(256)])
                if op in (0x84, 0x85, 0x9a, 0xa8, 0xa9):
                    op = 0x86  # never format, shut down, kill or toggle recovery by chance
                proto = rnd.choice([0, 1, 2, 0x0a, rnd.randrange(256)])
                flags = rnd.choice([0, 0, 2, 0x40, 0x8000])  # no WRITE: nothing to write with
                dl = rnd.choice([0, 1, 48, 4096, rnd.randrange(1 << 16)])
                rest = os.urandom(32)
                frames += hdr(proto, op, flags, rnd.randrange(100), i, dl, rest)
            s.sendall(frames)
            s.settimeout(5)
            got = 0
            while got < 50:
                r = reply(s)
                if r is None:
                    break
                got += 1
        s.close()
    except (ConnectionError, socket.timeout, OSError):
        pass
    n += 50 if kind == 3 else 1

# 7. The sheep still answers a well-formed request.
try:
    s = conn()
    s.sendall(hdr(0x0a, 0x82, 0, 0, 77, 1 << 20))
    r = reply(s)
    if not r or r[1] != 77 or r[2] != RES_SUCCESS:
        fails.append("GET_NODE_LIST after the flood: %s" % (r,))
except OSError as e:
    fails.append("sheep unreachable after the flood: %s" % e)

for f in fails:
    print("# FAIL " + f)
print("# %d checks failed" % len(fails))
sys.exit(1 if fails else 0)
