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
