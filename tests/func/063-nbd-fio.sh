#!/usr/bin/env bash
# 063-nbd-fio.sh - fio (nbd engine) verify=crc32c on a 4:2 and a -c 3 VDI, then again while a sheep is killed mid-run.
# timeout: 600
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need fio
fio --enghelp=nbd >/dev/null 2>&1 || { echo "1..0 # SKIP fio has no nbd engine"; exit 77; }

nbd_cluster 6 4:2
dogn 0 vdi create fec 512M >/dev/null || bail "vdi create fec"
dogn 0 vdi create frep 512M -c 3 >/dev/null || bail "vdi create frep -c 3"
nbd_wait_nbd 0 || bail "no NBD on sheep 0"

check "fio verify=crc32c on 4:2" fio_verify ec "$(nbd_uri 0 fec)" 64M
check "fio verify=crc32c on -c 3" fio_verify rep "$(nbd_uri 1 frep)" 64M

# Recovery off for the rest (the gateway's degraded read and write path
# alone; 065 does the same with recovery on).
check "recovery disabled" dogn 0 cluster recover disable
# Fio runs with a sheep killed mid-run, one failure at a time, then a
# verify-only pass (nbd_lib.sh).
nbd_fio_kill_runs
sd_done
