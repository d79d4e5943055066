#!/usr/bin/env bash
# 200-vm-boot.sh - a real VM (qemu-system-x86_64 under TCG, Debian's kernel, busybox initramfs) boots with its disk on a 2:1 volume over NBD, writes files on ext4 with fsync, re-reads them; a second boot through another sheep finds them; the volume read outside the guest has every acknowledged file's sha256.
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
. "$SD_TOP/tests/vm/vm_lib.sh"

nbd_cluster 3 2:1
for i in 0 1 2; do nbd_wait_nbd $i || bail "no NBD on sheep $i"; done
vm_build_initrd
log "guest kernel $VM_KVER, initramfs $(stat -c %s "$SD_TEST_DIR/initrd.gz") bytes"
vm_make_ext4 0 vm1 64M

# First boot, attached through sheep 0: 8 files of 256 KiB.
t0=$(date +%s)
vm_start boot1 "$(vm_nbd_blockdev 0 vm1)" "sdvm.mode=write sdvm.n=8 sdvm.kb=256"
check "boot 1: the guest mounts /dev/vda (ext4 on the volume)" vm_wait boot1 '^SDVM mounted'
check "boot 1: the guest finishes and reports" vm_wait boot1 '^SDVM done'
vm_wait_exit boot1 60
log "boot 1 took $(( $(date +%s) - t0 )) s; $(grep '^SDVM mounted' "$SD_TEST_DIR/boot1.console" | tr -d '\r')"
check_eq "boot 1: 8 writes acknowledged (fsync)" 8 "$(vm_acks boot1)"
check "boot 1: the guest re-read all 8 files from the disk, sha256 as written" vm_wait boot1 '^SDVM verify ok 8'
check_eq "boot 1: no I/O or ext4 error on the console" "" "$(vm_io_errors "$SD_TEST_DIR/boot1.console")"
check_eq "no lock left after the VM powered off" "" "$(dogn 0 vdi lock list -r)"

# Second boot, through sheep 1: the files are there, 2 more are added.
vm_start boot2 "$(vm_nbd_blockdev 1 vm1)" "sdvm.mode=write sdvm.first=9 sdvm.n=2 sdvm.kb=256"
check "boot 2 (through sheep 1) finishes" vm_wait boot2 '^SDVM done'
vm_wait_exit boot2 60
check "boot 2: all 10 files verify in the guest (8 from boot 1)" vm_wait boot2 '^SDVM verify ok 10'
check_eq "boot 2: no I/O or ext4 error on the console" "" "$(vm_io_errors "$SD_TEST_DIR/boot2.console")"

# Outside the guest: the volume through sheep 2, files read with debugfs.
check "outside the guest: every acknowledged file in the volume with the sha256 the guest printed" \
	vm_check_volume 2 vm1 "$SD_TEST_DIR/boot1.console" "$SD_TEST_DIR/boot2.console"
check_eq "10 files checked outside the guest" 10 "${VM_CHECKED:-0}"
for i in 0 1 2; do check "sheep $i running" sd_alive $i; done
sd_done
