#!/usr/bin/env bash
# 116-recovery-lost.sh - dog node recovery names the objects recovery cannot rebuild (too few consistent fragments left): each lost object once, with its VDI and index, in the text and --json output; they are named no more once their holders return.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

# Six sheep, 4:2: each object has one fragment on every sheep. With three
# of them gone every data object keeps 3 of 6 fragments, fewer than the 4
# it needs: lost until they return.
N=6
sd_start_cluster $N || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
# Epoch 1's recovery done before the data is written: a plan that gathers
# while the objects are being written finds too few fragments of one and
# names it lost until its re-plan a second later (CI-equivalent of session
# 23: "nothing lost while every sheep is up" failed once that way).
rec_wait_done 0 $N 1 60 || bail "initial recovery state never settled"
rec_mkvdi 0 doomed 4:2 $((8 * MiB)) $((8 * MiB)) || bail "4:2 VDI with two objects of data"
vid=$(dogn 0 vdi list -r | awk '$1 == "=" && $2 == "doomed" { print $8 }')
[ -n "$vid" ] || bail "no VDI id for doomed in: $(dogn 0 vdi list -r)"
oid0=$(printf '%016x' $((0x$vid << 32)))
oid1=$(printf '%016x' $(((0x$vid << 32) | 1)))
log "VDI doomed is $vid: data objects $oid0 and $oid1"

dogn 0 node recovery >"$SD_TEST_DIR/before.out" 2>"$SD_TEST_DIR/before.err"
check_eq "nothing lost while every sheep is up" "" "$(grep 'lost object' "$SD_TEST_DIR/before.err")"

for i in 3 4 5; do sd_kill $i; done
sd_wait_nodes 0 3 30 || bail "the three sheep left did not see the others go"
# Recovery plans for the new epoch; the data objects are planned as lost.
for _ in $(seq 120); do
	dogn 0 node recovery >"$SD_TEST_DIR/lost.out" 2>"$SD_TEST_DIR/lost.err"
	grep -q "lost object $oid0" "$SD_TEST_DIR/lost.err" &&
		grep -q "lost object $oid1" "$SD_TEST_DIR/lost.err" && break
	sleep 0.5
done
sed 's/^/# /' "$SD_TEST_DIR/lost.err"
check "object 0 named lost, with its VDI and index" \
	grep -q "lost object $oid0 (VDI doomed, data object 0): too few consistent fragments to rebuild (node" \
	"$SD_TEST_DIR/lost.err"
check "object 1 named lost, with its VDI and index" \
	grep -q "lost object $oid1 (VDI doomed, data object 1): too few consistent fragments to rebuild (node" \
	"$SD_TEST_DIR/lost.err"
check_eq "each lost object named once" 0 \
	"$(grep 'lost object' "$SD_TEST_DIR/lost.err" | sort | uniq -d | wc -l)"
check "the names go to stderr: stdout keeps Sheepdog's table" \
	bash -c "! grep -q 'lost object' '$SD_TEST_DIR/lost.out'"
dogn 0 node recovery --json >"$SD_TEST_DIR/lost.json" 2>/dev/null
check_eq "--json: lost_oids of the nodes name both objects" "$oid0 $oid1" \
	"$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(sorted({o for n in d["nodes"] for o in n.get("lost_oids", []) if o in sys.argv[2:]})))' \
		"$SD_TEST_DIR/lost.json" "$oid0" "$oid1")"
check "--json: a node naming lost objects counts at least as many" python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert all(len(n["lost_oids"]) <= n["lost"] for n in d["nodes"]), d
assert any(n["lost_oids"] for n in d["nodes"]), d' "$SD_TEST_DIR/lost.json"

# The holders return: the objects are whole again and named no more.
for i in 3 4 5; do sd_start $i || bail "restart sheep $i"; done
sd_wait_nodes 0 $N 60 || bail "the cluster did not reform"
rec_wait_done 0 $N "$(rec_epoch 0)" 120 >/dev/null
dogn 0 node recovery >"$SD_TEST_DIR/after.out" 2>"$SD_TEST_DIR/after.err"
check_eq "nothing named lost once the holders are back" "" "$(grep 'lost object' "$SD_TEST_DIR/after.err")"
rec_check_read 1 doomed "after the holders returned"
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
