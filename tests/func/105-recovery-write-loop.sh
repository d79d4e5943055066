#!/usr/bin/env bash
# 105-recovery-write-loop.sh - eight sheep: a dog write loop keeps rewriting a 4:2 and a 3-copy VDI while a node is killed and recovery runs; the final content is exactly what was written and every object ends at full redundancy.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

sd_start_cluster 8 || bail "eight sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
rec_mkvdi 0 e42 4:2 $((48 * MiB)) $((48 * MiB)) || bail "4:2 VDI with data"
rec_mkvdi 0 r3 3 $((24 * MiB)) $((24 * MiB)) || bail "3-copy VDI with data"
rec_wait_done 0 8 1 60 || bail "initial recovery state never settled"
e0=$(rec_epoch 0)
dogn 0 node recovery set-throttle 2 20 || bail "set-throttle"

# The loop: 40 writes of 64 KiB..1 MiB at scattered offsets, each applied to
# the reference only once dog acknowledged it.
writer() {
	local k v size off fails=0
	for ((k = 0; k < 40; k++)); do
		v=$([ $((k % 3)) = 0 ] && echo r3 || echo e42)
		size=$(((RANDOM % 16 + 1) * 65536))
		off=$(((RANDOM * 32768 + RANDOM) % ($(stat -c %s "$SD_TEST_DIR/$v.ref") - size)))
		head -c "$size" /dev/urandom >"$SD_TEST_DIR/w.$k"
		if dogn $((k % 5)) vdi write "$v" "$off" "$size" <"$SD_TEST_DIR/w.$k" 2>>"$SD_TEST_DIR/w.err"; then
			dd if="$SD_TEST_DIR/w.$k" of="$SD_TEST_DIR/$v.ref" bs=64k oflag=seek_bytes seek="$off" conv=notrunc status=none
		else
			fails=$((fails + 1))
		fi
		rm -f "$SD_TEST_DIR/w.$k"
	done
	echo "$fails" >"$SD_TEST_DIR/w.fails"
}
writer &
wpid=$!
sleep 0.5
sd_kill 6
sd_wait_nodes 0 7 || log "sheep 0 still lists the killed node"
wait $wpid
check_eq "every write during recovery was acknowledged" 0 "$(cat "$SD_TEST_DIR/w.fails")"
[ -s "$SD_TEST_DIR/w.err" ] && head -c 500 "$SD_TEST_DIR/w.err" | sed 's/^/# /'
dogn 0 node recovery set-throttle 8 0
check "recovery completes" rec_wait_done 0 7 $((e0 + 1)) 150
out=$(rec_census --verify 0 1 2 3 4 5 7)
log "$(grep summary <<<"$out")"
check_eq "every object at full redundancy" 0 "$(rec_summary short "$out")"
check_eq "every fragment reads back" 0 "$(rec_summary bad "$out")"
rec_check_read 0 e42 "after the write loop"
rec_check_read 2 r3 "after the write loop"
sd_done
