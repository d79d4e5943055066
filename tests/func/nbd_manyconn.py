#!/usr/bin/env python3
# nbd_manyconn.py - many NBD connections at once, each with several requests in flight, while the sheep's threads are counted (071).
#
# Usage: nbd_manyconn.py HOST PORT PID NCONN QD PREFIX
# Connection k opens export PREFIX<k>, keeps QD 64 KiB writes of its own
# pseudo-random data in flight over its first MiB, then reads it back (QD
# reads in flight) and compares sha256s. Meanwhile /proc/PID/task is sampled.
# Prints "base N", "peak_threads N", "peak_workers N", "peak_conns N",
# "peak_nbd N" (the most NBD threads, workers and connections, at once),
# "verified N" (connections whose data read back intact) and "errors N".
import hashlib, os, random, socket, struct, sys, threading, time

from wirelib import recvn

INIT, OPTS = 0x4E42444D41474943, 0x49484156454F5054
REQ, SIMPLE = 0x25609513, 0x67446698
OPT_EXPORT_NAME, CMD_READ, CMD_WRITE, CMD_DISC = 1, 0, 1, 2
BS, NBLK = 64 << 10, 16
host, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
nconn, qd, prefix = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]


def threads():
    """(all threads, NBD pool workers, NBD connection threads) of the sheep,
    leaving out the threads serving other sheep's peer connections
    (sd_conn: as many as those connections, whatever the NBD clients do)."""
    n = w = c = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                name = f.read().strip()
        except OSError:
            continue
        if name == "sd_conn":
            continue
        n += 1
        w += name == "nbd-worker"
        c += name == "nbd-conn"
    return n, w, c


def attach(name):
    s = socket.create_connection((host, port), timeout=120)
    m1, m2, _ = struct.unpack(">QQH", recvn(s, 18))
    assert m1 == INIT and m2 == OPTS, "bad greeting"
    s.sendall(struct.pack(">I", 3))  # fixed newstyle, no zeroes
    s.sendall(struct.pack(">QII", OPTS, OPT_EXPORT_NAME, len(name)) + name)
    size, _ = struct.unpack(">QH", recvn(s, 10))
    return s, size


def pipeline(s, cmd, blocks, payload):
    """Send one request per block with at most qd in flight; return {block: data}."""
    out, todo, inflight = {}, list(blocks), 0
    while todo or inflight:
        while todo and inflight < qd:
            b = todo.pop(0)
            data = payload[b] if cmd == CMD_WRITE else b""
            s.sendall(struct.pack(">IHHQQI", REQ, 0, cmd, b, b * BS, BS) + data)
            inflight += 1
        magic, err, handle = struct.unpack(">IIQ", recvn(s, 16))
        if magic != SIMPLE or err:
            raise IOError("reply magic %#x error %d for block %d" % (magic, err, handle))
        out[handle] = recvn(s, BS) if cmd == CMD_READ else b""
        inflight -= 1
    return out


results = {"verified": 0, "errors": 0}
lock = threading.Lock()
start = threading.Barrier(nconn + 1)


def client(k):
    rnd = random.Random(k)
    payload = [rnd.randbytes(BS) for _ in range(NBLK)]
    ok = False
    try:
        s, size = attach(("%s%d" % (prefix, k)).encode())
        assert size >= NBLK * BS, "export too small"
        start.wait()
        pipeline(s, CMD_WRITE, range(NBLK), payload)
        back = pipeline(s, CMD_READ, range(NBLK), None)
        want = hashlib.sha256(b"".join(payload)).hexdigest()
        got = hashlib.sha256(b"".join(back[b] for b in range(NBLK))).hexdigest()
        ok = want == got
        s.sendall(struct.pack(">IHHQQI", REQ, 0, CMD_DISC, 0, 0, 0))
        s.close()
    except Exception as e:  # reported as an error, the test fails on it
        print("# connection %d: %s" % (k, e), file=sys.stderr)
        try:
            start.abort()
        except Exception:
            pass
    with lock:
        results["verified" if ok else "errors"] += 1


base = threads()[0]
peak = [0, 0, 0, 0]  # all threads, workers, connection threads, workers + connection threads
done = threading.Event()


def sampler():
    while not done.is_set():
        try:
            cur = threads()
        except OSError:
            break
        cur = cur + (cur[1] + cur[2],)
        for i in range(4):
            peak[i] = max(peak[i], cur[i])
        time.sleep(0.002)


ts = [threading.Thread(target=client, args=(k,)) for k in range(nconn)]
for t in ts:
    t.start()
sm = threading.Thread(target=sampler)
sm.start()
try:
    start.wait(timeout=120)
except threading.BrokenBarrierError:
    pass
for t in ts:
    t.join()
done.set()
sm.join()
print("base %d" % base)
print("peak_threads %d" % peak[0])
print("peak_workers %d" % peak[1])
print("peak_conns %d" % peak[2])
print("peak_nbd %d" % peak[3])
print("verified %d" % results["verified"])
print("errors %d" % results["errors"])
