#!/usr/bin/env bash
# snap_bench.sh - snapshots and copy-on-write on a six-sheep 4:2 cluster: 4 KiB random writes to a just-snapshotted volume vs the same volume without a snapshot (ratio, one run), bytes sent between sheep per copy-on-write (holder-local copy vs whole-object copy), and snapshot/clone time of a large VDI.
#
# Usage: bench/snap_bench.sh [-r RUNS] [-b BUILD] [--big-gb G] [--written-gb W]
#
#   -r RUNS         runs of each case; medians are shown (default 3)
#   -b BUILD        build directory with sheep and dog (default build)
#   --big-gb G      size of the VDI whose snapshot is timed (default 100)
#   --written-gb W  bytes written to it first, GiB (default 10)
#
# Sheep run with -n (no fdatasync) so the disk does not hide the network
# and copy costs; everything runs on loopback in this machine, so "bytes
# between sheep" is read from lo's tx counter around a batch of writes (the
# NBD client's own 4 KiB per write is the same in both batches and
# cancels). Run it in a private network namespace (unshare --net) so other
# traffic does not count.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
runs=3 build=build big_gb=100 written_gb=10
while [ $# -gt 0 ]; do
	case "$1" in
	-r) runs=$2; shift ;;
	-b) build=$2; shift ;;
	--big-gb) big_gb=$2; shift ;;
	--written-gb) written_gb=$2; shift ;;
	-h|--help) sed -n '2,17p' "$0"; exit 0 ;;
	*) echo "snap_bench: unknown option $1" >&2; exit 64 ;;
	esac
	shift
done
case "$build" in /*) ;; *) build="$top/$build" ;; esac
for t in fio qemu-io nbdcopy; do
	command -v $t >/dev/null || { echo "snap_bench: $t is not installed (scripts/install-deps)" >&2; exit 1; }
done
export SD_TOP=$top SHEEP=$build/sheep/sheep DOG=$build/dog/dog
export SD_TEST_DIR=$(mktemp -d /tmp/snap_bench.XXXXXX)
export SD_PORT_BASE=$((10200 + ${SD_PORT_OFFSET:-0}))
export SD_NBD_PORT_BASE=$((SD_PORT_BASE + 50))
. "$top/tests/func/lib.sh" >/dev/null
trap 'sd_cleanup; rm -rf "$SD_TEST_DIR"' EXIT
MiB=$((1 << 20))
lo_tx() { cat /sys/class/net/lo/statistics/tx_bytes; }
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

start() { # start 6 sheep, format 4:2; env as given by the caller
	local i
	for i in 0 1 2 3 4 5; do sd_start $i -l level=info || exit 1; done
	sd_wait_nodes 0 6 || exit 1
	dogn 0 cluster format -c 4:2 >/dev/null || exit 1
}
stop() { local i; for i in 0 1 2 3 4 5; do sd_kill $i; done; rm -rf "$SD_TEST_DIR"/n* "$SD_TEST_DIR/local"*; }

# fio_iops URI SEED: 4 KiB random writes, QD16, 1024 of them
fio_iops() {
	fio --name=w --ioengine=nbd --uri="$1" --rw=randwrite --bs=4k --iodepth=16 \
		--number_ios=1024 --size=1G --randseed="$2" --output-format=json 2>/dev/null |
		python3 -c 'import json,sys; t = sys.stdin.read(); print("%.0f" % json.loads(t[t.index("{"):])["jobs"][0]["write"]["iops"])'
}

# bytes_per_cow: 64 4 KiB writes into 64 objects of a just-snapshotted
# volume, then the same 64 writes again (objects now owned); the extra lo
# bytes of the first batch per write.
bytes_per_cow() {
	local v=$1 cmds="" k
	dogn 0 vdi create "$v" 256M >/dev/null && fio --name=f --ioengine=nbd --uri="$(nbd_uri "$v")" \
		--rw=write --bs=4M --size=256M --iodepth=4 >/dev/null 2>&1 || return 1
	dogn 0 vdi snapshot "$v" || return 1
	for k in $(seq 0 63); do cmds="$cmds -c 'write -P $((k % 250)) $((k * 4 * MiB + 8192)) 4k'"; done
	local a b c
	a=$(lo_tx); eval qemu-io -f raw $cmds "'$(nbd_uri "$v")'" >/dev/null || return 1
	b=$(lo_tx); eval qemu-io -f raw $cmds "'$(nbd_uri "$v")'" >/dev/null || return 1
	c=$(lo_tx)
	echo $(( ((b - a) - (c - b)) / 64 ))
}
nbd_uri() { echo "nbd://127.0.0.1:$(sd_nbd_port 0)/$1"; }

printf "%-34s %12s %12s\n" "case (median of $runs)" "local copy" "whole copy"
declare -A res
for mode in local whole; do
	if [ $mode = whole ]; then export SHEEP_TEST_NO_LOCAL_COPY=1; else unset SHEEP_TEST_NO_LOCAL_COPY; fi
	start
	plain=() cow=() ratio=() bpc=()
	for r in $(seq 1 "$runs"); do
		v=w$r
		dogn 0 vdi create $v 1G >/dev/null || exit 1
		fio --name=f --ioengine=nbd --uri="$(nbd_uri $v)" --rw=write --bs=4M --size=1G --iodepth=4 >/dev/null 2>&1 || exit 1
		p=$(fio_iops "$(nbd_uri $v)" $((r * 7)))
		dogn 0 vdi snapshot $v || exit 1
		c=$(fio_iops "$(nbd_uri $v)" $((r * 7)))
		plain+=("$p") cow+=("$c")
		ratio+=("$(echo "scale=3; $c / $p" | bc)")
		bpc+=("$(bytes_per_cow b$r)")
	done
	res[$mode,plain]=$(printf '%s\n' "${plain[@]}" | median)
	res[$mode,cow]=$(printf '%s\n' "${cow[@]}" | median)
	res[$mode,ratio]=$(printf '%s\n' "${ratio[@]}" | median)
	res[$mode,bpc]=$(printf '%s\n' "${bpc[@]}" | median)
	echo "# $mode: plain ${plain[*]} / snapshotted ${cow[*]} IOPS; bytes per COW ${bpc[*]}" >&2
	if [ $mode = local ]; then
		dogn 0 vdi create big "${big_gb}G" >/dev/null || exit 1
		fio --name=f --ioengine=nbd --uri="$(nbd_uri big)" --rw=write --bs=4M --size="${written_gb}G" \
			--iodepth=8 >/dev/null 2>&1 || exit 1
		st=() ct=()
		for r in $(seq 1 "$runs"); do
			t0=$(date +%s%N); dogn 0 vdi snapshot big || exit 1; t1=$(date +%s%N)
			dogn 0 vdi clone -s $r big "bigc$r" || exit 1; t2=$(date +%s%N)
			st+=("$(( (t1 - t0) / 1000000 ))") ct+=("$(( (t2 - t1) / 1000000 ))")
		done
		res[snap]=$(printf '%s\n' "${st[@]}" | median)
		res[clone]=$(printf '%s\n' "${ct[@]}" | median)
		echo "# snapshot ms ${st[*]}, clone ms ${ct[*]}" >&2
	fi
	stop
done
printf "%-34s %12s %12s\n" "4k randwrite IOPS, no snapshot" "${res[local,plain]}" "${res[whole,plain]}"
printf "%-34s %12s %12s\n" "4k randwrite IOPS, just snapshotted" "${res[local,cow]}" "${res[whole,cow]}"
printf "%-34s %12s %12s\n" "ratio snapshotted / not (per run)" "${res[local,ratio]}" "${res[whole,ratio]}"
printf "%-34s %12s %12s\n" "lo bytes per copy-on-write" "${res[local,bpc]}" "${res[whole,bpc]}"
printf "%-34s %12s\n" "snapshot of ${big_gb} GiB, ${written_gb} GiB written" "${res[snap]} ms"
printf "%-34s %12s\n" "clone of that snapshot" "${res[clone]} ms"
