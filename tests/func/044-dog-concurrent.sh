#!/usr/bin/env bash
# 044-dog-concurrent.sh - concurrent dog writers on different VDIs; overlapping writes to one object apply in order; concurrent writes to disjoint ranges of one EC object keep parity right.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

MiB=$((1 << 20))
VSIZE=$((64 * MiB))
seed=${SD_SEED:-$$}
RANDOM=$seed
log "random seed $seed"
rnd() { echo $(( (RANDOM << 15 | RANDOM) % $1 )); }

# writer VDI SEED: 12 random writes into VDI, mirrored into VDI.ref.
writer() {
	local vdi=$1 i off len
	RANDOM=$2
	for ((i = 0; i < 12; i++)); do
		len=$(( 1 + $(rnd $((4 * MiB))) )); off=$(rnd $((VSIZE - len + 1)))
		head -c "$len" /dev/urandom >"$SD_TEST_DIR/$vdi.piece"
		dogn 0 vdi write "$vdi" "$off" "$len" <"$SD_TEST_DIR/$vdi.piece" || return 1
		dd if="$SD_TEST_DIR/$vdi.piece" of="$SD_TEST_DIR/$vdi.ref" bs=1M oflag=seek_bytes \
			seek="$off" conv=notrunc status=none
	done
}

sd_start_cluster 6 || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"

# Four writers at once, each on its own VDI.
pids=()
for spec in "w1 4:2" "w2 2:1" "w3 3" "w4 4:2"; do
	read -r vdi pol <<<"$spec"
	dogn 0 vdi create -c "$pol" "$vdi" "$VSIZE" || bail "vdi create $vdi"
	truncate -s "$VSIZE" "$SD_TEST_DIR/$vdi.ref"
	writer "$vdi" $((seed + ${vdi#w})) &
	pids+=($!)
done
i=0
for pid in "${pids[@]}"; do
	i=$((i + 1))
	check "concurrent writer w$i finished without error" wait "$pid"
done
for v in w1 w2 w3 w4; do
	check_eq "concurrent writers: $v reads back" "$(sd_sha "$SD_TEST_DIR/$v.ref")" \
		"$(dogn 0 vdi read "$v" | sd_sha /dev/stdin)"
done

# Overlapping writes to one object, one after another: same as applying
# them in order.
dogn 0 vdi create -c 4:2 ov 16M || bail "vdi create ov"
truncate -s $((16 * MiB)) "$SD_TEST_DIR/ov.ref"
for ((i = 0; i < 24; i++)); do
	len=$(( 1 + $(rnd $((MiB + MiB / 2))) )); off=$(( MiB + $(rnd $((4 * MiB - len))) ))
	head -c "$len" /dev/urandom >"$SD_TEST_DIR/piece"
	dogn 0 vdi write ov "$off" "$len" <"$SD_TEST_DIR/piece" || not_ok "overlapping write $i"
	dd if="$SD_TEST_DIR/piece" of="$SD_TEST_DIR/ov.ref" bs=1M oflag=seek_bytes seek="$off" conv=notrunc status=none
done
check_eq "24 overlapping writes to one object read back as applied in order" \
	"$(sd_sha "$SD_TEST_DIR/ov.ref")" "$(dogn 0 vdi read ov | sd_sha /dev/stdin)"

# Eight dogs write disjoint 512 KiB slices of one allocated 4:2 object at
# once, through one gateway (DESIGN.md: a VDI has one writer, and its
# gateway serialises writes per object): each slice updates one data
# fragment and every parity fragment.
dogn 0 vdi create -c 4:2 par 8M || bail "vdi create par"
head -c $((8 * MiB)) /dev/urandom >"$SD_TEST_DIR/par.ref"
dogn 0 vdi write par <"$SD_TEST_DIR/par.ref" || bail "fill par"
pids=()
for ((i = 0; i < 8; i++)); do
	head -c $((MiB / 2)) /dev/urandom >"$SD_TEST_DIR/slice$i"
	dd if="$SD_TEST_DIR/slice$i" of="$SD_TEST_DIR/par.ref" bs=1M oflag=seek_bytes \
		seek=$((i * MiB / 2 + 100)) conv=notrunc status=none
	dogn 0 vdi write par $((i * MiB / 2 + 100)) $((MiB / 2)) <"$SD_TEST_DIR/slice$i" &
	pids+=($!)
done
fails=0
for pid in "${pids[@]}"; do wait "$pid" || fails=$((fails + 1)); done
check_eq "eight concurrent slice writers succeeded" 0 "$fails"
check_eq "concurrent slices of one object read back" "$(sd_sha "$SD_TEST_DIR/par.ref")" \
	"$(dogn 0 vdi read par | sd_sha /dev/stdin)"
# Lose two nodes: reads now decode from parity, which must match the data.
sd_kill 4
sd_kill 5
sd_wait_nodes 0 4 || log "sheep 0 still lists a killed node"
check_eq "with 2 nodes down (decode from parity) the slices read back" \
	"$(sd_sha "$SD_TEST_DIR/par.ref")" "$(dogn 0 vdi read par | sd_sha /dev/stdin)"
check_eq "with 2 nodes down, w1 (4:2) reads back" "$(sd_sha "$SD_TEST_DIR/w1.ref")" \
	"$(dogn 0 vdi read w1 | sd_sha /dev/stdin)"
sd_done
