#!/usr/bin/env bash
# 121-snap-reclaim.sh - six sheep, 4:2: delete in every order (live first, snapshot first, clone first, a snapshot a clone depends on refused): after each delete the objects left are exactly those the remaining VDIs map (counted by object id in every store), what remains reads back (sha256), and at the end no fragment file and no inode is left.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

MiB=$((1 << 20))
OBJ=$((4 * MiB))
VSIZE=$((40 * MiB))

# distinct data objects / inode objects held in the stores
data_objs() { find "$SD_TEST_DIR"/n*/obj -maxdepth 1 -type f -name '0*_*' -printf '%f\n' | cut -d_ -f1 | sort -u | wc -l; }
data_frags() { find "$SD_TEST_DIR"/n*/obj -maxdepth 1 -type f -name '0*_*' | wc -l; }
inodes() { find "$SD_TEST_DIR"/n*/obj -maxdepth 1 -type f -name '8*_*' -printf '%f\n' | cut -d_ -f1 | sort -u | wc -l; }
# wobj VDI REF IDX: fill object IDX of VDI (and REF) with random bytes
wobj() {
	head -c $OBJ /dev/urandom >"$SD_TEST_DIR/p"
	dogn 0 vdi write "$1" $(($3 * OBJ)) $OBJ <"$SD_TEST_DIR/p" || return 1
	dd if="$SD_TEST_DIR/p" of="$2" bs=1M oflag=seek_bytes seek=$(($3 * OBJ)) conv=notrunc status=none
}
vsha() { dogn 0 vdi read ${2:-} "$1" | sha256sum | cut -d' ' -f1; }

# setup P: VDI P with snapshots 1 and 2 and the live VDI (8 objects):
# s1 owns 0-3; s2 owns 0', 1'; live owns 1'', 5.
setup() {
	local v=$1 r="$SD_TEST_DIR/$1"
	dogn 0 vdi create "$v" $VSIZE || return 1
	truncate -s $VSIZE "$r"
	for i in 0 1 2 3; do wobj "$v" "$r" $i || return 1; done
	dogn 0 vdi snapshot "$v" && cp "$r" "$r.s1" || return 1
	wobj "$v" "$r" 0 && wobj "$v" "$r" 1 || return 1
	dogn 0 vdi snapshot "$v" && cp "$r" "$r.s2" || return 1
	wobj "$v" "$r" 1 && wobj "$v" "$r" 5 || return 1
}

sd_start_cluster 6 || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 >/dev/null || bail "format"
check_eq "empty cluster: no data object" 0 "$(data_objs)"

# live first
setup a || bail "setup a"
check_eq "a: 8 data objects (6 fragments each)" "8 48" "$(data_objs) $(data_frags)"
check "a: delete the live VDI" dogn 0 vdi delete a
check_eq "a: live gone: its 2 objects freed" 6 "$(data_objs)"
check_eq "a: snapshot 2 reads" "$(sd_sha "$SD_TEST_DIR/a.s2")" "$(vsha a "-s 2")"
check "a: delete snapshot 2" dogn 0 vdi delete -s 2 a
check_eq "a: snapshot 2 gone: its 2 objects freed" 4 "$(data_objs)"
check_eq "a: snapshot 1 reads" "$(sd_sha "$SD_TEST_DIR/a.s1")" "$(vsha a "-s 1")"
check "a: delete snapshot 1" dogn 0 vdi delete -s 1 a
check_eq "a: nothing left (objects, inodes)" "0 0" "$(data_objs) $(inodes)"

# snapshot first (oldest, then middle)
setup b || bail "setup b"
check "b: delete snapshot 1 first" dogn 0 vdi delete -s 1 b
check_eq "b: objects 0 and 1 of snapshot 1 freed, 2 and 3 kept for the others" 6 "$(data_objs)"
check_eq "b: snapshot 2 reads" "$(sd_sha "$SD_TEST_DIR/b.s2")" "$(vsha b "-s 2")"
check_eq "b: live reads" "$(sd_sha "$SD_TEST_DIR/b")" "$(vsha b)"
check "b: delete snapshot 2" dogn 0 vdi delete -s 2 b
check_eq "b: object 1' freed, 0' kept for the live VDI" 5 "$(data_objs)"
check_eq "b: live reads" "$(sd_sha "$SD_TEST_DIR/b")" "$(vsha b)"
check_eq "b: list shows only the live VDI" "= b 0" "$(dogn 0 vdi list -r | awk '{print $1, $2, $3}')"
check "b: delete the live VDI" dogn 0 vdi delete b
check_eq "b: nothing left (objects, inodes)" "0 0" "$(data_objs) $(inodes)"

# clone first; a snapshot with a clone cannot go
setup c || bail "setup c"
check "c: clone snapshot 2 as cc" dogn 0 vdi clone -s 2 c cc
cp "$SD_TEST_DIR/c.s2" "$SD_TEST_DIR/cc"
wobj cc "$SD_TEST_DIR/cc" 2 && wobj cc "$SD_TEST_DIR/cc" 7 || bail "clone writes"
check_eq "c: 10 data objects" 10 "$(data_objs)"
out=$(dogn 0 vdi delete -s 2 c 2>&1); rc=$?
check_eq "c: deleting snapshot 2 with a clone is refused (exit 1)" 1 "$rc"
check "c: ... and the error names the clone" bash -c "echo '$out' | grep -q 'clones that depend on it: cc'"
check_eq "c: ... and nothing was freed" 10 "$(data_objs)"
check "c: delete the clone" dogn 0 vdi delete cc
check_eq "c: the clone's 2 objects freed" 8 "$(data_objs)"
check "c: now snapshot 2 can go" dogn 0 vdi delete -s 2 c
check "c: and snapshot 1" dogn 0 vdi delete -s 1 c
check_eq "c: the 5 objects the live VDI maps are left (its 2, 0' of snapshot 2, 2 and 3 of snapshot 1)" 5 "$(data_objs)"
check_eq "c: live reads" "$(sd_sha "$SD_TEST_DIR/c")" "$(vsha c)"
check "c: delete the live VDI" dogn 0 vdi delete c
check_eq "c: nothing left (objects, inodes)" "0 0" "$(data_objs) $(inodes)"

# a clone outlives every VDI of its source
setup d || bail "setup d"
check "d: clone snapshot 1 as dc" dogn 0 vdi clone -s 1 d dc
dogn 0 vdi delete d && dogn 0 vdi delete -s 2 d || bail "d: deletes"
check_eq "d: the clone still reads snapshot 1's data after its VDI is gone" "$(sd_sha "$SD_TEST_DIR/d.s1")" "$(vsha dc)"
check "d: snapshot 1 (with a clone) is refused" bash -c "! $DOG vdi delete -s 1 d -a 127.0.0.1 -p $(sd_port 0) 2>/dev/null"
check_eq "d: objects left: snapshot 1's 4" 4 "$(data_objs)"
dogn 0 vdi delete dc && dogn 0 vdi delete -s 1 d || bail "d: last deletes"
check_eq "d: nothing left (objects, inodes)" "0 0" "$(data_objs) $(inodes)"
sd_done
