#!/usr/bin/env bash
# nbd_bench.sh - fio over NBD: a 4:2 and a -c 3 VDI on a six-node local cluster vs `nbdkit memory` (the ceiling), one run, with ratios.
#
# Usage: bench/nbd_bench.sh [-r RUNS] [-t SECONDS] [-s SIZE_MB] [-b BUILD] [--nosync] [--csv]
#                           [--csv-file FILE] [--plot PNG] [--cases LIST] [--sync-delay US]
#                           [--wal-window US]
#
#   -r RUNS     runs of each case; the table shows the median (default 3)
#   -t SECONDS  length of each random-I/O run (default 10)
#   -s SIZE_MB  working set, written sequentially first (default 256)
#   -b BUILD    build directory with sheep and dog (default build)
#   --nosync    run the sheep with -n (no fdatasync: not durable, for comparison)
#   --sync-delay US  every fsync/fdatasync of the sheep takes US microseconds
#               longer (bench/preload/slowsync.c), as on a disk that flushes that slowly
#   --wal-window US  every durable log batch of the sheep waits US microseconds for
#               more records before its sync, at any load (test hook
#               SHEEP_TEST_WAL_WINDOW_US): fewer syncs per write for latency
#   --csv       also print the table as CSV
#   --csv-file FILE  write the random-I/O figures as CSV (target,qd,rw,iops,lat_us)
#   --plot PNG  draw IOPS and latency by queue depth (bench/plot.sh nbd)
#   --cases LIST  only these cases, comma-separated (e.g. randwrite1,randwrite32;
#               randread16, randwrite64, randwrite128 and randwrite256 run
#               only when named)
#
# Cases (fio, ioengine=nbd, one job): 4 MiB sequential write and read at
# QD4; 4 KiB random read and write at QD1, QD4 and QD32 (IOPS, and the
# mean completion latency of the median run's figures for the CSV). Six sheep run on this
# machine with their stores in a temp dir, on ports 10000+SD_PORT_OFFSET
# (default offset 0 gives 10000..10011 and NBD 10050..); nbdkit memory on the
# next free port. Everything started is stopped on exit.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
runs=3 secs=10 size_mb=256 build=build csv=0 nosync= csv_file= plot= cases= sync_delay= wal_window=
while [ $# -gt 0 ]; do
	case "$1" in
	-r) runs=$2; shift ;;
	-t) secs=$2; shift ;;
	-s) size_mb=$2; shift ;;
	-b) build=$2; shift ;;
	--csv) csv=1 ;;
	--csv-file) csv_file=$2; shift ;;
	--plot) plot=$2; shift ;;
	--cases) cases=$2; shift ;;
	--nosync) nosync=-n ;;
	--sync-delay) sync_delay=$2; shift ;;
	--wal-window) wal_window=$2; shift ;;
	-h|--help) sed -n '2,28p' "$0"; exit 0 ;;
	*) echo "nbd_bench: unknown option $1" >&2; exit 64 ;;
	esac
	shift
done
case "$build" in /*) ;; *) build="$top/$build" ;; esac
case "$sync_delay" in *[!0-9]*) echo "nbd_bench: --sync-delay takes microseconds" >&2; exit 64 ;; esac
case "$wal_window" in *[!0-9]*) echo "nbd_bench: --wal-window takes microseconds" >&2; exit 64 ;; esac
if [ -n "$wal_window" ]; then
	export SHEEP_TEST_WAL_WINDOW_US=$wal_window
	echo "# every durable log batch of the sheep waits $wal_window us before its sync" >&2
fi
for t in fio nbdkit python3; do
	command -v $t >/dev/null || { echo "nbd_bench: $t is not installed (scripts/install-deps)" >&2; exit 1; }
done
fio --enghelp=nbd >/dev/null 2>&1 || { echo "nbd_bench: fio lacks the nbd engine" >&2; exit 1; }
[ -x "$build/sheep/sheep" ] && [ -x "$build/dog/dog" ] || { echo "nbd_bench: build sheep and dog first (make)" >&2; exit 1; }

export SD_TOP=$top SHEEP=$build/sheep/sheep DOG=$build/dog/dog
export SD_TEST_DIR=$(mktemp -d /tmp/nbd_bench.XXXXXX)
export SD_PORT_BASE=$((10000 + ${SD_PORT_OFFSET:-0}))
export SD_NBD_PORT_BASE=$((SD_PORT_BASE + 50))
# lib.sh: sd_start, dogn, cleanup of the sheep on exit.
. "$top/tests/func/lib.sh" >/dev/null
kit_port=$((SD_PORT_BASE + 99))
kit_pid=""
bench_cleanup() {
	[ -n "$kit_pid" ] && kill "$kit_pid" 2>/dev/null
	sd_cleanup
	rm -rf "$SD_TEST_DIR"
}
trap bench_cleanup EXIT

# name: fio arguments; metric
CASES=(seqwrite seqread randread1 randread4 randread32 randwrite1 randwrite4 randwrite32)
[ -n "$cases" ] && IFS=, read -r -a CASES <<<"$cases"
declare -A ARGS=(
	[seqwrite]="--rw=write --bs=4M --iodepth=4 --size=${size_mb}M"
	[seqread]="--rw=read --bs=4M --iodepth=4 --size=${size_mb}M"
	[randread1]="--rw=randread --bs=4k --iodepth=1 --size=${size_mb}M --time_based --runtime=$secs"
	[randread4]="--rw=randread --bs=4k --iodepth=4 --size=${size_mb}M --time_based --runtime=$secs"
	[randread16]="--rw=randread --bs=4k --iodepth=16 --size=${size_mb}M --time_based --runtime=$secs"
	[randread32]="--rw=randread --bs=4k --iodepth=32 --size=${size_mb}M --time_based --runtime=$secs"
	[randwrite4]="--rw=randwrite --bs=4k --iodepth=4 --size=${size_mb}M --time_based --runtime=$secs"
	[randwrite1]="--rw=randwrite --bs=4k --iodepth=1 --size=${size_mb}M --time_based --runtime=$secs"
	[randwrite32]="--rw=randwrite --bs=4k --iodepth=32 --size=${size_mb}M --time_based --runtime=$secs"
)
for q in 64 128 256; do
	ARGS[randwrite$q]="--rw=randwrite --bs=4k --iodepth=$q --size=${size_mb}M --time_based --runtime=$secs"
done
for c in "${CASES[@]}"; do
	[ -n "${ARGS[$c]:-}" ] || { echo "nbd_bench: no case $c (cases: ${!ARGS[*]})" >&2; exit 64; }
done
declare -A LABEL=(
	[seqwrite]="4 MiB seq write QD4 (MiB/s)" [seqread]="4 MiB seq read QD4 (MiB/s)"
	[randread1]="4 KiB rand read QD1 (IOPS)" [randread4]="4 KiB rand read QD4 (IOPS)"
	[randread16]="4 KiB rand read QD16 (IOPS)"
	[randread32]="4 KiB rand read QD32 (IOPS)" [randwrite1]="4 KiB rand write QD1 (IOPS)"
	[randwrite4]="4 KiB rand write QD4 (IOPS)" [randwrite32]="4 KiB rand write QD32 (IOPS)"
	[randwrite64]="4 KiB rand write QD64 (IOPS)" [randwrite128]="4 KiB rand write QD128 (IOPS)"
	[randwrite256]="4 KiB rand write QD256 (IOPS)"
)

echo "# starting 6 sheep in $SD_TEST_DIR (ports $SD_PORT_BASE.., NBD $SD_NBD_PORT_BASE..${nosync:+, no sync})" >&2
preload=
if [ -n "$sync_delay" ]; then
	preload=$SD_TEST_DIR/slowsync.so
	cc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$preload" "$top/bench/preload/slowsync.c" -ldl ||
		{ echo "nbd_bench: cannot build bench/preload/slowsync.c" >&2; exit 1; }
	echo "# every sync of the sheep takes $sync_delay us longer (bench/preload/slowsync.c)" >&2
fi
# lib.sh's sd_start, durable (no -n) unless --nosync.
LD_PRELOAD=$preload SLOWSYNC_US=${sync_delay:-0} SD_DURABLE=1 SD_LOG_LEVEL=warning \
	sd_start_cluster 6 $nosync >/dev/null ||
	{ echo "nbd_bench: the six sheep did not form a cluster" >&2; exit 1; }
dogn 0 cluster format -c 4:2 >/dev/null || { echo "nbd_bench: format failed" >&2; exit 1; }
dogn 0 vdi create bench-ec "${size_mb}M" >/dev/null || exit 1
dogn 0 vdi create bench-rep "${size_mb}M" -c 3 >/dev/null || exit 1
sd_wait_port "$(sd_nbd_port 0)" || { echo "nbd_bench: no NBD on sheep 0" >&2; exit 1; }
nbdkit -f -i 127.0.0.1 -p "$kit_port" memory "${size_mb}M" >/dev/null 2>&1 &
kit_pid=$!
sd_wait_port "$kit_port" || { echo "nbd_bench: nbdkit did not start" >&2; exit 1; }

declare -A URI=(
	[memory]="nbd://127.0.0.1:$kit_port/"
	[ec]="nbd://127.0.0.1:$(sd_nbd_port 0)/bench-ec"
	[rep]="nbd://127.0.0.1:$(sd_nbd_port 0)/bench-rep"
)

# Sum of the log syncs of the six sheep (dog node stat -r; "-" when this
# build has no such command).
syncs() {
	dogn 0 node stat -r 2>/dev/null | awk 'NR > 1 {t += $3; n++} END {if (n == 6) print t; else print "-"}'
}

# one TARGET CASE: print the figure of one fio run (MiB/s or IOPS) and its
# mean completion latency in microseconds; for the sheep's random writes
# also record the log syncs per client write.
one() {
	local out=$SD_TEST_DIR/fio.json s0=- s1=-
	[ "$1" != memory ] && [[ $2 == randwrite* ]] && s0=$(syncs)
	# shellcheck disable=SC2086
	fio --name=b --ioengine=nbd --uri="${URI[$1]}" ${ARGS[$2]} --output-format=json \
		--output="$out" >/dev/null 2>&1 || { echo "0 0"; return; }
	[ "$s0" != - ] && s1=$(syncs)
	python3 - "$out" "$2" "$s0" "$s1" "$SD_TEST_DIR/spw.$1.$2" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
d = j["write"] if "write" in sys.argv[2] else j["read"]
print("%.1f %.1f" % (d["bw_bytes"] / 1048576 if sys.argv[2].startswith("seq") else d["iops"],
                    d["clat_ns"]["mean"] / 1000.0))
if sys.argv[3] != "-" and sys.argv[4] != "-" and d["total_ios"]:
    open(sys.argv[5], "a").write("%.3f\n" % ((int(sys.argv[4]) - int(sys.argv[3])) / d["total_ios"]))
EOF
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

declare -A RES LAT
for c in "${CASES[@]}"; do
	for t in memory ec rep; do
		vals=() lats=()
		for ((r = 0; r < runs; r++)); do
			read -r v l <<<"$(one "$t" "$c")"
			vals+=("$v") lats+=("$l")
		done
		RES[$t,$c]=$(median "${vals[@]}")
		LAT[$t,$c]=$(median "${lats[@]}")
		echo "# $c $t: ${vals[*]} -> median ${RES[$t,$c]} (latency us ${lats[*]})" >&2
	done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
printf '\n%-30s %14s %12s %7s %12s %7s\n' "fio over NBD (median of $runs${nosync:+, -n}${sync_delay:+, syncs +$sync_delay us}${wal_window:+, log window $wal_window us})" "nbdkit memory" "4:2 VDI" "ratio" "-c 3 VDI" "ratio"
for c in "${CASES[@]}"; do
	printf '%-30s %14s %12s %7s %12s %7s\n' "${LABEL[$c]}" "${RES[memory,$c]}" "${RES[ec,$c]}" \
		"$(ratio "${RES[ec,$c]}" "${RES[memory,$c]}")" "${RES[rep,$c]}" "$(ratio "${RES[rep,$c]}" "${RES[memory,$c]}")"
done
for c in "${CASES[@]}"; do
	[[ $c == randwrite* ]] || continue
	for t in ec rep; do
		f=$SD_TEST_DIR/spw.$t.$c
		[ -s "$f" ] && echo "# log syncs per client write, $c $t: $(tr '\n' ' ' <"$f")-> median $(median $(cat "$f"))"
	done
done
if [ $csv = 1 ]; then
	echo
	echo "case,memory,ec_4_2,ec_ratio,copies_3,copies_ratio"
	for c in "${CASES[@]}"; do
		echo "$c,${RES[memory,$c]},${RES[ec,$c]},$(ratio "${RES[ec,$c]}" "${RES[memory,$c]}"),${RES[rep,$c]},$(ratio "${RES[rep,$c]}" "${RES[memory,$c]}")"
	done
fi
if [ -n "$csv_file" ] || [ -n "$plot" ]; then
	f=${csv_file:-$SD_TEST_DIR/nbd.csv}
	echo "target,qd,rw,iops,lat_us" >"$f"
	for c in "${CASES[@]}"; do
		case $c in rand*) ;; *) continue ;; esac
		for t in memory ec rep; do
			echo "$t,${c##*[a-z]},${c%%[0-9]*},${RES[$t,$c]},${LAT[$t,$c]}" >>"$f"
		done
	done
	[ -z "$plot" ] || "$top/bench/plot.sh" nbd "$f" "$plot"
fi
