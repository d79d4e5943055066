#!/usr/bin/env bash
# 058-dog-format-recycle.sh - VDI ids of deleted VDIs as Sheepdog 1.0: taken for good after a plain format (a new VDI of the same name gets the next free id, the deleted one is in READ_DEL_VDIS 0xc9), recycled after cluster format -R; data of the new VDI reads back; the rule survives a restart of every sheep. vdi create -y (hyper volume): an 8 TiB volume gets 8 MiB objects, data written near its end reads back; refused without -y.
# timeout: 180
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

vid_of() { python3 -c 'import sys
h = 0xcbf29ce484222325
for c in sys.argv[1].encode(): h = ((h ^ c) * 0x100000001b3) & (2**64 - 1)
print("%x" % ((h & 0xffffff) or 1))' "$1"; }
vid_in_list() { dogn 0 vdi list -r | awk -v n="$1" '$2 == n && $1 == "=" { print $8 }'; }
# deleted_bit VID: 1 when READ_DEL_VDIS (0xc9) has VID's bit set
deleted_bit() { python3 - "$(sd_port 0)" "$1" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
n = (1 << 24) // 8
s.sendall(struct.pack("<BBHIII", 0x0a, 0xc9, 0, 0, 1, n) + b"\0" * 32)
h = b""
while len(h) < 48: h += s.recv(48 - len(h))
ln = struct.unpack_from("<I", h, 12)[0]
b = b""
while len(b) < ln: b += s.recv(ln - len(b))
v = int(sys.argv[2], 16)
print((b[v // 8] >> (v % 8)) & 1 if v // 8 < len(b) else 0)
PY
}

sd_start_cluster 3 || bail "three sheep did not form a cluster"
va=$(vid_of a)
sd_random "$SD_TEST_DIR/d" $((4 << 20))

dogn 0 cluster format -c 2 >/dev/null || bail "format"
check "create a" dogn 0 vdi create a 16M
log "$(dogn 0 vdi list -r)"
check_eq "a takes its hash id" "$va" "$(vid_in_list a)"
check "delete a" dogn 1 vdi delete a
check_eq "READ_DEL_VDIS lists the deleted id" 1 "$(deleted_bit "$va")"
check "create a again" dogn 2 vdi create a 16M
check_eq "no -R: the new a takes the next free id" "$(printf %x $((0x$va + 1)))" "$(vid_in_list a)"
check "write the new a" dogn 0 vdi write a 0 $((4 << 20)) <"$SD_TEST_DIR/d"
check_eq "and read it back" "$(sd_sha "$SD_TEST_DIR/d")" \
	"$(dogn 1 vdi read a 0 $((4 << 20)) | sha256sum | cut -d' ' -f1)"
# Every sheep restarted: the deleted id stays taken.
for i in 0 1 2; do kill "${SD_PIDS[$i]}"; done
wait
for i in 0 1 2; do sd_start "$i" || bail "restart $i"; done
sd_wait_nodes 0 3 || bail "restarted cluster"
for t in $(seq 1 100); do dogn 0 vdi list -r >/dev/null 2>&1 && break; sleep 0.2; done
check "after a restart: delete a, create a" sh -c "'$DOG' vdi delete a -p $(sd_port 0) && '$DOG' vdi create a 8M -p $(sd_port 1)"
check_eq "after a restart: the id is the next free one again" "$(printf %x $((0x$va + 2)))" "$(vid_in_list a)"

check "format -R" dogn 0 cluster format -R -c 2
check "create a" dogn 0 vdi create a 16M
check_eq "a takes its hash id" "$va" "$(vid_in_list a)"
check "delete a" dogn 1 vdi delete a
check "create a again" dogn 2 vdi create a 16M
check_eq "-R: the new a takes the recycled id" "$va" "$(vid_in_list a)"
check_eq "and it reads as zeros (nothing of the old a)" \
	"$(head -c $((4 << 20)) /dev/zero | sha256sum | cut -d' ' -f1)" \
	"$(dogn 1 vdi read a 0 $((4 << 20)) | sha256sum | cut -d' ' -f1)"

# vdi create -y: larger than 2^20 objects of 4 MiB.
dogn 0 vdi create big 8T 2>"$SD_TEST_DIR/err"
check_eq "an 8 TiB volume without -y: exit 1" 1 "$?"
check "it says why" grep -q "VDI size is too large" "$SD_TEST_DIR/err"
check "create -y h 8T" dogn 0 vdi create -y h 8T
check_eq "h: 8 TiB, 8 MiB objects (shift 23)" "$((8 << 40)) 23" \
	"$(dogn 1 vdi list -r h | awk '$2 == "h" { print $4, $NF }')"
check "write 4 MiB at 8 TiB - 4 MiB" dogn 1 vdi write h $(((8 << 40) - (4 << 20))) $((4 << 20)) <"$SD_TEST_DIR/d"
check_eq "and read it back" "$(sd_sha "$SD_TEST_DIR/d")" \
	"$(dogn 2 vdi read h $(((8 << 40) - (4 << 20))) $((4 << 20)) | sha256sum | cut -d' ' -f1)"
check "create -y -z 20 small 1G keeps 1 MiB objects (it fits)" dogn 0 vdi create -y -z 20 small 1G
check_eq "small: shift 20" 20 "$(dogn 1 vdi list -r small | awk '$2 == "small" { print $NF }')"
sd_done
