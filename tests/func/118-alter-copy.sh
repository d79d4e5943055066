#!/usr/bin/env bash
# 118-alter-copy.sh - dog vdi alter-copy: 4:2 -> 3 copies -> 4:2 online under fio verify over NBD, data by sha256 and disk bytes per policy, bad input refused with nothing changed, and the converting sheep killed -9 mid-conversion.
# timeout: 900
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need fio
fio --enghelp=nbd >/dev/null 2>&1 || bail "fio has no nbd engine (scripts/install-deps)"

MiB=$((1 << 20))
# A pause per object moved (test hook, gateway/convert.c), so that a
# conversion of 16 objects lasts seconds: long enough to run fio against
# it and to kill the converting sheep in the middle.
export SHEEP_TEST_CONVERT_MS=250
nbd_cluster 6 4:2
nbd_wait_nbd 0 || bail "no NBD on sheep 0"

run() {
	"$@" >"$SD_TEST_DIR/out" 2>"$SD_TEST_DIR/err"
	rc=$?
	out=$(cat "$SD_TEST_DIR/out")
	err=$(cat "$SD_TEST_DIR/err")
}

# The VDI id of NAME (hex, as in object file names).
vid_of() { dogn 0 vdi list -r "$1" | awk -v n="$1" '$1 == "=" && $2 == n {print $8}'; }
# The policy dog vdi list shows for NAME (read from its inode).
list_policy() { dogn 0 vdi list -r "$1" | awk -v n="$1" '$1 == "=" && $2 == n {print $9}'; }
# Bytes on disk of VDI NAME's data objects in every store (both layouts:
# file names start with the 16-hex-digit object id, VDI id in digits 3-8).
data_bytes() {
	local v
	v=$(printf '%06x' "0x$(vid_of "$1")")
	find "$SD_TEST_DIR"/n*/obj -maxdepth 1 -name "00${v}*" -printf '%b\n' |
		awk '{s += $1 * 512} END {printf "%.0f\n", s}'
}
status() { dogn 0 vdi alter-copy "$1" 2>&1; }
# wait_converted NAME POLICY: until NAME's policy is POLICY with no conversion running.
wait_converted() {
	local t=0
	while [ $t -lt 600 ]; do
		[ "$(status "$1")" = "$1: policy $2" ] && return 0
		sleep 0.2; t=$((t + 1))
	done
	log "status of $1: $(status "$1")"
	return 1
}
# in_range X LO HI (integers)
in_range() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

# ---- data and disk bytes: 4:2 -> 3 -> 4:2 ----
check "create av 4:2 64M" dogn 0 vdi create -c 4:2 av 64M
sd_random "$SD_TEST_DIR/av" $((64 * MiB))
check "write 64 MiB to av" dogn 0 vdi write av <"$SD_TEST_DIR/av"
want=$(sd_sha "$SD_TEST_DIR/av")
sleep 1
b42=$(data_bytes av)
log "av 4:2: $b42 bytes on disk for $((64 * MiB)) of data"
check "4:2: about 1.5x the data on disk" in_range "$b42" $((96 * MiB * 95 / 100)) $((96 * MiB * 110 / 100))

# ---- bad input: a clear error, nothing changed ----
run dogn 0 vdi alter-copy -c 3 nosuch
dogn 0 vdi read nosuch >/dev/null 2>&1
check_eq "unknown VDI: the exit code of any dog command on an unknown VDI" "$?" "$rc"
check "unknown VDI: says not found" bash -c '[[ "$1" == *nosuch*"not found"* ]]' _ "$err"
run dogn 0 vdi alter-copy -c 4:2 av
check "same policy: exit 1" test "$rc" -eq 1
check "same policy: says it already is" bash -c '[[ "$1" == *"already 4:2"* ]]' _ "$err"
log "dog said: $err"
run dogn 0 vdi alter-copy -c 4:4 av
check "4:4 on 6 zones: exit 1" test "$rc" -eq 1
check "4:4 on 6 zones: names the zones" bash -c '[[ "$1" == *4:4*zones* ]]' _ "$err"
log "dog said: $err"
run dogn 0 vdi alter-copy -c 7 av
check "7 copies on 6 zones: refused" test "$rc" -ne 0
run dogn 0 vdi alter-copy -c 0 av
check "copies 0: usage error" test "$rc" -ne 0
check "create sv" dogn 0 vdi create -c 4:2 sv 16M
check "snapshot sv" dogn 0 vdi snapshot -s before sv
run dogn 0 vdi alter-copy -s before -c 3 sv
check "snapshot: exit 1" test "$rc" -eq 1
check "snapshot: says read-only" bash -c '[[ "$1" == *snapshot*read-only* ]]' _ "$err"
log "dog said: $err"
# A VDI with saved VM state (vm_state_size in its inode, as QEMU's savevm
# leaves it; written here with a Sheepdog-protocol WRITE_OBJ of the inode).
check "create vm" dogn 0 vdi create -c 4:2 vm 16M
python3 -c '
import socket, struct, sys
sys.path.insert(0, sys.argv[3])
from wirelib import sd1_call
port, vid = int(sys.argv[1]), int(sys.argv[2], 16)
s = socket.create_connection(("127.0.0.1", port))
oid = (1 << 63) | (vid << 32)
rest = struct.pack("<QQBBBBII", oid, 0, 0, 0, 0, 0, 0, 544)
res, _, _ = sd1_call(s, 0x03, 0x01, 8, rest, struct.pack("<Q", 4 << 20))
sys.exit(0 if res == 0 else 1)
' "$(sd_port 0)" "$(vid_of vm)" "$SD_TOP/tests/func"
check "vm: WRITE_OBJ of vm_state_size accepted" test $? -eq 0
run dogn 0 vdi alter-copy -c 3 vm
check "saved VM state: exit 1" test "$rc" -eq 1
check "saved VM state: says so" bash -c '[[ "$1" == *"VM state"* ]]' _ "$err"
log "dog said: $err"
check_eq "saved VM state: vm still 4:2" "vm: policy 4:2" "$(status vm)"
check_eq "after the refusals: av still 4:2, no conversion" "av: policy 4:2" "$(status av)"
check_eq "after the refusals: av's data unchanged" "$want" "$(dogn 1 vdi read av | sd_sha /dev/stdin)"
check_eq "after the refusals: av's bytes unchanged" "$b42" "$(data_bytes av)"
check_eq "vdi list shows av as 4:2" "4:2" "$(list_policy av)"

# 4:2 -> 3 copies, with dog waiting for the end.
run dogn 2 vdi alter-copy -c 3 av
check "alter-copy -c 3 av: exit 0" test "$rc" -eq 0
check_eq "alter-copy -c 3 av: says so" "VDI av: policy now 3" "$out"
check_eq "av 3 copies: status" "av: policy 3" "$(status av)"
check_eq "av 3 copies: data unchanged (sha256 via sheep 4)" "$want" \
	"$(dogn 4 vdi read av | sd_sha /dev/stdin)"
sleep 1
b3=$(data_bytes av)
log "av 3 copies: $b3 bytes on disk"
check "3 copies: about 3x the data on disk (old layout gone)" in_range "$b3" $((192 * MiB * 95 / 100)) $((192 * MiB * 110 / 100))
check_eq "vdi list shows av as 3 copies" "3" "$(list_policy av)"
check "av 3 copies: vdi check finds nothing wrong" dogn 3 vdi check av

# ---- under fio verify load over NBD: fv 4:2 -> 3 -> 4:2 while fio writes and verifies ----
check "create fv 4:2 128M" dogn 0 vdi create -c 4:2 fv 128M
fio_loop() {
	local k=0
	while [ ! -e "$SD_TEST_DIR/fio.stop" ]; do
		k=$((k + 1))
		fio_verify "fv$k" "$(nbd_uri 0 fv)" 128M --randseed=$((4242 + k)) || { echo "fio run $k failed" >"$SD_TEST_DIR/fio.fail"; return 1; }
		echo "$k" >"$SD_TEST_DIR/fio.runs"
	done
}
fio_verify fv0 "$(nbd_uri 0 fv)" 128M || bail "fio on fv before conversion"
fio_loop &
fpid=$!
sleep 2
run dogn 1 vdi alter-copy -c 3 fv
check "under fio: fv 4:2 -> 3: exit 0" test "$rc" -eq 0
check "under fio: fio still running after the first conversion" kill -0 $fpid
run dogn 2 vdi alter-copy -c 4:2 fv
check "under fio: fv 3 -> 4:2: exit 0" test "$rc" -eq 0
check "under fio: fio still running after the second conversion" kill -0 $fpid
touch "$SD_TEST_DIR/fio.stop"
wait $fpid
check "under fio: every fio run verified (crc32c) without an error" test ! -e "$SD_TEST_DIR/fio.fail"
log "fio runs completed: $(cat "$SD_TEST_DIR/fio.runs" 2>/dev/null)"
check_eq "fv back at 4:2" "fv: policy 4:2" "$(status fv)"
check "fv: a last fio verify pass over the converted VDI" fio_verify fvz "$(nbd_uri 3 fv)" 128M --randseed=4242 --rw=read

# ---- the converting sheep killed -9 mid-conversion: av 3 -> 4:2 ----
# Sheep 0 (first member) drives conversions; dog talks to sheep 1.
dogn 1 vdi alter-copy -c 4:2 av >"$SD_TEST_DIR/kill.out" 2>&1 &
dpid=$!
t=0
while [ $t -lt 100 ]; do
	case "$(status av)" in *"converting 3 -> 4:2: "[1-9]*) break ;; esac
	sleep 0.1; t=$((t + 1))
done
log "before the kill: $(status av)"
check "conversion under way when sheep 0 is killed" bash -c '[[ "$1" == *converting* ]]' _ "$(dogn 1 vdi alter-copy av)"
sd_kill 0
log "killed sheep 0 (the converter) with -9"
sd_start 0 || bail "sheep 0 restart"
sd_wait_nodes 1 6 || bail "six nodes again"
wait $dpid
check "after the kill: dog's alter-copy finished with exit 0" test $? -eq 0
log "dog said: $(cat "$SD_TEST_DIR/kill.out")"
check_eq "after the kill: av 4:2" "av: policy 4:2" "$(dogn 1 vdi alter-copy av)"
check_eq "after the kill: vdi list shows av as 4:2" "4:2" "$(list_policy av)"
check_eq "after the kill: av's data unchanged" "$want" "$(dogn 2 vdi read av | sd_sha /dev/stdin)"
sleep 2
b42b=$(data_bytes av)
log "av 4:2 again: $b42b bytes on disk"
check "4:2 again: about 1.5x the data on disk" in_range "$b42b" $((96 * MiB * 95 / 100)) $((96 * MiB * 110 / 100))
check "after the kill: vdi check av" dogn 2 vdi check av
sd_done
