#!/usr/bin/env bash
# 081-corosync-netns.sh - three hosts in network namespaces, each with its own corosync and sheep: host loss, rejoin, partition without quorum refuses writes, heal keeps acknowledged writes.
# timeout: 600
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/corosync.sh"

why=$(cs_missing)
[ -z "$why" ] && { [ -x "$SHEEP" ] && [ -x "$DOG" ] || why="sheep or dog is not built"; }
if [ -n "$why" ]; then
	echo "# SKIP corosync netns test: $why"
	exit 77
fi
# The script's own private network namespace is the switch (a bridge); each
# host is a namespace with a veth into it and an address in 10.77.0.0/24
# that exists only here. A private /run keeps `ip netns` and every corosync
# pid file away from the machine's.
cs_enter_private_ns "$0" "$@" || bail "cannot set up a private namespace"

MiB=$((1 << 20))
HOSTS=(1 2 3)
ADDRS=(10.77.0.1 10.77.0.2 10.77.0.3)
GROUP=sd081
declare -A CSP=()
PORT=$(sd_port 0)

ns() { echo "sd081-h$1"; }
addr() { echo "10.77.0.$1"; }
# on H CMD...: run CMD on host H.
on() { local h=$1; shift; ip netns exec "$(ns "$h")" "$@"; }
# dogh H ARGS...: dog against host H's sheep, from host H.
dogh() { local h=$1; shift; on "$h" "$DOG" "$@" -a "$(addr "$h")" -p "$PORT"; }

cleanup() {
	local h
	for h in "${HOSTS[@]}"; do
		[ -n "${SD_PIDS[$h]:-}" ] && kill -9 "${SD_PIDS[$h]}" 2>/dev/null
		cs_stop_pid "${CSP[$h]:-}"
	done
	sd_cleanup
}
trap cleanup EXIT

ip link add br0 type bridge && ip link set br0 up || bail "cannot create the bridge"
for h in "${HOSTS[@]}"; do
	ip netns add "$(ns "$h")" || bail "ip netns add"
	ip link add "s$h" type veth peer name eth0 netns "$(ns "$h")" || bail "veth for host $h"
	ip link set "s$h" master br0 up
	on "$h" ip addr add "$(addr "$h")/24" dev eth0
	on "$h" ip link set eth0 up
	on "$h" ip link set lo up
	cs_write_conf "$SD_TEST_DIR/cs$h" "$h" "$(addr "$h")" "${ADDRS[@]}"
done

# cs_host_start H: corosync on host H, with its own /run.
cs_host_start() {
	local h=$1 d=$SD_TEST_DIR/cs$1
	ip netns exec "$(ns "$h")" unshare -m --propagation private \
		bash -c 'mount -t tmpfs tmpfs /run && exec corosync -f -c "$1/corosync.conf"' _ "$d" \
		>>"$d/corosync.log" 2>&1 &
	CSP[$h]=$!
}
# cs_wait_quorate H SECONDS: host H's corosync is quorate.
cs_wait_quorate() {
	local t
	for ((t = 0; t < $2 * 4; t++)); do
		on "$1" corosync-quorumtool -s 2>/dev/null | grep -q "Quorate: *Yes" && return 0
		sleep 0.25
	done
	return 1
}
cs_wait_unquorate() {
	local t
	for ((t = 0; t < $2 * 4; t++)); do
		on "$1" corosync-quorumtool -s 2>/dev/null | grep -q "Quorate: *No" && return 0
		sleep 0.25
	done
	return 1
}
# sheep_start H: the sheep of host H (zone H, store n$H).
sheep_start() {
	local h=$1
	mkdir -p "$(sd_dir "$h")"
	on "$h" "$SHEEP" "$(sd_dir "$h")" -f -z "$h" -p "$PORT" -y "$(addr "$h")" -b "$(addr "$h")" \
		-c "corosync:group=$GROUP" -n -l level=debug --nbd off >>"$SD_TEST_DIR/sheep$h.out" 2>&1 &
	SD_PIDS[$h]=$!
}
# wait_nodes H COUNT SECONDS: host H's sheep lists COUNT nodes.
wait_nodes() {
	local t n
	for ((t = 0; t < $3 * 4; t++)); do
		n=$(dogh "$1" node list -r 2>/dev/null | grep -c .)
		[ "$n" = "$2" ] && return 0
		sleep 0.25
	done
	log "host $1 sees $n nodes, wanted $2"
	return 1
}
host_kill() {
	kill -9 "${SD_PIDS[$1]}" "${CSP[$1]}" 2>/dev/null
	wait "${SD_PIDS[$1]}" "${CSP[$1]}" 2>/dev/null
	unset "SD_PIDS[$1]" "CSP[$1]"
}

for h in "${HOSTS[@]}"; do cs_host_start "$h"; done
for h in "${HOSTS[@]}"; do
	check "corosync on host $h is quorate" cs_wait_quorate "$h" 30
done
for h in "${HOSTS[@]}"; do sheep_start "$h"; done
for h in "${HOSTS[@]}"; do
	check "host $h's sheep sees three nodes" wait_nodes "$h" 3 60
done
check "cluster format -c 3" dogh 1 cluster format -c 3
check "vdi create" dogh 1 vdi create v 32M
sd_random "$SD_TEST_DIR/a" $((6 * MiB + 5))
check "write 6 MiB through host 1" dogh 1 vdi write v 0 $((6 * MiB + 5)) <"$SD_TEST_DIR/a"
check_eq "read back through host 2" "$(sd_sha "$SD_TEST_DIR/a")" \
	"$(dogh 2 vdi read v 0 $((6 * MiB + 5)) | sd_sha /dev/stdin)"

# Host 3 dies (sheep and corosync): the other two keep quorum and go on.
host_kill 3
check "hosts 1 and 2 drop host 3" wait_nodes 1 2 30
check "host 2 agrees" wait_nodes 2 2 10
check "corosync on host 1 keeps quorum" cs_wait_quorate 1 5
check_eq "data reads back with host 3 down" "$(sd_sha "$SD_TEST_DIR/a")" \
	"$(dogh 2 vdi read v 0 $((6 * MiB + 5)) | sd_sha /dev/stdin)"
sd_random "$SD_TEST_DIR/b" $((2 * MiB + 3))
check "write with host 3 down is acknowledged" \
	dogh 2 vdi write v $((10 * MiB)) $((2 * MiB + 3)) <"$SD_TEST_DIR/b"

# It comes back: same store, new corosync and sheep processes.
cs_host_start 3
check "restarted corosync on host 3 is quorate" cs_wait_quorate 3 30
sheep_start 3
check "host 3 rejoins: host 1 sees three nodes" wait_nodes 1 3 60
check "host 3 sees three nodes" wait_nodes 3 3 30
check_eq "the first write reads back through host 3" "$(sd_sha "$SD_TEST_DIR/a")" \
	"$(dogh 3 vdi read v 0 $((6 * MiB + 5)) | sd_sha /dev/stdin)"
check_eq "the write made while host 3 was down reads back through host 3" "$(sd_sha "$SD_TEST_DIR/b")" \
	"$(dogh 3 vdi read v $((10 * MiB)) $((2 * MiB + 3)) | sd_sha /dev/stdin)"

# Partition: host 3 is cut off. It loses quorum and must refuse writes;
# hosts 1 and 2 keep quorum and accept them.
ip link set s3 down
check "isolated host 3 loses quorum" cs_wait_unquorate 3 30
check "hosts 1 and 2 drop the isolated host" wait_nodes 1 2 30
sd_random "$SD_TEST_DIR/c" $((1 * MiB + 1))
if dogh 3 vdi write v $((20 * MiB)) $((1 * MiB + 1)) <"$SD_TEST_DIR/c" 2>"$SD_TEST_DIR/err3"; then
	not_ok "host 3 without quorum refuses a write"
else
	ok "host 3 without quorum refuses a write"
fi
log "host 3 said: $(head -c 300 "$SD_TEST_DIR/err3")"
check "the refusal says not enough nodes are alive" grep -qiE "not enough|quorum" "$SD_TEST_DIR/err3"
sd_random "$SD_TEST_DIR/d" $((1 * MiB + 7))
check "the quorate side accepts a write" \
	dogh 1 vdi write v $((24 * MiB)) $((1 * MiB + 7)) <"$SD_TEST_DIR/d"

# Heal: host 3 regains quorum, rejoins, and sees what the majority wrote.
ip link set s3 up
check "host 3 regains quorum" cs_wait_quorate 3 60
check "host 3 is back in the cluster" wait_nodes 1 3 60
check "host 3 sees three nodes again" wait_nodes 3 3 30
check_eq "the write acknowledged during the partition reads back through host 3" \
	"$(sd_sha "$SD_TEST_DIR/d")" "$(dogh 3 vdi read v $((24 * MiB)) $((1 * MiB + 7)) | sd_sha /dev/stdin)"
check_eq "and through host 1" \
	"$(sd_sha "$SD_TEST_DIR/d")" "$(dogh 1 vdi read v $((24 * MiB)) $((1 * MiB + 7)) | sd_sha /dev/stdin)"
check_eq "the first write still reads back through host 3" "$(sd_sha "$SD_TEST_DIR/a")" \
	"$(dogh 3 vdi read v 0 $((6 * MiB + 5)) | sd_sha /dev/stdin)"
e1=$(dogh 1 cluster info 2>/dev/null | awk '/^Epoch/{getline; print $3; exit}')
e3=$(dogh 3 cluster info 2>/dev/null | awk '/^Epoch/{getline; print $3; exit}')
check_eq "hosts 1 and 3 agree on the epoch after the heal" "$e1" "$e3"

# Hosts die one after the other until host 1 is alone: the loss of host 3
# is an ordinary departure; the loss of host 2 takes quorum away, and host 1
# must never act as a one-node cluster, not even for a moment.
host_kill 3
check "host 1 drops host 3" wait_nodes 1 2 30
host_kill 2
check "host 1 alone loses quorum" cs_wait_unquorate 1 30
sleep 1
if dogh 1 vdi write v 0 4096 <"$SD_TEST_DIR/a" 2>"$SD_TEST_DIR/err1"; then
	not_ok "host 1 alone refuses a write"
else
	ok "host 1 alone refuses a write"
fi
check "host 1's refusal says not enough nodes are alive" grep -qiE "not enough|quorum" "$SD_TEST_DIR/err1"
check "host 1 logged the quorum loss" grep -q "lost quorum" "$(sd_dir 1)/sheep.log"
if grep -qE "left, 1 members" "$(sd_dir 1)/sheep.log"; then
	not_ok "host 1 never applied a one-node membership"
	grep -E "left, 1 members|lost quorum" "$(sd_dir 1)/sheep.log" | sed 's/^/# /'
else
	ok "host 1 never applied a one-node membership"
fi

sd_done
