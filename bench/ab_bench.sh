#!/usr/bin/env bash
# ab_bench.sh - two or more builds compared on 4 KiB random writes over NBD: each round starts a fresh six-sheep cluster per build, in turn and each round from the next build, so drift of a noisy box and the place in a round fall on every build alike; medians and ratios to the first build.
#
# Usage: bench/ab_bench.sh [-r ROUNDS] [-t SECONDS] [-s SIZE_MB] [-q "QD..."] [-k "ec rep"]
#                          BUILD BUILD...
#
#   -r ROUNDS   rounds; each runs every build once per policy (default 4)
#   -t SECONDS  length of each fio run (default 5)
#   -s SIZE_MB  VDI size, written sequentially first (default 256, as nbd_bench)
#   -q "QD..."  queue depths (default "1 32")
#   -k "..."    policies: ec (4:2) and/or rep (-c 3) (default both)
#
# A round of one build: six durable sheep (tests/func/lib.sh sd_start, as
# bench/nbd_bench.sh starts them) on ports 10000+SD_PORT_OFFSET, format
# -c 4:2, one VDI of the policy, a 4 MiB sequential fill, then fio
# randwrite at each queue depth against sheep 0's NBD export. Prints each
# run as it ends (stderr) and the table of medians with each build's ratio
# to the first one. Compare builds of the same tree only: a change of the
# benchmark itself is not a change of the product.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
rounds=4 secs=5 size_mb=256 qds="1 32" kinds="ec rep"
while [ $# -gt 0 ]; do
	case "$1" in
	-r) rounds=$2; shift ;;
	-t) secs=$2; shift ;;
	-s) size_mb=$2; shift ;;
	-q) qds=$2; shift ;;
	-k) kinds=$2; shift ;;
	-h|--help) sed -n '2,19p' "$0"; exit 0 ;;
	-*) echo "ab_bench: unknown option $1" >&2; exit 64 ;;
	*) break ;;
	esac
	shift
done
[ $# -ge 2 ] || { echo "ab_bench: name two or more build directories" >&2; exit 64; }
builds=()
for b in "$@"; do
	case "$b" in /*) ;; *) b="$PWD/$b" ;; esac
	[ -x "$b/sheep/sheep" ] && [ -x "$b/dog/dog" ] || { echo "ab_bench: $b has no sheep and dog (make)" >&2; exit 1; }
	builds+=("$b")
done
for k in $kinds; do
	case "$k" in ec|rep) ;; *) echo "ab_bench: policy $k: want ec or rep" >&2; exit 64 ;; esac
done
for t in fio python3; do
	command -v $t >/dev/null || { echo "ab_bench: $t is not installed (scripts/install-deps)" >&2; exit 1; }
done
fio --enghelp=nbd >/dev/null 2>&1 || { echo "ab_bench: fio lacks the nbd engine" >&2; exit 1; }

results=$(mktemp /tmp/ab_bench.XXXXXX)
trap 'rm -f "$results"' EXIT

# one_run BUILD KIND: a fresh cluster, the fill, fio at each depth; prints "QD IOPS" lines.
one_run() (
	export SD_TOP=$top SHEEP=$1/sheep/sheep DOG=$1/dog/dog
	export SD_TEST_DIR=$(mktemp -d /tmp/ab_bench.run.XXXXXX)
	export SD_PORT_BASE=$((10000 + ${SD_PORT_OFFSET:-0}))
	export SD_NBD_PORT_BASE=$((SD_PORT_BASE + 50))
	. "$top/tests/func/lib.sh" >/dev/null
	trap 'sd_cleanup; rm -rf "$SD_TEST_DIR"' EXIT
	SD_DURABLE=1 SD_LOG_LEVEL=warning sd_start_cluster 6 >/dev/null || { echo "cluster failed" >&2; exit 1; }
	dogn 0 cluster format -c 4:2 >/dev/null || exit 1
	if [ "$2" = ec ]; then
		dogn 0 vdi create v "${size_mb}M" >/dev/null || exit 1
	else
		dogn 0 vdi create v "${size_mb}M" -c 3 >/dev/null || exit 1
	fi
	sd_wait_port "$(sd_nbd_port 0)" || exit 1
	uri="nbd://127.0.0.1:$(sd_nbd_port 0)/v"
	fio --name=fill --ioengine=nbd --uri="$uri" --rw=write --bs=4M --iodepth=4 \
		--size="${size_mb}M" >/dev/null || exit 1
	for qd in $qds; do
		fio --name=w --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth="$qd" \
			--size="${size_mb}M" --time_based --runtime="$secs" --output-format=terse \
			--terse-version=3 | awk -F';' -v qd="$qd" '$1 == 3 { print qd, $49 }'
	done
)

for r in $(seq "$rounds"); do
	for k in $kinds; do
		# Each round starts with the next build: the first run of a
		# round came out faster (two builds of a change that cannot move
		# the figure, in both orders: 4-10 % at 3 copies QD32), and a
		# fixed order gave that to build 0 every time.
		for ((j = 0; j < ${#builds[@]}; j++)); do
			i=$(((j + r - 1) % ${#builds[@]}))
			out=$(one_run "${builds[$i]}" "$k") || { echo "ab_bench: run failed: ${builds[$i]} $k" >&2; exit 1; }
			while read -r qd iops; do
				echo "$i $k $qd $iops" >>"$results"
				echo "# round $r $k QD$qd ${builds[$i]}: $iops" >&2
			done <<<"$out"
		done
	done
done

python3 - "$results" "${builds[@]}" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
builds = sys.argv[2:]
cases = []
for _, k, qd, _ in rows:
    if (k, qd) not in cases:
        cases.append((k, qd))
name = {"ec": "4:2", "rep": "-c 3"}
print("4 KiB rand write IOPS, median (runs)  " + "  ".join("build %d" % i for i in range(len(builds))) + "  ratio to build 0")
for k, qd in cases:
    med = []
    for i in range(len(builds)):
        v = [float(r[3]) for r in rows if r[0] == str(i) and r[1] == k and r[2] == qd]
        med.append((statistics.median(v), v))
    cells = "  ".join("%8.1f (%s)" % (m, " ".join("%.0f" % x for x in v)) for m, v in med)
    ratios = " ".join("%.2f" % (m / med[0][0]) for m, _ in med[1:])
    print("%-5s QD%-3s %s  %s" % (name[k], qd, cells, ratios))
for i, b in enumerate(builds):
    print("build %d: %s" % (i, b))
EOF
