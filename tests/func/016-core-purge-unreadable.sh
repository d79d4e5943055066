#!/usr/bin/env bash
# 016-core-purge-unreadable.sh - three sheep, a 2:1 VDI: deleting it while its inode cannot be read (two sheep down, the third's copy damaged) fails and keeps the VDI's id taken (it is not forgotten while its objects stay on disk).
# timeout: 300
. "$SD_TOP/tests/func/lib.sh"

sd_start_cluster 3 || bail "three sheep did not form a cluster"
check "format 2:1" dogn 0 cluster format -c 2:1
# No rebuild on the survivor: the inode must stay unreadable while two are down.
check "recovery disabled for this test" dogn 0 cluster recover disable
check "create 2:1 VDI" dogn 0 vdi create -c 2:1 doomed 16M
sd_random "$SD_TEST_DIR/data" $((8 << 20))
check "write 8 MiB" dogn 0 vdi write doomed 0 $((8 << 20)) <"$SD_TEST_DIR/data"
vid=$(dogn 0 vdi list -r doomed | awk '$2 == "doomed" { print $8 }')
check "the VDI has an id" test -n "$vid"

# Two of three sheep down and the survivor's copy of the inode damaged in
# its object map (checksum mismatch): the inode cannot be read anywhere.
sd_kill 1
sd_kill 2
sd_wait_nodes 0 1 || not_ok "membership did not drop to 1"
ino=$(find "$(sd_dir 0)/obj" -maxdepth 1 -name "80${vid}00000000_*" | head -n1)
check "sheep 0 holds the inode" test -n "$ino"
head -c 65536 /dev/urandom | dd of="$ino" bs=4096 seek=512 conv=notrunc status=none
check "delete answers an error when the inode cannot be read" bash -c '! "$0" vdi delete doomed -a 127.0.0.1 -p "$1" >/dev/null 2>&1' "$DOG" "$(sd_port 0)"
check "sheep 0 says why" grep -q "inode unreadable" "$(sd_dir 0)/sheep.log"

# Back to three: a new VDI of the same name must not get the old id, which
# still belongs to the unpurged VDI (its objects are still on disk).
sd_start 1 || bail "sheep 1 did not restart"
sd_start 2 || bail "sheep 2 did not restart"
sd_wait_nodes 0 3 || not_ok "membership did not return to 3"
check "the old VDI's data objects are still on disk" \
	test "$(find "$(sd_dir 0)" "$(sd_dir 1)" "$(sd_dir 2)" -path '*/obj/*' -name "*${vid}*" | grep -c .)" -gt 0
check "create a VDI of the same name" dogn 0 vdi create -c 2:1 doomed 16M
vid2=$(dogn 0 vdi list -r doomed | awk '$2 == "doomed" { print $8 }')
check "the new VDI has an id" test -n "$vid2"
check "the new VDI does not reuse the unpurged VDI's id ($vid)" test "$vid2" != "$vid"

sd_done
