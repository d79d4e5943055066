#!/usr/bin/env bash
# 049-capacity.sh - sheep -s/--size: each sheep reports the capacity it was given, dog node info adds up to the sum, free space shrinks by what it stores, and placement follows the sizes; bad sizes refused.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
MiB=$((1 << 20))
GiB=$((1 << 30))
jq_py() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# Bad sizes stop startup with a message.
for bad in 0 -5 12Q 1K; do
	mkdir -p "$SD_TEST_DIR/bad"
	"$SHEEP" "$SD_TEST_DIR/bad" -f -p "$(sd_port 9)" -c "local:path=$SD_TEST_DIR/badlocal" -s "$bad" >"$SD_TEST_DIR/bad.out" 2>&1
	rc=$?
	check "sheep -s $bad: refused (exit $rc)" test $rc -ne 0
	check "sheep -s $bad: says the size is invalid" grep -q "invalid size" "$SD_TEST_DIR/bad.out"
done

# Five sheep on one filesystem, sized 1, 1, 1, 2 and 4 GiB (the last as a bare
# number of MiB, Sheepdog's unit, and via --size / --disk-space).
sd_start 0 -s 1G || bail "sheep 0"
sd_start 1 --size 1024M || bail "sheep 1"
sd_start 2 -s 1024 || bail "sheep 2"
sd_start 3 --disk-space 2G || bail "sheep 3"
sd_start 4 -s 4096 || bail "sheep 4"
sd_wait_nodes 0 5 || bail "five sheep"
dogn 0 cluster format -c 1 || bail "format"
declare -a want=($GiB $GiB $GiB $((2 * GiB)) $((4 * GiB)))
dogn 0 node list --json >"$SD_TEST_DIR/nl.json"
dogn 0 node info --json >"$SD_TEST_DIR/ni.json"
for i in 0 1 2 3 4; do
	id=$(jq_py "$SD_TEST_DIR/nl.json" "[n['id'] for n in d['nodes'] if n['port'] == $(sd_port $i)][0]")
	check_eq "sheep $i: node list space = its -s" "${want[$i]}" \
		"$(jq_py "$SD_TEST_DIR/nl.json" "d['nodes'][$id]['space']")"
	check_eq "sheep $i: node info size = its -s" "${want[$i]}" \
		"$(jq_py "$SD_TEST_DIR/ni.json" "d['nodes'][$id]['size']")"
done
check_eq "node info total = the sum of the sizes (9 GiB), not 5 disks" $((9 * GiB)) \
	"$(jq_py "$SD_TEST_DIR/ni.json" "d['total']['size']")"
check "node info table: Total 9.0 GB" grep -qP '^Total\t9.0 GB\t' <(dogn 0 node info)
# No -V: the ring derives vnodes from the sizes, and node list shows them.
vn=$(jq_py "$SD_TEST_DIR/nl.json" "' '.join(str(n['vnodes']) for n in sorted(d['nodes'], key=lambda n: n['port']))")
log "vnodes by sheep (1,1,1,2,4 GiB): $vn"
read -r v0 v1 v2 v3 v4 <<<"$vn"
check "vnodes follow the sizes ($vn)" test "$v0" = "$v1" -a "$v1" = "$v2" -a "$v3" -gt "$v0" -a "$v4" -gt "$v3"

# One copy per object: where objects land follows the sizes.
dogn 0 vdi create -c 1 v 1G || bail "vdi create"
head -c $((400 * MiB)) /dev/urandom >"$SD_TEST_DIR/data"
dogn 0 vdi write v <"$SD_TEST_DIR/data" || bail "write 400 MiB"
check "read back equals what was written" cmp -s "$SD_TEST_DIR/data" <(dogn 1 vdi read v 0 $((400 * MiB)))
dogn 0 node info --json >"$SD_TEST_DIR/ni2.json"
dogn 0 node list --json >"$SD_TEST_DIR/nl.json"
for i in 0 1 2 3 4; do
	id=$(jq_py "$SD_TEST_DIR/nl.json" "[n['id'] for n in d['nodes'] if n['port'] == $(sd_port $i)][0]")
	used[$i]=$(jq_py "$SD_TEST_DIR/ni2.json" "d['nodes'][$id]['used']")
	free=$(jq_py "$SD_TEST_DIR/ni2.json" "d['nodes'][$id]['avail']")
	check_eq "sheep $i: avail = size - used" "$((want[$i] - used[$i]))" "$free"
done
log "used per sheep (1,1,1,2,4 GiB): ${used[*]}"
small=$(( (used[0] + used[1] + used[2]) / 3 ))
check "the 4 GiB sheep holds more than twice a 1 GiB one's average (${used[4]} vs $small)" \
	test "${used[4]}" -gt $((2 * small))
check "the 2 GiB sheep holds more than a 1 GiB one's average (${used[3]} vs $small)" \
	test "${used[3]}" -gt "$small"
sd_done
