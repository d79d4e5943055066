#!/usr/bin/env bash
# 083-zookeeper-ensemble.sh - six sheep on a private three-server ZooKeeper ensemble: the leader server killed under fio load (no error, no epoch change), then the whole ensemble lost (I/O refused with a clear log line) and back (I/O resumes, same epoch, data intact); an NBD writer's unlock that meets the outage is retried, not dropped.
# timeout: 600
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/zookeeper.sh"
. "$SD_TOP/tests/func/nbd_lib.sh"

zk_test_begin "$0" "$@"
nbd_need fio qemu-io
zk_start_ensemble 3 || bail "a three-server ZooKeeper ensemble did not start"
ok "three ZooKeeper servers serve on $(zk_hosts)"

MiB=$((1 << 20))
TMO=6000
SPEC="zookeeper:$(zk_hosts),timeout=$TMO,path=/sd083"
zk_leader() {
	local i
	for i in 0 1 2; do zk_4lw "$i" srvr | grep -q '^Mode: leader' && { echo "$i"; return; }; done
}

for i in 0 1 2 3 4 5; do
	sd_start "$i" -c "$SPEC" || bail "sheep $i did not start"
done
sd_wait_nodes 0 6 60 || bail "six sheep did not form a cluster over the ensemble"
ok "six sheep joined over the ensemble"
check "cluster format -c 4:2" sd_quiet dogn 0 cluster format -c 4:2
check "vdi create fzk (4:2)" dogn 0 vdi create fzk 256M
nbd_wait_nbd 0 || bail "sheep 0 serves NBD"

# 1. One server (the leader: every client is cut off during the election)
#    dies under fio load: no I/O error, no membership change.
epoch0=$(cluster_epoch 0)
lead=$(zk_leader)
[ -n "$lead" ] || bail "the ensemble has a leader"
fio_verify zk-kill "$(nbd_uri 0 fzk)" 192M &
f=$!
sleep 2
check "fio still running when ZooKeeper server $lead (the leader) is killed" kill -0 $f
zk_kill "$lead" KILL
log "killed ZooKeeper server $lead (leader) during the run"
wait $f
check "fio verify=crc32c passes with a ZooKeeper server killed mid-run" test $? -eq 0
log "$(grep -E "^ *(WRITE|READ):" "$SD_TEST_DIR/zk-kill.out" | tr -s ' ')"
others=$(for i in 0 1 2; do [ "$i" != "$lead" ] && echo "$i"; done)
check "the two remaining servers serve" zk_wait $others --secs 20
for i in 0 1 2 3 4 5; do
	check_eq "sheep $i: no epoch change" "$epoch0" "$(cluster_epoch "$i")"
done
check "still six members" sd_wait_nodes 0 6 5
check "no sheep lost its session" \
	bash -c "! grep -l 'session expired' $SD_TEST_DIR/n*/sheep.log"
zk_start "$lead"
check "the killed server comes back" zk_wait 0 1 2 --secs 60

# 2. The whole ensemble goes: every sheep refuses I/O, then resumes.
LEN=$((3 * MiB + 5))
sd_random "$SD_TEST_DIR/a" $LEN
sd_random "$SD_TEST_DIR/b" $LEN
check "write A" dogn 1 vdi write fzk 0 $LEN <"$SD_TEST_DIR/a"
for i in 0 1 2; do zk_kill "$i" KILL; done
log "killed all three ZooKeeper servers"
sleep $((TMO / 3000 + 2))
for i in 0 1 2 3 4 5; do
	check "sheep $i logs that no ZooKeeper server answers" \
		grep -q "no ZooKeeper server at .* answers" "$(sd_dir "$i")/sheep.log"
done
dogn 2 vdi write fzk 0 $LEN <"$SD_TEST_DIR/b" >"$SD_TEST_DIR/out" 2>&1
check "a write is refused while the ensemble is gone" test $? -ne 0
log "dog said: $(head -c 120 "$SD_TEST_DIR/out")"
for i in 0 1 2; do zk_start "$i"; done
check "the ensemble comes back" zk_wait 0 1 2 --secs 90
ok_serving() {
	local i
	for i in 0 1 2 3 4 5; do grep -q "serving again" "$(sd_dir "$i")/sheep.log" || return 1; done
}
t=0
while [ $t -lt 60 ] && ! ok_serving; do sleep 0.5; t=$((t + 1)); done
check "every sheep serves again once the ensemble answers" ok_serving
check "six members" sd_wait_nodes 0 6 30
e1=$(cluster_epoch 0)
if grep -q "session expired" "$SD_TEST_DIR"/n*/sheep.log; then
	log "some sessions expired while the ensemble restarted (epoch $epoch0 -> $e1)"
	check "... and every sheep rejoined" sd_wait_nodes 3 6 30
else
	check_eq "sessions survived: no epoch change" "$epoch0" "$e1"
fi
dogn 3 vdi read fzk 0 $LEN >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "A reads back (the refused write left nothing)" "$(sd_sha "$SD_TEST_DIR/a")" "$(sd_sha "$SD_TEST_DIR/got")"
check "write B after the ensemble returned" dogn 2 vdi write fzk 0 $LEN <"$SD_TEST_DIR/b"
dogn 4 vdi read fzk 0 $LEN >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "B reads back through another sheep" "$(sd_sha "$SD_TEST_DIR/b")" "$(sd_sha "$SD_TEST_DIR/got")"

# 3. An NBD writer's lock is released even when its unlock meets a
#    ZooKeeper outage: the unlock is a cluster message the driver cannot
#    send while no server answers, and it used to be dropped with a
#    warning, leaving the VDI locked for every later writer (the CI run of
#    85b951e: fio ended during the election of section 1, so "write A"
#    and "write B" were refused). Here the client goes while the whole
#    ensemble is down, every time; so does a Sheepdog-protocol client
#    (dog vdi write, which holds the lock of a second VDI through sheep 1),
#    whose unlock nobody waits for and a worker sends again.
check "vdi create fzk2" dogn 1 vdi create fzk2 16M
dwin=$SD_TEST_DIR/dw.in
mkfifo "$dwin"
dogn 1 vdi write fzk2 0 $((2 * MiB)) <"$dwin" >"$SD_TEST_DIR/dw.out" 2>&1 &
dw=$!
exec 8>"$dwin"
head -c $MiB /dev/urandom >&8 # half of it: dog waits for the rest, holding the lock
dw_locked() { dogn 2 vdi lock list -r 2>/dev/null | grep -qw fzk2; }
t=0
while [ $t -lt 100 ] && ! dw_locked; do sleep 0.1; t=$((t + 1)); done
check "dog vdi write holds the lock of fzk2 through sheep 1" dw_locked
fifo=$SD_TEST_DIR/qio.in
mkfifo "$fifo"
qemu-io -f raw "$(nbd_uri 0 fzk)" <"$fifo" >"$SD_TEST_DIR/qio.out" 2>&1 &
qio=$!
exec 7>"$fifo"
echo "write -P 0x5a 0 64k" >&7
t=0
while [ $t -lt 100 ] && ! grep -q "wrote 65536" "$SD_TEST_DIR/qio.out"; do sleep 0.1; t=$((t + 1)); done
check "an NBD client holds fzk open for writing through sheep 0" grep -q "wrote 65536" "$SD_TEST_DIR/qio.out"
lost() { grep -c "lost the connection to the ensemble" "$(sd_dir 0)/sheep.log"; }
n0=$(lost)
for i in 0 1 2; do zk_kill "$i" KILL; done
log "killed all three ZooKeeper servers with the client attached"
t=0
while [ $t -lt 200 ] && [ "$(lost)" = "$n0" ]; do sleep 0.1; t=$((t + 1)); done
check "sheep 0 saw the ensemble go" test "$(lost)" != "$n0"
{ kill -KILL $qio; wait $qio; } 2>/dev/null
exec 7>&-
pkill -KILL -P $dw 2>/dev/null
{ kill -KILL $dw; wait $dw; } 2>/dev/null
exec 8>&-
t=0
while [ $t -lt 100 ] && ! grep -q "not sent now" "$(sd_dir 0)/sheep.log"; do sleep 0.1; t=$((t + 1)); done
check "sheep 0 could not send the unlock during the outage" \
	grep -q "not sent now" "$(sd_dir 0)/sheep.log"
t=0
while [ $t -lt 100 ] && ! grep -q "not sent now" "$(sd_dir 1)/sheep.log"; do sleep 0.1; t=$((t + 1)); done
check "nor sheep 1 the unlock of dog's lock" grep -q "not sent now" "$(sd_dir 1)/sheep.log"
for i in 0 1 2; do zk_start "$i"; done
check "the ensemble comes back again" zk_wait 0 1 2 --secs 90
unlocked() { ! dogn 1 vdi lock list -r 2>/dev/null | grep -qw 'fzk2\?'; }
t=0
while [ $t -lt 120 ] && ! unlocked; do sleep 0.5; t=$((t + 1)); done
check "the lock is released once the ensemble answers" unlocked
check "sheep 0 did not give the unlock up" \
	bash -c "! grep -q 'unlock failed' '$(sd_dir 0)/sheep.log'"
check "sheep 1 did not give dog's unlock up" \
	bash -c "! grep -q 'sent again: ' '$(sd_dir 1)/sheep.log'"
check "write B again, through sheep 1" dogn 1 vdi write fzk 0 $LEN <"$SD_TEST_DIR/b"
dogn 5 vdi read fzk 0 $LEN >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err"
check_eq "B reads back" "$(sd_sha "$SD_TEST_DIR/b")" "$(sd_sha "$SD_TEST_DIR/got")"

for i in 0 1 2 3 4 5; do
	check "sheep $i is alive" sd_alive "$i"
done

sd_done
