#!/usr/bin/env bash
# recovery_bench.sh - recovery time and rebuild MB/s after losing one node of an eight-node 4:2 cluster, and degraded against healthy read MB/s.
#
# Usage: bench/recovery_bench.sh [-s MB] [-r RUNS] [-c CSV]
#   -s MB    data written to the 4:2 VDI (default 512; the issue's figure is 2048)
#   -r RUNS  reads per measurement, the median is reported (default 3)
#   -c CSV   append "mb,secs,rebuild_mbs,healthy_mbs,degraded_mbs" to CSV (a
#            header first when it is new): bench/plot.sh recovery draws it
# Needs build/sheep/sheep and build/dog/dog. Uses ports 10000+SD_PORT_OFFSET+...;
# set SD_PORT_OFFSET when other clusters run on this machine. Every sheep runs
# with -n (no sync): this measures the recovery path, not the disk.
set -u
MB=512
RUNS=3
CSV=
while getopts "s:r:c:h" o; do
	case $o in
	s) MB=$OPTARG ;;
	r) RUNS=$OPTARG ;;
	c) CSV=$OPTARG ;;
	*) sed -n '2,12p' "$0"; exit 64 ;;
	esac
done
SD_TOP=$(cd "$(dirname "$0")/.." && pwd)
export SD_TEST_DIR=$(mktemp -d /tmp/sdbench.recovery.XXXXXX)
. "$SD_TOP/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"
trap 'sd_cleanup; rm -rf "$SD_TEST_DIR"' EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# read_mbs IDX: MB/s of reading the whole VDI through sheep IDX, median of RUNS.
read_mbs() {
	local k t0 t1
	for ((k = 0; k < RUNS; k++)); do
		t0=$(now)
		dogn "$1" vdi read bench >"$SD_TEST_DIR/got" || { echo 0; return; }
		t1=$(now)
		cmp -s "$SD_TEST_DIR/got" "$SD_TEST_DIR/bench.ref" || echo "WARNING: read returned wrong data" >&2
		echo "$MB / ($t1 - $t0)" | bc -l
	done | median
}

sd_start_cluster 8 -R max=8 >/dev/null || { echo "cluster did not start"; exit 1; }
dogn 0 cluster format -c 4:2 || exit 1
echo "writing $MB MiB of random data to a 4:2 VDI on 8 nodes..."
rec_mkvdi 0 bench 4:2 $((MB * MiB)) $((MB * MiB)) || { echo "write failed"; exit 1; }
rec_wait_done 0 8 1 120 >/dev/null || { echo "initial state did not settle"; exit 1; }
e0=$(rec_epoch 0)

healthy=$(read_mbs 1)
dogn 0 cluster recover disable
sd_kill 7
sd_wait_nodes 0 7 >/dev/null
degraded=$(read_mbs 1)
t0=$(now)
dogn 0 cluster recover enable
rec_wait_done 0 7 $((e0 + 1)) 1800 || { echo "recovery did not complete"; exit 1; }
t1=$(now)
secs=$(echo "$t1 - $t0" | bc -l)
written=$(rec_sum written 0)
read=$(rec_sum read 0)
rebuilt=$(rec_sum rebuilt 0)
after=$(read_mbs 1)

printf '\n%-44s %12s\n' "eight-node 4:2 cluster, one node lost" "value"
printf '%-44s %12s\n' "data in the VDI (MiB)" "$MB"
printf '%-44s %12d\n' "fragments rebuilt" "$rebuilt"
printf '%-44s %12.1f\n' "fragment data rebuilt (MB)" "$(echo "$written / 1000000" | bc -l)"
printf '%-44s %12.1f\n' "fragment data read to rebuild it (MB)" "$(echo "$read / 1000000" | bc -l)"
printf '%-44s %12.2f\n' "recovery time (s, enable -> all nodes done)" "$secs"
printf '%-44s %12.1f\n' "rebuild rate (MB/s written)" "$(echo "$written / 1000000 / $secs" | bc -l)"
printf '%-44s %12.1f\n' "healthy read (MB/s, median of $RUNS)" "$healthy"
printf '%-44s %12.1f\n' "degraded read, node down (MB/s)" "$degraded"
printf '%-44s %12.2f\n' "degraded / healthy" "$(echo "$degraded / $healthy" | bc -l)"
printf '%-44s %12.1f\n' "read after recovery (MB/s)" "$after"
if [ -n "$CSV" ]; then
	[ -s "$CSV" ] || echo "mb,secs,rebuild_mbs,healthy_mbs,degraded_mbs" >"$CSV"
	printf '%s,%.2f,%.1f,%.1f,%.1f\n' "$MB" "$secs" "$(echo "$written / 1000000 / $secs" | bc -l)" \
		"$healthy" "$degraded" >>"$CSV"
fi
