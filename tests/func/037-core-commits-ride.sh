#!/usr/bin/env bash
# 037-core-commits-ride.sh - the commits of early-acknowledged 4:2 writes ride on the coordinator's next writes to their holders (gateway/commitq.c): at QD32 well under one commit message per write (about two without), every write reads back at once through another sheep while its commits wait, parities match the data (dog vdi check), and no write leaves a fragment behind to rebuild.
# timeout: 400
#
# Six sheep (-n), a 4:2 VDI of 64 MiB written sequentially first. fio
# writes 4 KiB blocks at random at QD32 through sheep 0, each with its
# crc32c; right after, every block is read back and checked through sheep
# 3 (the commits of the last writes are still waiting for a ride then, up
# to GW_CQ_RIDE_MS). The PEER_COMMIT_BATCH messages served by the six
# sheep, per write, come from /metrics. Then every sheep restarts with
# SHEEP_TEST_NO_RIDE=1 (each commit batch sent as soon as queued, as
# before) and the same runs again: the count must be far higher there, so
# the low one is the rides' doing.
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
export SD_LOG_LEVEL=info
nbd_need fio curl

NW=3000
# run NAME: NW random 4 KiB writes at QD32 through sheep 0 (seed NAME's),
# then each block read back and checked through sheep 3; prints the
# commit messages per write (x100) of the write phase, or "fail".
run() {
	local c0 c1 uri0 uri3
	uri0=$(nbd_uri 0 cr) uri3=$(nbd_uri 3 cr)
	c0=$(sd_metric_sum 'sheep_requests_total{op="peer_commit_batch"}')
	fio --name="$1" --ioengine=nbd --uri="$uri0" --rw=randwrite --bs=4k --iodepth=32 \
		--size=64M --io_size=$((NW * 4))k --randseed="$2" --verify=crc32c --do_verify=0 \
		--verify_state_save=0 --output="$SD_TEST_DIR/$1.out" >/dev/null 2>&1 || { echo fail; return; }
	c1=$(sd_metric_sum 'sheep_requests_total{op="peer_commit_batch"}')
	fio --name="$1" --ioengine=nbd --uri="$uri3" --rw=randwrite --bs=4k --iodepth=32 \
		--size=64M --io_size=$((NW * 4))k --randseed="$2" --verify=crc32c --verify_only \
		--verify_fatal=1 --verify_state_save=0 --output="$SD_TEST_DIR/$1.verify.out" \
		>/dev/null 2>&1 || { echo fail; return; }
	echo $(((c1 - c0) * 100 / NW))
}
stale() { cat "$SD_TEST_DIR"/n*/sheep.log 2>/dev/null | grep -c "left at an old version by a write"; }
checked() { # NODE: dog vdi check finds nothing through sheep NODE
	local out
	out=$(dogn "$1" vdi check cr 2>&1)
	log "$(tr '\n' '|' <<<"$out")"
	grep -q "object(s) checked: 0 problem(s) found" <<<"$out"
}

sd_start_metrics || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 >/dev/null || bail "format"
dogn 0 vdi create cr 64M >/dev/null || bail "vdi create"
nbd_wait_nbd 0 || bail "no NBD on sheep 0"
fio --name=fill --ioengine=nbd --uri="$(nbd_uri 0 cr)" --rw=write --bs=4M --iodepth=4 --size=64M \
	--output="$SD_TEST_DIR/fill.out" >/dev/null 2>&1 || bail "sequential fill"

ride=$(run ride 11)
log "commit messages per write with rides: $ride/100"
check "$NW writes at QD32 read back through another sheep at once, checksums and all" \
	test "$ride" != fail
check "with rides: at most 0.5 commit messages per write ($ride/100)" \
	test "${ride/fail/999}" -le 50
check "dog vdi check: every parity matches its data" checked 2
check_eq "no fragment left behind by a write (sheep.log)" 0 "$(stale)"

for i in 0 1 2 3 4 5; do sd_kill $i; done
sd_start_metrics SHEEP_TEST_NO_RIDE=1 || bail "restart with SHEEP_TEST_NO_RIDE"
nbd_wait_nbd 0 || bail "no NBD on sheep 0 after the restart"
none=$(run noride 12)
log "commit messages per write without rides: $none/100"
check "without rides: the writes read back too" test "$none" != fail
check "without rides: at least 1 commit message per write ($none/100), twice the rides' figure" \
	test "${none/fail/0}" -ge 100 -a "${none/fail/0}" -ge $((2 * ${ride/fail/999}))
check "dog vdi check after both" checked 4
sd_done
