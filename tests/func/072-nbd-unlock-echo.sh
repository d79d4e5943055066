#!/usr/bin/env bash
# 072-nbd-unlock-echo.sh - an unlock the cluster driver reports "not sent" when it was sent (ZooKeeper: a create whose answer a dropped connection lost, as when the ensemble restarts) is sent again, and its second copy finds the lock already released: neither an NBD writer's unlock nor the release of a closed Sheepdog-protocol connection's lock may call that a failure (CI's func/083 of stop 33: one of its two checks failed in both runs). Test hook SHEEP_TEST_UNLOCK_ECHO=1: a sheep's first unlock is sent and reported not sent.
# timeout: 200
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need qemu-io

SHEEP_TEST_UNLOCK_ECHO=1 sd_start 0 || bail "sheep 0"
SHEEP_TEST_UNLOCK_ECHO=1 sd_start 1 || bail "sheep 1"
sd_start 2 || bail "sheep 2"
sd_wait_nodes 0 3 || bail "three sheep"
check "format 2:1" sd_quiet dogn 0 cluster format -c 2:1
for i in 0 1 2; do nbd_wait_nbd $i || bail "no NBD on sheep $i"; done
check "vdi create v" dogn 0 vdi create v 16M
check "vdi create w" dogn 0 vdi create w 16M
locked() { dogn 2 vdi lock list -r 2>/dev/null | grep -qw "$1"; }
wait_unlocked() {
	local t
	for ((t = 0; t < 50; t++)); do locked "$1" || return 0; sleep 0.1; done
	return 1
}

# 1. An NBD writer through sheep 0 leaves: its unlock (a cluster
#    operation with a waiter) is applied, reported not sent, sent again.
check "an NBD writer through sheep 0" qemu-io -f raw -c "write -P 0x5a 0 1M" "$(nbd_uri 0 v)"
check "v is unlocked once it has left" wait_unlocked v
check "sheep 0's unlock was sent and reported not sent (the hook)" \
	grep -q "test hook: unlock of vdi .* reported not sent" "$(sd_dir 0)/sheep.log"
# wait_log IDX PATTERN: until sheep IDX's log has PATTERN (5 s at most).
wait_log() {
	local t
	for ((t = 0; t < 50; t++)); do grep -qE "$2" "$(sd_dir "$1")/sheep.log" && return 0; sleep 0.1; done
	return 1
}
check "sheep 0 sent its unlock again (its answer: logged)" \
	wait_log 0 "nothing to release|unlock failed"
check "sheep 0 does not call its unlock failed" \
	bash -c "! grep 'unlock failed' '$(sd_dir 0)/sheep.log'"
check "a writer through sheep 2 gets in and reads the first one's data" \
	qemu-io -f raw -c "read -P 0x5a 0 1M" -c "write -P 0x6b 1M 1M" "$(nbd_uri 2 v)"

# 2. A Sheepdog-protocol client (dog vdi write) holding the lock of w
#    through sheep 1 is killed: sheep 1 releases its connection's lock
#    with no waiter, and a worker sends it again.
fifo=$SD_TEST_DIR/dw.in
mkfifo "$fifo"
dogn 1 vdi write w 0 $((2 << 20)) <"$fifo" >"$SD_TEST_DIR/dw.out" 2>&1 &
dw=$!
exec 8>"$fifo"
head -c $((1 << 20)) /dev/urandom >&8 # half: dog waits for the rest, holding the lock
for ((t = 0; t < 50; t++)); do locked w && break; sleep 0.1; done
check "dog vdi write holds the lock of w through sheep 1" locked w
pkill -KILL -P $dw 2>/dev/null
{ kill -KILL $dw; wait $dw; } 2>/dev/null
exec 8>&-
check "w is unlocked once dog is gone" wait_unlocked w
check "sheep 1's release was sent and reported not sent (the hook)" \
	grep -q "test hook: unlock of vdi .* reported not sent" "$(sd_dir 1)/sheep.log"
check "sheep 1's worker sent it again (its answer: logged)" \
	wait_log 1 "an earlier copy of it was applied|sent again: "
check "sheep 1 does not call the second copy a failure" \
	bash -c "! grep 'sent again: ' '$(sd_dir 1)/sheep.log'"
check "w can be written again through sheep 1" \
	qemu-io -f raw -c "write -P 0x7c 0 64k" "$(nbd_uri 1 w)"
for i in 0 1 2; do check "sheep $i is alive" sd_alive $i; done
sd_done
