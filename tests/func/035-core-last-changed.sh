#!/usr/bin/env bash
# 035-core-last-changed.sh - EC range writes send nothing to the data fragments they leave unchanged (docs/architecture.md, "Unchanged fragments"): those stay at the version they last changed, every fragment a write makes records it, and readers count a data fragment at its recorded version as part of the newest generation. Every acknowledged write reads back at once through another sheep with fragments up to hundreds of writes behind; the records on disk are what the writes made; a fragment that would fall more than 255 versions behind gets a bump; a coordinator killed after its acknowledgement or before it leaves each range wholly old or new; a holder that missed writes to its fragment is never read; dog vdi check repairs silent damage in a parity and in a data fragment behind it, keeping versions and records; recovery keeps the records (two more sheep killed after it, everything still reads back); a restart of every sheep changes nothing.
# timeout: 600
. "$SD_TOP/tests/func/lib.sh"
. "$SD_TOP/tests/func/crash_lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

export SHEEP_TEST_CRASH_FILE=$SD_TEST_DIR/crash
HDR="$SD_TOP/tests/func/frag_hdr.py"
N=7
SIZE=$((16 * MiB))
sd_start_cluster $N || bail "seven sheep did not form a cluster"
check "format 4:2" dogn 0 cluster format -c 4:2
check "create 4:2 VDI" dogn 0 vdi create v 16M
sd_random "$SD_TEST_DIR/cur" $SIZE
check "write 16 MiB" dogn 0 vdi write v 0 $SIZE <"$SD_TEST_DIR/cur"
vdi_sha() { dogn "$1" vdi read v 0 $SIZE | sha256sum | cut -d' ' -f1; }
vid=$(dogn 0 vdi list -r | awk '$2 == "v" { print $8 }')
[ -n "$vid" ] || bail "VDI id"
oid_of() { printf '%016x' $(( (0x$vid << 32) + $1 )); }
# hdrs OBJ: "IDX VERSION LC DELTAS..." of every fragment file of data
# object OBJ in the stores, by index.
hdrs() {
	local f=() i
	for ((i = 0; i < N; i++)); do
		f+=($(ls "$(sd_dir $i)/obj/" 2>/dev/null | grep "^$(oid_of "$1")_" |
			sed "s|^|$(sd_dir $i)/obj/|"))
	done
	python3 "$HDR" "${f[@]}" | sort -n
}
# hdr_field OBJ IDX COL: column COL (2 version, 3 record, 4.. deltas) of
# fragment IDX of OBJ.
hdr_field() { hdrs "$1" | awk -v i="$2" -v c="$3" '$1 == i { print $c; exit }'; }

# put SHEEP OFF LEN READER: write LEN random bytes at OFF through SHEEP,
# read them back at once through READER; counts mismatches in bad.
bad=0
put() {
	sd_random "$SD_TEST_DIR/chunk" "$2"
	if ! dogn "$1" vdi write v "$3" "$2" <"$SD_TEST_DIR/chunk"; then
		log "write of $2 bytes at $3 via sheep $1 failed"
		bad=$((bad + 1))
		return
	fi
	dd if="$SD_TEST_DIR/chunk" of="$SD_TEST_DIR/cur" bs=1 seek="$3" conv=notrunc status=none
	if ! dogn "$4" vdi read v "$3" "$2" | cmp -s - "$SD_TEST_DIR/chunk"; then
		log "write of $2 bytes at $3 via sheep $1 read back differently via sheep $4"
		bad=$((bad + 1))
	fi
}

# 1. Thirty writes into data fragment 0 of object 1 (its first MiB): the
#    three other data fragments are sent nothing, so they stay at the
#    version the whole write gave them, and fragment 0 and the parities
#    record them 30 versions behind.
v0=$(hdr_field 1 1 2)
for i in $(seq 0 29); do
	put $((i % N)) 4096 $((4 * MiB + i * 8192)) $(((i + 3) % N))
done
check_eq "30 writes into one data fragment, each read back at once via another sheep" 0 "$bad"
out=$(hdrs 1)
log "object 1: $(tr '\n' '|' <<<"$out")"
check_eq "the unchanged data fragments are still at the whole write's version" \
	"$v0 $v0 $v0" "$(awk '$1 >= 1 && $1 <= 3 { printf "%s%s", s, $2; s = " " }' <<<"$out")"
check_eq "fragment 0 and the parities are 30 versions on, with the same record" \
	"$((v0 + 30)) 1 0 30 30 30|$((v0 + 30)) 1 0 30 30 30|$((v0 + 30)) 1 0 30 30 30" \
	"$(awk '$1 == 0 || $1 >= 4 { printf "%s%s %s %s %s %s %s", s, $2, $3, $4, $5, $6, $7; s = "|" }' <<<"$out")"

# 2. Writes all over the volume, each read back at once via another
#    sheep, fragments of one object changing at different versions.
RANDOM=3535
bad=0
for i in $(seq 1 60); do
	len=$((512 + RANDOM % 12288))
	off=$(( (RANDOM * 32768 + RANDOM) % (SIZE - len) ))
	put $((i % N)) $len $off $(((i + 1 + i % 4) % N))
done
check_eq "60 writes anywhere, each read back at once via another sheep" 0 "$bad"
check_eq "whole VDI matches the reference (via sheep 2)" "$(sd_sha "$SD_TEST_DIR/cur")" "$(vdi_sha 2)"

# 3. 300 writes into fragment 0 of object 2: a record's delta is a byte,
#    so the other data fragments take a version-only write once they
#    would fall 256 behind; every delta stays below 256.
bad=0
for i in $(seq 0 299); do
	sd_random "$SD_TEST_DIR/chunk" 512
	dogn $((i % N)) vdi write v $((8 * MiB + (i % 64) * 4096)) 512 <"$SD_TEST_DIR/chunk" ||
		bad=$((bad + 1))
	dd if="$SD_TEST_DIR/chunk" of="$SD_TEST_DIR/cur" bs=1 seek=$((8 * MiB + (i % 64) * 4096)) \
		conv=notrunc status=none
done
check_eq "300 writes into one data fragment" 0 "$bad"
out=$(hdrs 2)
log "object 2: $(tr '\n' '|' <<<"$out")"
top=$(awk '$1 == 4 { print $2 }' <<<"$out")
check "the unchanged data fragments were bumped once 255 behind" \
	awk -v t="$top" '$1 >= 1 && $1 <= 3 && (t - $2 > 255 || $2 == t) { e = 1 } END { exit e }' <<<"$out"
check "every recorded delta is what the fragment's version says" \
	awk -v t="$top" '$1 == 4 { for (k = 1; k <= 3; k++) d[k] = $(4 + k) }
		$1 >= 1 && $1 <= 3 { v[$1] = $2 } END { for (k = 1; k <= 3; k++) if (t - v[k] != d[k]) exit 1 }' \
	<<<"$out"
check_eq "object 2 reads back (via sheep 5)" \
	"$(dd if="$SD_TEST_DIR/cur" bs=1M skip=8 count=4 status=none | sha256sum | cut -d' ' -f1)" \
	"$(dogn 5 vdi read v $((8 * MiB)) $((4 * MiB)) | sha256sum | cut -d' ' -f1)"

# 4. A coordinator killed after its acknowledgement (before any commit),
#    one killed before it, and one killed once its data prepare, sent
#    ahead, answered with the old bytes (PEER_WH_OLD) and before the
#    parity prepares, writing into fragments whose neighbours are many
#    writes behind: the acknowledged write reads back at once via another
#    sheep, the others read wholly old or new, and all stay so once the
#    dead sheep returns.
for mode in after-ack before-ack after-old; do
	name="killed $mode"
	off=$((4 * MiB + 2 * MiB + 8192)) # object 1, data fragment 2
	[ $mode = before-ack ] && off=$((4 * MiB + 3 * MiB + 4096))
	[ $mode = after-old ] && off=$((4 * MiB + 1 * MiB + 12288))
	crash_find_coordinator "$name" $off 4096
	c=$CRASH_C
	crash_write "$name" $mode $off 4096
	if [ $mode = after-ack ]; then
		check_eq "$name: the coordinator acknowledged, then died" "$c 0" "$CRASH_DEAD $CRASH_RC"
	else
		check_eq "$name: the coordinator died unacknowledged" "$c 2" "$CRASH_DEAD $CRASH_RC"
	fi
	[ $CRASH_DEAD -ge 0 ] || continue
	r=$(((CRASH_DEAD + 1) % N))
	got=$(vdi_sha $r)
	if [ $mode = after-ack ]; then
		check_eq "$name: the acknowledged write reads back at once (sheep $r)" "$CRASH_NEW" "$got"
	elif [ "$got" != "$CRASH_NEW" ]; then
		check_eq "$name: reads wholly old or wholly new" "$CRASH_OLD" "$got"
	fi
	sleep 2.3
	check_eq "$name: the same after the grace, via another sheep" "$got" "$(vdi_sha $(((r + 2) % N)))"
	sd_start "$CRASH_DEAD" || bail "sheep $CRASH_DEAD did not restart"
	sd_wait_nodes 0 $N || not_ok "$name: sheep $CRASH_DEAD did not rejoin"
	check_eq "$name: the same after sheep $CRASH_DEAD returned (via it)" "$got" "$(vdi_sha $CRASH_DEAD)"
	[ "$got" = "$CRASH_NEW" ] && cp "$SD_TEST_DIR/new" "$SD_TEST_DIR/cur"
done
rec_wait_done 0 $N 1 60 >/dev/null || log "recovery did not settle"

# 5. A holder that misses writes to its fragment: the sheep holding data
#    fragment 1 of object 3 is killed, fragment 1's range is written (to
#    its new holder) and the sheep returns with its copy behind. Reads at
#    once, before recovery moves anything, never serve that copy.
h=$(for ((i = 0; i < N; i++)); do [ -e "$(sd_dir $i)/obj/$(oid_of 3)_01" ] && echo $i; done | head -1)
[ -n "$h" ] || bail "no holder of object 3 fragment 1"
log "object 3 fragment 1 is on sheep $h"
sd_kill "$h"
w=$(((h + 1) % N))
sd_wait_nodes $w $((N - 1)) || not_ok "membership did not drop sheep $h"
bad=0
for i in 0 1 2 3; do put $w 4096 $((12 * MiB + MiB + i * 65536)) $(((w + 1 + i) % N)); done
check_eq "writes into a fragment whose holder is down read back" 0 "$bad"
sd_start "$h" || bail "sheep $h did not restart"
sd_wait_nodes 0 $N || not_ok "sheep $h did not rejoin"
check_eq "with the holder back, its fragment behind, the VDI reads the new bytes (via it)" \
	"$(sd_sha "$SD_TEST_DIR/cur")" "$(vdi_sha "$h")"
check_eq "... and via another sheep" "$(sd_sha "$SD_TEST_DIR/cur")" "$(vdi_sha $(((h + 3) % N)))"
rec_wait_done 0 $N 1 120 >/dev/null || log "recovery did not settle"

# 5b. dog vdi check repairs silent damage (checksums rewritten to match)
#     in a parity and in a data fragment many writes behind its parity,
#     writing each back at its own version with the record it had.
PLANT="$SD_TOP/tests/func/chk_plant.py"
frag_file() { local i; for ((i = 0; i < N; i++)); do
	[ -e "$(sd_dir $i)/obj/$(oid_of $1)_0$2" ] && { echo "$(sd_dir $i)/obj/$(oid_of $1)_0$2"; return; }
done; }
before=$(hdrs 2)
p4=$(frag_file 2 4) d3=$(frag_file 2 3)
[ -n "$p4" ] && [ -n "$d3" ] || bail "object 2's fragments 4 and 3"
python3 "$PLANT" --silent "$p4" 4096 >/dev/null || bail "plant parity"
out=$(dogn 0 vdi check v 2>&1)
log "$(tr '\n' '|' <<<"$out")"
check "a parity that does not match the data is found and fixed" \
	grep -q "^fixed parity mismatch in $(oid_of 2), copy index 4 on " <<<"$out"
python3 "$PLANT" --silent "$d3" 8191 >/dev/null || bail "plant data"
out=$(dogn 0 vdi check v 2>&1)
log "$(tr '\n' '|' <<<"$out")"
check "a data fragment behind its parity that disagrees with both is found and fixed" \
	grep -q "^fixed data mismatch in $(oid_of 2), copy index 3 on " <<<"$out"
check_eq "both are back at their versions with their records" "$before" "$(hdrs 2)"
check_eq "the VDI reads back (via sheep 4)" "$(sd_sha "$SD_TEST_DIR/cur")" "$(vdi_sha 4)"

# 6. Recovery rebuilds what a dead sheep held, records included: after it,
#    every object is at full redundancy on the six others, dog vdi check
#    finds nothing, and with two more sheep killed (p = 2) the volume
#    still reads back.
e0=$(rec_epoch 0)
sd_kill 6
sd_wait_nodes 0 6 || bail "sheep 0 still lists sheep 6"
check "recovery completes on the six survivors" rec_wait_done 0 6 $((e0 + 1)) 120
out=$(rec_census --verify 0 1 2 3 4 5)
grep '^short' <<<"$out" | sed 's/^/# /'
check_eq "every object at full redundancy, counting fragments at their last change" 0 \
	"$(rec_summary short "$out")"
out=$(dogn 0 vdi check v 2>&1)
check "dog vdi check finds nothing" grep -q "object(s) checked: 0 problem(s) found" <<<"$out"
sd_kill 5
sd_kill 4
sd_wait_nodes 0 4 || log "sheep 0 still lists a killed sheep"
check_eq "two more killed: the VDI reads back (via sheep 1)" "$(sd_sha "$SD_TEST_DIR/cur")" "$(vdi_sha 1)"

# 7. Every sheep killed at once and restarted.
for ((i = 0; i < 4; i++)); do sd_kill $i; done
for ((i = 0; i < N; i++)); do sd_start $i || bail "sheep $i did not restart"; done
sd_wait_nodes 0 $N || not_ok "the cluster did not re-form"
check_eq "after a restart of every sheep the VDI matches (via sheep 3)" \
	"$(sd_sha "$SD_TEST_DIR/cur")" "$(vdi_sha 3)"
bad=0
put 2 4096 $((4 * MiB + 65536)) 5
check_eq "and takes a write, read back at once" 0 "$bad"
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
