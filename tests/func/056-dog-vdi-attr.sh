#!/usr/bin/env bash
# 056-dog-vdi-attr.sh - dog vdi setattr/getattr as Sheepdog 1.0's (GET_VDI_ATTR 0x89, attribute objects): set, rewrite, exclusive, delete, binary values from stdin, many keys, replicated and erasure-coded VDIs, a sheep down.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

sd_start_cluster 3 || bail "three sheep did not form a cluster"
dogn 0 cluster format -c 2 >/dev/null || bail "format"
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

sd_kill 2
sd_wait_nodes 0 2 || not_ok "sheep 2 did not leave"
check_eq "with a sheep down: a's attribute" yellow "$(dogn 0 vdi getattr a color)"
check_eq "with a sheep down: b's blob" "$(sd_sha "$SD_TEST_DIR/v")" \
	"$(dogn 1 vdi getattr b blob | sha256sum | cut -d' ' -f1)"
sd_done
