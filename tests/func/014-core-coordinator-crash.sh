#!/usr/bin/env bash
# 014-core-coordinator-crash.sh - an object's write coordinator killed part-way through its commits: the range reads wholly old or wholly new, before and after the dead sheep returns (invariant 2).
# timeout: 600
. "$SD_TOP/tests/func/lib.sh"
. "$SD_TOP/tests/func/crash_lib.sh"

# The test hook (gateway.c): a sheep started with SHEEP_TEST_CRASH_FILE=F
# that, as a write's coordinator, finds F holding k takes it, sends the
# commits of that write one at a time in fragment order and SIGKILLs
# itself after k of them. The coordinator of the object written (its first
# holder) is the one that dies; writes retried after it run normally.
export SHEEP_TEST_CRASH_FILE=$SD_TEST_DIR/crash
N=6
sd_start_cluster $N || bail "six sheep did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2
check "create 4:2 VDI" dogn 0 vdi create v 32M
SIZE=$((32 << 20))
sd_random "$SD_TEST_DIR/cur" $SIZE
check "write 32 MiB" dogn 0 vdi write v 0 $SIZE <"$SD_TEST_DIR/cur"

vdi_sha() { dogn "$1" vdi read v 0 $SIZE | sha256sum | cut -d' ' -f1; }

# crash_case NAME K OFFSET LEN EXPECT: find the coordinator of the object
# at OFFSET (a write with a crash point it never reaches), arm K, write
# LEN new bytes at OFFSET through the coordinator itself, so no gateway
# retries the write for the client: it dies unacknowledged. The range must
# then read wholly EXPECT (old or new), on every sheep, before and after
# the dead sheep returns, and the object must take writes again.
crash_case() {
	local name=$1 k=$2 off=$3 len=$4 expect=$5 i
	crash_find_coordinator "$name" "$off" "$len"
	local c=$CRASH_C
	crash_write "$name" "$k" "$off" "$len"
	local dead=$CRASH_DEAD
	check_eq "$name: the coordinator died after $k commit(s), unacknowledged" "$c 2" "$dead $CRASH_RC"
	[ $dead -ge 0 ] || return
	local r=$(( (dead + 1) % N )) want
	[ "$expect" = new ] && want=$CRASH_NEW || want=$CRASH_OLD
	sd_wait_nodes "$r" $((N - 1)) || not_ok "$name: membership did not drop"
	check_eq "$name: reads wholly $expect" "$want" "$(vdi_sha "$r")"
	check_eq "$name: reads wholly $expect via another sheep" "$want" "$(vdi_sha $(( (r + 1) % N )))"
	sd_start "$dead" || bail "sheep $dead did not restart"
	sd_wait_nodes 0 $N || not_ok "$name: sheep $dead did not rejoin"
	for i in "$dead" "$r"; do
		check_eq "$name: still $expect after sheep $dead returned (read via $i)" "$want" \
			"$(vdi_sha "$i")"
	done
	[ "$expect" = new ] && cp "$SD_TEST_DIR/new" "$SD_TEST_DIR/cur"
	crash_write_again "$name" "$r" "$off"
}

MiB=$((1 << 20))
# A partial write of one object (one data fragment and two parity written,
# three version-bumped), its commits cut after k of 6; the dead
# coordinator's own fragment (position 0) is the first committed.
# 3: more than p and fewer than d applied, the case where neither
#    generation has d fragments: finished (rolled forward) -> new.
# 1: applied only on the dead sheep: the old generation is whole -> old,
#    and stays old when the dead sheep comes back with its newer fragment.
# 0: prepared everywhere, applied nowhere -> old.
# 5: four of the survivors have it -> new.
crash_case "partial, 3 of 6 committed" 3 $((4 * MiB + 8192)) 16384 new
crash_case "partial, 1 of 6 committed" 1 $((8 * MiB + 8192)) 16384 old
crash_case "partial, prepared, none committed" 0 $((12 * MiB + 8192)) 16384 old
crash_case "partial, 5 of 6 committed" 5 $((16 * MiB + 8192)) 16384 new
# A whole-object write (every fragment replaced), cut after 3 of 6.
crash_case "whole object, 3 of 6 committed" 3 $((20 * MiB)) $((4 * MiB)) new
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
