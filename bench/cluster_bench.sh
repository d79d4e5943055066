#!/usr/bin/env bash
# cluster_bench.sh - sequential write and read MB/s of a volume through dog on a six-node local cluster, per policy; median of runs; disk bytes used.
#
# Usage: bench/cluster_bench.sh [-s SIZE_MiB] [-n RUNS] [-N NODES] [-c CSV] [POLICY...]
#   defaults: 1024 MiB, 3 runs, 6 nodes, policies "3 4:2".
#   -c CSV: also write "policy,write_mbs,read_mbs,x_data" (bench/plot.sh cluster).
# Environment: SD_PORT_OFFSET shifts the ports (10000+offset .. +99 are used),
# BUILD (default build) picks the binaries. Run by `make bench-cluster`.
# Each run writes SIZE MiB of random data to a fresh VDI with one
# `dog vdi write`, reads it back with one `dog vdi read` (checked by sha256),
# and counts the bytes the stores grew by. Sheep run with -n (no fsync), so
# the figures measure the data path (network, coding, dog), not the disk.
set -u
size_mib=1024 runs=3 nodes=6 csv=
while getopts "s:n:N:c:h" o; do
	case $o in
	c) csv=$OPTARG ;;
	s) size_mib=$OPTARG ;;
	n) runs=$OPTARG ;;
	N) nodes=$OPTARG ;;
	*) sed -n '2,13p' "$0"; exit 64 ;;
	esac
done
shift $((OPTIND - 1))
policies=("$@")
[ ${#policies[@]} -gt 0 ] || policies=(3 4:2)

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
export SHEEP=$build/sheep/sheep DOG=$build/dog/dog SD_TOP=$top
export SD_TEST_DIR=$(mktemp -d /tmp/sdbench.XXXXXX)
export SD_PORT_BASE=$((10000 + ${SD_PORT_OFFSET:-0}))
export SD_NBD_PORT_BASE=$((SD_PORT_BASE + 50))
[ -x "$SHEEP" ] && [ -x "$DOG" ] || { echo "build sheep and dog first (make)" >&2; exit 1; }
. "$top/tests/func/lib.sh"
trap 'sd_cleanup; rm -rf "$SD_TEST_DIR"' EXIT

MiB=$((1 << 20))
bytes=$((size_mib * MiB))
data=$SD_TEST_DIR/data
head -c "$bytes" /dev/urandom >"$data"
want=$(sd_sha "$data")
cat "$data" >/dev/null # into the page cache

store_bytes() { du -s -B1 --exclude='*.log' --exclude='*.out' "$SD_TEST_DIR"/n* | awk '{s += $1} END {printf "%.0f\n", s}'; }
now() { date +%s.%N; }
# Wait (up to 60 s) until the stores stop shrinking after deletes.
settle() {
	local a b t
	a=$(store_bytes)
	for ((t = 0; t < 60; t++)); do
		sleep 1; b=$(store_bytes)
		[ "$b" = "$a" ] && return 0
		a=$b
	done
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {printf "%.6f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

sd_start_cluster "$nodes" >/dev/null || { echo "cluster did not start" >&2; exit 1; }
dogn 0 cluster format -c 4:2 || exit 1

printf '# %d MiB sequential through dog, %d sheep on %s (%d cores), median of %d\n' \
	"$size_mib" "$nodes" "$(hostname)" "$(nproc)" "$runs"
printf '%-8s %12s %12s %14s %8s\n' policy "write MB/s" "read MB/s" "disk MiB" "x data"
[ -z "$csv" ] || echo "policy,write_mbs,read_mbs,x_data" >"$csv"
for pol in "${policies[@]}"; do
	w=() r=() disk=()
	for ((k = 1; k <= runs; k++)); do
		v="bench$k-${pol/:/-}"
		dogn 0 vdi create -c "$pol" "$v" "$bytes" || exit 1
		before=$(store_bytes)
		t0=$(now)
		dogn 0 vdi write "$v" <"$data" || { echo "write failed" >&2; exit 1; }
		t1=$(now)
		sync
		disk+=($(( $(store_bytes) - before )))
		t2=$(now)
		dogn 0 vdi read "$v" >"$SD_TEST_DIR/out" || { echo "read failed" >&2; exit 1; }
		t3=$(now)
		[ "$(sd_sha "$SD_TEST_DIR/out")" = "$want" ] || { echo "$v read back wrong data" >&2; exit 1; }
		rm -f "$SD_TEST_DIR/out"
		w+=("$(echo "$size_mib / ($t1 - $t0)" | bc -l)")
		r+=("$(echo "$size_mib / ($t3 - $t2)" | bc -l)")
	done
	for ((k = 1; k <= runs; k++)); do dogn 0 vdi delete "bench$k-${pol/:/-}" || exit 1; done
	settle
	d=$(median "${disk[@]}")
	printf '%-8s %12.1f %12.1f %14.1f %8.2f\n' "$pol" "$(median "${w[@]}")" "$(median "${r[@]}")" \
		"$(echo "$d / $MiB" | bc -l)" "$(echo "$d / $bytes" | bc -l)"
	[ -z "$csv" ] || printf '%s,%.1f,%.1f,%.2f\n' "$pol" "$(median "${w[@]}")" "$(median "${r[@]}")" \
		"$(echo "$d / $bytes" | bc -l)" >>"$csv"
done
