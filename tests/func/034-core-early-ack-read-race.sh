#!/usr/bin/env bash
# 034-core-early-ack-read-race.sh - a read that meets an acknowledged EC range write still pending (its commits not yet arrived) returns the new bytes even when, between its read round and its probe of the write, the epoch moves (a sheep joins) or another sheep commits the write: it reads again instead of serving what its first round read (the older generation). Found by the power-loss test (bench/powerloss.sh: an in-flight write read old, then new).
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

# Test hooks:
#  SHEEP_TEST_COMMIT_DELAY_MS=60000: every coordinator holds its commits
#    for a minute: an acknowledged write stays pending (prepared) on every
#    fragment, decided, until a reader or recovery commits it.
#  SHEEP_TEST_PAUSE_FILE (lib/testhook.h), point read-early: the EC read
#    that found an early-ack write pending stops after its read round,
#    before the probe that decides the write, while the test changes the
#    cluster.
export SHEEP_TEST_COMMIT_DELAY_MS=60000
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
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# race NAME OFFSET WRITER READER CHANGE...: write 4 KiB at OFFSET through
# WRITER (acknowledged, commits held), read it through READER paused at
# read-early, run CHANGE meanwhile, let the read go: it must return the
# new bytes.
race() {
	local name=$1 off=$2 w=$3 r=$4 i
	shift 4
	sd_random "$SD_TEST_DIR/patch" 4096
	check "$name: the write is acknowledged" dogn "$w" vdi write v "$off" 4096 <"$SD_TEST_DIR/patch"
	dd if="$SD_TEST_DIR/patch" of="$SD_TEST_DIR/cur" bs=4096 seek=$((off / 4096)) conv=notrunc \
		status=none
	rm -f "$F".*
	echo read-early >"$F"
	dogn "$r" vdi read v "$off" 4096 >"$SD_TEST_DIR/back" &
	local rd=$!
	for ((i = 0; i < 200; i++)); do [ -e "$F.read-early" ] && break; sleep 0.1; done
	check "$name: the read through sheep $r met the pending write and stopped before its probe" \
		test -e "$F.read-early"
	"$@"
	rm -f "$F" "$F.read-early"
	wait $rd
	check_eq "$name: the read returns the acknowledged bytes" "$(sha_of "$SD_TEST_DIR/patch")" \
		"$(sha_of "$SD_TEST_DIR/back")"
}

# 1. The epoch moves under the read: its probe is refused (the peers are
#    at the next epoch). Serving the first round's bytes then returned the
#    older generation for an acknowledged write.
join6() {
	check "sheep 6 joins meanwhile" sd_start 6
	check "seven members" sd_wait_nodes 0 7
}
race "epoch moved" $((4 * MiB + MiB + 8192)) 0 3 join6
# Recovery after the join settles the writes it meets: let it finish, so
# that it does not commit the next one before the read meets it.
check "recovery after the join completes" rec_wait_done 0 7 "$(rec_epoch 0)" 120

# 2. Another sheep's read commits the write under the read: the probe
#    finds nothing pending any more, and the first round's bytes are the
#    older generation.
other_read() {
	check_eq "another read (sheep 5) commits the write meanwhile and returns it" \
		"$(sha_of "$SD_TEST_DIR/patch")" \
		"$(dogn 5 vdi read v "$1" 4096 | sha256sum | cut -d' ' -f1)"
}
off=$((8 * MiB + 2 * MiB + 4096))
race "committed meanwhile" $off 1 3 other_read $off

check_eq "the whole VDI reads back (via sheep 4)" "$(sha_of "$SD_TEST_DIR/cur")" \
	"$(dogn 4 vdi read v 0 $SIZE | sha256sum | cut -d' ' -f1)"
for ((i = 0; i <= N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
