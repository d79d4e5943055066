#!/usr/bin/env bash
# 086-zookeeper-fast-failure.sh - a real ZooKeeper, session timeout 20 s: a kill -9'd sheep (a middle one, then the oldest) is dropped by every member within 3 s through the neighbour watch, a SIGSTOPped one is not dropped, and the data reads back (sha256).
# timeout: 600
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/zookeeper.sh"

zk_test_begin "$0" "$@"
zk_write_conf 1
zk_start 0
zk_wait 0 || bail "private ZooKeeper did not start"

MiB=$((1 << 20))
# A session timeout far beyond the 3 s allowed below: only the watch can
# drop a killed sheep that fast.
TMO=20000
LIMIT_MS=3000
SPEC="zookeeper:$(zk_hosts),timeout=$TMO,path=/sd086"

zk_six_sheep_with_data "$SPEC"

# 1. A middle member is killed: its watcher sees the connection drop, the
#    port refuses, its znode goes, the oldest buries it.
e0=$(cluster_epoch 0)
sd_kill 3
ms=$(all_see 5 0 1 2 4 5)
log "every survivor saw 5 nodes $ms ms after kill -9 of sheep 3"
check "every survivor drops the killed sheep 3 within $LIMIT_MS ms (session timeout $TMO ms): $ms ms" \
	test "$ms" -ge 0 -a "$ms" -le $LIMIT_MS
check "a watcher logged that the killed sheep's port refuses" \
	grep -q "127.0.0.1:$(sd_port 3) (member [0-9]*) closed its connection and its port refuses" \
	"$(sd_dir 0)/sheep.log" "$(sd_dir 1)/sheep.log" "$(sd_dir 2)/sheep.log" \
	"$(sd_dir 4)/sheep.log" "$(sd_dir 5)/sheep.log"
e1=$(cluster_epoch 0)
check "the epoch moved on once ($e0 -> $e1)" test "${e1:-0}" -eq $(( ${e0:-0} + 1 ))
for i in 1 2 4 5; do
	check_eq "sheep $i is at sheep 0's epoch" "$e1" "$(cluster_epoch "$i")"
done
dogn 4 vdi read ff $((MiB + 5)) $((8 * MiB + 333)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "the data reads back with sheep 3 gone" "$(sd_sha "$SD_TEST_DIR/data")" "$(sd_sha "$SD_TEST_DIR/got")"
sd_random "$SD_TEST_DIR/d2" $((2 * MiB + 11))
check "vdi write with sheep 3 gone" dogn 2 vdi write ff $((20 * MiB)) $((2 * MiB + 11)) <"$SD_TEST_DIR/d2"

# 2. A stopped sheep still listens (the kernel accepts for it): the watch
#    proves nothing and it stays a member until its session expires.
kill -STOP "${SD_PIDS[5]}"
sleep 4
n=$(dogn 0 node list -r 2>/dev/null | grep -c .)
check_eq "a sheep stopped for 4 s (< session timeout) is still a member" 5 "$n"
check_eq "... and the epoch did not move" "$e1" "$(cluster_epoch 0)"
kill -CONT "${SD_PIDS[5]}"
dogn 5 vdi read ff $((MiB + 5)) $((8 * MiB + 333)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "the data reads back through the resumed sheep 5" "$(sd_sha "$SD_TEST_DIR/data")" "$(sd_sha "$SD_TEST_DIR/got")"

# 3. The oldest member (which buries the dead) is killed itself: its
#    watcher removes its znode and the next oldest buries it.
sd_kill 0
ms=$(all_see 4 1 2 4 5)
log "every survivor saw 4 nodes $ms ms after kill -9 of the oldest, sheep 0"
check "every survivor drops the killed oldest sheep within $LIMIT_MS ms: $ms ms" \
	test "$ms" -ge 0 -a "$ms" -le $LIMIT_MS
e2=$(cluster_epoch 1)
check "the epoch moved on once more ($e1 -> $e2)" test "${e2:-0}" -eq $(( ${e1:-0} + 1 ))
for i in 2 4 5; do
	check_eq "sheep $i is at sheep 1's epoch" "$e2" "$(cluster_epoch "$i")"
done
dogn 5 vdi read ff $((MiB + 5)) $((8 * MiB + 333)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "the data reads back with two sheep gone" "$(sd_sha "$SD_TEST_DIR/data")" "$(sd_sha "$SD_TEST_DIR/got")"

# 4. Both come back; recovery; everything reads back.
sd_start 0 -c "$SPEC" || not_ok "sheep 0 restarted"
sd_start 3 -c "$SPEC" || not_ok "sheep 3 restarted"
check "the restarted sheep rejoin" sd_wait_nodes 1 6 30
. "$SD_TOP/tests/func/rec_lib.sh"
e=$(cluster_epoch 1)
check "recovery completes after the rejoin" rec_wait_done 1 6 "${e:-1}" 120
dogn 3 vdi read ff $((MiB + 5)) $((8 * MiB + 333)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "the first write reads back through rejoined sheep 3" "$(sd_sha "$SD_TEST_DIR/data")" "$(sd_sha "$SD_TEST_DIR/got")"
dogn 0 vdi read ff $((20 * MiB)) $((2 * MiB + 11)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "the degraded write reads back through rejoined sheep 0" "$(sd_sha "$SD_TEST_DIR/d2")" "$(sd_sha "$SD_TEST_DIR/got")"
for i in 0 1 2 3 4 5; do
	check "sheep $i is alive" sd_alive "$i"
done
sd_done
