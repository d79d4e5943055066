#!/usr/bin/env bash
# 033-core-early-ack-rebalance.sh - acknowledged EC range writes whose commits have not arrived (held back, and the unchanged fragments' bumps lost, as a power cut leaves them) survive a placement change that moves their fragments: recovery decides such a write before it copies a fragment from under it, so the whole VDI reads back (sha256) after the rebalance, through another sheep.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

# Test hooks:
#  SHEEP_TEST_COMMIT_DELAY_MS=60000: every coordinator holds its commits
#    for a minute, past the end of the test: each acknowledged write stays
#    pending (prepared, durable) on the fragments it changes.
#  SHEEP_TEST_DROP_LAZY=1: the unchanged fragments' version bumps are lost
#    (they stay at the write's base, with nothing pending), as after a
#    power cut that lost those unsynced records.
# Then "dog node vnodes set" starts a fresh placement ring (an anchor):
# fragments move between the six sheep. Before session 14 recovery copied
# the bytes under a pending write to the fragment's new holder and the old
# copy, with the write, went away: the power-loss test lost the last
# acknowledged write of round 32 (the ring's first re-anchor, epoch 33).
export SHEEP_TEST_COMMIT_DELAY_MS=60000
export SHEEP_TEST_DROP_LAZY=1
N=6
MiB=$((1 << 20))
SIZE=$((32 * MiB))
sd_start_cluster $N || bail "six sheep did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2
check "create 4:2 VDI" dogn 0 vdi create v 32M
sd_random "$SD_TEST_DIR/cur" $SIZE
check "write 32 MiB" dogn 0 vdi write v 0 $SIZE <"$SD_TEST_DIR/cur"
e0=$(rec_epoch 0)
check "settled before the writes" rec_wait_done 0 $N "$e0"

# One small range write per object (8 objects), each inside one data
# fragment, through the sheep in turn: acknowledged, commits held back.
RANDOM=3333
bad=0
for o in 0 1 2 3 4 5 6 7; do
	len=$(( 512 + RANDOM % 8192 ))
	off=$(( o * 4 * MiB + (RANDOM % 4) * MiB + 4096 * (RANDOM % 64) ))
	sd_random "$SD_TEST_DIR/chunk" "$len"
	if dogn $(( o % N )) vdi write v "$off" "$len" <"$SD_TEST_DIR/chunk"; then
		dd if="$SD_TEST_DIR/chunk" of="$SD_TEST_DIR/cur" bs=1 seek="$off" conv=notrunc status=none
	else
		bad=$((bad + 1))
	fi
done
check_eq "8 range writes acknowledged" 0 "$bad"

# A fresh ring: fragments change holders while those writes are pending.
check "vnodes set 512 on sheep 2 (a new anchor ring)" dogn 2 node vnodes set 512
e1=$(rec_epoch 0)
check "the epoch moved on ($e0 -> $e1)" test "$e1" -gt "$e0"
check "recovery after the new ring completes" rec_wait_done 0 $N "$e1" 120
n=$(cat "$SD_TEST_DIR"/n*/sheep.log | grep -c 'settled (.*) before recovery reads it')
log "recovery met a pending early-ack write on $n copies and decided it first"
check "recovery met pending writes on the copies it moved" test "$n" -gt 0
check_eq "every acknowledged write reads back after the rebalance (via sheep 4)" \
	"$(sd_sha "$SD_TEST_DIR/cur")" "$(dogn 4 vdi read v 0 $SIZE | sha256sum | cut -d' ' -f1)"
check_eq "the same via sheep 1" \
	"$(sd_sha "$SD_TEST_DIR/cur")" "$(dogn 1 vdi read v 0 $SIZE | sha256sum | cut -d' ' -f1)"
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
