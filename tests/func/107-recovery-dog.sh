#!/usr/bin/env bash
# 107-recovery-dog.sh - the recovery controls: sheep -R, dog node recovery get-throttle/set-throttle (and bad input), cluster recover disable/enable/force, progress output.
# timeout: 180
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

# A bad -R is refused at startup with a clear message.
mkdir -p "$SD_TEST_DIR/bad"
"$SHEEP" "$SD_TEST_DIR/bad" -f -p "$(sd_port 9)" -c "local:path=$SD_TEST_DIR/badlocal" -R max=0 >"$SD_TEST_DIR/bad.out" 2>&1
rc=$?
check "sheep -R max=0 exits with an error" test $rc -ne 0
check "sheep -R max=0 says what is wrong" grep -q -- "-R" "$SD_TEST_DIR/bad.out"

# Seven zones for six fragments: when one sheep leaves, each position it
# held has a home in the zone that held nothing, so recovery must move data.
for i in 0 1 2 3 4 5 6; do sd_start "$i" -R max=3,interval=7 || bail "sheep $i"; done
sd_wait_nodes 0 7 || bail "seven sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
check_eq "sheep -R max=3,interval=7 shows in get-throttle" "max 3, interval 7 ms" "$(dogn 2 node recovery get-throttle)"
check "set-throttle 5 0" dogn 0 node recovery set-throttle 5 0
check_eq "set-throttle applies to every node" "5 0" "$(dogn 4 node recovery get-throttle -r)"
dogn 0 node recovery set-throttle 0 10 2>"$SD_TEST_DIR/err"
check_eq "set-throttle 0 is a usage error" 64 $?
check "set-throttle 0 says why" grep -q "1..1024" "$SD_TEST_DIR/err"
dogn 0 node recovery set-throttle 2000 2>/dev/null
check_eq "set-throttle 2000 is a usage error" 64 $?
check_eq "a refused set-throttle changed nothing" "5 0" "$(dogn 1 node recovery get-throttle -r)"
dogn 0 node recovery bogus 2>/dev/null
check_eq "unknown recovery subcommand is a usage error" 64 $?
dogn 0 cluster recover sideways 2>/dev/null
check_eq "unknown recover action is a usage error" 64 $?

rec_mkvdi 0 e42 4:2 $((32 * MiB)) $((32 * MiB)) || bail "4:2 VDI with data"
rec_wait_done 0 7 1 60 || bail "initial recovery state never settled"
hdr=$(dogn 0 node recovery | head -2)
check_eq "dog node recovery header" "Nodes In Recovery:
  Id   Host:Port         V-Nodes       Zone       Progress" "$hdr"
check_eq "nothing in recovery: no rows" 2 "$(dogn 0 node recovery | wc -l)"
e0=$(rec_epoch 0)

check "cluster recover disable" dogn 0 cluster recover disable
check "cluster info shows recovery disabled" grep -q "disabled" <<<"$(dogn 0 cluster info)"
sd_kill 6
sd_wait_nodes 0 6 || bail "sheep 0 still lists the killed node"
sleep 2
rows=$(dogn 0 node recovery)
log "$rows"
check "disabled: nodes are listed as still to recover" test "$(wc -l <<<"$rows")" -gt 2
check "disabled: raw state says disabled" grep -q "status disabled" <<<"$(rec_states 0)"
check_eq "disabled: nothing moved" 0 "$(($(rec_sum copied 0) + $(rec_sum rebuilt 0)))"
check "cluster recover enable" dogn 0 cluster recover enable
check "cluster info shows recovery enabled" grep -q "enabled" <<<"$(dogn 0 cluster info)"
check "enabled: recovery completes" rec_wait_done 0 6 $((e0 + 1)) 90 0
check "enabled: fragments moved" test "$(($(rec_sum copied 0) + $(rec_sum rebuilt 0)))" -gt 0
r0=$(rec_sum rounds 0)
check "cluster recover force" dogn 0 cluster recover force
sleep 2
check "force: every node planned again" test "$(rec_sum rounds 0)" -ge $((r0 + 5))
rec_check_read 1 e42 "after disable/enable/force"
sd_done
