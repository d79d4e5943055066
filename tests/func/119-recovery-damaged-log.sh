#!/usr/bin/env bash
# 119-recovery-damaged-log.sh - six sheep, 4:2 and 3 copies: a killed sheep's write-ahead log gets a flipped byte in its middle; it restarts, says what it dropped, the fragments it could have touched are rebuilt from peers, and every byte reads back right through it.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

sd_start_cluster 6 || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
rec_mkvdi 0 e42 4:2 $((16 * MiB)) $((8 * MiB)) || bail "4:2 VDI with data"
rec_mkvdi 1 r3 3 $((16 * MiB)) $((8 * MiB)) || bail "3-copy VDI with data"
rec_wait_done 0 6 1 60 || bail "initial recovery never settled"

# Small writes, so node 2's log holds many records after its last checkpoint.
RANDOM=108
for i in $(seq 1 40); do
	for v in e42 r3; do
		off=$(( (RANDOM * 32768 + RANDOM) % (8 * MiB - 5000) ))
		head -c 4000 /dev/urandom >"$SD_TEST_DIR/chunk"
		dogn $((i % 6)) vdi write "$v" "$off" 4000 <"$SD_TEST_DIR/chunk" || not_ok "write $v"
		dd if="$SD_TEST_DIR/chunk" of="$SD_TEST_DIR/$v.ref" bs=64k oflag=seek_bytes seek="$off" conv=notrunc status=none
	done
done
e0=$(rec_epoch 0)
sd_kill 2
wal=$(ls -S "$(sd_dir 2)"/wal.* | head -1)
size=$(stat -c %s "$wal")
log "node 2's log $wal: $size bytes"
check "node 2's log holds records" test "$size" -gt 65536
# A byte inside the payload of the first record past the middle.
at=$(python3 - "$wal" <<'EOF'
import sys
d = open(sys.argv[1], "rb").read()
o = d.find(b"SWR1", len(d) // 2)
print(o + 40 + 100 if o >= 0 else -1)
EOF
)
check "found a record in the middle of the log" test "$at" -gt 0
python3 -c "
import sys
f = open('$wal', 'r+b'); f.seek($at); b = f.read(1); f.seek($at); f.write(bytes([b[0] ^ 0x5a]))"
log "flipped the byte at $at"

sd_start 2 || bail "node 2 did not restart"
check "node 2 said what it dropped from its log" grep -q "log: record lsn .* damaged\|log damaged" \
	"$(sd_dir 2)/sheep.log"
grep -E "log: |log damaged" "$(sd_dir 2)/sheep.log" | head -5 | sed 's/^/# /'
rec_wait_done 0 6 $((e0 + 1)) 120 || not_ok "recovery after the restart"
rec_check_read 2 e42 "through the restarted sheep"
rec_check_read 2 r3 "through the restarted sheep"
rec_check_read 4 e42 "through another sheep"
out=$(rec_census --verify 0 1 2 3 4 5)
grep '^short' <<<"$out" | sed 's/^/# /'
check_eq "every object at full redundancy again" 0 "$(rec_summary short "$out")"
sd_done
