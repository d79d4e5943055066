#!/usr/bin/env bash
# scale_bench.sh - N sheep on this machine per cluster driver (local, corosync, zookeeper): time to full membership, epoch change and recovery after kill -9, RSS/threads/fds and idle CPU per sheep.
#
# Usage: bench/scale_bench.sh [-d "local corosync zookeeper"] [-N "16 32"] [-i IDLE_S] [-t ZK_TIMEOUT_MS] [-w MiB_PER_SHEEP]
# Runs as root in private network and mount namespaces (its own corosync
# and ZooKeeper on 127.0.0.1, sheep on ports 7000+i, no NBD, no fsync).
# Every local-driver sheep wants an inotify instance; the bench raises
# fs.inotify.max_user_instances to 1024 for its run (restored at exit), and
# a sheep that still gets none polls its log (logged, counted below).
# Per driver and N: launch all N sheep at once, then
#   join_s0   seconds from the first launch until sheep 0 lists N members
#   join_all  ... until every sheep lists N (polled one after the other with
#             dog, so an upper bound)
# then format 4:2, write MiB_PER_SHEEP (4) MiB per sheep through sheep 0,
# wait until every sheep's recovery is done, and measure idle:
#   rss/thr/fd  mean VmRSS (MiB), threads and open fds of an idle sheep
#   cpu%      mean CPU of an idle sheep over IDLE_S seconds, % of one core
#   svc%      CPU of corosync or the ZooKeeper JVM over the same window
# then kill -9 one sheep:
#   epoch_s   seconds from the kill until the last survivor logs the new
#             epoch (from the survivors' log timestamps)
#   recov_s   seconds from the kill until every survivor reports recovery
#             done at the new epoch, cluster-wide (dog node recovery)
# A driver that does not reach full membership within 120 s is not run at
# larger N. The machine is shared and noisy: its load is printed with the table.
set -u
drivers="local corosync zookeeper"
sizes="16 32"
idle=10
zk_timeout=5000
per_mib=4
while getopts "d:N:i:t:w:h" o; do
	case $o in
	d) drivers=$OPTARG ;;
	N) sizes=$OPTARG ;;
	i) idle=$OPTARG ;;
	t) zk_timeout=$OPTARG ;;
	w) per_mib=$OPTARG ;;
	*) sed -n '2,29p' "$0"; exit 64 ;;
	esac
done

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
SHEEP=$build/sheep/sheep
DOG=$build/dog/dog
[ -x "$SHEEP" ] && [ -x "$DOG" ] || { echo "build sheep and dog first (make)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "scale_bench: needs root (namespaces)" >&2; exit 1; }

if [ -z "${SD_SCALE_INNER:-}" ]; then
	ino=/proc/sys/fs/inotify/max_user_instances
	old=$(cat $ino)
	[ "$old" -ge 1024 ] || echo 1024 >$ino 2>/dev/null ||
		echo "# cannot raise $ino ($old): local sheep beyond it poll their log" >&2
	SD_SCALE_INNER=1 unshare -m -n --propagation private bash "$0" "$@"
	rc=$?
	[ "$(cat $ino)" = "$old" ] || echo "$old" >$ino
	exit $rc
fi
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ip link set lo up

export SD_TEST_DIR=$(mktemp -d /tmp/sdscale.XXXXXX)
. "$top/tests/func/corosync.sh"
ZK_DIR=$SD_TEST_DIR/zk
. "$top/tests/func/zookeeper.sh"
CS_PID=
PIDS=()
stop_sheep() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	PIDS=()
}
trap 'stop_sheep; cs_stop_pid "$CS_PID"; zk_stop_all; [ -n "${KEEP:-}" ] || rm -rf "$SD_TEST_DIR"' EXIT

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
members() { "$DOG" node list -r -a 127.0.0.1 -p $((7000 + $1)) 2>/dev/null | grep -c .; }
# log_time LINE: seconds since the epoch of a sheep log line ("Dec 04 17:52:38.829509 ...").
log_secs() {
	awk -v day="$(date +%Y-%m-%d)" '{ split($3, t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3];
		cmd = "date -d " day " +%s"; cmd | getline d; close(cmd); printf "%.6f\n", d + s }'
}

spec_of() {
	case $1 in
	local) echo "local:path=$SD_TEST_DIR/local-$2" ;;
	corosync) echo "corosync:group=scale$2" ;;
	zookeeper) echo "zookeeper:$(zk_hosts),timeout=$zk_timeout,path=/scale/n$2" ;;
	esac
}

svc_pid() {
	case $1 in
	corosync) echo "$CS_PID" ;;
	zookeeper) echo "${ZK_PIDS[0]}" ;;
	*) echo "" ;;
	esac
}

# rec_epoch IDX: the highest recovery epoch sheep IDX's dog reports.
rec_epoch() {
	"$DOG" node recovery -v -r -a 127.0.0.1 -p $((7000 + $1)) 2>/dev/null |
		awk '/^node / { for (j = 1; j < NF; j += 2) if ($j == "epoch" && $(j + 1) > m) m = $(j + 1) } END { print m + 0 }'
}
# rec_done IDX MIN_EPOCH: how many nodes report recovery done at an epoch >=
# MIN_EPOCH, nothing failed, and the cluster-wide completion.
rec_done() {
	"$DOG" node recovery -v -r -a 127.0.0.1 -p $((7000 + $1)) 2>/dev/null | awk -v min="$2" '/^node / {
		delete kv; for (j = 1; j < NF; j += 2) kv[$j] = $(j + 1)
		if (kv["epoch"] >= min && kv["status"] == "done" && kv["failed"] == 0 && kv["cluster_done"] == 1) c++
	} END { print c + 0 }'
}

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# run DRIVER N: one measurement; prints one table row; returns 1 when the
# cluster did not form.
run() {
	local drv=$1 n=$2 i spec t0 t1 t2 k
	spec=$(spec_of "$drv" "$n")
	rm -rf "$SD_TEST_DIR/n" "$SD_TEST_DIR/local-$n"
	mkdir -p "$SD_TEST_DIR/n"
	t0=$(now)
	for ((i = 0; i < n; i++)); do
		mkdir -p "$SD_TEST_DIR/n/$i"
		"$SHEEP" "$SD_TEST_DIR/n/$i" -f -z "$i" -p $((7000 + i)) -y 127.0.0.1 -b 127.0.0.1 \
			-n --nbd off -c "$spec" -l level=notice >"$SD_TEST_DIR/n/$i.out" 2>&1 &
		PIDS[$i]=$!
	done
	local ok=0
	for ((k = 0; k < 240; k++)); do
		[ "$(members 0)" = "$n" ] && { ok=1; break; }
		sleep 0.5
	done
	t1=$(now)
	if [ $ok = 0 ]; then
		printf '%-10s %4d  not all members after 120 s (sheep 0 lists %s)\n' "$drv" "$n" "$(members 0)"
		local keep
		keep=$(mktemp -d "/tmp/scale_bench.$drv.$n.XXXXXX")
		for ((i = 0; i < n; i++)); do
			cp "$SD_TEST_DIR/n/$i/sheep.log" "$keep/$i.log" 2>/dev/null
			cp "$SD_TEST_DIR/n/$i.out" "$keep/$i.out" 2>/dev/null
		done
		"$DOG" node list -r -a 127.0.0.1 -p 7000 >"$keep/node-list-0" 2>&1
		echo "# the sheep logs are kept in $keep"
		stop_sheep
		return 1
	fi
	for ((i = 1; i < n; i++)); do
		for ((k = 0; k < 120; k++)); do
			[ "$(members "$i")" = "$n" ] && break
			sleep 0.5
		done
	done
	t2=$(now)
	# Format 4:2, write per_mib MiB per sheep, wait until recovery settles.
	local mib=$((n * per_mib)) e0 rdone
	"$DOG" cluster format -c 4:2 -a 127.0.0.1 -p 7000 >/dev/null ||
		{ printf '%-10s %4d  format failed\n' "$drv" "$n"; stop_sheep; return 1; }
	"$DOG" vdi create scale "${mib}M" -a 127.0.0.1 -p 7000 &&
		head -c $((mib << 20)) /dev/urandom >"$SD_TEST_DIR/data" &&
		"$DOG" vdi write scale -a 127.0.0.1 -p 7000 <"$SD_TEST_DIR/data" ||
		{ printf '%-10s %4d  writing %d MiB failed\n' "$drv" "$n" "$mib"; stop_sheep; return 1; }
	e0=$(rec_epoch 0)
	for ((k = 0; k < 240; k++)); do
		[ "$(rec_done 0 "$e0")" = "$n" ] && break
		sleep 0.5
	done
	sleep 2
	# Idle: CPU over the window, then memory, threads, fds.
	local svc c0=0 c1=0 s0=0 s1=0 hz
	hz=$(getconf CLK_TCK)
	svc=$(svc_pid "$drv")
	for ((i = 0; i < n; i++)); do c0=$((c0 + $(ticks "${PIDS[$i]}"))); done
	[ -n "$svc" ] && s0=$(ticks "$svc")
	sleep "$idle"
	for ((i = 0; i < n; i++)); do c1=$((c1 + $(ticks "${PIDS[$i]}"))); done
	[ -n "$svc" ] && s1=$(ticks "$svc")
	local rss=0 thr=0 fds=0 p
	for ((i = 0; i < n; i++)); do
		p=${PIDS[$i]}
		rss=$((rss + $(awk '/^VmRSS/ { print $2 }' "/proc/$p/status")))
		thr=$((thr + $(awk '/^Threads/ { print $2 }' "/proc/$p/status")))
		fds=$((fds + $(ls "/proc/$p/fd" | wc -l)))
	done
	# kill -9 one sheep in the middle; when did every survivor log it, and
	# when did every survivor finish recovering its data?
	local victim=$((n / 2)) tk tr last=0 missing=0 line
	tk=$(now)
	kill -9 "${PIDS[$victim]}"
	wait "${PIDS[$victim]}" 2>/dev/null
	for ((k = 0; k < 120; k++)); do
		missing=0
		for ((i = 0; i < n; i++)); do
			[ $i = $victim ] && continue
			grep -q "epoch [0-9]*: 127.0.0.1:$((7000 + victim)) left" "$SD_TEST_DIR/n/$i/sheep.log" || { missing=1; break; }
		done
		[ $missing = 0 ] && break
		sleep 0.5
	done
	local epoch_s="none" recov_s="none"
	if [ $missing = 0 ]; then
		last=$(for ((i = 0; i < n; i++)); do
			[ $i = $victim ] && continue
			grep -m1 "epoch [0-9]*: 127.0.0.1:$((7000 + victim)) left" "$SD_TEST_DIR/n/$i/sheep.log"
		done | log_secs | sort -n | tail -n1)
		epoch_s=$(sub "$last" "$tk")
		for ((k = 0; k < 1200; k++)); do
			[ "$(rec_done 0 $((e0 + 1)))" = $((n - 1)) ] && { recov_s=$(sub "$(now)" "$tk"); break; }
			sleep 0.25
		done
	fi
	local polled
	polled=$(grep -l "no inotify" "$SD_TEST_DIR"/n/*/sheep.log 2>/dev/null | wc -l)
	[ "$polled" = 0 ] || echo "# $drv $n: $polled sheep polled their log (no inotify instance)"
	printf '%-10s %4d %8s %8s %8s %8s %6.1f %5.1f %5.1f %6.3f %6.1f\n' "$drv" "$n" \
		"$(sub "$t1" "$t0")" "$(sub "$t2" "$t0")" "$epoch_s" "$recov_s" \
		"$(awk -v r=$rss -v n=$n 'BEGIN { print r / n / 1024 }')" \
		"$(awk -v r=$thr -v n=$n 'BEGIN { print r / n }')" \
		"$(awk -v r=$fds -v n=$n 'BEGIN { print r / n }')" \
		"$(awk -v a=$c0 -v b=$c1 -v hz=$hz -v n=$n -v s=$idle 'BEGIN { print (b - a) / hz / s / n * 100 }')" \
		"$(awk -v a=$s0 -v b=$s1 -v hz=$hz -v s=$idle 'BEGIN { print (b - a) / hz / s * 100 }')"
	stop_sheep
	return 0
}

for d in $drivers; do
	case $d in
	corosync)
		cs_write_conf "$SD_TEST_DIR/cs" 1 127.0.0.1 127.0.0.1
		cs_start_here "$SD_TEST_DIR/cs" || { echo "corosync did not start" >&2; exit 1; }
		;;
	zookeeper)
		ZK_TICK_MS=500 zk_start_ensemble 1 || { echo "zookeeper did not start" >&2; exit 1; }
		;;
	esac
done

echo "# scale_bench at $(git -C "$top" rev-parse --short HEAD 2>/dev/null), $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# zookeeper: one server (JVM), session timeout $zk_timeout ms; idle window ${idle} s; $per_mib MiB per sheep in a 4:2 VDI"
printf '%-10s %4s %8s %8s %8s %8s %6s %5s %5s %6s %6s\n' driver N join_s0 join_all epoch_s recov_s rssMiB thr fd cpu% svc%
for d in $drivers; do
	for n in $sizes; do
		run "$d" "$n" || break
	done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
