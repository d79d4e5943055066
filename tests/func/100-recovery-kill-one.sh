#!/usr/bin/env bash
# 100-recovery-kill-one.sh - eight sheep, 4:2 and 3-copy VDIs of random data: kill one, recovery restores every object to full redundancy on the survivors (fragments counted and read back across the stores), then two more die and everything still reads back.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

sd_start_cluster 8 || bail "eight sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
rec_mkvdi 0 e42 4:2 $((64 * MiB)) $((40 * MiB)) || bail "4:2 VDI with data"
rec_mkvdi 0 r3 3 $((32 * MiB)) $((20 * MiB)) || bail "3-copy VDI with data"

rec_wait_done 0 8 1 60 || bail "initial recovery state never settled"
out=$(rec_census --verify 0 1 2 3 4 5 6 7)
grep '^short' <<<"$out" | sed 's/^/# /'
check_eq "before: every object at full redundancy" 0 "$(rec_summary short "$out")"
objects=$(rec_summary objects "$out")
log "objects: $objects"
e0=$(rec_epoch 0)

sd_kill 7
sd_wait_nodes 0 7 || bail "sheep 0 still lists the killed node"
t0=$(date +%s.%N)
check "after one kill: recovery completes on the seven survivors" rec_wait_done 0 7 $((e0 + 1)) 120
t1=$(date +%s.%N)
log "recovery took $(echo "$t1 - $t0" | bc) s; rebuilt $(rec_sum rebuilt 0), copied $(rec_sum copied 0), reused $(rec_sum reused 0)"
check "after one kill: fragments were rebuilt (EC)" test "$(rec_sum rebuilt 0)" -gt 0
check "after one kill: copies were copied (replicas)" test "$(rec_sum copied 0)" -gt 0

out=$(rec_census --verify 0 1 2 3 4 5 6)
log "$(grep summary <<<"$out")"
check_eq "after one kill: objects counted" "$objects" "$(rec_summary objects "$out")"
check_eq "after one kill: every object back at full redundancy on 7 nodes" "$objects" "$(rec_summary full "$out")"
check_eq "after one kill: every fragment reads back (checksums)" 0 "$(rec_summary bad "$out")"
check_eq "after one kill: old copies dropped once the cluster completed" 0 "$(rec_summary extra "$out")"
rec_check_read 0 e42 "after one kill"
rec_check_read 3 r3 "after one kill"

# Full redundancy means two more failures are survivable (p = 2, N-1 = 2).
sd_kill 6
sd_kill 2
sd_wait_nodes 0 5 || log "sheep 0 still lists a killed node"
rec_check_read 0 e42 "three down, two after recovery"
rec_check_read 4 r3 "three down, two after recovery"
sd_done
