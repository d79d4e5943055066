#!/usr/bin/env python3
# peer_inplace.py - peer connections a sheep serves in place (server/conn.c): each answers peer reads, client requests and pipelines of both (matched by id), past the cap of threads, and garbage after a request served in place (answered or closed by the loop); 'hold' keeps connections in place for a stop test.
#   peer_inplace.py check PORT VID DATAFILE PID CONNS
#   peer_inplace.py hold PORT VID DATAFILE CONNS SECONDS
import os, random, socket, struct, sys, time

from wirelib import recvn

OP_PEER_READ, OP_GET_NODE_LIST = 0xe0, 0x82
FLAG_ANY_EPOCH = 0x8000
PROTO = 0x0a
BLK = 4096
mode, port, vid, datafile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 16), sys.argv[4]
data = open(datafile, "rb").read()
oid = vid << 32  # data object 0: bytes [0, 4 MiB) of the VDI
fails = []
rid = 0


def frame(op, flags, dlen, rest):
    global rid
    rid += 1
    return rid, struct.pack("<BBHIII", PROTO, op, flags, 0, rid, dlen) + rest.ljust(32, b"\0")


def peer_read(idx, off):
    rest = struct.pack("<QQBBBBII", oid, 0, 0, 0, idx, 0, 0, off)
    return frame(OP_PEER_READ, FLAG_ANY_EPOCH, BLK, rest)


def node_list():
    return frame(OP_GET_NODE_LIST, 0, 1 << 16, b"")


def reply(s):
    h = recvn(s, 48)
    rrid, rlen, result = struct.unpack("<III", h[8:20])
    return rrid, result, recvn(s, rlen) if rlen else b""


def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.settimeout(30)
    return s


# The fragment index this sheep holds object 0 under (one copy each).
idx = None
s = conn()
for i in range(8):
    r, f = peer_read(i, 0)
    s.sendall(f)
    if reply(s)[1] == 0:
        idx = i
        break
s.close()
if idx is None:
    print("# FAIL no fragment of object %016x here" % oid)
    sys.exit(1)


def check_read(s, name, off):
    r, f = peer_read(idx, off)
    s.sendall(f)
    rr, res, body = reply(s)
    if rr != r or res != 0 or body != data[off:off + BLK]:
        fails.append("%s: id %d/%d result %#x, %s" % (name, rr, r, res,
                     "bytes as written" if body == data[off:off + BLK] else "bytes differ"))


def offs(rnd):
    return rnd.randrange(0, (4 << 20) // BLK) * BLK


def sd_conn_threads(pid):
    n = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            if open("/proc/%d/task/%s/comm" % (pid, t)).read().strip() == "sd_conn":
                n += 1
        except OSError:
            pass
    return n


rnd = random.Random(port)
if mode == "hold":
    nconn, secs = int(sys.argv[5]), float(sys.argv[6])
    held = []
    for i in range(nconn):
        s = conn()
        check_read(s, "hold %d" % i, offs(rnd))
        held.append(s)
    print("held %d" % nconn, flush=True)
    time.sleep(secs)
    sys.exit(1 if fails else 0)

pid, nconn = int(sys.argv[5]), int(sys.argv[6])
before = sd_conn_threads(pid)

# Garbage after a request served in place: the thread hands the connection
# back to the loop, which answers or closes as for any connection.
RES_INVALID, RES_NO_SUPPORT = 0x05, 0x8b
for name, tail, want in (
        ("unknown peer opcode", frame(0xe8, 0, 0, b"")[1], RES_NO_SUPPORT),
        ("oversize peer write", frame(OP_PEER_READ + 1, 1, 0xffffffff, b"")[1], RES_INVALID),
        ("bad protocol version", struct.pack("<BBHIII", 2, OP_PEER_READ, 0, 0, 9, BLK) + b"\0" * 32, 0x14),
        ("truncated header", frame(OP_PEER_READ, 0, BLK, b"")[1][:20], None)):
    s = conn()
    check_read(s, "%s: first read" % name, offs(rnd))
    s.sendall(tail)
    if want is None:
        s.shutdown(socket.SHUT_WR)
    try:
        rr, res, body = reply(s)
        if want is None or res != want:
            fails.append("%s: result %#x, wanted %s" % (name, res, "a close" if want is None else hex(want)))
    except (EOFError, OSError):
        if want == RES_NO_SUPPORT:
            fails.append("%s: closed, wanted %#x" % (name, want))
    s.close()
socks = []
for i in range(nconn):
    s = conn()
    # A pipeline: peer read (served in place), a client request (back to
    # the loop), peer read again: each answered once, by id (the protocol
    # lets replies of a pipeline come in any order).
    a, b, c = offs(rnd), offs(rnd), offs(rnd)
    r1, f1 = peer_read(idx, a)
    r2, f2 = node_list()
    r3, f3 = peer_read(idx, b)
    s.sendall(f1 + f2 + f3)
    want = {r1: a, r2: None, r3: b}
    for _ in range(3):
        rr, res, body = reply(s)
        off = want.pop(rr, -1)
        if off == -1 or res != 0 or (off is not None and body != data[off:off + BLK]):
            fails.append("conn %d pipeline: id %d (unasked or twice) or result %#x or bytes" %
                         (i, rr, res))
    check_read(s, "conn %d after the pipeline" % i, c)
    socks.append(s)
during = sd_conn_threads(pid)
# Every connection, still open, answers again: the ones in place from
# their threads, the rest from the loop and its pools.
for i, s in enumerate(socks):
    check_read(s, "conn %d second round" % i, offs(rnd))
for s in socks:
    s.close()
after = during
for _ in range(100):
    after = sd_conn_threads(pid)
    if after <= before:
        break
    time.sleep(0.1)
print("sd_conn threads: %d before, %d with %d connections open, %d after they closed" %
      (before, during, nconn, after))
if during > 128:
    fails.append("%d threads serve in place, over the cap of 128" % during)
if during < min(nconn, 128) // 2:
    fails.append("only %d of %d connections served in place" % (during, nconn))
if after > before:
    fails.append("%d threads left after the connections closed (%d before)" % (after, before))
for f in fails[:20]:
    print("# FAIL " + f)
print("# %d checks failed" % len(fails))
sys.exit(1 if fails else 0)
