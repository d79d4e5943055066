#!/usr/bin/env bash
# 031-core-peer-in-place.sh - peer connections served in place by their own thread: pipelines mixing peer and client requests answered by id with the bytes written, more connections than the 128-thread cap, threads gone when their connections close, garbage after a request served in place answered or closed by the loop, and a sheep holding such connections stops at SIGTERM.
# timeout: 300
. "$SD_TOP/tests/func/lib.sh"

# The sanitized sheep when the run provides one (make check).
[ -n "$SAN_SHEEP" ] && [ -x "$SAN_SHEEP" ] && export SD_SHEEP_BIN=$SAN_SHEEP && log "using $SAN_SHEEP"

sd_start_cluster 3 || bail "three sheep did not form a cluster"
check "format, 3 copies" dogn 0 cluster format -c 3
check "create VDI" dogn 0 vdi create v 8M
sd_random "$SD_TEST_DIR/data" $((4 << 20))
check "write object 0" dogn 0 vdi write v 0 $((4 << 20)) <"$SD_TEST_DIR/data"
vid=$(dogn 0 vdi list -r v | awk '{print $8}')

for i in 0 1 2; do
	python3 "$SD_TOP/tests/func/peer_inplace.py" check "$(sd_port $i)" "$vid" "$SD_TEST_DIR/data" \
		"${SD_PIDS[$i]}" 160 >"$SD_TEST_DIR/inplace$i.log" 2>&1
	rc=$?
	sed 's/^/# /' "$SD_TEST_DIR/inplace$i.log" | head -20
	check_eq "sheep $i: 160 peer connections, pipelines and re-reads answered with the bytes written" 0 "$rc"
	check "sheep $i alive" sd_alive $i
done
check_eq "the VDI reads back through sheep 2" "$(sd_sha "$SD_TEST_DIR/data")" \
	"$(dogn 2 vdi read v 0 $((4 << 20)) | sha256sum | cut -d' ' -f1)"

# A stop while 40 connections sit in place, each thread blocked in recv.
python3 "$SD_TOP/tests/func/peer_inplace.py" hold "$(sd_port 1)" "$vid" "$SD_TEST_DIR/data" 40 120 \
	>"$SD_TEST_DIR/hold.log" 2>&1 &
holder=$!
for t in $(seq 100); do grep -q held "$SD_TEST_DIR/hold.log" && break; sleep 0.1; done
check "40 connections held in place" grep -q "held 40" "$SD_TEST_DIR/hold.log"
start=$(date +%s%N)
kill -TERM "${SD_PIDS[1]}"
wait "${SD_PIDS[1]}"
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
unset "SD_PIDS[1]"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
check_eq "sheep 1 exits 0 at SIGTERM (in $ms ms)" 0 "$rc"
check "within 10 s" test "$ms" -lt 10000
check "sheep 1 logs a clean stop" grep -q "sheep stopped" "$(sd_dir 1)/sheep.log"
if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SD_TEST_DIR"/sheep*.out 2>/dev/null; then
	not_ok "sanitizer reports"; grep -hE -A5 "Sanitizer|runtime error" "$SD_TEST_DIR"/sheep*.out | head -30 | sed 's/^/# /'
else
	ok "no sanitizer reports"
fi
sd_done
