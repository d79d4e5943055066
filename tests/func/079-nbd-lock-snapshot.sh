#!/usr/bin/env bash
# 079-nbd-lock-snapshot.sh - an NBD writer's lock is released when it detaches even after a snapshot moved the volume to a new working VDI under it (regression: the volume stayed locked for good).
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need python3 qemu-io
MiB=$((1 << 20))

nbd_cluster 3 2:1
dogn 0 vdi create vol 32M >/dev/null || bail "vdi create vol"
nbd_wait_nbd 0 || bail "no NBD on sheep 0"
uri=$(nbd_uri 0 vol)

# round TAG SNAP PATTERN AFTER: a long-lived NBD writer (qemu-io reading
# commands from a FIFO) writes PATTERN at 0, a snapshot SNAP is taken through
# another sheep, the writer writes AFTER at 0 unless AFTER is "none", then
# detaches: no lock may remain on vol.
round() {
	local tag=$1 snap=$2 p1=$3 p2=$4 fifo=$SD_TEST_DIR/qio.$1 out=$SD_TEST_DIR/qio.$1.out n=1
	mkfifo "$fifo"
	qemu-io -f raw "$uri" <"$fifo" >"$out" 2>&1 &
	local qpid=$!
	exec 3>"$fifo"
	echo "write -P $p1 0 1M" >&3
	for _ in $(seq 600); do grep -q "wrote" "$out" && break; sleep 0.1; done
	check "$tag: qemu-io attached for writing and wrote" grep -q "wrote 1048576" "$out"
	check_eq "$tag: the writer holds vol's lock" "vol 127.0.0.1:$(sd_port 0) nbd" \
		"$(dogn 1 vdi lock list -r | awk '{ print $1, $3, $4 }')"
	check "$tag: dog vdi snapshot -s $snap vol through another sheep" dogn 1 vdi snapshot -s "$snap" vol
	if [ "$p2" != none ]; then
		echo "write -P $p2 0 1M" >&3
		n=2
		for _ in $(seq 600); do [ "$(grep -c "wrote" "$out")" -ge 2 ] && break; sleep 0.1; done
	fi
	exec 3>&-
	wait $qpid
	check_eq "$tag: every write acknowledged" $n "$(grep -c "wrote 1048576" "$out")"
	# The unlock runs just after the client has gone.
	local left=x
	for _ in $(seq 100); do
		left=$(dogn 2 vdi lock list -r)
		[ -z "$left" ] && break
		sleep 0.1
	done
	check_eq "$tag: no lock left on vol after the writer detached" "" "$left"
}
# The writer never writes after the snapshot: its lock moved to the new
# working VDI, which it never followed.
round no-write-after snap1 0x11 none
# The writer follows the snapshot to the new working VDI.
round write-after snap2 0x55 0x22

check "a new NBD writer opens vol at once" qemu-io -f raw -c "write -P 0x33 1M 1M" "$uri"
check "... through another sheep too" qemu-io -f raw -c "write -P 0x44 2M 1M" "$(nbd_uri 1 vol)"
python3 -c "import sys; sys.stdout.buffer.write(b'U' * $MiB)" >"$SD_TEST_DIR/u"
check "dog vdi write is not refused" dogn 2 vdi write vol $((3 * MiB)) $MiB <"$SD_TEST_DIR/u"

# Data: the snapshot holds the first write, vol every later one.
sha() { python3 -c "import hashlib; print(hashlib.sha256($1).hexdigest())"; }
check_eq "snapshot snap1 holds the first round's write" "$(sha "b'\x11' * $MiB")" \
	"$(dogn 0 vdi read -s snap1 vol 0 $MiB | sha256sum | cut -d' ' -f1)"
check_eq "snapshot snap2 holds the second round's pre-snapshot write" "$(sha "b'\x55' * $MiB")" \
	"$(dogn 0 vdi read -s snap2 vol 0 $MiB | sha256sum | cut -d' ' -f1)"
check_eq "vol holds the post-snapshot write" "$(sha "b'\x22' * $MiB + b'\x33' * $MiB + b'\x44' * $MiB + b'U' * $MiB")" \
	"$(dogn 0 vdi read vol 0 $((4 * MiB)) | sha256sum | cut -d' ' -f1)"
for i in 0 1 2; do check "sheep $i still running" sd_alive $i; done
sd_done
