# tests/vm/vm_lib.sh - helpers for the full-VM tests (make check-vm): a busybox initramfs, an ext4 volume, qemu-system-x86_64 under TCG on a sheep's NBD export, console parsing.
#
# Source after tests/func/lib.sh and nbd_lib.sh. The guest is Debian's kernel
# (/boot/vmlinuz-*, package linux-image-amd64) with an initramfs built here
# from busybox-static, the virtio and ext4 modules of that kernel and
# tests/vm/guest-init. It mounts /dev/vda (an ext4 volume made on the host),
# writes files, syncs, prints "SDVM ..." lines on its serial console (a
# file) and powers off. Every tool is a hard requirement: scripts/install-deps
# installs them, a missing one fails the test (it does not skip).

VM_PIDS=()

# vm_need TOOL...: a missing tool fails the script.
vm_need() {
	local t
	for t in "$@"; do command -v "$t" >/dev/null || bail "$t not installed (scripts/install-deps)"; done
}
vm_need qemu-system-x86_64 qemu-img busybox cpio gzip mkfs.ext4 debugfs modprobe python3

# vm_kernel: the newest installed Debian kernel that has its modules.
vm_kernel() {
	local k v
	for k in $(ls -v /boot/vmlinuz-* 2>/dev/null | tac); do
		v=${k#/boot/vmlinuz-}
		[ -d "/lib/modules/$v" ] && { echo "$v"; return 0; }
	done
	return 1
}

# vm_build_initrd: build $SD_TEST_DIR/initrd.gz (busybox, modules, init).
# Sets VM_KVER and VM_VMLINUZ.
vm_build_initrd() {
	VM_KVER=$(vm_kernel) || bail "no /boot/vmlinuz-* with /lib/modules (linux-image-amd64)"
	VM_VMLINUZ=/boot/vmlinuz-$VM_KVER
	local root=$SD_TEST_DIR/initrd.root m
	rm -rf "$root"
	mkdir -p "$root"/{bin,dev,proc,sys,mnt,lib/modules}
	cp "$(command -v busybox)" "$root/bin/busybox"
	cp "$SD_TOP/tests/vm/guest-init" "$root/init"
	chmod 755 "$root/init"
	# The modules the guest needs, in load order (crc32c-intel needs SSE4.2,
	# which TCG's default CPU lacks: crc32c_generic serves instead).
	: >"$root/lib/modules/order"
	for m in $(for m in virtio_pci virtio_blk crc32c_generic ext4; do modprobe -S "$VM_KVER" --show-depends "$m"; done |
		awk '$1 == "insmod" { print $2 }' | grep -v crc32c-intel | awk '!seen[$0]++'); do
		case $m in
		*.ko) cp "$m" "$root/lib/modules/" ;;
		*.ko.xz) xz -dc "$m" >"$root/lib/modules/$(basename "$m" .xz)"; m=${m%.xz} ;;
		*.ko.zst) zstd -qdc "$m" >"$root/lib/modules/$(basename "$m" .zst)"; m=${m%.zst} ;;
		*) bail "unknown module file $m" ;;
		esac
		basename "$m" >>"$root/lib/modules/order"
	done
	grep -q '^ext4.ko$' "$root/lib/modules/order" || bail "ext4 module of $VM_KVER not found"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$SD_TEST_DIR/initrd.gz" ||
		bail "initramfs cpio"
}

# vm_make_ext4 IDX NAME SIZE: create VDI NAME and put a fresh ext4 on it
# (made on the host, written through sheep IDX's NBD export).
vm_make_ext4() {
	local img=$SD_TEST_DIR/$2.ext4
	dogn "$1" vdi create "$2" "$3" >/dev/null || bail "vdi create $2"
	rm -f "$img"
	truncate -s "$3" "$img"
	mkfs.ext4 -q -F -L sdvm -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$img" || bail "mkfs.ext4"
	qemu-img convert -n -f raw -O raw "$img" "$(nbd_uri "$1" "$2")" || bail "write the ext4 image to $2"
	# The writer's lock is freed by a cluster message after it detaches: a
	# VM attached through another sheep at once could find it still held.
	local _
	for _ in $(seq 300); do [ -z "$(dogn "$1" vdi lock list -r 2>/dev/null)" ] && return 0; sleep 0.1; done
	bail "the lock of the image writer was not freed"
}

# vm_start NAME DISKOPTS APPEND [qemu args...]: start qemu-system-x86_64
# (TCG, 160 MiB, no display) in the background; console to
# $SD_TEST_DIR/NAME.console, QMP on $SD_TEST_DIR/NAME.qmp, its pid in
# VM_PID[NAME]. DISKOPTS is the -blockdev of node disk0 (an NBD export);
# APPEND is added to the kernel command line (sdvm.* settings for the init).
declare -A VM_PID=()
vm_start() {
	local name=$1 disk=$2 append=$3; shift 3
	: >"$SD_TEST_DIR/$name.console"
	timeout -k 5 "${VM_TIMEOUT:-300}" qemu-system-x86_64 -machine q35,accel=tcg -cpu qemu64 -m 160 -smp 1 \
		-nographic -no-reboot -nodefaults -monitor none \
		-serial "file:$SD_TEST_DIR/$name.console" -pidfile "$SD_TEST_DIR/$name.qemu.pid" \
		-qmp "unix:$SD_TEST_DIR/$name.qmp,server=on,wait=off" \
		-kernel "$VM_VMLINUZ" -initrd "$SD_TEST_DIR/initrd.gz" \
		-append "console=ttyS0 loglevel=4 panic=-1 $append" \
		-blockdev "$disk" -device virtio-blk-pci,drive=disk0,id=vda \
		"$@" </dev/null >"$SD_TEST_DIR/$name.qemu.out" 2>&1 &
	VM_PID[$name]=$!
	VM_PIDS+=("$!")
}

# vm_nbd_blockdev IDX EXPORT [extra]: the -blockdev of node disk0 on sheep
# IDX's NBD port, as the README shows it.
vm_nbd_blockdev() {
	echo "driver=nbd,node-name=disk0,server.type=inet,server.host=127.0.0.1,server.port=$(sd_nbd_port "$1"),export=$2${3:+,$3}"
}

# vm_wait NAME PATTERN [SECONDS]: until NAME's console has a line matching
# PATTERN (grep -E); fails early when the VM has exited.
vm_wait() {
	local name=$1 pat=$2 t=0 max=$(( ${3:-240} * 10 ))
	while [ $t -lt $max ]; do
		grep -qE "$pat" "$SD_TEST_DIR/$name.console" && return 0
		if ! kill -0 "${VM_PID[$name]}" 2>/dev/null; then
			grep -qE "$pat" "$SD_TEST_DIR/$name.console"
			return
		fi
		sleep 0.1; t=$((t + 1))
	done
	return 1
}

# vm_wait_exit NAME [SECONDS]: until NAME's qemu has exited (killed after).
vm_wait_exit() {
	local p=${VM_PID[$1]} t=0 max=$(( ${2:-120} * 10 ))
	while [ $t -lt $max ] && kill -0 "$p" 2>/dev/null; do sleep 0.1; t=$((t + 1)); done
	# $p is timeout(1)'s pid: a SIGKILL of it would leave QEMU running.
	vm_kill_qemu "$1"
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}

# vm_acks NAME: the number of acknowledged file writes on NAME's console.
vm_acks() { grep -c '^SDVM ack ' "$SD_TEST_DIR/$1.console"; }

# vm_io_errors FILE...: the guest kernel's I/O or filesystem error lines.
vm_io_errors() {
	grep -hE 'I/O error|EXT4-fs (error|warning)|Buffer I/O|blk_update_request|Aborting journal|SDVM FAIL' "$@"
}

# vm_qmp NAME JSON...: send QMP commands to NAME (after the capabilities
# handshake); prints each reply's JSON line.
vm_qmp() {
	python3 "$SD_TOP/tests/vm/qmp.py" "$SD_TEST_DIR/$1.qmp" "${@:2}"
}

vm_qmp_quiet() { vm_qmp "$@" >/dev/null; }

# vm_check_volume IDX NAME CONSOLE...: read VDI NAME through sheep IDX and
# check, outside the guest, that every file the guest acknowledged
# ("SDVM ack FILE SHA256" on the consoles) is in the volume's ext4 with that
# sha256 (debugfs reads the image; nothing is mounted). Prints the count.
vm_check_volume() {
	local idx=$1 name=$2 back=$SD_TEST_DIR/$2.back f sha got n=0 bad=0; shift 2
	rm -f "$back"
	qemu-img convert -f raw -O raw "$(nbd_uri "$idx" "$name:ro")" "$back" || { log "read back $name failed"; return 1; }
	while read -r _ _ f sha; do
		got=$(debugfs -R "dump /$f /dev/stdout" "$back" 2>/dev/null | sha256sum | cut -d' ' -f1)
		n=$((n + 1))
		[ "$got" = "$sha" ] || { bad=$((bad + 1)); log "$f: guest acknowledged $sha, volume has $got"; }
	done < <(cat "$@" | tr -d '\r' | grep '^SDVM ack ' | sort -u)
	log "$n acknowledged files checked outside the guest, $bad wrong"
	VM_CHECKED=$n
	[ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
}

# vm_kill_qemu NAME: SIGKILL NAME's QEMU (its -pidfile), if still running.
vm_kill_qemu() {
	local q
	q=$(cat "$SD_TEST_DIR/$1.qemu.pid" 2>/dev/null) && kill -9 "$q" 2>/dev/null
	return 0
}

vm_cleanup() {
	local p n
	for n in "${!VM_PID[@]}"; do vm_kill_qemu "$n"; done
	for p in "${VM_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	sd_cleanup
}
trap vm_cleanup EXIT
