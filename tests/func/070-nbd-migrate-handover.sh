#!/usr/bin/env bash
# 070-nbd-migrate-handover.sh - live-migration lock handover: a destination attached as NAME:handover through another sheep opens while the source holds the lock, takes it at its first write; the source is fenced; writes before, during and after verified.
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need python3 qemu-io qemu-img
MiB=$((1 << 20))

nbd_cluster 3 2:1
dogn 0 vdi create vm1 32M >/dev/null || bail "vdi create vm1"
nbd_wait_nbd 0 && nbd_wait_nbd 1 || bail "no NBD"
expect=$SD_TEST_DIR/expect.raw
truncate -s 32M "$expect"
mirror() { python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[3]) << 20); f.write(bytes([int(sys.argv[2], 0)]) * (1 << 20))' "$expect" "$1" "$2"; }

# A qemu-io per side, as the source and the destination QEMU of a migration.
declare -A QPID=()
start_qio() { # start_qio NAME URI: FIFO-driven qemu-io; fd 3 = src, 4 = dst
	mkfifo "$SD_TEST_DIR/$1.in"
	qemu-io -f raw "$2" <"$SD_TEST_DIR/$1.in" >"$SD_TEST_DIR/$1.out" 2>&1 &
	QPID[$1]=$!
}
stop_qio() { # stop_qio NAME FD: quit, close its FIFO, wait for it
	echo quit >&"$2"
	eval "exec $2>&-"
	local p=${QPID[$1]} _
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill "$p" 2>/dev/null
	wait "$p" 2>/dev/null
}
count() { grep -o "$2" "$SD_TEST_DIR/$1.out" | wc -l; }
wait_count() { # wait_count SIDE PATTERN N
	for _ in $(seq 600); do [ "$(count "$1" "$2")" -ge "$3" ] && return 0; sleep 0.1; done
	return 1
}
start_qio src "$(nbd_uri 0 vm1)"
exec 3>"$SD_TEST_DIR/src.in"
echo "write -P 0x11 0 1M" >&3; mirror 0x11 0
echo "write -P 0x12 4M 1M" >&3; mirror 0x12 4
check "source: writes before the migration" wait_count src "wrote 1048576" 2

out=$(qemu-io -f raw -c "read 0 512" "$(nbd_uri 1 vm1)" 2>&1)
check "a plain second writer (NAME) is still refused while the source holds the lock" \
	grep -q "Permission denied\|locked" <<<"$out"

# The destination opens while the source holds the lock.
start_qio dst "$(nbd_uri 1 vm1:handover)"
exec 4>"$SD_TEST_DIR/dst.in"
echo "read -P 0x12 4M 1M" >&4
check "destination (NAME:handover via sheep 1) opens and reads the source's data" wait_count dst "read 1048576" 1
check_eq "the source still holds the lock" "vm1 127.0.0.1:$(sd_port 0) nbd" "$(dogn 2 vdi lock list -r | awk '{ print $1, $3, $4 }')"
# During: the source keeps writing until the destination takes over.
echo "write -P 0x13 8M 1M" >&3; mirror 0x13 8
check "source: a write during the migration (before the handover)" wait_count src "wrote 1048576" 3
echo "read -P 0x13 8M 1M" >&4
check "destination sees the source's last write" wait_count dst "read 1048576" 2

# Handover: the destination's first write takes the lock.
echo "write -P 0x21 12M 1M" >&4; mirror 0x21 12
check "destination: first write (takes the lock over)" wait_count dst "wrote 1048576" 1
check_eq "the lock is now the destination's (sheep 1)" "vm1 127.0.0.1:$(sd_port 1) nbd" "$(dogn 2 vdi lock list -r | awk '{ print $1, $3, $4 }')"
echo "write -P 0x99 0 1M" >&3
check "source: a write after the handover fails" wait_count src "write failed" 1
echo "write -P 0x22 16M 1M" >&4; mirror 0x22 16
check "destination: writes after the handover" wait_count dst "wrote 1048576" 2
echo "read -P 0x11 0 1M" >&4
check "destination reads the source's first write, not the fenced one" wait_count dst "read 1048576" 3

# The source detaches: it does not release the destination's lock.
stop_qio src 3
check_eq "the lock stays the destination's after the source detaches" "vm1 127.0.0.1:$(sd_port 1) nbd" "$(dogn 2 vdi lock list -r | awk '{ print $1, $3, $4 }')"
stop_qio dst 4
check "destination: no failure" bash -c "! grep -qi 'failed\|error' '$SD_TEST_DIR/dst.out'"
qemu-img convert -f raw -O raw "$(nbd_uri 2 vm1)" "$SD_TEST_DIR/back.raw" || bail "read back"
check_eq "VDI sha256 = the acknowledged writes of both sides (the fenced write absent)" \
	"$(sd_sha "$expect")" "$(sd_sha "$SD_TEST_DIR/back.raw")"
check_eq "no lock left after both detached" "" "$(dogn 0 vdi lock list -r)"

# A handover attach that never writes leaves the holder's lock alone.
start_qio src2 "$(nbd_uri 0 vm1)"
exec 3>"$SD_TEST_DIR/src2.in"
echo "write -P 0x31 20M 1M" >&3; mirror 0x31 20
wait_count src2 "wrote 1048576" 1
check "a destination that only reads, then leaves" qemu-io -f raw -c "read -P 0x31 20M 1M" "$(nbd_uri 1 vm1:handover)"
echo "write -P 0x32 24M 1M" >&3; mirror 0x32 24
check "the source still writes after it left" wait_count src2 "wrote 1048576" 2
stop_qio src2 3
qemu-img convert -f raw -O raw "$(nbd_uri 2 vm1)" "$SD_TEST_DIR/back.raw" || bail "read back"
check_eq "VDI sha256 after the aborted migration" "$(sd_sha "$expect")" "$(sd_sha "$SD_TEST_DIR/back.raw")"
for i in 0 1 2; do check "sheep $i running" sd_alive $i; done
sd_done
