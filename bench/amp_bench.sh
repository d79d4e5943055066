#!/usr/bin/env bash
# amp_bench.sh - write amplification of 4 MiB sequential writes: disk bytes the sheep write per client byte, sheep CPU per MiB and elapsed time, for a 4:2 and a 3-copy VDI.
#
# Usage: bench/amp_bench.sh [-b BUILD] [-s SIZE_MB]   (run it in `unshare --net`)
# Six durable local sheep (ports 14000.., NBD 14050..), a SIZE_MB (256)
# 4:2 VDI and a -c 3 VDI, each written once by fio (4 MiB blocks, QD4,
# over NBD). Disk bytes are the sum of write_bytes in /proc/PID/io of the
# six sheep (the filesystem's journal is not counted); CPU is utime+stime
# of the six. Ideal bytes per client byte: 1.5 (4:2) and 3.0 (3 copies).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build size=256
while getopts "b:s:h" o; do
	case $o in
	b) build=$(cd "$OPTARG" && pwd) ;;
	s) size=$OPTARG ;;
	*) sed -n '2,10p' "$0"; exit 64 ;;
	esac
done
export SD_TOP=$top SHEEP=$build/sheep/sheep DOG=$build/dog/dog
[ -x "$SHEEP" ] && [ -x "$DOG" ] || { echo "amp_bench: build sheep and dog first (make)" >&2; exit 1; }
command -v fio >/dev/null || { echo "amp_bench: needs fio" >&2; exit 1; }
export SD_TEST_DIR=$(mktemp -d) SD_PORT_BASE=${SD_PORT_BASE:-14000} SD_NBD_PORT_BASE=${SD_NBD_PORT_BASE:-14050}
. "$top/tests/func/lib.sh" >/dev/null
trap 'sd_cleanup; rm -rf "$SD_TEST_DIR"' EXIT
SD_DURABLE=1 SD_LOG_LEVEL=warning sd_start_cluster 6 >/dev/null ||
	{ echo "amp_bench: the six sheep did not form a cluster" >&2; exit 1; }
dogn 0 cluster format -c 4:2 >/dev/null || exit 1
sd_wait_port "$(sd_nbd_port 0)" || exit 1
# totals WHAT: the sum over the six sheep of write_bytes (io) or CPU ticks (cpu)
totals() {
	local i p t=0
	for i in 0 1 2 3 4 5; do
		p=${SD_PIDS[$i]}
		if [ "$1" = io ]; then
			t=$((t + $(awk '/^write_bytes/ {print $2}' "/proc/$p/io")))
		else
			t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
		fi
	done
	echo $t
}
hz=$(getconf CLK_TCK)
echo "# amp_bench: $build, ${size} MiB per VDI, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %14s %12s %10s\n' vdi bytes/client cpu_ms/MiB elapsed_s
for v in ec rep; do
	if [ $v = ec ]; then copies=""; else copies="-c 3"; fi
	dogn 0 vdi create $v "${size}M" $copies >/dev/null || exit 1
	sleep 1
	w0=$(totals io) c0=$(totals cpu) t0=$(date +%s.%N)
	fio --name=amp --ioengine=nbd --uri="nbd://127.0.0.1:$(sd_nbd_port 0)/$v" --rw=write --bs=4M \
		--iodepth=4 --size="${size}M" --output-format=terse >/dev/null 2>&1 ||
		{ echo "amp_bench: fio failed on $v" >&2; exit 1; }
	t1=$(date +%s.%N)
	sleep 2 # applies and group commits that trail the last reply
	w1=$(totals io) c1=$(totals cpu)
	awk -v v=$v -v w=$((w1 - w0)) -v c=$((c1 - c0)) -v hz="$hz" -v s="$size" -v t0="$t0" -v t1="$t1" \
		'BEGIN { printf "%-8s %14.2f %12.1f %10.2f\n", v, w / 1048576 / s, c * 1000 / hz / s, t1 - t0 }'
done
