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

# Fio runs with a sheep killed mid-run, one failure at a time, then a
# verify-only pass (nbd_lib.sh).
nbd_fio_kill_runs
sd_done
