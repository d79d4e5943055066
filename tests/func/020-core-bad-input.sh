#!/usr/bin/env bash
# 020-core-bad-input.sh - thousands of malformed frames (garbage, truncated, oversize, unknown opcodes, bad versions, out-of-range offsets) to a sheep; it keeps serving and writes nothing.
# timeout: 400
. "$SD_TOP/tests/func/lib.sh"

# The sanitized sheep when the run provides one (make check).
[ -n "$SAN_SHEEP" ] && [ -x "$SAN_SHEEP" ] && export SD_SHEEP_BIN=$SAN_SHEEP && log "using $SAN_SHEEP"
command -v python3 >/dev/null || { skip "python3 not installed"; sd_done; exit 0; }

sd_start_cluster 3 || bail "three sheep did not form a cluster"
check "format 2:1" dogn 0 cluster format -c 2:1
check "create VDI" dogn 0 vdi create -c 2:1 target 32M
sd_random "$SD_TEST_DIR/data" $((6 << 20))
check "write 6 MiB" dogn 0 vdi write target 333 $((6 << 20)) <"$SD_TEST_DIR/data"
want=$(sd_sha "$SD_TEST_DIR/data")
vid=$(dogn 0 vdi list -r target | awk '{print $8}')
objs_before=$(for i in 0 1 2; do find "$(sd_dir $i)/obj" -type f | sort; done | sha256sum)
bytes_before=$(for i in 0 1 2; do find "$(sd_dir $i)/obj" -type f -exec sha256sum {} + | sort; done | sha256sum)

SAN_LOG_MARK=$(cat "$SD_TEST_DIR"/sheep*.out 2>/dev/null | wc -l)
for i in 0 1; do
	python3 "$SD_TOP/tests/func/core_badproto.py" "$(sd_port $i)" 2500 $((i + 7)) "$vid" >"$SD_TEST_DIR/fuzz$i.log" 2>&1
	rc=$?
	sed 's/^/# /' "$SD_TEST_DIR/fuzz$i.log" | grep -v '^# # 0 checks' | head -20
	check_eq "sheep $i answers every malformed frame with an error or a close" 0 "$rc"
done
for i in 0 1 2; do check "sheep $i survived" sd_alive $i; done
check_eq "the data still reads back" "$want" "$(dogn 2 vdi read target 333 $((6 << 20)) | sha256sum | cut -d' ' -f1)"
check_eq "no fragment was created or removed" "$objs_before" \
	"$(for i in 0 1 2; do find "$(sd_dir $i)/obj" -type f | sort; done | sha256sum)"
check_eq "no fragment changed" "$bytes_before" \
	"$(for i in 0 1 2; do find "$(sd_dir $i)/obj" -type f -exec sha256sum {} + | sort; done | sha256sum)"
check_eq "still 3 nodes" 3 "$(dogn 1 node list -r | grep -c .)"
if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SD_TEST_DIR"/sheep*.out 2>/dev/null; then
	not_ok "sanitizer reports"; grep -hE -A5 "Sanitizer|runtime error" "$SD_TEST_DIR"/sheep*.out | head -30 | sed 's/^/# /'
else
	ok "no sanitizer reports"
fi
sd_done
