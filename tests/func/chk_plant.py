#!/usr/bin/env python3
# chk_plant.py - plants damage in a fragment file of a sheep's store (tests 114, 115): a flipped byte (the block checksum then fails) or, with --silent, a flipped byte whose block checksum is rewritten to match (only a parity or replica comparison finds it).
import struct, sys

BLK = 4096
HDR_AREA = 4096

def crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t

TAB = crc32c_table()

def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = TAB[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF

def main():
    args = sys.argv[1:]
    silent = "--silent" in args
    args = [a for a in args if a != "--silent"]
    path, off = args[0], int(args[1])
    with open(path, "r+b") as f:
        hdr = f.read(128)
        # struct store_frag_hdr (sheep/store/store_priv.h)
        frag_size = struct.unpack_from("<I", hdr, 28)[0]
        data_off = struct.unpack_from("<Q", hdr, 48)[0]
        if off >= frag_size:
            sys.exit("offset %d past the fragment (%d bytes)" % (off, frag_size))
        f.seek(data_off + off)
        b = f.read(1)[0]
        f.seek(data_off + off)
        f.write(bytes([b ^ 0x5A]))
        if silent:
            blk = off // BLK
            f.seek(data_off + blk * BLK)
            block = f.read(BLK).ljust(BLK, b"\0")
            c = crc32c(block) ^ crc32c(b"\0" * BLK)
            f.seek(HDR_AREA + blk * 4)
            f.write(struct.pack("<I", c))
    print("planted at %s+%d%s" % (path, off, " (checksum rewritten)" if silent else ""))

main()
