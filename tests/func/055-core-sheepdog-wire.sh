#!/usr/bin/env bash
# 055-core-sheepdog-wire.sh - three sheep driven with raw Sheepdog 1.0-format requests (tests/func/sd1_wire.py) for each internal op dog uses: sizes and fields of the replies; then dog node log level get/set.
# timeout: 180
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

sd_start_cluster 3 || bail "three sheep did not form a cluster"
python3 "$SD_TOP/tests/func/sd1_wire.py" "$(sd_port 0)" "$(sd_port 1)" "$(sd_port 2)" >"$SD_TEST_DIR/wire.out" 2>&1
rc=$?
while IFS= read -r line; do
	case "$line" in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*) not_ok "${line#not ok - }" ;;
	*) log "$line" ;;
	esac
done <"$SD_TEST_DIR/wire.out"
check_eq "sd1_wire.py ran to its end" 0 "$rc"
check_eq "it made 31 checks" 31 "$(grep -c '^\(not \)\?ok - ' "$SD_TEST_DIR/wire.out")"
for i in 0 1 2; do
	pid=${SD_PIDS[$i]}
	for ((t = 0; t < 100; t++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	check "sheep $i stopped (KILL_NODE / SHUTDOWN)" bash -c "! kill -0 $pid 2>/dev/null"
	unset "SD_PIDS[$i]"
done

# dog node log level get / set (Sheepdog's GET_LOGLEVEL 0xb9, SET_LOGLEVEL
# 0xba) on one restarted sheep (it waits for the others: the op still works).
sd_start 0 || bail "sheep 0 did not restart"
check_eq "node log level get: the level sheep started with" debug "$(dogn 0 node log level get)"
check "node log level set info" dogn 0 node log level set info
check_eq "node log level get: info" info "$(dogn 0 node log level get)"
dogn 0 node log level set loud 2>"$SD_TEST_DIR/err"
check_eq "node log level set loud: usage error" 64 "$?"
check "it names the bad level" grep -q "invalid log level: loud" "$SD_TEST_DIR/err"
check "the sheep logged the change" grep -qs "log level set to info" "$SD_TEST_DIR/sheep0.out" "$(sd_dir 0)/sheep.log"
sd_done
