#!/usr/bin/env python3
# dashboard_check.py - compare what the sheep dashboard shows (the DOM headless chromium dumped) with dog's JSON; exit 0 when they agree.
#
# Usage: dashboard_check.py DOM_FILE NODE_LIST.json NODE_INFO.json VDI_LIST.json CLUSTER_INFO.json
# Prints one line per disagreement on stderr.
import json
import sys
from html.parser import HTMLParser


def size_str(b):
    units = ["MB", "GB", "TB", "PB", "EB"]
    v = b / (1024.0 * 1024.0)
    u = 0
    while v >= 1024.0 and u + 1 < len(units):
        v /= 1024.0
        u += 1
    return ("%.1f %s" if v < 10.0 else "%.0f %s") % (v, units[u])


class Dom(HTMLParser):
    """Collect element texts by id, and the rows of the three tables."""

    def __init__(self):
        super().__init__()
        self.by_id = {}
        self.stack = []  # (tag, id) of open elements
        self.table = None
        self.rows = {"nodes": [], "vdis": [], "recovery": []}
        self.row = None
        self.cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("meta", "br", "input", "link"):
            return
        self.stack.append((tag, a.get("id")))
        if a.get("id"):
            self.by_id[a["id"]] = ""
        if tag == "table":
            self.table = a.get("id")
        if tag == "tr" and self.table in self.rows and "data-port" in a or \
                tag == "tr" and self.table == "vdis" and "data-name" in a:
            self.row = {"attrs": a, "cells": {}}
        if tag == "td" and self.row is not None:
            self.cell = a.get("data-k")
            self.row["cells"][self.cell] = ""

    def handle_endtag(self, tag):
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break
        if tag == "td":
            self.cell = None
        if tag == "tr" and self.row is not None:
            self.rows[self.table].append(self.row)
            self.row = None
        if tag == "table":
            self.table = None

    def handle_data(self, data):
        for t, i in self.stack:
            if i:
                self.by_id[i] += data
        if self.row is not None and self.cell:
            self.row["cells"][self.cell] += data


def main():
    dom = Dom()
    dom.feed(open(sys.argv[1]).read())
    nl, ni, vl, ci = (json.load(open(p)) for p in sys.argv[2:6])
    bad = []

    def eq(what, want, got):
        if str(want) != str(got).strip():
            bad.append("%s: dog says %r, dashboard shows %r" % (what, want, got))

    eq("status", ci["status"], dom.by_id.get("status"))
    eq("epoch", ci["epoch"], dom.by_id.get("epoch"))
    eq("policy", ci["policy"], dom.by_id.get("policy"))
    eq("zones", ci["nr_zones"], dom.by_id.get("nr-zones"))
    eq("node count", len(nl["nodes"]), dom.by_id.get("nr-nodes"))
    eq("recovery", "enabled" if ci["recovery_enabled"] else "disabled",
       dom.by_id.get("recovery-enabled"))
    rows = {int(r["attrs"]["data-port"]): r for r in dom.rows["nodes"]}
    eq("node rows", sorted(n["port"] for n in nl["nodes"]), sorted(rows))
    info = {n["id"]: n for n in ni["nodes"]}
    for n in nl["nodes"]:
        r = rows.get(n["port"])
        if not r:
            continue
        c = r["cells"]
        eq("node %d zone" % n["id"], n["zone"], c.get("zone"))
        eq("node %d vnodes" % n["id"], n["vnodes"], c.get("vnodes"))
        eq("node %d address" % n["id"], n["addr"], c.get("addr"))
        eq("node %d size" % n["id"], size_str(info[n["id"]]["size"]), c.get("size"))
        eq("node %d size bytes" % n["id"], info[n["id"]]["size"], r["attrs"].get("data-size"))
        eq("node %d used" % n["id"], size_str(info[n["id"]]["used"]), c.get("used"))
    eq("total size", size_str(ni["total"]["size"]), dom.by_id.get("total-size"))
    eq("total VDI size", size_str(ni["total_vdi_size"]), dom.by_id.get("total-vdi-size"))
    vrows = {r["attrs"]["data-name"]: r for r in dom.rows["vdis"]}
    eq("VDI rows", sorted(v["name"] for v in vl["vdis"]), sorted(vrows))
    for v in vl["vdis"]:
        r = vrows.get(v["name"])
        if not r:
            continue
        c = r["cells"]
        eq("VDI %s policy" % v["name"], v["policy"], c.get("policy"))
        eq("VDI %s size" % v["name"], size_str(v["size"]), c.get("size"))
        eq("VDI %s used" % v["name"], size_str(v["used"]), c.get("used"))
        eq("VDI %s used bytes" % v["name"], v["used"], r["attrs"].get("data-used"))
        eq("VDI %s id" % v["name"], "%x" % v["vdi_id"], c.get("vid"))
    rrows = {int(r["attrs"]["data-port"]): r for r in dom.rows["recovery"]}
    eq("recovery rows", sorted(n["port"] for n in nl["nodes"]), sorted(rrows))
    for b in bad:
        print(b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
