#!/usr/bin/env python3
# nbd_badclient.py - a deliberately misbehaving NBD client for 064: garbage, bad options, bad requests, vanishing.
#
# Usage: nbd_badclient.py HOST PORT EXPORT CASE; prints one line "ok: ..."
# or "fail: ..." and exits 0/1. Every case checks the server's reaction
# (an error reply or a clean close), never that it merely survived.
import socket, struct, sys, os

from wirelib import recvn

INIT, OPTS, REPM = 0x4E42444D41474943, 0x49484156454F5054, 0x3E889045565A9
REQ, REP = 0x25609513, 0x67446698
host, port, export, case = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4]


def conn():
    s = socket.create_connection((host, port), timeout=10)
    return s


def closed(s):
    try:
        while True:
            c = s.recv(65536)
            if not c:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def hello(s, flags=3):
    m1, m2, hf = struct.unpack(">QQH", recvn(s, 18))
    assert m1 == INIT and m2 == OPTS, "bad server greeting"
    s.sendall(struct.pack(">I", flags))


def opt(s, o, data=b""):
    s.sendall(struct.pack(">QII", OPTS, o, len(data)) + data)


def rep(s):
    m, o, t, n = struct.unpack(">QIII", recvn(s, 20))
    assert m == REPM, "bad reply magic"
    return o, t, recvn(s, n)


def go(s, name):
    opt(s, 7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    size = None
    while True:
        o, t, d = rep(s)
        if t == 3 and struct.unpack(">H", d[:2])[0] == 0:
            size = struct.unpack(">Q", d[2:10])[0]
        elif t == 1:
            return size
        elif t & 0x80000000:
            raise RuntimeError("GO refused: %#x %s" % (t, d.decode(errors="replace")))


def req(s, typ, off, length, flags=0, handle=1, data=b""):
    s.sendall(struct.pack(">IHHQQI", REQ, flags, typ, handle, off, length) + data)


def reply(s):
    m, err, h = struct.unpack(">IIQ", recvn(s, 16))
    assert m == REP, "bad simple reply magic"
    return err, h


def done(okay, msg):
    print(("ok: " if okay else "fail: ") + msg)
    sys.exit(0 if okay else 1)


s = conn()
if case == "garbage":
    s.sendall(os.urandom(4096))
    done(closed(s), "random bytes instead of client flags -> closed")
if case == "bad-flags":
    hello(s, 0xFFFF0000)
    done(closed(s), "unknown client flags -> closed")
if case == "bad-opt-magic":
    hello(s)
    s.sendall(b"NOTMAGIC" + struct.pack(">II", 7, 0))
    done(closed(s), "option with a bad magic -> closed")
if case == "huge-opt":
    hello(s)
    s.sendall(struct.pack(">QII", OPTS, 7, 0x7FFFFFFF) + b"x" * 100)
    done(closed(s), "option claiming 2 GiB -> closed")
if case == "unknown-opts":
    hello(s)
    seen = []
    for o in (0, 4, 5, 9, 10, 11, 12, 13, 99, 0xFFFFFFFF):  # 8 (STRUCTURED_REPLY) is known
        opt(s, o, b"abc" if o == 99 else b"")
        ro, t, d = rep(s)
        seen.append(t)
    if not all(t & 0x80000000 for t in seen):
        done(False, "unknown options answered %s" % seen)
    size = go(s, export)  # negotiation goes on
    req(s, 2, 0, 0)
    done(size is not None and closed(s), "10 unknown options -> errors, then GO works (size %s)" % size)
if case == "bad-go":
    hello(s)
    opt(s, 7, struct.pack(">I", 1000) + b"short")
    o, t, d = rep(s)
    opt(s, 7, struct.pack(">I", len(export)) + export + struct.pack(">H", 5))
    o2, t2, d2 = rep(s)
    opt(s, 2)
    o3, t3, _ = rep(s)
    done(t == 0x80000003 and t2 == 0x80000003 and t3 == 1,
         "malformed GO -> NBD_REP_ERR_INVALID twice (%#x %#x), ABORT acked" % (t, t2))
if case == "bad-requests":
    hello(s)
    size = go(s, export)
    errs = {}
    req(s, 0, size - 10, 100, handle=1); errs["read past end"] = reply(s)[0]
    req(s, 0, 0, 64 << 20, handle=2); errs["read 64 MiB"] = reply(s)[0]
    req(s, 1, size, 512, handle=3, data=b"\xee" * 512); errs["write past end"] = reply(s)[0]
    req(s, 9, 0, 512, handle=4); errs["unknown command"] = reply(s)[0]
    req(s, 0, 0, 512, flags=0x8000, handle=5); errs["unknown flag"] = reply(s)[0]
    req(s, 4, size - 1, 2, handle=6); errs["trim past end"] = reply(s)[0]
    req(s, 0, 0, 512, handle=7)
    e, h = reply(s)
    recvn(s, 512)
    if e or h != 7 or not all(errs.values()):
        done(False, "errors %s, good read %d" % (errs, e))
    req(s, 1, 0, 0xFFFFFFF0, handle=8)  # oversize write: error then close
    e8, _ = reply(s)
    done(e8 == 22 and closed(s), "bad requests -> errors %s; oversize write -> EINVAL + close" % errs)
if case == "vanish-mid-write":
    hello(s)
    size = go(s, export)
    req(s, 1, 4096, 1 << 20, handle=9, data=b"\xab" * 1000)
    s.close()
    done(True, "sent 1000 of 1048576 payload bytes, then vanished")
if case == "vanish-mid-header":
    hello(s)
    go(s, export)
    s.sendall(struct.pack(">IHH", REQ, 0, 1))
    s.close()
    done(True, "sent half a request header, then vanished")
if case == "vanish-in-handshake":
    hello(s)
    s.sendall(struct.pack(">QI", OPTS, 7))
    s.close()
    done(True, "vanished in the middle of an option")
if case == "bad-magic":
    hello(s)
    go(s, export)
    s.sendall(b"\0" * 28)
    done(closed(s), "request with a bad magic -> closed")
done(False, "unknown case " + case)
