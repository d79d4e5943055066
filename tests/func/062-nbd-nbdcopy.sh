#!/usr/bin/env bash
# 062-nbd-nbdcopy.sh - nbdcopy round trip of a large random file through a 4:2 VDI (NBD_COPY_MB, default 1024).
# timeout: 600
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need nbdcopy nbdinfo

mb=${NBD_COPY_MB:-1024}
nbd_cluster 6 4:2
dogn 0 vdi create big "${mb}M" >/dev/null || bail "vdi create big ${mb}M"
nbd_wait_nbd 3 || bail "no NBD on sheep 3"

src=$SD_TEST_DIR/src.raw out=$SD_TEST_DIR/out.raw
sd_random "$src" $((mb * 1024 * 1024))
t0=$(date +%s.%N)
check "nbdcopy file -> VDI (${mb} MiB)" nbdcopy "$src" "$(nbd_uri 3 big)"
t1=$(date +%s.%N)
check "nbdcopy VDI -> file (another sheep)" nbdcopy "$(nbd_uri 5 big)" "$out"
t2=$(date +%s.%N)
log "$(awk -v m="$mb" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "in: %.1f MiB/s (%.1f s), out: %.1f MiB/s (%.1f s)", m / (b - a), b - a, m / (c - b), c - b }')"
check_eq "round trip checksum" "$(sd_sha "$src")" "$(sd_sha "$out")"
# A read-only attach offers multi-conn, so nbdcopy may use several connections.
check "nbdinfo: read-only attach can_multi_conn" grep -q "can_multi_conn: true" <<<"$(nbdinfo "$(nbd_uri 0 big:ro)")"
rm -f "$out"
check "nbdcopy from the read-only attach" nbdcopy "$(nbd_uri 0 big:ro)" "$out"
check_eq "read-only attach checksum" "$(sd_sha "$src")" "$(sd_sha "$out")"
rm -f "$src" "$out"
sd_done
