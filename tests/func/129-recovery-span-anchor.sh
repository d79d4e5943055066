#!/usr/bin/env bash
# 129-recovery-span-anchor.sh - six sheep, a 4:2 VDI, the whole cluster restarted (kill -9, start) until the epoch passes 33, where the placement chain restarts (a new span): with the members unchanged since the format, the ring of epoch 33 is the format's and no fragment moves; the VDI reads back.
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

# Each epoch's ring is chained from the previous one, and the chain restarts
# every 32 epochs (sheep/cluster/chain.c). Epoch 1 (the format's) is built as
# if its members had joined one at a time; the restart at epoch 33 was built
# from the member list at once, a different ring: a cluster restarted 32
# times (power cycles, upgrades) then moved most of its fragments between
# sheep that never changed (found in session 14's power-loss runs).
N=6
sd_start_cluster $N || bail "six sheep did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2
rec_mkvdi 0 v 4:2 $((32 * MiB)) $((32 * MiB)) || bail "4:2 VDI with data"
rec_wait_done 0 $N 1 60 || bail "initial recovery state never settled"

# census map: "OID IDX PORT" of every fragment, sorted
mv_map() { rec_census --map 0 1 2 3 4 5 | awk '$1 == "frag" {print $2, $3, $4}' | sort; }
mv_map >"$SD_TEST_DIR/map0"
check_eq "before: every fragment placed once (8 objects and the inode, 6 fragments each)" 54 \
	"$(wc -l <"$SD_TEST_DIR/map0")"

# Every sheep killed at once (a power cut): the restart is one epoch with
# the same members.
restart_all() {
	local i
	kill -9 "${SD_PIDS[@]}" 2>/dev/null
	for ((i = 0; i < N; i++)); do wait "${SD_PIDS[$i]}" 2>/dev/null; unset "SD_PIDS[$i]"; done
	for ((i = 0; i < N; i++)); do sd_start $i || return 1; done
	sd_wait_nodes 0 $N 60
}
e=$(rec_epoch 0)
for ((k = 0; k < 40 && e < 33; k++)); do
	restart_all || bail "restart $k: the cluster did not re-form"
	e=$(rec_epoch 0)
done
log "$k restarts of every sheep: epoch $e"
check "the epoch passed the span's end ($e >= 33)" test "$e" -ge 33
check "recovery completes" rec_wait_done 0 $N "$e" 120
mv_map >"$SD_TEST_DIR/map1"
moved=$(awk 'NR == FNR {h[$1 " " $2] = $3; next} h[$1 " " $2] != $3 {n++} END {print n + 0}' \
	"$SD_TEST_DIR/map0" "$SD_TEST_DIR/map1")
check_eq "no fragment moved across $k restarts and the chain's restart at epoch 33" 0 "$moved"
check_eq "every fragment still placed once" 54 "$(wc -l <"$SD_TEST_DIR/map1")"

# Every member logs its view's ring digest: epochs 32 and 33 (and 1) alike.
digest() {
	cat "$SD_TEST_DIR"/n*/sheep.log | grep -oE "placement: view of epoch $1, ring $1:[0-9a-f]{16}" |
		sed 's/.*://' | sort -u | tr '\n' ' '
}
d1=$(digest 1) d32=$(digest 32) d33=$(digest 33)
log "ring digests: epoch 1 $d1, 32 $d32, 33 $d33"
check "every member logged one ring for epoch 33" test "$(wc -w <<<"$d33")" = 1
check_eq "the ring of epoch 33 (a new chain) is the ring of epoch 32" "$d32" "$d33"
check_eq "and the format's" "$d1" "$d33"
rec_check_read 3 v "after $k restarts"
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
