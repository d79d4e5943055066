#!/usr/bin/env bash
# 054-dog-epoch-history.sh - epoch history as Sheepdog 1.0 counts it: epoch 1 = the sheep at format time, one epoch per change, a restarted cluster waits for the nodes of its newest epoch then logs one epoch; formatted sheep restarted next to fresh ones resume (Sheepdog's functional tests 001 and 002 as REFERENCE.md's cluster info).
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
export SD_PORT_BASE

# Sheepdog's _filter_cluster_info: dates become DATE; here also ports become
# node numbers and the vnode counts are dropped, so the text is fixed.
filter() {
	sed -E -e 's/^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}/DATE/' \
		-e 's/^Cluster created at .*/Cluster created at DATE/' \
		-e "s/127\.0\.0\.1:([0-9]+):[0-9]+/n\1/g" | perl -pe 's/n(\d{3,})/"n".($1-$ENV{SD_PORT_BASE})/ge'
}
info() { dogn "$1" cluster info | filter; }
top_epoch() { dogn "$1" cluster info | awk '/^Epoch/{getline; print $3; exit}'; }
stop_all() {
	local i
	for i in "${!SD_PIDS[@]}"; do sd_kill "$i"; done
}
head3() {
	printf 'Cluster status: running, auto-recovery enabled\n\nCluster created at DATE\n\n'
	printf 'Epoch Time           Version [Host:Port:V-Nodes,,,]\n'
}

# Sheepdog's 001: format with two, kill the first, a third joins, kill the
# others one by one, restart all three a second apart.
sd_start 0 && sd_start 1 && sd_wait_nodes 0 2 || bail "two sheep did not form a cluster"
check_eq "before format: no epoch" "" "$(top_epoch 0)"
check "format" dogn 0 cluster format
check_eq "epoch 1 = the sheep at format time" "$(head3; echo 'DATE      1 [n0, n1]')" "$(info 1)"
check "epoch 1 logged on disk" test -s "$(sd_dir 0)/epoch/00000001"
check "no epoch 2 before any change" test ! -e "$(sd_dir 0)/epoch/00000002"
sd_kill 0
sd_wait_nodes 1 1 || not_ok "sheep 1 does not see sheep 0 leave"
sd_start 2 && sd_wait_nodes 1 2 || not_ok "sheep 2 did not join"
sd_kill 1
sd_wait_nodes 2 1 || not_ok "sheep 2 does not see sheep 1 leave"
sd_kill 2
for i in 0 1 2; do sd_start $i; sleep 1; done
for i in 0 1 2; do sd_wait_nodes $i 3 || not_ok "restarted sheep $i does not see 3 nodes"; done
want=$(head3; printf '%s\n' 'DATE      5 [n0, n1, n2]' 'DATE      4 [n2]' 'DATE      3 [n1, n2]' \
	'DATE      2 [n1]' 'DATE      1 [n0, n1]')
for i in 0 1 2; do check_eq "001: sheep $i has Sheepdog's history" "$want" "$(info $i)"; done
stop_all
rm -rf "$SD_TEST_DIR"/n* "$SD_TEST_DIR/local"

# Sheepdog's 002: format with three, kill them one by one, restart all three.
sd_start_cluster 3 || bail "three sheep did not form a cluster"
check "format" dogn 0 cluster format -c 2
sd_kill 0; sd_wait_nodes 1 2 || not_ok "sheep 0 did not leave"
sd_kill 1; sd_wait_nodes 2 1 || not_ok "sheep 1 did not leave"
sd_kill 2
for i in 0 1 2; do sd_start $i; sleep 1; done
for i in 0 1 2; do sd_wait_nodes $i 3 || not_ok "restarted sheep $i does not see 3 nodes"; done
want=$(head3; printf '%s\n' 'DATE      4 [n0, n1, n2]' 'DATE      3 [n2]' 'DATE      2 [n1, n2]' \
	'DATE      1 [n0, n1, n2]')
for i in 0 1 2; do check_eq "002: sheep $i has Sheepdog's history" "$want" "$(info $i)"; done

# A shut-down cluster restarted with a node missing waits (no epoch, no
# I/O) until it is back; then one epoch of all of them.
sd_random "$SD_TEST_DIR/a" $((6 << 20))
check "create a" dogn 0 vdi create a 8M
check "write a" dogn 0 vdi write a 0 $((6 << 20)) <"$SD_TEST_DIR/a"
check "cluster shutdown" dogn 0 cluster shutdown
for i in 0 1 2; do wait "${SD_PIDS[$i]}" 2>/dev/null; unset "SD_PIDS[$i]"; done
sd_start 0 && sd_start 1 && sd_wait_nodes 0 2 || not_ok "two sheep did not come back"
sleep 1
check_eq "waiting: Sheepdog's status line" "Cluster status: Waiting for other nodes to join cluster" \
	"$(dogn 0 cluster info | head -1)"
check_eq "waiting: no new epoch" 4 "$(top_epoch 1)"
dogn 1 vdi read a 0 4096 >/dev/null 2>&1
check_eq "waiting: I/O refused" 1 "$?"
sd_start 2 && sd_wait_nodes 2 3 || not_ok "sheep 2 did not come back"
for ((t = 0; t < 50; t++)); do [ "$(top_epoch 0)" = 5 ] && break; sleep 0.1; done
check_eq "all back: one epoch of all three" "DATE      5 [n0, n1, n2]" "$(info 2 | sed -n 6p)"
check_eq "data after the restart" "$(sd_sha "$SD_TEST_DIR/a")" \
	"$(dogn 1 vdi read a 0 $((6 << 20)) | sha256sum | cut -d' ' -f1)"

# cluster recover force starts a waiting cluster without the missing node.
check "cluster shutdown" dogn 0 cluster shutdown
for i in 0 1 2; do wait "${SD_PIDS[$i]}" 2>/dev/null; unset "SD_PIDS[$i]"; done
sd_start 0 && sd_start 1 && sd_wait_nodes 0 2 || not_ok "two sheep did not come back"
sleep 1
check_eq "waiting again at epoch 5" 5 "$(top_epoch 0)"
check "cluster recover force" dogn 0 cluster recover force
for ((t = 0; t < 50; t++)); do [ "$(top_epoch 1)" = 6 ] && break; sleep 0.1; done
check_eq "forced: epoch 6 of the two present" "DATE      6 [n0, n1]" "$(info 1 | sed -n 6p)"
check_eq "forced: data readable (2 copies, one node missing)" "$(sd_sha "$SD_TEST_DIR/a")" \
	"$(dogn 0 vdi read a 0 $((6 << 20)) | sha256sum | cut -d' ' -f1)"
stop_all
rm -rf "$SD_TEST_DIR"/n* "$SD_TEST_DIR/local"

# Formatted sheep restarting next to a fresh, unformatted one resume: the
# fresh one starts first (alone, unformatted), the formatted ones join it.
sd_start 0 && sd_start 1 && sd_wait_nodes 0 2 || bail "two sheep did not form a cluster"
check "format -c 2" dogn 0 cluster format -c 2
check "create b" dogn 0 vdi create b 8M
check "write b" dogn 1 vdi write b 0 $((6 << 20)) <"$SD_TEST_DIR/a"
check "cluster shutdown" dogn 0 cluster shutdown
for i in 0 1; do wait "${SD_PIDS[$i]}" 2>/dev/null; unset "SD_PIDS[$i]"; done
sd_start 3 && sd_wait_nodes 3 1 || bail "fresh sheep 3 did not start"
sd_start 0 && sd_start 1 && sd_wait_nodes 3 3 || not_ok "formatted sheep did not join the fresh one"
for ((t = 0; t < 50; t++)); do [ "$(top_epoch 3)" = 2 ] && break; sleep 0.1; done
want=$(head3; printf '%s\n' 'DATE      2 [n0, n1, n3]' 'DATE      1 [n0, n1]')
for i in 0 1 3; do check_eq "resumed: sheep $i has the history" "$want" "$(info $i)"; done
check_eq "resumed: the fresh sheep lists the VDI" "b" "$(dogn 3 vdi list -r | awk '{print $2}' | xargs)"
check_eq "resumed: data read through the fresh sheep" "$(sd_sha "$SD_TEST_DIR/a")" \
	"$(dogn 3 vdi read b 0 $((6 << 20)) | sha256sum | cut -d' ' -f1)"
check "resumed: the fresh sheep saved the format" test -s "$(sd_dir 3)/epoch/00000002"
sd_done
