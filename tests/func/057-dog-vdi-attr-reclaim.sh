#!/usr/bin/env bash
# 057-dog-vdi-attr-reclaim.sh - dog vdi delete removes the VDI's attribute objects (vdi setattr) from every store, and only that VDI's: counted as files in each sheep's obj/ directory; the other VDI's attributes still read back; a 2:1 and a 2-copy VDI.
# timeout: 180
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

# attr_files VID: attribute object files of VID (oid 0x20<vid>...) in every store
attr_files() { find "$SD_TEST_DIR"/n*/obj -maxdepth 1 -type f -name "20$1*" | wc -l; }
vid_of() { python3 -c 'import sys
h = 0xcbf29ce484222325
for c in sys.argv[1].encode(): h = ((h ^ c) * 0x100000001b3) & (2**64 - 1)
print("%06x" % ((h & 0xffffff) or 1))' "$1"; }

sd_start_cluster 3 || bail "three sheep did not form a cluster"
dogn 0 cluster format -R -c 2 >/dev/null || bail "format -R (a re-created VDI takes its old id)"
check "create a (2 copies)" dogn 0 vdi create a 16M
check "create b (2:1)" dogn 1 vdi create -c 2:1 b 16M
va=$(vid_of a) vb=$(vid_of b)
sd_random "$SD_TEST_DIR/v" 4096
for k in 1 2 3 4 5; do
	dogn $((k % 3)) vdi setattr a "key$k" "a-value-$k" || not_ok "setattr a key$k"
	dogn $((k % 3)) vdi setattr b "key$k" <"$SD_TEST_DIR/v" || not_ok "setattr b key$k"
done
# Attribute objects are full copies as the inode: 2 each here.
check_eq "a's 5 attributes: 10 files (2 copies each)" 10 "$(attr_files "$va")"
check "b's 5 attributes are on disk" test "$(attr_files "$vb")" -ge 5
nb=$(attr_files "$vb")
sd_random "$SD_TEST_DIR/d" $((4 << 20))
dogn 0 vdi write a 0 $((4 << 20)) <"$SD_TEST_DIR/d" || not_ok "write a"

check "delete a" dogn 1 vdi delete a
check_eq "a's attribute objects are gone from every store" 0 "$(attr_files "$va")"
check_eq "b's are all still there" "$nb" "$(attr_files "$vb")"
check_eq "b's attribute still reads back" "$(sd_sha "$SD_TEST_DIR/v")" \
	"$(dogn 2 vdi getattr b key3 | sha256sum | cut -d' ' -f1)"
check_eq "no file of a is left (data, inode, attributes)" 0 \
	"$(find "$SD_TEST_DIR"/n*/obj -maxdepth 1 -type f -name "*$va*" | wc -l)"

# A new a (same name, same id: -R) has no attribute of the old one.
check "create a again" dogn 0 vdi create a 16M
dogn 0 vdi getattr a key1 2>/dev/null
check_eq "the old a's attribute is not found: exit 5" 5 "$?"

check "delete b" dogn 0 vdi delete b
check_eq "b's attribute objects are gone" 0 "$(attr_files "$vb")"
sd_done
