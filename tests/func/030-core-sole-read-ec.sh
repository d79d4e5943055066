#!/usr/bin/env bash
# 030-core-sole-read-ec.sh - a 4:2 read served by one data fragment alone never returns data older than an acknowledged write: a fragment holder that missed writes while it was down, restarted with recovery off, serves no stale byte through its own gateway; once recovered and confirmed, its fragments serve reads alone.
# timeout: 400
. "$SD_TOP/tests/func/lib.sh"
. "$SD_TOP/tests/func/sole_lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

N=6
MiB=$((1 << 20))
FRAG=$MiB # 4 MiB objects, 4 data fragments
NOBJ=4
SIZE=$((NOBJ * 4 * MiB))
for ((i = 0; i < N; i++)); do sd_start "$i" --http "$(hp "$i")" || bail "sheep $i"; done
sd_wait_nodes 0 $N || bail "six sheep did not form a cluster"
dogn 0 cluster format -c 4:2 || bail "cluster format failed"
rec_mkvdi 0 v 4:2 $SIZE $SIZE || bail "4:2 VDI with data"
rec_wait_done 0 $N 1 60 || bail "initial recovery state never settled"

# frag_of IDX OBJ: which fragment of object OBJ of v sheep IDX holds ("-" none).
frag_of() {
	dogn 0 vdi object location v "$2" |
		awk -v p="127.0.0.1:$(sd_port "$1")" '$1 == p && /has the object/ {
			for (k = 1; k < NF; k++) if ($k == "fragment") { sub(",", "", $(k + 1)); print $(k + 1) }
		}' | head -n 1
}
# The holder to test: the sheep (not 0, the writers' gateway) holding the
# most data fragments of v; RANGES: the VDI offsets of those fragments.
H=-1 RANGES=()
for ((i = 1; i < N; i++)); do
	r=()
	for ((o = 0; o < NOBJ; o++)); do
		f=$(frag_of "$i" "$o")
		[ -n "$f" ] && [ "$f" -lt 4 ] && r+=($((o * 4 * MiB + f * FRAG)))
	done
	if [ ${#r[@]} -gt ${#RANGES[@]} ]; then H=$i RANGES=("${r[@]}"); fi
done
log "sheep $H holds data fragments at VDI offsets ${RANGES[*]}"
[ ${#RANGES[@]} -ge 2 ] || bail "a sheep holding two data fragments of v"

# pick_off: a 4 KiB read inside one of sheep H's data fragments.
pick_off() { OFF=$((RANGES[RANDOM % ${#RANGES[@]}] + RANDOM % (FRAG / 4096) * 4096)); }

reads_match "$H" 5 "before any failure"
s0=$(sole_reads "$H")
reads_match "$H" 5 "again"
s1=$(sole_reads "$H")
log "sheep $H sole reads: $s0 then $s1"
check "reads through a fragment holder are served by its fragment alone once confirmed" \
	test "${s1:-0}" -gt "${s0:-0}"

# Sheep H misses writes while it is down: every data fragment it holds is
# rewritten (range updates inside one fragment, early-acknowledged, and
# one whole object). Recovery stays off so its fragments stay stale after
# it is back (the window a restarted holder has before recovery reaches
# an object, held open).
check "recovery disabled" dogn 0 cluster recover disable
sd_kill "$H"
sd_wait_nodes 0 $((N - 1)) || bail "membership did not drop"
ok_w=1
for start in "${RANGES[@]:1}"; do write_at "$start" $FRAG || ok_w=0; done
check_eq "sheep $H's data fragments but the first rewritten by range writes while it is down" 1 $ok_w
first=${RANGES[0]}
check "the first one's object rewritten whole while it is down" \
	write_at $((first / (4 * MiB) * 4 * MiB)) $((4 * MiB))
sd_start "$H" --http "$(hp "$H")" || bail "sheep $H back"
sd_wait_nodes "$H" $N || bail "sheep $H did not rejoin"
reads_match "$H" 20 "sheep $H back, its fragments stale"
reads_match 0 3 "through another sheep meanwhile"
check "recovery enabled" dogn 0 cluster recover enable
rec_wait_done 0 $N 1 120 || not_ok "recovery did not finish"
reads_match "$H" 5 "after recovery"
s2=$(sole_reads "$H")
reads_match "$H" 5 "after recovery, again"
s3=$(sole_reads "$H")
log "sheep $H sole reads after recovery: $s2 then $s3"
check "recovered fragments are served alone again" test "${s3:-0}" -gt "${s2:-0}"
for ((i = 0; i < N; i++)); do check "sheep $i running" sd_alive $i; done
sd_done
