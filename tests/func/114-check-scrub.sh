#!/usr/bin/env bash
# 114-check-scrub.sh - the background scrub finds a byte flipped on disk in a replica no client reads, by itself within a bounded time, has it rebuilt, and counts it in dog node stat and /metrics (sheep_checksum_errors_total{state="found"|"repaired"}); dog cluster scrub stops, restarts and re-rates it on every node.
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"
PLANT="$SD_TOP/tests/func/chk_plant.py"

# Every sheep serves /metrics (port hp_of I); node 1's is read first.
hp_of() { echo $((SD_PORT_BASE + 83 + $1)); }
hp=$(hp_of 1)
for i in 0 1 2 3; do
	sd_start $i --scrub rate=32M,pause=2 --http "$(hp_of $i)" || bail "sheep $i"
done
sd_wait_nodes 0 4 || bail "four sheep did not form a cluster"
dogn 0 cluster format -c 3 || bail "cluster format"
rec_mkvdi 0 r3 3 $((16 * MiB)) $((12 * MiB)) || bail "3-copy VDI with data"
rec_wait_done 0 4 1 60 || bail "recovery never settled"
metric() { curl -sf "http://127.0.0.1:$hp/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
# stat IDX FIELD: FIELD of node IDX in dog node stat --json.
stat() {
	dogn 0 node stat --json | python3 -c '
import json, sys
for n in json.load(sys.stdin)["nodes"]:
    if n["id"] == int(sys.argv[1]): print(n[sys.argv[2]])' "$1" "$2"
}

check_eq "node stat: the scrub runs on node 1" 1 "$(stat 1 scrub_enabled)"
check_eq "node stat: at the rate sheep was given (32M)" $((32 * MiB)) "$(stat 1 scrub_rate)"
check_eq "node stat -r: scrub and checksum columns" \
	"scrub_enabled scrub_rate scrub_passes scrub_done scrub_total scrub_scanned scrub_bytes csum_found csum_repaired" \
	"$(dogn 0 node stat -r | head -1 | cut -d' ' -f17-)"
check_eq "/metrics: nothing found yet" 0 "$(metric 'sheep_checksum_errors_total{state="found"}')"

# A copy of an r3 data object, whole in its file, on node 1 or else the
# first node that has one (placement follows the ports): flip one byte.
vid=$(dogn 0 vdi list -r | awk '$2 == "r3" { print $8 }')
n= f=
for i in 1 0 2 3; do
	f=$(ls "$(sd_dir $i)/obj/" | grep -E "^00${vid}000000" | head -1)
	[ -n "$f" ] && { n=$i; break; }
done
[ -n "$n" ] || bail "no node holds an r3 data object (r3 is $vid)"
log "planting in $f on node $n"
hp=$(hp_of $n)
python3 "$PLANT" "$(sd_dir $n)/obj/$f" 2000000 >/dev/null || bail "plant"
t0=$(date +%s)
found=0
for ((t = 0; t < 120; t++)); do
	[ "$(stat $n csum_found)" -ge 1 ] && [ "$(stat $n csum_repaired)" -ge 1 ] && { found=1; break; }
	sleep 0.5
done
log "found and repaired after $(( $(date +%s) - t0 )) s; passes $(stat $n scrub_passes), scanned $(stat $n scrub_scanned)"
check "the scrub found the flipped byte and it was repaired within 60 s" test $found = 1
check "the sheep log names it" grep -q "scrub: ${f%_*} fragment .* fails its checksum" "$(sd_dir $n)/sheep.log"
check "/metrics: state=found counts it" test "$(metric 'sheep_checksum_errors_total{state="found"}')" -ge 1
check "/metrics: state=repaired counts it" test "$(metric 'sheep_checksum_errors_total{state="repaired"}')" -ge 1
check "/metrics: the scrub has verified fragments" test "$(metric sheep_scrub_fragments_total)" -ge 1
cen=$(rec_census --verify 0 1 2 3)
check_eq "census: every copy's checksums verify" 0 "$(rec_summary bad "$cen")"
check_eq "census: every object at full redundancy" 0 "$(rec_summary short "$cen")"
dogn 3 vdi read r3 >"$SD_TEST_DIR/got"
check_eq "r3 reads back its sha256" "$(sd_sha "$SD_TEST_DIR/r3.ref")" "$(sd_sha "$SD_TEST_DIR/got")"
others=""
for i in 0 1 2 3; do [ $i = "$n" ] || others="$others $(stat $i csum_found)"; done
check_eq "the other nodes found nothing" " 0 0 0" "$others"

# dog cluster scrub: stop, status, start at a new rate.
dogn 0 cluster scrub stop >/dev/null || not_ok "cluster scrub stop"
check_eq "stopped on every node" "0 0 0 0" "$(stat 0 scrub_enabled) $(stat 1 scrub_enabled) $(stat 2 scrub_enabled) $(stat 3 scrub_enabled)"
s1=$(stat 2 scrub_scanned); sleep 3; s2=$(stat 2 scrub_scanned)
check_eq "a stopped scrub reads nothing" "$s1" "$s2"
out=$(dogn 0 cluster scrub status)
check_eq "status: one row per node, each off" 4 "$(grep -c ' off ' <<<"$out")"
dogn 0 cluster scrub start 8M >/dev/null || not_ok "cluster scrub start 8M"
check_eq "restarted on every node at 8M" "1 $((8 * MiB)) $((8 * MiB))" "$(stat 3 scrub_enabled) $(stat 0 scrub_rate) $(stat 3 scrub_rate)"
out=$(dogn 0 cluster scrub status -r)
check_eq "status -r: four rows, each on at 8M" 4 "$(awk -v r=$((8 * MiB)) '$3 == 1 && $4 == r' <<<"$out" | wc -l)"
p1=$(stat 2 scrub_passes)
for ((t = 0; t < 60; t++)); do [ "$(stat 2 scrub_passes)" -gt "$p1" ] && break; sleep 0.5; done
check "a restarted scrub completes a new pass" test "$(stat 2 scrub_passes)" -gt "$p1"
sd_done
