#!/usr/bin/env bash
# 126-snap-consistency.sh - six sheep, 4:2: a snapshot taken (through another sheep) while one NBD client keeps 8 writes in flight is a crash-consistent point, for a 4:2 and a 3-copy volume (snap_consistency.py: every write acknowledged before the command started is in it, none sent after it returned, the live volume has every last write); then two sheep (p) are killed: every snapshot, clone and live VDI still reads (sha256), and once they are back recovery restores every fragment (census).
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"

nbd_cluster 6 4:2
for i in 0 1 2 3 4 5; do nbd_wait_nbd $i || bail "no NBD on sheep $i"; done
consistent() { # VDI GATEWAY SNAP_SHEEP TAG
	python3 "$SD_TOP/tests/func/snap_consistency.py" 127.0.0.1 "$(sd_nbd_port "$2")" "$1" \
		"$(sd_port "$3")" "$4" "$DOG" 2048 6 >"$SD_TEST_DIR/$1.$4.out" 2>&1
	local rc=$?
	sed 's/^/# /' "$SD_TEST_DIR/$1.$4.out" | tail -n 12
	return $rc
}
dogn 0 vdi create ec 8M || bail "create ec"
dogn 0 vdi create ec2 8M || bail "create ec2"
dogn 0 vdi create -c 3 rep 8M || bail "create rep"
check "4:2: a snapshot under 8 writes in flight holds exactly the writes acknowledged before it" consistent ec 1 2 t1
check "4:2: again, with the writer on the sheep that takes it" consistent ec2 3 3 t1
check "3 copies: a snapshot under 8 writes in flight holds exactly the writes acknowledged before it" consistent rep 4 5 t1

# Every snapshot, a clone and the live VDIs read the same with p = 2 sheep down.
dogn 0 vdi clone -s t1 ec cl || bail "clone"
qemu-io -f raw -c "write -P 0x77 1M 64k" "$(nbd_uri 0 cl)" >/dev/null || bail "write clone"
names="ec@t1 ec ec2@t1 ec2 cl rep@t1 rep"
declare -A sum
for n in $names; do
	sum[$n]=$(nbdcopy "$(nbd_uri 0 "$n")" - | sha256sum | cut -d' ' -f1) || bail "read $n"
	[ "${n%@*}" = "$n" ] && sum[$n]=$(nbdcopy "$(nbd_uri 0 "$n:ro")" - | sha256sum | cut -d' ' -f1)
done
dogn 0 cluster recover disable >/dev/null || bail "recover disable"
sd_kill 1
sd_kill 4
sd_wait_nodes 0 4 || bail "four left"
for n in $names; do
	rn=$n; [ "${n%@*}" = "$n" ] && rn="$n:ro"
	check_eq "$n reads the same with two sheep down" "${sum[$n]}" \
		"$(nbdcopy "$(nbd_uri 5 "$rn")" - | sha256sum | cut -d' ' -f1)"
done
sd_start 1 && sd_start 4 || bail "restart"
sd_wait_nodes 0 6 || bail "six again"
dogn 0 cluster recover enable >/dev/null || bail "recover enable"
rec_wait_done 0 6 1 120 || bail "recovery did not finish"
out=$(rec_census --verify 0 1 2 3 4 5)
check_eq "every fragment of every object (snapshots and clone included) is back" 0 "$(rec_summary short "$out")"
check_eq "... and reads back" 0 "$(rec_summary bad "$out")"
for n in $names; do
	rn=$n; [ "${n%@*}" = "$n" ] && rn="$n:ro"
	check_eq "$n still reads the same after recovery" "${sum[$n]}" \
		"$(nbdcopy "$(nbd_uri 2 "$rn")" - | sha256sum | cut -d' ' -f1)"
done
sd_done
