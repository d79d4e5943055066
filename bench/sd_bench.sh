#!/usr/bin/env bash
# sd_bench.sh - random 4 KiB object reads and writes over the Sheepdog 1.0 protocol (bench/sd_bench) on six durable local sheep, one or more builds in one run.
#
# Usage: bench/sd_bench.sh [-r RUNS] [-t SECONDS] [-s SIZE_MB] [-q "QDS"] [BUILD...]
#
#   -r RUNS     runs of each case; the table shows the median (default 3)
#   -t SECONDS  length of each run (default 8)
#   -s SIZE_MB  preallocated VDI size (default 256)
#   -q "QDS"    queue depths (default "1 32")
#   BUILD       build directories holding sheep/sheep, dog/dog and
#               bench/sd_bench (default: build). Several builds are measured
#               one after the other in the same run, so their ratios can be
#               compared (e.g. the tree before a change and after it).
#
# For each build: six sheep (zones 0..5) on ports 10000+SD_PORT_OFFSET..,
# a 4:2 and a 3-copy VDI created with -P, then for each VDI, queue depth and
# direction the median IOPS of RUNS runs of sd_bench against sheep 0.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
runs=3 secs=8 size_mb=256 qds="1 32"
while [ $# -gt 0 ]; do
	case "$1" in
	-r) runs=$2; shift ;;
	-t) secs=$2; shift ;;
	-s) size_mb=$2; shift ;;
	-q) qds=$2; shift ;;
	-h|--help) sed -n '2,18p' "$0"; exit 0 ;;
	-*) echo "sd_bench: unknown option $1" >&2; exit 64 ;;
	*) break ;;
	esac
	shift
done
[ $# -eq 0 ] && set -- build
export SD_TOP=$top
export SD_PORT_BASE=$((10000 + ${SD_PORT_OFFSET:-0}))
export SD_NBD_PORT_BASE=$((SD_PORT_BASE + 50))
export SD_TEST_DIR=$(mktemp -d /tmp/sd_bench.XXXXXX)
export SHEEP=/bin/false DOG=/bin/false
. "$top/tests/func/lib.sh" >/dev/null
trap 'sd_cleanup; rm -rf "$SD_TEST_DIR"' EXIT

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

declare -A RES
for build in "$@"; do
	case "$build" in /*) ;; *) build="$top/$build" ;; esac
	SHEEP=$build/sheep/sheep DOG=$build/dog/dog
	for t in "$SHEEP" "$DOG" "$build/bench/sd_bench"; do
		[ -x "$t" ] || { echo "sd_bench: $t missing (make)" >&2; exit 1; }
	done
	rm -rf "${SD_TEST_DIR:?}"/n* "$SD_TEST_DIR/local"
	SD_DURABLE=1 SD_LOG_LEVEL=warning sd_start_cluster 6 >/dev/null ||
		{ echo "sd_bench: the six sheep did not form a cluster" >&2; exit 1; }
	dogn 0 cluster format -c 4:2 >/dev/null || exit 1
	dogn 0 vdi create -P b-ec "${size_mb}M" >/dev/null || exit 1
	dogn 0 vdi create -P -c 3 b-rep "${size_mb}M" >/dev/null || exit 1
	for v in ec rep; do
		for q in $qds; do
			for w in read write; do
				vals=()
				for ((r = 0; r < runs; r++)); do
					out=$("$build/bench/sd_bench" -p "$(sd_port 0)" -q "$q" -t "$secs" \
						$([ $w = write ] && echo -w) "b-$v") || out="x x 0"
					vals+=("$(echo "$out" | awk '{print $3}')")
				done
				RES[$build,$v,$q,$w]=$(median "${vals[@]}")
				echo "# $build $v QD$q $w: ${vals[*]} -> ${RES[$build,$v,$q,$w]}" >&2
			done
		done
	done
	sd_cleanup
done

printf '\n%-28s' "4 KiB IOPS (median of $runs)"
for build in "$@"; do printf ' %16s' "$(basename "$(dirname "$build")")/$(basename "$build")"; done
[ $# -gt 1 ] && printf ' %8s' "last/1st"
echo
for v in ec rep; do
	for q in $qds; do
		for w in read write; do
			printf '%-28s' "$([ $v = ec ] && echo 4:2 || echo '3 copies') $w QD$q"
			for build in "$@"; do
				case "$build" in /*) ;; *) build="$top/$build" ;; esac
				printf ' %16s' "${RES[$build,$v,$q,$w]}"
			done
			if [ $# -gt 1 ]; then
				f=$1 l=${!#}
				case "$f" in /*) ;; *) f="$top/$f" ;; esac
				case "$l" in /*) ;; *) l="$top/$l" ;; esac
				awk -v a="${RES[$l,$v,$q,$w]}" -v b="${RES[$f,$v,$q,$w]}" \
					'BEGIN { if (b > 0) printf " %8.2f", a / b; else printf " %8s", "-" }'
			fi
			echo
		done
	done
done
