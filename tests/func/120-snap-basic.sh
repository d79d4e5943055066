#!/usr/bin/env bash
# 120-snap-basic.sh - six sheep: snapshot, write, the snapshot unchanged and the live VDI new (4:2 and 3 copies, sha256); a chain of snapshots each with its own content; read -s by id and tag; list s/c rows with Used/Shared; clone reads the parent and its writes never show in it; clone -c another policy; rollback; tree; snapshot and clone copy no data object.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

MiB=$((1 << 20))
VSIZE=$((64 * MiB))

# fragment files of data objects in every store (inodes and journals excluded)
data_frags() { find "$SD_TEST_DIR"/n*/obj -maxdepth 1 -type f -name '0*_*' | wc -l; }
# piece FILE OFF LEN: write LEN random bytes at OFF of VDI $vdi and of FILE
piece() {
	head -c "$3" /dev/urandom >"$SD_TEST_DIR/p"
	dogn 0 vdi write "$vdi" "$2" "$3" <"$SD_TEST_DIR/p" || return 1
	dd if="$SD_TEST_DIR/p" of="$1" bs=1M oflag=seek_bytes seek="$2" conv=notrunc status=none
}
vsha() { dogn "${3:-0}" vdi read ${2:-} "$1" 0 "$VSIZE" | sha256sum | cut -d' ' -f1; }
row() { dogn 0 vdi list -r | awk -v t="$1" -v n="$2" -v id="$3" '$1 == t && $2 == n && $3 == id'; }

sd_start_cluster 6 || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 >/dev/null || bail "format"

for spec in "e42 4:2" "r3 3"; do
	read -r vdi pol <<<"$spec"
	ref="$SD_TEST_DIR/$vdi.ref"
	truncate -s "$VSIZE" "$ref"
	dogn 0 vdi create -c "$pol" "$vdi" "$VSIZE" || bail "create $vdi"
	piece "$ref" 0 $((12 * MiB)) && piece "$ref" $((30 * MiB)) 12345 || bail "$vdi: first writes"
	before=$(data_frags)
	check "$vdi: snapshot -s v1" dogn 0 vdi snapshot -s v1 "$vdi"
	check_eq "$vdi: the snapshot created no data object" "$before" "$(data_frags)"
	cp "$ref" "$ref.s1"
	# a write inside an object of the snapshot (copy-on-write), one beside
	# it, one in a fresh object
	piece "$ref" $((4 * MiB + 4096)) 4096 && piece "$ref" $((11 * MiB)) $((2 * MiB)) &&
		piece "$ref" $((50 * MiB)) 777 || bail "$vdi: writes after the snapshot"
	check_eq "$vdi: snapshot 1 reads what was written before it" "$(sd_sha "$ref.s1")" "$(vsha "$vdi" "-s 1" 3)"
	check_eq "$vdi: snapshot by tag v1 reads the same" "$(sd_sha "$ref.s1")" "$(vsha "$vdi" "-s v1")"
	check_eq "$vdi: the live VDI reads the new data" "$(sd_sha "$ref")" "$(vsha "$vdi" "" 5)"
	srow=$(row s "$vdi" 1)
	lrow=$(row = "$vdi" 0)
	check_eq "$vdi: list shows the snapshot as an s row with tag v1" "v1" "$(echo "$srow" | awk '{print $10}')"
	check_eq "$vdi: snapshot Used = 4 objects (0, 1, 2, 7), Shared 0" "$((4 * 4 * MiB)) 0" "$(echo "$srow" | awk '{print $5, $6}')"
	check_eq "$vdi: live Used = 4 objects (1, 2, 3, 12), Shared = 2 (0, 7)" "$((4 * 4 * MiB)) $((2 * 4 * MiB))" "$(echo "$lrow" | awk '{print $5, $6}')"
done

vdi=e42
ref="$SD_TEST_DIR/$vdi.ref"
# A chain: snapshots 2..6, each after its own write
for k in 2 3 4 5 6; do
	piece "$ref" $((k * 5 * MiB + k)) $((k * 100000)) || bail "chain write $k"
	dogn 0 vdi snapshot "$vdi" || bail "chain snapshot $k"
	cp "$ref" "$ref.s$k"
done
bad=0
for k in 1 2 3 4 5 6; do
	[ "$(vsha "$vdi" "-s $k" $((k % 6)))" = "$(sd_sha "$ref.s$k")" ] || { log "snapshot $k differs"; bad=1; }
done
check "chain of 6 snapshots: each reads its own content" test $bad = 0
check_eq "chain: the live VDI is the last content" "$(sd_sha "$ref")" "$(vsha "$vdi")"

# Clone snapshot 3, with another policy for its own objects
before=$(data_frags)
check "clone -s 3 e42 c3 -c 2:1" dogn 0 vdi clone -s 3 -c 2:1 "$vdi" c3
check_eq "the clone created no data object" "$before" "$(data_frags)"
check_eq "the clone reads snapshot 3" "$(sd_sha "$ref.s3")" "$(vsha c3 "" 2)"
cp "$ref.s3" "$ref.c3"
vdi=c3 piece "$ref.c3" $((10 * MiB + 99)) 50000 || bail "clone write"
vdi=c3 piece "$ref.c3" $((60 * MiB)) 4096 || bail "clone write 2"
check_eq "the clone reads its writes" "$(sd_sha "$ref.c3")" "$(vsha c3)"
check_eq "snapshot 3 is unchanged by the clone's writes" "$(sd_sha "$ref.s3")" "$(vsha e42 "-s 3")"
check_eq "the live e42 is unchanged by the clone's writes" "$(sd_sha "$ref")" "$(vsha e42)"
check_eq "list: c3 is a c row with policy 2:1" "c 2:1" "$(dogn 0 vdi list -r c3 | awk '{print $1, $9}')"

# Rollback to v1 (tag) of r3
check "rollback -s v1 r3" dogn 0 vdi rollback -s v1 r3
check_eq "r3 reads snapshot v1 after the rollback" "$(sd_sha "$SD_TEST_DIR/r3.ref.s1")" "$(vsha r3)"
vdi=r3 piece "$SD_TEST_DIR/r3.ref.s1" 100 100 || bail "write after rollback"
cp "$SD_TEST_DIR/r3.ref.s1" "$SD_TEST_DIR/r3.after"
check_eq "a write after the rollback lands in r3 only" "$(sd_sha "$SD_TEST_DIR/r3.after")" "$(vsha r3)"
check "snapshot v1 of r3 is still the old content" test "$(vsha r3 "-s v1")" != "$(vsha r3)"

# tree
tree=$(dogn 0 vdi tree)
echo "$tree" | sed 's/^/# /'
check "tree: e42's chain of 6 snapshots ends at (you are here)" bash -c "echo '$tree' | grep -E '^e42 \\[1 .* v1\\]---\\[2 .*---\\[3 [^]]*\\]-\\+-'"
check "tree: clone c3 hangs from snapshot 3" bash -c "echo '$tree' | grep -q '\`-c3 (you are here)\\|-c3 (you are here)'"
check "tree: r3 has its snapshot and the rolled-back working VDI" bash -c "echo '$tree' | grep -q '^r3 \\[1 .* v1\\]---(you are here)'"
sd_done
