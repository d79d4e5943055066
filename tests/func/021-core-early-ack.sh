#!/usr/bin/env bash
# 021-core-early-ack.sh - EC range writes acknowledged once prepared, commits sent later: reads through any sheep see every acknowledged write while its commits are held back, and a coordinator killed before or after its acknowledgement leaves each range wholly old or new with every acknowledged write present, a write across two data fragments included.
# timeout: 600
. "$SD_TOP/tests/func/lib.sh"
. "$SD_TOP/tests/func/crash_lib.sh"

# Test hooks (sheep/gateway/commitq.c, twophase.c):
#  SHEEP_TEST_COMMIT_DELAY_MS=3000: every sheep holds its asynchronous
#    commits 3 s (longer than the 2 s grace of a pending write), so each
#    read below meets acknowledged writes still pending on every holder.
#  SHEEP_TEST_CRASH_FILE=F holding "before-ack": the coordinator of the
#    next early-ack write dies once its prepares are durable, before it
#    acknowledges; "after-ack": it acknowledges, then dies before sending
#    any commit. A number k keeps 014's protocol (commits before the ack).
export SHEEP_TEST_COMMIT_DELAY_MS=3000
export SHEEP_TEST_CRASH_FILE=$SD_TEST_DIR/crash
N=6
MiB=$((1 << 20))
SIZE=$((32 * MiB))
sd_start_cluster $N || bail "six sheep did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2
check "create 4:2 VDI" dogn 0 vdi create v 32M
sd_random "$SD_TEST_DIR/cur" $SIZE
check "write 32 MiB" dogn 0 vdi write v 0 $SIZE <"$SD_TEST_DIR/cur"
vdi_sha() { dogn "$1" vdi read v 0 $SIZE | sha256sum | cut -d' ' -f1; }

# 1. Read-after-ack with the commits held back: 40 random range writes,
#    each read back at once through another sheep; back-to-back writes to
#    one object (the coordinator's next prepare carries the commit).
RANDOM=2121
bad=0
for i in $(seq 1 40); do
	off=$(( (RANDOM * 32768 + RANDOM) % (SIZE - 20000) ))
	[ $((i % 4)) = 0 ] && off=$(( (4 * MiB) + (i * 4096) )) # the same object again and again
	len=$(( 512 + RANDOM % 16384 ))
	w=$(( i % N ))
	r=$(( (w + 1 + i % 5) % N ))
	sd_random "$SD_TEST_DIR/chunk" "$len"
	dogn "$w" vdi write v "$off" "$len" <"$SD_TEST_DIR/chunk" || { bad=$((bad + 1)); continue; }
	dogn "$r" vdi read v "$off" "$len" >"$SD_TEST_DIR/back" || { bad=$((bad + 1)); continue; }
	if ! cmp -s "$SD_TEST_DIR/chunk" "$SD_TEST_DIR/back"; then
		log "write of $len bytes at $off via sheep $w read back differently via sheep $r"
		bad=$((bad + 1))
	fi
	dd if="$SD_TEST_DIR/chunk" of="$SD_TEST_DIR/cur" bs=1 seek="$off" conv=notrunc status=none
done
check_eq "40 writes with held-back commits, each read back at once via another sheep" 0 "$bad"
check_eq "whole VDI matches the reference" "$(sd_sha "$SD_TEST_DIR/cur")" "$(vdi_sha 3)"
sleep 4 # let the held commits go out before the crash cases
check_eq "whole VDI matches after the commits arrived" "$(sd_sha "$SD_TEST_DIR/cur")" "$(vdi_sha 5)"


# crash_case NAME MODE OFFSET LEN: find the coordinator of the object at
# OFFSET (014's way: a crash point it never reaches), arm MODE, write LEN
# new bytes through the coordinator. after-ack: the write must be
# acknowledged and read wholly new everywhere. before-ack: unacknowledged;
# it reads wholly old or wholly new, the same through every sheep, before
# and after the dead sheep returns. Then the object takes writes again.
crash_case() {
	local name=$1 mode=$2 off=$3 len=$4 i got
	crash_find_coordinator "$name" "$off" "$len"
	local c=$CRASH_C
	sleep 4 # that write's held commits out of the way
	crash_write "$name" "$mode" "$off" "$len"
	local dead=$CRASH_DEAD old_sha=$CRASH_OLD new_sha=$CRASH_NEW
	if [ "$mode" = after-ack ]; then
		check_eq "$name: the coordinator acknowledged, then died" "$c 0" "$dead $CRASH_RC"
	else
		check_eq "$name: the coordinator died unacknowledged" "$c 2" "$dead $CRASH_RC"
	fi
	[ $dead -ge 0 ] || return
	local r=$(( (dead + 1) % N )) want
	got=$(vdi_sha "$r")
	[ "$got" = "$old_sha" ] && log "$name: reads the old bytes"
	if [ "$mode" = after-ack ]; then
		want=$new_sha
		check_eq "$name: the acknowledged write reads back at once (sheep $r)" "$want" "$got"
	else
		if [ "$got" = "$new_sha" ]; then want=$new_sha; log "$name: rolled forward"; else want=$old_sha; fi
		check_eq "$name: reads wholly old or wholly new" "$want" "$got"
	fi
	sd_wait_nodes "$r" $((N - 1)) || not_ok "$name: membership did not drop"
	check_eq "$name: same after the membership change" "$want" "$(vdi_sha "$r")"
	check_eq "$name: same via another sheep" "$want" "$(vdi_sha $(( (r + 1) % N )))"
	sd_start "$dead" || bail "sheep $dead did not restart"
	sd_wait_nodes 0 $N || not_ok "$name: sheep $dead did not rejoin"
	for i in "$dead" "$r"; do
		check_eq "$name: same after sheep $dead returned (read via $i)" "$want" "$(vdi_sha "$i")"
	done
	[ "$want" = "$new_sha" ] && cp "$SD_TEST_DIR/new" "$SD_TEST_DIR/cur"
	crash_write_again "$name" "$r" "$off"
}

crash_case "killed after the ack, before the commits" after-ack $((8 * MiB + 8192)) 16384
crash_case "killed after the prepares, before the ack" before-ack $((16 * MiB + 8192)) 16384
crash_case "killed after the ack, second object" after-ack $((24 * MiB + 4096)) 8192
# Across two data fragments (the last 8 KiB of one, the first 8 KiB of the
# next): one write, whole or absent. It was two writes until session 15,
# and a coordinator dying between them left the range half new.
crash_case "across two fragments, killed after the ack" after-ack $((4 * MiB + MiB - 8192)) 16384
crash_case "across two fragments, killed before the ack" before-ack $((12 * MiB + 2 * MiB - 8192)) 16384
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
