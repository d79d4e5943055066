#!/usr/bin/env bash
# powerloss.sh - the long manual run of the power-loss test: tests/func/022-core-power-loss.sh with many rounds (every sheep powered off at a random moment, its unsynced writes forgotten, restarted, checked).
#
# Usage: bench/powerloss.sh [-r ROUNDS] [-n RUNS] [-b BUILD] [--keep] [--control]
#   -r ROUNDS  power-offs per run (default 30; CI runs 3)
#   -n RUNS    runs one after another (default 1), stopping at the first
#              that fails; prints "runs: P passed, F failed" at the end
#   -b BUILD   build directory with sheep and dog (default build)
#   --keep     log every acknowledged write and stop a run at its first
#              mismatch, keeping its directory (stores, sheep logs,
#              acked.log, the reference and what was read; path printed)
#   --control  run the sheep with -n (no syncs): acknowledged writes must
#              then be lost, showing the test can fail
# Run it in a private network namespace:
#   unshare --net sh -c 'ip link set lo up; bench/powerloss.sh -r 70 -n 10 --keep'
# Prints the test's TAP lines; exits non-zero when any check failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
rounds=30 build=build opts= runs=1 keep=
while [ $# -gt 0 ]; do
	case "$1" in
	-r) rounds=$2; shift ;;
	-n) runs=$2; shift ;;
	-b) build=$2; shift ;;
	--keep) keep=1 ;;
	--control) opts=-n ;;
	-h|--help) sed -n '2,17p' "$0"; exit 0 ;;
	*) echo "powerloss: unknown option $1" >&2; exit 64 ;;
	esac
	shift
done
case "$build" in /*) ;; *) build="$top/$build" ;; esac
case "$runs" in '' | *[!0-9]*) echo "powerloss: -n wants a number of runs" >&2; exit 64 ;; esac
passed=0 failed=0
for ((run = 1; run <= runs; run++)); do
	dir=$(mktemp -d /tmp/powerloss.XXXXXX)
	[ "$runs" -gt 1 ] && echo "# run $run of $runs in $dir"
	PL_KEEP=$keep PL_SHEEP_OPTS=$opts PL_ROUNDS=$rounds SHEEP=$build/sheep/sheep DOG=$build/dog/dog \
		SD_BUILD=$build SD_TEST_DIR=$dir SD_PORT_BASE=$((10000 + ${SD_PORT_OFFSET:-0})) \
		SD_NBD_PORT_BASE=$((10050 + ${SD_PORT_OFFSET:-0})) \
		SD_TOP=$top bash "$top/tests/func/022-core-power-loss.sh" 2> >(grep -v ' Killed ' >&2)
	rc=$?
	if [ $rc = 0 ]; then
		passed=$((passed + 1))
		rm -rf "$dir"
		continue
	fi
	failed=$((failed + 1))
	if [ -n "$keep" ]; then echo "# run $run failed: kept $dir"; else rm -rf "$dir"; fi
	break
done
[ "$runs" -gt 1 ] && echo "runs: $passed passed, $failed failed"
[ $failed = 0 ]
