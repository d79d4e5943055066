#!/usr/bin/env bash
# 101-recovery-few-zones.sh - six sheep, 4:2: kill one and only five zones remain; recovery restores the best redundancy possible, says so, and completes the job when a node joins.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

sd_start_cluster 6 || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
rec_mkvdi 0 e42 4:2 $((64 * MiB)) $((32 * MiB)) || bail "4:2 VDI with data"
rec_wait_done 0 6 1 60 || bail "initial recovery state never settled"
objects=$(rec_summary objects "$(rec_census 0 1 2 3 4 5)")
e0=$(rec_epoch 0)

sd_kill 4
sd_wait_nodes 0 5 || bail "sheep 0 still lists the killed node"
check "five zones: recovery finishes what it can" rec_wait_done 0 5 $((e0 + 1)) 120 0
msg=$(dogn 0 node recovery 2>&1)
log "$msg"
check "five zones: dog node recovery says redundancy is short of full" grep -q "zone" <<<"$msg"
check_eq "five zones, recovery done: stdout is the header only (Sheepdog's empty list)" \
	"$(printf 'Nodes In Recovery:\n  Id   Host:Port         V-Nodes       Zone       Progress')" \
	"$(dogn 0 node recovery 2>/dev/null)"
check "five zones: the sheep log says so too" grep -q "best possible redundancy" "$(sd_dir 0)/sheep.log"
out=$(rec_census --verify 0 1 2 3 5)
log "$(grep -E "summary|^bad" <<<"$out")"
check_eq "five zones: every fragment present reads back (checksums)" 0 "$(rec_summary bad "$out")"
rec_check_read 0 e42 "five zones"

# A node joins: a sixth zone, full redundancy again.
e1=$(rec_epoch 0)
sd_start 6 || bail "sheep 6 did not start"
sd_wait_nodes 0 6 || bail "sheep 6 did not join"
check "a node joins: recovery completes" rec_wait_done 0 6 $((e1 + 1)) 120
out=$(rec_census --verify 0 1 2 3 5 6)
log "$(grep summary <<<"$out")"
check_eq "a node joins: every object at full redundancy" "$objects" "$(rec_summary full "$out")"
check_eq "a node joins: every fragment reads back" 0 "$(rec_summary bad "$out")"
check "a node joins: the shortfall message is gone" test -z "$(dogn 0 node recovery 2>&1 | grep zone)"
rec_check_read 2 e42 "a node joins"
sd_done
