#!/usr/bin/env bash
# 018-core-foreign-store.sh - a sheep whose store belongs to another format of the cluster is refused and exits non-zero with its store untouched (as Sheepdog; never wiped automatically); moved away, a fresh store joins.
# timeout: 180
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

sd_start_cluster 4 || bail "four sheep did not form a cluster"
check "format 2:1" dogn 0 cluster format -c 2:1
check "vdi create old 16M" dogn 0 vdi create old 16M
sd_random "$SD_TEST_DIR/data" $((8 << 20))
check "write 8 MiB" dogn 0 vdi write old 0 <"$SD_TEST_DIR/data"

# Sheep 3 leaves; the others are formatted again (a new cluster).
sd_kill 3
sd_wait_nodes 0 3 || bail "the cluster did not see sheep 3 leave"
sleep 1.1 # a different format time (seconds)
check "format again without sheep 3" dogn 0 cluster format -c 2:1
# The objects, epochs and config (names and contents): every file but the log,
# pid and lock files and the crash journal and write-ahead log (replayed
# when the store opens, as after any crash; not the format's data).
listing() {
	(cd "$(sd_dir 3)" && find . -type f ! -name sheep.log ! -name sheep.pid ! -name '*.lock' \
		! -path './obj/.journal/*' ! -name 'wal.*' -exec sha256sum {} + | sort -k2)
}
listing >"$SD_TEST_DIR/before"
before=$(sha256sum <"$SD_TEST_DIR/before")
nfiles=$(find "$(sd_dir 3)" -type f | wc -l)

# Sheep 3 comes back with its old store: refused, exits non-zero, store kept.
"$SHEEP" "$(sd_dir 3)" -f -z 3 -p "$(sd_port 3)" -y 127.0.0.1 -b 127.0.0.1 \
	-c "local:path=$SD_TEST_DIR/local" -n -l level=debug --nbd off >"$SD_TEST_DIR/sheep3.out" 2>&1 &
pid=$!
SD_PIDS[3]=$pid
for ((t = 0; t < 300; t++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid"; rc=$?
unset "SD_PIDS[3]"
check_eq "sheep with another format's store: exits 1" 1 "$rc"
check "the log says why" grep -q "belongs to another format of the cluster.*refusing to join" "$(sd_dir 3)/sheep.log"
listing >"$SD_TEST_DIR/after"
after=$(sha256sum <"$SD_TEST_DIR/after")
diff "$SD_TEST_DIR/before" "$SD_TEST_DIR/after" | sed 's/^/# /'
check_eq "its store is untouched (same files and sizes)" "$before" "$after"
check "its store still holds objects ($nfiles files)" test "$nfiles" -gt 5
sd_wait_nodes 0 3 || true
check_eq "the cluster still has 3 members" 3 "$(dogn 0 node list -r | grep -c .)"

# Moved away, sheep 3 joins as a new node.
mv "$(sd_dir 3)" "$SD_TEST_DIR/n3.old"
sd_start 3 || bail "sheep 3 did not start on a fresh store"
check "a fresh store joins" sd_wait_nodes 0 4
check "vdi create new 16M" dogn 0 vdi create new 16M
check "write 8 MiB to the new VDI" dogn 3 vdi write new 0 <"$SD_TEST_DIR/data"
check_eq "read back" "$(sd_sha "$SD_TEST_DIR/data")" "$(dogn 1 vdi read new 0 $((8 << 20)) | sd_sha /dev/stdin)"

sd_done
