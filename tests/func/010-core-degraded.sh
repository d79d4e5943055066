#!/usr/bin/env bash
# 010-core-degraded.sh - six sheep, 4:2 and -c 3 VDIs: data survives p kill -9'd sheep, p+1 gives clean errors, restart reads back.
# timeout: 300
. "$SD_TOP/tests/func/lib.sh"

sd_start_cluster 6 || bail "six sheep did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2
# This test is about the gateway alone ("no recovery runs" below): with
# recovery on, the survivors rebuild and a later write may rightly succeed.
check "recovery disabled for this test" dogn 0 cluster recover disable
check "create 4:2 VDI" dogn 0 vdi create -c 4:2 ec 64M
check "create 3-copy VDI" dogn 1 vdi create -c 3 rep 64M
check "create 2:1 VDI" dogn 2 vdi create -c 2:1 ec21 64M

sd_random "$SD_TEST_DIR/data" $((24 << 20))
want=$(sd_sha "$SD_TEST_DIR/data")
# Unaligned offset: objects are written partially at both ends.
check "write 24 MiB at 4097 to the 4:2 VDI" dogn 0 vdi write ec 4097 $((24 << 20)) <"$SD_TEST_DIR/data"
check "write 24 MiB to the 3-copy VDI" dogn 3 vdi write rep 0 $((24 << 20)) <"$SD_TEST_DIR/data"
check "write 24 MiB to the 2:1 VDI" dogn 4 vdi write ec21 123 $((24 << 20)) <"$SD_TEST_DIR/data"
check_eq "4:2 reads back" "$want" "$(dogn 5 vdi read ec 4097 $((24 << 20)) | sha256sum | cut -d' ' -f1)"
check_eq "3-copy reads back" "$want" "$(dogn 2 vdi read rep 0 $((24 << 20)) | sha256sum | cut -d' ' -f1)"
check_eq "2:1 reads back" "$want" "$(dogn 1 vdi read ec21 123 $((24 << 20)) | sha256sum | cut -d' ' -f1)"

# One sheep down: 5 zones left = d+1, so 4:2 writes are still acknowledged.
sd_kill 1
sd_wait_nodes 0 5 || not_ok "membership did not drop to 5"
sd_random "$SD_TEST_DIR/patch" 70000
check "partial write across a fragment boundary with 1 sheep down" \
	dogn 0 vdi write ec 1000000 70000 <"$SD_TEST_DIR/patch"
cp "$SD_TEST_DIR/data" "$SD_TEST_DIR/ref"
# reference: VDI offset 1000000 is file offset 1000000-4097
dd if="$SD_TEST_DIR/patch" of="$SD_TEST_DIR/ref" bs=1 seek=$((1000000 - 4097)) conv=notrunc status=none
ref=$(sd_sha "$SD_TEST_DIR/ref")
check_eq "partial write reads back degraded" "$ref" "$(dogn 2 vdi read ec 4097 $((24 << 20)) | sha256sum | cut -d' ' -f1)"

# Lose p = 2 sheep (no recovery runs): every byte still reads back.
sd_kill 4
sd_wait_nodes 0 4 || not_ok "membership did not drop to 4"
check_eq "4:2 reads back with 2 sheep down" "$ref" "$(dogn 0 vdi read ec 4097 $((24 << 20)) | sha256sum | cut -d' ' -f1)"
check_eq "3-copy reads back with 2 sheep down" "$want" "$(dogn 3 vdi read rep 0 $((24 << 20)) | sha256sum | cut -d' ' -f1)"
# With 4 zones a 4:2 write cannot keep d+1 fragments: refused, nothing changes.
sd_random "$SD_TEST_DIR/patch2" 5000
if dogn 0 vdi write ec 2000000 5000 <"$SD_TEST_DIR/patch2" 2>/dev/null; then
	not_ok "4:2 write with 2 of 6 down must not be acknowledged"
else
	ok "4:2 write with 2 of 6 down is refused"
fi
check_eq "refused write changed nothing" "$ref" "$(dogn 2 vdi read ec 4097 $((24 << 20)) | sha256sum | cut -d' ' -f1)"

# p+1 down: reads fail cleanly, never return wrong data.
sd_kill 5
sd_wait_nodes 0 3 || not_ok "membership did not drop to 3"
out=$(dogn 0 vdi read ec 4097 $((24 << 20)) 2>"$SD_TEST_DIR/err" | sha256sum | cut -d' ' -f1)
if [ "$out" != "$ref" ] && grep -qi "error" "$SD_TEST_DIR/err"; then ok "read with 3 of 6 down fails with an error"; else not_ok "read with 3 down: $(cat "$SD_TEST_DIR/err")"; fi
check "sheep 0 still alive" sd_alive 0

# Restart the lost sheep: everything reads back.
for i in 1 4 5; do sd_start $i || not_ok "restart sheep $i"; done
sd_wait_nodes 0 6 || not_ok "membership did not return to 6"
check_eq "4:2 reads back after restart" "$ref" "$(dogn 4 vdi read ec 4097 $((24 << 20)) | sha256sum | cut -d' ' -f1)"
check_eq "3-copy reads back after restart" "$want" "$(dogn 5 vdi read rep 0 $((24 << 20)) | sha256sum | cut -d' ' -f1)"
check_eq "2:1 reads back after restart" "$want" "$(dogn 1 vdi read ec21 123 $((24 << 20)) | sha256sum | cut -d' ' -f1)"
sd_done
