#!/usr/bin/env bash
# 112-recovery-thrash.sh - thrash: rounds of kill -9 (one or two sheep, a second one during recovery, the NBD writer's gateway) under a verified write load on two 4:2 VDIs and a 3-copy VDI (dog writers and an NBD writer that reconnects), restart, wait for recovery; every acknowledged write reads back, every object returns to full redundancy without an operator, no err line for a whole object. Prints the counts it checks. THRASH_ROUNDS=N (default 5: each variant once) runs longer by hand.
# timeout: 900
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

ROUNDS=${THRASH_ROUNDS:-5}
N=8
sd_start_cluster $N || bail "eight sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
rec_mkvdi 0 e 4:2 $((32 * MiB)) $((32 * MiB)) || bail "4:2 VDI with data"
rec_mkvdi 0 r 3 $((16 * MiB)) $((16 * MiB)) || bail "3-copy VDI with data"
rec_mkvdi 0 n 4:2 $((16 * MiB)) $((16 * MiB)) || bail "4:2 VDI for the NBD writer"
rec_wait_done 0 $N 1 60 || bail "initial recovery state never settled"

# writer VDI: until $SD_TEST_DIR/stop exists, write 4..64 KiB at random
# offsets through a random sheep; a write that fails is retried (another
# sheep, up to 60 times) so that the range ends wholly new; the reference
# changes only once a write is acknowledged. Counts go to w.VDI.*.
writer() {
	local v=$1 size len off k=0 tries ok
	size=$(stat -c %s "$SD_TEST_DIR/$v.ref")
	while [ ! -e "$SD_TEST_DIR/stop" ]; do
		len=$(((RANDOM % 16 + 1) * 4096))
		off=$((((RANDOM * 32768 + RANDOM) % ((size - len) / 4096)) * 4096))
		head -c "$len" /dev/urandom >"$SD_TEST_DIR/w.$v.data"
		ok=0
		for ((tries = 0; tries < 60; tries++)); do
			if dogn $((RANDOM % N)) vdi write "$v" "$off" "$len" <"$SD_TEST_DIR/w.$v.data" \
				2>>"$SD_TEST_DIR/w.$v.err"; then
				ok=1
				break
			fi
			echo x >>"$SD_TEST_DIR/w.$v.retries"
			sleep 0.3
		done
		if [ $ok = 1 ]; then
			dd if="$SD_TEST_DIR/w.$v.data" of="$SD_TEST_DIR/$v.ref" bs=4096 seek=$((off / 4096)) \
				conv=notrunc status=none
			echo x >>"$SD_TEST_DIR/w.$v.acked"
		else
			echo "$off $len" >>"$SD_TEST_DIR/w.$v.unknown"
		fi
		k=$((k + 1))
	done
}
count() { if [ -e "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# nbd_writer SHEEP [OTHER...]: tests/func/thrash_nbd.py on VDI n, attached
# to SHEEP's NBD port; when that connection dies it reconnects to OTHER...
# in turn (or to SHEEP again, restarted, when none is given).
nbd_writer() {
	local ports=() i
	for i in "$@"; do ports+=("$(sd_nbd_port "$i")"); done
	python3 "$SD_TOP/tests/func/thrash_nbd.py" n "$SD_TEST_DIR/n.ref" "$SD_TEST_DIR" "${ports[@]}"
}

verify_errors=0 rounds_full=0 err_whole=0 variants="" gw_rounds=0 nbd_stuck=0
for ((round = 1; round <= ROUNDS; round++)); do
	rm -f "$SD_TEST_DIR/stop"
	writer e &
	we=$!
	writer r &
	wr=$!
	a=$((1 + RANDOM % (N - 1)))  # sheep 0 stays: it is the one the checks ask
	b=""
	c=$((1 + (a + RANDOM % (N - 2)) % (N - 1)))  # another sheep than a
	# The NBD writer's gateway: sheep a in the gateway rounds (then it
	# reconnects to the others in turn, or waits for a's restart), else
	# one that may or may not be killed.
	g=$((1 + RANDOM % (N - 1)))
	case $((round % 5)) in
	4) g=$a; others=$(for ((i = 1; i <= N; i++)); do echo $(((a + i) % N)); done) ;;
	0) g=$a; others="" ;;
	*) others=$(for ((i = 1; i <= N; i++)); do echo $(((g + i) % N)); done) ;;
	esac
	n_start=$(count "$SD_TEST_DIR/n.acked")
	nbd_writer $g $others &
	wn=$!
	sleep 1
	# (python starts slowly on a loaded box: kill once it is writing)
	for _ in $(seq 150); do
		[ "$(count "$SD_TEST_DIR/n.acked")" -gt "$n_start" ] && break
		sleep 0.2
	done
	n_before=$(count "$SD_TEST_DIR/n.acked")
	case $((round % 5)) in
	1) variant="kill one"; sd_kill $a ;;
	2) variant="kill two"; b=$c; sd_kill $a; sd_kill $b ;;
	3) variant="kill one, then a second during recovery"
	   sd_kill $a
	   sd_wait_nodes 0 $((N - 1)) 30 >/dev/null
	   sleep 1
	   b=$c
	   sd_kill $b ;;
	4) variant="kill the NBD gateway, writer moves to another sheep"; sd_kill $a ;;
	0) variant="kill the NBD gateway, writer waits for its restart"; sd_kill $a ;;
	esac
	case "$variants" in *"$variant;"*) ;; *) variants+="$variant; " ;; esac
	sleep 2
	for i in $a $b; do sd_alive $i || sd_start $i || bail "round $round: restart sheep $i"; done
	sd_wait_nodes 0 $N 60 || bail "round $round: the cluster did not reform"
	sleep 1
	if ((round % 5 == 4 || round % 5 == 0)); then
		# the NBD writer went on through the kill: acknowledged writes after it
		for _ in $(seq 100); do
			[ "$(count "$SD_TEST_DIR/n.acked")" -gt "$n_before" ] && break
			sleep 0.2
		done
		[ "$(count "$SD_TEST_DIR/n.acked")" -gt "$n_before" ] || nbd_stuck=$((nbd_stuck + 1))
		gw_rounds=$((gw_rounds + 1))
	fi
	touch "$SD_TEST_DIR/stop"
	wait $we $wr $wn
	e=$(rec_epoch 0)
	if rec_wait_done 0 $N "$e" 240 >/dev/null; then
		out=$(rec_census --verify 0 1 2 3 4 5 6 7)
		if [ "$(rec_summary short "$out")" = 0 ] && [ "$(rec_summary bad "$out")" = 0 ]; then
			rounds_full=$((rounds_full + 1))
		else
			log "round $round: $(grep -E '^(short|bad|summary)' <<<"$out" | head -5 | xargs)"
		fi
	else
		log "round $round: recovery not done without an operator"
	fi
	for v in e r n; do
		if ! dogn $((RANDOM % N)) vdi read "$v" >"$SD_TEST_DIR/got" 2>>"$SD_TEST_DIR/r.err" ||
			! cmp -s "$SD_TEST_DIR/got" "$SD_TEST_DIR/$v.ref"; then
			verify_errors=$((verify_errors + 1))
			log "round $round ($variant): $v differs from what was acknowledged"
		fi
	done
	log "round $round ($variant, sheep $a${b:+ and $b}): acked e $(count "$SD_TEST_DIR/w.e.acked") r $(count "$SD_TEST_DIR/w.r.acked") nbd $(count "$SD_TEST_DIR/n.acked") (gateway sheep $g, reconnects $(count "$SD_TEST_DIR/n.reconnects")), verify errors $verify_errors, rounds back to full $rounds_full"
done

# An err line about too few fragments is allowed only for an object that
# is not whole; every object is whole now, so none may be there.
err_whole=$(cat "$SD_TEST_DIR"/n*/sheep.log | grep -c "has too few consistent fragments")
nacked=$(count "$SD_TEST_DIR/n.acked")
acked=$(($(count "$SD_TEST_DIR/w.e.acked") + $(count "$SD_TEST_DIR/w.r.acked") + nacked))
unknown=$(($(count "$SD_TEST_DIR/w.e.unknown") + $(count "$SD_TEST_DIR/w.r.unknown") + $(count "$SD_TEST_DIR/n.unknown")))
reconnects=$(count "$SD_TEST_DIR/n.reconnects")
slowest=$(sort -k2 -n "$SD_TEST_DIR/n.reconnects" 2>/dev/null | tail -1 | cut -d' ' -f2)
retries=$(($(count "$SD_TEST_DIR/w.e.retries") + $(count "$SD_TEST_DIR/w.r.retries")))
echo "# thrash: rounds $ROUNDS ($variants) acknowledged writes $acked (NBD $nacked), NBD reconnects $reconnects (slowest ${slowest:-0} s, gateway rounds $gw_rounds), retried attempts $retries, never acknowledged $unknown, verify errors $verify_errors, rounds back to full redundancy $rounds_full/$ROUNDS, err lines for whole objects $err_whole"
check "some writes were acknowledged under thrashing" test "$acked" -gt 0
check_eq "every write was acknowledged in the end (retries allowed)" 0 "$unknown"
check "the NBD writer was acknowledged writes" test "$nacked" -gt 0
if [ "$gw_rounds" -gt 0 ]; then
	check "the NBD writer reconnected after its gateway was killed" test "$reconnects" -ge "$gw_rounds"
	check_eq "the NBD writer went on writing after every gateway kill" 0 "$nbd_stuck"
fi
check_eq "0 verify errors: every acknowledged write reads back" 0 "$verify_errors"
check_eq "every round back to full redundancy without an operator" "$ROUNDS" "$rounds_full"
check_eq "no err line for an object that is whole" 0 "$err_whole"
out=$(rec_census --verify 0 1 2 3 4 5 6 7)
check_eq "final census: every object at full redundancy" 0 "$(rec_summary short "$out")"
check_eq "final census: no fragment fails its checksum" 0 "$(rec_summary bad "$out")"
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
