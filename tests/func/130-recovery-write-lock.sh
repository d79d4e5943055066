#!/usr/bin/env bash
# 130-recovery-write-lock.sh - a write to an object whose coordinator is rebuilding its own fragment of it, while the rebuild has to settle an acknowledged write left pending by the dead coordinator: the gateway is told to retry (recovery goes first), and recovery must settle under the object lock the write holds. The write held the lock through its retries: both waited until the write gave up (EIO after 30 s; func/123's nbdcopy failed so in CI). The write is acknowledged, and everything reads back.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

# Test hooks:
#  SHEEP_TEST_COMMIT_DELAY_MS=60000: a coordinator holds its commits for a
#    minute, so an acknowledged range write stays pending (prepared) on
#    every fragment when its coordinator is killed.
#  SHEEP_TEST_PAUSE_FILE (lib/testhook.h), point "rec-read OID": the
#    recovery job of that object stops before reading a source, its
#    fragment still "being recovered" (a gateway touching it is told to
#    retry).
export SHEEP_TEST_COMMIT_DELAY_MS=60000
export SHEEP_TEST_PAUSE_FILE=$SD_TEST_DIR/pause
F=$SHEEP_TEST_PAUSE_FILE
N=7
sd_start_cluster $N || bail "seven sheep did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2
check "create a 4:2 VDI" dogn 0 vdi create v 16M
ref=$SD_TEST_DIR/ref
sd_random "$ref" $((4 * MiB))
check "write its first object" dogn 0 vdi write v 0 $((4 * MiB)) <"$ref"

loc=$(dogn 0 vdi object location v 0)
oid=$(sed -n 's/.*object \(0x[0-9a-f]*\) .*/\1/p' <<<"$loc" | head -n1)
holder_of() { sed -n "s/.*:\([0-9]*\) has the object .*fragment $1 of.*/\1/p" <<<"$2"; }
c=$(( $(holder_of 0 "$loc") - SD_PORT_BASE ))
log "object $oid, coordinator (fragment 0) sheep $c"

# patch FILE OFFSET: 4 KiB of random bytes written into the reference too.
patch() {
	sd_random "$1" 4096
	dd if="$1" of="$ref" bs=4096 seek=$(($2 / 4096)) conv=notrunc status=none
}
patch "$SD_TEST_DIR/p0" $((64 * 1024))
check "a 4 KiB write through the coordinator is acknowledged (its commits held)" \
	dogn $c vdi write v $((64 * 1024)) 4096 <"$SD_TEST_DIR/p0"

echo "rec-read $oid" >"$F"
sd_kill $c
others=()
for ((i = 0; i < N; i++)); do [ $i = $c ] || others+=($i); done
g=${others[0]}
check "the coordinator is killed; six members left" sd_wait_nodes $g 6
for _ in $(seq 300); do [ -e "$F.rec-read" ] && break; sleep 0.1; done
check "the rebuild of the dead coordinator's fragment stops before its first read" \
	test -e "$F.rec-read"
n=$(( $(cat "$F.by") - SD_PORT_BASE ))
for w in "${others[@]}"; do [ $w = $n ] || break; done
log "rebuilding and coordinating: sheep $n; writing through sheep $w"

patch "$SD_TEST_DIR/p1" $((2 * MiB))
dogn $w vdi write v $((2 * MiB)) 4096 <"$SD_TEST_DIR/p1" &
wp=$!
slog=$(sd_dir $n)/sheep.log
retrying() { grep -q "${oid#0x}: Ask to try again" "$slog"; }
for _ in $(seq 100); do retrying && break; sleep 0.1; done
check "the write is told to retry while the fragment is being rebuilt" retrying
rm -f "$F.rec-read"
check "the write is acknowledged once the rebuild went on" wait $wp
grep -E "settled \(|an early-ack write pending" "$slog" | sed 's/^/# /' | head -n 3
check "the rebuild settled the dead coordinator's pending write" \
	grep -q "an early-ack write pending on the copy" "$slog"
for r in "${others[@]}"; do
	check_eq "object 0 reads back through sheep $r (both writes)" "$(sd_sha "$ref")" \
		"$(dogn $r vdi read v 0 $((4 * MiB)) | sha256sum | cut -d' ' -f1)"
done
check "recovery completes on the six sheep" rec_wait_done $g 6 "$(rec_epoch $g)" 120
loc=$(dogn $g vdi object location v 0)
check_eq "the sheep that rebuilt is the object's new coordinator (holds fragment 0)" $n \
	$(( $(holder_of 0 "$loc") - SD_PORT_BASE ))
for r in "${others[@]}"; do check "sheep $r running" sd_alive $r; done
sd_done
