#!/usr/bin/env bash
# 067-nbd-lock.sh - one lock for every writer: dog vdi write and raw client writes respect an NBD writer's lock; dog vdi lock list/unlock; a broken lock fences its writer; nbdinfo shows the lock message; Used drops after WRITE_ZEROES.
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"
nbd_need python3 qemu-io nbdinfo
MiB=$((1 << 20))

nbd_cluster 3 2:1
dogn 0 vdi create vol 64M >/dev/null || bail "vdi create vol"
nbd_wait_nbd 0 || bail "no NBD on sheep 0"
uri=$(nbd_uri 0 vol)
a=$SD_TEST_DIR/a b=$SD_TEST_DIR/b
sd_random "$a" $((8 * MiB))
sd_random "$b" $((8 * MiB))
check "dog vdi write with no other writer" dogn 1 vdi write vol 0 $((8 * MiB)) <"$a"
check_eq "dog vdi lock list: no locks left after dog vdi write" "" "$(dogn 1 vdi lock list -r)"

# A long-lived NBD writer: qemu-io reading commands from a FIFO.
mkfifo "$SD_TEST_DIR/qio"
qemu-io -f raw "$uri" <"$SD_TEST_DIR/qio" >"$SD_TEST_DIR/qio.out" 2>&1 &
qpid=$!
exec 3>"$SD_TEST_DIR/qio"
qio() { echo "$*" >&3; }
qio "write -P 0x5a $((16 * MiB)) 1M"
for _ in $(seq 600); do grep -q "wrote" "$SD_TEST_DIR/qio.out" && break; sleep 0.1; done
check "qemu-io attached for writing and wrote" grep -q "wrote 1048576" "$SD_TEST_DIR/qio.out"

locks=$(dogn 2 vdi lock list -r)
check_eq "dog vdi lock list: vol held by an NBD writer through sheep 0" \
	"vol 127.0.0.1:$(sd_port 0) nbd" "$(awk '{ print $1, $3, $4 }' <<<"$locks")"
out=$(dogn 1 vdi write vol 0 $((8 * MiB)) <"$b" 2>&1)
rc=$?
check_eq "dog vdi write under the NBD writer's lock: exit 1" 1 "$rc"
check "... with a clear message ($out)" grep -q "VDI vol is locked: an NBD writer attached through sheep 127.0.0.1:$(sd_port 0) has it open for writing.*dog vdi lock unlock vol" <<<"$out"
check_eq "... and the data is untouched" "$(sd_sha "$a")" "$(dogn 2 vdi read vol 0 $((8 * MiB)) | sha256sum | cut -d' ' -f1)"
out=$(python3 "$SD_TOP/tests/func/sd_lockclient.py" "$(sd_port 1)" vol write 2>&1)
check "Sheepdog-protocol client that did not lock: write refused VDI_LOCKED ($out)" grep -q "^ok" <<<"$out"
check_eq "... and the data is untouched" "$(sd_sha "$a")" "$(dogn 2 vdi read vol 0 $((8 * MiB)) | sha256sum | cut -d' ' -f1)"
# The refusal (NBD_REP_ERR_POLICY) carries the message; libnbd 1.14 shows
# it in its debug output only.
out=$(LIBNBD_DEBUG=1 nbdinfo "$uri" 2>&1)
check "nbdinfo on the locked VDI fails" test $? -ne 0
check "... and gets the lock message from the server" grep -q "server error message: VDI 'vol' is locked: another client has it attached for writing" <<<"$out"
check "nbdinfo on NAME:ro works while it is locked" bash -c "nbdinfo '$(nbd_uri 1 vol:ro)' | grep -q 'export-size: $((64 * MiB))'"

# Break the stale-looking lock: the writer is fenced, dog can write.
check "dog vdi lock unlock vol" dogn 2 vdi lock unlock vol
check_eq "dog vdi lock list: empty after unlock" "" "$(dogn 0 vdi lock list -r)"
out=$(dogn 0 vdi lock unlock vol 2>&1)
check "unlock of an unlocked VDI says so ($out)" grep -q "VDI vol is not locked" <<<"$out"
qio "write -P 0x66 0 1M"
qio "read -P 0x5a $((16 * MiB)) 1M"
for _ in $(seq 600); do grep -q "write failed" "$SD_TEST_DIR/qio.out" && break; sleep 0.1; done
check "the fenced NBD writer's write fails" grep -q "write failed" "$SD_TEST_DIR/qio.out"
check "dog vdi write after the unlock" dogn 1 vdi write vol 0 $((8 * MiB)) <"$b"
check_eq "dog vdi read gives what dog wrote (the fenced write did not land)" "$(sd_sha "$b")" \
	"$(dogn 2 vdi read vol 0 $((8 * MiB)) | sha256sum | cut -d' ' -f1)"
exec 3>&-
wait $qpid
# qemu-io's stdout (unlike its stderr) may reach the file only at exit.
check "the fenced NBD writer could still read (and the data it read is intact)" \
	bash -c "grep -q 'read 1048576' '$SD_TEST_DIR/qio.out' && ! grep -q 'Pattern verification failed' '$SD_TEST_DIR/qio.out'"

# Used after WRITE_ZEROES of whole objects (may unmap) drops like TRIM.
used() { dogn 0 vdi list -r vol | awk '{ print $5 }'; }
u0=$(used)
check_eq "Used before: the 8 MiB dog wrote + the 1 MiB qemu-io wrote (one 4 MiB object)" $((12 * MiB)) "$u0"
check "qemu-io write -z -u of 8 whole objects" qemu-io -f raw -c "write -z -u 0 $((8 * MiB))" "$uri"
u1=$(used)
check "dog vdi list Used dropped by the 8 MiB zeroed ($u0 -> $u1)" test $((u0 - u1)) -eq $((8 * MiB))
for i in 0 1 2; do check "sheep $i still running" sd_alive $i; done
sd_done
