#!/usr/bin/env bash
# plots.sh - run every benchmark briefly and draw the README's PNG plots (docs/bench/) with their CSVs beside them.
#
# Usage: bench/plots.sh [-o DIR] [-b BUILD]   (make bench-plots)
#   -o DIR    where the CSVs and PNGs go (default docs/bench)
#   -b BUILD  build directory (default build)
# Short runs (a few minutes in all, medians of 3): the pictures show shapes
# and ratios, not a tuned machine's absolute rates. Ports 10000+SD_PORT_OFFSET
# are used; run it in a private network namespace on a shared machine:
#   unshare --net sh -c 'ip link set lo up; bench/plots.sh'
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/docs/bench build=build
while getopts "o:b:h" o; do
	case $o in
	o) out=$OPTARG ;;
	b) build=$OPTARG ;;
	*) sed -n '2,10p' "$0"; exit 64 ;;
	esac
done
case "$build" in /*) ;; *) build="$top/$build" ;; esac
mkdir -p "$out"
export BUILD=$build

echo "== ec_bench (hot and 32 MiB cold set, 3 runs per figure)"
"$build/bench/ec_bench" --runs 3 --cold-mib 32 --policy 2:1,4:2,8:3,16:4 --csv >"$out/ec.csv"
"$top/bench/plot.sh" ec "$out/ec.csv" "$out/ec.png"

echo "== cluster_bench (128 MiB per run, 3 runs)"
"$top/bench/cluster_bench.sh" -s 128 -n 3 -c "$out/cluster.csv" 3 2:1 4:2 >&2
"$top/bench/plot.sh" cluster "$out/cluster.csv" "$out/cluster.png"

echo "== nbd_bench (64 MiB, 2 s per random run, 3 runs)"
"$top/bench/nbd_bench.sh" -b "$build" -r 3 -t 2 -s 64 --csv-file "$out/nbd.csv" --plot "$out/nbd.png" >&2

echo "== recovery_bench (64, 128, 256 MiB)"
rm -f "$out/recovery.csv"
for mb in 64 128 256; do
	"$top/bench/recovery_bench.sh" -s "$mb" -r 3 -c "$out/recovery.csv" >&2
done
"$top/bench/plot.sh" recovery "$out/recovery.csv" "$out/recovery.png"
ls -l "$out"/*.png
