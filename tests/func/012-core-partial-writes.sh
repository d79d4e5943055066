#!/usr/bin/env bash
# 012-core-partial-writes.sh - random unaligned writes (parity delta) match a reference file, healthy, degraded and after restart; disk bytes ~ (d+p)/d and N; thin provisioning.
# timeout: 500
. "$SD_TOP/tests/func/lib.sh"

MiB=$((1 << 20))
sd_start_cluster 6 || bail "six sheep did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2

disk_bytes() { local t=0 i b; for i in 0 1 2 3 4 5; do b=$(du -s --block-size=1 "$(sd_dir $i)/obj" | cut -f1); t=$((t + b)); done; echo $t; }

# Thin provisioning: a big VDI costs nothing until written.
base=$(disk_bytes)
check "create 4:2 thin 4 GiB VDI" dogn 0 vdi create -c 4:2 thin 4G
check "create 3-copy thin 4 GiB VDI" dogn 0 vdi create -c 3 thin3 4G
grown=$(( $(disk_bytes) - base ))
log "two empty 4 GiB VDIs use $grown bytes"
check "empty VDIs use under 1 MiB" test "$grown" -lt $MiB
printf 'x%.0s' $(seq 4096) | dogn 1 vdi write thin $((3 << 30)) 4096
grown=$(( $(disk_bytes) - base ))
log "one 4 KiB write to 4:2: $grown bytes"
check "a 4 KiB write costs far less than an object (< 256 KiB)" test "$grown" -lt $((256 << 10))

# Bytes on disk: (d+p)/d for 4:2, 3x for 3 copies.
for spec in "4:2 ec 150 1.35 1.70" "3 rep 300 2.8 3.3"; do
	set -- $spec
	base=$(disk_bytes)
	dogn 0 vdi create -c "$1" "$2" 64M || not_ok "create $2"
	sd_random "$SD_TEST_DIR/$2.full" $((32 * MiB))
	dogn 2 vdi write "$2" 0 $((32 * MiB)) <"$SD_TEST_DIR/$2.full" || not_ok "fill $2"
	used=$(( $(disk_bytes) - base ))
	ratio=$(awk -v u=$used -v w=$((32 * MiB)) 'BEGIN{printf "%.2f", u / w}')
	log "$1: 32 MiB written, $used bytes on disk, ratio $ratio (ideal $3/100)"
	check "$1: disk bytes / written = $ratio in [$4, $5]" \
		awk -v r="$ratio" -v lo="$4" -v hi="$5" 'BEGIN{exit !(r >= lo && r <= hi)}'
done

# Random unaligned writes over the filled VDIs, against reference files.
RANDOM=4242
patch_round() { # VOL N: N random writes, reference kept in $SD_TEST_DIR/VOL.full
	local vol=$1 n=$2 k off len node
	for ((k = 0; k < n; k++)); do
		len=$(( (RANDOM * 32768 + RANDOM) % (300 << 10) + 1 ))
		off=$(( (RANDOM * 32768 + RANDOM) % (32 * MiB - len) ))
		node=$((RANDOM % 6))
		sd_alive $node || node=0
		head -c $len /dev/urandom >"$SD_TEST_DIR/p"
		dogn $node vdi write "$vol" $off $len <"$SD_TEST_DIR/p" || { not_ok "$vol write $k ($off+$len)"; return; }
		dd if="$SD_TEST_DIR/p" of="$SD_TEST_DIR/$vol.full" bs=1M oflag=seek_bytes seek=$off conv=notrunc status=none
	done
	ok "$vol: $n random writes acknowledged"
}
same() { # VOL NODE
	[ "$(dogn "$2" vdi read "$1" 0 $((32 * MiB)) | sha256sum | cut -d' ' -f1)" = "$(sd_sha "$SD_TEST_DIR/$1.full")" ]
}
patch_round ec 40
patch_round rep 20
check "4:2 matches the reference after random writes" same ec 3
check "3-copy matches the reference after random writes" same rep 4

# Degraded: one sheep down, writes go on (5 zones = d+1), reads decode.
sd_kill 2
sd_wait_nodes 0 5 || not_ok "membership did not drop to 5"
patch_round ec 25
patch_round rep 10
check "4:2 matches with a sheep down" same ec 0
check "3-copy matches with a sheep down" same rep 5
sd_kill 4
sd_wait_nodes 0 4 || not_ok "membership did not drop to 4"
check "4:2 matches with two sheep down" same ec 1
check "3-copy matches with two sheep down" same rep 1
# Copies on both dead sheep leave one: a write re-places the whole object
# on live holders so it is still acknowledged with 2+ copies.
patch_round rep 15
check "3-copy matches after writes with two sheep down" same rep 3
# The returning sheep hold stale fragments: versions keep them out.
sd_start 2 || not_ok "restart sheep 2"
sd_start 4 || not_ok "restart sheep 4"
sd_wait_nodes 0 6 || not_ok "membership did not return to 6"
check "4:2 matches after the restart (stale fragments ignored)" same ec 2
check "3-copy matches after the restart" same rep 4
patch_round ec 15
check "4:2 matches after more writes" same ec 5
sd_done
