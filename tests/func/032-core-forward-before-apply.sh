#!/usr/bin/env bash
# 032-core-forward-before-apply.sh - a coordinator that has not applied a VDI's creation yet (its cluster messages applied 200 ms late) gets that VDI's first writes forwarded: it waits for its table to catch up instead of answering "No VDI found"; every VDI is created and reads back what was written.
# timeout: 300
. "$SD_TOP/tests/func/lib.sh"

# The sanitized sheep when the run provides one (make check).
[ -n "$SAN_SHEEP" ] && [ -x "$SAN_SHEEP" ] && export SD_SHEEP_BIN=$SAN_SHEEP && log "using $SAN_SHEEP"

N=9
sd_start 0 || bail "sheep 0"
sd_start 1 || bail "sheep 1"
SHEEP_TEST_APPLY_DELAY_MS=200 sd_start 2 || bail "sheep 2"
sd_wait_nodes 0 3 || bail "three sheep did not form a cluster"
check "format, 3 copies" dogn 0 cluster format -c 3
# With 3 copies on 3 sheep each object's first holder (its coordinator) is
# any of them: about a third of these inodes' first writes are forwarded
# to sheep 2 before it knows the VDI.
made=0
for k in $(seq $N); do
	dogn 0 vdi create "f$k" 8M >"$SD_TEST_DIR/create$k.log" 2>&1 && made=$((made + 1))
done
sed 's/^/# /' "$SD_TEST_DIR"/create*.log | head -10
check_eq "all $N VDIs created through sheep 0" "$N" "$made"
fails=0
for k in $(seq $N); do
	sd_random "$SD_TEST_DIR/d$k" $((1 << 20))
	dogn 1 vdi write "f$k" 0 $((1 << 20)) <"$SD_TEST_DIR/d$k" || fails=$((fails + 1))
done
check_eq "a MiB written to each through sheep 1" 0 "$fails"
bad=0
for k in $(seq $N); do
	[ "$(dogn 2 vdi read "f$k" 0 $((1 << 20)) | sha256sum | cut -d' ' -f1)" = "$(sd_sha "$SD_TEST_DIR/d$k")" ] ||
		bad=$((bad + 1))
done
check_eq "each reads back through sheep 2 (sha256)" 0 "$bad"
check_eq "sheep 2 lists the $N VDIs" "$N" "$(dogn 2 vdi list -r | grep -c '^= f')"
for i in 0 1 2; do check "sheep $i alive" sd_alive $i; done
if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$SD_TEST_DIR"/sheep*.out 2>/dev/null; then
	not_ok "sanitizer reports"; grep -hE -A5 "Sanitizer|runtime error" "$SD_TEST_DIR"/sheep*.out | head -30 | sed 's/^/# /'
else
	ok "no sanitizer reports"
fi
sd_done
