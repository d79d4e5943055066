#!/usr/bin/env bash
# 123-snap-nbd.sh - six sheep, 4:2, over NBD: NAME@SNAPID and NAME@TAG export the snapshot read-only (qemu-img compare against the image written before it; qemu-io writes refused, nothing changed); three clones of a golden image attached read-write, each written independently; snapshots taken while fio writes with verify (the live volume follows to the new working VDI, fio's verify passes); nbdcopy of a snapshot while fio writes the live volume reads what the volume held at the snapshot.
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need qemu-img qemu-io nbdcopy fio

MiB=$((1 << 20))
nbd_cluster 6 4:2
for i in 0 1 2 3 4 5; do nbd_wait_nbd $i || bail "no NBD on sheep $i"; done
dogn 0 vdi create gold 64M >/dev/null || bail "create gold"
img=$SD_TEST_DIR/gold.raw
sd_random "$img" $((64 * MiB))
nbdcopy "$img" "$(nbd_uri 0 gold)" || bail "nbdcopy image -> gold"
check "snapshot -s base gold" dogn 1 vdi snapshot -s base gold
check "qemu-io writes to the live volume after the snapshot" qemu-io -f raw -c "write -P 0x5a 1M 3M" -c "write -P 0x33 40M 64k" "$(nbd_uri 2 gold)"
check "qemu-img compare: gold@1 is the image written before the snapshot" qemu-img compare -f raw -F raw "$img" "$(nbd_uri 3 gold@1)"
check "qemu-img compare: gold@base too" qemu-img compare -f raw -F raw "$img" "$(nbd_uri 4 gold@base)"
check "the live volume differs (it has the new writes)" bash -c "! qemu-img compare -q -f raw -F raw '$img' '$(nbd_uri 5 gold)'"
check "qemu-io: read of the live volume sees the new bytes" qemu-io -f raw -c "read -P 0x5a 1M 3M" "$(nbd_uri 5 gold)"
check "a write to gold@1 is refused" bash -c "! qemu-io -f raw -c 'write -P 1 0 4k' '$(nbd_uri 0 gold@1)' 2>/dev/null"
check "a write to gold@base is refused" bash -c "! qemu-io -f raw -c 'write -P 1 0 4k' '$(nbd_uri 0 gold@base)' 2>/dev/null"
check "... and the snapshot is unchanged" qemu-img compare -f raw -F raw "$img" "$(nbd_uri 1 gold@1)"
check "gold@7 (no such snapshot) is refused" bash -c "! qemu-img info '$(nbd_uri 0 gold@7)' >/dev/null 2>&1"

# three clones of the golden image, each attached read-write and written
for c in 1 2 3; do
	check "clone -s base gold vm$c" dogn 0 vdi clone -s base gold "vm$c"
done
pids=""
for c in 1 2 3; do
	qemu-io -f raw -c "write -P $((c * 16)) $((c * 5))M 2M" -c "write -P $((c + 100)) 60M 4k" "$(nbd_uri $c "vm$c")" >/dev/null &
	pids="$pids $!"
done
wait_ok=0
for j in $pids; do wait "$j" || wait_ok=1; done
check "three clones written at once over NBD" test $wait_ok = 0
for c in 1 2 3; do
	cp "$img" "$SD_TEST_DIR/vm$c.ref"
	head -c $((2 * MiB)) /dev/zero | tr '\0' "\\$(printf '%03o' $((c * 16)))" | dd of="$SD_TEST_DIR/vm$c.ref" bs=1M seek=$((c * 5)) conv=notrunc status=none
	head -c 4096 /dev/zero | tr '\0' "\\$(printf '%03o' $((c + 100)))" | dd of="$SD_TEST_DIR/vm$c.ref" bs=4k seek=$((60 * 256)) conv=notrunc status=none
	check "vm$c reads the image plus its own writes only" qemu-img compare -f raw -F raw "$SD_TEST_DIR/vm$c.ref" "$(nbd_uri $(( (c + 2) % 6 )) "vm$c")"
done
check "the golden snapshot is unchanged by its clones" qemu-img compare -f raw -F raw "$img" "$(nbd_uri 0 gold@base)"
dogn 0 vdi list | sed 's/^/# /'

# fio writes with verify while snapshots are taken
dogn 0 vdi create live 96M >/dev/null || bail "create live"
fio_verify live1 "$(nbd_uri 0 live)" 96M &
fpid=$!
sleep 2
check "snapshot -s mid1 while fio writes" dogn 3 vdi snapshot -s mid1 live
sleep 1
check "snapshot -s mid2 while fio writes" dogn 4 vdi snapshot -s mid2 live
check "fio's verify passes across two snapshots (writes follow the working VDI)" wait $fpid
nbdcopy "$(nbd_uri 1 live)" "$SD_TEST_DIR/live.ref" || bail "nbdcopy live"
check "snapshot -s quiet of the idle volume" dogn 2 vdi snapshot -s quiet live
fio_verify live2 "$(nbd_uri 0 live)" 96M --randseed=777 &
fpid=$!
sleep 1
check "nbdcopy of live@quiet while fio writes the live volume" nbdcopy "$(nbd_uri 5 live@quiet)" "$SD_TEST_DIR/live.snap"
check "fio's second verify passes" wait $fpid
check_eq "the snapshot copy is the volume as it was at the snapshot" "$(sd_sha "$SD_TEST_DIR/live.ref")" "$(sd_sha "$SD_TEST_DIR/live.snap")"
check "list: live has its three snapshots" test "$(dogn 0 vdi list -r live | grep -c '^s live')" = 3
sd_done
