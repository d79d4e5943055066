#!/usr/bin/env python3
# dog_json_cmp.py - parse a dog --json document with the json module and draw the table dog prints from it; exit 0 when the two agree byte for byte.
#
# Usage: dog_json_cmp.py KIND JSON_FILE TABLE_FILE
#   KIND: vdi-list, node-list, node-info, cluster-info, node-recovery
# Prints the first difference on stderr. The table layouts are those of
# REFERENCE.md (Sheepdog 1.0's dog), written here independently of dog's C.
import json
import sys
import time


def size_str(b):
    units = ["MB", "GB", "TB", "PB", "EB"]
    v = b / (1024.0 * 1024.0)
    u = 0
    while v >= 1024.0 and u + 1 < len(units):
        v /= 1024.0
        u += 1
    return ("%.1f %s" if v < 10.0 else "%.0f %s") % (v, units[u])


def vdi_list(doc):
    out = ["  Name        Id    Size    Used  Shared    Creation time   VDI id  Copies"
           "  Tag   Block Size Shift"]
    types = {"working": " ", "snapshot": "s", "clone": "c"}
    for v in doc["vdis"]:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(v["ctime"]))
        out.append("%c %-8s %5d %7s %7s %7s %s  %7x %6s %13s %3u" % (
            types[v["type"]], v["name"], v["snap_id"], size_str(v["size"]),
            size_str(v["used"]), size_str(v["shared"]), when, v["vdi_id"],
            v["policy"], v["tag"], v["block_size_shift"]))
    return out


def node_list(doc):
    out = ["  Id   Host:Port         V-Nodes       Zone"]
    for n in doc["nodes"]:
        assert n["addr"] == "%s:%d" % (n["host"], n["port"]), n
        out.append("%4d   %-20s\t%2d%11u" % (n["id"], n["addr"], n["vnodes"], n["zone"]))
    return out


def info_row(label, r):
    assert r["avail"] == max(r["size"] - r["used"], 0), r
    assert r["use_percent"] == (r["used"] * 100 // r["size"] if r["size"] else 0), r
    return "%2s\t%s\t%s\t%s\t%3d%%" % (label, size_str(r["size"]), size_str(r["used"]),
                                      size_str(r["avail"]), r["use_percent"])


def node_info(doc):
    out = ["Id\tSize\tUsed\tAvail\tUse%"]
    for n in doc["nodes"]:
        out.append(info_row(str(n["id"]), n))
    t = doc["total"]
    assert t["size"] == sum(n["size"] for n in doc["nodes"]), "total size is not the sum"
    assert t["used"] == sum(n["used"] for n in doc["nodes"]), "total used is not the sum"
    out.append(info_row("Total", t))
    out += ["", "Total virtual image size\t%s" % size_str(doc["total_vdi_size"])]
    return out


def cluster_info(doc):
    st = doc["status"]
    if st == "running":
        st += ", auto-recovery %s" % ("enabled" if doc["recovery_enabled"] else "disabled")
    out = ["Cluster status: " + st]
    if doc.get("ctime"):
        out += ["", "Cluster created at " +
                time.strftime("%a %b %e %H:%M:%S %Y", time.localtime(doc["ctime"])), "",
                "Epoch Time           Version [Host:Port:V-Nodes,,,]"]
    for e in doc["epochs"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"]))
        nodes = ", ".join("%s:%d" % (n["addr"], n["vnodes"]) for n in e["nodes"])
        out.append("%s %6u [%s]" % (when, e["epoch"], nodes))
    return out


def node_recovery(doc):
    out = ["Nodes In Recovery:",
           "  Id   Host:Port         V-Nodes       Zone       Progress"]
    for n in doc["nodes"]:
        if n["recovering"]:
            out.append("%4u   %-20s\t%2d%11u%14.1f%%" % (n["id"], n["addr"], n["vnodes"],
                                                     n["zone"], n["progress"]))
    # Each node's note ("best possible redundancy ...") goes to stderr, as
    # Sheepdog's wait loops read stdout only; the JSON keeps it in "message".
    return out


def main():
    kind, jpath, tpath = sys.argv[1:4]
    with open(jpath) as f:
        doc = json.load(f)
    with open(tpath) as f:
        table = f.read().split("\n")
    if table and table[-1] == "":
        table.pop()
    want = {"vdi-list": vdi_list, "node-list": node_list, "node-info": node_info,
            "cluster-info": cluster_info, "node-recovery": node_recovery}[kind](doc)
    for i in range(max(len(want), len(table))):
        w = want[i] if i < len(want) else "<none>"
        g = table[i] if i < len(table) else "<none>"
        if w != g:
            print("line %d: from JSON %r, dog printed %r" % (i + 1, w, g), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
