#!/usr/bin/env bash
# 052-http.sh - sheep --http: /metrics (Prometheus text) counts what clients did, /api/status and the dashboard (headless chromium) show what dog shows, a busy port never stops startup, bad requests get errors.
# timeout: 400
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"
MiB=$((1 << 20))
hp() { echo $((SD_PORT_BASE + 80 + $1)); }
url() { echo "http://127.0.0.1:$(hp "$1")$2"; }
jq_py() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# metric FILE NAME{LABELS}: the value of one sample ("" when absent).
metric() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
scrape() { curl -sf "$(url "$1" /metrics)" >"$2"; }

for i in 0 1 2 3 4 5; do sd_start "$i" -s $((1 + i % 2))G --http "$(hp "$i")" || bail "sheep $i"; done
sd_wait_nodes 0 6 || bail "six sheep"
dogn 0 cluster format -c 4:2 || bail "format"
dogn 0 vdi create -c 4:2 ec 64M || bail "vdi ec"
dogn 0 vdi create -c 3 rep 32M || bail "vdi rep"
dogn 0 vdi create -c 2:1 small 8M || bail "vdi small"

scrape 0 "$SD_TEST_DIR/m0"
check "/metrics answers (curl)" test -s "$SD_TEST_DIR/m0"
# Text format: every sample line is NAME{...} VALUE, every family has HELP and TYPE.
check "/metrics: Prometheus text format (python3 check)" python3 - "$SD_TEST_DIR/m0" <<'PY'
import re, sys
fams, typed = set(), set()
ok = True
for l in open(sys.argv[1]):
    l = l.rstrip("\n")
    if l.startswith("# HELP "): fams.add(l.split()[2]); continue
    if l.startswith("# TYPE "): typed.add(l.split()[2]); continue
    m = re.fullmatch(r'([a-z_:][a-z0-9_:]*)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (-?[0-9.e+]+|\+Inf|NaN)', l)
    if not m:
        print("bad line: %r" % l, file=sys.stderr); ok = False; continue
    base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
    if m.group(1) not in typed and base not in typed:
        print("no TYPE for %s" % m.group(1), file=sys.stderr); ok = False
sys.exit(0 if ok and fams == typed else 1)
PY
for fam in sheep_epoch sheep_members sheep_store_capacity_bytes sheep_store_free_bytes \
	sheep_store_used_bytes sheep_checksum_errors_total sheep_degraded_reads_total \
	sheep_decode_bytes_total sheep_recovery_fragments_done sheep_client_latency_seconds \
	sheep_requests_total sheep_request_bytes_total sheep_nbd_bytes_total; do
	check "/metrics has $fam" grep -q "^# TYPE $fam " "$SD_TEST_DIR/m0"
done
dogn 0 cluster info --json >"$SD_TEST_DIR/ci.json"
check_eq "sheep_epoch = dog's epoch" "$(jq_py "$SD_TEST_DIR/ci.json" 'd["epoch"]')" "$(metric "$SD_TEST_DIR/m0" sheep_epoch)"
check_eq "sheep_members = 6" 6 "$(metric "$SD_TEST_DIR/m0" sheep_members)"
check_eq "sheep 0 capacity = its -s 1G" $((1 << 30)) "$(metric "$SD_TEST_DIR/m0" sheep_store_capacity_bytes)"
scrape 1 "$SD_TEST_DIR/m1"
check_eq "sheep 1 capacity = its -s 2G" $((2 << 30)) "$(metric "$SD_TEST_DIR/m1" sheep_store_capacity_bytes)"

# Sheepdog protocol: dog writes 8 MiB to ec through sheep 0.
w0=$(metric "$SD_TEST_DIR/m0" 'sheep_client_latency_seconds_count{proto="sheepdog",op="write"}')
head -c $((8 * MiB)) /dev/urandom >"$SD_TEST_DIR/d8"
dogn 0 vdi write ec <"$SD_TEST_DIR/d8" || bail "dog vdi write"
scrape 0 "$SD_TEST_DIR/m0b"
w1=$(metric "$SD_TEST_DIR/m0b" 'sheep_client_latency_seconds_count{proto="sheepdog",op="write"}')
check "dog's 2 object writes (+ inode updates) are counted (${w0:-0} -> $w1)" test "$w1" -ge $(( ${w0:-0} + 2 ))
cw=$(metric "$SD_TEST_DIR/m0b" 'sheep_request_bytes_total{op="create_and_write_obj",dir="in"}')
check "create_and_write_obj bytes in >= 8 MiB ($cw)" test "${cw:-0}" -ge $((8 * MiB))
pw=$(metric "$SD_TEST_DIR/m0b" 'sheep_request_policy_bytes_total{policy="4:2",op="write"}')
check "sheep_request_policy_bytes_total{4:2,write} >= the 8 MiB dog wrote to the 4:2 VDI ($pw)" test "${pw:-0}" -ge $((8 * MiB))
check "... and nothing counted under another policy yet" bash -c '! grep "^sheep_request_policy_bytes_total" "$1" | grep -vq "policy=\"4:2\""' _ "$SD_TEST_DIR/m0b"

# NBD: 4 MiB written and read back through sheep 0's export.
nb0=$(metric "$SD_TEST_DIR/m0b" 'sheep_nbd_bytes_total{op="write"}')
head -c $((4 * MiB)) /dev/urandom >"$SD_TEST_DIR/d4"
nbdcopy "$SD_TEST_DIR/d4" "nbd://127.0.0.1:$(sd_nbd_port 0)/small" || bail "nbdcopy in"
nbdcopy "nbd://127.0.0.1:$(sd_nbd_port 0)/small" "$SD_TEST_DIR/back" || bail "nbdcopy out"
check "NBD data reads back" cmp -s <(head -c $((4 * MiB)) "$SD_TEST_DIR/back") "$SD_TEST_DIR/d4"
scrape 0 "$SD_TEST_DIR/m0c"
nb1=$(metric "$SD_TEST_DIR/m0c" 'sheep_nbd_bytes_total{op="write"}')
check_eq "sheep_nbd_bytes_total{write} grew by exactly the 4 MiB nbdcopy wrote" $((4 * MiB)) $((nb1 - nb0))
check_eq "sheep_nbd_policy_bytes_total{2:1,write}: the 4 MiB went to the 2:1 VDI" $((4 * MiB)) \
	"$(metric "$SD_TEST_DIR/m0c" 'sheep_nbd_policy_bytes_total{policy="2:1",op="write"}')"
nr=$(metric "$SD_TEST_DIR/m0c" 'sheep_nbd_bytes_total{op="read"}')
# nbdcopy asks for block status: of the 8 MiB export only the written
# object (4 MiB) is read, the never-written one is a hole.
check "sheep_nbd_bytes_total{read}: the 4 MiB written, not the 8 MiB hole included ($nr)" \
	test "$nr" -ge $((4 * MiB)) -a "$nr" -lt $((8 * MiB))
check "NBD write latency histogram: cumulative buckets, +Inf = count" python3 - "$SD_TEST_DIR/m0c" <<'PY'
import sys
b, cnt = [], None
for l in open(sys.argv[1]):
    if l.startswith('sheep_client_latency_seconds_bucket{proto="nbd",op="write"'):
        b.append(int(l.split()[1]))
    if l.startswith('sheep_client_latency_seconds_count{proto="nbd",op="write"}'):
        cnt = int(l.split()[1])
sys.exit(0 if b and cnt and b == sorted(b) and b[-1] == cnt and len(b) == 15 else 1)
PY

# A degraded read: recovery off, the holder of data fragment 0 of the ec
# VDI's first object killed; the read through another sheep must decode.
vid=$(dogn 0 vdi list ec --json | python3 -c 'import json,sys; print("%x" % json.load(sys.stdin)["vdis"][0]["vdi_id"])')
frag=$(printf '%016x_00' $((0x$vid << 32)))
h=""
for i in 0 1 2 3 4 5; do [ -e "$(sd_dir "$i")/obj/$frag" ] && h=$i; done
[ -n "$h" ] || bail "no sheep holds $frag"
g=$(( (h + 1) % 6 ))
log "fragment $frag is on sheep $h; reading through sheep $g"
scrape "$g" "$SD_TEST_DIR/mg"
d0=$(metric "$SD_TEST_DIR/mg" sheep_degraded_reads_total)
dogn 0 cluster recover disable || bail "recover disable"
sd_kill "$h"
sd_wait_nodes "$g" 5 || bail "sheep $g still lists sheep $h"
dogn "$g" vdi read ec 0 $((8 * MiB)) >"$SD_TEST_DIR/r8" || bail "degraded read"
check "degraded read returns the data" cmp -s "$SD_TEST_DIR/r8" "$SD_TEST_DIR/d8"
scrape "$g" "$SD_TEST_DIR/m0d"
d1=$(metric "$SD_TEST_DIR/m0d" sheep_degraded_reads_total)
check "sheep_degraded_reads_total grew ($d0 -> $d1)" test "$d1" -gt "$d0"
check "sheep_decode_bytes_total > 0" test "$(metric "$SD_TEST_DIR/m0d" sheep_decode_bytes_total)" -gt 0
check_eq "sheep_members = 5 after the kill" 5 "$(metric "$SD_TEST_DIR/m0d" sheep_members)"
check_eq "sheep_recovery_enabled = 0" 0 "$(metric "$SD_TEST_DIR/m0d" sheep_recovery_enabled)"
dogn "$g" cluster recover enable || bail "recover enable"
sd_start "$h" -s $((1 + h % 2))G --http "$(hp "$h")" || bail "sheep $h back"
sd_wait_nodes 0 6 || bail "six again"
for t in $(seq 1 60); do
	dogn 0 node recovery --json >"$SD_TEST_DIR/nr.json"
	[ "$(jq_py "$SD_TEST_DIR/nr.json" 'sum(n["recovering"] for n in d["nodes"])')" = 0 ] && break
	sleep 1
done
# ... and until every sheep has dropped what it no longer holds: until then
# a sheep's Used still changes between dog's answer and the dashboard's.
rec_wait_done 0 6 1 60 || bail "recovery never completed cluster-wide"

# /api/status and the dashboard against dog.
dogn 0 node list --json >"$SD_TEST_DIR/nl.json"
dogn 0 node info --json >"$SD_TEST_DIR/ni.json"
dogn 0 vdi list --json >"$SD_TEST_DIR/vl.json"
dogn 0 cluster info --json >"$SD_TEST_DIR/ci.json"
curl -sf "$(url 2 /api/status)" >"$SD_TEST_DIR/st.json"
check "/api/status (from sheep 2) agrees with dog" python3 - "$SD_TEST_DIR"/st.json "$SD_TEST_DIR"/nl.json \
	"$SD_TEST_DIR"/ni.json "$SD_TEST_DIR"/vl.json "$SD_TEST_DIR"/ci.json <<'PY'
import json, sys
st, nl, ni, vl, ci = (json.load(open(p)) for p in sys.argv[1:6])
bad = []
def eq(w, a, b):
    if a != b: bad.append("%s: dog %r, status %r" % (w, a, b))
eq("epoch", ci["epoch"], st["epoch"]); eq("policy", ci["policy"], st["policy"])
eq("nodes", [(n["port"], n["zone"], n["vnodes"]) for n in nl["nodes"]],
   [(n["port"], n["zone"], n["vnodes"]) for n in st["nodes"]])
eq("sizes", [n["size"] for n in ni["nodes"]], [n["size"] for n in st["nodes"]])
eq("total size", ni["total"]["size"], st["total"]["size"])
eq("vdis", sorted((v["name"], v["policy"], v["size"], v["used"], v["vdi_id"]) for v in vl["vdis"]),
   sorted((v["name"], v["policy"], v["size"], v["used"], v["vdi_id"]) for v in st["vdis"]))
eq("total vdi size", ni["total_vdi_size"], st["total_vdi_size"])
for b in bad: print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY

browser() {
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$(mktemp -d "$SD_TEST_DIR/chrome.XXXXXX")" --virtual-time-budget=10000 \
		--explicitly-allowed-ports="$(hp 0),$(hp 1),$(hp 2),$(hp 3),$(hp 4),$(hp 5)" "$@" 2>>"$SD_TEST_DIR/chromium.err"
}
browser --dump-dom "$(url 3 /)" >"$SD_TEST_DIR/dom.html"
check "headless chromium rendered the dashboard (node rows in the DOM)" grep -q 'data-port=' "$SD_TEST_DIR/dom.html"
check "dashboard (sheep 3, in chromium) shows what dog shows: status, epoch, nodes, zones, sizes, VDIs" \
	python3 "$SD_TOP/tests/func/dashboard_check.py" "$SD_TEST_DIR/dom.html" "$SD_TEST_DIR"/nl.json \
	"$SD_TEST_DIR"/ni.json "$SD_TEST_DIR"/vl.json "$SD_TEST_DIR"/ci.json
check "dashboard loads nothing from elsewhere (no http(s):// URL in the page)" \
	bash -c '! curl -sf "$1" | grep -Eq "(src|href)=\"https?:|fetch\(\"https?:"' _ "$(url 3 /)"
browser --window-size=1400,860 --screenshot="$SD_TEST_DIR/dashboard.png" "$(url 0 /)" >/dev/null
check "screenshot taken (PNG)" bash -c 'file "$1" | grep -q "PNG image"' _ "$SD_TEST_DIR/dashboard.png"
[ -n "${SD_DASHBOARD_PNG:-}" ] && cp "$SD_TEST_DIR/dashboard.png" "$SD_DASHBOARD_PNG"

# The write-ahead log's counters: /metrics agrees with dog node stat.
scrape 2 "$SD_TEST_DIR/w1"
dogn 2 node stat --json >"$SD_TEST_DIR/ns.json"
scrape 2 "$SD_TEST_DIR/w2"
for k in syncs:sheep_wal_syncs_total records:sheep_wal_records_total batches:sheep_wal_batches_total \
	log_bytes:sheep_wal_bytes_total checkpoints:sheep_wal_checkpoints_total; do
	v=$(jq_py "$SD_TEST_DIR/ns.json" "[n['${k%%:*}'] for n in d['nodes'] if n['addr'].endswith(':$(sd_port 2)')][0]")
	a=$(metric "$SD_TEST_DIR/w1" "${k#*:}") b=$(metric "$SD_TEST_DIR/w2" "${k#*:}")
	check "${k#*:} ($a..$b) brackets dog node stat's ${k%%:*} ($v)" test -n "$v" -a "$a" -le "$v" -a "$v" -le "$b"
done
check "sheep 2 has logged records (it holds fragments)" test "$(metric "$SD_TEST_DIR/w2" sheep_wal_records_total)" -gt 0
check_eq "sheep_wal_size_bytes = dog's log_size" \
	"$(jq_py "$SD_TEST_DIR/ns.json" "[n['log_size'] for n in d['nodes'] if n['addr'].endswith(':$(sd_port 2)')][0]")" \
	"$(metric "$SD_TEST_DIR/w2" sheep_wal_size_bytes)"

# Bad requests: errors, and the sheep lives on.
check_eq "POST: 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$(url 0 /metrics)")"
check_eq "unknown path: 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$(url 0 /nope)")"
check_eq "HEAD /: 200, no body" "200 0" "$(curl -s -I -o /dev/null -w '%{http_code} %{size_download}' "$(url 0 /)")"
printf 'garbage\r\n\r\n' | timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$(hp 0); cat >&3; cat <&3" >"$SD_TEST_DIR/garbage.out"
check "a request line without a path: 400" grep -q "^HTTP/1.0 400" "$SD_TEST_DIR/garbage.out"
head -c 20000 /dev/zero | tr '\0' 'A' | timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$(hp 0); cat >&3; cat <&3" >"$SD_TEST_DIR/long.out"
check "a 20 KB request head: 400" grep -q "^HTTP/1.0 400" "$SD_TEST_DIR/long.out"
# A client that starts a request and stalls holds the one server thread
# for at most its 5 s deadline.
(exec 3<>"/dev/tcp/127.0.0.1/$(hp 0)"; printf 'GET /metr' >&3; sleep 12) &
slow=$!
sleep 0.5
t0=$(date +%s%N)
curl -sf -o /dev/null --max-time 20 "$(url 0 /metrics)"
rc=$? ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "a stalled client delays /metrics by at most its 5 s deadline (rc $rc, ${ms} ms)" test $rc = 0 -a $ms -lt 8000
kill "$slow" 2>/dev/null; wait "$slow" 2>/dev/null
check "sheep 0 still serves /metrics" curl -sf -o /dev/null "$(url 0 /metrics)"
check "sheep 0 still alive" sd_alive 0

# A busy HTTP port never stops a sheep.
sd_start 6 -s 1G --http "$(hp 0)" || not_ok "a sheep whose --http port is taken did not start"
check "sheep with a busy --http port is running" sd_alive 6
check "it says it runs without HTTP" grep -q "running without HTTP" "$SD_TEST_DIR/sheep6.out"
check "it joined the cluster" sd_wait_nodes 0 7
sd_done
