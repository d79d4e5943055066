#!/usr/bin/env bash
# 028-core-lazy-bump.sh - the protocol before last-changed versions (SHEEP_TEST_BUMPS: each EC range write bumps the fragments it leaves unchanged, 035 tests the records that replaced that): an EC range write makes only the changed fragments' prepares durable: with every unchanged fragment's version bump lost (as a power cut may lose it), each acknowledged write reads back through another sheep, a coordinator killed after its ack, between its prepares and its ack, or between its parity and data prepares (kill -9) leaves each range wholly old or new with every acknowledged write present (the same at once and after the 2 s grace, and after the next write of the object: a read never sees old, then new), and so does a restart of every sheep.
# timeout: 600
. "$SD_TOP/tests/func/lib.sh"
. "$SD_TOP/tests/func/crash_lib.sh"

# Test hooks:
#  SHEEP_TEST_DROP_LAZY=1: a holder answers the version-only prepare of a
#    fragment the write does not change (PEER_WH_LAZY) without keeping it,
#    so every unchanged fragment stays at the write's base version: the
#    state a power cut leaves when it loses those unsynced records. Only
#    the rule for such fragments (gw_settle: outside the write's touched
#    set, at its base version) makes the writes readable.
#  SHEEP_TEST_CRASH_FILE: as in 021 (after-ack, before-ack, or a number
#    to find an object's coordinator), and mid-prepare: the coordinator
#    sends every prepare but those of the data fragments the write
#    changes, then dies.
#  SHEEP_TEST_BUMPS=1: range writes send the unchanged fragments a
#    version-only prepare instead of recording their last-changed
#    versions (what this test's rules are about; the settle code for
#    such writes stays, for writes pending from a sheep before records).
export SHEEP_TEST_BUMPS=1
export SHEEP_TEST_DROP_LAZY=1
export SHEEP_TEST_CRASH_FILE=$SD_TEST_DIR/crash
GRACE=2.3 # a dead coordinator's pending write is decided after 2 s (SD_PEER_PEND_GRACE_MS)
N=6
MiB=$((1 << 20))
SIZE=$((16 * MiB))
sd_start_cluster $N || bail "six sheep did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2
check "create 4:2 VDI" dogn 0 vdi create v 16M
sd_random "$SD_TEST_DIR/cur" $SIZE
check "write 16 MiB" dogn 0 vdi write v 0 $SIZE <"$SD_TEST_DIR/cur"
vdi_sha() { dogn "$1" vdi read v 0 $SIZE | sha256sum | cut -d' ' -f1; }
bumped() { cat "$SD_TEST_DIR"/n*/sheep.log | grep -c 'brought to it'; }

# 1. Small writes, each inside one data fragment (1 MiB of a 4 MiB object):
#    one data fragment and both parities change, three fragments only get
#    a (dropped) version bump. Each reads back through another sheep.
RANDOM=2626
bad=0
for i in $(seq 1 14); do
	len=$(( 512 + RANDOM % 8192 ))
	off=$(( (RANDOM * 32768 + RANDOM) % (SIZE - len) ))
	if [ $((off / MiB)) != $(((off + len - 1) / MiB)) ]; then off=$(( off / MiB * MiB )); fi
	[ $((i % 5)) = 0 ] && off=$(( 4 * MiB + 2 * MiB + i * 4096 )) # one object again
	w=$(( i % N ))
	r=$(( (w + 1 + i % 5) % N ))
	sd_random "$SD_TEST_DIR/chunk" "$len"
	dogn "$w" vdi write v "$off" "$len" <"$SD_TEST_DIR/chunk" || { log "write $i failed"; bad=$((bad + 1)); continue; }
	dd if="$SD_TEST_DIR/chunk" of="$SD_TEST_DIR/cur" bs=1 seek="$off" conv=notrunc status=none
	sleep $GRACE
	dogn "$r" vdi read v "$off" "$len" >"$SD_TEST_DIR/back" || { log "read $i failed"; bad=$((bad + 1)); continue; }
	if ! cmp -s "$SD_TEST_DIR/chunk" "$SD_TEST_DIR/back"; then
		log "write of $len bytes at $off via sheep $w read back differently via sheep $r"
		bad=$((bad + 1))
	fi
done
check_eq "14 writes with every unchanged fragment's bump lost, each read back via another sheep" 0 "$bad"
check_eq "whole VDI matches the reference" "$(sd_sha "$SD_TEST_DIR/cur")" "$(vdi_sha 3)"
n=$(bumped)
log "unchanged fragments brought to a write's version by a reader or writer: $n log lines"
check "the rule for unchanged fragments was what made them readable" test "$n" -gt 0


# crash_case NAME MODE OFFSET LEN: 021's crash cases with the bumps lost.
crash_case() {
	local name=$1 mode=$2 off=$3 len=$4 got want
	crash_find_coordinator "$name" "$off" "$len"
	local c=$CRASH_C
	crash_write "$name" "$mode" "$off" "$len"
	local dead=$CRASH_DEAD old_sha=$CRASH_OLD new_sha=$CRASH_NEW
	if [ "$mode" = after-ack ]; then
		check_eq "$name: the coordinator acknowledged, then died" "$c 0" "$dead $CRASH_RC"
	else
		check_eq "$name: the coordinator died unacknowledged" "$c 2" "$dead $CRASH_RC"
	fi
	[ $dead -ge 0 ] || return
	local r=$(( (dead + 1) % N ))
	# At once, while the dead coordinator's write is pending on the
	# changed fragments only (fewer than the acknowledgement needs, so
	# not yet decided): what this read returns must be what every later
	# read returns. Serving the older generation here, then committing
	# the write once it is old, changed the range under its reader (the
	# power-loss test's round 5/6 in session 14).
	local first
	first=$(vdi_sha "$r")
	sleep $GRACE
	got=$(vdi_sha "$r")
	check_eq "$name: a read at once and a read after the grace agree" "$first" "$got"
	if [ "$mode" = after-ack ]; then
		want=$new_sha
		check_eq "$name: the acknowledged write reads back (sheep $r)" "$want" "$got"
	else
		if [ "$got" = "$new_sha" ]; then want=$new_sha; log "$name: rolled forward"; else want=$old_sha; fi
		check_eq "$name: reads wholly old or wholly new" "$want" "$got"
	fi
	check_eq "$name: same via another sheep" "$want" "$(vdi_sha $(( (r + 2) % N )))"
	sd_start "$dead" || bail "sheep $dead did not restart"
	sd_wait_nodes 0 $N || not_ok "$name: sheep $dead did not rejoin"
	check_eq "$name: same after sheep $dead returned (read via it)" "$want" "$(vdi_sha "$dead")"
	[ "$want" = "$new_sha" ] && cp "$SD_TEST_DIR/new" "$SD_TEST_DIR/cur"
}

crash_case "killed after the ack, before the commits" after-ack $((8 * MiB + 8192)) 8192
crash_case "killed after the prepares, before the ack" before-ack $((12 * MiB + 4096)) 4096
# The coordinator dies in the middle of the fan-out: the parities have the
# write prepared, the data fragment it changes never got it (as after a
# power cut that lost that prepare). Readers of the range read only the
# data fragments and serve the old bytes, so the write must never be
# committed later: the next write of the object (which settles it) leaves
# the range old. (It was committed, from the parities and the unchanged
# fragments, until session 14: bench/powerloss.sh, round 44 of a run.)
name="killed between the parity and the data prepares"
off=$((4 * MiB + 3 * MiB + 8192))
crash_find_coordinator "$name" $off 4096
crash_write "$name" mid-prepare $off 4096
check_eq "$name: the coordinator died unacknowledged" "$CRASH_C 2" "$CRASH_DEAD $CRASH_RC"
if [ $CRASH_DEAD -ge 0 ]; then
	r=$(( (CRASH_DEAD + 1) % N ))
	first=$(dogn $r vdi read v $off 4096 | sha256sum | cut -d' ' -f1)
	check_eq "$name: the range reads old at once (the write is not on the data fragment it changes: dropped, never committed)" \
		"$(dd if="$SD_TEST_DIR/cur" bs=4096 skip=$((off / 4096)) count=1 status=none | sha256sum | cut -d' ' -f1)" \
		"$first"
	sleep $GRACE
	# the next write of the object meets the old pending write and settles it
	crash_write_again "$name" $r $off
	check_eq "$name: the range still reads old" "$first" \
		"$(dogn $(( (r + 1) % N )) vdi read v $off 4096 | sha256sum | cut -d' ' -f1)"
	sd_start "$CRASH_DEAD" || bail "sheep $CRASH_DEAD did not restart"
	sd_wait_nodes 0 $N || not_ok "$name: sheep $CRASH_DEAD did not rejoin"
fi

# 2. Every sheep killed at once and restarted (pending and unbumped
#    fragments come back from the logs): everything reads back.
for ((i = 0; i < N; i++)); do sd_kill $i; done
for ((i = 0; i < N; i++)); do sd_start $i || bail "sheep $i did not restart"; done
sd_wait_nodes 0 $N || not_ok "the cluster did not re-form"
check_eq "after a restart of every sheep the VDI matches (via sheep 4)" \
	"$(sd_sha "$SD_TEST_DIR/cur")" "$(vdi_sha 4)"
sd_random "$SD_TEST_DIR/patch" 4096
check "the volume takes a new write" dogn 2 vdi write v $((8 * MiB + 65536)) 4096 <"$SD_TEST_DIR/patch"
dd if="$SD_TEST_DIR/patch" of="$SD_TEST_DIR/cur" bs=4096 seek=$(((8 * MiB + 65536) / 4096)) \
	conv=notrunc status=none
sleep $GRACE
check_eq "and reads back whole (via sheep 1)" "$(sd_sha "$SD_TEST_DIR/cur")" "$(vdi_sha 1)"
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
