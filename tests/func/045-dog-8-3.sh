#!/usr/bin/env bash
# 045-dog-8-3.sh - eleven sheep, a -c 8:3 VDI: random writes read back; three nodes down still read; four down fail cleanly; restart: data back.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

MiB=$((1 << 20))
VSIZE=$((128 * MiB))

sd_start_cluster 11 || bail "eleven sheep did not form a cluster"
dogn 0 cluster format -c 8:3 || bail "cluster format -c 8:3 failed"
# p+1 failures must stay p+1: recovery would rebuild between the kills.
dogn 0 cluster recover disable || bail "cluster recover disable"
check "vdi create (cluster default 8:3)" dogn 0 vdi create v83 "$VSIZE"
check_eq "vdi list shows 8:3" "8:3" "$(dogn 0 vdi list -r v83 | awk '{print $9}')"

ref=$SD_TEST_DIR/ref
truncate -s "$VSIZE" "$ref"
# Whole objects, then unaligned pieces across object boundaries.
for spec in "0 $((32 * MiB))" "$((50 * MiB + 3)) $((9 * MiB + 1))" "$((4 * MiB - 10)) 20" \
	"$((100 * MiB + 4095)) $((MiB + 2))" "$((127 * MiB)) $MiB"; do
	read -r off len <<<"$spec"
	head -c "$len" /dev/urandom >"$SD_TEST_DIR/piece"
	check "write $len bytes at $off" dogn 0 vdi write v83 "$off" "$len" <"$SD_TEST_DIR/piece"
	dd if="$SD_TEST_DIR/piece" of="$ref" bs=1M oflag=seek_bytes seek="$off" conv=notrunc status=none
done
check_eq "8:3: whole VDI reads back" "$(sd_sha "$ref")" "$(dogn 0 vdi read v83 | sd_sha /dev/stdin)"

for i in 10 9 8; do sd_kill "$i"; done
sd_wait_nodes 0 8 || log "sheep 0 still lists a killed node"
check_eq "8:3 with 3 nodes down: whole VDI reads back" "$(sd_sha "$ref")" \
	"$(dogn 0 vdi read v83 | sd_sha /dev/stdin)"
check_eq "8:3 with 3 nodes down: unaligned range reads back" \
	"$(dd if="$ref" bs=1M iflag=skip_bytes,count_bytes skip=$((50 * MiB)) count=$((10 * MiB)) status=none | sd_sha /dev/stdin)" \
	"$(dogn 5 vdi read v83 $((50 * MiB)) $((10 * MiB)) | sd_sha /dev/stdin)"

sd_kill 7
sd_wait_nodes 0 7 || log "sheep 0 still lists a killed node"
dogn 0 vdi read v83 $((0)) $((32 * MiB)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
rc=$?
log "4 down: exit $rc: $(head -c 300 "$SD_TEST_DIR/err")"
n=$(stat -c %s "$SD_TEST_DIR/got")
# With 11 nodes, each object's 11 fragments sit one per node: 4 down loses
# 4 > p of every object.
check "8:3 with 4 nodes down: read fails" test "$rc" -ne 0
check "8:3 with 4 nodes down: the failure says why" test -s "$SD_TEST_DIR/err"
check "8:3 with 4 nodes down: no wrong byte ($n bytes out)" cmp -s -n "$n" "$SD_TEST_DIR/got" "$ref"

for i in 7 8 9 10; do sd_start "$i" || not_ok "restart sheep $i"; done
sd_wait_nodes 0 11 || not_ok "eleven nodes after the restart"
sleep 1
check_eq "8:3 after restart: whole VDI reads back" "$(sd_sha "$ref")" \
	"$(dogn 0 vdi read v83 | sd_sha /dev/stdin)"
sd_done
