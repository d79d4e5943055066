#!/usr/bin/env python3
# pl_rollback.py - the "power off" of the power-loss tests: undo every write plshim.so logged that no sync covered, newest first, then drop the undo logs.
"""Usage: pl_rollback.py UNDO_DIR ROOT

UNDO_DIR holds undo.<pid> files written by plshim.so (record format in
plshim.c); ROOT is the directory the shim watched. Run only after every
process that wrote them is dead. For each file (device, inode), the
writes logged after the last sync that covered them are undone in
reverse order: the old bytes are written back and the file is truncated
to its old size. Prints how many writes were forgotten."""
import os
import struct
import sys

REC = struct.Struct("<IIQQQQQ")
MAGIC = 0x4C50554E
PL_WRITE, PL_SYNC, PL_SYNCALL = 1, 2, 3


def load(path):
    """The records of one undo log, in order: (index, type, dev, ino, off, old, old_size)."""
    recs = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + REC.size <= len(data):
        magic, typ, dev, ino, off, ln, old_size = REC.unpack_from(data, pos)
        if magic != MAGIC:
            break
        pos += REC.size
        old = b""
        if typ == PL_WRITE:
            if pos + ln > len(data):
                break  # torn last record: its write never began
            old = data[pos:pos + ln]
            pos += ln
        recs.append((len(recs), typ, dev, ino, off, old, old_size))
    return recs


def main():
    undo_dir, root = sys.argv[1], sys.argv[2]
    paths = {}
    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            paths[(st.st_dev, st.st_ino)] = p
    forgotten = 0
    for name in sorted(os.listdir(undo_dir)):
        if not name.startswith("undo."):
            continue
        log = os.path.join(undo_dir, name)
        recs = load(log)
        # Per file: the index below which its writes are durable.
        durable = {}
        all_before = 0
        for idx, typ, dev, ino, off, old, old_size in recs:
            if typ == PL_SYNC:
                durable[(dev, ino)] = max(durable.get((dev, ino), 0), off)
            elif typ == PL_SYNCALL:
                all_before = max(all_before, off)
        for idx, typ, dev, ino, off, old, old_size in reversed(recs):
            if typ != PL_WRITE:
                continue
            if idx < max(durable.get((dev, ino), 0), all_before):
                continue
            p = paths.get((dev, ino))
            if p is None:
                continue  # the file is gone (unlinked): nothing to forget
            fd = os.open(p, os.O_WRONLY)
            try:
                if old:
                    os.pwrite(fd, old, off)
                os.ftruncate(fd, old_size)
            finally:
                os.close(fd)
            forgotten += 1
        os.unlink(log)
    print("pl_rollback: %d unsynced write(s) forgotten" % forgotten)


if __name__ == "__main__":
    main()
