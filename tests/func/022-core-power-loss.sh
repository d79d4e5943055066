#!/usr/bin/env bash
# 022-core-power-loss.sh - every sheep "powered off" at once at a random moment of a write load, its stores forgetting each write no sync covered (tests/func/plshim.c): after restart every acknowledged write is there and each VDI reads wholly old or wholly new for the write in flight.
# timeout: 900
. "$SD_TOP/tests/func/lib.sh"

# Durable sheep (no -n) under the LD_PRELOAD shim, stores in $DISK. A
# round: random writes through random sheep, to a 4:2 and a 3-copy VDI
# in turn, each applied to the reference once acknowledged; after a
# random 0.3-2.5 s every sheep gets SIGKILL at once, pl_rollback.py
# forgets what no fsync/fdatasync/syncfs covered, all six restart. Then
# both VDIs must read as the reference, except the one write in flight,
# which is wholly there or wholly absent. PL_ROUNDS (default 3) rounds;
# bench/powerloss.sh runs many. PL_SHEEP_OPTS adds sheep options
# (bench/powerloss.sh --control passes -n, no syncs: the test must fail).
# PL_KEEP=1 (bench/powerloss.sh --keep) logs every acknowledged write in
# acked.log ("round k vdi offset length") and stops at the first mismatch
# (exit 3), every sheep killed, keeping the stores, their logs, the
# reference ($v.ref) and what was read ($v.got) for a post-mortem.
ROUNDS=${PL_ROUNDS:-3}
N=6
DISK=$SD_TEST_DIR/disk UNDO=$SD_TEST_DIR/undo
mkdir -p "$DISK" "$UNDO"
SHIM=$SD_TEST_DIR/plshim.so
cc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$SHIM" "$SD_TOP/tests/func/plshim.c" -ldl -pthread ||
	bail "build plshim.so"

pl_start() {
	local i=$1
	mkdir -p "$DISK/n$i"
	LD_PRELOAD=$SHIM PLSHIM_DIR=$DISK PLSHIM_UNDO=$UNDO ASAN_OPTIONS=verify_asan_link_order=0 \
		"${SD_SHEEP_BIN:-$SHEEP}" "$DISK/n$i" -f -z "$i" -p "$(sd_port "$i")" -y 127.0.0.1 \
		-b 127.0.0.1 -c "local:path=$SD_TEST_DIR/local" -l level=info --nbd off ${PL_SHEEP_OPTS:-} \
		>>"$SD_TEST_DIR/sheep$i.out" 2>&1 &
	SD_PIDS[$i]=$!
	sd_wait_port "$(sd_port "$i")" 30
}
pl_start_all() {
	local i
	for ((i = 0; i < N; i++)); do pl_start $i || return 1; done
	sd_wait_nodes 0 $N 60
}

MiB=$((1 << 20))
SIZE=$((8 * MiB))
pl_start_all || bail "six durable sheep under the shim did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2
check "create the 4:2 VDI" dogn 0 vdi create ec 16M
check "create the 3-copy VDI" dogn 0 vdi create -c 3 rep 16M
for v in ec rep; do
	sd_random "$SD_TEST_DIR/$v.ref" $SIZE
	check "fill $v" dogn 1 vdi write $v 0 $SIZE <"$SD_TEST_DIR/$v.ref"
done
log "undo logs before the first power-off: $(du -sh "$UNDO" | cut -f1)"

# pl_keep_stop SHEEP SHA: with PL_KEEP, when the read through SHEEP (SHA)
# is not the reference, keep everything and stop.
pl_keep_stop() {
	[ -n "${PL_KEEP:-}" ] && [ "$2" != "$old" ] || return 0
	dogn "$1" vdi read $v 0 $SIZE >"$SD_TEST_DIR/$v.got" 2>/dev/null
	log "round $round: $v: MISMATCH through sheep $1: the stores, logs, $v.ref and $v.got are kept in $SD_TEST_DIR"
	kill -9 "${SD_PIDS[@]}" 2>/dev/null
	exit 3
}

RANDOM=$(( $$ % 32768 ))
for ((round = 1; round <= ROUNDS; round++)); do
	pids="${SD_PIDS[*]}"
	delay=$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + (r % 2200) / 1000 }')
	( sleep "$delay"; kill -9 $pids 2>/dev/null ) &
	# (bash reports each killed sheep on stderr: that is the power-off)
	killer=$!
	acked=0 inflight=""
	for ((k = 0; ; k++)); do
		v=ec; ((k % 2)) && v=rep
		off=$(( (RANDOM * 32768 + RANDOM) % (SIZE - 20000) ))
		len=$(( 1 + RANDOM % 16384 ))
		sd_random "$SD_TEST_DIR/chunk" $len
		if dogn $((RANDOM % N)) vdi write $v $off $len <"$SD_TEST_DIR/chunk" 2>/dev/null; then
			dd if="$SD_TEST_DIR/chunk" of="$SD_TEST_DIR/$v.ref" bs=1 seek=$off conv=notrunc \
				status=none
			acked=$((acked + 1))
			[ -n "${PL_KEEP:-}" ] && echo "$round $k $v $off $len" >>"$SD_TEST_DIR/acked.log"
		else
			inflight="$v $off $len"
			cp "$SD_TEST_DIR/chunk" "$SD_TEST_DIR/inflight"
			break
		fi
	done
	wait $killer
	for ((i = 0; i < N; i++)); do wait "${SD_PIDS[$i]}" 2>/dev/null; unset "SD_PIDS[$i]"; done
	log "round $round: power off after ${delay}s, $acked write(s) acknowledged, in flight: $inflight"
	log "round $round: $(python3 "$SD_TOP/tests/func/pl_rollback.py" "$UNDO" "$DISK")"
	# The local driver's rendezvous is kept as the kill left it (member
	# files of the dead, no LEAVEs): the first sheep back buries them all
	# before its JOIN (tests/unit/test_cluster_local.c, "first back is alone").
	log "round $round: rendezvous left behind: $(ls "$SD_TEST_DIR/local" | tr '\n' ' ')"
	pl_start_all || bail "round $round: the cluster did not come back"
	set -- $inflight
	for v in ec rep; do
		old=$(sd_sha "$SD_TEST_DIR/$v.ref")
		new=$old
		if [ "${1:-}" = $v ]; then
			cp "$SD_TEST_DIR/$v.ref" "$SD_TEST_DIR/$v.new"
			dd if="$SD_TEST_DIR/inflight" of="$SD_TEST_DIR/$v.new" bs=1 seek=$2 conv=notrunc \
				status=none
			new=$(sd_sha "$SD_TEST_DIR/$v.new")
		fi
		got=""
		for t in 1 2 3 4 5; do
			got=$(dogn 2 vdi read $v 0 $SIZE 2>/dev/null | sha256sum | cut -d' ' -f1)
			[ "$got" = "$old" ] || [ "$got" = "$new" ] && break
			sleep 2
		done
		if [ "$got" = "$new" ] && [ "$new" != "$old" ]; then
			log "round $round: $v: the write in flight is there"
			cp "$SD_TEST_DIR/$v.new" "$SD_TEST_DIR/$v.ref"
			old=$new
		fi
		pl_keep_stop 2 "$got"
		check_eq "round $round: $v: every acknowledged write, the one in flight whole or absent" \
			"$old" "$got"
		got=$(dogn 5 vdi read $v 0 $SIZE | sha256sum | cut -d' ' -f1)
		pl_keep_stop 5 "$got"
		check_eq "round $round: $v: the same through another sheep" "$old" "$got"
	done
done
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
