#!/usr/bin/env python3
# snap_sd1client.py - a Sheepdog 1.0 protocol client doing what QEMU's sheepdog driver does for snapshots (savevm / qemu-img snapshot -c): tag written into the inode, NEW_VDI with snapid and base_vdi_id, GET_VDI_INFO by tag, reads through data_vdi_id, copy-on-write with CREATE_AND_WRITE_OBJ + COW flag + cow_oid.
#
# Usage: snap_sd1client.py PORT VDI TAG OUTFILE
# Takes snapshot TAG of VDI, writes the snapshot's bytes (as read through its
# inode) to OUTFILE, checks that a write to the snapshot is refused
# (READONLY), then writes 4 KiB into object 0 of the working VDI by
# copy-on-write and checks the working VDI and the snapshot read what they
# should. Prints one line per failure; exit 0 when all held.
import hashlib, socket, struct, sys

from wirelib import sd1_call

port, vdi, tag, outfile = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
HDR = 4664
OP_CREATE_AND_WRITE, OP_READ, OP_WRITE = 0x01, 0x02, 0x03
OP_NEW_VDI, OP_GET_VDI_INFO = 0x11, 0x14
F_WRITE, F_COW = 0x01, 0x02
RES_SUCCESS, RES_READONLY = 0x00, 0x1a
fails = []

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.settimeout(30)
    return s

def obj_rest(oid, offset, cow=0):
    return struct.pack("<QQBBBBII", oid, cow, 0, 0, 0, 0, 0, offset)

def vdi_rest(base=0, snapid=0):
    return struct.pack("<QIBBBBII", 0, base, 0, 0, 0, 0, snapid, 0)

def vdi_oid(vid):
    return (1 << 63) | (vid << 32)

def data_oid(vid, idx):
    return (vid << 32) | idx

def name_payload(name, tag=""):
    return name.encode().ljust(256, b"\0") + tag.encode().ljust(256, b"\0")

def get_vdi(s, name, tag="", snapid=0):
    p = name_payload(name, tag)
    r, h, _ = sd1_call(s, OP_GET_VDI_INFO, F_WRITE, len(p), vdi_rest(0, snapid), p)
    return r, struct.unpack("<I", h[24:28])[0]

def read(s, oid, length, off):
    r, _, d = sd1_call(s, OP_READ, 0, length, obj_rest(oid, off))
    return r, d

def write(s, oid, data, off, create=False, cow=0):
    op = OP_CREATE_AND_WRITE if create else OP_WRITE
    flags = F_WRITE | (F_COW if cow else 0)
    r, _, _ = sd1_call(s, op, flags, len(data), obj_rest(oid, off, cow), data)
    return r

def read_vdi(s, vid):
    r, hdr = read(s, vdi_oid(vid), HDR, 0)
    if r != RES_SUCCESS:
        raise RuntimeError("inode of %x: result %#x" % (vid, r))
    size = struct.unpack("<Q", hdr[536:544])[0]
    shift = hdr[555] or 22
    osz = 1 << shift
    nr = (size + osz - 1) // osz
    r, m = read(s, vdi_oid(vid), 4 * nr, HDR)
    ids = struct.unpack("<%dI" % nr, m)
    out = bytearray()
    for idx, owner in enumerate(ids):
        if owner == 0:
            out += b"\0" * osz
            continue
        r, d = read(s, data_oid(owner, idx), osz, 0)
        if r != RES_SUCCESS:
            raise RuntimeError("object %x:%d: result %#x" % (owner, idx, r))
        out += d
    return hdr, ids, bytes(out[:size])

s = conn()
r, vid = get_vdi(s, vdi)
if r != RES_SUCCESS:
    sys.exit("GET_VDI_INFO %s: result %#x" % (vdi, r))
hdr, ids, before = read_vdi(s, vid)
# QEMU: the tag goes into the working VDI's inode header, then NEW_VDI.
hdr = bytearray(hdr)
hdr[256:512] = tag.encode().ljust(256, b"\0")
r = write(s, vdi_oid(vid), bytes(hdr), 0)
if r != RES_SUCCESS:
    fails.append("writing the tag into the inode: %#x" % r)
p = name_payload(vdi)
r, h, _ = sd1_call(s, OP_NEW_VDI, F_WRITE, len(p), vdi_rest(vid, 1), p)
new_vid = struct.unpack("<I", h[24:28])[0]
if r != RES_SUCCESS or new_vid == vid:
    fails.append("NEW_VDI snapshot: result %#x, new vid %x" % (r, new_vid))
r, snap_vid = get_vdi(s, vdi, tag)
if r != RES_SUCCESS or snap_vid != vid:
    fails.append("GET_VDI_INFO by tag: %#x, vid %x (wanted %x)" % (r, snap_vid, vid))
r, cur = get_vdi(s, vdi)
if cur != new_vid:
    fails.append("the working VDI is %x, NEW_VDI said %x" % (cur, new_vid))
shdr, sids, snap = read_vdi(s, snap_vid)
if struct.unpack("<Q", shdr[520:528])[0] == 0:
    fails.append("the snapshot's inode has no snap_ctime")
if shdr[256:256 + len(tag)] != tag.encode():
    fails.append("the snapshot's inode lost its tag")
if snap != before:
    fails.append("the snapshot does not read what the VDI held")
with open(outfile, "wb") as f:
    f.write(snap)
nhdr, nids, _ = read_vdi(s, new_vid)
if struct.unpack("<I", nhdr[564:568])[0] != vid:
    fails.append("the new working VDI's parent_vdi_id is not the snapshot")
if list(nids) != list(sids):
    fails.append("the new working VDI does not map the snapshot's objects")
# A write to the snapshot is refused and changes nothing.
if sids[0]:
    r = write(s, data_oid(sids[0], 0), b"x" * 4096, 0)
    if r != RES_READONLY:
        fails.append("write to a snapshot object: %#x, wanted READONLY" % r)
r = write(s, vdi_oid(snap_vid), b"\1\0\0\0", HDR)
if r != RES_READONLY:
    fails.append("write to a snapshot's object map: %#x, wanted READONLY" % r)
# Copy-on-write of object 0 into the working VDI, as QEMU does it.
osz = 1 << (nhdr[555] or 22)
new = bytes(range(256)) * 16
r = write(s, data_oid(new_vid, 0), new, 8192, create=True,
          cow=data_oid(sids[0], 0) if sids[0] else 0)
if r != RES_SUCCESS:
    fails.append("CREATE_AND_WRITE with COW: %#x" % r)
r = write(s, vdi_oid(new_vid), struct.pack("<I", new_vid), HDR)
if r != RES_SUCCESS:
    fails.append("inode entry update: %#x" % r)
_, _, live = read_vdi(s, new_vid)
want = bytearray(snap)
want[8192:8192 + 4096] = new
if live != bytes(want):
    fails.append("the working VDI after copy-on-write does not read snapshot + write")
_, _, snap2 = read_vdi(s, snap_vid)
if snap2 != snap:
    fails.append("the snapshot changed after the working VDI's write")
for f in fails:
    print(f)
print("snapshot sha256 %s" % hashlib.sha256(snap).hexdigest())
sys.exit(1 if fails else 0)
