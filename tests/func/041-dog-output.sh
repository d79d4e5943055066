#!/usr/bin/env bash
# 041-dog-output.sh - six sheep: dog's output formats (cluster info, node list/info, vdi list) and exit codes against REFERENCE.md.
# timeout: 180
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

run() {
	"$@" >"$SD_TEST_DIR/out" 2>"$SD_TEST_DIR/err"
	rc=$?
	out=$(cat "$SD_TEST_DIR/out")
	err=$(cat "$SD_TEST_DIR/err")
}
line() { sed -n "${1}p" "$SD_TEST_DIR/out"; }
# running IDX: sheep IDX has not exited (an exited child is a zombie until reaped).
running() {
	local pid=${SD_PIDS[$1]:-}
	[ -n "$pid" ] && [ -r "/proc/$pid/status" ] && ! grep -q '^State:.*Z' "/proc/$pid/status"
}

sd_start_cluster 6 || bail "six sheep did not form a cluster"

# Before format.
run dogn 0 vdi create v 1G
check_eq "vdi create before format: exit 1" 1 "$rc"
check "vdi create before format: says run dog cluster format" \
	grep -q "cluster is not formatted: run dog cluster format" "$SD_TEST_DIR/err"
run dogn 0 cluster info
check_eq "cluster info before format: status" \
	"Cluster status: Waiting for cluster to be formatted" "$(line 1)"

run dogn 0 cluster format -c 4:2
check_eq "cluster format -c 4:2: exit 0" 0 "$rc"

# cluster info
run dogn 0 cluster info
check_eq "cluster info: exit 0" 0 "$rc"
check_eq "cluster info: line 1" "Cluster status: running, auto-recovery enabled" "$(line 1)"
check_eq "cluster info: line 2 blank" "" "$(line 2)"
check "cluster info: created at, ctime layout" \
	grep -qE '^Cluster created at [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} [0-9]{4}$' "$SD_TEST_DIR/out"
check_eq "cluster info: line 4 blank" "" "$(line 4)"
check_eq "cluster info: epoch header" "Epoch Time           Version [Host:Port:V-Nodes,,,]" "$(line 5)"
ep=$(line 6)
check "cluster info: newest epoch row layout ($ep)" \
	bash -c '[[ "$1" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9]{2}:[0-9]{2}:[0-9]{2}\ {1,6}[0-9]+\ \[(127\.0\.0\.1:[0-9]+:[0-9]+(,\ )?){6}\]$ ]]' _ "$ep"
for i in 0 1 2 3 4 5; do
	check "cluster info: newest epoch lists sheep $i" grep -q "127.0.0.1:$(sd_port $i):" <<<"$ep"
done

# node list: the formatted rows are the raw rows through Sheepdog's printf.
run dogn 0 node list -r
check_eq "node list -r: six rows" 6 "$(grep -c . "$SD_TEST_DIR/out")"
raw=$out
want="  Id   Host:Port         V-Nodes       Zone"
while read -r id hp vn zone; do
	want+=$'\n'$(printf "%4d   %-20s\t%2d%11u" "$id" "$hp" "$vn" "$zone")
done <<<"$raw"
run dogn 0 node list
check_eq "node list: Sheepdog layout" "$want" "$out"
for i in 0 1 2 3 4 5; do
	check "node list -r: sheep $i with its zone" grep -qE "^[0-9]+ 127.0.0.1:$(sd_port $i) [0-9]+ $i\$" <<<"$raw"
done

# node info
run dogn 0 node info
check_eq "node info: exit 0" 0 "$rc"
check_eq "node info: header" "$(printf 'Id\tSize\tUsed\tAvail\tUse%%')" "$(line 1)"
rows=$(grep -cP '^ ?[0-9]+\t[0-9.]+ [MGTP]B\t[0-9.]+ [MGTP]B\t[0-9.]+ [MGTP]B\t[ 0-9]{2}[0-9]%$' "$SD_TEST_DIR/out")
check_eq "node info: six node rows" 6 "$rows"
check "node info: Total row" grep -qP '^Total\t[0-9.]+ [MGTP]B\t[0-9.]+ [MGTP]B\t[0-9.]+ [MGTP]B\t[ 0-9]{2}[0-9]%$' "$SD_TEST_DIR/out"
check_eq "node info: last line" "$(printf 'Total virtual image size\t0.0 MB')" "$(tail -n1 "$SD_TEST_DIR/out")"

# vdi create with and without -c; vdi list
check "vdi create -c 3" dogn 0 vdi create -c 3 alpha 4G
check "vdi create -c 2:1 (options after the arguments)" dogn 0 vdi create beta 1G -c 2:1
check "vdi create without -c takes the cluster default" dogn 0 vdi create gamma 100M
check "vdi create -c 4:2 -z 23" dogn 0 vdi create -z 23 -c 4:2 delta 8G
head -c $((8 << 20)) /dev/urandom >"$SD_TEST_DIR/d8"
check "vdi write 8 MiB to alpha" dogn 0 vdi write alpha <"$SD_TEST_DIR/d8"

run dogn 0 vdi list -r
check_eq "vdi list -r: four rows" 4 "$(grep -c . "$SD_TEST_DIR/out")"
raw=$out
declare -A human=([alpha]="4.0 GB" [beta]="1.0 GB" [gamma]="100 MB" [delta]="8.0 GB")
declare -A used=([alpha]="8.0 MB" [beta]="0.0 MB" [gamma]="0.0 MB" [delta]="0.0 MB")
declare -A bytes=([alpha]=4294967296 [beta]=1073741824 [gamma]=104857600 [delta]=8589934592)
declare -A pol=([alpha]=3 [beta]=2:1 [gamma]=4:2 [delta]=4:2)
declare -A shift=([alpha]=22 [beta]=22 [gamma]=22 [delta]=23)
want="  Name        Id    Size    Used  Shared    Creation time   VDI id  Copies  Tag   Block Size Shift"
while read -r type name snap size u sh ctime vid copies sft; do
	check_eq "vdi list -r $name: type, snap id" "= 0" "$type $snap"
	check_eq "vdi list -r $name: size in bytes" "${bytes[$name]}" "$size"
	check_eq "vdi list -r $name: policy" "${pol[$name]}" "$copies"
	check_eq "vdi list -r $name: block size shift" "${shift[$name]}" "$sft"
	check "vdi list -r $name: creation time is recent epoch seconds" \
		test $(( $(date +%s) - ctime )) -lt 600
	want+=$'\n'$(printf "%c %-8s %5d %7s %7s %7s %s  %7x %6s %13s %3u" " " "$name" 0 \
		"${human[$name]}" "${used[$name]}" "0.0 MB" "$(date -d "@$ctime" '+%Y-%m-%d %H:%M')" \
		"0x$vid" "$copies" "" "$sft")
done <<<"$raw"
check_eq "vdi list -r: alpha uses 8 MiB" "8388608" "$(awk '$2 == "alpha" {print $5}' <<<"$raw")"
run dogn 0 vdi list
check_eq "vdi list: Sheepdog layout" "$want" "$out"
run dogn 0 vdi list beta
check_eq "vdi list NAME: header and one row" 2 "$(grep -c . "$SD_TEST_DIR/out")"
check "vdi list NAME: the row is beta's" grep -q "^  beta " "$SD_TEST_DIR/out"

# Exit codes of REFERENCE.md
run dogn 0 vdi create alpha 1G
check_eq "vdi create of an existing name: exit 3" 3 "$rc"
check "vdi create of an existing name: says so" grep -q "alpha already exists" "$SD_TEST_DIR/err"
run dogn 0 vdi delete nosuch
check_eq "vdi delete of a missing VDI: exit 5" 5 "$rc"
check "vdi delete of a missing VDI: says not found" grep -q "VDI nosuch not found" "$SD_TEST_DIR/err"
run dogn 0 vdi read nosuch
check_eq "vdi read of a missing VDI: exit 5" 5 "$rc"
run dogn 0 vdi create big 5T
check_eq "vdi create beyond the 4 MiB-object maximum: exit 1" 1 "$rc"
run dogn 0 vdi read alpha 0 4096 -c 3
check_eq "vdi read rejects -c: exit 64" 64 "$rc"

# resize
check "vdi resize beta 2G" dogn 0 vdi resize beta 2G
check_eq "vdi list shows the new size" "2147483648" "$(dogn 0 vdi list -r beta | awk '{print $4}')"
run dogn 0 vdi resize beta 1G
check_eq "vdi resize cannot shrink: exit 1" 1 "$rc"
run dogn 0 vdi write beta $((2 << 30)) 1 <<<"x"
check_eq "vdi write past the end: exit 1" 1 "$rc"

# -P preallocates: every object used right away, and reads as zeros
check "vdi create -P" dogn 0 vdi create -P -c 2:1 pre 16M
check_eq "vdi list: preallocated VDI uses its size" "16777216" "$(dogn 0 vdi list -r pre | awk '{print $5}')"
check_eq "preallocated VDI reads as zeros" "$(head -c 16M /dev/zero | sd_sha /dev/stdin)" \
	"$(dogn 0 vdi read pre | sd_sha /dev/stdin)"

# delete
check "vdi delete delta" dogn 0 vdi delete delta
check_eq "deleted VDI is gone from vdi list" "" "$(dogn 0 vdi list -r | awk '$2 == "delta"')"
run dogn 0 node info
check_eq "node info: total virtual size counts the VDIs" \
	"$(printf 'Total virtual image size\t6.1 GB')" "$(tail -n1 "$SD_TEST_DIR/out")"

# Any sheep answers the same.
check_eq "sheep 3 lists the same VDIs" "$(dogn 0 vdi list -r)" "$(dogn 3 vdi list -r)"

# Progress bar: on a terminal only.
dogn 0 vdi read alpha 0 32M >/dev/null 2>"$SD_TEST_DIR/err"
check_eq "vdi read piped: nothing on stderr" "" "$(cat "$SD_TEST_DIR/err")"
script -qec "$DOG vdi read alpha 0 32M -p $(sd_port 0) >/dev/null" /dev/null >"$SD_TEST_DIR/tty" 2>&1
check "vdi read on a terminal: progress bar reaches 100%" grep -q "reading 100% \[=*\]" "$SD_TEST_DIR/tty"

# node kill: the node with that Id goes away.
victim=$(dogn 0 node list -r | awk '$1 == 5 {print $2}')
check "node kill 5" dogn 0 node kill 5
sd_wait_nodes 0 5
check_eq "node kill: five nodes left" 5 "$(dogn 0 node list -r | grep -c .)"
check_eq "node kill: the killed one is $victim" "" "$(dogn 0 node list -r | awk -v v="$victim" '$2 == v')"
run dogn 0 node kill 9
check_eq "node kill of a missing Id: exit 5" 5 "$rc"

# cluster shutdown: every sheep exits.
check "cluster shutdown" dogn 0 cluster shutdown
for ((t = 0; t < 100; t++)); do
	alive=0
	for i in 0 1 2 3 4; do running "$i" && alive=$((alive + 1)); done
	[ $alive = 0 ] && break
	sleep 0.1
done
check_eq "cluster shutdown: no sheep left running" 0 "$alive"
run dogn 0 node list
check_eq "after shutdown: dog says sheep is not running (exit 2)" 2 "$rc"
sd_done
