#!/usr/bin/env bash
# 127-snap-cluster-snapshot.sh - dog cluster snapshot save|list|load (Sheepdog 1.0's whole-cluster snapshot to a local directory): every VDI (a 2:1 family with two snapshots, a 2-copy VDI, an 8 MiB-object VDI) saved twice, objects kept once by content; list in Sheepdog's format; load by tag and by index formats the cluster and brings each VDI, snapshot and tag back (sha256 of each through another sheep); bad tags, unknown snapshots.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

S=$SD_TEST_DIR/snapdir
sha_of() { dogn "$1" vdi read "${@:2}" | sha256sum | cut -d' ' -f1; }
wr() { sd_random "$SD_TEST_DIR/w" "$3"; dogn 0 vdi write "$1" "$2" "$3" <"$SD_TEST_DIR/w"; }

sd_start_cluster 3 || bail "three sheep did not form a cluster"
dogn 0 cluster format -c 2 >/dev/null || bail "format"
dogn 0 vdi create -c 2:1 a 32M && wr a 0 $((12 << 20)) || bail "a"
dogn 1 vdi snapshot -s before a || bail "snapshot a"
wr a $((4 << 20)) $((6 << 20)) && wr a $((20 << 20)) 100000 || bail "write a"
dogn 2 vdi snapshot a || bail "second snapshot of a"
wr a 0 4096 || bail "write a again"
dogn 0 vdi create b 20M && wr b 0 $((20 << 20)) || bail "b"
dogn 0 vdi create -z 23 c 64M && wr c $((40 << 20)) $((9 << 20)) || bail "c"
a1=$(sha_of 1 -s before a) a2=$(sha_of 1 -s 2 a) a3=$(sha_of 2 a) b1=$(sha_of 2 b) c1=$(sha_of 1 c)

dogn 0 cluster snapshot save 1st "$S" 2>"$SD_TEST_DIR/err"
check_eq "a tag starting with a number: exit 64" 64 "$?"
check "it says so" grep -q "Tag should not start with number." "$SD_TEST_DIR/err"
check "save first" dogn 1 cluster snapshot save first "$S"
nobj1=$(find "$S/objects" -type f | wc -l)
log "first: $nobj1 object files"
# a's working VDI and its snapshots share most objects: kept once.
check "objects are kept once: fewer files ($nobj1) than objects saved" \
	test "$nobj1" -lt "$(grep -c '^obj ' "$S/snap/1")"
dogn 1 cluster snapshot save first "$S" 2>"$SD_TEST_DIR/err"
check_eq "a used tag: exit 2" 2 "$?"
check "it says so" grep -q "Snapshot tag has already been used" "$SD_TEST_DIR/err"

# Change the cluster, save again.
wr a 0 $((4 << 20)) || not_ok "rewrite a"
a4=$(sha_of 0 a)
check "delete b" dogn 0 vdi delete b
check "save second" dogn 2 cluster snapshot save second "$S"
check_eq "the second save adds only a's new objects" $((nobj1 + 1)) "$(find "$S/objects" -type f | wc -l)"
out=$(dogn 0 cluster snapshot list "$S")
log "$out"
check_eq "list: Sheepdog's header" "$(printf 'Index\t\tTag\t\tSnapshot Time')" "$(head -n 1 <<<"$out")"
check "list: 1 first" grep -qP '^1\t\tfirst\t\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$' <<<"$out"
check "list: 2 second" grep -qP '^2\t\tsecond\t\t' <<<"$out"

# Wreck the cluster's contents, then load the first by tag.
check "delete a (working)" dogn 0 vdi delete a
check "load first" dogn 1 cluster snapshot load first "$S"
log "$(dogn 0 vdi list)"
check_eq "after load: a's snapshot 'before'" "$a1" "$(sha_of 2 -s before a)"
check_eq "after load: a's snapshot 2" "$a2" "$(sha_of 0 -s 2 a)"
check_eq "after load: a" "$a3" "$(sha_of 1 a)"
check_eq "after load: b" "$b1" "$(sha_of 0 b)"
check_eq "after load: c (8 MiB objects)" "$c1" "$(sha_of 2 c)"
check_eq "after load: a is 2:1, b 2 copies, c shift 23" "a 2:1 b 2 c 23" \
	"$(dogn 0 vdi list -r | awk '$1 == "=" && $2 == "a" {a = $9} $1 == "=" && $2 == "b" {b = $9} $1 == "=" && $2 == "c" {c = $NF} END {print "a", a, "b", b, "c", c}')"
check "after load: a's data can be written" wr a 0 4096

check "load 2 (by index)" dogn 0 cluster snapshot load 2 "$S"
check_eq "index 2: a as saved second" "$a4" "$(sha_of 1 a)"
check_eq "index 2: a's snapshot 'before' as well" "$a1" "$(sha_of 1 -s before a)"
dogn 0 vdi read b 0 1 >/dev/null 2>&1
check_eq "index 2: b (deleted before it) is absent: exit 5" 5 "$?"

dogn 0 cluster snapshot load nosuch "$S" 2>"$SD_TEST_DIR/err"
check_eq "load of an unknown tag: exit 2" 2 "$?"
check "it says so" grep -q "Snapshot index or tag does not exist." "$SD_TEST_DIR/err"
dogn 0 cluster snapshot list "$SD_TEST_DIR/nodir" 2>/dev/null
check_eq "list of a directory without snapshots: exit 2" 2 "$?"
sd_done
