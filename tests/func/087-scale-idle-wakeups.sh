#!/usr/bin/env bash
# 087-scale-idle-wakeups.sh - an idle sheep sleeps: after I/O and a recovery, each of 5 idle sheep wakes fewer than 20 times a second (voluntary context switches of all its threads; 29-31/s before the idle waits were lengthened), its converter thread (sd_convert) not at all, and uses under 0.5% of a core (utime+stime from /proc/PID/stat), and still reacts at once to a kill -9 (recovery, data by sha256).
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"
MAX_WAKEUPS_PER_S=20
MAX_CPU_PCT=0.5
W=20 # seconds of idle measured
MiB=$((1 << 20))
cluster_epoch() { dogn "$1" cluster info 2>/dev/null | awk '/^Epoch/{getline; print $3; exit}'; }

sd_start_cluster 6 || bail "six sheep"
dogn 0 cluster format -c 4:2 || bail "format 4:2"
dogn 0 vdi create v 64M || bail "vdi create"
sd_random "$SD_TEST_DIR/d" $((16 * MiB))
check "vdi write 16 MiB" dogn 0 vdi write v 0 $((16 * MiB)) <"$SD_TEST_DIR/d"
sd_kill 5
sd_wait_nodes 0 5 30 || bail "the others drop sheep 5"
e=$(cluster_epoch 0)
check "recovery after sheep 5's kill completes" rec_wait_done 0 5 "${e:-1}" 120
sleep 3 # the last cluster-completion polls

# wakeups PID: voluntary context switches of all threads (a thread that
# wakes and sleeps again counts one; preemption by a busy box does not).
wakeups() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ { n += $2 } END { print n + 0 }'; }
# thread_wakeups PID NAME: the same, of its threads named NAME only.
thread_wakeups() {
	local t n=0
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] || continue
		n=$((n + $(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t/status" 2>/dev/null || echo 0)))
	done
	echo $n
}
cputicks() { awk '{ print $14 + $15 }' /proc/"$1"/stat; }
declare -A w0 c0 v0
for i in 0 1 2 3 4; do
	w0[$i]=$(wakeups "${SD_PIDS[$i]}")
	c0[$i]=$(cputicks "${SD_PIDS[$i]}")
	v0[$i]=$(thread_wakeups "${SD_PIDS[$i]}" sd_convert)
done
sleep $W
hz=$(getconf CLK_TCK)
for i in 0 1 2 3 4; do
	pid=${SD_PIDS[$i]}
	wps=$(( ($(wakeups "$pid") - w0[$i]) / W ))
	cpu=$(awk -v a="${c0[$i]}" -v b="$(cputicks "$pid")" -v hz="$hz" -v w=$W 'BEGIN { printf "%.2f", (b - a) / hz / w * 100 }')
	log "sheep $i idle over $W s: $wps wakeups/s, $cpu% of a core, $(ls /proc/"$pid"/task | wc -l) threads"
	check "idle sheep $i wakes $wps times a second (< $MAX_WAKEUPS_PER_S)" test "$wps" -lt $MAX_WAKEUPS_PER_S
	check "idle sheep $i uses $cpu% of a core (< $MAX_CPU_PCT%)" \
		awk -v c="$cpu" -v m=$MAX_CPU_PCT 'BEGIN { exit !(c < m) }'
	# With no conversion under way the converter sleeps until kicked (it
	# polled every 300 ms before: 66 wakeups in 20 s).
	cv=$(( $(thread_wakeups "$pid" sd_convert) - v0[$i] ))
	check "idle sheep $i: its converter woke $cv times in $W s (none)" test "$cv" -le 1
done

# Sleeping longer must not slow the reaction: a kill -9 still changes the
# epoch and recovery runs at once.
e0=$(cluster_epoch 0)
t0=$(date +%s%N)
sd_kill 4
check "the others drop sheep 4" sd_wait_nodes 0 4 30
e1=$(cluster_epoch 0)
check "the epoch moved on ($e0 -> $e1)" test "${e1:-0}" -gt "${e0:-0}"
check "recovery after sheep 4's kill completes" rec_wait_done 0 4 "${e1:-1}" 120
log "kill -9 to recovery done: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
dogn 2 vdi read v 0 $((16 * MiB)) >"$SD_TEST_DIR/r"
check_eq "the data reads back through sheep 2 (sha256)" "$(sd_sha "$SD_TEST_DIR/d")" "$(sd_sha "$SD_TEST_DIR/r")"
sd_done
