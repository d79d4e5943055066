#!/usr/bin/env bash
# 106-recovery-corrupt.sh - six sheep, 4:2: a byte of a fragment file is flipped on disk; reads still return correct data (decoded around the bad fragment) and the fragment is rebuilt, so every checksum verifies again; sheep 2's /metrics counts the mismatch and the repair.
# timeout: 180
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

# Sheep 2, where the corruption goes, serves /metrics.
hp=$((SD_PORT_BASE + 82))
for i in 0 1 2 3 4 5; do
	if [ $i = 2 ]; then sd_start $i --http $hp; else sd_start $i; fi || bail "sheep $i"
done
sd_wait_nodes 0 6 || bail "six sheep did not form a cluster"
metric() { curl -sf "http://127.0.0.1:$hp/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
rec_mkvdi 0 e42 4:2 $((32 * MiB)) $((32 * MiB)) || bail "4:2 VDI with data"
rec_wait_done 0 6 1 60 || bail "initial recovery state never settled"
# A setup problem (a fragment left behind by the writes) is reported as
# such, not later as a failed repair.
out=$(rec_census --verify 0 1 2 3 4 5)
grep '^short' <<<"$out" | sed 's/^/# /'
check_eq "before: every object at full redundancy" 0 "$(rec_summary short "$out")"

# A data fragment (index 00: object bytes 0..1 MiB) on node 2. The data
# area of a 1 MiB fragment starts at 8192 (store.c's format).
f=$(ls "$(sd_dir 2)"/obj/ | grep -E '^007c' | head -1)
[ -n "$f" ] || f=$(ls "$(sd_dir 2)"/obj/ | grep -vE '^(8|\.)' | head -1)
[ -n "$f" ] || bail "no data fragment on node 2"
log "corrupting $f on node 2"
path="$(sd_dir 2)/obj/$f"
b=$(od -An -tu1 -j 8292 -N1 "$path" | tr -d ' ')
printf "$(printf '\\%03o' $(((b + 1) % 256)))" | dd of="$path" bs=1 seek=8292 conv=notrunc status=none
rec_check_read 0 e42 "one fragment corrupt"
rec_census --verify 2 >/dev/null # reads every fragment of node 2 whole
check "node 2 detected the checksum mismatch" grep -q "checksum mismatch" "$(sd_dir 2)/sheep.log"
# The read reported the mismatch; the node rebuilds the fragment.
fixed=0
for ((t = 0; t < 60; t++)); do
	out=$(rec_census --verify 0 1 2 3 4 5)
	if [ "$(rec_summary bad "$out")" = 0 ] && [ "$(rec_summary short "$out")" = 0 ]; then fixed=1; break; fi
	sleep 0.5
done
log "$(grep summary <<<"$out")"
check "the corrupt fragment was rebuilt: every checksum verifies" test $fixed = 1
check "the sheep log names the repair" grep -q "repair" "$(sd_dir 2)/sheep.log"
check "/metrics: sheep_checksum_errors_total counts the mismatch ($(metric sheep_checksum_errors_total))" \
	test "$(metric sheep_checksum_errors_total)" -ge 1
check "/metrics: sheep_checksum_repairs_total counts the repair ($(metric sheep_checksum_repairs_total))" \
	test "$(metric sheep_checksum_repairs_total)" -ge 1
rec_check_read 4 e42 "after repair"
sd_done
