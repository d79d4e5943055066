#!/usr/bin/env bash
# 111-recovery-zones.sh - recovery counts zones: it never puts two current fragments of one object in one zone while a free zone exists, and reaches the best redundancy the live zones allow (issue 14, item 5).
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

# Eight sheep in seven zones: sheep 6 and 7 share zone 6.
zone() { if [ "$1" -ge 6 ]; then echo 6; else echo "$1"; fi; }
for i in 0 1 2 3 4 5 6 7; do sd_start "$i" -z "$(zone "$i")" || bail "sheep $i"; done
sd_wait_nodes 0 8 || bail "eight sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
rec_mkvdi 0 v 4:2 $((32 * MiB)) $((32 * MiB)) || bail "4:2 VDI with data"
dogn 0 vdi create -c 4:2 w $((256 * MiB)) || bail "4:2 VDI w"
truncate -s $((256 * MiB)) "$SD_TEST_DIR/w.ref"
for ((k = 0; k < 64; k++)); do
	sd_random "$SD_TEST_DIR/wk" 4096
	dogn 0 vdi write w $((k * 4 * MiB)) 4096 <"$SD_TEST_DIR/wk" || bail "write w object $k"
	dd if="$SD_TEST_DIR/wk" of="$SD_TEST_DIR/w.ref" bs=4096 seek=$((k * 1024)) conv=notrunc \
		status=none
done
rec_wait_done 0 8 1 60 || bail "initial recovery state never settled"

# zcensus IDX...: census of these sheep with their zones.
zcensus() {
	local args=() i
	for i in "$@"; do args+=(--zone "$(sd_port "$i")=$(zone "$i")"); done
	for i in "$@"; do args+=("$(sd_port "$i")"); done
	python3 "$REC_CENSUS" "${args[@]}"
}
zsum() { grep '^summary' <<<"$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

out=$(zcensus 0 1 2 3 4 5 6 7)
log "$(grep '^summary' <<<"$out")"
check_eq "seven zones: every object in six zones" "6..6" "$(zsum zones "$out")"
check_eq "seven zones: no zone holds two fragments of an object" 0 "$(zsum doubled "$out")"

# Sheep 1 (zone 1) and sheep 6 (zone 6) die: six zones are left (zone 6
# through sheep 7), as many as fragments. Every hole has a free zone.
sd_kill 1
sd_kill 6
sd_wait_nodes 0 6 || bail "membership did not drop to six"
check "recovery done with six zones" rec_wait_done 0 6 2 180
out=$(zcensus 0 2 3 4 5 7)
log "$(grep '^summary' <<<"$out")"
check_eq "six zones: every object back in six zones" "6..6" "$(zsum zones "$out")"
check_eq "six zones: no zone holds two fragments of an object" 0 "$(zsum doubled "$out")"
check_eq "six zones: every object at full redundancy" 0 "$(zsum short "$out")"

# Sheep 2 dies: five zones for six fragments. Best possible is five zones
# per object, one fragment each; a sixth fragment in a used zone would add
# nothing against a zone failure.
sd_kill 2
sd_wait_nodes 0 5 || bail "membership did not drop to five"
check "recovery done with five zones" rec_wait_done 0 5 3 180
out=$(zcensus 0 3 4 5 7)
log "$(grep '^summary' <<<"$out")"
check_eq "five zones: every object in five zones (best possible)" "5..5" "$(zsum zones "$out")"
check_eq "five zones: no zone holds two fragments of an object" 0 "$(zsum doubled "$out")"
check "five zones: recovery says why redundancy is short" \
	grep -q "only 5 zone(s) for objects of up to 6" "$(sd_dir 0)/sheep.log"

# Five zones = d+1: writes are still acknowledged, and read back.
sd_random "$SD_TEST_DIR/p" 65536
check "five zones: a write is acknowledged" dogn 0 vdi write v $((5 * MiB)) 65536 <"$SD_TEST_DIR/p"
dd if="$SD_TEST_DIR/p" of="$SD_TEST_DIR/v.ref" bs=65536 seek=80 conv=notrunc status=none
rec_check_read 3 v "five zones"
rec_check_read 7 w "five zones"
for i in 0 3 4 5 7; do check "sheep $i running" sd_alive "$i"; done
sd_done
