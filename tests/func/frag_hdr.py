#!/usr/bin/env python3
# frag_hdr.py - prints the header of fragment files of a sheep store (test 035): "IDX VERSION LC d0 d1 ..." per file given, from struct store_frag_hdr (sheep/store/store_priv.h): the fragment's version and its record of last-changed versions (lc_valid, lc_delta).
import struct, sys

for path in sys.argv[1:]:
    with open(path, "rb") as f:
        hdr = f.read(128)
    idx = hdr[24]
    lc_valid = hdr[27]
    version = struct.unpack_from("<Q", hdr, 32)[0]
    deltas = list(hdr[94:110])
    print(idx, version, lc_valid, " ".join(str(d) for d in deltas))
