#!/usr/bin/env bash
# 104-recovery-restart.sh - eight sheep: kill one, let recovery finish, rewrite part of the data, restart the node on its old store: it reuses what is still valid, refetches what went stale, and everything reads back.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

sd_start_cluster 8 || bail "eight sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
rec_mkvdi 0 e42 4:2 $((64 * MiB)) $((40 * MiB)) || bail "4:2 VDI with data"
rec_mkvdi 0 r3 3 $((32 * MiB)) $((20 * MiB)) || bail "3-copy VDI with data"
rec_wait_done 0 8 1 60 || bail "initial recovery state never settled"
objects=$(rec_summary objects "$(rec_census 0 1 2 3 4 5 6 7)")
e0=$(rec_epoch 0)

# Recovery with the node down is disabled: its data stays where it is
# (maintenance), so the node comes back to a store that still matters.
check "cluster recover disable" dogn 0 cluster recover disable
sd_kill 3
sd_wait_nodes 0 7 || bail "sheep 0 still lists the killed node"
sleep 2
# Every survivor has planned the new epoch (its counts are this epoch's).
for ((t = 0; t < 80; t++)); do
	[ "$(rec_states 0 | awk -v e=$((e0 + 1)) '$4 == e' | grep -c .)" = 7 ] && break
	sleep 0.25
done
# Counts are per epoch: what earlier epochs moved counts as reused here.
moved_while_disabled=$(($(rec_sum copied 0) + $(rec_sum rebuilt 0)))
written_while_disabled=$(rec_sum written 0)
check "disabled: nothing copied or rebuilt ($moved_while_disabled)" test "$moved_while_disabled" -eq 0
check "disabled: no recovery bytes written ($written_while_disabled)" test "$written_while_disabled" -eq 0
dogn 0 node recovery | sed 's/^/# /'

# Rewrite every other 4 MiB object of each VDI while the node is away: its
# fragments of those go stale, the rest stay valid. (A contiguous range
# could miss the node entirely: placement depends on the node ids, i.e.
# the ports, so which objects it holds changes from run to run.)
for v in e42 r3; do
	size=$([ "$v" = e42 ] && echo 40 || echo 20)
	for ((o = 1; o * 4 < size; o += 2)); do
		head -c $((4 * MiB)) /dev/urandom >"$SD_TEST_DIR/new"
		dogn 0 vdi write "$v" $((o * 4 * MiB)) $((4 * MiB)) <"$SD_TEST_DIR/new" || bail "rewrite $v object $o"
		dd if="$SD_TEST_DIR/new" of="$SD_TEST_DIR/$v.ref" bs=1M seek=$((o * 4)) conv=notrunc status=none
	done
done

sd_start 3 || bail "sheep 3 did not restart"
sd_wait_nodes 0 8 || bail "sheep 3 did not rejoin"
check "cluster recover enable" dogn 0 cluster recover enable
check "restart: recovery completes" rec_wait_done 0 8 $((e0 + 2)) 150
line=$(rec_states 0 | awk '$2 == 3')
log "node 3: $line"
reused=$(rec_field "$line" reused)
moved=$(($(rec_field "$line" copied) + $(rec_field "$line" rebuilt)))
check "restarted node reused its valid fragments ($reused)" test "${reused:-0}" -gt 0
check "restarted node refetched its stale ones ($moved)" test "$moved" -gt 0
out=$(rec_census --verify 0 1 2 3 4 5 6 7)
log "$(grep summary <<<"$out")"
check_eq "every object at full redundancy" "$objects" "$(rec_summary full "$out")"
check_eq "every fragment reads back" 0 "$(rec_summary bad "$out")"
rec_check_read 3 e42 "after restart"
rec_check_read 3 r3 "after restart"
sd_done
