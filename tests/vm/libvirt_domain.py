#!/usr/bin/env python3
"""libvirt_domain.py - turn contrib/libvirt/vm1.xml into the domain the VM test boots: libvirt_domain.py IN OUT PORT KERNEL INITRD CMDLINE CONSOLE [EXPORT] (TCG, direct kernel boot, serial to a file, no network; the disk element as shipped, only its port and export name changed)."""
import sys
import xml.etree.ElementTree as ET


def main():
    src, out, port, kernel, initrd, cmdline, console = sys.argv[1:8]
    export = sys.argv[8] if len(sys.argv) > 8 else None
    tree = ET.parse(src)
    dom = tree.getroot()
    dom.set("type", "qemu")  # no /dev/kvm here: TCG
    mem = dom.find("memory")
    mem.set("unit", "MiB")
    mem.text = "160"
    os_el = dom.find("os")
    for tag, text in (("kernel", kernel), ("initrd", initrd), ("cmdline", cmdline)):
        el = ET.SubElement(os_el, tag)
        el.text = text
    devs = dom.find("devices")
    disks = devs.findall("disk")
    if len(disks) != 1:
        sys.exit("expected one disk in %s" % src)
    source = disks[0].find("source")
    if source.get("protocol") != "nbd":
        sys.exit("the disk is not NBD")
    if export:
        source.set("name", export)
    source.find("host").set("port", port)
    for tag in ("interface", "serial", "console"):
        for el in devs.findall(tag):
            devs.remove(el)
    serial = ET.SubElement(devs, "serial", type="file")
    ET.SubElement(serial, "source", path=console)
    ET.SubElement(serial, "target", port="0")
    tree.write(out)


if __name__ == "__main__":
    main()
