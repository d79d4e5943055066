#!/usr/bin/env python3
# rec_census.py - count every object's fragments across live sheep over the peer protocol, read them back (store checksums), report redundancy per object and share per node.
#
# Usage: rec_census.py [--verify] [--vdi VID] [--list] [--map] [--zone PORT=ZONE...] PORT [PORT...]
# Asks each sheep at 127.0.0.1:PORT for its fragment list (PEER_LIST) and,
# with --verify, reads every fragment whole (PEER_READ): the holder's store
# checks the crc32c of every block, so a bad fragment answers EIO. Prints
#   node PORT frags N bytes B
#   short OID have/width (one line per object below full redundancy, or with --list all)
#   summary objects=N full=F short=S bad=B extra=E
# and with --map one line per fragment held:
#   frag OID IDX PORT
# An object is at full redundancy when every index 0..width-1 is present at
# its newest version, on distinct nodes, and (with --verify) reads back.
# With --zone (one per port; a port without one is its own zone) the summary
# also says, counting current fragments by failure domain:
#   zones=MIN..MAX (distinct zones holding a newest-version fragment, over objects)
#   doubled=D (objects with two newest-version fragments in one zone)
# Exit status 0 when every object is at full redundancy and nothing is bad.
import socket
import struct
import sys
import time

PROTO = 0x0A
OP_PEER_READ = 0xE0
OP_PEER_LIST = 0xE4
FLAG_ANY_EPOCH = 0x8000
RES_NO_SPACE = 0x15


def recv_full(s, n):
    b = bytearray()
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise ConnectionError("closed")
        b += c
    return bytes(b)


def exchange(port, opcode, oid=0, idx=0, offset=0, rlen=0):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        hdr = struct.pack("<BBHIII", PROTO, opcode, FLAG_ANY_EPOCH, 0, 1, rlen)
        hdr += struct.pack("<QQBBBBIII", oid, 0, 0, 0, idx, 0, 0, offset, 0)
        assert len(hdr) == 48
        s.sendall(hdr)
        rsp = recv_full(s, 48)
        dlen = struct.unpack_from("<I", rsp, 12)[0]
        result = struct.unpack_from("<I", rsp, 16)[0]
        version = struct.unpack_from("<Q", rsp, 24)[0]
        data = recv_full(s, dlen) if dlen else b""
        global LAST_LC
        # PEER_RSP_LC (rsp.obj.reserved[0] @21): the fragment's record of
        # last-changed versions in bytes 32..47
        LAST_LC = rsp[32:48] if rsp[21] & 0x04 else None
        return result, version, data


def list_frags(port):
    cap = 1 << 20
    while True:
        res, _, data = exchange(port, OP_PEER_LIST, rlen=cap)
        if res == RES_NO_SPACE and cap < (64 << 20):
            cap *= 2
            continue
        if res != 0:
            raise RuntimeError("PEER_LIST on %d: result 0x%x" % (port, res))
        out = []
        # struct peer_frag (sheep/peer/peer.h): 48 bytes, the record of
        # last-changed versions (16 deltas) last
        for off in range(0, len(data) - len(data) % 48, 48):
            oid, idx, cp, nc, lcv, fs, ver, disk = struct.unpack_from("<QBBBBIQQ", data, off)
            deltas = data[off + 32:off + 48] if lcv == 1 else None
            out.append((oid, idx, cp, nc, fs, ver, disk, deltas))
        return out


LAST_LC = None


def align(fl):
    # An EC range write sends nothing to the data fragments it leaves
    # unchanged: the newest version's record (deltas) says at which
    # version each data fragment last changed, and a data fragment at that
    # version belongs to the newest version (sheep/gateway/lastchg.c).
    top = max(f[2] for f in fl)
    rec = next((f[6] for f in fl if f[2] == top and f[6] is not None), None)
    cp = fl[0][5]
    if rec is None or not cp:
        return fl
    d = (cp >> 4) * 2
    out = []
    for f in fl:
        idx, ver = f[0], f[2]
        if idx < d and idx < 16 and ver != top and rec[idx] < top and ver == top - rec[idx]:
            f = (idx, f[1], top) + f[3:]
        out.append(f)
    return out


def main(argv):
    verify = False
    listall = False
    showmap = False
    vid = None
    ports = []
    zone_of = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--verify":
            verify = True
        elif a == "--list":
            listall = True
        elif a == "--map":
            showmap = True
        elif a == "--zone":
            i += 1
            zp, zz = argv[i].split("=")
            zone_of[int(zp)] = int(zz)
        elif a == "--vdi":
            i += 1
            vid = int(argv[i], 0)
        else:
            ports.append(int(a))
        i += 1
    objs = {}
    bad = 0
    for port in ports:
        frags = list_frags(port)
        total = 0
        nfr = 0
        for oid, idx, cp, nc, fs, ver, disk, deltas in frags:
            if vid is not None and ((oid >> 32) & 0xFFFFFF) != vid:
                continue
            ok = True
            if verify:
                # A fragment may be replaced or dropped by recovery between
                # the list and the read: look again before calling it bad.
                for attempt in range(4):
                    res, v, data = exchange(port, OP_PEER_READ, oid, idx, 0, fs)
                    ok = res == 0 and len(data) == fs
                    if ok or res == 0x02:
                        break
                    time.sleep(0.3)
                if res == 0x02:
                    continue  # gone since the list: not held any more
                if ok:
                    ver = v
                    deltas = LAST_LC  # the list may predate the read
                else:
                    bad += 1
                    print("bad %016x idx %d on %d: result 0x%x len %d" % (oid, idx, port, res, len(data)))
            objs.setdefault(oid, []).append((idx, nc, ver, port, ok, cp, deltas))
            if showmap:
                print("frag %016x %d %d" % (oid, idx, port))
            total += disk
            nfr += 1
        print("node %d frags %d bytes %d" % (port, nfr, total))
    full = short = extra = doubled = 0
    zmin, zmax = None, 0
    for oid in sorted(objs):
        fl = align(objs[oid])
        width = max(f[1] for f in fl)
        top = max(f[2] for f in fl)
        zones = [zone_of.get(f[3], -f[3]) for f in fl if f[2] == top and f[4] and f[0] < width]
        nz = len(set(zones))
        zmin = nz if zmin is None else min(zmin, nz)
        zmax = max(zmax, nz)
        if nz < len(zones):
            doubled += 1
            if zone_of:
                print("doubled %016x %d fragments in %d zones" % (oid, len(zones), nz))
        have = {}
        for idx, nc, ver, port, ok, _, _ in fl:
            if ver == top and ok and idx < width and idx not in have and port not in have.values():
                have[idx] = port
            else:
                extra += 1
        if len(have) == width:
            full += 1
            if listall:
                print("full %016x %d/%d" % (oid, len(have), width))
        else:
            short += 1
            print("short %016x %d/%d" % (oid, len(have), width))
    line = "summary objects=%d full=%d short=%d bad=%d extra=%d" % (len(objs), full, short, bad, extra)
    if zone_of:
        line += " zones=%d..%d doubled=%d" % (zmin or 0, zmax, doubled)
    print(line)
    return 0 if short == 0 and bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
