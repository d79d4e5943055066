#!/usr/bin/env bash
# 068-nbd-reconnect.sh - gateway failover: a QEMU NBD client (qemu-io, reconnect-delay) attached to a local gateway sheep that is killed -9 and restarted keeps writing with no I/O error and no lost acknowledged write.
# timeout: 500
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need python3 qemu-io qemu-img
MiB=$((1 << 20))

# Three storage sheep and one gateway-only sheep (3), the VM host's local
# attach point (README: "Keeping a VM attached").
for i in 0 1 2; do sd_start "$i" || bail "sheep $i"; done
sd_start 3 -g || bail "gateway sheep 3"
sd_wait_nodes 0 4 || bail "four sheep"
dogn 0 cluster format -c 2:1 >/dev/null || bail "format 2:1"
dogn 0 vdi create vm1 64M >/dev/null || bail "vdi create vm1"
nbd_wait_nbd 3 || bail "no NBD on sheep 3"

# qemu-io as QEMU would open the disk: NBD with reconnect-delay=30, commands
# from a FIFO so one client lives through the restart.
opts="driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$(sd_nbd_port 3),export=vm1,reconnect-delay=30"
mkfifo "$SD_TEST_DIR/qio"
qemu-io --image-opts "$opts" <"$SD_TEST_DIR/qio" >"$SD_TEST_DIR/qio.out" 2>&1 &
qpid=$!
exec 3>"$SD_TEST_DIR/qio"
qio() { echo "$*" >&3; }
# wait_wrote N: until N writes are acknowledged (or 120 s).
wait_wrote() {
	for _ in $(seq 1200); do
		[ "$(grep -c 'wrote 1048576' "$SD_TEST_DIR/qio.out")" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
expect=$SD_TEST_DIR/expect.raw
truncate -s 64M "$expect"
put() { # put PATTERN OFFSET_MIB: one 1 MiB write, mirrored in the reference
	qio "write -P $1 $(($2 * MiB)) 1M"
	python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[3]) << 20); f.write(bytes([int(sys.argv[2], 0)]) * (1 << 20))' "$expect" "$1" "$2"
}

# One command at a time: qemu-io reads its next command only when idle.
for k in 0 1 2 3; do put $((0x10 + k)) $((k * 5)); wait_wrote $((k + 1)) || break; done
check "4 writes acknowledged before the crash" wait_wrote 4

sd_kill 3
log "killed -9 the gateway sheep the client is attached to"
t0=$(date +%s.%N)
put 0x14 20   # issued while it is down
sleep 2
check_eq "no write acknowledged while the attached sheep is down" 4 "$(grep -c 'wrote 1048576' "$SD_TEST_DIR/qio.out")"
sd_start 3 -g || bail "gateway sheep 3 did not restart"
log "restarted it (as systemd Restart= would)"
check "the write issued during the outage completes after the restart" wait_wrote 5
log "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "that write waited %.1f s (kill, 2 s down, restart, rejoin, reconnect)", b - a }')"
for k in 5 6 7 8 9; do put $((0x10 + k)) $((k * 5 + 2)); wait_wrote $((k + 1)) || break; done
check "5 more writes after the restart" wait_wrote 10
qio "flush"
qio "quit"
exec 3>&-
for _ in $(seq 100); do kill -0 $qpid 2>/dev/null || break; sleep 0.1; done
kill $qpid 2>/dev/null
wait $qpid 2>/dev/null
check "no I/O error in the client" bash -c "! grep -qi 'error\|failed' '$SD_TEST_DIR/qio.out'"
grep -i "error\|failed" "$SD_TEST_DIR/qio.out" | head -5 | sed 's/^/# /'

# Nothing acknowledged was lost: the VDI, read through another sheep, is the reference.
qemu-img convert -f raw -O raw "$(nbd_uri 1 vm1)" "$SD_TEST_DIR/back.raw" || bail "read back"
check_eq "VDI sha256 = reference sha256 (10 acknowledged writes, none lost)" \
	"$(sd_sha "$expect")" "$(sd_sha "$SD_TEST_DIR/back.raw")"
check_eq "no lock left behind" "" "$(dogn 0 vdi lock list -r)"
for i in 0 1 2 3; do check "sheep $i running" sd_alive $i; done
sd_done
