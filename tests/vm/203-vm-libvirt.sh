#!/usr/bin/env bash
# 203-vm-libvirt.sh - contrib/libvirt/vm1.xml validates (virt-xml-validate) and, turned into a TCG domain with direct kernel boot, is defined and started by a private libvirtd (its own mount namespace: /run, /etc/libvirt, /var/lib/libvirt); the guest writes through the NBD disk libvirt built; checked in the guest and outside it.
# timeout: 400
# A private libvirtd needs its own /run and config: run in a new mount
# namespace (root; the mounts vanish with it).
if [ -z "${SD_VM_MNTNS:-}" ]; then
	exec env SD_VM_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
. "$SD_TOP/tests/vm/vm_lib.sh"
vm_need virt-xml-validate virsh libvirtd unshare
mkdir -p "$SD_TEST_DIR"

xml=$SD_TOP/contrib/libvirt/vm1.xml
validate() { virt-xml-validate "$1" >/dev/null 2>&1; }
check "contrib/libvirt/vm1.xml validates against the installed libvirt's schema" validate "$xml"
sed "s/name='vm1'/name='vm1:handover'/" "$xml" >"$SD_TEST_DIR/vm1-handover.xml"
check "its migration-destination form (vm1:handover) validates" validate "$SD_TEST_DIR/vm1-handover.xml"
sed "s/protocol='nbd'/protocol='nbdx'/" "$xml" >"$SD_TEST_DIR/vm1-bad.xml"
check "a broken domain does not validate (the check can fail)" bash -c "! virt-xml-validate '$SD_TEST_DIR/vm1-bad.xml' >/dev/null 2>&1"

# A private libvirtd: qemu driver as root, no cgroups, no security driver,
# no per-VM /dev namespace (a container has none of them); the user
# libvirt-qemu it looks up at start exists only in this namespace's passwd.
lv=$SD_TEST_DIR/libvirt
mkdir -p "$lv/etc" "$lv/lib" "$lv/cache" "$lv/log" "$lv/run"
cp -a /etc/libvirt/. "$lv/etc/"
cat >"$lv/etc/qemu.conf" <<'EOF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
EOF
printf 'auth_unix_rw = "none"\nauth_unix_ro = "none"\n' >"$lv/etc/libvirtd.conf"
cp /etc/passwd "$lv/passwd"
cp /etc/group "$lv/group"
getent passwd libvirt-qemu >/dev/null || echo "libvirt-qemu:x:64055:64055::/nonexistent:/usr/sbin/nologin" >>"$lv/passwd"
getent group libvirt-qemu >/dev/null || echo "libvirt-qemu:x:64055:" >>"$lv/group"
getent group kvm >/dev/null || echo "kvm:x:64056:" >>"$lv/group"
mkdir -p /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt
mount -t tmpfs tmpfs /run &&
	mount --bind "$lv/etc" /etc/libvirt &&
	mount --bind "$lv/lib" /var/lib/libvirt &&
	mount --bind "$lv/cache" /var/cache/libvirt &&
	mount --bind "$lv/log" /var/log/libvirt &&
	mount --bind "$lv/passwd" /etc/passwd &&
	mount --bind "$lv/group" /etc/group || bail "private mounts for libvirtd"
libvirtd -f /etc/libvirt/libvirtd.conf >"$SD_TEST_DIR/libvirtd.out" 2>&1 &
VM_PIDS+=("$!")
virsh_() { virsh -q -c qemu:///system "$@"; }
# On any exit: the domain's QEMU first (libvirtd does not take it along).
lv_cleanup() {
	local p
	p=$(cat /run/libvirt/qemu/vm1.pid 2>/dev/null) && kill -9 "$p" 2>/dev/null
	vm_cleanup
}
trap lv_cleanup EXIT
for _ in $(seq 300); do virsh_ version >/dev/null 2>&1 && break; sleep 0.1; done
check "libvirtd answers (qemu:///system, private)" bash -c "virsh -q -c qemu:///system version >/dev/null"
log "$(virsh_ version 2>&1 | tr '\n' ' ')"

nbd_cluster 3 2:1
for i in 0 1 2; do nbd_wait_nbd $i || bail "no NBD on sheep $i"; done
vm_build_initrd
vm_make_ext4 0 vm1 64M

# The shipped domain, with its port set to sheep 0's NBD port.
python3 "$SD_TOP/tests/vm/libvirt_domain.py" "$xml" "$SD_TEST_DIR/dom.xml" "$(sd_nbd_port 0)" \
	"$VM_VMLINUZ" "$SD_TEST_DIR/initrd.gz" "console=ttyS0 loglevel=4 panic=-1 sdvm.mode=write sdvm.n=6 sdvm.kb=128" \
	"$SD_TEST_DIR/lv.console" || bail "domain XML"
: >"$SD_TEST_DIR/lv.console"
check "the test domain validates" validate "$SD_TEST_DIR/dom.xml"
check "virsh define" virsh_ define "$SD_TEST_DIR/dom.xml"
check "virsh start" virsh_ start vm1
log "$(grep -o -- "-blockdev '{\"driver\":\"nbd\"[^ ]*" /var/log/libvirt/qemu/vm1.log 2>/dev/null | head -1)"
check "libvirt's QEMU opened the disk as NBD on sheep 0" \
	grep -q "\"driver\":\"nbd\".*\"port\":\"$(sd_nbd_port 0)\".*\"export\":\"vm1\"" /var/log/libvirt/qemu/vm1.log
# vm_wait needs a pid: the domain's QEMU.
VM_PID[lv]=$(cat /run/libvirt/qemu/vm1.pid 2>/dev/null)
VM_PIDS+=("${VM_PID[lv]:-0}")
check "the guest finishes" vm_wait lv '^SDVM done' 240
for _ in $(seq 300); do [ "$(virsh_ domstate vm1 2>/dev/null)" = "shut off" ] && break; sleep 0.1; done
check_eq "the domain is shut off after the guest powered off" "shut off" "$(virsh_ domstate vm1 2>&1)"
check_eq "6 writes acknowledged" 6 "$(vm_acks lv)"
check "the guest re-read all 6 files, sha256 as written" vm_wait lv '^SDVM verify ok 6'
check_eq "no I/O or ext4 error in the guest" "" "$(vm_io_errors "$SD_TEST_DIR/lv.console")"
check "outside the guest: every acknowledged file in the volume with its sha256" \
	vm_check_volume 1 vm1 "$SD_TEST_DIR/lv.console"
check "virsh undefine" virsh_ undefine vm1
check_eq "no lock left" "" "$(dogn 0 vdi lock list -r)"
for i in 0 1 2; do check "sheep $i running" sd_alive $i; done
sd_done
