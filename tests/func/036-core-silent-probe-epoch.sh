#!/usr/bin/env bash
# 036-core-silent-probe-epoch.sh - an EC range write with a fragment out (its holder dead) asks the holders of the data fragments it leaves unchanged whether they still hold the generation (docs/architecture.md, "Unchanged fragments"); when the epoch moves before that probe (the dead sheep returns) and the holders refuse it for the epoch, the write is tried again under the new view and acknowledged, where it used to answer EIO (func/065 failed so in a CI run while recovery moved the epoch).
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

# Test hook: SHEEP_TEST_PAUSE_FILE (lib/testhook.h), point silent-probe:
# the coordinator of an EC range write whose prepares did not all succeed
# (or that had a fragment out) stops before it probes the unchanged data
# fragments, while the test moves the epoch.
export SHEEP_TEST_PAUSE_FILE=$SD_TEST_DIR/pause
F=$SHEEP_TEST_PAUSE_FILE
N=6
MiB=$((1 << 20))
SIZE=$((16 * MiB))
sd_start_cluster $N || bail "six sheep did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2
check "create 4:2 VDI" dogn 0 vdi create v 16M
sd_random "$SD_TEST_DIR/cur" $SIZE
check "write 16 MiB" dogn 0 vdi write v 0 $SIZE <"$SD_TEST_DIR/cur"

# Sheep 5 dies: every object has one fragment without a holder (five
# zones for six fragments), and its writes are acknowledged by the five.
sd_kill 5
check "sheep 5 killed; five members" sd_wait_nodes 0 5

# write_at OFF: write 4 KiB of new bytes at OFF through sheep 0 with the
# pause armed; sets PAUSED when the write stopped at silent-probe (it does
# when the fragment out is one it changes: a write whose prepares all went
# out counts its unchanged fragments without asking). On a pause, sheep 5
# returns (the epoch moves) before the write goes on. Every write must be
# acknowledged.
PAUSED=0
write_at() {
	local off=$1 i
	sd_random "$SD_TEST_DIR/patch" 4096
	rm -f "$F".*
	echo silent-probe >"$F"
	dogn 0 vdi write v "$off" 4096 <"$SD_TEST_DIR/patch" &
	local w=$!
	for ((i = 0; i < 50; i++)); do
		[ -e "$F.silent-probe" ] && break
		kill -0 $w 2>/dev/null || break
		sleep 0.1
	done
	rm -f "$F"
	if [ -e "$F.silent-probe" ]; then
		PAUSED=1
		log "the write at $off stopped before its probe of the unchanged fragments"
		check "sheep 5 returns while the write waits" sd_start 5
		for i in 0 1 2 3 4 5; do
			check "sheep $i sees six members" sd_wait_nodes $i 6
		done
		rm -f "$F.silent-probe"
	fi
	wait $w
	check_eq "the write at $off is acknowledged" 0 $?
	dd if="$SD_TEST_DIR/patch" of="$SD_TEST_DIR/cur" bs=4096 seek=$((off / 4096)) conv=notrunc \
		status=none
}

# Object 1's four data fragments, 1 MiB each, in turn until one write
# changes the fragment that is out (or the out one is a parity: the first).
for k in 0 1 2 3; do
	write_at $((4 * MiB + k * MiB + 8192))
	[ $PAUSED = 1 ] && break
done
check_eq "a write stopped before its probe while the epoch moved" 1 $PAUSED
check "recovery after the return completes" rec_wait_done 0 6 "$(rec_epoch 0)" 120
check_eq "the whole VDI reads back (via sheep 3)" "$(sd_sha "$SD_TEST_DIR/cur")" \
	"$(dogn 3 vdi read v 0 $SIZE | sha256sum | cut -d' ' -f1)"
check_eq "the whole VDI reads back (via sheep 5)" "$(sd_sha "$SD_TEST_DIR/cur")" \
	"$(dogn 5 vdi read v 0 $SIZE | sha256sum | cut -d' ' -f1)"
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
