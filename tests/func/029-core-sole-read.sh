#!/usr/bin/env bash
# 029-core-sole-read.sh - a replicated read served by one copy alone never returns data older than an acknowledged write: a holder that missed writes while it was down, restarted, serves no stale byte through its own gateway; once recovered and confirmed, its copies serve reads alone.
# timeout: 300
. "$SD_TOP/tests/func/lib.sh"
. "$SD_TOP/tests/func/sole_lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

N=3
MiB=$((1 << 20))
for ((i = 0; i < N; i++)); do sd_start "$i" --http "$(hp "$i")" || bail "sheep $i"; done
sd_wait_nodes 0 $N || bail "three sheep did not form a cluster"
dogn 0 cluster format -c 3 || bail "cluster format failed"
SIZE=$((12 * MiB))
rec_mkvdi 0 v 3 $SIZE $SIZE || bail "3-copy VDI with data"
rec_wait_done 0 $N 1 60 || bail "initial recovery state never settled"

pick_off() { OFF=$(((RANDOM * 32768 + RANDOM) % (SIZE / 4096) * 4096)); }

reads_match 2 5 "before any failure"
s0=$(sole_reads 2)
reads_match 2 5 "again"
s1=$(sole_reads 2)
log "sheep 2 sole reads: $s0 then $s1"
check "reads through a holder are served by its copy alone once confirmed" \
	test "${s1:-0}" -gt "${s0:-0}"

# Sheep 2 misses writes while it is down; recovery stays off so its copies
# stay stale after it is back (the window a restarted holder has before
# recovery reaches an object, held open).
check "recovery disabled" dogn 0 cluster recover disable
sd_kill 2
sd_wait_nodes 0 $((N - 1)) || bail "membership did not drop"
check "a whole object rewritten with sheep 2 down" write_at 0 $((4 * MiB))
ok_w=1
for off in 4194304 5242880 8388608 9000000 12578816; do write_at $off 4096 || ok_w=0; done
check_eq "five 4 KiB writes with sheep 2 down" 1 $ok_w
sd_start 2 --http "$(hp 2)" || bail "sheep 2 back"
sd_wait_nodes 2 $N || bail "sheep 2 did not rejoin"
reads_match 2 20 "sheep 2 back, its copies stale"
reads_match 1 3 "through another sheep meanwhile"
check "recovery enabled" dogn 0 cluster recover enable
rec_wait_done 0 $N 1 120 || not_ok "recovery did not finish"
reads_match 2 5 "after recovery"
s2=$(sole_reads 2)
reads_match 2 5 "after recovery, again"
s3=$(sole_reads 2)
log "sheep 2 sole reads after recovery: $s2 then $s3"
check "recovered copies are served alone again" test "${s3:-0}" -gt "${s2:-0}"
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
