#!/usr/bin/env bash
# 132-recovery-short-not-lost.sh - a recovery plan that gathers while a write is in flight (a new object committed on one holder, its other fragments still prepared) finds the object short of consistent fragments; it is re-planned, not called lost: `dog node recovery` names no lost object, the metrics count none, the sheep log says it checks again; once the write is done nothing is short and the data reads back. An object still short when plans a confirm window apart agree is called lost (116 covers a real loss with the default window).
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

# Test hooks: SHEEP_TEST_PAUSE_FILE point commit-one (sheep/gateway/
# twophase.c) commits a whole write on one holder and holds the others;
# SHEEP_TEST_LOST_CONFIRM_MS widens the window after which plans that agree
# call an object lost (1 s by default, the first re-plan), so that this
# test's checks cannot race the re-plan on a loaded machine.
export SHEEP_TEST_PAUSE_FILE=$SD_TEST_DIR/pause
export SHEEP_TEST_LOST_CONFIRM_MS=20000
F=$SHEEP_TEST_PAUSE_FILE
N=6
MiB=$((1 << 20))
sd_start_cluster $N || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
rec_wait_done 0 $N 1 60 || bail "initial recovery state never settled"
dogn 0 vdi create v 8M || bail "create a thin 4:2 VDI"
vid=$(dogn 0 vdi list -r | awk '$1 == "=" && $2 == "v" { print $8 }')
[ -n "$vid" ] || bail "no VDI id for v in: $(dogn 0 vdi list -r)"
oid0=$(printf '%016x' $((0x$vid << 32)))
log "VDI v is $vid: its first data object $oid0 does not exist yet"

# plan_lines: lines of the sheep logs about short or lost objects.
plan_lines() { cat "$SD_TEST_DIR"/n*/sheep.log | grep -E "$1" || true; }
SHORT='object\(s\) short of consistent fragments in this plan'
LOST='object\(s\) have too few fragments left to rebuild'

# Write object 0 whole (it is created) and hold the write with one of its
# six fragments committed: the object exists on one holder only.
sd_random "$SD_TEST_DIR/data" $((4 * MiB))
echo "commit-one $oid0" >"$F"
dogn 0 vdi write v 0 $((4 * MiB)) <"$SD_TEST_DIR/data" &
w=$!
for _ in $(seq 100); do
	[ -e "$F.commit-one" ] && break
	sleep 0.1
done
check "the write of object 0 holds with one fragment committed" test -e "$F.commit-one"

# Every node plans again now (dog cluster recover force) and finds the
# object on one holder of six, fewer than the four a 4:2 object needs.
n0=$(plan_lines "$SHORT|$LOST" | wc -l)
check "dog cluster recover force" dogn 0 cluster recover force
for _ in $(seq 100); do
	[ "$(plan_lines "$SHORT|$LOST" | wc -l)" -gt "$n0" ] && break
	sleep 0.1
done
plan_lines "$SHORT|$LOST" | tail -n 3 | sed 's/^/# /'
check "a plan found object 0 short and says it checks again" \
	test "$(plan_lines "$SHORT" | wc -l)" -gt 0
check_eq "no sheep calls an object lost" "" "$(plan_lines "$LOST")"
dogn 0 node recovery >"$SD_TEST_DIR/held.out" 2>"$SD_TEST_DIR/held.err"
sed 's/^/# /' "$SD_TEST_DIR/held.err"
check_eq "dog node recovery names no lost object" "" "$(grep 'lost object' "$SD_TEST_DIR/held.err")"
check_eq "dog node recovery -r counts none lost" 0 "$(rec_sum lost 0)"
check_eq "--json: no node counts a lost object" 0 "$(dogn 0 node recovery --json 2>/dev/null |
	python3 -c 'import json, sys; print(sum(n["lost"] for n in json.load(sys.stdin)["nodes"]))')"

# The write goes on and is acknowledged; the next plans find the object whole.
rm -f "$F.commit-one"
wait $w
check_eq "the write is acknowledged" 0 $?
check "dog cluster recover force, after the write" dogn 0 cluster recover force
check "recovery completes" rec_wait_done 0 $N "$(rec_epoch 0)" 60
dogn 0 node recovery >"$SD_TEST_DIR/after.out" 2>"$SD_TEST_DIR/after.err"
check_eq "nothing named lost after the write" "" "$(grep 'lost object' "$SD_TEST_DIR/after.err")"
check_eq "no sheep called an object lost at any time" "" "$(plan_lines "$LOST")"
check_eq "object 0 reads back (via sheep 4)" "$(sd_sha "$SD_TEST_DIR/data")" \
	"$(dogn 4 vdi read v 0 $((4 * MiB)) | sha256sum | cut -d' ' -f1)"

# A real loss is still called lost once the window has passed: three of
# the six sheep go, object 0 keeps three fragments of the four it needs.
for i in 3 4 5; do sd_kill $i; done
sd_wait_nodes 0 3 30 || bail "the three sheep left did not see the others go"
for _ in $(seq 120); do
	dogn 0 node recovery >"$SD_TEST_DIR/lost.out" 2>"$SD_TEST_DIR/lost.err"
	grep -q "lost object $oid0" "$SD_TEST_DIR/lost.err" && break
	sleep 0.5
done
check "object 0 named lost once plans 20 s apart agree" \
	grep -q "lost object $oid0 (VDI v, data object 0)" "$SD_TEST_DIR/lost.err"
check "the sheep log says so" test "$(plan_lines "$LOST" | wc -l)" -gt 0
for i in 0 1 2; do check "sheep $i running" sd_alive $i; done
sd_done
