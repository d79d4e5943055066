#!/usr/bin/env bash
# 065-nbd-fio-recovery.sh - fio (nbd engine) verify=crc32c while a sheep is killed mid-run with recovery on (the default): writes go on during the rebuild.
# timeout: 600
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need fio
fio --enghelp=nbd >/dev/null 2>&1 || { echo "1..0 # SKIP fio has no nbd engine"; exit 77; }

nbd_cluster 6 4:2
dogn 0 vdi create fec 512M >/dev/null || bail "vdi create fec"
dogn 0 vdi create frep 512M -c 3 >/dev/null || bail "vdi create frep -c 3"
nbd_wait_nbd 0 || bail "no NBD on sheep 0"

log "recovery is on: the survivors rebuild what sheep 5, then sheep 4, held while fio writes"

# Again, while a sheep dies: the 4:2 VDI through sheep 0 loses sheep 5;
# sheep 5 comes back; the -c 3 VDI through sheep 1 loses sheep 4. Enough
# redundancy is left for every write to be acknowledged and read back intact.
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
sd_done
