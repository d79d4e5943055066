#!/usr/bin/env bash
# 089-cluster-wire-version.sh - one build runs a cluster: a sheep whose cluster messages have another layout (SHEEP_TEST_WIRE_VER, as another build) is refused when it joins, exits 1 and says why, and changes nothing; after a whole-cluster restart in which such a sheep came up first, the others refuse it the same way; started again with one build, the cluster and its data are back.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

top_epoch() { dogn "$1" cluster info | awk '/^Epoch/{getline; print $3; exit}'; }

# run_odd IDX VERSION: start sheep IDX as a build with cluster messages of
# VERSION, in the background (its pid in SD_PIDS).
run_odd() {
	SHEEP_TEST_WIRE_VER=$2 "$SHEEP" "$(sd_dir "$1")" -f -z "$1" -p "$(sd_port "$1")" -y 127.0.0.1 \
		-b 127.0.0.1 -c "local:path=$SD_TEST_DIR/local" -n -l level=debug --nbd off \
		>>"$SD_TEST_DIR/sheep$1.out" 2>&1 &
	SD_PIDS[$1]=$!
}

# exit_of IDX: wait up to 30 s for sheep IDX to exit; its exit status in
# RC ("alive" if it did not).
exit_of() {
	local pid=${SD_PIDS[$1]} t
	for ((t = 0; t < 300; t++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then RC=alive; return; fi
	wait "$pid"
	RC=$?
	unset "SD_PIDS[$1]"
}

refused_line='the cluster runs another build of sheep (its cluster messages are version 1, this sheep.s version 2): refusing to join; run one build on every sheep'

sd_start_cluster 3 || bail "three sheep did not form a cluster"
check "format 2:1" dogn 0 cluster format -c 2:1
check "vdi create v 16M" dogn 0 vdi create v 16M
sd_random "$SD_TEST_DIR/data" $((8 << 20))
check "write 8 MiB" dogn 0 vdi write v 0 <"$SD_TEST_DIR/data"
epoch0=$(top_epoch 0)

# 1. A sheep of another build joins a running cluster: refused.
mkdir -p "$(sd_dir 3)"
run_odd 3 2
exit_of 3
check_eq "a joiner of another build exits 1" 1 "$RC"
check "its log says why" grep -q "$refused_line" "$(sd_dir 3)/sheep.log"
check "it took nothing: no VDI table, no epoch log" \
	bash -c "! test -s '$(sd_dir 3)/vdis' && ! ls '$(sd_dir 3)/epoch/'* >/dev/null 2>&1"
sd_wait_nodes 0 3 || true
check_eq "the cluster still has its 3 members" 3 "$(dogn 0 node list -r | grep -c .)"
check_eq "the data reads back through sheep 2" "$(sd_sha "$SD_TEST_DIR/data")" \
	"$(dogn 2 vdi read v 0 $((8 << 20)) | sd_sha /dev/stdin)"
check "vdi create w 16M after the refusal" dogn 1 vdi create w 16M
check "write 8 MiB to w" dogn 1 vdi write w 0 <"$SD_TEST_DIR/data"

# 2. The same sheep of this build joins.
rm -rf "$(sd_dir 3)"
sd_start 3 || bail "sheep 3 did not start"
check "a sheep of this build joins" sd_wait_nodes 0 4
check_eq "the new sheep reads v" "$(sd_sha "$SD_TEST_DIR/data")" \
	"$(dogn 3 vdi read v 0 $((8 << 20)) | sd_sha /dev/stdin)"

# 3. Whole-cluster restart, sheep 0 coming back first as another build: it
# founds the cluster alone; the others refuse its state and exit 1.
check "cluster shutdown" dogn 0 cluster shutdown
for i in 0 1 2 3; do
	exit_of $i
	check_eq "sheep $i exited after shutdown" 0 "$RC"
done
run_odd 0 2
sd_wait_port "$(sd_port 0)" || bail "sheep 0 (another build) did not listen"
for i in 1 2 3; do sd_start $i || true; done
for i in 1 2 3; do
	exit_of $i
	check_eq "sheep $i refuses the state of sheep 0 (another build) and exits 1" 1 "$RC"
	check "sheep $i says why" grep -q "the cluster runs another build of sheep (its cluster messages are version 2, this sheep.s version 1): refusing to join" \
		"$(sd_dir $i)/sheep.log"
done
sd_kill 0

# 4. One build again: the cluster, its VDIs and data are back.
for i in 0 1 2 3; do sd_start $i || not_ok "restart sheep $i"; done
for i in 0 1 2 3; do sd_wait_nodes $i 4 || not_ok "sheep $i does not see 4 nodes"; done
check_eq "both VDIs are there" "v w" "$(dogn 2 vdi list -r | awk '{print $2}' | sort | xargs)"
check_eq "v reads back" "$(sd_sha "$SD_TEST_DIR/data")" \
	"$(dogn 1 vdi read v 0 $((8 << 20)) | sd_sha /dev/stdin)"
check_eq "w reads back" "$(sd_sha "$SD_TEST_DIR/data")" \
	"$(dogn 3 vdi read w 0 $((8 << 20)) | sd_sha /dev/stdin)"
epoch1=$(top_epoch 0)
check "the epoch went on ($epoch0 -> $epoch1)" test "$epoch1" -gt "$epoch0"
sd_done
