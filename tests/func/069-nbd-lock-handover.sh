#!/usr/bin/env bash
# 069-nbd-lock-handover.sh - three sheep, 2:1: a writer that detaches from one sheep and a new writer that attaches through another at once (a QEMU restarted elsewhere, nbdcopy right after fio) must not be refused while the first sheep is still freeing the lock (test hook SHEEP_TEST_UNLOCK_DELAY_MS holds it 1.5 s); a writer that really holds the lock still makes a second one fail with the lock message. Found by CI: 123's "nbdcopy live" right after fio.
# timeout: 200
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need qemu-io qemu-img

SHEEP_TEST_UNLOCK_DELAY_MS=1500 sd_start 0 || bail "sheep 0"
sd_start 1 && sd_start 2 || bail "sheep 1, 2"
sd_wait_nodes 0 3 || bail "three sheep"
dogn 0 cluster format -c 2:1 >/dev/null || bail "format"
for i in 0 1 2; do nbd_wait_nbd $i || bail "no NBD on sheep $i"; done
dogn 0 vdi create v 16M || bail "create"

check "a writer through sheep 0 (its lock freed 1.5 s after it leaves)" \
	qemu-io -f raw -c "write -P 0x11 0 1M" "$(nbd_uri 0 v)"
t0=$(date +%s%N)
check "a writer through sheep 1 right after it is let in" \
	qemu-io -f raw -c "write -P 0x22 1M 1M" "$(nbd_uri 1 v)"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
log "second writer took $ms ms"
check "both writes are there" qemu-io -r -f raw -c "read -P 0x11 0 1M" -c "read -P 0x22 1M 1M" "$(nbd_uri 2 v:ro)"

# A live holder: qemu-io keeps its connection open for 8 s.
qemu-io -f raw -c "write -P 0x33 2M 4k" -c "sleep 8000" "$(nbd_uri 1 v)" >/dev/null 2>&1 &
holder=$!
sleep 1.5
t0=$(date +%s%N)
qemu-io -f raw -c "write -P 0x44 3M 4k" "$(nbd_uri 2 v)" >"$SD_TEST_DIR/second.out" 2>&1
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "a second writer is refused while the first is attached (rc $rc, after $ms ms)" test $rc -ne 0
check "... with the lock message" grep -q "is locked" "$SD_TEST_DIR/second.out"
check "... within the 3 s wait plus slack" test $ms -lt 8000
wait $holder
check "the holder's write is there and the refused one is not" \
	qemu-io -r -f raw -c "read -P 0x33 2M 4k" -c "read -P 0 3M 4k" "$(nbd_uri 0 v:ro)"
sd_done
