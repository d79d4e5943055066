#!/usr/bin/env bash
# 015-core-multi-sheep-start.sh - several sheep per host started as Sheepdog's scripts start them (daemonized, no --nbd) form a cluster; a busy default NBD port only warns; a daemon that fails after forking makes its parent exit 1.
# timeout: 300
. "$SD_TOP/tests/func/lib.sh"

# Hold the default NBD port (10809) ourselves, so every sheep below finds it
# busy whatever else runs on this machine. If something else holds it
# already, the sheep find it busy all the same.
hold_py='import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("0.0.0.0", 10809)); s.listen(1)
except OSError:
    pass
print("held", flush=True); time.sleep(120)'
python3 -c "$hold_py" >"$SD_TEST_DIR/hold.out" 2>&1 &
holder=$!
for ((t = 0; t < 50; t++)); do grep -q held "$SD_TEST_DIR/hold.out" 2>/dev/null && break; sleep 0.1; done

pids=()
stop_daemons() { local p; for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; kill "$holder" 2>/dev/null; }
trap 'stop_daemons; sd_cleanup' EXIT

# Sheepdog's line, one sheep per zone and port, daemonized, no --nbd.
for i in 0 1 2; do
	d=$(sd_dir "$i")
	"$SHEEP" "$d" -z "$i" -p "$(sd_port "$i")" -c "local:path=$SD_TEST_DIR/local" -n -y 127.0.0.1 \
		>"$SD_TEST_DIR/start$i.out" 2>&1
	check_eq "sheep $i: the start line returns 0" 0 "$?"
	[ -s "$d/sheep.pid" ] && pids+=("$(cat "$d/sheep.pid")")
done
check_eq "three pid files" 3 "${#pids[@]}"
for i in 0 1 2; do
	check "sheep $i listens" sd_wait_port "$(sd_port "$i")"
	check "sheep $i warns that the default NBD port is busy" \
		grep -q "port 10809 is in use" "$(sd_dir "$i")/sheep.log"
done
sd_wait_nodes 0 3 || not_ok "three sheep do not form a cluster"
check_eq "sheep 2 sees three nodes" 3 "$(dogn 2 node list -r | grep -c .)"
check "format 2:1" dogn 0 cluster format -c 2:1
check "create a VDI" dogn 1 vdi create v 16M
sd_random "$SD_TEST_DIR/data" $((6 << 20))
check "write through sheep 2" dogn 2 vdi write v 0 $((6 << 20)) <"$SD_TEST_DIR/data"
check_eq "read back through sheep 0" "$(sd_sha "$SD_TEST_DIR/data")" \
	"$(dogn 0 vdi read v 0 $((6 << 20)) | sha256sum | cut -d' ' -f1)"

# An explicit --nbd on a busy port is a startup failure, and the shell of a
# daemonizing sheep sees it: exit 1 and the reason on stderr, no daemon left.
d=$SD_TEST_DIR/explicit
"$SHEEP" "$d" -z 5 -p "$(sd_port 5)" -c "local:path=$SD_TEST_DIR/local" -n -y 127.0.0.1 \
	--nbd 10809 >"$SD_TEST_DIR/explicit.out" 2>&1
check_eq "explicit busy --nbd: the daemonizing sheep exits 1" 1 "$?"
check "it says startup failed" grep -q "startup failed (Address already in use)" "$SD_TEST_DIR/explicit.out"
check "the log says which port" grep -q "cannot start the NBD export on port 10809" "$d/sheep.log"
# The daemon exits after it reported: allow it seconds to go (a ThreadSanitizer
# build on a loaded machine takes that long to exit).
gone() { bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$(sd_port 5)) 2>/dev/null"; }
for _ in $(seq 100); do gone && break; sleep 0.1; done
check "no daemon left behind" gone
check "the cluster still has three nodes" bash -c "[ \$(\"$DOG\" node list -r -a 127.0.0.1 -p $(sd_port 0) | grep -c .) = 3 ]"

# With the port free, an explicit --nbd serves: nbdcopy reads the volume.
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
d=$(sd_dir 3)
"$SHEEP" "$d" -z 3 -p "$(sd_port 3)" -c "local:path=$SD_TEST_DIR/local" -n -y 127.0.0.1 \
	--nbd "$(sd_nbd_port 3)" >"$SD_TEST_DIR/start3.out" 2>&1
check_eq "sheep 3 with --nbd starts" 0 "$?"
[ -s "$d/sheep.pid" ] && pids+=("$(cat "$d/sheep.pid")")
sd_wait_nodes 0 4 || not_ok "sheep 3 did not join"
check_eq "NBD export on sheep 3 reads the data" "$(sd_sha "$SD_TEST_DIR/data")" \
	"$(nbdcopy "nbd://127.0.0.1:$(sd_nbd_port 3)/v" - 2>/dev/null | head -c $((6 << 20)) | sha256sum | cut -d' ' -f1)"

for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
for ((t = 0; t < 100; t++)); do
	alive=0
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
	[ $alive = 0 ] && break
	sleep 0.1
done
check_eq "every daemon stops on SIGTERM" 0 "$alive"
sd_done
