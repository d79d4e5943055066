#!/usr/bin/env bash
# 061-nbd-qemu-io.sh - qemu-io write/read patterns with -P verification, aligned and unaligned, zero and discard, 4:2 and -c 3 VDIs.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need qemu-io

nbd_cluster 6 4:2
dogn 0 vdi create ec 32M >/dev/null || bail "vdi create ec"
dogn 0 vdi create rep 32M -c 3 >/dev/null || bail "vdi create rep -c 3"
nbd_wait_nbd 5 || bail "no NBD on sheep 5"

M=$((1024 * 1024))
for vol in ec rep; do
	u=$(nbd_uri 1 "$vol")
	# Patterns: aligned, unaligned, straddling the 4 MiB object boundary.
	check "$vol: write patterns" qemu-io -f raw \
		-c "write -P 0x11 0 64k" \
		-c "write -P 0x22 4095 3" \
		-c "write -P 0x33 $((4 * M - 1000)) 5000" \
		-c "write -P 0x44 $((9 * M + 17)) $((2 * M + 333))" \
		-c "write -P 0x66 $((13 * M)) $((M + 5))" \
		-c "write -P 0x55 $((32 * M - 512)) 512" "$u"
	# Read back through another sheep and a fresh connection.
	check "$vol: read patterns back (-P) on another sheep" qemu-io -f raw -r \
		-c "read -P 0x11 0 4095" \
		-c "read -P 0x22 4095 3" \
		-c "read -P 0x11 4098 $((64 * 1024 - 4098))" \
		-c "read -P 0 $((64 * 1024)) $((4 * M - 1000 - 64 * 1024))" \
		-c "read -P 0x33 $((4 * M - 1000)) 5000" \
		-c "read -P 0 $((4 * M + 4000)) 1000" \
		-c "read -P 0x44 $((9 * M + 17)) $((2 * M + 333))" \
		-c "read -P 0x55 $((32 * M - 512)) 512" "$(nbd_uri 4 "$vol:ro")"
	# Zeroes and discard, then verify.
	check "$vol: write -z and discard" qemu-io -f raw \
		-c "write -z $((4 * M - 500)) 1000" \
		-c "discard $((12 * M)) $((4 * M))" \
		-c "read -P 0x33 $((4 * M - 1000)) 500" \
		-c "read -P 0 $((4 * M - 500)) 1000" \
		-c "read -P 0x33 $((4 * M + 500)) 3500" \
		-c "read -P 0 $((12 * M)) $((4 * M))" \
		-c "read -P 0x44 $((9 * M + 17)) $((2 * M + 333))" "$u"
	# Writing beyond the end fails and changes nothing.
	out=$(qemu-io -f raw -c "write -P 0x66 $((32 * M - 256)) 512" "$u" 2>&1)
	check "$vol: write past the end refused" grep -qiE "error|invalid|no space|out of range" <<<"$out"
	check "$vol: last sector intact" qemu-io -f raw -r -c "read -P 0x55 $((32 * M - 512)) 512" "$(nbd_uri 0 "$vol:ro")"
done
for i in 0 1 2 3 4 5; do check "sheep $i still running" sd_alive $i; done
sd_done
