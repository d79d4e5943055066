#!/usr/bin/env bash
# 141-vnodes-persist.sh - dog node vnodes set survives a restart of that sheep (kept in DIR/vnodes, read at start, winning over -V and the capacity); Sheepdog's bare cluster format -V (--fixedvnodes, no count) gives every sheep the 128 vnodes of a sheep started without -V instead of a count by capacity; data reads back (sha256) after the restart.
# timeout: 240
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

vn() { dogn "$1" node list -r | awk '{print $3}' | xargs; }
sd_start 0 -s 4G && sd_start 1 -s 1G && sd_start 2 -s 1G || bail "three sheep"
sd_wait_nodes 0 3 || bail "three sheep"
out=$(dogn 0 cluster format -V -c 2)
check_eq "format -V (no count) prints the backend line" "using backend plain store" "$out"
check_eq "format -V: every sheep has 128 vnodes, not a share by capacity" "128 128 128" "$(vn 1)"
rec_mkvdi 0 v 2 64M $((24 << 20)) || bail "make v"

check "vnodes set 200 on sheep 1" dogn 1 node vnodes set 200
check_eq "node list has it" "128 200 128" "$(vn 0)"
check_eq "it is kept in sheep 1's directory" 200 "$(cat "$(sd_dir 1)/vnodes")"
e=$(rec_epoch 0)
rec_wait_done 0 3 "$e" || not_ok "recovery after the set"

# restart sheep 1 (SIGTERM, as an init system would), with its own -V even
kill "${SD_PIDS[1]}"; wait "${SD_PIDS[1]}" 2>/dev/null; unset "SD_PIDS[1]"
sd_wait_nodes 0 2 || not_ok "sheep 1 left"
sd_start 1 -s 1G -V 64 || bail "restart sheep 1"
sd_wait_nodes 0 3 || bail "sheep 1 back"
check_eq "vnodes get after the restart" 200 "$(dogn 1 node vnodes get)"
check_eq "node list after the restart" "128 200 128" "$(vn 2)"
check "the log says where it came from" grep -q "vnodes 200, as dog node vnodes set left them" "$(sd_dir 1)/sheep.log"
e=$(rec_epoch 0)
rec_wait_done 0 3 "$e" || not_ok "recovery after the restart"
dogn 1 vdi read v >"$SD_TEST_DIR/got" || not_ok "read v"
check_eq "v reads back (sha256) through sheep 1" "$(sd_sha "$SD_TEST_DIR/v.ref")" "$(sd_sha "$SD_TEST_DIR/got")"
sd_done
