#!/usr/bin/env bash
# 122-snap-bad-input.sh - three sheep: bad snapshot/clone/rollback/delete input gets a clear error and the right exit code and changes nothing (VDI list and stored objects identical); writes to a snapshot refused (dog, protocol); a snapshot racing a delete leaves no object behind; a Sheepdog 1.0 protocol client (not dog) takes a snapshot by tag, reads it and copies on write.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

MiB=$((1 << 20))
objs() { find "$SD_TEST_DIR"/n*/obj -maxdepth 1 -type f -name '*_*' -printf '%f %s\n' | sort | sha256sum | cut -d' ' -f1; }
data_objs() { find "$SD_TEST_DIR"/n*/obj -maxdepth 1 -type f -name '0*_*' -printf '%f\n' | cut -d_ -f1 | sort -u | wc -l; }
state() { echo "$(dogn 0 vdi list -r | sort | sha256sum | cut -d' ' -f1) $(objs)"; }

# refused DESC EXIT GREP dog-args...: exit code, message, and nothing changed
refused() {
	local desc=$1 want=$2 pat=$3; shift 3
	local before after out rc
	before=$(state)
	out=$(dogn 0 "$@" 2>&1); rc=$?
	after=$(state)
	if [ "$rc" != "$want" ]; then not_ok "$desc (exit $rc, wanted $want: $out)"; return; fi
	if ! echo "$out" | grep -qi -- "$pat"; then not_ok "$desc (message '$out' lacks '$pat')"; return; fi
	if [ "$before" != "$after" ]; then not_ok "$desc (something changed)"; return; fi
	ok "$desc: exit $want, '$out'"
}

sd_start_cluster 3 || bail "three sheep did not form a cluster"
dogn 0 cluster format -c 2:1 >/dev/null || bail "format"
dogn 0 vdi create v 16M && sd_random "$SD_TEST_DIR/a" $((6 * MiB)) && dogn 0 vdi write v <"$SD_TEST_DIR/a" || bail "setup"
dogn 0 vdi snapshot -s one v || bail "snapshot"

refused "snapshot of a missing VDI" 5 "not found\|no vdi" vdi snapshot nosuch
refused "clone of the working VDI (not a snapshot)" 1 "not a snapshot" vdi clone v c
refused "clone of a missing snapshot id" 5 "has no snapshot 7" vdi clone -s 7 v c
refused "clone of a missing tag" 5 "has no snapshot nope" vdi clone -s nope v c
refused "clone onto an existing name" 3 "exists" vdi clone -s 1 v v
refused "rollback to a missing snapshot id" 5 "has no snapshot 9" vdi rollback -s 9 v
refused "rollback to a missing tag" 5 "has no snapshot zzz" vdi rollback -s zzz v
refused "rollback without -s" 64 "give the snapshot" vdi rollback v
refused "rollback of a missing VDI" 5 "has no snapshot" vdi rollback -s 1 nosuch
long=$(head -c 256 /dev/zero | tr '\0' t)
refused "a tag of 256 bytes" 64 "tag too long" vdi snapshot -s "$long" v
refused "a tag already used by another snapshot" 3 "already has a snapshot tagged 'one'" vdi snapshot -s one v
refused "a numeric tag" 64 "is a number" vdi snapshot -s 42 v
refused "write to a snapshot (dog)" 1 "read-only" vdi write -s 1 v 0 512
refused "delete of a missing snapshot" 5 "has no snapshot 5" vdi delete -s 5 v
dogn 0 vdi clone -s one v cl >/dev/null || bail "clone"
refused "delete of a snapshot with a clone" 1 "clones that depend on it: cl" vdi delete -s one v
check_eq "tag of 255 bytes is accepted" 0 "$(dogn 0 vdi snapshot -s "${long:1}" v >/dev/null 2>&1; echo $?)"
check_eq "the snapshot still reads its data" "$(sd_sha "$SD_TEST_DIR/a")" "$(dogn 1 vdi read -s one v 0 $((6 * MiB)) | sha256sum | cut -d' ' -f1)"

# A Sheepdog 1.0 client: snapshot by tag via the inode, read, refused writes, COW
out=$(python3 "$SD_TOP/tests/func/snap_sd1client.py" "$(sd_port 2)" v qemu-snap "$SD_TEST_DIR/sd1.snap"); rc=$?
echo "$out" | sed 's/^/# /'
check_eq "Sheepdog 1.0 client: snapshot, read, refused writes, copy-on-write" 0 "$rc"
dogn 0 vdi read v >"$SD_TEST_DIR/live.now" || bail "read"
check_eq "the 1.0 client's snapshot reads (through dog) what it read" "$(sd_sha "$SD_TEST_DIR/sd1.snap")" "$(dogn 0 vdi read -s qemu-snap v | sha256sum | cut -d' ' -f1)"
check "dog list shows the 1.0 client's snapshot with its tag" bash -c "$DOG vdi list -r -a 127.0.0.1 -p $(sd_port 0) | grep -q '^s v .* qemu-snap 22\$'"

# Snapshot racing delete, 20 rounds: never a leak
for k in $(seq 1 20); do
	dogn 0 vdi create "r$k" 8M >/dev/null && echo x | dogn 0 vdi write "r$k" 0 2 || bail "race setup $k"
	dogn 1 vdi snapshot "r$k" >/dev/null 2>&1 &
	pid=$!
	dogn 2 vdi delete "r$k" >/dev/null 2>&1
	wait $pid
	dogn 0 vdi delete "r$k" >/dev/null 2>&1
	dogn 0 vdi delete -s 1 "r$k" >/dev/null 2>&1
done
check_eq "snapshot racing delete: after deleting what is left, no r* VDI" "" "$(dogn 0 vdi list -r | awk '$2 ~ /^r[0-9]/')"
dogn 0 vdi delete cl && for t in 1 2 3; do dogn 0 vdi delete -s $t v 2>/dev/null; done
dogn 0 vdi delete v
check_eq "and no data object is left in any store" 0 "$(data_objs)"
for i in 0 1 2; do check "sheep $i alive" sd_alive $i; done
sd_done
