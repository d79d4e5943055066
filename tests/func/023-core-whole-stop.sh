#!/usr/bin/env bash
# 023-core-whole-stop.sh - after a whole-cluster stop no read or write is served until the members of the newest epoch are back: the sheep that missed writes, started first, refuses I/O with a clear message; with the others back the newest data is read; dog cluster recover force ends a wait for a member that never returns (issue 14, item 7).
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

N=6
sd_start_cluster $N || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
dogn 0 vdi create -c 4:2 e 16M || bail "4:2 VDI"
dogn 0 vdi create -c 3 r 16M || bail "3-copy VDI"
sd_random "$SD_TEST_DIR/v1" $((8 << 20))
sd_random "$SD_TEST_DIR/v2" $((8 << 20))
check "write v1 to e" dogn 0 vdi write e 0 $((8 << 20)) <"$SD_TEST_DIR/v1"
check "write v1 to r" dogn 0 vdi write r 0 $((8 << 20)) <"$SD_TEST_DIR/v1"

# Sheep 5 stops first; v2 is written and acknowledged without it.
sd_kill 5
sd_wait_nodes 0 5 || bail "sheep 0 still lists sheep 5"
check "write v2 to e without sheep 5" dogn 0 vdi write e 0 $((8 << 20)) <"$SD_TEST_DIR/v2"
check "write v2 to r without sheep 5" dogn 0 vdi write r 0 $((8 << 20)) <"$SD_TEST_DIR/v2"
# A VDI created while sheep 5 is down: sheep 5's VDI table lacks it.
check "create n without sheep 5" dogn 0 vdi create -c 4:2 n 8M
check "write v2 to n without sheep 5" dogn 0 vdi write n 0 $((4 << 20)) <"$SD_TEST_DIR/v2"
v2sha=$(sd_sha "$SD_TEST_DIR/v2")
check_eq "v2 reads back before the stop" "$v2sha" "$(dogn 1 vdi read e 0 $((8 << 20)) | sd_sha /dev/stdin)"

# The whole cluster stops.
for i in 0 1 2 3 4; do sd_kill "$i"; done

# refused IDX WHAT: every kind of I/O through sheep IDX is refused, with the message.
refused() {
	local i=$1 what=$2 out rc
	out=$(dogn "$i" vdi read e 0 4096 2>&1 >/dev/null); rc=$?
	check "$what: a read of e through sheep $i is refused" test $rc -ne 0
	check "$what: the refusal says why" grep -q "Waiting for other nodes to join cluster" <<<"$out"
	out=$(dogn "$i" vdi read r 0 4096 2>&1 >/dev/null)
	check "$what: a read of r through sheep $i is refused" test $? -ne 0
	sd_random "$SD_TEST_DIR/w" 4096
	dogn "$i" vdi write r 0 4096 <"$SD_TEST_DIR/w" 2>/dev/null
	check "$what: a write through sheep $i is refused" test $? -ne 0
	check "$what: cluster info says it waits" \
		grep -q "Cluster status: Waiting for other nodes to join cluster" <<<"$(dogn "$i" cluster info 2>&1)"
}

# The sheep that missed v2 starts first, alone.
sd_start 5 || bail "sheep 5 restart"
sd_wait_nodes 5 1 || bail "sheep 5 alone"
sleep 1
refused 5 "sheep 5 alone (missed v2)"
check "sheep 5 logs what it waits for" grep -q "waiting for the 6 nodes of epoch [0-9]* to be back: no I/O is served" \
	"$(sd_dir 5)/sheep.log"
# Its recovery does not plan from stale data either.
check "sheep 5 does not plan recovery while waiting" \
	test "$(grep -c 'recovery: epoch .* planning' "$(sd_dir 5)/sheep.log")" -le 1

sd_start 0 || bail "sheep 0 restart"
sd_wait_nodes 5 2 || bail "sheep 0 did not join"
sleep 1
refused 0 "sheep 5 and 0"

for i in 1 2 3; do sd_start "$i" || bail "sheep $i restart"; done
sd_wait_nodes 5 5 || bail "sheep 1-3 did not join"
sleep 1
refused 5 "sheep 4 still missing"

sd_start 4 || bail "sheep 4 restart"
sd_wait_nodes 5 6 || bail "sheep 4 did not join"
ok=0
for ((t = 0; t < 100; t++)); do
	dogn 5 vdi read e 0 4096 >/dev/null 2>&1 && { ok=1; break; }
	sleep 0.2
done
check "all members back: I/O is served" test $ok = 1
check "sheep 5 logs the end of the wait" grep -q "every node of the previous epoch is back" \
	"$(sd_dir 5)/sheep.log"
check_eq "e through sheep 5 returns v2" "$v2sha" "$(dogn 5 vdi read e 0 $((8 << 20)) | sd_sha /dev/stdin)"
check_eq "r through sheep 5 returns v2" "$v2sha" "$(dogn 5 vdi read r 0 $((8 << 20)) | sd_sha /dev/stdin)"
check_eq "e through sheep 0 returns v2" "$v2sha" "$(dogn 0 vdi read e 0 $((8 << 20)) | sd_sha /dev/stdin)"
check_eq "n (created while sheep 5 was down) is listed by sheep 5" "n" \
	"$(dogn 5 vdi list -r | awk '$2 == "n" {print $2}')"
check_eq "n through sheep 5 returns its data" "$(head -c $((4 << 20)) "$SD_TEST_DIR/v2" | sd_sha /dev/stdin)" \
	"$(dogn 5 vdi read n 0 $((4 << 20)) | sd_sha /dev/stdin)"
check "the state (VDI table included) of a member of the newest epoch was taken" grep -q "took the state of 127.0.0.1:[0-9]*: formatted at [0-9]*, epoch [0-9]*, 3 VDIs" \
	"$(sd_dir 5)/sheep.log"
check "cluster info says running" grep -q "Cluster status: running" <<<"$(dogn 3 cluster info)"
check "a write is served again" dogn 5 vdi write r 0 $((8 << 20)) <"$SD_TEST_DIR/v1"
check_eq "r returns what was just written" "$(sd_sha "$SD_TEST_DIR/v1")" \
	"$(dogn 2 vdi read r 0 $((8 << 20)) | sd_sha /dev/stdin)"

# A member that never returns: the wait holds until an operator forces it.
sleep 2
for i in 0 1 2 3 4 5; do kill -TERM "${SD_PIDS[$i]}" 2>/dev/null; done
for i in 0 1 2 3 4 5; do wait "${SD_PIDS[$i]}" 2>/dev/null; unset "SD_PIDS[$i]"; done
for i in 0 1 2 3 4; do sd_start "$i" || bail "sheep $i second restart"; done
sd_wait_nodes 0 5 || bail "five sheep did not rejoin"
sleep 1
refused 2 "sheep 5 gone for good"
check "dog cluster recover force" dogn 2 cluster recover force
ok=0
for ((t = 0; t < 100; t++)); do
	dogn 4 vdi read e 0 4096 >/dev/null 2>&1 && { ok=1; break; }
	sleep 0.2
done
check "forced: I/O is served with five of six members" test $ok = 1
check_eq "forced: r returns the newest data" "$(sd_sha "$SD_TEST_DIR/v1")" \
	"$(dogn 4 vdi read r 0 $((8 << 20)) | sd_sha /dev/stdin)"
check_eq "forced: e returns the newest data" "$v2sha" "$(dogn 1 vdi read e 0 $((8 << 20)) | sd_sha /dev/stdin)"
for i in 0 1 2 3 4; do check "sheep $i running" sd_alive "$i"; done
sd_done
