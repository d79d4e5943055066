#!/usr/bin/env bash
# 124-snap-crash.sh - four sheep, 2:1: the sheep doing a snapshot, clone, rollback or delete is killed (SIGKILL, test hook SHEEP_TEST_SNAP_CRASH) after the table change, after freezing the parent, after writing the new inode, after the first freed object; after its restart the cluster shows the old or the new state, never half (here always the new one: the table change is the commit point), every snapshot, clone and live VDI reads its data (sha256), and once everything is deleted no object or inode is left.
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

MiB=$((1 << 20))
VSIZE=$((16 * MiB))
data_objs() { find "$SD_TEST_DIR"/n*/obj -maxdepth 1 -type f -name '0*_*' -printf '%f\n' | cut -d_ -f1 | sort -u | wc -l; }
inodes() { find "$SD_TEST_DIR"/n*/obj -maxdepth 1 -type f -name '8*_*' -printf '%f\n' | cut -d_ -f1 | sort -u | wc -l; }
vsha() { dogn "${3:-0}" vdi read ${2:-} "$1" | sha256sum | cut -d' ' -f1; }
wpiece() { # VDI REF OFF LEN
	head -c "$4" /dev/urandom >"$SD_TEST_DIR/p"
	dogn 0 vdi write "$1" "$3" "$4" <"$SD_TEST_DIR/p" &&
		dd if="$SD_TEST_DIR/p" of="$2" bs=1M oflag=seek_bytes seek="$3" conv=notrunc status=none
}

# crash POINT dog-args...: run the command on sheep 3 armed to die at POINT,
# then bring sheep 3 back unarmed.
crash() {
	local point=$1; shift
	sd_kill 3
	SHEEP_TEST_SNAP_CRASH=$point sd_start 3 || return 1
	sd_wait_nodes 0 4 || return 1
	dogn 3 "$@" >/dev/null 2>&1
	local t=0
	while sd_alive 3 && [ $t -lt 100 ]; do sleep 0.1; t=$((t + 1)); done
	if sd_alive 3; then log "sheep 3 did not die at $point"; return 1; fi
	sd_kill 3
	grep -q "test hook: killed at $point" "$(sd_dir 3)/sheep.log" || { log "no crash at $point"; return 1; }
	: >"$(sd_dir 3)/sheep.log"
	sd_start 3 && sd_wait_nodes 0 4
}

sd_start_cluster 4 || bail "four sheep did not form a cluster"
dogn 0 cluster format -c 2:1 >/dev/null || bail "format"
dogn 0 vdi create v $VSIZE || bail "create"
ref=$SD_TEST_DIR/v.ref
truncate -s $VSIZE "$ref"
wpiece v "$ref" 0 $((9 * MiB)) || bail "write"

n=0
for point in committed frozen inode; do
	n=$((n + 1))
	check "snapshot: sheep killed at '$point', back" crash "$point" vdi snapshot v
	cp "$ref" "$ref.s$n"
	check_eq "snapshot/$point: the snapshot exists (new state)" "s v $n" "$(dogn 1 vdi list -r v | awk -v n=$n '$1 == "s" && $3 == n {print $1, $2, $3}')"
	check_eq "snapshot/$point: snapshot $n reads the data" "$(sd_sha "$ref.s$n")" "$(vsha v "-s $n" 2)"
	check_eq "snapshot/$point: the live VDI reads the data" "$(sd_sha "$ref")" "$(vsha v "" 3)"
	wpiece v "$ref" $((n * MiB + 17)) 100000 || bail "write after $point"
	check_eq "snapshot/$point: a write goes to the live VDI only" "$(sd_sha "$ref.s$n") $(sd_sha "$ref")" "$(vsha v "-s $n") $(vsha v)"
done

for point in committed inode; do
	check "clone: sheep killed at '$point', back" crash "$point" vdi clone -s 2 v "c-$point"
	check_eq "clone/$point: the clone reads snapshot 2" "$(sd_sha "$ref.s2")" "$(vsha "c-$point" "" 1)"
done

for point in committed frozen; do
	check "rollback: sheep killed at '$point', back" crash "$point" vdi rollback -s 1 v
	check_eq "rollback/$point: the live VDI reads snapshot 1" "$(sd_sha "$ref.s1")" "$(vsha v "" 2)"
	check_eq "rollback/$point: one working VDI v" 1 "$(dogn 0 vdi list -r v | grep -c '^= v ')"
done
cp "$ref.s1" "$ref"

check "delete of c-inode: sheep killed at 'committed', back" crash committed vdi delete c-inode
check_eq "delete/committed: the clone is gone" "" "$(dogn 0 vdi list -r c-inode)"
check "delete of snapshot 3: sheep killed at 'reclaim' (after one object), back" crash reclaim vdi delete -s 3 v
check_eq "delete/reclaim: snapshot 3 is gone" "" "$(dogn 0 vdi list -r v | awk '$1 == "s" && $3 == 3')"
check_eq "snapshot 2 still reads" "$(sd_sha "$ref.s2")" "$(vsha v "-s 2")"
check_eq "clone c-committed still reads" "$(sd_sha "$ref.s2")" "$(vsha c-committed)"
check_eq "the live VDI still reads" "$(sd_sha "$ref")" "$(vsha v)"

dogn 0 vdi delete c-committed && dogn 0 vdi delete v || bail "deletes"
for k in 1 2 3 4; do dogn 0 vdi delete -s $k v >/dev/null 2>&1; done
check_eq "every VDI deleted" "" "$(dogn 0 vdi list -r)"
check_eq "no data object and no inode left after the crashes" "0 0" "$(data_objs) $(inodes)"
sd_done
