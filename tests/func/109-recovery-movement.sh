#!/usr/bin/env bash
# 109-recovery-movement.sh - eight sheep, a 4:2 VDI: one sheep joins, then one leaves; recovery moves within 10% of the fragments that had to move (the joiner's new share, the leaver's old one), counted fragment by fragment; every member, joiner and restarted node included, builds the same ring for every epoch.
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

# The placement is exact when each epoch's ring is chained from the previous
# one (placement_build_next): a join moves only the positions the joiner
# takes, a leave only the leaver's. A ring rebuilt from the member list alone
# also moves positions between staying sheep (about 1.38x at 8 nodes).
NOBJ=400
sd_start_cluster 8 || bail "eight sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
dogn 0 vdi create -c 4:2 -z 20 big $((NOBJ * MiB)) || bail "vdi create"
truncate -s $((NOBJ * MiB)) "$SD_TEST_DIR/big.ref"
for ((k = 0; k < NOBJ; k++)); do
	head -c 4096 /dev/urandom >"$SD_TEST_DIR/blk"
	dogn $((k % 8)) vdi write big $((k * MiB)) 4096 <"$SD_TEST_DIR/blk" || bail "write object $k"
	dd if="$SD_TEST_DIR/blk" of="$SD_TEST_DIR/big.ref" bs=1M seek=$k conv=notrunc status=none
done
rec_wait_done 0 8 1 60 || bail "initial recovery state never settled"
e0=$(rec_epoch 0)

# mv_map IDX...: "OID IDX PORT" of every fragment on these sheep, sorted.
mv_map() { rec_census --map "$@" | awk '$1 == "frag" {print $2, $3, $4}' | sort; }
# mv_moved BEFORE AFTER: fragments (object, index) whose holder is not the one before.
mv_moved() {
	awk 'NR == FNR {h[$1 " " $2] = $3; next} h[$1 " " $2] != $3 {n++} END {print n + 0}' "$1" "$2"
}
# mv_within MOVED NEEDED: MOVED is at least NEEDED and at most 10% above it.
mv_within() { [ "$2" -gt 0 ] && [ "$1" -ge "$2" ] && [ $(($1 * 100)) -le $(($2 * 110)) ]; }

mv_map 0 1 2 3 4 5 6 7 >"$SD_TEST_DIR/map0"
# NOBJ data objects and the VDI's inode, 6 fragments each.
check_eq "before: every fragment placed once" $(((NOBJ + 1) * 6)) "$(wc -l <"$SD_TEST_DIR/map0")"

sd_start 8 || bail "the ninth sheep did not start"
sd_wait_nodes 0 9 || bail "the ninth sheep did not join"
check "join: recovery completes" rec_wait_done 0 9 $((e0 + 1)) 180
out=$(rec_census 0 1 2 3 4 5 6 7 8)
check_eq "join: every object at full redundancy" 0 "$(rec_summary short "$out")"
check_eq "join: no old copies left behind" 0 "$(rec_summary extra "$out")"
mv_map 0 1 2 3 4 5 6 7 8 >"$SD_TEST_DIR/map1"
moved=$(mv_moved "$SD_TEST_DIR/map0" "$SD_TEST_DIR/map1")
need=$(awk -v p="$(sd_port 8)" '$3 == p' "$SD_TEST_DIR/map1" | wc -l)
log "join: moved $moved fragments, the joiner holds $need: ratio $(echo "scale=3; $moved / ($need + ($need == 0))" | bc)"
check "join: moved $moved within 10% of the $need the joiner took" mv_within "$moved" "$need"

e1=$(rec_epoch 0)
need=$(awk -v p="$(sd_port 3)" '$3 == p' "$SD_TEST_DIR/map1" | wc -l)
sd_kill 3
sd_wait_nodes 0 8 || bail "the cluster did not see sheep 3 leave"
check "leave: recovery completes" rec_wait_done 0 8 $((e1 + 1)) 180
out=$(rec_census 0 1 2 4 5 6 7 8)
check_eq "leave: every object at full redundancy" 0 "$(rec_summary short "$out")"
check_eq "leave: no old copies left behind" 0 "$(rec_summary extra "$out")"
mv_map 0 1 2 4 5 6 7 8 >"$SD_TEST_DIR/map2"
moved=$(mv_moved "$SD_TEST_DIR/map1" "$SD_TEST_DIR/map2")
log "leave: moved $moved fragments, the leaver held $need: ratio $(echo "scale=3; $moved / ($need + ($need == 0))" | bc)"
check "leave: moved $moved within 10% of the $need the leaver held" mv_within "$moved" "$need"
rec_check_read 0 big "after a join and a leave"

# The leaver comes back on its old store: a restarted node rebuilds its
# rings from the epoch log it gets on joining.
e2=$(rec_epoch 0)
sd_start 3 || bail "sheep 3 did not restart"
sd_wait_nodes 0 9 || bail "the restarted sheep did not join"
check "restart: recovery completes" rec_wait_done 0 9 $((e2 + 1)) 180
out=$(rec_census 0 1 2 3 4 5 6 7 8)
check_eq "restart: every object at full redundancy" 0 "$(rec_summary short "$out")"
check_eq "restart: no old copies left behind" 0 "$(rec_summary extra "$out")"
rec_check_read 3 big "after the restart"

# Each member logs a digest of the ring of its view's epoch and of the
# earlier epochs it keeps ("placement: view of epoch E, ring E:D ...,
# earlier E1:D1 ..."). Every epoch must have one digest on every member.
# Epoch 0 (before the format, as Sheepdog counts epochs) places nothing and
# its view changes with each sheep that joins: it is left out.
cat "$SD_TEST_DIR"/n*/sheep.log "$SD_TEST_DIR"/sheep*.out 2>/dev/null | grep 'placement: view of epoch' |
	grep -oE '[0-9]+:[0-9a-f]{16}' | grep -v '^0:' | LC_ALL=C sort -u >"$SD_TEST_DIR/digests"
log "ring digests: $(tr '\n' ' ' <"$SD_TEST_DIR/digests")"
check "every member logged its rings" test "$(grep -c . "$SD_TEST_DIR/digests")" -ge 4
# Epoch 0 is not one: before the format (Sheepdog counts no epoch until
# then) each sheep places by the members it sees at its join, serving nothing.
check_eq "every epoch's ring is the same on every member" "" \
	"$(grep -v '^0:' "$SD_TEST_DIR/digests" | cut -d: -f1 | uniq -d | tr '\n' ' ')"
for i in 3 8; do
	check "sheep $i (joined late or restarted) logged the rings of epochs before it" \
		grep -q "placement: view of epoch [0-9]*, ring [0-9:a-f]* (chained from epoch [0-9]*), earlier [0-9]" \
		"$(sd_dir $i)/sheep.log"
done
sd_done
