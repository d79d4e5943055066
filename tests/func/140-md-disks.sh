#!/usr/bin/env bash
# 140-md-disks.sh - several disks per sheep (Sheepdog's md: sheep DIR,DISK1,DISK2): fragments spread over the disks (files counted per disk); dog node md info lists each disk; md plug moves part of the fragments onto the new disk and none between the old ones; md unplug empties the disk onto the others; bad input (unknown disk, every disk, a disk already in, a path twice) gives a clear error and changes nothing; a disk whose directory is removed, and one failing with EIO (test hook), is unplugged by itself and its fragments come back from peers; every VDI reads back with its sha256 throughout.
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

D=$SD_TEST_DIR/disks
disk() { echo "$D/d$1"; }
# fragment files in a directory
nfr() { find "$1" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9a-f]{16}_[0-9a-f]{2}' 2>/dev/null | wc -l; }
names() { find "$1" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9a-f]{16}_[0-9a-f]{2}' -printf '%f\n' 2>/dev/null | sort; }
md_paths() { dogn 0 node md info | tail -n +2 | awk -F'\t' '{print $6}' | xargs; }
total0() { local t=0 k; for k in a b c d; do t=$((t + $(nfr "$(disk $k)"))); done; echo $t; }
counts() { local k o=""; for k in a b c d; do o="$o $k=$(nfr "$(disk $k)")"; done; echo "$o"; }
sha_ok() { # sha_ok IDX NAME WHAT: sha256 of the VDI read through sheep IDX is its reference's
	dogn "$1" vdi read "$2" >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
	check_eq "$3: $2 reads back (sha256) through sheep $1" "$(sd_sha "$SD_TEST_DIR/$2.ref")" \
		"$(sd_sha "$SD_TEST_DIR/got")"
}
# wait_total N SECONDS: until sheep 0's disks hold N fragments again
wait_total() {
	local t=0
	while [ $t -lt $(($2 * 4)) ]; do
		[ "$(total0)" -ge "$1" ] && return 0
		sleep 0.25; t=$((t + 1))
	done
	return 1
}

mkdir -p "$D"
# sheep 0: meta dir n0, three disks; SHEEP_TEST_MD_EIO names a file that
# makes a disk "fail with EIO" when it holds that disk's path.
mkdir -p "$(sd_dir 0)"
SHEEP_TEST_MD_EIO=$SD_TEST_DIR/eio "$SHEEP" "$(sd_dir 0),$(disk a),$(disk b),$(disk c)" -f -z 0 \
	-p "$(sd_port 0)" -y 127.0.0.1 -b 127.0.0.1 -c "local:path=$SD_TEST_DIR/local" -n \
	-l level=debug --nbd "$(sd_nbd_port 0)" >>"$SD_TEST_DIR/sheep0.out" 2>&1 &
SD_PIDS[0]=$!
sd_wait_port "$(sd_port 0)" || bail "sheep 0 (three disks) did not start"
sd_start 1 && sd_start 2 || bail "sheep 1, 2"
sd_wait_nodes 0 3 || bail "three sheep"
dogn 0 cluster format -c 2 >/dev/null || bail "format"
rec_mkvdi 0 v 2:1 256M $((200 << 20)) || bail "make v (2:1)"
rec_mkvdi 1 r 2 64M $((60 << 20)) || bail "make r (2 copies)"
rec_wait_done 0 3 1 60 0 || not_ok "settled"

check_eq "md info lists the three disks" "$(disk a) $(disk b) $(disk c)" "$(md_paths)"
check_eq "the meta dir holds no fragment" 0 "$(nfr "$(sd_dir 0)/obj")"
T=$(total0)
log "sheep 0: $T fragments:$(counts)"
# v (2:1, 50 objects) puts one fragment of each object on each of the three
# sheep; r's copies and the inodes add a few, as many as placement gives
# (the test's port base moves it: 60 in all once a new test shifted the
# bases, and the old bound, more than 60, failed).
check "sheep 0 holds a fragment of every object of v ($T)" test "$T" -ge 50
for k in a b c; do
	n=$(nfr "$(disk $k)")
	check "disk $k holds a share ($n of $T)" test "$n" -gt $((T / 6))
done
fb=$(find "$(disk a)" -maxdepth 1 -type f -name '*_*' -printf '%b\n' | awk '{s += $1 * 512} END {print s + 0}')
mb=$(dogn 0 node md info -r | awk -v p="$(disk a)" '$6 == p {print $3}')
check "md info's Used of disk a is its fragment files' bytes ($mb ~ $fb)" \
	test "$mb" -gt $((fb * 95 / 100)) -a "$mb" -lt $((fb * 105 / 100 + 65536))
sha_ok 0 v "three disks"
sha_ok 2 r "three disks"

# ---- plug ----
for k in a b c; do names "$(disk $k)" >"$SD_TEST_DIR/before.$k"; done
check "md plug d" dogn 0 node md plug "$(disk d)"
check_eq "md info lists four disks" "$(disk a) $(disk b) $(disk c) $(disk d)" "$(md_paths)"
log "after plug:$(counts)"
check_eq "no fragment lost or doubled by the plug" "$T" "$(total0)"
check "the new disk took a share ($(nfr "$(disk d)"))" test "$(nfr "$(disk d)")" -gt $((T / 8))
moved_between=0
for k in a b c; do
	extra=$(names "$(disk $k)" | comm -13 "$SD_TEST_DIR/before.$k" - | wc -l)
	moved_between=$((moved_between + extra))
done
check_eq "only moves onto the new disk (none between the old ones)" 0 "$moved_between"
sha_ok 1 v "after plug"
sha_ok 0 r "after plug"

# ---- bad input changes nothing ----
before=$(md_paths)
dogn 0 node md unplug "$SD_TEST_DIR/nowhere" 2>"$SD_TEST_DIR/err"
check_eq "unplug an unknown disk: exit 1" 1 "$?"
check "it says so" grep -q "is not a disk of this sheep" "$SD_TEST_DIR/err"
dogn 0 node md unplug "$(disk a),$(disk b),$(disk c),$(disk d)" 2>"$SD_TEST_DIR/err"
check_eq "unplug every disk: exit 1" 1 "$?"
check "it says so" grep -q "cannot unplug every disk" "$SD_TEST_DIR/err"
dogn 0 node md plug "$(disk a)/" 2>"$SD_TEST_DIR/err"
check_eq "plug a disk already in: exit 1" 1 "$?"
check "it says so" grep -q "is already a disk of this sheep" "$SD_TEST_DIR/err"
dogn 0 node md plug "$D/e,$D/e" 2>"$SD_TEST_DIR/err"
check_eq "plug a path twice: usage error" 64 "$?"
check "it says so" grep -q "listed twice" "$SD_TEST_DIR/err"
check_eq "nothing changed" "$before" "$(md_paths)"
check_eq "no fragment moved" "$T" "$(total0)"
check "the refused plug made no directory" test ! -e "$D/e"
# the sheep itself refuses what dog would (a raw request, as another client's)
python3 - "$(sd_port 0)" "$SD_TEST_DIR/nowhere" <<'EOF' && ok "MD_UNPLUG of an unknown disk: INVALID_PARMS from the sheep" || not_ok "MD_UNPLUG of an unknown disk: INVALID_PARMS from the sheep"
import socket, struct, sys
port, path = int(sys.argv[1]), sys.argv[2].encode() + b"\0"
s = socket.create_connection(("127.0.0.1", port))
s.sendall(struct.pack("<BBHIII", 0x0a, 0xb3, 1, 0, 1, len(path)) + b"\0" * 32 + path)
rsp = b""
while len(rsp) < 48:
    rsp += s.recv(48 - len(rsp))
sys.exit(0 if struct.unpack_from("<I", rsp, 16)[0] == 0x05 else 1)
EOF
check_eq "still nothing changed" "$before" "$(md_paths)"

# ---- unplug ----
check "md unplug b" dogn 0 node md unplug "$(disk b)"
check_eq "md info lists a, c, d" "$(disk a) $(disk c) $(disk d)" "$(md_paths)"
check_eq "disk b is empty" 0 "$(nfr "$(disk b)")"
check_eq "no fragment lost by the unplug" "$T" "$(total0)"
log "after unplug:$(counts)"
sha_ok 0 v "after unplug"
sha_ok 1 r "after unplug"

# ---- a disk whose directory is removed ----
gone=$(nfr "$(disk c)")
rm -rf "$(disk c)"
t=0
while [ $t -lt 40 ] && [ "$(md_paths)" != "$(disk a) $(disk d)" ]; do sleep 0.25; t=$((t + 1)); done
check_eq "the removed disk is unplugged by itself" "$(disk a) $(disk d)" "$(md_paths)"
check "its $gone fragments come back from peers onto a and d" wait_total "$T" 90
log "after the removal:$(counts)"
check "the log says so" grep -q "md: disk $(disk c) failed" "$(sd_dir 0)/sheep.log"
sha_ok 0 v "after a removed disk"
sha_ok 0 r "after a removed disk"

# ---- a disk failing with EIO (test hook) ----
gone=$(nfr "$(disk a)")
echo "$(disk a)" >"$SD_TEST_DIR/eio"
t=0
while [ $t -lt 40 ] && [ "$(md_paths)" != "$(disk d)" ]; do sleep 0.25; t=$((t + 1)); done
check_eq "the failing disk is unplugged by itself" "$(disk d)" "$(md_paths)"
before_d=$(nfr "$(disk d)")
t=0
while [ $t -lt 360 ] && [ "$(nfr "$(disk d)")" -lt "$T" ]; do sleep 0.25; t=$((t + 1)); done
check_eq "its $gone fragments come back from peers onto d" "$T" "$(nfr "$(disk d)")"
log "d held $before_d, now $(nfr "$(disk d)")"
sha_ok 0 v "after an EIO disk"
sha_ok 2 v "after an EIO disk"
sha_ok 0 r "after an EIO disk"
sd_done
