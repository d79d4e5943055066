#!/usr/bin/env bash
# plot.sh - draw a benchmark's CSV as a small PNG with gnuplot (ec, nbd, recovery, cluster).
#
# Usage: bench/plot.sh KIND CSV PNG
#   ec        CSV of `ec_bench --csv`: encode and decode-1 GB/s (hot object) by
#             policy and backend, two panels
#   nbd       CSV of `nbd_bench.sh --csv-file`: random 4 KiB IOPS and mean
#             latency by queue depth, per target (nbdkit memory, 4:2, 3 copies)
#   recovery  CSV of `recovery_bench.sh --csv-file` (one line per data size):
#             recovery time and rebuild MB/s by data size
#   cluster   CSV of `cluster_bench.sh --csv-file`: write and read MB/s by policy
# Needs gnuplot (Debian: gnuplot-nox, in scripts/install-deps) and python3.
set -eu
[ $# -eq 3 ] || { sed -n '2,14p' "$0"; exit 64; }
kind=$1 csv=$2 png=$3
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot is not installed (scripts/install-deps)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Small pictures: they are committed as docs.
term="set terminal pngcairo noenhanced size 720,380 font 'sans,9'; set output '$png'"
common="set grid ytics lc rgb '#dddddd'; set border 3; set tics nomirror; set key top right opaque"

case $kind in
ec)
	# Pivot: one row per policy, one column per backend, for encode and decode 1.
	python3 - "$csv" "$tmp" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
pols = []
bes = []
val = {}
for r in rows:
    if r["set"] != "hot" or r["op"] not in ("encode", "decode 1"):
        continue
    if r["policy"] not in pols:
        pols.append(r["policy"])
    if r["backend"] not in bes:
        bes.append(r["backend"])
    val[(r["op"], r["policy"], r["backend"])] = r["gbps"]
for op, name in (("encode", "enc"), ("decode 1", "dec")):
    with open("%s/%s.dat" % (sys.argv[2], name), "w") as f:
        f.write("policy " + " ".join(bes) + "\n")
        for p in pols:
            f.write(p + " " + " ".join(val.get((op, p, b), "NaN") for b in bes) + "\n")
print(len(bes), file=open(sys.argv[2] + "/nbe", "w"))
cpu = rows[0]["cpu"] if rows else "?"
print(cpu, file=open(sys.argv[2] + "/cpu", "w"))
PY
	nbe=$(cat "$tmp/nbe")
	cpu=$(cat "$tmp/cpu")
	gnuplot <<GP
$term
$common
set multiplot layout 1,2 title "ec_bench: GB/s on a hot 4 MiB object by policy and backend ($cpu)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "GB/s"
set xlabel "policy d:p"
set yrange [0:*]
set title "encode"
plot for [i=2:$((nbe + 1))] '$tmp/enc.dat' using i:xtic(1) title columnheader(i)
set title "decode (1 fragment lost)"
plot for [i=2:$((nbe + 1))] '$tmp/dec.dat' using i:xtic(1) title columnheader(i)
unset multiplot
GP
	;;
nbd)
	# CSV: target,qd,rw,iops,lat_us
	python3 - "$csv" "$tmp" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for rw in ("randread", "randwrite"):
    for t in ("memory", "ec", "rep"):
        with open("%s/%s-%s.dat" % (sys.argv[2], rw, t), "w") as f:
            for r in sorted((r for r in rows if r["rw"] == rw and r["target"] == t),
                            key=lambda r: int(r["qd"])):
                f.write("%s %s %s\n" % (r["qd"], r["iops"], r["lat_us"]))
PY
	gnuplot <<GP
$term
$common
set multiplot layout 1,2 title "nbd_bench: fio 4 KiB random I/O over NBD by queue depth (median of runs)"
set key below horizontal noopaque
set logscale x 2
set xlabel "queue depth"
set xtics (1, 4, 32)
set ylabel "IOPS"
set title "IOPS"
set yrange [0:*]
plot '$tmp/randread-ec.dat' u 1:2 w lp lw 2 lc 1 pt 7 t "4:2 read", \
     '$tmp/randwrite-ec.dat' u 1:2 w lp lw 2 lc 1 pt 5 dt 2 t "4:2 write", \
     '$tmp/randread-rep.dat' u 1:2 w lp lw 2 lc 2 pt 7 t "3 copies read", \
     '$tmp/randwrite-rep.dat' u 1:2 w lp lw 2 lc 2 pt 5 dt 2 t "3 copies write"
set title "mean completion latency"
set ylabel "latency (us)"
set logscale y 10
set yrange [*:*]
plot '$tmp/randread-ec.dat' u 1:3 w lp lw 2 lc 1 pt 7 t "4:2 read", \
     '$tmp/randwrite-ec.dat' u 1:3 w lp lw 2 lc 1 pt 5 dt 2 t "4:2 write", \
     '$tmp/randread-rep.dat' u 1:3 w lp lw 2 lc 2 pt 7 t "3 copies read", \
     '$tmp/randwrite-rep.dat' u 1:3 w lp lw 2 lc 2 pt 5 dt 2 t "3 copies write", \
     '$tmp/randread-memory.dat' u 1:3 w lp lw 1 lc 8 pt 6 t "nbdkit memory read"
unset multiplot
GP
	;;
recovery)
	# CSV: mb,secs,rebuild_mbs,healthy_mbs,degraded_mbs
	sort -t, -k1,1n "$csv" | grep -v '^mb' | tr ',' ' ' >"$tmp/r.dat"
	gnuplot <<GP
$term
$common
set multiplot layout 1,2 title "recovery_bench: 8 sheep, 4:2, one lost, by data in the VDI"
set xlabel "data in the VDI (MiB)"
set yrange [0:*]
set title "recovery time"
set ylabel "seconds (enable -> all done)"
plot '$tmp/r.dat' u 1:2 w lp lw 2 pt 7 lc 1 notitle
set title "rebuild rate"
set ylabel "MB/s written"
plot '$tmp/r.dat' u 1:3 w lp lw 2 pt 7 lc 2 notitle
unset multiplot
GP
	;;
cluster)
	# CSV: policy,write_mbs,read_mbs,x_data
	grep -v '^policy' "$csv" | tr ',' ' ' | awk '{ $1 = "\"" $1 "\""; print }' >"$tmp/c.dat"
	gnuplot <<GP
$term
$common
set title "cluster_bench: sequential MB/s through dog, 6 local sheep, by policy"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "MB/s"
set yrange [0:*]
plot '$tmp/c.dat' using 2:xtic(1) title "write", '' using 3 title "read"
GP
	;;
*)
	echo "plot.sh: unknown kind '$kind' (ec, nbd, recovery, cluster)" >&2
	exit 64
	;;
esac
[ -s "$png" ] || { echo "plot.sh: gnuplot wrote no $png" >&2; exit 1; }
