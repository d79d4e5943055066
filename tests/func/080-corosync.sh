#!/usr/bin/env bash
# 080-corosync.sh - a private corosync on 127.0.0.1: the driver's ordering tests, then six sheep -c corosync: format, create, write, read, kill -9, membership change, data intact.
# timeout: 420
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/corosync.sh"

why=$(cs_missing)
if [ -n "$why" ]; then
	echo "# SKIP corosync test: $why"
	exit 77
fi
# Private mount + network namespace: our corosync's pid file, IPC sockets
# and ports are invisible to anything else on the machine, and vice versa.
cs_enter_private_ns "$0" "$@" || bail "cannot set up a private namespace for corosync"

CS_DIR=$SD_TEST_DIR/corosync
CS_PID=
trap 'cs_stop_pid "$CS_PID"; sd_cleanup' EXIT
cs_write_conf "$CS_DIR" 1 127.0.0.1 127.0.0.1
cs_start_here "$CS_DIR" || bail "private corosync did not start"
ok "private corosync runs on 127.0.0.1 (pid $CS_PID)"
check "corosync is quorate with expected_votes 1" \
	bash -c 'corosync-quorumtool -s | grep -q "Quorate: *Yes"'

# 1. The driver alone: six processes, one agreed order, 1 MiB messages,
#    kill -9, leader failover, joiners catching up (tests/unit).
unit=${SD_BUILD:-$SD_TOP/build}/tests/unit/test_cluster_corosync
if [ -x "$unit" ]; then
	CMOCKA_MESSAGE_OUTPUT=TAP SD_TEST_LOG="$SD_TEST_DIR/driver.log" timeout 120 "$unit" \
		>"$SD_TEST_DIR/driver.tap" 2>&1
	grep -q "corosync running" "$SD_TEST_DIR/driver.tap" ||
		not_ok "driver tests ran against the private corosync"
	while read -r line; do
		case "$line" in
		"ok "*) ok "driver: ${line#ok * - }" ;;
		"not ok "*) not_ok "driver: ${line#not ok * - }" ;;
		"#"*) echo "$line" ;;
		esac
	done <"$SD_TEST_DIR/driver.tap"
else
	not_ok "driver test program $unit is built"
fi

# 2. Six sheep on the one corosync.
if [ ! -x "$SHEEP" ] || [ ! -x "$DOG" ]; then
	skip "six sheep on corosync: sheep or dog is not built yet"
	sd_done
	exit $?
fi
GROUP="sd080-$$"
MiB=$((1 << 20))
for i in 0 1 2 3 4 5; do
	sd_start "$i" -c "corosync:group=$GROUP" || bail "sheep $i did not start with -c corosync"
done
sd_wait_nodes 0 6 60 || bail "six sheep did not form a cluster over corosync"
ok "six sheep joined over corosync"
for i in 1 2 3 4 5; do
	check_eq "sheep $i sees the same node list as sheep 0" \
		"$(dogn 0 node list -r 2>&1)" "$(dogn "$i" node list -r 2>&1)"
done
check_eq "corosync shows six processes in group $GROUP" 6 \
	"$(corosync-cpgtool -d ' ' | awk -v g="$GROUP" '$1 == g' | wc -l)"

check "cluster format -c 4:2" dogn 0 cluster format -c 4:2
epoch0=$(dogn 0 cluster info 2>/dev/null | awk '/^Epoch/{getline; print $3; exit}')
log "epoch after format: $epoch0"

check "vdi create" dogn 0 vdi create cs 64M
sd_random "$SD_TEST_DIR/data" $((20 * MiB + 4321))
check "vdi write 20 MiB at offset 3 MiB + 7" \
	dogn 1 vdi write cs $((3 * MiB + 7)) $((20 * MiB + 4321)) <"$SD_TEST_DIR/data"
dogn 2 vdi read cs $((3 * MiB + 7)) $((20 * MiB + 4321)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "data reads back through another sheep" "$(sd_sha "$SD_TEST_DIR/data")" "$(sd_sha "$SD_TEST_DIR/got")"

# kill -9 one sheep: corosync notices the process is gone at once.
sd_kill 4
check "the others drop the killed sheep" sd_wait_nodes 0 5 30
for i in 1 2 3 5; do
	check "sheep $i sees five nodes" sd_wait_nodes "$i" 5 10
done
epoch1=$(dogn 0 cluster info 2>/dev/null | awk '/^Epoch/{getline; print $3; exit}')
log "epoch after the kill: $epoch1"
if [ -n "$epoch0" ] && [ -n "$epoch1" ]; then
	check "the epoch moved on after the kill ($epoch0 -> $epoch1)" test "$epoch1" -gt "$epoch0"
else
	not_ok "cluster info shows the epoch (got '$epoch0' and '$epoch1')"
fi
dogn 3 vdi read cs $((3 * MiB + 7)) $((20 * MiB + 4321)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "data still correct with one sheep killed" "$(sd_sha "$SD_TEST_DIR/data")" "$(sd_sha "$SD_TEST_DIR/got")"

# A write with the node down, then the node comes back and all agree.
sd_random "$SD_TEST_DIR/d2" $((1 * MiB + 99))
check "vdi write with one sheep down" dogn 5 vdi write cs $((40 * MiB)) $((1 * MiB + 99)) <"$SD_TEST_DIR/d2"
sd_start 4 -c "corosync:group=$GROUP" || not_ok "sheep 4 restarted"
check "the restarted sheep rejoins" sd_wait_nodes 0 6 60
check "the restarted sheep sees six nodes" sd_wait_nodes 4 6 30
# Data written while a node was down sits where the five-node placement put
# it; it reads back under the six-node placement once recovery has run.
if "$SHEEP" -h 2>&1 | grep -q -- "--recovery"; then
	. "$SD_TOP/tests/func/rec_lib.sh"
	e=$(dogn 0 cluster info 2>/dev/null | awk '/^Epoch/{getline; print $3; exit}')
	check "recovery completes after the rejoin" rec_wait_done 0 6 "${e:-1}" 120
	dogn 4 vdi read cs $((40 * MiB)) $((1 * MiB + 99)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
	check_eq "the degraded write reads back through the rejoined sheep" "$(sd_sha "$SD_TEST_DIR/d2")" "$(sd_sha "$SD_TEST_DIR/got")"
else
	skip "the degraded write after the rejoin: this sheep has no recovery yet"
fi
dogn 0 vdi read cs $((3 * MiB + 7)) $((20 * MiB + 4321)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "the first write still reads back" "$(sd_sha "$SD_TEST_DIR/data")" "$(sd_sha "$SD_TEST_DIR/got")"

sd_done
