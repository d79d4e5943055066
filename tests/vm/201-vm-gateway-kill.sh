#!/usr/bin/env bash
# 201-vm-gateway-kill.sh - gateway failover with a real VM: a guest writing files with fsync over NBD (reconnect-delay=30) through a gateway-only sheep that is killed -9 and restarted mid-run sees no I/O error, and every write it acknowledged is in the volume (checked in the guest and outside it).
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
. "$SD_TOP/tests/vm/vm_lib.sh"

# Three storage sheep and the VM host's gateway-only sheep 3 (README:
# "Keeping a VM attached").
for i in 0 1 2; do sd_start "$i" || bail "sheep $i"; done
sd_start 3 -g || bail "gateway sheep 3"
sd_wait_nodes 0 4 || bail "four sheep"
dogn 0 cluster format -c 2:1 >/dev/null || bail "format 2:1"
nbd_wait_nbd 0 && nbd_wait_nbd 3 || bail "no NBD"
vm_build_initrd
vm_make_ext4 0 vm1 64M

N=40
vm_start vm "$(vm_nbd_blockdev 3 vm1 reconnect-delay=30)" "sdvm.mode=write sdvm.n=$N sdvm.kb=128 sdvm.pause=0.2"
check "the guest writes through the gateway" vm_wait vm '^SDVM ack f4 '
sd_kill 3
log "killed -9 the gateway sheep the VM is attached to, after $(vm_acks vm) acknowledged writes"
sleep 0.5
at_kill=$(vm_acks vm)
sleep 2
check_eq "no write acknowledged while the gateway is down" "$at_kill" "$(vm_acks vm)"
t0=$(date +%s.%N)
sd_start 3 -g || bail "gateway sheep 3 did not restart"
log "restarted it (as systemd Restart=on-failure would)"
check "the guest's next write completes after the restart" vm_wait vm "^SDVM ack f$((at_kill + 1)) " 60
log "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "the next acknowledged write came %.1f s after the restart", b - a }')"
check "the guest finishes" vm_wait vm '^SDVM done' 240
vm_wait_exit vm 60
check_eq "all $N writes acknowledged" "$N" "$(vm_acks vm)"
check "the guest re-read all $N files from the disk, sha256 as written" vm_wait vm "^SDVM verify ok $N"
check_eq "no I/O or ext4 error in the guest" "" "$(vm_io_errors "$SD_TEST_DIR/vm.console")"
vm_io_errors "$SD_TEST_DIR/vm.console" | head -5 | sed 's/^/# /'
sed 's/^/# qemu: /' "$SD_TEST_DIR/vm.qemu.out" | head -5
check "outside the guest: every acknowledged file in the volume with its sha256" \
	vm_check_volume 0 vm1 "$SD_TEST_DIR/vm.console"
check_eq "no lock left behind" "" "$(dogn 0 vdi lock list -r)"
for i in 0 1 2 3; do check "sheep $i running" sd_alive $i; done
sd_done
