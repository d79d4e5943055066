#!/usr/bin/env bash
# 024-core-rejoin-after-kill-all.sh - every sheep killed -9 at once leaves the local driver's rendezvous with the member files of the dead; restarted sheep form the cluster again even when the second joins before the first has run its failure detector (022's "the cluster did not come back").
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

# The local driver's first sheep back used to append its JOIN listing the
# dead others; its 200 ms timer buried them later. A second sheep joining
# in between made a group where neither was ever alone and each waited for
# the other's state snapshot. Here the first sheep back is SIGSTOPped as
# soon as its member file exists (its JOIN is appended right after, under
# the log lock), so its timer cannot run before the second one joins.
N=3
MiB=$((1 << 20))
sd_start_cluster $N || bail "three sheep did not form a cluster"
dogn 0 cluster format -c 2:1 >/dev/null || bail "format 2:1"
dogn 0 vdi create v 8M >/dev/null || bail "vdi create"
sd_random "$SD_TEST_DIR/ref" $((8 * MiB))
dogn 1 vdi write v 0 $((8 * MiB)) <"$SD_TEST_DIR/ref" || bail "fill v"

R=$SD_TEST_DIR/local
members() { ls "$R" | grep "^m\.[^_]*_$1_" | sort; }
old0=$(members "$(sd_port 0)")
old1=$(members "$(sd_port 1)")
# All at once, as a power loss: no survivor buries anyone.
kill -9 "${SD_PIDS[@]}"
for ((i = 0; i < N; i++)); do wait "${SD_PIDS[$i]}" 2>/dev/null; unset "SD_PIDS[$i]"; done
left=$(ls "$R" | grep -c '^m\.')
log "member files left by the kill: $left"
check "the kill left member files of dead sheep besides sheep 0's own (no LEAVE)" test "$left" -ge 2

# new_member IDX OLD: wait until sheep IDX has a member file other than OLD.
new_member() {
	local f
	for _ in $(seq 300); do
		f=$(members "$(sd_port "$1")" | grep -vxF "$2" | head -n1)
		[ -n "$f" ] && return 0
		sleep 0.02
	done
	return 1
}
sd_start 0 || bail "restart sheep 0"
new_member 0 "$old0" || bail "sheep 0 never published its member file"
kill -STOP "${SD_PIDS[0]}"
log "sheep 0 stopped right after joining; rendezvous: $(ls "$R" | grep '^m\.' | xargs)"
sd_start 1 || bail "restart sheep 1"
if ! new_member 1 "$old1"; then
	# (stopped inside its JOIN append, holding the log lock: let it finish)
	log "sheep 1 waits for the log lock: continuing sheep 0 first"
	kill -CONT "${SD_PIDS[0]}"
	new_member 1 "$old1" || bail "sheep 1 never published its member file"
fi
kill -CONT "${SD_PIDS[0]}"
sd_start 2 || bail "restart sheep 2"
check "the three restarted sheep form the cluster again" sd_wait_nodes 0 $N 60
check "sheep 1 sees them too" sd_wait_nodes 1 $N 30
check_eq "no member file of a dead incarnation is left" $N "$(ls "$R" | grep -c '^m\.')"
got=""
for _ in $(seq 30); do
	got=$(dogn 2 vdi read v 2>/dev/null | sha256sum | cut -d' ' -f1)
	[ "$got" = "$(sd_sha "$SD_TEST_DIR/ref")" ] && break
	sleep 1
done
check_eq "the VDI reads back as written before the kill" "$(sd_sha "$SD_TEST_DIR/ref")" "$got"
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
