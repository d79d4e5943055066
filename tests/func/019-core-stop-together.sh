#!/usr/bin/env bash
# 019-core-stop-together.sh - sixteen sheep stopped together with SIGTERM all exit within seconds (Sheepdog: ~2 s; this project took 60+ s while each stopping sheep waited 30 s on every stopping peer) and each logs a clean stop.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

N=16
sd_start_cluster $N --nbd off || bail "$N sheep did not form a cluster"
check "format 2:1" dogn 0 cluster format -c 2:1
check "vdi create v 64M" dogn 0 vdi create v 64M
sd_random "$SD_TEST_DIR/data" $((16 << 20))
check "write 16 MiB" dogn 0 vdi write v 0 <"$SD_TEST_DIR/data"
check_eq "read back" "$(sd_sha "$SD_TEST_DIR/data")" "$(dogn 3 vdi read v 0 $((16 << 20)) | sd_sha /dev/stdin)"

start=$(date +%s%N)
for ((i = 0; i < N; i++)); do kill -TERM "${SD_PIDS[$i]}"; done
codes=""
for ((i = 0; i < N; i++)); do wait "${SD_PIDS[$i]}"; codes+="$? "; unset "SD_PIDS[$i]"; done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
log "all $N sheep exited in $ms ms after SIGTERM"
check "all $N sheep exit within 30 s of SIGTERM (took $ms ms; 60-160 s before the fix)" test "$ms" -lt 30000
check_eq "every sheep exits 0" "$(printf '0 %.0s' $(seq $N))" "$codes"
stopped=0
for ((i = 0; i < N; i++)); do grep -q "sheep stopped" "$(sd_dir "$i")/sheep.log" && stopped=$((stopped + 1)); done
check_eq "every sheep logs 'sheep stopped'" "$N" "$stopped"

sd_done
