#!/usr/bin/env bash
# 090-zookeeper-adjacent-failures.sh - a real ZooKeeper, session timeout 20 s: two sheep next to each other in the member order (a host's two sheep) are killed together; the neighbour watch drops both within 3 s, not only the first (the second one's watcher died with it), and the data reads back (sha256); then a killed sheep whose watcher's confirming connect gets no answer (its SYNs dropped by nft for 3.5 s) is dropped once a later connect is refused, not at session expiry.
# timeout: 600
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/zookeeper.sh"

zk_test_begin "$0" "$@"
zk_write_conf 1
zk_start 0
zk_wait 0 || bail "private ZooKeeper did not start"

MiB=$((1 << 20))
TMO=20000
LIMIT_MS=3000
SPEC="zookeeper:$(zk_hosts),timeout=$TMO,path=/sd090"

zk_six_sheep_with_data "$SPEC"

# Sheep 3 and 4 die together: sheep 2 watches 3 and sees it go; 4's
# watcher was 3.
kill -9 "${SD_PIDS[3]}" "${SD_PIDS[4]}"
sd_kill 3
sd_kill 4
ms=$(all_see 4 0 1 2 5)
log "every survivor saw 4 nodes $ms ms after kill -9 of sheep 3 and 4"
check "every survivor drops both killed sheep within $LIMIT_MS ms (session timeout $TMO ms): $ms ms" \
	test "$ms" -ge 0 -a "$ms" -le $LIMIT_MS
for i in 3 4; do
	check "a watcher logged that sheep $i's port refuses" \
		grep -q "127.0.0.1:$(sd_port $i) (member [0-9]*) closed its connection and its port refuses\|127.0.0.1:$(sd_port $i) (member [0-9]*) .*port refuses" \
		"$(sd_dir 0)/sheep.log" "$(sd_dir 1)/sheep.log" "$(sd_dir 2)/sheep.log" "$(sd_dir 5)/sheep.log"
done
dogn 5 vdi read ff $((MiB + 5)) $((8 * MiB + 333)) >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "the data reads back with sheep 3 and 4 gone" "$(sd_sha "$SD_TEST_DIR/data")" "$(sd_sha "$SD_TEST_DIR/got")"

# Sheep 1 dies while its port answers nothing (every SYN to it dropped, as
# when a dying process's listener loses a SYN, or a network cut): sheep 0,
# its watcher, sees the connection drop, its confirming connect times out
# (proves nothing) and it retries each second. Once the SYNs pass, the port
# refuses; sheep 0 was connected to it before, so that proves it gone. (It
# stayed a member until its session expired: 20 s.)
if ! command -v nft >/dev/null; then
	not_ok "nft is installed (scripts/install-deps)"
else
	nft add table ip sd090 &&
		nft add chain ip sd090 out '{ type filter hook output priority 0; }' &&
		nft add rule ip sd090 out tcp dport "$(sd_port 1)" 'tcp flags & syn == syn' drop
	check "a rule drops every SYN to sheep 1's port" \
		sh -c "nft list table ip sd090 | grep -q 'dport $(sd_port 1)'"
	t0=$(date +%s%N)
	sd_kill 1
	sleep 3.5
	nft delete table ip sd090
	ms=$(all_see 3 0 2 5)
	[ "$ms" -ge 0 ] && ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	log "every survivor saw 3 nodes $ms ms after kill -9 of sheep 1 (its SYNs dropped for 3500 ms)"
	check "every survivor drops sheep 1 within $((LIMIT_MS + 3500)) ms of its kill, its port silent for 3500 ms of them (session timeout $TMO ms): $ms ms" \
		test "$ms" -ge 0 -a "$ms" -le $((LIMIT_MS + 3500))
	check "sheep 0 logged that sheep 1's port refuses" \
		grep -q "127.0.0.1:$(sd_port 1) (member [0-9]*) closed its connection and its port refuses" \
		"$(sd_dir 0)/sheep.log"
	check "sheep 0 logged the connect that got no answer" \
		grep -q "zookeeper: watching member [0-9]*: no answer; trying again in 1000 ms (a refusal will prove it gone)" \
		"$(sd_dir 0)/sheep.log"
	# (three of six 4:2 fragments are gone: the data cannot be read now)
	for i in 2 5; do
		check_eq "sheep $i is at sheep 0's epoch" "$(cluster_epoch 0)" "$(cluster_epoch "$i")"
	done
fi
sd_done
