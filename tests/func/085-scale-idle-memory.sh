#!/usr/bin/env bash
# 085-scale-idle-memory.sh - an idle sheep gives back the buffers of the I/O it served: after 64 MiB written and read on 6 sheep (4:2), every sheep's RSS is under 30 MiB (without the trim glibc's arenas kept 33-81 MiB here).
# timeout: 180
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
LIMIT_KB=$((30 << 10)) # the issue's target for an idle sheep

sd_start_cluster 6 || bail "six sheep"
dogn 0 cluster format -c 4:2 || bail "format 4:2"
sd_random "$SD_TEST_DIR/d" $((64 << 20))
dogn 0 vdi create v 64M || bail "vdi create"
check "vdi write 64 MiB" dogn 0 vdi write v <"$SD_TEST_DIR/d"
dogn 3 vdi read v >"$SD_TEST_DIR/r"
check_eq "read back through sheep 3: same sha256" "$(sd_sha "$SD_TEST_DIR/d")" "$(sd_sha "$SD_TEST_DIR/r")"
sleep 5 # two trims (every 2 s)
for i in 0 1 2 3 4 5; do
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/${SD_PIDS[$i]}/status")
	log "sheep $i: VmRSS $rss kB, $(awk '/^Threads/ { print $2 }' "/proc/${SD_PIDS[$i]}/status") threads"
	check "sheep $i: idle RSS $rss kB < $LIMIT_KB kB" test "$rss" -lt "$LIMIT_KB"
done
sd_done
