#!/usr/bin/env python3
# thrash_nbd.py - 112's NBD writer: random FUA writes to one export, each applied to a reference file only once acknowledged; rides a kill -9 of its gateway sheep by reconnecting (to another sheep or the restarted one) and retrying the write.
#
# Usage: thrash_nbd.py EXPORT REF DIR PORT [PORT...]
#   Connects to the first PORT. Until DIR/stop exists: writes 4..64 KiB of
#   random bytes at a random 4 KiB-aligned offset with NBD_CMD_FLAG_FUA and
#   waits for the reply. A successful reply is an acknowledged write: it is
#   applied to REF and counted in DIR/n.acked. A dropped connection or an
#   error reply: reconnect, trying the PORTs in turn from the next one
#   (0.3 s apart; a refused GO, e.g. while the dead gateway still holds the
#   VDI lock, counts as a failed try) and send the same write again, so the
#   range ends wholly new; given up after 120 s (DIR/n.unknown). Each
#   reconnect is a line "PORT SECONDS" in DIR/n.reconnects; the port in use
#   is in DIR/n.attached. Exits 0 after a clean NBD_CMD_DISC.
import os, random, socket, struct, sys, time

INIT, OPTS, REPM = 0x4E42444D41474943, 0x49484156454F5054, 0x3E889045565A9
REQ, SIMPLE = 0x25609513, 0x67446698
OPT_GO, REP_ACK, REP_INFO = 7, 1, 3
CMD_WRITE, CMD_DISC, FLAG_FUA = 1, 2, 1 << 0

export, ref, sdir = sys.argv[1].encode(), sys.argv[2], sys.argv[3]
ports = [int(p) for p in sys.argv[4:]]
size = os.path.getsize(ref)


def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += c
    return b


def note(name, line):
    with open(os.path.join(sdir, name), "a") as f:
        f.write(line + "\n")


def connect(port):
    """Newstyle handshake and NBD_OPT_GO; a socket ready for commands."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        m1, m2, _ = struct.unpack(">QQH", recvn(s, 18))
        if m1 != INIT or m2 != OPTS:
            raise OSError("bad greeting")
        s.sendall(struct.pack(">I", 1))  # FIXED_NEWSTYLE
        data = struct.pack(">I", len(export)) + export + struct.pack(">H", 0)
        s.sendall(struct.pack(">QII", OPTS, OPT_GO, len(data)) + data)
        while True:
            m, _, t, n = struct.unpack(">QIII", recvn(s, 20))
            body = recvn(s, n)
            if m != REPM:
                raise OSError("bad option reply")
            if t == REP_ACK:
                break
            if t & 0x80000000:
                raise OSError("GO refused (%#x): %s" % (t, body[4:].decode(errors="replace")))
        s.settimeout(120)
        return s
    except Exception:
        s.close()
        raise


def write(s, handle, off, data):
    """Send one FUA write; the reply's error (0: acknowledged)."""
    s.sendall(struct.pack(">IHHQQI", REQ, FLAG_FUA, CMD_WRITE, handle, off, len(data)) + data)
    m, err, h = struct.unpack(">IIQ", recvn(s, 16))
    if m != SIMPLE or h != handle:
        raise OSError("bad reply")
    return err


class Writer:
    def __init__(self):
        self.cur = 0
        self.s = None
        self.handle = 0
        self.t_lost = None

    def drop(self):
        """This gateway is gone or sick: close, move to the next port."""
        if self.t_lost is None:
            self.t_lost = time.time()
        if self.s is not None:
            self.s.close()
        self.s = None
        self.cur = (self.cur + 1) % len(ports)
        time.sleep(0.3)

    def attach(self):
        port = ports[self.cur]
        try:
            self.s = connect(port)
        except OSError as e:
            note("n.log", "connect %d: %s" % (port, e))
            self.drop()
            return
        note("n.attached", str(port))
        if self.t_lost is not None:
            note("n.reconnects", "%d %.1f" % (port, time.time() - self.t_lost))
            self.t_lost = None

    def put(self, off, data):
        """Write until acknowledged (True) or 120 s passed (False)."""
        t0 = time.time()
        while time.time() - t0 < 120:
            if self.s is None:
                self.attach()
                continue
            port = ports[self.cur]
            try:
                self.handle += 1
                err = write(self.s, self.handle, off, data)
                if err == 0:
                    return True
                note("n.log", "write %d+%d on %d: error %d" % (off, len(data), port, err))
            except (OSError, EOFError) as e:
                note("n.log", "write %d+%d on %d: %s" % (off, len(data), port, e))
            self.drop()
        return False

    def close(self):
        if self.s is None:
            return
        try:
            self.s.sendall(struct.pack(">IHHQQI", REQ, 0, CMD_DISC, 0, 0, 0))
        except OSError:
            pass
        self.s.close()


def main():
    rnd = random.Random(os.getpid() ^ int(time.time()))
    w = Writer()
    while not os.path.exists(os.path.join(sdir, "stop")):
        ln = rnd.randint(1, 16) * 4096
        off = rnd.randrange(0, (size - ln) // 4096 + 1) * 4096
        data = os.urandom(ln)
        if w.put(off, data):
            with open(ref, "r+b") as f:
                f.seek(off)
                f.write(data)
            note("n.acked", "x")
        else:
            note("n.unknown", "%d %d" % (off, ln))
    w.close()


if __name__ == "__main__":
    main()
