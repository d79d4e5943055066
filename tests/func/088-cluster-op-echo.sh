#!/usr/bin/env bash
# 088-cluster-op-echo.sh - a cluster operation the driver reports "not sent" when it was sent (ZooKeeper: a create whose answer a dropped connection lost, as while the ensemble restarts) is sent again; every member applies it once and its sender gets the first copy's answer: a vdi create does not answer "exists", a snapshot is taken once, an NBD writer's unlock and a closed connection's release are not called failures (CI's func/083 at stop 33 failed one check in both runs this way), and a sheep that joins later holds the same state. Test hook SHEEP_TEST_CMSG_ECHO=N: a sheep's first N operations are sent and reported not sent.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need qemu-io

SHEEP_TEST_CMSG_ECHO=1000 sd_start 0 || bail "sheep 0"
SHEEP_TEST_CMSG_ECHO=1000 sd_start 1 || bail "sheep 1"
sd_start 2 || bail "sheep 2"
sd_wait_nodes 0 3 || bail "three sheep"
check "format 2:1 (an operation: echoed)" sd_quiet dogn 0 cluster format -c 2:1
for i in 0 1 2; do nbd_wait_nbd $i || bail "no NBD on sheep $i"; done
# wait_log IDX PATTERN: until sheep IDX's log has PATTERN (5 s at most).
wait_log() {
	local t
	for ((t = 0; t < 50; t++)); do grep -qE "$2" "$(sd_dir "$1")/sheep.log" && return 0; sleep 0.1; done
	return 1
}
names() { dogn "$1" vdi list -r 2>/dev/null | awk '{print $1, $2, $3}' | sort; }
check "vdi create v through sheep 0" dogn 0 vdi create v 16M
check "vdi create w through sheep 1" dogn 1 vdi create w 16M
check "sheep 0's create was sent twice (the hook)" \
	grep -q "test hook: cluster message .* reported not sent" "$(sd_dir 0)/sheep.log"
check "... and its second copy skipped by every member" \
	wait_log 2 "second copy of an operation applied already; skipped"
check_eq "one v, one w" "= v 0
= w 0" "$(names 2)"
check "a snapshot of v through sheep 0" dogn 0 vdi snapshot -s s1 v
check_eq "v has one snapshot" 1 "$(dogn 2 vdi list -r | awk '$1 == "s" && $2 == "v"' | wc -l)"
check "a clone of it through sheep 0" dogn 0 vdi clone -s s1 v c
check "vdi delete c through sheep 1" dogn 1 vdi delete c

locked() { dogn 2 vdi lock list -r 2>/dev/null | grep -qw "$1"; }
wait_unlocked() {
	local t
	for ((t = 0; t < 50; t++)); do locked "$1" || return 0; sleep 0.1; done
	return 1
}
# An NBD writer through sheep 0: its lock and its unlock (a cluster
# operation with a waiter) are sent twice.
check "an NBD writer through sheep 0" qemu-io -f raw -c "write -P 0x5a 0 1M" "$(nbd_uri 0 v)"
check "v is unlocked once it has left" wait_unlocked v
check "a writer through sheep 2 gets in and reads the first one's data" \
	qemu-io -f raw -c "read -P 0x5a 0 1M" -c "write -P 0x6b 1M 1M" "$(nbd_uri 2 v)"
check "sheep 0 does not call its unlock failed" \
	bash -c "! grep 'unlock failed' '$(sd_dir 0)/sheep.log'"

# A Sheepdog-protocol client (dog vdi write) holding the lock of w through
# sheep 1 is killed: sheep 1 releases its connection's lock with no
# waiter, the hook calls that not sent, and a worker sends it again.
fifo=$SD_TEST_DIR/dw.in
mkfifo "$fifo"
dogn 1 vdi write w 0 $((2 << 20)) <"$fifo" >"$SD_TEST_DIR/dw.out" 2>&1 &
dw=$!
exec 8>"$fifo"
head -c $((1 << 20)) /dev/urandom >&8 # half: dog waits for the rest, holding the lock
for ((t = 0; t < 50; t++)); do locked w && break; sleep 0.1; done
check "dog vdi write holds the lock of w through sheep 1" locked w
n1=$(grep -c "reported not sent" "$(sd_dir 1)/sheep.log")
skips() { grep -c "second copy of an operation applied already" "$(sd_dir 1)/sheep.log"; }
k1=$(skips)
pkill -KILL -P $dw 2>/dev/null
{ kill -KILL $dw; wait $dw; } 2>/dev/null
exec 8>&-
check "w is unlocked once dog is gone" wait_unlocked w
for ((t = 0; t < 50; t++)); do
	[ "$(grep -c "reported not sent" "$(sd_dir 1)/sheep.log")" -gt "$n1" ] && break
	sleep 0.1
done
check "sheep 1's release was sent and reported not sent (the hook)" \
	test "$(grep -c "reported not sent" "$(sd_dir 1)/sheep.log")" -gt "$n1"
for ((t = 0; t < 50; t++)); do [ "$(skips)" -gt "$k1" ] && break; sleep 0.1; done
check "the worker's copy of it was skipped" test "$(skips)" -gt "$k1"
check "sheep 1 does not call the second copy a failure" \
	bash -c "! grep 'sent again: ' '$(sd_dir 1)/sheep.log'"
check "w can be written again through sheep 1" \
	qemu-io -f raw -c "write -P 0x7c 0 64k" "$(nbd_uri 1 w)"

# A sheep that joins now gets the state (with the operations applied
# lately): every member lists the same VDIs.
sd_start 3 || bail "sheep 3"
sd_wait_nodes 0 4 || bail "four sheep"
ref=$(names 0)
for i in 1 2 3; do check_eq "sheep $i lists what sheep 0 does" "$ref" "$(names $i)"; done
check "the snapshot reads back through the new sheep" \
	qemu-io -r -f raw -c "read -P 0 0 1M" "$(nbd_uri 3 v@s1)"
for i in 0 1 2 3; do check "sheep $i is alive" sd_alive $i; done
sd_done
