#!/usr/bin/env bash
# powerloss.sh - the long manual run of the power-loss test: tests/func/022-core-power-loss.sh with many rounds (every sheep powered off at a random moment, its unsynced writes forgotten, restarted, checked).
#
# Usage: bench/powerloss.sh [-r ROUNDS] [-b BUILD] [--control]
#   -r ROUNDS  power-offs (default 30; CI runs 3)
#   -b BUILD   build directory with sheep and dog (default build)
#   --control  run the sheep with -n (no syncs): acknowledged writes must
#              then be lost, showing the test can fail
# Run it in a private network namespace:
#   unshare --net sh -c 'ip link set lo up; bench/powerloss.sh -r 50'
# Prints the test's TAP lines; exits non-zero when any check failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
rounds=30 build=build opts=
while [ $# -gt 0 ]; do
	case "$1" in
	-r) rounds=$2; shift ;;
	-b) build=$2; shift ;;
	--control) opts=-n ;;
	-h|--help) sed -n '2,11p' "$0"; exit 0 ;;
	*) echo "powerloss: unknown option $1" >&2; exit 64 ;;
	esac
	shift
done
case "$build" in /*) ;; *) build="$top/$build" ;; esac
dir=$(mktemp -d /tmp/powerloss.XXXXXX)
trap 'rm -rf "$dir"' EXIT
PL_SHEEP_OPTS=$opts PL_ROUNDS=$rounds SHEEP=$build/sheep/sheep DOG=$build/dog/dog SD_BUILD=$build SD_TEST_DIR=$dir \
	SD_PORT_BASE=$((10000 + ${SD_PORT_OFFSET:-0})) SD_NBD_PORT_BASE=$((10050 + ${SD_PORT_OFFSET:-0})) \
	SD_TOP=$top bash "$top/tests/func/022-core-power-loss.sh" 2> >(grep -v ' Killed ' >&2)
