#!/usr/bin/env bash
# 082-zookeeper.sh - a private ZooKeeper on 127.0.0.1: bad -c zookeeper strings and an unreachable ensemble, six sheep (4:2 write, kill -9, epoch change seen by all, recovery, sha256), session expiry by SIGSTOP (it leaves, rejoins, never serves stale data).
# timeout: 600
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/zookeeper.sh"

zk_test_begin "$0" "$@"
# The JVM takes seconds: start the server first, check bad input meanwhile.
zk_write_conf 1
zk_start 0

MiB=$((1 << 20))
TMO=2000

# 1. Bad input: every malformed -c string is refused at start, with a reason.
bad_spec() {
	local spec=$1 want=$2 out rc
	out=$(timeout 20 "$SHEEP" "$SD_TEST_DIR/bad" -f -p "$(sd_port 9)" -b 127.0.0.1 -y 127.0.0.1 \
		--nbd off -c "$spec" -l level=info 2>&1)
	rc=$?
	out="$out$(cat "$SD_TEST_DIR/bad/sheep.log" 2>/dev/null)"
	rm -rf "$SD_TEST_DIR/bad"
	if [ $rc -eq 0 ] || [ $rc -ge 124 ]; then
		log "sheep -c '$spec' exited $rc"
		return 1
	fi
	grep -q -- "$want" <<<"$out" || { log "no '$want' in: $(tail -n 3 <<<"$out")"; return 1; }
}
check "-c zookeeper (no server) is refused" bad_spec "zookeeper" "no ZooKeeper server given"
check "-c zookeeper: (empty) is refused" bad_spec "zookeeper:" "no ZooKeeper server given"
check "a server without a port is refused" bad_spec "zookeeper:127.0.0.1" "no HOST:PORT"
check "port 0 is refused" bad_spec "zookeeper:127.0.0.1:0" "bad port"
check "port 70000 is refused" bad_spec "zookeeper:127.0.0.1:70000" "bad port"
check "a non-numeric timeout is refused" bad_spec "zookeeper:127.0.0.1:2181,timeout=fast" "timeout=MS"
check "timeout=10 (too short) is refused" bad_spec "zookeeper:127.0.0.1:2181,timeout=10" "timeout=MS"
check "a relative path is refused" bad_spec "zookeeper:127.0.0.1:2181,path=sheep" "path=/NAME"
check "an unknown option is refused" bad_spec "zookeeper:127.0.0.1:2181,color=blue" "unknown zookeeper option"
check "an empty item is refused" bad_spec "zookeeper:127.0.0.1:2181,,timeout=3000" "empty item"
check "an unknown driver lists the built ones" bad_spec "zoo:1" "built: local.*zookeeper"
t0=$(date +%s)
check "an unreachable ensemble is an error at start" \
	bad_spec "zookeeper:127.0.0.1:1,timeout=$TMO" "no ZooKeeper server at 127.0.0.1:1 answered"
check "... reported within 15 s" test $(($(date +%s) - t0)) -le 15

zk_wait 0 || bail "private ZooKeeper did not start"
ok "private ZooKeeper serves on $(zk_hosts)"

# 2. Six sheep, one cluster path of our own on the shared server.
SPEC="zookeeper:$(zk_hosts),timeout=$TMO,path=/sd082/c1"
for i in 0 1 2 3 4 5; do
	sd_start "$i" -c "$SPEC" || bail "sheep $i did not start with -c zookeeper"
done
sd_wait_nodes 0 6 60 || bail "six sheep did not form a cluster over ZooKeeper"
ok "six sheep joined over ZooKeeper"
for i in 1 2 3 4 5; do
	check_eq "sheep $i sees the same node list as sheep 0" \
		"$(dogn 0 node list -r 2>&1)" "$(dogn "$i" node list -r 2>&1)"
done
# A second cluster under another path on the same server stays apart.
sd_start 8 -c "zookeeper:$(zk_hosts),timeout=$TMO,path=/sd082/c2" || not_ok "sheep 8 started under /sd082/c2"
check "a sheep under another path is alone in its cluster" sd_wait_nodes 8 1 30
check "... and the first cluster still has six" sd_wait_nodes 0 6 5
sd_kill 8

check "cluster format -c 4:2" dogn 0 cluster format -c 4:2
check "vdi create" dogn 0 vdi create zk 64M
sd_random "$SD_TEST_DIR/data" $((20 * MiB + 4321))
check "vdi write 20 MiB at offset 3 MiB + 7" \
	dogn 1 vdi write zk $((3 * MiB + 7)) $((20 * MiB + 4321)) <"$SD_TEST_DIR/data"
dogn 2 vdi read zk $((3 * MiB + 7)) $((20 * MiB + 4321)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "data reads back through another sheep" "$(sd_sha "$SD_TEST_DIR/data")" "$(sd_sha "$SD_TEST_DIR/got")"

# kill -9: the session lapses after the timeout; the oldest member buries it.
epoch0=$(cluster_epoch 0)
sd_kill 4
t0=$(date +%s%N)
check "the others drop the killed sheep" sd_wait_nodes 0 5 30
for i in 1 2 3 5; do
	check "sheep $i sees five nodes" sd_wait_nodes "$i" 5 10
done
log "membership change seen $(( ($(date +%s%N) - t0) / 1000000 )) ms after kill -9 (session timeout $TMO ms)"
epoch1=$(cluster_epoch 0)
check "the epoch moved on after the kill ($epoch0 -> $epoch1)" test "${epoch1:-0}" -gt "${epoch0:-0}"
for i in 1 2 3 5; do
	check_eq "sheep $i is at the same epoch as sheep 0" "$epoch1" "$(cluster_epoch "$i")"
done
dogn 3 vdi read zk $((3 * MiB + 7)) $((20 * MiB + 4321)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "data still correct with one sheep killed" "$(sd_sha "$SD_TEST_DIR/data")" "$(sd_sha "$SD_TEST_DIR/got")"

sd_random "$SD_TEST_DIR/d2" $((1 * MiB + 99))
check "vdi write with one sheep down" dogn 5 vdi write zk $((40 * MiB)) $((1 * MiB + 99)) <"$SD_TEST_DIR/d2"
sd_start 4 -c "$SPEC" || not_ok "sheep 4 restarted"
check "the restarted sheep rejoins at once (its former self is removed)" sd_wait_nodes 0 6 15
check "the restarted sheep sees six nodes" sd_wait_nodes 4 6 30
. "$SD_TOP/tests/func/rec_lib.sh"
e=$(cluster_epoch 0)
check "recovery completes after the rejoin" rec_wait_done 0 6 "${e:-1}" 120
dogn 4 vdi read zk $((40 * MiB)) $((1 * MiB + 99)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "the degraded write reads back through the rejoined sheep" "$(sd_sha "$SD_TEST_DIR/d2")" "$(sd_sha "$SD_TEST_DIR/got")"

# 3. Session expiry: sheep 5 stands still past the timeout.
OFF=$((30 * MiB))
LEN=$((2 * MiB + 17))
sd_random "$SD_TEST_DIR/a" $LEN
sd_random "$SD_TEST_DIR/b" $LEN
sd_random "$SD_TEST_DIR/c" $LEN
check "write A through sheep 5" dogn 5 vdi write zk $OFF $LEN <"$SD_TEST_DIR/a"
epoch2=$(cluster_epoch 0)
kill -STOP "${SD_PIDS[5]}"
check "the others drop the stopped sheep" sd_wait_nodes 0 5 $((TMO / 1000 + 15))
epoch3=$(cluster_epoch 0)
check "the epoch moved on while sheep 5 stood still ($epoch2 -> $epoch3)" test "${epoch3:-0}" -gt "${epoch2:-0}"
check "write B over A through sheep 0 while sheep 5 stands still" \
	dogn 0 vdi write zk $OFF $LEN <"$SD_TEST_DIR/b"
kill -CONT "${SD_PIDS[5]}"
# Whatever sheep 5 answers at once must not be A, its stale view.
dogn 5 vdi read zk $OFF $LEN >"$SD_TEST_DIR/got5" 2>"$SD_TEST_DIR/err5"
rc=$?
got=$(sd_sha "$SD_TEST_DIR/got5")
if [ $rc -eq 0 ]; then
	check_eq "a read through sheep 5 right after SIGCONT returns B, not its stale A" \
		"$(sd_sha "$SD_TEST_DIR/b")" "$got"
else
	ok "a read through sheep 5 right after SIGCONT is refused ($(head -c 80 "$SD_TEST_DIR/err5"))"
fi
check "sheep 5 logs that its session expired and it left" \
	grep -q "session expired.*has left the cluster" "$(sd_dir 5)/sheep.log"
check "sheep 5 rejoins as a new member" sd_wait_nodes 0 6 30
check "sheep 5 sees six nodes" sd_wait_nodes 5 6 30
epoch4=$(cluster_epoch 0)
check "the epoch moved on when sheep 5 came back ($epoch3 -> $epoch4)" test "${epoch4:-0}" -gt "${epoch3:-0}"
check_eq "sheep 5 is at the cluster's epoch" "$epoch4" "$(cluster_epoch 5)"
dogn 5 vdi read zk $OFF $LEN >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "B reads back through the rejoined sheep 5" "$(sd_sha "$SD_TEST_DIR/b")" "$(sd_sha "$SD_TEST_DIR/got")"
check "write C through the rejoined sheep 5" dogn 5 vdi write zk $OFF $LEN <"$SD_TEST_DIR/c"
dogn 2 vdi read zk $OFF $LEN >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "C reads back through sheep 2" "$(sd_sha "$SD_TEST_DIR/c")" "$(sd_sha "$SD_TEST_DIR/got")"
e=$(cluster_epoch 0)
check "recovery completes after the expiry and rejoin" rec_wait_done 0 6 "${e:-1}" 120
dogn 0 vdi read zk $((3 * MiB + 7)) $((20 * MiB + 4321)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "the first write still reads back" "$(sd_sha "$SD_TEST_DIR/data")" "$(sd_sha "$SD_TEST_DIR/got")"
for i in 0 1 2 3 4 5; do
	check "sheep $i is alive" sd_alive "$i"
done

# 4. The whole cluster crashes and restarts at once, within the session
#    timeout: the members the joiners find are the dead sessions of the
#    crash, which can send nobody the cluster's state. The sheep must
#    still form the cluster again (burial before JOIN; joining again when
#    every older member left without a word) and keep the data.
for i in 0 1 2 3 4 5; do sd_kill "$i"; done
for i in 0 1 2 3 4 5; do
	sd_start "$i" -c "$SPEC" || not_ok "sheep $i restarted after the crash"
done
check "after a whole-cluster crash and restart the six form a cluster" sd_wait_nodes 0 6 60
for i in 1 2 3 4 5; do
	check "sheep $i sees six nodes after the restart" sd_wait_nodes "$i" 6 30
done
dogn 3 vdi read zk $OFF $LEN >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "C reads back after the whole-cluster restart" "$(sd_sha "$SD_TEST_DIR/c")" "$(sd_sha "$SD_TEST_DIR/got")"
dogn 4 vdi read zk $((3 * MiB + 7)) $((20 * MiB + 4321)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "the first write reads back after the whole-cluster restart" "$(sd_sha "$SD_TEST_DIR/data")" "$(sd_sha "$SD_TEST_DIR/got")"

sd_done
