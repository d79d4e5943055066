#!/usr/bin/env bash
# 103-recovery-kill-during.sh - eight sheep: recovery throttled (dog node recovery set-throttle) after one kill, a second node killed while it runs; recovery replans, completes, and every object is back at full redundancy with correct data.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

sd_start_cluster 8 || bail "eight sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
rec_mkvdi 0 e42 4:2 $((64 * MiB)) $((48 * MiB)) || bail "4:2 VDI with data"
rec_mkvdi 0 r3 3 $((32 * MiB)) $((24 * MiB)) || bail "3-copy VDI with data"
rec_wait_done 0 8 1 60 || bail "initial recovery state never settled"
objects=$(rec_summary objects "$(rec_census 0 1 2 3 4 5 6 7)")
e0=$(rec_epoch 0)

check "set-throttle: max 1, 300 ms between jobs" dogn 0 node recovery set-throttle 1 300
check_eq "get-throttle reads it back" "1 300" "$(dogn 3 node recovery get-throttle -r)"

sd_kill 7
sd_wait_nodes 0 7 || bail "sheep 0 still lists the killed node"
# Wait until some node is visibly in recovery, then kill another.
running=0
for ((t = 0; t < 100; t++)); do
	if dogn 0 node recovery -r | grep -q ' running$'; then running=1; break; fi
	sleep 0.1
done
check "dog node recovery shows a node in recovery" test $running = 1
dogn 0 node recovery | sed 's/^/# /'
sd_kill 5
sd_wait_nodes 0 6 || bail "sheep 0 still lists the second killed node"
check "set-throttle back to fast" dogn 0 node recovery set-throttle 8 0
check "after a kill during recovery: recovery completes" rec_wait_done 0 6 $((e0 + 2)) 150
out=$(rec_census --verify 0 1 2 3 4 6)
log "$(grep summary <<<"$out")"
check_eq "every object back at full redundancy on six nodes" "$objects" "$(rec_summary full "$out")"
check_eq "every fragment reads back (checksums)" 0 "$(rec_summary bad "$out")"
rec_check_read 0 e42 "after a kill during recovery"
rec_check_read 1 r3 "after a kill during recovery"
sd_done
