#!/bin/sh
# mkseeds_dog.sh - records tests/fuzz/corpus/fuzz_dog/ seeds: each dog command of fuzz_dog run once against two real sheep through fuzz_dog's recording mode, so every seed holds real replies.
# Usage: tests/fuzz/mkseeds_dog.sh [BUILD_DIR]   (runs itself in a private network namespace)
set -eu
cd "$(dirname "$0")/../.."
build=${1:-build}
if [ -z "${SD_MKSEEDS_NETNS:-}" ]; then
	exec unshare --net sh -c "ip link set lo up; SD_MKSEEDS_NETNS=1 exec $0 $build"
fi
t=$(mktemp -d /tmp/sd-mkseeds-dog.XXXXXX)
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$t"; }
trap cleanup EXIT
for i in 0 1; do
	mkdir -p "$t/n$i"
	"$build/sheep/sheep" "$t/n$i" -f -z "$i" -p $((7000 + i)) -y 127.0.0.1 -b 127.0.0.1 \
		-c "local:path=$t/local" -n >"$t/sheep$i.out" 2>&1 &
	pids="$pids $!"
done
dog() { "$build/dog/dog" "$@" -p 7000; }
for n in $(seq 100); do dog node list -r 2>/dev/null | grep -c . | grep -qx 2 && break; sleep 0.1; done
dog cluster format -c 2
dog vdi create v 64M
head -c 12288 /dev/urandom | dog vdi write v 0 12288
dog vdi snapshot -s snap1 v
dog vdi setattr v key value
head -c 4096 /dev/urandom | dog vdi write v 8192 4096
out=tests/fuzz/corpus/fuzz_dog
mkdir -p $out
# record NAME CMD FLAGS: the command byte and flags byte, then the replies.
record() {
	printf "$(printf '\\%03o\\%03o' "$2" "$3")" >"$t/in"
	rm -f "$out/seed-$1"
	FUZZ_DOG_RECORD=7000 FUZZ_DOG_RECORD_OUT="$t/rec" "$build/tests/fuzz/fuzz_dog" "$t/in" >/dev/null 2>&1 || true
	cat "$t/in" "$t/rec" >"$out/seed-$1"
	rm -f "$t/rec"
}
record node-list 0 0; record node-list-json 0 2; record node-list-raw 0 1
record node-info 1 0; record node-info-json 1 2
record node-stat 2 0; record node-stat-json 2 2
record node-recovery 3 0; record node-recovery-json 3 2; record node-throttle 4 0
record node-loglevel 5 0; record node-vnodes 7 0 # node md info: 256 KiB, left out
record vdi-list 8 0; record vdi-list-json 8 2; record vdi-list-raw 8 1; record vdi-list-one 9 0
record vdi-tree 10 0; record vdi-location 11 0; record vdi-location-obj 12 0
record vdi-location-snap 12 4; record vdi-track 13 0; record vdi-getattr 14 0
record vdi-lock-list 15 0; record vdi-read 16 0; record vdi-read-snap 16 4; record vdi-check 17 0
record cluster-info 18 0; record cluster-info-json 18 2; record cluster-scrub 19 0
record cluster-check 20 0
ls -l $out | awk '{print $5, $9}'
