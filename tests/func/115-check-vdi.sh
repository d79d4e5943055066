#!/usr/bin/env bash
# 115-check-vdi.sh - dog vdi check / dog cluster check: damage planted on disk (a flipped byte in a 3-copy replica, a 4:2 parity fragment and a data fragment; silent corruption with a rewritten checksum in a parity, a data fragment and a replica; a stale fragment; a missing one) is found, named and repaired from the good copies; data compared by sha256 before and after; unrepairable damage and bad input give a clear error and exit code.
# timeout: 420
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"
PLANT="$SD_TOP/tests/func/chk_plant.py"

# The scrub is off: dog vdi check must find everything itself.
for i in 0 1 2 3 4 5; do sd_start $i --scrub off || bail "sheep $i"; done
sd_wait_nodes 0 6 || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format"
rec_mkvdi 0 e42 4:2 $((32 * MiB)) $((24 * MiB)) || bail "4:2 VDI with data"
rec_mkvdi 0 r3 3 $((16 * MiB)) $((12 * MiB)) || bail "3-copy VDI with data"
rec_wait_done 0 6 1 60 || bail "recovery never settled"
sha_e=$(sd_sha "$SD_TEST_DIR/e42.ref")
sha_r=$(sd_sha "$SD_TEST_DIR/r3.ref")

vid_of() { dogn 0 vdi list -r | awk -v n="$1" '$2 == n { print $8 }'; }
oid_of() { printf '%016x' $(( (0x$1 << 32) + $2 )); }
# holder_of OID IDX: the sheep whose store has fragment IDX of OID.
holder_of() {
	local i
	for i in 0 1 2 3 4 5; do
		[ -e "$(sd_dir $i)/obj/$1_$(printf %02x "$2")" ] && { echo $i; return; }
	done
	return 1
}
plant() { # plant [--silent] OID IDX OFFSET
	local s=""; [ "$1" = --silent ] && { s=--silent; shift; }
	local n; n=$(holder_of "$1" "$2") || { log "no holder of $1 fragment $2"; return 1; }
	python3 "$PLANT" $s "$(sd_dir $n)/obj/$1_$(printf %02x "$2")" "$3" >/dev/null
}
ve=$(vid_of e42); vr=$(vid_of r3)
[ -n "$ve" ] && [ -n "$vr" ] || bail "VDI ids"

out=$(dogn 0 vdi check e42 2>&1); rc=$?
check_eq "a clean 4:2 VDI checks clean (exit 0)" 0 $rc
check "... and says so as Sheepdog does" grep -q "^finish check&repair e42$" <<<"$out"
check "... with nothing found" grep -q "7 object(s) checked: 0 problem(s) found" <<<"$out"

# 1. Flipped bytes (the block checksum fails), one at a time: a data
# fragment (1) of object 0, a parity fragment (5) of object 1, copy 2 of
# r3's object 0 (a copy no client read touches). One at a time, because a
# holder that repairs one fragment rescans its store, and that rescan
# verifies (and would repair) a second planted one first.
settle() { sleep 1; rec_wait_done 0 6 1 60 >/dev/null; }
plant "$(oid_of $ve 0)" 1 1000 || bail "plant data"
out=$(dogn 0 vdi check e42 2>&1); rc=$?
log "$(tr '\n' '|' <<<"$out")"
check_eq "check e42 repaired the data fragment (exit 0)" 0 $rc
check "the data fragment's checksum mismatch is found and fixed" \
	grep -q "^fixed checksum mismatch in $(oid_of $ve 0), copy index 1 on " <<<"$out"
settle
plant "$(oid_of $ve 1)" 5 70000 || bail "plant parity"
out=$(dogn 0 vdi check e42 2>&1); rc=$?
log "$(tr '\n' '|' <<<"$out")"
check_eq "check e42 repaired the parity fragment (exit 0)" 0 $rc
check "the parity fragment's checksum mismatch is found and fixed" \
	grep -q "^fixed checksum mismatch in $(oid_of $ve 1), copy index 5 on " <<<"$out"
settle
plant "$(oid_of $vr 0)" 2 123456 || bail "plant replica"
out=$(dogn 0 vdi check -r r3 2>&1); rc=$?
log "$(tr '\n' '|' <<<"$out")"
check_eq "check r3 repaired it (exit 0)" 0 $rc
check "the replica's checksum mismatch is found and fixed" \
	grep -q "^fixed checksum mismatch in $(oid_of $vr 0), copy index 2 on " <<<"$out"
check_eq "-r: objects found fixed unrepairable unreachable" "4 1 1 0 0" "$(tail -1 <<<"$out")"
settle
cen=$(rec_census --verify 0 1 2 3 4 5)
check_eq "census: every fragment's checksums verify" 0 "$(rec_summary bad "$cen")"

# 2. Silent corruption (checksum rewritten to match): only re-encoding the
# parity, or comparing the replicas, finds it.
plant --silent "$(oid_of $ve 2)" 4 4096 || bail "plant silent parity"
plant --silent "$(oid_of $ve 3)" 2 8191 || bail "plant silent data"
plant --silent "$(oid_of $vr 1)" 1 777 || bail "plant silent replica"
cen=$(rec_census --verify 0 1 2 3 4 5)
check_eq "silent corruption passes the checksums" 0 "$(rec_summary bad "$cen")"
out=$(dogn 0 cluster check 2>&1); rc=$?
log "$(tr '\n' '|' <<<"$out")"
check_eq "cluster check repaired all it found (exit 0)" 0 $rc
check "a parity that does not match the data is found and fixed" \
	grep -q "^fixed parity mismatch in $(oid_of $ve 2), copy index 4 on " <<<"$out"
check "a data fragment that disagrees with both parities is found and fixed" \
	grep -q "^fixed data mismatch in $(oid_of $ve 3), copy index 2 on " <<<"$out"
check "a replica that disagrees with the other two is found and fixed" \
	grep -q "^fixed inconsistent replica $(oid_of $vr 1), copy index 1 on " <<<"$out"
check "cluster check covers both VDIs" grep -q "finish check&repair r3" <<<"$out"
out=$(dogn 0 cluster check 2>&1)
check "a second cluster check finds nothing" grep -q ": 0 problem(s) found, 0 fixed, 0 unrepairable" <<<"$out"

# 3. A stale fragment: recovery off, the holder of parity fragment 4 of
# object 4 down while the object is written, then back.
o4=$(oid_of $ve 4)
n=$(holder_of "$o4" 4) || bail "holder of $o4 fragment 4"
dogn 0 cluster recover disable || bail "recover disable"
w=$(( n == 0 ? 1 : 0 ))
sd_kill $n
sd_wait_nodes $w 5 || bail "node $n gone"
head -c $((64 * 1024)) /dev/urandom >"$SD_TEST_DIR/patch"
dogn $w vdi write e42 $((4 * 4 * MiB + 4096)) $((64 * 1024)) <"$SD_TEST_DIR/patch" || bail "write while $n is down"
dd if="$SD_TEST_DIR/patch" of="$SD_TEST_DIR/e42.ref" bs=4096 seek=$((4 * 1024 + 1)) conv=notrunc status=none
sha_e=$(sd_sha "$SD_TEST_DIR/e42.ref")
sd_start $n --scrub off || bail "restart sheep $n"
sd_wait_nodes $w 6 || bail "node $n back"
out=$(dogn $w vdi check e42 2>&1); rc=$?
log "$(tr '\n' '|' <<<"$out")"
check_eq "check with a stale fragment: repaired (exit 0)" 0 $rc
check "the stale fragment is found, with its version, and fixed" \
	grep -qE "^fixed stale $o4, copy index 4 on 127.0.0.1:$(sd_port $n) \(version [0-9]+, not [0-9]+\)" <<<"$out"
dogn 0 cluster recover enable || bail "recover enable"

# Data by sha256 after every repair, through two sheep.
dogn 2 vdi read e42 >"$SD_TEST_DIR/got"
check_eq "e42 reads back its sha256 after the repairs" "$sha_e" "$(sd_sha "$SD_TEST_DIR/got")"
dogn 4 vdi read r3 >"$SD_TEST_DIR/got"
check_eq "r3 reads back its sha256 after the repairs" "$sha_r" "$(sd_sha "$SD_TEST_DIR/got")"

# 4. Unrepairable: three of the six fragments of object 5 gone. The
#    restart above changed the epoch, and its recovery may still hold old
#    copies at earlier holders (a check rightly reads those) until the
#    cluster completes and drops them: wait for that, then remove every
#    copy of the three from every store.
rec_wait_done 0 6 "$(rec_epoch 0)" 60 || bail "recovery after the restart never completed"
o5=$(oid_of $ve 5)
for f in 0 1 2; do
	holder_of "$o5" $f >/dev/null || not_ok "fragment $f of $o5 is on no sheep"
	for i in 0 1 2 3 4 5; do rm -f "$(sd_dir $i)/obj/${o5}_0$f"; done
done
out=$(dogn 0 vdi check e42 2>&1); rc=$?
log "$(tr '\n' '|' <<<"$out")"
check_eq "damage beyond repair: exit 1" 1 $rc
check "... named: the missing fragments could not be repaired" \
	grep -q "^failed to repair missing $o5, copy index 0 on " <<<"$out"
check "... and counted in the summary" grep -qE "problem\(s\) found, 0 fixed, 1 unrepairable" <<<"$out"

# 5. Bad input.
out=$(dogn 0 vdi check nosuch 2>&1); rc=$?
check "no such VDI: a clear error ($out)" grep -q "VDI nosuch not found" <<<"$out"
check "no such VDI: a failure exit code ($rc)" test $rc -ne 0 -a $rc -ne 64
"$DOG" vdi check -a 127.0.0.1 -p "$(sd_port 0)" >/dev/null 2>&1
check_eq "vdi check without a name: usage (64)" 64 $?
dogn 0 cluster scrub sideways >/dev/null 2>&1
check_eq "cluster scrub with a bad verb: usage (64)" 64 $?
dogn 0 cluster scrub start 0 >/dev/null 2>&1
check_eq "cluster scrub start 0: usage (64)" 64 $?
python3 - "$(sd_port 0)" <<'PY'
import socket, struct, sys
port = int(sys.argv[1])
def req(op, oid=0, dlen=0, flags=0, data=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    rest = struct.pack("<QQ", oid, 0).ljust(32, b"\0")
    s.sendall(struct.pack("<BBHIII", 0x0a, op, flags, 0, 7, dlen) + rest + data)
    h = b""
    while len(h) < 48:
        c = s.recv(48 - len(h))
        if not c:
            return None
        h += c
    s.close()
    return struct.unpack_from("<I", h, 16)[0]
r = [req(0xd9, oid=0x00ababab00000000, dlen=4096),        # CHECK_OBJ, unknown VDI
     req(0xd9, oid=0x00ababab00000000, dlen=8),           # reply room too small
     req(0xd8, dlen=3, flags=1, data=b"abc"),             # SCRUB, short control
     req(0xd8, dlen=16, flags=1, data=struct.pack("<IIQ", 9, 0, 0))]  # SCRUB, bad action
print("results", r)
ok = r[0] == 0x08 and r[1] == 0x05 and r[2] == 0x05 and r[3] == 0x05
sys.exit(0 if ok else 1)
PY
check "raw CHECK_OBJ / SCRUB with bad input get error replies" test $? = 0
check "sheep 0 still serves after the bad input" sd_quiet dogn 0 node list -r
sd_done
