#!/usr/bin/env bash
# 066-nbd-block-status.sh - structured replies and BLOCK_STATUS base:allocation: qemu-img map, nbdinfo --map, nbdcopy and qemu-img convert of a 10 GiB thin VDI read only what was written; old clients keep simple replies.
# timeout: 600
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need python3 qemu-img qemu-io nbdcopy nbdinfo curl
MiB=$((1 << 20)) GiB=$((1 << 30))
hp() { echo $((SD_PORT_BASE + 80 + $1)); }
metric() { curl -sf "http://127.0.0.1:$(hp "$1")/metrics" | awk -v k="$2" '$1 == k { print $2 }'; }
nbd_read_bytes() { metric "$1" 'sheep_nbd_bytes_total{op="read"}'; }
raw() { python3 "$SD_TOP/tests/func/nbd_structured.py" 127.0.0.1 "$(sd_nbd_port 0)" "$@"; }

for i in 0 1 2; do sd_start "$i" --http "$(hp "$i")" || bail "sheep $i"; done
sd_wait_nodes 0 3 || bail "three sheep"
dogn 0 cluster format -c 2:1 >/dev/null || bail "format 2:1"
dogn 0 vdi create thin 10G >/dev/null || bail "vdi create thin 10G"
nbd_wait_nbd 0 || bail "no NBD on sheep 0"
uri=$(nbd_uri 0 thin)

# 100 MiB written in three places: 36 MiB object-aligned at 1 GiB, 60 MiB
# unaligned at 5 GiB + 2 MiB (16 objects touched), the last 4 MiB object.
# The same bytes go into a sparse local file, the reference.
exp=$SD_TEST_DIR/expected.raw
truncate -s 10G "$exp"
w1=$GiB w2=$((5 * GiB + 2 * MiB)) w3=$((10 * GiB - 4 * MiB))
qemu-io -f raw -c "write -P 0x11 $w1 36M" -c "write -P 0x22 $w2 60M" \
	-c "write -P 0x33 $w3 4M" "$uri" >/dev/null || bail "qemu-io writes"
python3 - "$exp" "$w1" "$w2" "$w3" <<'PY' || bail "reference file"
import sys
f = open(sys.argv[1], "r+b")
for off, pat, n in ((int(sys.argv[2]), 0x11, 36), (int(sys.argv[3]), 0x22, 60), (int(sys.argv[4]), 0x33, 4)):
    f.seek(off); f.write(bytes([pat]) * (n << 20))
PY
# sha256 of the written objects' bytes (cheap), plus qemu-img compare for
# the whole 10 GiB (sparse-aware: it reads what either side stores).
region_sha() {
	python3 - "$1" "$w1" "$w2" "$w3" <<'PY'
import hashlib, sys
h, f = hashlib.sha256(), open(sys.argv[1], "rb")
M = 1 << 20
for off, n in ((int(sys.argv[2]), 36 * M), (int(sys.argv[3]) - 2 * M, 64 * M), (int(sys.argv[4]), 4 * M)):
    f.seek(off); h.update(f.read(n))
print(h.hexdigest())
PY
}
same() { qemu-img compare -q -f raw -F raw "$1" "$2"; }
want=$(region_sha "$exp")

# The allocation, object by object (4 MiB): [1G, 1G+36M), [5G, 5G+64M), [10G-4M, 10G).
want_map="$GiB $((36 * MiB)) $((5 * GiB)) $((64 * MiB)) $w3 $((4 * MiB))"
got_map=$(qemu-img map --output=json -f raw "$uri" | python3 -c '
import json, sys
print(" ".join("%d %d" % (e["start"], e["length"]) for e in json.load(sys.stdin) if e["data"]))')
check_eq "qemu-img map: data exactly where objects were written" "$want_map" "$got_map"
got_map=$(nbdinfo --map "$uri" | awk '$3 == 0 { printf "%s%s %s", sep, $1, $2; sep = " " }')
check_eq "nbdinfo --map: allocated extents (type 0), the rest hole,zero" "$want_map" "$got_map"
check "nbdinfo --map: the unwritten rest is reported as hole,zero" \
	bash -c "nbdinfo --map '$uri' | grep -q 'hole,zero'"
got_map=$(raw thin map 0 $((10 * GiB)) | awk 'NR > 1 { if ($2 == 0) printf "%s%.0f %.0f", sep, off, $1; sep = (($2 == 0) ? " " : sep); off += $1 }')
check_eq "raw client BLOCK_STATUS walk of the whole VDI agrees" "$want_map" "$got_map"
out=$(raw thin map $((w2 + 1000)) 4096)
check_eq "BLOCK_STATUS of 4 KiB inside an object: one extent of 4096, allocated" "ok: 1 extents
4096 0" "$out"

# Raw protocol: structured replies only when asked for; rules of meta contexts.
sha_obj=$(python3 -c 'import hashlib,sys; f=open(sys.argv[1],"rb"); f.seek(5 << 30); print(hashlib.sha256(f.read(4 << 20)).hexdigest())' "$exp")
check "$(raw thin simple $((5 * GiB)) $((4 * MiB)) "$sha_obj")" raw thin simple $((5 * GiB)) $((4 * MiB)) "$sha_obj"
check "$(raw thin structured $((5 * GiB)) $((4 * MiB)) "$sha_obj")" raw thin structured $((5 * GiB)) $((4 * MiB)) "$sha_obj"
check "$(raw thin negotiation)" raw thin negotiation

# nbdcopy with extents reads only the allocated objects (server-side count),
# and the copy is byte-identical.
r0=$(nbd_read_bytes 0)
t0=$(date +%s.%N)
check "nbdcopy VDI -> file" nbdcopy "$uri" "$SD_TEST_DIR/copy.raw"
t1=$(date +%s.%N)
r1=$(nbd_read_bytes 0)
check_eq "nbdcopy copy: sha256 of the written objects" "$want" "$(region_sha "$SD_TEST_DIR/copy.raw")"
check "nbdcopy copy: qemu-img compare with the reference (all 10 GiB)" same "$SD_TEST_DIR/copy.raw" "$exp"
check "nbdcopy read at most the 104 MiB of allocated objects from sheep 0 ($((r1 - r0)) bytes)" \
	test $((r1 - r0)) -le $((104 * MiB))
rm -f "$SD_TEST_DIR/copy.raw"
check "nbdcopy --no-extents VDI -> file (reads every zero)" nbdcopy --no-extents "$uri" "$SD_TEST_DIR/copy.raw"
t2=$(date +%s.%N)
r2=$(nbd_read_bytes 0)
check_eq "nbdcopy --no-extents copy: sha256 of the written objects" "$want" "$(region_sha "$SD_TEST_DIR/copy.raw")"
check "nbdcopy --no-extents copy: qemu-img compare with the reference" same "$SD_TEST_DIR/copy.raw" "$exp"
check "nbdcopy --no-extents read the whole 10 GiB ($((r2 - r1)) bytes)" test $((r2 - r1)) -ge $((10 * GiB))
rm -f "$SD_TEST_DIR/copy.raw"

t3=$(date +%s.%N)
check "qemu-img convert VDI -> raw file" qemu-img convert -f raw -O raw "$uri" "$SD_TEST_DIR/conv.raw"
t4=$(date +%s.%N)
r4=$(nbd_read_bytes 0)
check "qemu-img convert read at most the allocated objects ($((r4 - r2)) bytes)" \
	test $((r4 - r2)) -le $((104 * MiB))
check "qemu-img compare: converted file = reference" same "$SD_TEST_DIR/conv.raw" "$exp"
check_eq "qemu-img convert: sha256 of the written objects" "$want" "$(region_sha "$SD_TEST_DIR/conv.raw")"
check "qemu-img compare: VDI = reference" same "$uri" "$exp"
log "$(awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" 'BEGIN {
	printf "10 GiB VDI, 100 MiB written: nbdcopy %.2f s, nbdcopy --no-extents %.2f s (%.0fx), qemu-img convert %.2f s", b - a, c - b, (c - b) / (b - a), e - d }') (load: $(cut -d' ' -f1-3 /proc/loadavg))"
rm -f "$SD_TEST_DIR/conv.raw" "$exp"
for i in 0 1 2; do check "sheep $i still running" sd_alive $i; done
sd_done
