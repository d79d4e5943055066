#!/usr/bin/env bash
# 125-snap-backup.sh - three sheep, 2:1: dog vdi backup -F S1 -s S2 holds only the objects that changed between the snapshots; restore -s S1 brings the working VDI to S2's content (sha256) whatever was written since; a full backup; truncated or foreign streams refused.
# timeout: 180
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

MiB=$((1 << 20))
OBJ=$((4 * MiB))
VSIZE=$((32 * MiB + 12345))
ref=$SD_TEST_DIR/ref
wobj() { # REF OFF LEN
	head -c "$3" /dev/urandom >"$SD_TEST_DIR/p"
	dogn 0 vdi write v "$2" "$3" <"$SD_TEST_DIR/p" &&
		dd if="$SD_TEST_DIR/p" of="$1" bs=1M oflag=seek_bytes seek="$2" conv=notrunc status=none
}
vsha() { dogn "${2:-0}" vdi read ${1:-} v | sha256sum | cut -d' ' -f1; }

sd_start_cluster 3 || bail "three sheep did not form a cluster"
dogn 0 cluster format -c 2:1 >/dev/null || bail "format"
dogn 0 vdi create v $VSIZE || bail "create"
truncate -s $VSIZE "$ref"
wobj "$ref" 0 $((3 * OBJ)) && wobj "$ref" $((7 * OBJ)) 1000 && wobj "$ref" $((8 * OBJ)) 12345 || bail "writes"
dogn 0 vdi snapshot -s s1 v && cp "$ref" "$ref.s1" || bail "s1"
wobj "$ref" $((OBJ + 5)) 4096 && wobj "$ref" $((5 * OBJ)) $OBJ || bail "writes 2"
dogn 0 vdi snapshot -s s2 v && cp "$ref" "$ref.s2" || bail "s2"

check "backup -F s1 -s s2" bash -c "$DOG vdi backup -F s1 -s s2 v -p $(sd_port 1) >'$SD_TEST_DIR/diff'"
# header 64 + end 8 + 2 records (objects 1 and 5) of 8 + 4 MiB
check_eq "the incremental backup holds exactly the 2 changed objects" $((64 + 8 + 2 * (8 + OBJ))) "$(stat -c %s "$SD_TEST_DIR/diff")"
check "full backup -s s2" bash -c "$DOG vdi backup -s s2 v -p $(sd_port 2) >'$SD_TEST_DIR/full'"
# objects 0, 1, 2, 5, 7 of 4 MiB and object 8 (the last, 12345 bytes long)
check_eq "the full backup holds the 6 allocated objects" $((64 + 8 + 6 * 8 + 5 * OBJ + 12345)) "$(stat -c %s "$SD_TEST_DIR/full")"

wobj "$ref" 0 $((2 * MiB)) && wobj "$ref" $((6 * OBJ)) 999 || bail "writes after s2"
check "restore -s s1 < incremental backup" bash -c "$DOG vdi restore -s s1 v -p $(sd_port 0) <'$SD_TEST_DIR/diff'"
check_eq "the working VDI now reads snapshot s2's content" "$(sd_sha "$ref.s2")" "$(vsha "" 1)"
check_eq "snapshots s1 and s2 unchanged" "$(sd_sha "$ref.s1") $(sd_sha "$ref.s2")" "$(vsha "-s s1") $(vsha "-s s2")"

out=$(head -c 5000 /dev/urandom | $DOG vdi restore -s s1 v -p "$(sd_port 0)" 2>&1); rc=$?
check_eq "a foreign stream: exit 1, nothing done" "1 $(sd_sha "$ref.s2")" "$rc $(vsha)"
head -c 1000000 "$SD_TEST_DIR/diff" >"$SD_TEST_DIR/short"
out=$($DOG vdi restore -s s1 v -p "$(sd_port 0)" <"$SD_TEST_DIR/short" 2>&1); rc=$?
check_eq "a truncated stream (the rollback is done, then it stops): exit 1" 1 "$rc"
check "... saying so" bash -c "echo '$out' | grep -q truncated"
check_eq "backup without -s: usage" 64 "$($DOG vdi backup v -p "$(sd_port 0)" >/dev/null 2>&1; echo $?)"
sd_done
