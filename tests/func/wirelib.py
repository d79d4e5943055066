# wirelib.py - what the test clients of the Sheepdog 1.0 and NBD protocols share: exact reads and one Sheepdog request/reply.
import struct

_rid = 0


def recvn(s, n):
    """Read exactly n bytes from socket s; EOFError if it closes first."""
    b = bytearray()
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += c
    return bytes(b)


def sd1_call(s, op, flags, dlen, rest, payload=b"", proto=1, epoch=0):
    """Send one Sheepdog 1.0 request (48-byte header: proto, opcode, flags,
    epoch, id, data_length, 32 opcode-specific bytes) and read its reply.
    Returns (result, 48-byte reply header, reply payload)."""
    global _rid
    _rid += 1
    rest = rest.ljust(32, b"\0")[:32]
    s.sendall(struct.pack("<BBHIII", proto, op, flags, epoch, _rid, dlen) + rest + payload)
    h = recvn(s, 48)
    rlen, result = struct.unpack("<II", h[12:20])
    return result, h, recvn(s, rlen) if rlen else b""
