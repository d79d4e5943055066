#!/usr/bin/env bash
# 043-dog-kill.sh - six sheep: kill -9 up to p nodes and every byte reads back through dog; p+1 down: reads fail clearly, never wrong data; restart: data back.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

MiB=$((1 << 20))
VSIZE=$((64 * MiB))

# read_vdi VDI [DOG-NODE]: read the whole VDI into $SD_TEST_DIR/got; sets rc.
read_vdi() {
	dogn "${2:-0}" vdi read "$1" >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
	rc=$?
}
# must_read VDI WHAT: the whole VDI reads back equal to its reference.
must_read() {
	read_vdi "$1"
	if [ $rc = 0 ] && cmp -s "$SD_TEST_DIR/got" "$SD_TEST_DIR/$1.ref"; then
		ok "$2: $1 reads back every byte"
	else
		not_ok "$2: $1 reads back every byte (exit $rc: $(head -c 300 "$SD_TEST_DIR/err"))"
	fi
}
# never_wrong VDI WHAT: either every byte correct, or a failure with a message
# whose output is a correct prefix.
never_wrong() {
	read_vdi "$1"
	local n
	n=$(stat -c %s "$SD_TEST_DIR/got")
	if [ $rc = 0 ]; then
		check "$2: $1 read succeeded with correct data" cmp -s "$SD_TEST_DIR/got" "$SD_TEST_DIR/$1.ref"
	else
		log "$2: $1 read failed (exit $rc) after $n bytes: $(head -c 300 "$SD_TEST_DIR/err")"
		check "$2: $1 failed read says why" test -s "$SD_TEST_DIR/err"
		check "$2: $1 failed read gave only correct bytes" cmp -s -n "$n" "$SD_TEST_DIR/got" "$SD_TEST_DIR/$1.ref"
	fi
}

sd_start_cluster 6 || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"

for spec in "e42 4:2" "e21 2:1" "r3 3"; do
	read -r vdi pol <<<"$spec"
	dogn 0 vdi create -c "$pol" "$vdi" "$VSIZE" || bail "vdi create $vdi"
	truncate -s "$VSIZE" "$SD_TEST_DIR/$vdi.ref"
	head -c $((24 * MiB)) /dev/urandom >"$SD_TEST_DIR/p1"
	head -c $((5 * MiB + 12345)) /dev/urandom >"$SD_TEST_DIR/p2"
	dogn 0 vdi write "$vdi" 0 $((24 * MiB)) <"$SD_TEST_DIR/p1" || bail "write $vdi"
	dogn 0 vdi write "$vdi" $((37 * MiB + 999)) $((5 * MiB + 12345)) <"$SD_TEST_DIR/p2" || bail "write $vdi"
	dd if="$SD_TEST_DIR/p1" of="$SD_TEST_DIR/$vdi.ref" conv=notrunc status=none
	dd if="$SD_TEST_DIR/p2" of="$SD_TEST_DIR/$vdi.ref" bs=1M oflag=seek_bytes seek=$((37 * MiB + 999)) conv=notrunc status=none
	must_read "$vdi" "all up"
done

# One node down: every policy here tolerates it.
sd_kill 5
sd_wait_nodes 0 5 || log "sheep 0 still lists the killed node"
for v in e42 e21 r3; do must_read "$v" "1 down"; done

# A write with one node down is acknowledged (d+1 fragments / 2 copies
# reachable) and reads back, now and after the node returns.
head -c $((3 * MiB + 77)) /dev/urandom >"$SD_TEST_DIR/p3"
check "1 down: vdi write to e42 is acknowledged" \
	dogn 0 vdi write e42 $((10 * MiB + 5)) $((3 * MiB + 77)) <"$SD_TEST_DIR/p3"
dd if="$SD_TEST_DIR/p3" of="$SD_TEST_DIR/e42.ref" bs=1M oflag=seek_bytes seek=$((10 * MiB + 5)) conv=notrunc status=none
must_read e42 "1 down, after a degraded write"

# Two down: p for 4:2, N-1 for 3 copies. 2:1 is past its p.
sd_kill 4
sd_wait_nodes 0 4 || log "sheep 0 still lists a killed node"
must_read e42 "2 down (p of 4:2)"
must_read r3 "2 down (N-1 of 3 copies)"
never_wrong e21 "2 down (p+1 of 2:1)"

# Three down: p+1 for 4:2, and with six nodes every 4:2 object lost three
# fragments: the read must fail, clearly, with no wrong byte.
sd_kill 3
sd_wait_nodes 0 3 || log "sheep 0 still lists a killed node"
read_vdi e42
check "3 down (p+1 of 4:2): e42 read fails" test "$rc" -ne 0
check "3 down: the failure says why" test -s "$SD_TEST_DIR/err"
log "3 down: dog said: $(head -c 300 "$SD_TEST_DIR/err")"
n=$(stat -c %s "$SD_TEST_DIR/got")
check "3 down: no wrong byte before the failure ($n bytes out)" cmp -s -n "$n" "$SD_TEST_DIR/got" "$SD_TEST_DIR/e42.ref"
never_wrong r3 "3 down"

# Restart them: the data is back.
for i in 3 4 5; do sd_start "$i" || not_ok "restart sheep $i"; done
sd_wait_nodes 0 6 || not_ok "six nodes after the restart"
sleep 1
for v in e42 e21 r3; do must_read "$v" "after restart"; done
for v in e42 e21 r3; do
	check_eq "after restart: $v reads the same through sheep 4" "$(sd_sha "$SD_TEST_DIR/$v.ref")" \
		"$(dogn 4 vdi read "$v" | sd_sha /dev/stdin)"
done
sd_done
