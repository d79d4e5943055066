#!/usr/bin/env python3
# snap_consistency.py - proves a snapshot taken while an NBD client writes is a crash-consistent point: every write acknowledged before the snapshot command started is in it, none sent after the command returned is.
#
# Usage: snap_consistency.py HOST PORT VDI SNAP_PORT TAG DOG BLOCKS SECONDS
# One NBD connection to VDI writes 4 KiB blocks (random block among BLOCKS,
# never two in flight on one block, 8 in flight) for SECONDS; each write
# carries its sequence number and block in every 16 bytes (VDI must be
# unwritten before: blocks read as zeros = write 0). Half-way, "DOG
# vdi snapshot -s TAG VDI -p SNAP_PORT" runs. Then the export VDI@TAG is
# read and, for every block, the sequence number it holds must be at least
# that of the last write to the block acknowledged before the command
# started, and lower than that of the first write sent after it returned.
# The live VDI must hold every block's last write. Prints the counts and
# one line per violation; exit 0 when none.
import os, random, select, socket, struct, subprocess, sys, time

from wirelib import recvn

host, port, vdi = sys.argv[1], int(sys.argv[2]), sys.argv[3]
snap_port, tag, dog = int(sys.argv[4]), sys.argv[5], sys.argv[6]
blocks, seconds = int(sys.argv[7]), float(sys.argv[8])
BS, QD = 4096, 8
INIT, OPTS, REPM = 0x4E42444D41474943, 0x49484156454F5054, 0x3E889045565A9
REQ, REP = 0x25609513, 0x67446698
CMD_READ, CMD_WRITE, CMD_DISC = 0, 1, 2


def attach(name):
    s = socket.create_connection((host, port), timeout=60)
    m1, m2, _ = struct.unpack(">QQH", recvn(s, 18))
    assert m1 == INIT and m2 == OPTS, "bad greeting"
    s.sendall(struct.pack(">I", 3))
    nm = name.encode()
    data = struct.pack(">I", len(nm)) + nm + struct.pack(">H", 0)
    s.sendall(struct.pack(">QII", OPTS, 7, len(data)) + data)
    while True:
        m, _, t, n = struct.unpack(">QIII", recvn(s, 20))
        d = recvn(s, n)
        assert m == REPM, "bad option reply"
        if t == 1:
            return s
        if t & 0x80000000:
            raise RuntimeError("NBD_OPT_GO %s refused: %s" % (name, d.decode(errors="replace")))


def payload(seq, blk):
    return struct.pack(">QQ", seq, blk) * (BS // 16)


def read_all(s):
    seqs = []
    for b in range(blocks):
        s.sendall(struct.pack(">IHHQQI", REQ, 0, CMD_READ, b, b * BS, BS))
        m, err, h = struct.unpack(">IIQ", recvn(s, 16))
        assert m == REP and h == b, "bad read reply"
        if err:
            raise RuntimeError("read of block %d failed: %d" % (b, err))
        d = recvn(s, BS)
        seq, blk = struct.unpack(">QQ", d[:16])
        if d != (payload(seq, blk) if seq else bytes(BS)) or (seq and blk != b):
            raise RuntimeError("block %d holds torn or misplaced data" % b)
        seqs.append(seq)
    s.sendall(struct.pack(">IHHQQI", REQ, 0, CMD_DISC, 0, 0, 0))
    s.close()
    return seqs


w = attach(vdi)
w.setblocking(False)
rng = random.Random(int.from_bytes(os.urandom(4), "little"))
seq = 0
inflight = {}    # handle(seq) -> (block, sent time)
log = []         # (seq, block, sent, acked)
busy = set()
out = b""
rbuf = b""
t0 = time.monotonic()
snap = None
snap_start = snap_end = None
while True:
    now = time.monotonic()
    if snap is None and now - t0 >= seconds / 2:
        snap_start = time.monotonic()
        snap = subprocess.Popen([dog, "vdi", "snapshot", "-s", tag, vdi, "-a", host,
                                 "-p", str(snap_port)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    if snap is not None and snap_end is None and snap.poll() is not None:
        snap_end = time.monotonic()
        if snap.returncode:
            print("snapshot command failed: %s" % snap.stdout.read().decode(errors="replace"))
            sys.exit(1)
    stop = now - t0 >= seconds and snap_end is not None
    while not stop and len(inflight) < QD and len(out) < 1 << 20:
        b = rng.randrange(blocks)
        if b in busy:
            continue
        seq += 1
        busy.add(b)
        inflight[seq] = (b, time.monotonic())
        out += struct.pack(">IHHQQI", REQ, 0, CMD_WRITE, seq, b * BS, BS) + payload(seq, b)
    if stop and not inflight:
        break
    r, wr, _ = select.select([w], [w] if out else [], [], 0.05)
    if wr:
        n = w.send(out)
        out = out[n:]
    if r:
        c = w.recv(65536)
        if not c:
            print("server closed the writer's connection")
            sys.exit(1)
        rbuf += c
        while len(rbuf) >= 16:
            m, err, h = struct.unpack(">IIQ", rbuf[:16])
            rbuf = rbuf[16:]
            if m != REP or h not in inflight:
                print("bad write reply (magic %#x handle %d)" % (m, h))
                sys.exit(1)
            if err:
                print("write %d failed: error %d" % (h, err))
                sys.exit(1)
            b, sent = inflight.pop(h)
            busy.discard(b)
            log.append((h, b, sent, time.monotonic()))
w.setblocking(True)
w.sendall(struct.pack(">IHHQQI", REQ, 0, CMD_DISC, 0, 0, 0))
w.close()

# per block: last write acked before the snapshot started, first sent after it ended
must = [0] * blocks
bound = [None] * blocks
last = [0] * blocks
before = after = 0
for s, b, sent, acked in sorted(log):
    last[b] = max(last[b], s)
    if acked < snap_start:
        must[b] = max(must[b], s)
        before += 1
    if sent > snap_end and (bound[b] is None or s < bound[b]):
        bound[b] = s
    if sent > snap_end:
        after += 1
got = read_all(attach("%s@%s" % (vdi, tag)))
live = read_all(attach(vdi + ":ro"))
bad = 0
for b in range(blocks):
    if got[b] < must[b]:
        bad += 1
        print("block %d: snapshot holds write %d, older than write %d acknowledged before it" % (b, got[b], must[b]))
    if bound[b] is not None and got[b] >= bound[b]:
        bad += 1
        print("block %d: snapshot holds write %d, sent after it (first such: %d)" % (b, got[b], bound[b]))
    if live[b] != last[b]:
        bad += 1
        print("block %d: live volume holds write %d, last write was %d" % (b, live[b], last[b]))
print("%d writes, %d acknowledged before the snapshot, %d sent after it (snapshot took %.0f ms), %d violations"
      % (len(log), before, after, (snap_end - snap_start) * 1000, bad))
sys.exit(1 if bad or before == 0 or after == 0 else 0)
