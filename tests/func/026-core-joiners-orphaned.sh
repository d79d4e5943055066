#!/usr/bin/env bash
# 026-core-joiners-orphaned.sh - two sheep waiting to join when the synced member that should send them the cluster state dies: both get synced and serve the data (issue 14: they waited for each other forever).
# timeout: 420
#
# SHEEP_TEST_PAUSE_FILE=F (lib/testhook.h), given only to the sheep that
# must stop: "snap-send" in F holds its loop before it sends a joiner its
# state snapshot, "snap-sent" right after it sent one.
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
F=$SD_TEST_DIR/pause
MiB=$((1 << 20))
R=$SD_TEST_DIR/local

# held POINT PORT: wait until the sheep on PORT holds at POINT.
held() {
	for _ in $(seq 300); do
		[ -e "$F.$1" ] && [ "$(cat "$F.by" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
# joined_log IDX PORT: sheep IDX applied the join of the sheep on PORT.
joined_log() {
	for _ in $(seq 300); do
		grep -q ":$2 joined" "$(sd_dir "$1")/sheep.log" && return 0
		sleep 0.1
	done
	return 1
}
# member_file PORT: the local driver has a member file for PORT (its JOIN is appended).
member_file() {
	for _ in $(seq 300); do
		ls "$R" | grep -q "^m\.[^_]*_$1_" && return 0
		sleep 0.1
	done
	return 1
}
# reads_back IDX: sheep IDX serves v with the data written before.
reads_back() {
	local got
	for _ in $(seq 30); do
		got=$(dogn "$1" vdi read v 2>/dev/null | sha256sum | cut -d' ' -f1)
		[ "$got" = "$(sd_sha "$SD_TEST_DIR/ref")" ] && return 0
		sleep 0.5
	done
	log "sheep $1 read back ${got:-nothing}"
	return 1
}
# mark IDX: remember where sheep IDX's log ends (before a restart).
declare -A MARK=()
mark() { MARK[$1]=$(($(stat -c %s "$(sd_dir "$1")/sheep.log" 2>/dev/null || echo 0) + 1)); }
# synced IDX: since its mark, sheep IDX logged that it has the cluster state.
synced() {
	for _ in $(seq 100); do
		tail -c +"${MARK[$1]:-1}" "$(sd_dir "$1")/sheep.log" |
			grep -qE "joined the cluster at epoch|oldest member starts from local state" && return 0
		sleep 0.1
	done
	return 1
}

# --- 1: the only synced member dies before either joiner got its state ---
SHEEP_TEST_PAUSE_FILE=$F sd_start 0 || bail "sheep 0"
sd_start 1 && sd_start 2 && sd_wait_nodes 0 3 || bail "three sheep"
dogn 0 cluster format -c 2 >/dev/null || bail "format"
dogn 0 vdi create v 8M >/dev/null || bail "vdi create"
sd_random "$SD_TEST_DIR/ref" $((8 * MiB))
dogn 0 vdi write v 0 $((8 * MiB)) <"$SD_TEST_DIR/ref" || bail "fill v"
sd_kill 1
sd_kill 2
sd_wait_nodes 0 1 || bail "sheep 0 still lists the killed ones"
echo snap-send >"$F"
mark 1; mark 2
sd_start 1 || bail "restart sheep 1"
check "sheep 0 holds before sending sheep 1 its state" held snap-send "$(sd_port 0)"
sd_start 2 || bail "restart sheep 2"
member_file "$(sd_port 2)" || bail "sheep 2 never joined"
sleep 1
sd_kill 0
log "sheep 0 killed: sheep 1 and 2 joined and neither has the cluster state"
check "the oldest joiner (sheep 1) founds the cluster from its own state" synced 1
check "sheep 2 gets the state from it" synced 2
# Both were formatted members: the cluster waits for sheep 0, the node of
# the newest epoch that is missing, as after a whole-cluster stop.
check "they wait for sheep 0 (no I/O)" bash -c "'$DOG' cluster info -a 127.0.0.1 -p $(sd_port 2) | grep -q 'Waiting for other nodes'"
rm -f "$F" "$F".*
sd_start 0 || bail "restart sheep 0"
check "the three form the cluster again" sd_wait_nodes 2 3 30
check "sheep 2 reads back v as written" reads_back 2
check "sheep 1 reads back v as written" reads_back 1

# --- 2: the new sender dies after syncing one of two joiners ---
# Sheep 3 joins the three; sheep 0 and 1 get the hook. Sheep 1 and 2 are
# killed and rejoin while sheep 0 holds before sending; sheep 0 dies, sheep
# 3 (the next oldest synced) sends the newest joiner its state and holds;
# it dies too. The joiner it synced must then sync the other.
for i in 0 1 2; do sd_kill "$i"; done
rm -rf "$SD_TEST_DIR"/n* "$R"
SHEEP_TEST_PAUSE_FILE=$F sd_start 0 || bail "sheep 0 (2)"
SHEEP_TEST_PAUSE_FILE=$F sd_start 3 || bail "sheep 3"
sd_start 1 && sd_start 2 && sd_wait_nodes 0 4 || bail "four sheep"
dogn 0 cluster format -c 4 >/dev/null || bail "format 4 copies"
dogn 0 vdi create v 8M >/dev/null || bail "vdi create (2)"
sd_random "$SD_TEST_DIR/ref" $((8 * MiB))
dogn 0 vdi write v 0 $((8 * MiB)) <"$SD_TEST_DIR/ref" || bail "fill v (2)"
sd_kill 1
sd_kill 2
sd_wait_nodes 0 2 || bail "sheep 0 still lists sheep 1 and 2"
echo snap-send >"$F"
mark 1; mark 2
sd_start 1 || bail "restart sheep 1 (2)"
check "sheep 0 holds before sending sheep 1 its state" held snap-send "$(sd_port 0)"
sd_start 2 || bail "restart sheep 2 (2)"
check "sheep 3 applied sheep 2's join" joined_log 3 "$(sd_port 2)"
echo snap-sent >"$F"
sd_kill 0
check "sheep 3 sent one joiner its state and holds" held snap-sent "$(sd_port 3)"
sd_kill 3
log "sheep 0 and 3 killed"
check "sheep 2 (the newest joiner, sent first) has the state" synced 2
check "sheep 1 gets the state from sheep 2" synced 1
check "the two form a cluster" sd_wait_nodes 1 2 30
check "sheep 1 reads back v as written" reads_back 1
check "sheep 2 reads back v as written" reads_back 2
sd_done
