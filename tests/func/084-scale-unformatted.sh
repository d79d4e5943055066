#!/usr/bin/env bash
# 084-scale-unformatted.sh - before the format the view holds no ring (no rebuild per join): node list shows the vnodes the format's ring then gives, and data written after the format reads back.
# timeout: 180
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
jq_py() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
vnodes_of() { jq_py "$1" "' '.join(str(n['vnodes']) for n in sorted(d['nodes'], key=lambda n: n['port']))"; }

# Six sheep of unequal sizes (vnodes are derived from them), one gateway.
sizes=(1G 1G 2G 2G 4G 4G)
for i in 0 1 2 3 4 5; do sd_start "$i" -s "${sizes[$i]}" || bail "sheep $i"; done
sd_start 6 -g || bail "gateway sheep 6"
sd_wait_nodes 0 7 || bail "seven sheep"
for i in 0 6; do
	check "sheep $i: views before the format are built without a ring" \
		grep -q "placement: view of 7 members at epoch 0 (not formatted)" "$(sd_dir "$i")/sheep.log"
done
dogn 0 node list --json >"$SD_TEST_DIR/before.json" || bail "node list before the format"
before=$(vnodes_of "$SD_TEST_DIR/before.json")
log "vnodes before the format: $before"
read -r v0 v1 v2 v3 v4 v5 v6 <<<"$before"
check "vnodes before the format follow the sizes ($before)" \
	test "$v0" = "$v1" -a "$v2" -gt "$v1" -a "$v4" -gt "$v3" -a "$v6" = 0

dogn 0 cluster format -c 4:2 || bail "format 4:2"
check "sheep 3: the format's view has a ring" \
	grep -q "placement: view of epoch 1, ring 1:" "$(sd_dir 3)/sheep.log"
dogn 0 node list --json >"$SD_TEST_DIR/after.json" || bail "node list after the format"
check_eq "vnodes after the format = those shown before it" "$before" "$(vnodes_of "$SD_TEST_DIR/after.json")"

# Data goes through the format's ring: 12 MiB written via the gateway,
# read back through a data sheep.
sd_random "$SD_TEST_DIR/d" $((12 << 20))
dogn 6 vdi create v 64M || bail "vdi create"
check "vdi write 12 MiB through the gateway" dogn 6 vdi write v <"$SD_TEST_DIR/d"
dogn 2 vdi read v 0 $((12 << 20)) >"$SD_TEST_DIR/r"
check_eq "read back through sheep 2: same sha256" "$(sd_sha "$SD_TEST_DIR/d")" "$(sd_sha "$SD_TEST_DIR/r")"
sd_done
