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
