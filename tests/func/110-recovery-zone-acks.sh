#!/usr/bin/env bash
# 110-recovery-zone-acks.sh - after failures and recovery, fragments may outnumber zones (a node keeps an old position's fragment next to its own); a 4:2 write is acknowledged only when d+1 distinct zones hold it (issue 14, item 5).
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

N=6
sd_start_cluster $N || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
rec_mkvdi 0 v 4:2 $((32 * MiB)) $((32 * MiB)) || bail "4:2 VDI with data"
# w: 64 small objects, so that some of them surely have the position sheep 4
# takes below (a joiner takes a zone-mate's position with odds about 1/5).
dogn 0 vdi create -c 4:2 w $((256 * MiB)) || bail "4:2 VDI w"
truncate -s $((256 * MiB)) "$SD_TEST_DIR/w.ref"
for ((k = 0; k < 64; k++)); do
	sd_random "$SD_TEST_DIR/wk" 4096
	dogn 0 vdi write w $((k * 4 * MiB)) 4096 <"$SD_TEST_DIR/wk" || bail "write w object $k"
	dd if="$SD_TEST_DIR/wk" of="$SD_TEST_DIR/w.ref" bs=4096 seek=$((k * 1024)) conv=notrunc \
		status=none
done
rec_wait_done 0 $N 1 60 || bail "initial recovery state never settled"

# doubles: objects of which one node holds two fragments at the newest version.
doubles() {
	local i f
	for i in "$@"; do
		for f in $(ls "$(sd_dir "$i")/obj" | grep -E '^00[0-9a-f]{14}_'); do
			echo "$i ${f%_*}"
		done
	done | sort | uniq -d | wc -l
}
sd_kill 5
sd_wait_nodes 0 5 || bail "membership did not drop"
check "recovery done on five sheep" rec_wait_done 0 5 2 120
log "objects with two fragments on one node (five zones): $(doubles 0 1 2 3 4)"
sd_random "$SD_TEST_DIR/p" 65536
check "with five zones (d+1) a write is acknowledged" dogn 0 vdi write v $((5 * MiB)) 65536 \
	<"$SD_TEST_DIR/p"
dd if="$SD_TEST_DIR/p" of="$SD_TEST_DIR/v.ref" bs=65536 seek=80 conv=notrunc status=none
sd_kill 4
sd_wait_nodes 0 4 || bail "membership did not drop"
check "recovery done on four sheep" rec_wait_done 0 4 3 120
check_eq "four zones: no node holds two fragments of an object" 0 "$(doubles 0 1 2 3)"
# Sheep 4 comes back in zone 0, sheep 0's zone: five nodes, four zones. Its
# old positions (it changed zone) have no home in a free zone, so it keeps
# their fragments, and where it takes sheep 0's position (same zone) it
# holds two fragments of one object: more fragments than zones.
sd_start 4 -z 0 || bail "sheep 4 in zone 0"
sd_wait_nodes 0 5 || bail "sheep 4 did not rejoin"
check "recovery done with sheep 4 in zone 0" rec_wait_done 0 5 4 120
d4=$(doubles 0 1 2 3 4)
log "objects with two fragments on one node (four zones): $d4"
check "some object has more fragments than the four zones" test "$d4" -gt 0
# Four zones < d+1 = 5: whatever number of fragments land, not acknowledged.
refused=0
for off in 0 $((4 * MiB)) $((8 * MiB)) $((12 * MiB)) $((16 * MiB)) $((20 * MiB)); do
	sd_random "$SD_TEST_DIR/q" 4096
	if dogn 0 vdi write v $((off + 8192)) 4096 <"$SD_TEST_DIR/q" 2>/dev/null; then
		log "write at $((off + 8192)) acknowledged with four zones"
		dd if="$SD_TEST_DIR/q" of="$SD_TEST_DIR/v.ref" bs=4096 seek=$(((off + 8192) / 4096)) \
			conv=notrunc status=none
	else
		refused=$((refused + 1))
	fi
done
check_eq "every write with four zones is refused" 6 "$refused"
# A refused write must leave its range as it was (the client was told it
# failed): it is refused before anything is written, its writable fragments
# counted in zones as the ack rule counts them. Counting fragments let five
# fragments in four zones be written, committed, then refused, and "v reads
# back every byte" below failed when the early-ack path committed them.
before=$(cat "$SD_TEST_DIR"/n*/sheep.log | grep -c "refused before writing: its writable fragments reach 4 zone(s)")
check "each of the six was refused before anything was written" test "$before" -ge 6
check "the writes acknowledged name zones when refused" \
	grep -q "zone(s) for" "$(sd_dir 0)/sheep.log" "$(sd_dir 1)/sheep.log" "$(sd_dir 2)/sheep.log" \
	"$(sd_dir 3)/sheep.log"
rec_check_read 0 v "with four zones"
rec_check_read 4 w "with four zones"
for ((i = 0; i < 5; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
