#!/usr/bin/env bash
# 071-nbd-shared-pool.sh - 64 NBD connections, 8 requests in flight on each: every one's data reads back intact, and the sheep never runs more NBD workers than its one shared pool (32), counted in /proc/PID/task.
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need python3
NCONN=64 QD=8 POOL=32

nbd_cluster 3 2:1
for k in $(seq 0 $((NCONN - 1))); do
	dogn 0 vdi create "m$k" 4M >/dev/null || bail "vdi create m$k"
done
nbd_wait_nbd 0 || bail "no NBD on sheep 0"
pid=${SD_PIDS[0]}

out=$(python3 "$SD_TOP/tests/func/nbd_manyconn.py" 127.0.0.1 "$(sd_nbd_port 0)" "$pid" $NCONN $QD m 2>"$SD_TEST_DIR/manyconn.err")
log "$(tr '\n' ' ' <<<"$out")"
sed 's/^/# /' "$SD_TEST_DIR/manyconn.err" | head -n 10
val() { awk -v k="$1" '$1 == k { print $2 }' <<<"$out"; }
check_eq "$NCONN connections wrote and read back their own data (sha256)" $NCONN "$(val verified)"
check_eq "no connection failed" 0 "$(val errors)"
check "the connections ran at once: up to $NCONN connection threads seen ($(val peak_conns))" \
	test "$(val peak_conns)" -ge $((NCONN / 2))
check "the shared pool served them: NBD workers seen ($(val peak_workers))" test "$(val peak_workers)" -ge 1
check "never more NBD workers than the pool's $POOL ($(val peak_workers))" test "$(val peak_workers)" -le $POOL
# NBD threads, not all of them: a thread serving another sheep's new peer
# connection counts as "sheep" until it names itself (sd_conn).
check "NBD threads at once within connections + pool ($NCONN + $POOL >= $(val peak_nbd))" \
	test "$(val peak_nbd)" -le $((NCONN + POOL))
# Connection threads are detached: give them a moment to exit.
# Left out: NBD pool workers, and the threads serving other sheep's peer
# connections (sd_conn, which live as long as those pooled connections).
others() { echo $(($(ls /proc/"$pid"/task | wc -l) - $(grep -lxE 'nbd-worker|sd_conn' /proc/"$pid"/task/*/comm 2>/dev/null | wc -l))); }
for _ in $(seq 50); do [ "$(others)" -le "$(val base)" ] && break; sleep 0.1; done
check_eq "the connections' threads are gone once they closed (pool workers aside)" "$(val base)" "$(others)"
# The long-lived threads carry their names (docs/architecture.md, Threads),
# so per-thread CPU and switch counts (perf, top -H) say who did what.
named=$(cat /proc/"$pid"/task/*/comm 2>/dev/null | grep -cxE 'sd_wal|sd_commit|sd_rec|sd_scrub|sd_convert|nbd-listen')
check_eq "the log writer, commit queue, recovery, scrub, converter and NBD listener threads are named" 6 "$named"
sd_done
