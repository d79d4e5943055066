#!/usr/bin/env bash
# 056-dog-vdi-attr.sh - cluster format -V shown in node list and cluster info, format -t (strict) refusing writes with too few zones; vdi object location; dog vdi setattr/getattr as Sheepdog 1.0's (GET_VDI_ATTR 0x89, attribute objects): set, rewrite, exclusive, delete, binary values from stdin, many keys, replicated and erasure-coded VDIs, a sheep down.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

sd_start_cluster 3 || bail "three sheep did not form a cluster"
dogn 0 cluster format -V 64 -c 2 >/dev/null || bail "format"
# format -V fixes every node's vnodes: node list and the epoch history say so.
check_eq "format -V 64: node list" "64 64 64" "$(dogn 1 node list -r | awk '{print $3}' | xargs)"
check "format -V 64: cluster info's epoch 1" grep -q ":$(sd_port 2):64\]" <(dogn 0 cluster info)
check "create a (2 copies)" dogn 0 vdi create a 16M
check "create b (2:1)" dogn 1 vdi create -c 2:1 b 16M

check "setattr a color red" dogn 0 vdi setattr a color red
check_eq "getattr a color" red "$(dogn 1 vdi getattr a color)"
check "setattr rewrites" dogn 2 vdi setattr a color blue
check_eq "getattr after the rewrite" blue "$(dogn 0 vdi getattr a color)"
dogn 0 vdi setattr -x a color green 2>"$SD_TEST_DIR/err"
check_eq "setattr -x on an existing key: exit 3" 3 "$?"
check "it says so" grep -q "Attribute 'color' already exists" "$SD_TEST_DIR/err"
check_eq "the value is unchanged" blue "$(dogn 0 vdi getattr a color)"
check "setattr -x on a new key" dogn 0 vdi setattr -x a shape round
check_eq "getattr a shape" round "$(dogn 2 vdi getattr a shape)"

sd_random "$SD_TEST_DIR/v" 65536
check "setattr from stdin (64 KiB, binary)" dogn 1 vdi setattr b blob <"$SD_TEST_DIR/v"
check_eq "getattr returns the same bytes (2:1 VDI)" "$(sd_sha "$SD_TEST_DIR/v")" \
	"$(dogn 2 vdi getattr b blob | sha256sum | cut -d' ' -f1)"
head -c 65537 /dev/zero >"$SD_TEST_DIR/big"
dogn 1 vdi setattr b big <"$SD_TEST_DIR/big" 2>/dev/null
check_eq "a value over 64 KiB: usage error" 64 "$?"

dogn 0 vdi getattr a nosuch 2>"$SD_TEST_DIR/err"
check_eq "getattr of a missing key: exit 5" 5 "$?"
check "it says so" grep -q "Attribute 'nosuch' not found" "$SD_TEST_DIR/err"
dogn 0 vdi getattr nosuchvdi color 2>/dev/null
check_eq "getattr of a missing VDI: exit 5" 5 "$?"

check "setattr -d a color" dogn 0 vdi setattr -d a color
dogn 1 vdi getattr a color 2>/dev/null
check_eq "getattr after delete: exit 5" 5 "$?"
check_eq "the other key stays" round "$(dogn 1 vdi getattr a shape)"
check "set it again" dogn 2 vdi setattr a color yellow
check_eq "getattr after setting again" yellow "$(dogn 0 vdi getattr a color)"
dogn 0 vdi setattr -d a nosuch 2>/dev/null
check_eq "delete of a missing key: exit 5" 5 "$?"

for i in $(seq 1 20); do dogn $((i % 3)) vdi setattr b "k$i" "value-$i" || not_ok "setattr b k$i"; done
got=$(for i in $(seq 1 20); do dogn $((i % 2)) vdi getattr b "k$i"; echo; done | xargs)
check_eq "20 keys read back" "$(for i in $(seq 1 20); do echo "value-$i"; done | xargs)" "$got"

# dog vdi object location: the inode (2 copies), a 2:1 data object's
# three fragments on three sheep, an unallocated index.
out=$(dogn 0 vdi object location a)
log "$out"
check_eq "object location of a's inode: 2 holders that have it" 2 \
	"$(grep -c 'has the object (should be 2 copies)' <<<"$out")"
vid_a=$(python3 -c 'h = 0xcbf29ce484222325
for c in b"a": h = ((h ^ c) * 0x100000001b3) & (2**64 - 1)
print("%06x" % (h & 0xffffff))')
check "it names a's inode object (0x80${vid_a}00000000)" grep -q "^Looking for the inode object 0x80${vid_a}00000000 with 2 nodes" <<<"$out"
sd_random "$SD_TEST_DIR/d" $((4 << 20))
dogn 0 vdi write b 0 $((4 << 20)) <"$SD_TEST_DIR/d" || not_ok "write b"
out=$(dogn 1 vdi object location b 0)
log "$out"
check_eq "object location of b's object 0: fragments 0, 1, 2 of 2:1 present" "0 1 2" \
	"$(sed -n 's/.*has the object (should be 3 copies, fragment \([0-9]\) of 2:1).*/\1/p' <<<"$out" | sort | xargs)"
check_eq "on three distinct sheep" 3 "$(grep 'has the object' <<<"$out" | awk '{print $1}' | sort -u | grep -c .)"
check "object location of an unallocated index" grep -q "idx 3 is not allocated" <(dogn 0 vdi object location b 3)
dogn 0 vdi object location b 99999999 2>/dev/null
check_eq "object location of an index out of range: usage error" 64 "$?"

sd_kill 2
sd_wait_nodes 0 2 || not_ok "sheep 2 did not leave"
check_eq "with a sheep down: a's attribute" yellow "$(dogn 0 vdi getattr a color)"
check_eq "with a sheep down: b's blob" "$(sd_sha "$SD_TEST_DIR/v")" \
	"$(dogn 1 vdi getattr b blob | sha256sum | cut -d' ' -f1)"

# cluster format -t (strict): with 2 zones a 3-copy write is refused, where
# without -t it is acknowledged with reduced redundancy; with a third zone
# it goes through.
check "format -c 3 (not strict) on 2 zones" dogn 0 cluster format -c 3
dogn 0 vdi create c 8M 2>/dev/null || not_ok "create c"
check "not strict: a 3-copy write on 2 zones is acknowledged" dogn 1 vdi write c 0 $((4 << 20)) <"$SD_TEST_DIR/d"
check "format -t -c 3" dogn 0 cluster format -t -c 3
check_eq "strict is in cluster info's epoch log (flags @30)" 1 "$(python3 - "$(sd_port 0)" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
n = 48 + 6144 * 80
s.sendall(struct.pack("<BBHIII", 0x0a, 0x87, 0, 0, 1, n) + b"\0" * 32)
h = b""
while len(h) < 48: h += s.recv(48 - len(h))
b = b""
while len(b) < 48: b += s.recv(48 - len(b))
print(struct.unpack_from("<H", b, 30)[0])
PY
)"
dogn 0 vdi create c 8M 2>"$SD_TEST_DIR/err"
rc=$?
check "strict, 2 zones: creating a 3-copy VDI (its inode write) is refused (exit $rc)" test "$rc" -ne 0
log "$(cat "$SD_TEST_DIR/err")"
sd_start 3 && sd_wait_nodes 0 3 || not_ok "a third zone did not join"
check "strict, 3 zones: create c" dogn 0 vdi create c 8M
check "strict, 3 zones: the write goes through" dogn 1 vdi write c 0 $((4 << 20)) <"$SD_TEST_DIR/d"
check_eq "and reads back" "$(sd_sha "$SD_TEST_DIR/d")" \
	"$(dogn 3 vdi read c 0 $((4 << 20)) | sha256sum | cut -d' ' -f1)"
sd_kill 3
sd_wait_nodes 0 2 || not_ok "sheep 3 did not leave"
sd_random "$SD_TEST_DIR/a.new" $((4 << 20))
dogn 1 vdi write c 0 $((4 << 20)) <"$SD_TEST_DIR/a.new" 2>"$SD_TEST_DIR/err"
rc=$?
check "strict, back to 2 zones: a write is refused (exit $rc)" test "$rc" -ne 0
log "$(cat "$SD_TEST_DIR/err")"
sd_done
