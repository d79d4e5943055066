#!/usr/bin/env bash
# 011-core-membership.sh - epoch 1 at format, then one per membership change, logged on disk (Sheepdog 1.0's count); joiners get the VDI table; a restarted cluster keeps its VDIs and data; DIR lock, daemon mode, options.
# timeout: 300
. "$SD_TOP/tests/func/lib.sh"

top_epoch() { dogn "$1" cluster info | awk '/^Epoch/{getline; print $3; exit}'; }

sd_start_cluster 3 || bail "three sheep did not form a cluster"
check "format 2:1" dogn 0 cluster format -c 2:1
check_eq "format with 3 sheep: epoch 1 on sheep 0" 1 "$(top_epoch 0)"
check_eq "format with 3 sheep: epoch 1 on sheep 2" 1 "$(top_epoch 2)"
check "epoch 1 logged on disk by sheep 1" test -s "$(sd_dir 1)/epoch/00000001"
check "create a" dogn 1 vdi create a 40M
check "create b (3 copies)" dogn 2 vdi create -c 3 b 40M
sd_random "$SD_TEST_DIR/a" $((9 << 20))
check "write a" dogn 0 vdi write a 0 $((9 << 20)) <"$SD_TEST_DIR/a"

# A joiner receives the cluster state: format, VDI table, epoch.
sd_start 3 || bail "sheep 3 did not start"
sd_wait_nodes 3 4 || not_ok "sheep 3 does not see 4 nodes"
check_eq "joiner lists the VDIs" "a b" "$(dogn 3 vdi list -r | awk '{print $2}' | sort | xargs)"
check_eq "joiner has epoch 2" 2 "$(top_epoch 3)"
check_eq "old member has epoch 2" 2 "$(top_epoch 0)"
check_eq "joiner reads a" "$(sd_sha "$SD_TEST_DIR/a")" "$(dogn 3 vdi read a 0 $((9 << 20)) | sha256sum | cut -d' ' -f1)"
check "joiner creates a VDI" dogn 3 vdi create c 8M
check_eq "the others see it" "a b c" "$(dogn 1 vdi list -r | awk '{print $2}' | sort | xargs)"

# A failure bumps the epoch on every survivor.
sd_kill 1
sd_wait_nodes 0 3 || not_ok "membership did not drop to 3"
sleep 0.5
check_eq "after a kill: epoch 3 on sheep 0" 3 "$(top_epoch 0)"
check_eq "after a kill: epoch 3 on sheep 3" 3 "$(top_epoch 3)"
check_eq "a reads back with sheep 1 down" "$(sd_sha "$SD_TEST_DIR/a")" \
	"$(dogn 2 vdi read a 0 $((9 << 20)) | sha256sum | cut -d' ' -f1)"

# A second sheep on a DIR in use is refused with a clear message.
"$SHEEP" "$(sd_dir 0)" -f -p "$(sd_port 9)" -c "local:path=$SD_TEST_DIR/local" --nbd off >"$SD_TEST_DIR/dup.out" 2>&1
rc=$?
check_eq "second sheep on the same DIR exits 1" 1 "$rc"
check "it says the directory is in use" grep -q "in use by another sheep" "$SD_TEST_DIR/dup.out"

# Bad options: exit 1 with a message, nothing started.
"$SHEEP" "$SD_TEST_DIR/x" -p 0 >/dev/null 2>"$SD_TEST_DIR/opt.err"
check_eq "-p 0 refused" 1 "$?"
check "-h shows the options" bash -c '"$1" -h | grep -q -- "--nbd"' _ "$SHEEP"

# The Sheepdog-style line daemonizes, writes a pid file and joins.
d=$SD_TEST_DIR/daemon
"$SHEEP" "$d" -z 7 -p "$(sd_port 7)" -c "local:path=$SD_TEST_DIR/local" -n -y 127.0.0.1 -l level=debug --nbd off
check_eq "daemon mode returns 0" 0 "$?"
sd_wait_port "$(sd_port 7)" || not_ok "daemonized sheep does not listen"
check "pid file written" test -s "$d/sheep.pid"
check "log in DIR/sheep.log" test -s "$d/sheep.log"
sd_wait_nodes 0 4 || not_ok "daemonized sheep did not join"
dpid=$(cat "$d/sheep.pid")
kill "$dpid"
for ((t = 0; t < 50; t++)); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
check "daemon stops on SIGTERM" bash -c "! kill -0 $dpid 2>/dev/null"
check "pid file removed" test ! -e "$d/sheep.pid"
sd_wait_nodes 0 3 || not_ok "the daemon did not leave"

# Whole-cluster restart: VDIs and data persist, epochs continue.
before=$(top_epoch 0)
check "cluster shutdown" dogn 0 cluster shutdown
for i in 0 2 3; do
	pid=${SD_PIDS[$i]}
	for ((t = 0; t < 100; t++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	check "sheep $i exited after shutdown" bash -c "! kill -0 $pid 2>/dev/null"
	unset "SD_PIDS[$i]"
done
for i in 0 1 2 3; do sd_start $i || not_ok "restart sheep $i"; done
# Every sheep, not only 0: the listing below asks sheep 2.
for i in 0 1 2 3; do sd_wait_nodes $i 4 || not_ok "restarted sheep $i does not see 4 nodes"; done
check_eq "VDIs survive a restart" "a b c" "$(dogn 2 vdi list -r | awk '{print $2}' | sort | xargs)"
check_eq "data survives a restart" "$(sd_sha "$SD_TEST_DIR/a")" \
	"$(dogn 1 vdi read a 0 $((9 << 20)) | sha256sum | cut -d' ' -f1)"
after=$(top_epoch 0)
check "epoch keeps growing across the restart ($before -> $after)" test "$after" -gt "$before"
check_eq "all nodes agree on the epoch" "$after $after $after $after" \
	"$(for i in 0 1 2 3; do top_epoch $i; done | xargs)"
sd_done
