#!/usr/bin/env bash
# 013-core-write-during-kill.sh - writes issued right after two sheep are kill -9'd (before the epoch moves) are retried under the new epoch, never EIO.
# timeout: 300
. "$SD_TOP/tests/func/lib.sh"

sd_start_cluster 6 || bail "six sheep did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2
# The gateway alone: no rebuild that could mask a failed write.
check "recovery disabled for this test" dogn 0 cluster recover disable
check "create 3-copy VDI" dogn 0 vdi create -c 3 rep 64M
sd_random "$SD_TEST_DIR/data" $((32 << 20))
check "write 32 MiB" dogn 0 vdi write rep 0 $((32 << 20)) <"$SD_TEST_DIR/data"

# Two sheep hang (SIGSTOP: still members), a write of every object starts
# through sheep 0 and waits on them; then both are kill -9'd. Every call
# to them fails at once, before anyone has noticed the deaths: the writes
# must be redone under the next epoch (two copies of each object can still
# be written), not fail with EIO.
sd_random "$SD_TEST_DIR/patch" $((32 << 20))
kill -STOP "${SD_PIDS[2]}" "${SD_PIDS[5]}"
dogn 0 vdi write rep 0 $((32 << 20)) <"$SD_TEST_DIR/patch" &
w=$!
sleep 2
check "the write waits on the stopped sheep" kill -0 $w
sd_kill 2
sd_kill 5
wait $w
check "32 MiB written while 2 of 6 sheep died" test $? -eq 0
sd_wait_nodes 0 4 || not_ok "membership did not drop to 4"
check_eq "it reads back" "$(sd_sha "$SD_TEST_DIR/patch")" \
	"$(dogn 1 vdi read rep 0 $((32 << 20)) | sha256sum | cut -d' ' -f1)"
for i in 0 1 3 4; do check "sheep $i still running" sd_alive $i; done
sd_done
