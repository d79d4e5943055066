#!/usr/bin/env bash
# 053-dog-sheepdog-compat.sh - three sheep: the texts and behaviours Sheepdog 1.0's scripts compare (format's backend line, write past the end, create failure, set-throttle 0 0, sheep -g -V).
# timeout: 180
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

run() {
	"$@" >"$SD_TEST_DIR/out" 2>"$SD_TEST_DIR/err"
	rc=$?
	out=$(cat "$SD_TEST_DIR/out")
	err=$(cat "$SD_TEST_DIR/err")
}

# sheep refuses -g with -V (either order) and a bad vnode count, in Sheepdog's words.
mkdir -p "$SD_TEST_DIR/x"
run "$SHEEP" "$SD_TEST_DIR/x" -f -g -V 4 -p "$(sd_port 9)"
check_eq "sheep -g -V 4: exit 1" 1 "$rc"
check "sheep -g -V 4: Sheepdog's message" grep -qx "Options '-g' and '-V' can not be both specified" "$SD_TEST_DIR/err"
run "$SHEEP" "$SD_TEST_DIR/x" -f -V 4 -g -p "$(sd_port 9)"
check_eq "sheep -V 4 -g: exit 1" 1 "$rc"
run "$SHEEP" "$SD_TEST_DIR/x" -f -V 0 -p "$(sd_port 9)"
check_eq "sheep -V 0: exit 1" 1 "$rc"
check "sheep -V 0: Sheepdog's message" grep -qx "Invalid number of vnodes '0': must be an integer between 1 and 65535" "$SD_TEST_DIR/err"
run "$DOG" cluster format -V 70000 -p "$(sd_port 9)"
check_eq "dog cluster format -V 70000: exit 1" 1 "$rc"
check "dog -V 70000: Sheepdog's message" grep -q "Invalid number of vnodes '70000': must be an integer between 1 and 65535" "$SD_TEST_DIR/err"

sd_start_cluster 3 || bail "three sheep did not form a cluster"

run dogn 0 cluster format -c 2:1
check_eq "cluster format: exit 0" 0 "$rc"
check_eq "cluster format: prints the backend as Sheepdog" "using backend plain store" "$out"
check "cluster info -v: Cluster store line for 2:1" grep -qx "Cluster store: plain with 2:1 redundancy policy" <<<"$(dogn 1 cluster info -v)"

# vdi write past the end: up to the end, the rest ignored, exit 0.
check "vdi create w 8M" dogn 0 vdi create w 8M
sd_random "$SD_TEST_DIR/data" $((2 << 20))
run dogn 0 vdi write w $((7 << 20)) $((2 << 20)) <"$SD_TEST_DIR/data"
check_eq "vdi write of 2 MiB at 7 MiB of 8 MiB: exit 0" 0 "$rc"
check_eq "vdi write past the end: the first 1 MiB is stored" \
	"$(head -c $((1 << 20)) "$SD_TEST_DIR/data" | sd_sha /dev/stdin)" \
	"$(dogn 0 vdi read w $((7 << 20)) | sd_sha /dev/stdin)"
run dogn 0 vdi write w $((6 << 20)) <"$SD_TEST_DIR/data"
check_eq "vdi write with no length, 2 MiB at 6 MiB: exit 0" 0 "$rc"
check_eq "vdi write with no length: all of it stored" "$(sd_sha "$SD_TEST_DIR/data")" \
	"$(dogn 0 vdi read w $((6 << 20)) $((2 << 20)) | sd_sha /dev/stdin)"
run dogn 0 vdi read w $((7 << 20)) $((4 << 20))
check_eq "vdi read past the end: exit 0" 0 "$rc"
check_eq "vdi read past the end: stops at the end (1 MiB)" $((1 << 20)) "$(stat -c %s "$SD_TEST_DIR/out")"
run dogn 0 vdi write w $((9 << 20)) 1 <<<"x"
check_eq "vdi write starting beyond the end: exit 1" 1 "$rc"

# cluster info -v: Sheepdog's store line for copies (a format of its own).
mkdir -p "$SD_TEST_DIR/solo"
"$SHEEP" "$SD_TEST_DIR/solo" -f -p "$(sd_port 8)" -y 127.0.0.1 -b 127.0.0.1 \
	-c "local:path=$SD_TEST_DIR/sololocal" -n --nbd off >"$SD_TEST_DIR/solo.out" 2>&1 &
SD_PIDS[8]=$!
sd_wait_port "$(sd_port 8)" || bail "solo sheep did not listen"
sd_wait_nodes 8 1 || bail "solo sheep did not form its cluster"
check "solo: cluster format -c 1" dogn 8 cluster format -c 1
check "cluster info -v: Cluster store line for 1 copy" grep -qx "Cluster store: plain with 1 copies" <<<"$(dogn 8 cluster info -v)"
sd_kill 8

# vdi create failure: Sheepdog's line.
run dogn 0 vdi create w 8M
check_eq "vdi create of an existing name: exit 3" 3 "$rc"
check_eq "vdi create of an existing name: Sheepdog's line first" \
	"Failed to create VDI w: VDI exists already" "$(head -n 1 "$SD_TEST_DIR/err")"

# set-throttle 0 0 is accepted and echoed as Sheepdog's dog does.
run dogn 0 node recovery set-throttle 0 0
check_eq "set-throttle 0 0: exit 0" 0 "$rc"
check_eq "set-throttle 0 0: Sheepdog's line" "max (0), interval (0)" "$out"
run dogn 0 node recovery set-throttle 0 10
check_eq "set-throttle 0 10 (nothing would run): usage error" 64 "$rc"
run dogn 0 node recovery set-throttle 2 100
check_eq "set-throttle 2 100: echoed" "max (2), interval (100)" "$out"
check_eq "get-throttle after set-throttle 2 100" "max 2, interval 100 ms" "$(dogn 1 node recovery get-throttle)"
run dogn 0 node recovery set-throttle 0 0
check "get-throttle after set-throttle 0 0: the default pace (max > 0)" \
	test "$(dogn 1 node recovery get-throttle -r | cut -d' ' -f1)" -gt 0

sd_done
