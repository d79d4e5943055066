#!/usr/bin/env bash
# 113-recovery-join-race.sh - regression test of the race ThreadSanitizer found (173346c): a recovery worker held between taking its job and reading the node cache and epoch while a sheep joins and the planner moves the epoch; under TSan (check-tsan) an unlocked read there is reported; here the data also reads back and recovery completes.
# timeout: 300
#
# SHEEP_TEST_PAUSE_FILE=F (lib/testhook.h): the first recovery worker to
# read a fragment from a peer ("rec-read" in F) waits while F.rec-read exists.
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"
export SHEEP_TEST_PAUSE_FILE=$SD_TEST_DIR/pause
F=$SHEEP_TEST_PAUSE_FILE

sd_start_cluster 4 || bail "four sheep did not form a cluster"
dogn 0 cluster format -c 2:1 || bail "cluster format failed"
rec_mkvdi 0 v 2:1 $((32 * MiB)) $((24 * MiB)) || bail "2:1 VDI with data"
rec_wait_done 0 4 1 120 || bail "initial recovery state never settled"

echo rec-read >"$F"
sd_kill 3
sd_wait_nodes 0 3 || bail "sheep 0 still lists the killed node"
for _ in $(seq 300); do [ -e "$F.rec-read" ] && break; sleep 0.1; done
check "a recovery worker is held before its peer read" test -e "$F.rec-read"
by=$(cat "$F.by" 2>/dev/null)
idx=$((by - SD_PORT_BASE))
slog=$(sd_dir "$idx")/sheep.log
log "held on sheep $idx (port $by)"

# A new sheep joins while the job is held; wait for the held sheep's planner
# to move to the new epoch (it writes r->epoch and grows its node cache).
sd_start 4 || bail "sheep 4 did not start"
sd_wait_nodes 0 4 || bail "sheep 4 did not join"
planned() { awk '/paused at rec-read/ { p = 1 } p && /recovery: epoch [0-9]+ -> [0-9]+, planning/ { f = 1 } END { exit !f }' "$slog"; }
for _ in $(seq 300); do planned && break; sleep 0.1; done
check "the held sheep planned the join's epoch while the job was held" planned
rm -f "$F.rec-read"
for _ in $(seq 100); do grep -q "going on from rec-read" "$slog" && break; sleep 0.1; done
check "the held job went on" grep -q "going on from rec-read" "$slog"

e=$(rec_epoch 0)
check "recovery completes on the four sheep" rec_wait_done 0 4 "$e" 180
out=$(rec_census --verify 0 1 2 4)
log "$(grep summary <<<"$out")"
check_eq "every object at full redundancy" "$(rec_summary objects "$out")" "$(rec_summary full "$out")"
check_eq "every fragment reads back (checksums)" 0 "$(rec_summary bad "$out")"
rec_check_read 0 v "after the join"
sd_done
