#!/usr/bin/env python3
# nbd_structured.py - a raw NBD client for 066: structured replies, meta contexts and BLOCK_STATUS on the wire, and old clients kept on simple replies.
#
# Usage: nbd_structured.py HOST PORT EXPORT CASE [ARGS]; prints "ok: ..." or
# "fail: ..." and exits 0/1.
#   simple OFF LEN SHA        no negotiation: READ gets a simple reply whose
#                             data has sha256 SHA; BLOCK_STATUS gets a simple
#                             EINVAL reply
#   structured OFF LEN SHA    structured + base:allocation: READ gets one
#                             OFFSET_DATA chunk (DONE) with those bytes
#   map OFF LEN               prints the base:allocation extents of the range
#                             as "LENGTH FLAGS" lines after the ok line
#   negotiation               meta context option rules (SET before
#                             STRUCTURED_REPLY, LIST, unknown contexts,
#                             SET for another export, errors as chunks)
import hashlib, socket, struct, sys

from wirelib import recvn

INIT, OPTS, REPM = 0x4E42444D41474943, 0x49484156454F5054, 0x3E889045565A9
REQ, SIMPLE, STRUCT = 0x25609513, 0x67446698, 0x668E33EF
OPT_GO, OPT_SR, OPT_LIST_META, OPT_SET_META = 7, 8, 9, 10
REP_ACK, REP_META = 1, 4
CMD_READ, CMD_DISC, CMD_BS = 0, 2, 7
T_NONE, T_DATA, T_BS, T_ERR = 0, 1, 5, 0x8001
host, port, export, case = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4]
args = sys.argv[5:]


def done(okay, msg):
    print(("ok: " if okay else "fail: ") + msg)
    sys.exit(0 if okay else 1)


def connect():
    s = socket.create_connection((host, port), timeout=60)
    m1, m2, hf = struct.unpack(">QQH", recvn(s, 18))
    assert m1 == INIT and m2 == OPTS, "bad greeting"
    s.sendall(struct.pack(">I", 3))
    return s


def opt(s, o, data=b""):
    s.sendall(struct.pack(">QII", OPTS, o, len(data)) + data)


def rep(s):
    m, o, t, n = struct.unpack(">QIII", recvn(s, 20))
    assert m == REPM, "bad option reply magic"
    return o, t, recvn(s, n)


def replies(s):
    """Option replies up to and including the final one: [(type, data)]."""
    out = []
    while True:
        o, t, d = rep(s)
        out.append((t, d))
        if t == REP_ACK or t & 0x80000000:
            return out


def meta_opt(s, o, name, queries):
    d = struct.pack(">I", len(name)) + name + struct.pack(">I", len(queries))
    for q in queries:
        d += struct.pack(">I", len(q)) + q
    opt(s, o, d)
    return replies(s)


def go(s, name):
    opt(s, OPT_GO, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    size = None
    for t, d in replies(s):
        if t == 3 and struct.unpack(">H", d[:2])[0] == 0:
            size = struct.unpack(">Q", d[2:10])[0]
        elif t & 0x80000000:
            raise RuntimeError("GO refused: %#x %s" % (t, d.decode(errors="replace")))
    return size


def req(s, typ, off, length, flags=0, handle=1):
    s.sendall(struct.pack(">IHHQQI", REQ, flags, typ, handle, off, length))


def simple_reply(s):
    m, err, h = struct.unpack(">IIQ", recvn(s, 16))
    assert m == SIMPLE, "expected a simple reply, got magic %#x" % m
    return err, h


def chunks(s, handle):
    """Structured chunks of one request until DONE: [(type, payload)]."""
    out = []
    while True:
        m, fl, t, h, n = struct.unpack(">IHHQI", recvn(s, 20))
        assert m == STRUCT, "expected a structured reply, got magic %#x" % m
        assert h == handle, "chunk for handle %d, expected %d" % (h, handle)
        out.append((t, recvn(s, n)))
        if fl & 1:
            return out


def structured_session(name=None):
    s = connect()
    opt(s, OPT_SR)
    t = replies(s)[-1][0]
    assert t == REP_ACK, "STRUCTURED_REPLY not acked: %#x" % t
    r = meta_opt(s, OPT_SET_META, name or export, [b"base:allocation"])
    metas = [d for t, d in r if t == REP_META]
    assert r[-1][0] == REP_ACK and len(metas) == 1 and metas[0][4:] == b"base:allocation", \
        "SET_META_CONTEXT base:allocation: %s" % r
    return s, struct.unpack(">I", metas[0][:4])[0]


def block_status(s, ctx, off, length, handle, flags=0):
    req(s, CMD_BS, off, length, flags=flags, handle=handle)
    ch = chunks(s, handle)
    assert len(ch) == 1 and ch[0][0] == T_BS, "BLOCK_STATUS reply %s" % [(t, len(p)) for t, p in ch]
    p = ch[0][1]
    assert struct.unpack(">I", p[:4])[0] == ctx, "wrong context id"
    return [struct.unpack(">II", p[i:i + 8]) for i in range(4, len(p), 8)]


if case == "simple":
    off, length, want = int(args[0]), int(args[1]), args[2]
    s = connect()
    go(s, export)
    req(s, CMD_READ, off, length, handle=7)
    err, h = simple_reply(s)
    data = recvn(s, length)
    got = hashlib.sha256(data).hexdigest()
    req(s, CMD_BS, off, length, handle=8)
    err2, h2 = simple_reply(s)
    req(s, CMD_DISC, 0, 0)
    done(err == 0 and h == 7 and got == want and err2 == 22 and h2 == 8,
         "no negotiation: READ -> simple reply (err %d, sha %s), BLOCK_STATUS -> simple EINVAL (%d)"
         % (err, got[:12], err2))

if case == "structured":
    off, length, want = int(args[0]), int(args[1]), args[2]
    s, ctx = structured_session()
    go(s, export)
    req(s, CMD_READ, off, length, handle=5)
    ch = chunks(s, 5)
    ok = len(ch) == 1 and ch[0][0] == T_DATA and struct.unpack(">Q", ch[0][1][:8])[0] == off
    got = hashlib.sha256(ch[0][1][8:]).hexdigest() if ok else "-"
    req(s, CMD_DISC, 0, 0)
    done(ok and got == want, "READ -> one OFFSET_DATA chunk at %d, sha %s" % (off, got[:12]))

if case == "map":
    off, length = int(args[0]), int(args[1])
    s, ctx = structured_session()
    go(s, export)
    out, h = [], 100
    while length > 0:
        ext = block_status(s, ctx, off, min(length, 0xFFFFF000), h)
        h += 1
        for l, f in ext:
            l = min(l, length)
            out.append("%d %d" % (l, f))
            off += l
            length -= l
            if length == 0:
                break
    req(s, CMD_DISC, 0, 0)
    print("ok: %d extents" % len(out))
    print("\n".join(out))
    sys.exit(0)

if case == "negotiation":
    s = connect()
    # SET before STRUCTURED_REPLY is refused; LIST is allowed.
    r = meta_opt(s, OPT_SET_META, export, [b"base:allocation"])
    set_early = r[-1][0]
    r = meta_opt(s, OPT_LIST_META, export, [])
    listed = [d[4:] for t, d in r if t == REP_META]
    r = meta_opt(s, OPT_LIST_META, export, [b"base:"])
    listed_ns = [d[4:] for t, d in r if t == REP_META]
    r = meta_opt(s, OPT_LIST_META, export, [b"qemu:dirty-bitmap:x", b"nosuch:thing"])
    listed_none = [d for t, d in r if t == REP_META]
    # Truncated query list -> INVALID.
    opt(s, OPT_LIST_META, struct.pack(">I", len(export)) + export + struct.pack(">II", 1, 50) + b"x")
    trunc = replies(s)[-1][0]
    opt(s, OPT_SR)
    sr = replies(s)[-1][0]
    # Selected for another export name: does not apply after GO.
    r = meta_opt(s, OPT_SET_META, b"some-other-vdi", [b"base:allocation"])
    go(s, export)
    req(s, CMD_BS, 0, 4096, handle=3)
    ch = chunks(s, 3)
    err_chunk = ch[0][0] == T_ERR and struct.unpack(">I", ch[0][1][:4])[0] == 22
    msg = ch[0][1][6:].decode(errors="replace") if err_chunk else ""
    req(s, CMD_READ, 1 << 62, 512, handle=4)
    ch2 = chunks(s, 4)
    read_err = ch2[0][0] == T_ERR and struct.unpack(">I", ch2[0][1][:4])[0] == 22
    req(s, CMD_DISC, 0, 0)
    okay = (set_early == 0x80000003 and listed == [b"base:allocation"] and
            listed_ns == [b"base:allocation"] and listed_none == [] and trunc == 0x80000003 and
            sr == REP_ACK and err_chunk and "meta context" in msg and read_err)
    done(okay, "SET before STRUCTURED_REPLY %#x; LIST %s, LIST base: %s, unknown %s; truncated %#x; "
         "context for another export -> BLOCK_STATUS error chunk '%s'; bad READ -> error chunk %s"
         % (set_early, listed, listed_ns, listed_none, trunc, msg, read_err))

done(False, "unknown case " + case)
