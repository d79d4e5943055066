# stale_holder.sh - the scenario of 117, 128 and 131, sourced after lib.sh and rec_lib.sh: a fragment put back to its previous version on its holder (no membership change) must be rebuilt once a write finds it behind; with REPAIR_FAIL=N every sheep fails its first N repairs (a write in flight) and must try again; with BEHIND_WRITES=1 as well, writes keep coming and the write path itself must bring the fragment back.
N=6
# Every sheep fails its first REPAIR_FAIL repairs as if the versions were moving (117).
[ "${REPAIR_FAIL:-0}" -gt 0 ] && export SHEEP_TEST_REPAIR_FAIL=$REPAIR_FAIL
sd_start_cluster $N || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
rec_mkvdi 0 v 4:2 $((4 * MiB)) $((4 * MiB)) || bail "4:2 VDI with data"
rec_wait_done 0 $N 1 60 || bail "initial recovery state never settled"
e0=$(rec_epoch 0)

# A holder of the data object other than sheep 0 (the gateway used).
h=-1 frag=
for ((i = 1; i < N; i++)); do
	f=$(ls "$(sd_dir $i)/obj" 2>/dev/null | grep -E '^00[0-9a-f]{6}00000000_' | head -n 1)
	if [ -n "$f" ]; then h=$i frag="$(sd_dir $i)/obj/$f"; break; fi
done
[ $h -ge 0 ] || bail "no holder of the data object besides sheep 0"
log "sheep $h holds $frag"
cp "$frag" "$SD_TEST_DIR/old-frag"

# write_at OFF: 64 KiB of new data at OFF through sheep 0, kept in the reference.
write_at() {
	sd_random "$SD_TEST_DIR/p" 65536
	dogn 0 vdi write v "$1" 65536 <"$SD_TEST_DIR/p" || return 1
	dd if="$SD_TEST_DIR/p" of="$SD_TEST_DIR/v.ref" bs=65536 seek=$(($1 / 65536)) conv=notrunc \
		status=none
}
# The writes go to the holder's fragment: a range write sends nothing to
# the data fragments it leaves unchanged (they stay at the version they
# last changed, docs/architecture.md "Unchanged fragments"), so only a
# write into fragment idx's range (or any write, for a parity) moves it.
idx=$((16#${frag##*_}))
at=0
[ "$idx" -lt 4 ] && at=$((idx * MiB))
log "fragment $idx: writing at $at"
check "a write moves the object on" write_at $at
# Its commits may still be on their way (they wait up to GW_CQ_RIDE_MS
# for a write to ride on): wait until the holder has none pending, so
# that the copy below replaces the applied fragment.
pending_on() { # IDX: prepared writes pending on sheep IDX (dog node stat -r)
	dogn 0 node stat -r | awk -v hp="127.0.0.1:$(sd_port "$1")" '
		NR == 1 { for (i = 1; i <= NF; i++) if ($i == "pending") c = i }
		NR > 1 && $2 == hp { print $c }'
}
for ((t = 0; t < 50; t++)); do [ "$(pending_on $h)" = 0 ] && break; sleep 0.1; done
log "writes pending on sheep $h: $(pending_on $h)"
# Put the holder's fragment back to its previous version, as a write that
# could not reach it (it was unreachable for a moment) leaves it.
kill -STOP "${SD_PIDS[$h]}"
cp "$SD_TEST_DIR/old-frag" "$frag.tmp" && mv "$frag.tmp" "$frag"
kill -CONT "${SD_PIDS[$h]}"
out=$(rec_census 0 1 2 3 4 5)
check_eq "the object is one fragment short" 1 "$(rec_summary short "$out")"

check "a second write finds the fragment behind" write_at $((at + MiB / 2))
is_full() {
	out=$(rec_census 0 1 2 3 4 5)
	[ "$(rec_summary short "$out")" = 0 ] && [ "$(rec_summary bad "$out")" = 0 ]
}
full=0 end=$((SECONDS + 30)) nw=1
while [ $SECONDS -lt $end ]; do
	is_full && { full=1; break; }
	if [ "${BEHIND_WRITES:-0}" = 1 ]; then
		# Writes keep coming to the fragment's range (recovery, failing
		# every repair here, can never catch up).
		write_at $((at + (nw % 8) * MiB / 8)) || break
		nw=$((nw + 1))
		sleep 0.1
	else
		sleep 0.5
	fi
done
grep '^short' <<<"$out" | sed 's/^/# /'
if [ "${BEHIND_WRITES:-0}" = 1 ]; then
	log "$nw writes until the object was whole again"
	check_eq "the writes themselves bring the fragment back" 1 $full
	check "... by rewriting the object whole" \
		grep -q "rewriting the whole object" "$SD_TEST_DIR"/n*/sheep.log
	check "no repair was planned (every one fails here)" \
		bash -c "! grep -h 'repair of .*: queued' $SD_TEST_DIR/n*/sheep.log"
elif [ "${REPAIR_FAIL:-0}" -gt 0 ]; then
	check_eq "the fragment is rebuilt after two failed attempts" 1 $full
	check "the holder tried again" grep -q "trying again (2 of" "$(sd_dir $h)/sheep.log"
	grep -h "repair of" "$(sd_dir $h)/sheep.log" | sed 's/^/# /'
	check "recovery says done again once the repair is in" rec_wait_done 0 $N "$e0" 60
else
	check_eq "the fragment is rebuilt without a membership change" 1 $full
fi
out=$(rec_census --verify 0 1 2 3 4 5)
check_eq "every fragment reads back" "0 0" "$(rec_summary short "$out") $(rec_summary bad "$out")"
check_eq "no epoch change happened" "$e0" "$(rec_epoch 0)"
check "the holder asked for it (the write's coordinator logged it)" grep -q "left at version" "$SD_TEST_DIR"/n*/sheep.log
rec_check_read 0 v "after the rebuild"
rec_check_read $h v "after the rebuild, via sheep $h"
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
