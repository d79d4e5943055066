#!/usr/bin/env bash
# 017-core-read-after-ack.sh - every acknowledged write is read back at once through another gateway (4:2 and 3 copies); dog node stat shows the write-ahead log sharing syncs.
# timeout: 400
. "$SD_TOP/tests/func/lib.sh"

MiB=$((1 << 20))
sd_start_cluster 6 || bail "six sheep did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2

RANDOM=1616
for spec in "4:2 ec" "3 rep"; do
	set -- $spec
	pol=$1 vol=$2
	dogn 0 vdi create -c "$pol" "$vol" 16M || not_ok "create $vol"
	sd_random "$SD_TEST_DIR/$vol.ref" $((8 * MiB))
	dogn 1 vdi write "$vol" 0 $((8 * MiB)) <"$SD_TEST_DIR/$vol.ref" || not_ok "fill $vol"
	bad=0
	for i in $(seq 1 60); do
		off=$(( (RANDOM * 32768 + RANDOM) % (8 * MiB - 9000) ))
		len=$(( 1 + RANDOM % 8192 ))
		w=$(( i % 6 ))
		r=$(( (w + 1 + i % 5) % 6 ))
		sd_random "$SD_TEST_DIR/chunk" "$len"
		dogn "$w" vdi write "$vol" "$off" "$len" <"$SD_TEST_DIR/chunk" || { bad=$((bad + 1)); continue; }
		# acknowledged: the very next read, through another sheep, sees it
		dogn "$r" vdi read "$vol" "$off" "$len" >"$SD_TEST_DIR/back" || { bad=$((bad + 1)); continue; }
		if ! cmp -s "$SD_TEST_DIR/chunk" "$SD_TEST_DIR/back"; then
			log "$vol: write of $len bytes at $off through sheep $w read back differently through sheep $r"
			bad=$((bad + 1))
		fi
		dd if="$SD_TEST_DIR/chunk" of="$SD_TEST_DIR/$vol.ref" bs=64k oflag=seek_bytes seek="$off" conv=notrunc status=none
	done
	check_eq "$pol: 60 writes, each read back at once through another gateway" 0 "$bad"
	dogn 3 vdi read "$vol" 0 $((8 * MiB)) >"$SD_TEST_DIR/$vol.all" || not_ok "read $vol"
	check_eq "$pol: whole range matches the reference" "$(sd_sha "$SD_TEST_DIR/$vol.ref")" \
		"$(sd_sha "$SD_TEST_DIR/$vol.all")"
done

# The log counters (the test sheep run -n: no syncs, but records count).
out=$(dogn 0 node stat -r) || not_ok "dog node stat -r"
log "$out"
rows=$(echo "$out" | awk 'NR > 1' | wc -l)
check_eq "dog node stat -r has one row per sheep" 6 "$rows"
check "every sheep logged records" \
	sh -c "echo \"$out\" | awk 'NR > 1 && \$4 == 0 { bad = 1 } END { exit bad }'"
check "dog node stat prints its table" sh -c "'$DOG' node stat -a 127.0.0.1 -p $(sd_port 2) | grep -q Rec/batch"
sd_done
