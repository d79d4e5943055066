#!/usr/bin/env bash
# 042-dog-ec-io.sh - six sheep, format 4:2: VDIs -c 3, 2:1, 4:2 (and 2:1 with 1 MiB objects) get 64 MiB of random writes (unaligned too) through dog; sha256 against a dd-built reference; disk bytes per policy; thin provisioning.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

MiB=$((1 << 20))
VSIZE=$((256 * MiB))
seed=${SD_SEED:-$$}
RANDOM=$seed
log "random seed $seed"

rnd() { echo $(( (RANDOM << 15 | RANDOM) % $1 )); } # 0 .. $1-1

# rand_writes VDI REF TOTAL: random pieces through dog, mirrored into REF with dd.
# A third of the pieces are whole, aligned 4 MiB objects; the rest are any
# length up to 3 MiB at any byte offset (overlaps included).
rand_writes() {
	local vdi=$1 ref=$2 total=$3 done=0 off len
	while [ $done -lt "$total" ]; do
		if [ $((RANDOM % 3)) = 0 ]; then
			len=$(( (1 + RANDOM % 2) * 4 * MiB ))
			off=$(( $(rnd $((VSIZE / (4 * MiB) - 1))) * 4 * MiB ))
		else
			len=$(( 1 + $(rnd $((3 * MiB))) ))
			off=$(rnd $((VSIZE - len + 1)))
		fi
		[ $((done + len)) -gt "$total" ] && len=$((total - done))
		head -c "$len" /dev/urandom >"$SD_TEST_DIR/piece"
		dogn 0 vdi write "$vdi" "$off" "$len" <"$SD_TEST_DIR/piece" || { log "write $vdi $off $len failed"; return 1; }
		dd if="$SD_TEST_DIR/piece" of="$ref" bs=1M oflag=seek_bytes seek="$off" conv=notrunc status=none
		done=$((done + len))
	done
}

# Bytes allocated on disk by every store (logs excluded).
# Bytes of object data on disk. The write-ahead log (DIR/wal.0, wal.1) is left
# out: it is a bounded ring of -j size=N per sheep, recycled at checkpoints,
# not a cost of the objects written.
store_bytes() { du -s -B1 --exclude='*.log' --exclude='*.out' --exclude='wal.[0-9]*' "$SD_TEST_DIR"/n* | awk '{s += $1} END {printf "%.0f\n", s}'; }

# within A B PCT: |A - B| <= PCT% of B
within() { local d=$(( $1 - $2 )); [ ${d#-} -le $(( $2 * $3 / 100 )) ]; }

sd_start_cluster 6 || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format -c 4:2 failed"

# z20: 1 MiB objects (-z 20), so pieces cross many object boundaries.
for spec in "r3 3" "e21 2:1" "e42 4:2" "z20 2:1 -z 20"; do
	read -r vdi pol extra <<<"$spec"
	ref="$SD_TEST_DIR/$vdi.ref"
	# shellcheck disable=SC2086
	check "vdi create -c $pol $extra $vdi" dogn 0 vdi create -c "$pol" $extra "$vdi" "$VSIZE"
	truncate -s "$VSIZE" "$ref"
	t0=$(date +%s.%N)
	check "$vdi: 64 MiB of random writes" rand_writes "$vdi" "$ref" $((64 * MiB))
	t1=$(date +%s.%N)
	log "$vdi: 64 MiB written in $(echo "$t1 - $t0" | bc) s"
	check_eq "$vdi (-c $pol): whole VDI reads back (sha256)" "$(sd_sha "$ref")" "$(dogn 0 vdi read "$vdi" | sd_sha /dev/stdin)"
	for k in 1 2 3 4 5; do
		len=$(( 1 + $(rnd $((9 * MiB))) )); off=$(rnd $((VSIZE - len + 1)))
		check_eq "$vdi: unaligned read $off+$len" \
			"$(dd if="$ref" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$len" status=none | sd_sha /dev/stdin)" \
			"$(dogn 3 vdi read "$vdi" "$off" "$len" | sd_sha /dev/stdin)"
	done
done

# Disk bytes: 48 MiB of whole objects cost (d+p)/d x for EC, N x for copies.
for spec in "c3 3 300" "c21 2:1 150" "c42 4:2 150"; do
	read -r vdi pol factor <<<"$spec"
	dogn 0 vdi create -c "$pol" "$vdi" 1G || { not_ok "vdi create $vdi"; continue; }
	before=$(store_bytes)
	head -c $((48 * MiB)) /dev/urandom | dogn 0 vdi write "$vdi" 0 $((48 * MiB))
	sync
	grew=$(( $(store_bytes) - before ))
	want=$(( 48 * MiB * factor / 100 ))
	log "-c $pol: 48 MiB written, stores grew by $((grew / MiB)) MiB (expected $((want / MiB)))"
	check "-c $pol: stores grow by $((factor))% of the bytes written (+-10%)" within "$grew" "$want" 10
done

# Thin provisioning: a big VDI costs nothing until written; a write costs
# only its own objects.
before=$(store_bytes)
check "vdi create thin 64G" dogn 0 vdi create -c 4:2 thin 64G
sync
grew=$(( $(store_bytes) - before ))
log "thin: creating a 64 GiB VDI took $grew bytes"
check "thin: creating a 64 GiB VDI takes under 1 MiB of disk" test "$grew" -lt "$MiB"
before=$(store_bytes)
head -c $((4 * MiB)) /dev/urandom >"$SD_TEST_DIR/obj"
check "thin: write one object at 40 GiB" dogn 0 vdi write thin $((40 << 30)) $((4 * MiB)) <"$SD_TEST_DIR/obj"
sync
grew=$(( $(store_bytes) - before ))
log "thin: one 4 MiB object at 40 GiB took $((grew / 1024)) KiB"
check "thin: one 4 MiB object costs about 6 MiB (4:2), nothing for the unwritten 40 GiB" within "$grew" $((6 * MiB)) 10
check_eq "thin: object at 40 GiB reads back" "$(sd_sha "$SD_TEST_DIR/obj")" \
	"$(dogn 0 vdi read thin $((40 << 30)) $((4 * MiB)) | sd_sha /dev/stdin)"
check_eq "thin: unwritten range reads as zeros" "$(head -c $((8 * MiB)) /dev/zero | sd_sha /dev/stdin)" \
	"$(dogn 0 vdi read thin $((20 << 30)) $((8 * MiB)) | sd_sha /dev/stdin)"
sd_done
