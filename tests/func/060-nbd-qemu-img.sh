#!/usr/bin/env bash
# 060-nbd-qemu-img.sh - qemu-img info/convert and nbdinfo against a 4:2 VDI over NBD; the write lock; read-only attach.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need qemu-img qemu-io nbdinfo

nbd_cluster 6 4:2
dogn 0 vdi create img 64M >/dev/null || bail "vdi create img"
nbd_wait_nbd 2 || bail "sheep 2 does not serve NBD"

# qemu-img info: raw, 64 MiB
info=$(qemu-img info --output=json "$(nbd_uri 2 img)" 2>&1)
check_eq "qemu-img info: virtual size" 67108864 "$(echo "$info" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')"

# nbdinfo: size, writable, no multi-conn on a writable export
ni=$(nbdinfo "$(nbd_uri 2 img)" 2>&1)
check "nbdinfo: export-size 67108864" grep -q "export-size: 67108864" <<<"$ni"
check "nbdinfo: is_read_only false" grep -q "is_read_only: false" <<<"$ni"
check "nbdinfo: can_multi_conn false" grep -q "can_multi_conn: false" <<<"$ni"
check "nbdinfo: can_flush, can_fua, can_trim, can_zero" \
	bash -c 'for f in can_flush can_fua can_trim can_zero; do grep -q "$f: true" <<<"$1" || exit 1; done' _ "$ni"
check "nbdinfo --list names the VDI" grep -q 'export="img"' <<<"$(nbdinfo --list "nbd://127.0.0.1:$(sd_nbd_port 0)" 2>&1)"

# convert a raw image in (through sheep 2) and back out (through sheep 4)
src=$SD_TEST_DIR/src.raw out=$SD_TEST_DIR/out.raw
sd_random "$src" $((40 * 1024 * 1024 + 12345))
check "qemu-img convert raw -> VDI" qemu-img convert -n -f raw -O raw "$src" "$(nbd_uri 2 img)"
check "qemu-img convert VDI -> raw" qemu-img convert -f raw -O raw "$(nbd_uri 4 img)" "$out"
check_eq "converted back: size" 67108864 "$(stat -c %s "$out")"
check_eq "converted back: checksum of the data" "$(sd_sha "$src")" "$(nbd_sha_head "$out" $((40 * 1024 * 1024 + 12345)))"
check_eq "converted back: the rest reads as zeros" "$(head -c $((64 * 1024 * 1024 - 40 * 1024 * 1024 - 12345)) /dev/zero | sha256sum | cut -d' ' -f1)" \
	"$(tail -c $((64 * 1024 * 1024 - 40 * 1024 * 1024 - 12345)) "$out" | sha256sum | cut -d' ' -f1)"
check "qemu-img compare" qemu-img compare -f raw -F raw "$out" "$(nbd_uri 1 img)"

# The write lock: one writer holds the VDI; a second is refused with a
# clear message; a read-only attach works meanwhile.
qemu-io -f raw -c 'sleep 6000' "$(nbd_uri 0 img)" >/dev/null 2>&1 &
holder=$!
sleep 1.5
err=$(qemu-io -f raw -c 'write -P 1 0 512' "$(nbd_uri 3 img)" 2>&1)
rc=$?
check "second writer refused" test "$rc" -ne 0
check "second writer told the VDI is locked" grep -qi "locked" <<<"$err"
check "read-only attach (img:ro) reads the data meanwhile" \
	bash -c "qemu-img convert -f raw -O raw '$(nbd_uri 3 img:ro)' '$SD_TEST_DIR/ro.raw' && cmp -s '$SD_TEST_DIR/ro.raw' '$out'"
check "read-only attach refuses writes" bash -c "! qemu-io -f raw -c 'write -P 1 0 512' '$(nbd_uri 3 img:ro)' >/dev/null 2>&1"
wait "$holder"
check "after the holder leaves, a writer gets in" qemu-io -f raw -c 'write -P 7 0 512' -c 'read -P 7 0 512' "$(nbd_uri 3 img)"

check "unknown VDI: qemu-img fails" bash -c "! qemu-img info '$(nbd_uri 0 nosuch)' >/dev/null 2>&1"
for i in 0 1 2 3 4 5; do check "sheep $i still running" sd_alive $i; done
sd_done
