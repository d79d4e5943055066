#!/usr/bin/env bash
# 064-nbd-bad-input.sh - garbage handshakes, unknown options, bad and oversize requests, vanishing clients: error or clean close, sheep serves on, data intact.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need python3 qemu-img qemu-io
# Under `make check` the sheep are the ASan+UBSan build: a memory error on
# bad input fails this test even if the sheep happens to survive it.
[ -n "$SAN_SHEEP" ] && [ -x "$SAN_SHEEP" ] && export SD_SHEEP_BIN=$SAN_SHEEP && log "using $SAN_SHEEP"

nbd_cluster 6 4:2
dogn 0 vdi create vol 16M >/dev/null || bail "vdi create vol"
nbd_wait_nbd 1 || bail "no NBD on sheep 1"
src=$SD_TEST_DIR/src.raw
sd_random "$src" $((16 * 1024 * 1024))
qemu-img convert -n -f raw -O raw "$src" "$(nbd_uri 1 vol)" || bail "initial fill"
want=$(sd_sha "$src")

bad() { python3 "$SD_TOP/tests/func/nbd_badclient.py" 127.0.0.1 "$(sd_nbd_port 1)" vol "$1"; }
for c in garbage bad-flags bad-opt-magic huge-opt unknown-opts bad-go bad-requests \
	vanish-mid-write vanish-mid-header vanish-in-handshake bad-magic; do
	out=$(bad "$c" 2>&1)
	rc=$?
	check "$c: $out" test $rc -eq 0
done
# The vanished writer's lock is released: a writer can attach again.
sleep 0.5
check "sheep 1 alive after all of it" sd_alive 1
check "a writer can attach after the vanished ones" \
	qemu-io -f raw -c 'read 0 512' "$(nbd_uri 1 vol)"
qemu-img convert -f raw -O raw "$(nbd_uri 1 vol)" "$SD_TEST_DIR/out.raw"
check_eq "volume data intact (sha256)" "$want" "$(sd_sha "$SD_TEST_DIR/out.raw")"

# Many connections that never finish the handshake do not stop service.
pids=()
for i in $(seq 1 40); do
	(exec 3<>"/dev/tcp/127.0.0.1/$(sd_nbd_port 1)"; sleep 5) 2>/dev/null &
	pids+=($!)
done
sleep 0.5
check "serves while 40 idle handshakes hang" qemu-img info "$(nbd_uri 1 vol)"
kill "${pids[@]}" 2>/dev/null
wait "${pids[@]}" 2>/dev/null
for i in 0 1 2 3 4 5; do check "sheep $i still running" sd_alive $i; done
check "no sanitizer or runtime error reports in the sheep output" \
	bash -c "! grep -l -E 'ERROR: AddressSanitizer|runtime error:' '$SD_TEST_DIR'/sheep*.out"
sd_done
