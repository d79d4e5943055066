#!/usr/bin/env python3
# mkseeds.py - writes the hand-made seed inputs of tests/fuzz/corpus/ (valid requests, sessions and state files the fuzzers mutate from).
import os, struct

top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(top, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---- fuzz_peer: struct sd_req (48 bytes, little-endian) + payload ----
def req(op, flags=0, dlen=0, oid=0x0000000100000001, idx=0, off=0, epoch=5):
    return struct.pack("<BBHIII", 0x0A, op, flags, epoch, 1, dlen) + struct.pack(
        "<QQBBBBIII", oid, 0, 3, 0, idx, 0, 0, off, 0)


def write_hdr(mode, new_version, frag=65536, expect=0xFFFFFFFFFFFFFFFF, wid=0):
    return struct.pack("<QQIBBBBQQ", expect, new_version, frag, 0, 3, mode, 0, wid, 0)


data = bytes(range(256)) * 16
put("fuzz_peer", "create", req(0xE1, 1, 0) + write_hdr(1, 1) + data)
put("fuzz_peer", "update", req(0xE1, 1, 0, off=4096) + write_hdr(0, 2, expect=1) + data)
put("fuzz_peer", "read", req(0xE0, 0, 4096))
put("fuzz_peer", "stat", req(0xE3, 0, 64))
put("fuzz_peer", "gen", req(0xE7, 0, 64))
put("fuzz_peer", "list", req(0xE4, 0, 4096))
put("fuzz_peer", "remove", req(0xE2))
put("fuzz_peer", "prepare", req(0xE1, 1, 0) + write_hdr(0, 3, expect=1, wid=77) + data)
put("fuzz_peer", "commit", req(0xE6, 1, 0) + struct.pack("<QQ", 3, 77))

# ---- fuzz_nbd: client bytes of whole sessions ----
OPTS = 0x49484156454F5054
REQ = 0x25609513


def opt(o, d=b""):
    return struct.pack(">QII", OPTS, o, len(d)) + d


def cmd(t, off, ln, handle, flags=0, payload=b""):
    return struct.pack(">IHHQQI", REQ, flags, t, handle, off, ln) + payload


go = opt(7, struct.pack(">I", 3) + b"vol" + struct.pack(">H", 0))
meta = opt(10, struct.pack(">I", 3) + b"vol" + struct.pack(">I", 1) +
           struct.pack(">I", 15) + b"base:allocation")
io = (cmd(1, 0, 4096, 1, payload=data) + cmd(0, 0, 4096, 2) + cmd(7, 0, 65536, 3) +
      cmd(4, 8192, 4096, 4) + cmd(6, 4096, 8192, 5) + cmd(3, 0, 0, 6) + cmd(2, 0, 0, 7))
put("fuzz_nbd", "go-io", struct.pack(">I", 3) + go + io)
put("fuzz_nbd", "structured-io", struct.pack(">I", 3) + opt(8) + meta + go + io)
put("fuzz_nbd", "export-name", struct.pack(">I", 3) + opt(1, b"vol") + io)
put("fuzz_nbd", "list-info-abort", struct.pack(">I", 3) + opt(3) + opt(6, go[16:]) + opt(9, meta[16:]) + opt(2))
put("fuzz_nbd", "readonly", struct.pack(">I", 3) + opt(1, b"vol:ro") + io)


# ---- fuzz_cluster: selector byte + message or file ----
def node(k):
    return (("127.0.0.%d" % (k + 1)).encode().ljust(64, b"\0") +
            struct.pack("<HHIQHBB4sQ", 7000, 0, k, 1 << 40, 64, 0, 0, b"\0" * 4, 1))


def cmsg_vdi(t, vid=0, name=b"v", size=1 << 30, copies=2, policy=0x21, base=0, snapshot=0):
    body = struct.pack("<IIIBBBBQQQ", vid, base, 0, copies, policy, 22, snapshot, size, 0, 7)
    body += b"\0" * 64 + struct.pack("<HHIQ", 0, 0, 0, 0)
    body += name.ljust(256, b"\0") + b"\0" * 256
    h = struct.pack("<IIQ", t, 24 + len(body), 9)
    return h + body


put("fuzz_cluster", "new-vdi", b"\0" + cmsg_vdi(2))
put("fuzz_cluster", "lock-vdi", b"\0" + cmsg_vdi(5, vid=1))
put("fuzz_cluster", "snap-vdi", b"\0" + cmsg_vdi(7, vid=1))
put("fuzz_cluster", "recovery", b"\0" + struct.pack("<IIQQBBBBI", 9, 32, 9, 1, 0, 0, 0, 0, 0))
put("fuzz_cluster", "config", b"\2" + struct.pack("<IIQBBBBIH", 0x53444346, 2, 1, 2, 0x21, 22, 1, 0, 0))
put("fuzz_cluster", "epoch", b"\4" + struct.pack("<IIQ", 1, 2, 1700000000) + node(0) + node(1))
put("fuzz_cluster", "vdis-empty", b"\3")


# ---- fuzz_client: client requests (struct sd_req + payload), several per input ----
def vid_of(name):
    h = 0xCBF29CE484222325
    for b in name:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return (h & 0xFFFFFF) or 1


def creq(op, flags=0, dlen=0, args=b"", ver=None, rid=1):
    ver = ver if ver is not None else (0x0A if op >= 0x80 else 2)
    return struct.pack("<BBHIII", ver, op, flags, 0, rid, dlen) + args.ljust(32, b"\0")


def obj_args(oid, off=0, copies=0, policy=0, tgt_epoch=0):
    return struct.pack("<QQBBBBII", oid, 0, copies, policy, 0, 0, tgt_epoch, off)


def vdi_args(size=0, base=0, copies=0, policy=0, shift=0, snapid=0):
    return struct.pack("<QIBBBBII", size, base, copies, policy, 0, shift, snapid, 0)


def names(name, tag=b""):
    return name.ljust(256, b"\0") + tag.ljust(256, b"\0")


FUZZ_VID = vid_of(b"fuzz")
W = 1  # SD_FLAG_CMD_WRITE
ino_oid = (1 << 63) | (FUZZ_VID << 32)
data_oid = FUZZ_VID << 32
blk = bytes(range(256)) * 16


def put_reqs(name, *reqs):
    put("fuzz_client", name, b"".join(reqs))


put_reqs("vdi-create-info-del",
         creq(0x11, W, 256, vdi_args(1 << 30, copies=1), 2) + b"v2".ljust(256, b"\0"),
         creq(0x14, W, 512) + names(b"v2"),
         creq(0x17, W, 512) + names(b"v2"))
put_reqs("vdi-lock-release",
         creq(0x12, W, 512) + names(b"fuzz"),
         creq(0xc4, 0, 4096),
         creq(0x13, W, 512, vdi_args(base=FUZZ_VID)) + names(b"fuzz"),
         creq(0xc5, 0, 0, vdi_args(base=FUZZ_VID)))
put_reqs("vdi-snapshot",
         creq(0x11, W, 512, vdi_args(64 << 20, base=FUZZ_VID, copies=1, snapid=1)) + names(b"fuzz", b"t1"),
         creq(0x14, W, 512, vdi_args(snapid=1)) + names(b"fuzz", b"t1"))
put_reqs("vdi-read-tables", creq(0x15, 0, 1 << 18), creq(0xc9, 0, 1 << 18), creq(0x18, 0, 16))
attr = (b"fuzz".ljust(256, b"\0") + b"\0" * 256 + struct.pack("<QII", 0, 0, 5) +
        b"owner".ljust(256, b"\0"))
put_reqs("vdi-attr", creq(0x89, W | 0x100, len(attr)) + attr, creq(0x89, W, len(attr)) + attr,
         creq(0x89, W | 0x400, len(attr)) + attr)
put_reqs("obj-io",
         creq(0x01, W, 4096, obj_args(data_oid + 1, 0, 1)) + blk,
         creq(0x03, W, 4096, obj_args(data_oid + 1, 8192, 1)) + blk,
         creq(0x02, 0, 16384, obj_args(data_oid + 1)),
         creq(0x02, 0, 4096, obj_args(ino_oid)),
         creq(0xbd, 0, 0, obj_args(data_oid + 1)),
         creq(0x05, 0, 4096, obj_args(data_oid + 1, 4096)),
         creq(0x04, 0, 0, obj_args(data_oid + 1)))
put_reqs("obj-inspect",
         creq(0xd0, 0, 4096, obj_args(ino_oid), 0x0a),
         creq(0xd9, 0, 4096, obj_args(ino_oid), 0x0a),
         creq(0xd1, 0, 4096, obj_args(ino_oid, copies=1, tgt_epoch=1), 0x0a),
         creq(0xa1, 0, 65536, b"", 0x0a))
put_reqs("cluster-info",
         creq(0x87, 0, 1 << 16, b"", 0x0a), creq(0x82, 0, 4096, b"", 0x0a),
         creq(0xa2, 0, 4096, obj_args(0, tgt_epoch=1), 0x0a), creq(0x86, 0, 0, b"", 0x0a),
         creq(0xb8, 0, 4096, b"", 0x0a), creq(0xb1, 0, 264000, b"", 0x0a))
put_reqs("recovery",
         creq(0x97, 0, 4096, b"", 0x0a), creq(0xca, 0, 64, b"", 0x0a),
         creq(0xcb, W, 16, b"", 0x0a) + struct.pack("<QQ", 4, 10),
         creq(0xa9, 0, 0, b"", 0x0a), creq(0xa8, 0, 0, b"", 0x0a), creq(0x8a, 0, 0, b"", 0x0a))
put_reqs("node-settings",
         creq(0xb9, 0, 4, b"", 0x0a), creq(0xba, W, 4, b"", 0x0a) + struct.pack("<i", 0),
         creq(0xcd, 0, 4, b"", 0x0a), creq(0xcc, W, 4, b"", 0x0a) + struct.pack("<i", 64),
         creq(0xd8, W, 16, b"", 0x0a) + b"\0" * 16)
put_reqs("z-reformat", creq(0x84, W, 5, struct.pack("<QQBBHIIBBH", 0, 0, 1, 0, 0, 0, 0, 22, 0, 0), 0x0a) + b"plain")


# ---- fuzz_zookeeper: chunks; fuzz_corosync: selector (0 pending, 1 established) + chunks ----
def chunk(b):
    return struct.pack("<H", len(b)) + b


def zk_rec(t, mid, k, payload=b""):
    return struct.pack("<IB3xIIQ", 0x5A4B5344, t, len(payload), 0, mid) + node(k) + payload


def zk_base(pos, members):
    return struct.pack("<IIq", 0x5A4B4253, len(members), pos) + b"".join(
        struct.pack("<Q", mid) + node(k) for mid, k in members)


msg = b"\x02\0\0\0" + b"m" * 60
put("fuzz_zookeeper", "join-msg-leave", chunk(zk_base(4, [(1, 0)])) +
    chunk(b"\0" + zk_rec(1, 2, 1)) + chunk(b"\0" + zk_rec(3, 1, 0, msg)) +
    chunk(b"\0" + zk_rec(1, 3, 2)) + chunk(b"\0" + zk_rec(2, 3, 2)) + chunk(b"\0" + zk_rec(2, 1, 0)))
put("fuzz_zookeeper", "memb-names", chunk(b"") +
    chunk(b"\1" + struct.pack("<IIq", 0x5A4B4D42, 0, 9) + node(0)) +
    chunk(b"\2m-127.0.0.1_7000-0000000012") + chunk(b"\2q-0000000007"))


def cc_msg(t, payload):
    return struct.pack("<IHHI", 0x53444343, t, 0, len(payload)) + payload


def cpg_ev(kind, nodeid, pid, body):
    return chunk(struct.pack("<BII", kind, nodeid, pid) + body)


def confchg(members, left, joined):
    addrs = members + left + joined
    return struct.pack("<BBB", len(members), len(left), len(joined)) + b"".join(
        struct.pack("<III", n, p, r) for n, p, r in addrs)


def sync_for(nodeid, pid, entries):
    return cc_msg(2, struct.pack("<III", nodeid, pid, len(entries)) + b"".join(
        struct.pack("<IIB3x", n, p, pend) + node(k) for n, p, pend, k in entries))


put("fuzz_corosync", "pending-sync", b"\0" + cpg_ev(0, 1, 1, cc_msg(1, node(0))) +
    cpg_ev(0, 2, 2, cc_msg(3, msg)) +
    cpg_ev(0, 2, 2, sync_for(1, 1, [(2, 2, 0, 1), (1, 1, 1, 0)])) +
    cpg_ev(0, 2, 2, cc_msg(3, msg)))
put("fuzz_corosync", "established", b"\1" +
    cpg_ev(1, 0, 0, confchg([(1, 1, 0), (3, 3, 0)], [], [(3, 3, 1)])) +
    cpg_ev(0, 3, 3, cc_msg(1, node(2))) + cpg_ev(0, 1, 1, sync_for(3, 3, [(1, 1, 0, 0), (3, 3, 1, 2)])) +
    cpg_ev(0, 3, 3, cc_msg(3, msg)) + cpg_ev(1, 0, 0, confchg([(1, 1, 0)], [(3, 3, 2)], [])))


# ---- fuzz_store: kinds 3 (intent journal) and 4 (pending file) of stores from before the log,
# and a fragment, with the harness's checksum fix-up (selector top bit) ----
def frag_hdr(version, frag=65536, pend=(0, 0, 0, 0)):
    nblk = (frag + 4095) // 4096
    data_off = 4096 + ((nblk * 4 + 4095) & ~4095)
    expect, off, ln, kind = pend
    return (b"SDFRAG1\0" + struct.pack("<IIQBBBBIQQQQQIIBB", 1, 12, 0x0000000100000001, 0, 0, 1, 0,
                                       frag, version, 0, data_off, 0, expect, off, ln, kind, 0) +
            b"\0" * 42 + struct.pack("<I", 0))


def jrec(first, blocks, version):
    n = len(blocks)
    meta = b"SDINTNT\0" + struct.pack("<QIIII", 7, first, n, 0, 0) + frag_hdr(version)
    meta += b"\0" * (4 * n) + b"\0" * n
    meta = meta.ljust((len(meta) + 4095) & ~4095, b"\0")
    return meta + b"".join(blocks)


put("fuzz_store", "journal", b"\x83" + jrec(1, [bytes(range(256)) * 16, b"\0" * 4096], 2))
put("fuzz_store", "journal-empty", b"\x83" + jrec(0, [], 2))
put("fuzz_store", "pending-range", b"\x84" + frag_hdr(2, pend=(1, 0, 4096, 1)).ljust(8192, b"\0") + b"\0" * 4096)
put("fuzz_store", "pending-whole", b"\x84" + frag_hdr(2, pend=(0, 0, 65536, 2)).ljust(8192, b"\0") + b"\0" * 65536)


# ---- fuzz_local: selector (bit 0 fix lsn/crc, bit 1 already joined) + log records ----
def lrec(t, k, payload=b""):
    h = struct.pack("<IB3xIIQ", 0x4C434F4C, t, len(payload), 0, 0) + node(k)
    r = h + payload
    return r + b"\0" * (-len(r) % 8)


put("fuzz_local", "join-msg-leave", b"\1" + lrec(1, 0) + lrec(1, 1) + lrec(3, 0, msg) +
    lrec(1, 2) + lrec(3, 2, b"x" * 13) + lrec(2, 2) + lrec(2, 0))
put("fuzz_local", "joined-msgs", b"\3" + lrec(3, 0, msg) + lrec(2, 0) + lrec(1, 3))
