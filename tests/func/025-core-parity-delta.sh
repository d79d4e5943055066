#!/usr/bin/env bash
# 025-core-parity-delta.sh - small 4:2 writes send their delta to the parity holders, which fold it into the parity (PEER_WH_DELTA), and take the old bytes from the first reply of the data prepare (PEER_WH_OLD): reads healthy and with two sheep down match a reference, and coordinators read over the network well under once per write (about once with the old bytes read first, three times without the delta).
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
command -v qemu-io >/dev/null || bail "qemu-io is not installed (scripts/install-deps)"

MiB=$((1 << 20))
SIZE=$((16 * MiB))
NW=150
# Peer reads served over the network by all six sheep (a coordinator's
# reads of its own fragments are not counted: they never leave it).
peer_reads() { sd_metric_sum 'sheep_requests_total{op="peer_read"}'; }
# patch ROUND NODE: NW random 4 KiB-aligned and unaligned small writes via
# one qemu-io on sheep NODE's NBD export, applied to the reference too.
patch() {
	python3 - "$SD_TEST_DIR/ref" "$SD_TEST_DIR/cmds.$1" "$1" $NW $SIZE <<'PY'
import random, sys
ref, cmds, rnd, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(1000 + rnd)
buf = bytearray(open(ref, "rb").read())
with open(cmds, "w") as f:
    for k in range(n):
        ln = 4096 if k % 3 else rng.randrange(1, 3000)
        off = rng.randrange(0, size - ln) & (~4095 if k % 3 else ~0)
        # stay inside one fragment (1 MiB for 4 MiB objects at 4:2)
        if off // (1 << 20) != (off + ln - 1) // (1 << 20):
            off = (off // (1 << 20)) * (1 << 20)
        pat = rng.randrange(1, 256)
        buf[off:off + ln] = bytes([pat]) * ln
        f.write("-c\nwrite -P %d %d %d\n" % (pat, off, ln))
open(ref, "wb").write(buf)
PY
	local args=()
	mapfile -t args <"$SD_TEST_DIR/cmds.$1"
	qemu-io -f raw "nbd://127.0.0.1:$(sd_nbd_port "$2")/vol" "${args[@]}" >"$SD_TEST_DIR/qio.$1" 2>&1
}
same() { # NODE: the whole volume read through sheep NODE equals the reference
	[ "$(dogn "$1" vdi read vol 0 $SIZE | sha256sum | cut -d' ' -f1)" = "$(sd_sha "$SD_TEST_DIR/ref")" ]
}

sd_start_metrics || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "format"
dogn 0 vdi create vol $SIZE || bail "vdi create"
sd_random "$SD_TEST_DIR/ref" $SIZE
dogn 1 vdi write vol 0 $SIZE <"$SD_TEST_DIR/ref" || bail "fill"

r0=$(peer_reads)
check "$NW small writes through sheep 0 acknowledged" patch 1 0
r1=$(peer_reads)
log "peer reads during $NW writes with the delta: $((r1 - r0))"
check "with the old bytes from the data prepare, at most 0.2 network reads per write ($((r1 - r0)) for $NW)" \
	test $(( (r1 - r0) * 10 )) -le $((NW * 2))
check "the volume matches the reference through sheep 3" same 3

# Reading the old bytes first (before PEER_WH_OLD): about one read per write.
for i in 0 1 2 3 4 5; do sd_kill $i; done
sd_start_metrics SHEEP_TEST_NO_OLD_FIRST=1 || bail "restart with SHEEP_TEST_NO_OLD_FIRST"
r0=$(peer_reads)
check "$NW more writes reading the old bytes first acknowledged" patch 4 3
r1=$(peer_reads)
log "peer reads during $NW writes reading the old bytes first: $((r1 - r0))"
check "then at least 0.5 network reads per write ($((r1 - r0)) for $NW)" \
	test $(( (r1 - r0) * 10 )) -ge $((NW * 5))
check "the volume matches the reference through sheep 4" same 4

# The same writes with the delta off read the parity too: the count above
# is the delta's doing.
for i in 0 1 2 3 4 5; do sd_kill $i; done
sd_start_metrics SHEEP_TEST_NO_DELTA=1 || bail "restart with SHEEP_TEST_NO_DELTA"
check "the volume still matches after the restart" same 2
r0=$(peer_reads)
check "$NW more writes with the delta off acknowledged" patch 2 4
r1=$(peer_reads)
log "peer reads during $NW writes without the delta: $((r1 - r0))"
check "without it, at least 1.8 network reads per write ($((r1 - r0)) for $NW)" \
	test $(( (r1 - r0) * 10 )) -ge $((NW * 18))
for i in 0 1 2 3 4 5; do sd_kill $i; done
sd_start_metrics || bail "restart with the delta"
check "$NW more writes with the delta acknowledged" patch 3 5
check "the volume matches the reference through sheep 1" same 1

# The parity the holders computed is what degraded reads decode from: with
# two sheep down every object is read through its parity somewhere.
sd_kill 2
sd_kill 4
sd_wait_nodes 0 4 || not_ok "membership did not drop to 4"
check "with sheep 2 and 4 down the volume matches through sheep 0" same 0
check "and through sheep 5" same 5
sd_done
