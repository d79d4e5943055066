#!/usr/bin/env bash
# 102-recovery-rebalance.sh - six sheep, a 4:2 VDI of 1 MiB objects: two fresh nodes join, data flows to them, every node's share of fragments ends within 15% of its weight share, and everything reads back.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

NOBJ=600
sd_start_cluster 6 || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
dogn 0 vdi create -c 4:2 -z 20 big $((NOBJ * MiB)) || bail "vdi create"
# 4 KiB of random data at the start of every 1 MiB object: many objects, little I/O.
truncate -s $((NOBJ * MiB)) "$SD_TEST_DIR/big.ref"
for ((k = 0; k < NOBJ; k++)); do
	head -c 4096 /dev/urandom >"$SD_TEST_DIR/blk"
	dogn $((k % 6)) vdi write big $((k * MiB)) 4096 <"$SD_TEST_DIR/blk" || bail "write object $k"
	dd if="$SD_TEST_DIR/blk" of="$SD_TEST_DIR/big.ref" bs=1M seek=$k conv=notrunc status=none
done
rec_wait_done 0 6 1 60 || bail "initial recovery state never settled"
e0=$(rec_epoch 0)

sd_start 6 && sd_start 7 || bail "two fresh sheep did not start"
sd_wait_nodes 0 8 || bail "the fresh sheep did not join"
check "two joins: recovery completes" rec_wait_done 0 8 $((e0 + 1)) 180
log "copied $(rec_sum copied 0), rebuilt $(rec_sum rebuilt 0), reused $(rec_sum reused 0), dropped $(rec_sum dropped 0)"
out=$(rec_census 0 1 2 3 4 5 6 7)
log "$(grep -E '^(node|summary)' <<<"$out" | tr '\n' ';')"
check_eq "two joins: every object at full redundancy" 0 "$(rec_summary short "$out")"
check_eq "two joins: no old copies left behind" 0 "$(rec_summary extra "$out")"
total=$(awk '/^node/ {s += $4} END {print s}' <<<"$out")
# Every sheep here has the same capacity: weight share 1/8 each.
while read -r _ port _ n _; do
	share=$(echo "scale=4; $n * 8 / $total" | bc)
	check "node $port holds $n of $total fragments: within 15% of its weight share (ratio $share)" \
		test "$(echo "$share >= 0.85 && $share <= 1.15" | bc)" = 1
done < <(grep '^node' <<<"$out")
for i in 6 7; do
	n=$(awk -v p="$(sd_port $i)" '$1 == "node" && $2 == p {print $4}' <<<"$out")
	check "fresh node $i received data" test "${n:-0}" -gt 0
done
rec_check_read 7 big "two joins"
sd_done
