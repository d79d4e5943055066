#!/usr/bin/env bash
# 108-core-rewrite-race.sh - a whole-object rewrite built from a read taken before another coordinator's write committed must not overwrite that acknowledged write (issue 14, bug 1).
# timeout: 600
. "$SD_TOP/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

# Test hooks (sheep/gateway/twophase.c, gateway.c):
#  SHEEP_TEST_PAUSE_FILE=F: the first sheep whose write path reaches the
#    point named in F ("prepared": between a two-phase write's prepares and
#    commits; "rewrite-read": after gw_rewrite_whole read the object) takes
#    it (F -> F.POINT), writes its port to F.by and waits until F.POINT is
#    gone.
#  SHEEP_TEST_LOCAL_WRITES: each gateway coordinates its own writes, as a
#    coordinator of the previous epoch and the one of the new epoch both do
#    while the epoch moves (what happened in the thrash run).
# The race of the thrash run: write W1 is prepared by coordinator A while
# coordinator B starts W2 on the same object; two holders are down and
# recovery has not moved their fragments, so B rewrites the whole object
# from a read; W1 commits (acknowledged) after B's read and before B's
# commits. B must notice and read again instead of writing W1's bytes back
# to what they were.
export SHEEP_TEST_PAUSE_FILE=$SD_TEST_DIR/pause SHEEP_TEST_LOCAL_WRITES=1
F=$SHEEP_TEST_PAUSE_FILE
N=8
sd_start_cluster $N || bail "eight sheep did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2
check "create a 4 MiB VDI (one object)" dogn 0 vdi create v 4M
SIZE=$((4 << 20)) K64=65536
sd_random "$SD_TEST_DIR/cur" $SIZE
check "write it whole" dogn 0 vdi write v 0 $SIZE <"$SD_TEST_DIR/cur"
check "recovery disabled" dogn 0 cluster recover disable

# The holders of the data object (its fragment files), and the others.
find_holders() {
	holders=() others=()
	for ((i = 0; i < N; i++)); do
		if ls "$(sd_dir $i)/obj" 2>/dev/null | grep -Eq '^00[0-9a-f]{6}00000000_'; then
			holders+=("$i")
		else
			others+=("$i")
		fi
	done
}
find_holders
check_eq "six sheep hold a fragment" 6 "${#holders[@]}"
k1=${holders[0]} k2=${holders[1]}
A=${holders[2]} B=${holders[3]}
log "killing holders $k1 and $k2; W1 via sheep $A, W2 via sheep $B"
sd_kill "$k1"
sd_kill "$k2"
sd_wait_nodes "$A" $((N - 2)) || bail "membership did not drop"
sd_wait_nodes "$B" $((N - 2)) || bail "membership did not drop at $B"

wait_file() { local t=0; while [ ! -e "$1" ] && [ $t -lt 300 ]; do sleep 0.1; t=$((t + 1)); done; [ -e "$1" ]; }
port_of() { echo $(($(cat "$F.by") - SD_PORT_BASE)); }

sd_random "$SD_TEST_DIR/w1" $K64
sd_random "$SD_TEST_DIR/w2" $K64
rm -f "$F".*
echo prepared >"$F"
dogn "$A" vdi write v 0 $K64 <"$SD_TEST_DIR/w1" &
p1=$!
check "W1 paused between its prepares and commits" wait_file "$F.prepared"
check_eq "W1 paused at its gateway" "$A" "$(port_of)"
rm -f "$F.by"
echo rewrite-read >"$F"
dogn "$B" vdi write v $((2 << 20)) $K64 <"$SD_TEST_DIR/w2" &
p2=$!
check "W2 paused after reading the object for a whole rewrite" wait_file "$F.rewrite-read"
check_eq "W2 paused at its gateway" "$B" "$(port_of)"
rm -f "$F.prepared"
wait $p1
check_eq "W1 acknowledged" 0 $?
rm -f "$F.rewrite-read"
wait $p2
check_eq "W2 acknowledged" 0 $?
cp "$SD_TEST_DIR/cur" "$SD_TEST_DIR/want"
dd if="$SD_TEST_DIR/w1" of="$SD_TEST_DIR/want" conv=notrunc status=none
dd if="$SD_TEST_DIR/w2" of="$SD_TEST_DIR/want" bs=$K64 seek=32 conv=notrunc status=none
want=$(sd_sha "$SD_TEST_DIR/want")
vdi_sha() { dogn "$1" vdi read v 0 $SIZE | sha256sum | cut -d' ' -f1; }
w1_sha() { dogn "$1" vdi read v 0 $K64 | sha256sum | cut -d' ' -f1; }
check_eq "W1's bytes read back (via $A)" "$(sd_sha "$SD_TEST_DIR/w1")" "$(w1_sha "$A")"
check_eq "both writes read back (via $B)" "$want" "$(vdi_sha "$B")"
check_eq "both writes read back (via ${others[0]})" "$want" "$(vdi_sha "${others[0]}")"
check "W2 found the object moved and read it again" \
	grep -q "moved since it was read" "$(sd_dir "$B")/sheep.log"

# The killed holders return and recovery runs: still both writes.
rm -f "$F"
sd_start "$k1" || bail "sheep $k1 did not restart"
sd_start "$k2" || bail "sheep $k2 did not restart"
sd_wait_nodes 0 $N || not_ok "the killed sheep did not rejoin"
check "recovery enabled" dogn 0 cluster recover enable
for i in "$k1" "$k2" "$A"; do
	check_eq "both writes read back after the restart (via $i)" "$want" "$(vdi_sha "$i")"
done

# Part 2: one write in flight across two epoch changes (a holder killed
# and restarted while it waits) at each step of a partial write and of a
# whole-object rewrite. Acknowledged: the new bytes read back everywhere;
# refused: the old ones, wholly.
# epoch_case NAME POINT VIA OFF: write 64 KiB at OFF through sheep VIA,
# paused at POINT while holder $H (a holder of the object, no gateway) is killed and restarted.
epoch_case() {
	local name=$1 point=$2 via=$3 off=$4 h=$H rc
	sd_random "$SD_TEST_DIR/w" $K64
	cp "$SD_TEST_DIR/want" "$SD_TEST_DIR/new"
	dd if="$SD_TEST_DIR/w" of="$SD_TEST_DIR/new" bs=$K64 seek=$((off / K64)) conv=notrunc \
		status=none
	rm -f "$F".*
	echo "$point" >"$F"
	dogn "$via" vdi write v "$off" $K64 <"$SD_TEST_DIR/w" &
	local p=$!
	check "$name: paused at $point" wait_file "$F.$point"
	sd_kill "$h"
	sd_wait_nodes "$via" $((N - 1 - ${5:-0})) || not_ok "$name: membership did not drop"
	sd_start "$h" || bail "sheep $h did not restart"
	sd_wait_nodes "$via" $((N - ${5:-0})) || not_ok "$name: sheep $h did not rejoin"
	rm -f "$F.$point"
	wait $p
	rc=$?
	log "$name: write returned $rc"
	[ $rc -eq 0 ] && cp "$SD_TEST_DIR/new" "$SD_TEST_DIR/want"
	local w i
	w=$(sd_sha "$SD_TEST_DIR/want")
	for i in "$via" "$h" "${others[0]}"; do
		check_eq "$name: reads wholly $( [ $rc -eq 0 ] && echo new || echo old) (via $i)" \
			"$w" "$(vdi_sha "$i")"
	done
}
rm -f "$F"
H=${holders[4]}
epoch_case "partial write, epochs move between prepares and commits" prepared "$A" $((1 << 20))
check_eq "partial write acknowledged" "$(sd_sha "$SD_TEST_DIR/new")" "$(sd_sha "$SD_TEST_DIR/want")"
# Whole-object rewrites: two holders down, recovery off. The sheep that
# left and came back may hold other positions now (recovery moved the
# object's fragments): two of its current holders go down, and the
# epochs move by a third, none of them a gateway of these writes.
check "recovery settled" rec_wait_done 0 $N 1 120
check "recovery disabled again" dogn 0 cluster recover disable
find_holders
cur=()
for i in "${holders[@]}"; do [ "$i" != "$A" ] && [ "$i" != "$B" ] && cur+=("$i"); done
check "three current holders besides the gateways" [ ${#cur[@]} -ge 3 ]
k1=${cur[0]} k2=${cur[1]} H=${cur[2]}
log "killing current holders $k1 and $k2; sheep $H restarts during the writes"
sd_kill "$k1"
sd_kill "$k2"
sd_wait_nodes "$A" $((N - 2)) || bail "membership did not drop"
epoch_case "rewrite, epochs move after its read" rewrite-read "$A" $((3 << 20)) 2
epoch_case "rewrite, epochs move between prepares and commits" prepared "$B" $((3 << 20)) 2
sd_start "$k1" || bail "sheep $k1 did not restart"
sd_start "$k2" || bail "sheep $k2 did not restart"
sd_wait_nodes 0 $N || not_ok "the killed sheep did not rejoin"
check "recovery enabled again" dogn 0 cluster recover enable
for i in "$k1" "$k2" "$B"; do
	check_eq "every acknowledged write reads back at the end (via $i)" \
		"$(sd_sha "$SD_TEST_DIR/want")" "$(vdi_sha "$i")"
done
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
