# tests/func/nbd_lib.sh - helpers for the NBD real-client tests (060-079): URIs, a formatted cluster, tool checks.
# Source after lib.sh.

# nbd_uri IDX NAME: the NBD URI of VDI NAME on sheep IDX.
nbd_uri() { echo "nbd://127.0.0.1:$(sd_nbd_port "$1")/$2"; }

# nbd_need TOOL...: skip the whole script (exit 77) when a client is missing.
nbd_need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "1..0 # SKIP $t not installed"; exit 77; }
	done
}

# nbd_cluster COUNT POLICY: start COUNT sheep, format with POLICY, wait for all.
nbd_cluster() {
	sd_start_cluster "$1" || bail "cluster of $1 did not start"
	dogn 0 cluster format -c "$2" >/dev/null || bail "cluster format -c $2 failed"
}

# nbd_wait_nbd IDX: wait until sheep IDX serves NBD.
nbd_wait_nbd() { sd_wait_port "$(sd_nbd_port "$1")" 20; }

# sha256 of the first LEN bytes of FILE
nbd_sha_head() { head -c "$2" "$1" | sha256sum | cut -d' ' -f1; }


# fio_verify NAME URI SIZE [extra fio args]: random writes of mixed sizes at
# QD16, then read back and check every block's crc32c.
fio_verify() {
	local name=$1 uri=$2 size=$3; shift 3
	fio --name="$name" --ioengine=nbd --uri="$uri" --rw=randwrite --bsrange=4k-256k \
		--size="$size" --iodepth=16 --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--randseed=4242 --output="$SD_TEST_DIR/$name.out" "$@" >/dev/null 2>&1
	local rc=$?
	if [ $rc -ne 0 ] || grep -qi "verify.*\(fail\|bad\)\|crc32c.*mismatch" "$SD_TEST_DIR/$name.out"; then
		sed 's/^/# /' "$SD_TEST_DIR/$name.out" | tail -n 20
		return 1
	fi
	return 0
}

# nbd_fio_kill_runs: on a 6-sheep cluster with VDIs fec (4:2) and frep (-c 3)
# (063 and 065, recovery off or on): fio verify runs while a sheep dies. The
# 4:2 VDI through sheep 0 loses sheep 5; sheep 5 comes back; the -c 3 VDI
# through sheep 1 loses sheep 4. Enough redundancy is left for every write
# to be acknowledged and read back intact. One TAP line per check.
nbd_fio_kill_runs() {
	local f i
	fio_verify ec-kill "$(nbd_uri 0 fec)" 384M &
	f=$!
	sleep 1
	check "fio still running when sheep 5 is killed" kill -0 $f
	sd_kill 5
	log "killed sheep 5 during the 4:2 run"
	wait $f
	check "fio verify=crc32c on 4:2 with a sheep killed mid-run" test $? -eq 0
	log "$(grep -E "^ *(WRITE|READ):" "$SD_TEST_DIR/ec-kill.out" | tr -s ' ')"

	# One failure at a time: sheep 5 comes back before sheep 4 goes.
	sd_start 5 || bail "sheep 5 did not restart"
	sd_wait_nodes 0 6 || bail "sheep 5 did not rejoin"
	fio_verify rep-kill "$(nbd_uri 1 frep)" 384M &
	f=$!
	sleep 1
	check "fio still running when sheep 4 is killed" kill -0 $f
	sd_kill 4
	log "killed sheep 4 during the -c 3 run"
	wait $f
	check "fio verify=crc32c on -c 3 with a sheep killed mid-run" test $? -eq 0
	log "$(grep -E "^ *(WRITE|READ):" "$SD_TEST_DIR/rep-kill.out" | tr -s ' ')"

	# The data written before the kills still verifies after them.
	check "fio verify-only pass of the 4:2 VDI after the kills" \
		fio_verify ec-after "$(nbd_uri 2 fec)" 384M --verify_only=1 --rw=randwrite
	for i in 0 1 2 3 5; do check "sheep $i still running" sd_alive $i; done
}
