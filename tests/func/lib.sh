# tests/func/lib.sh - shared helpers for functional tests: TAP output, start/kill sheep, dog per node.
#
# Source it first thing: `. "$SD_TOP/tests/func/lib.sh"`. tests/run provides
# SHEEP, DOG, SD_TEST_DIR, SD_PORT_BASE and SD_NBD_PORT_BASE; run by hand, a
# script gets defaults from build/ and fresh ports.
set -u
: "${SD_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${SHEEP:=$SD_TOP/build/sheep/sheep}"
: "${DOG:=$SD_TOP/build/dog/dog}"
: "${SD_TEST_DIR:=$(mktemp -d /tmp/sdtest.manual.XXXXXX)}"
: "${SD_PORT_BASE:=$((11900 + ${SD_PORT_OFFSET:-0}))}"
: "${SD_NBD_PORT_BASE:=$((SD_PORT_BASE + 50))}"
: "${SAN_SHEEP:=}"
export SD_TEST_DIR

SD_TAP_N=0
SD_TAP_FAILED=0
declare -A SD_PIDS=()

ok() { SD_TAP_N=$((SD_TAP_N + 1)); echo "ok $SD_TAP_N - $*"; }
not_ok() { SD_TAP_N=$((SD_TAP_N + 1)); SD_TAP_FAILED=$((SD_TAP_FAILED + 1)); echo "not ok $SD_TAP_N - $*"; }
skip() { SD_TAP_N=$((SD_TAP_N + 1)); echo "ok $SD_TAP_N - $* # SKIP"; }
# check DESCRIPTION COMMAND...: one TAP line from a command's status.
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# sd_quiet COMMAND...: COMMAND with its standard output dropped (for check:
# "check D COMMAND >/dev/null" would drop check's own TAP line too).
sd_quiet() { "$@" >/dev/null; }
# check_todo WHY DESCRIPTION COMMAND...: a known, documented failure. Prints
# "not ok N - DESCRIPTION # TODO WHY" (or "ok ... # TODO" once it works);
# tests/run lists it and does not count it as failed.
check_todo() {
	local why=$1 d=$2; shift 2
	SD_TAP_N=$((SD_TAP_N + 1))
	if "$@"; then echo "ok $SD_TAP_N - $d # TODO $why"; else echo "not ok $SD_TAP_N - $d # TODO $why"; fi
}
# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$2', got '$3')"; fi
}
# Stop the script now with a failure line (setup that later steps need).
bail() { not_ok "$*"; exit 1; }
log() { echo "# $*"; }

sd_port() { echo $((SD_PORT_BASE + $1)); }
sd_nbd_port() { echo $((SD_NBD_PORT_BASE + $1)); }
sd_dir() { echo "$SD_TEST_DIR/n$1"; }

# sd_start IDX [sheep options...]: start sheep number IDX in the foreground
# (backgrounded here), zone IDX, its own port, NBD port and store dir, the
# test's private local-driver rendezvous. Extra options override. With -n
# (no syncs) and debug logs, unless SD_DURABLE is set (syncs, as a
# benchmark or a power-loss test needs) or SD_LOG_LEVEL says otherwise.
sd_start() {
	local i=$1; shift
	local bin=${SD_SHEEP_BIN:-$SHEEP} nosync=-n
	[ -n "${SD_DURABLE:-}" ] && nosync=
	mkdir -p "$(sd_dir "$i")"
	"$bin" "$(sd_dir "$i")" -f -z "$i" -p "$(sd_port "$i")" -y 127.0.0.1 -b 127.0.0.1 \
		-c "local:path=$SD_TEST_DIR/local" $nosync -l level="${SD_LOG_LEVEL:-debug}" \
		--nbd "$(sd_nbd_port "$i")" "$@" \
		>>"$SD_TEST_DIR/sheep$i.out" 2>&1 &
	SD_PIDS[$i]=$!
	sd_wait_port "$(sd_port "$i")" || { log "sheep $i did not listen"; tail -n 20 "$(sd_dir "$i")/sheep.log" 2>/dev/null; return 1; }
}

# sd_wait_port PORT [SECONDS]: wait until something accepts on 127.0.0.1:PORT.
sd_wait_port() {
	local t=0 max=$(( ${2:-20} * 10 ))
	while [ $t -lt $max ]; do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1; t=$((t + 1))
	done
	return 1
}

# dogn IDX ARGS...: run dog against sheep IDX.
dogn() { local i=$1; shift; "$DOG" "$@" -a 127.0.0.1 -p "$(sd_port "$i")"; }

# sd_wait_nodes IDX COUNT [SECONDS]: wait until sheep IDX sees COUNT nodes.
sd_wait_nodes() {
	local i=$1 want=$2 t=0 max=$(( ${3:-30} * 10 )) n
	while [ $t -lt $max ]; do
		n=$(dogn "$i" node list -r 2>/dev/null | grep -c .)
		[ "$n" = "$want" ] && return 0
		sleep 0.1; t=$((t + 1))
	done
	log "sheep $i sees $n nodes, wanted $want"
	return 1
}

# sd_start_cluster COUNT [sheep options...]: start sheep 0..COUNT-1, wait for all.
sd_start_cluster() {
	local n=$1 i; shift
	for ((i = 0; i < n; i++)); do sd_start "$i" "$@" || return 1; done
	sd_wait_nodes 0 "$n"
}

# sd_start_metrics [env...]: sheep 0..5 as sd_start starts them (-n, logs at
# SD_LOG_LEVEL or debug), with env set, each serving /metrics on
# sd_http_port IDX, from a fresh rendezvous (as after a reboot: a stale one
# can keep a restarted sheep out of the group, issue 14); waits for all six.
sd_http_port() { echo $((SD_PORT_BASE + 70 + $1)); }
sd_start_metrics() {
	local i
	rm -rf "$SD_TEST_DIR/local"
	for i in 0 1 2 3 4 5; do
		mkdir -p "$(sd_dir $i)"
		env "$@" "${SD_SHEEP_BIN:-$SHEEP}" "$(sd_dir $i)" -f -z $i -p "$(sd_port $i)" -y 127.0.0.1 \
			-b 127.0.0.1 -c "local:path=$SD_TEST_DIR/local" -n -l level="${SD_LOG_LEVEL:-debug}" \
			--nbd "$(sd_nbd_port $i)" --http "$(sd_http_port $i)" >>"$SD_TEST_DIR/sheep$i.out" 2>&1 &
		SD_PIDS[$i]=$!
	done
	for i in 0 1 2 3 4 5; do sd_wait_port "$(sd_port $i)" || return 1; done
	sd_wait_nodes 0 6
}

# sd_metric_sum NAME: the /metrics sample NAME (e.g.
# 'sheep_requests_total{op="peer_read"}') summed over sheep 0..5.
sd_metric_sum() {
	local i t=0 n
	for i in 0 1 2 3 4 5; do
		n=$(curl -sf "http://127.0.0.1:$(sd_http_port $i)/metrics" | awk -v k="$1" '$1 == k { print $2 }')
		t=$((t + ${n:-0}))
	done
	echo $t
}

# sd_kill IDX: kill -9, as a crash.
sd_kill() {
	local pid=${SD_PIDS[$1]:-}
	[ -n "$pid" ] || return 0
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "SD_PIDS[$1]"
}

sd_alive() { local pid=${SD_PIDS[$1]:-}; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

sd_cleanup() {
	local i
	for i in "${!SD_PIDS[@]}"; do kill -9 "${SD_PIDS[$i]}" 2>/dev/null; done
	wait 2>/dev/null
}
trap sd_cleanup EXIT

# sd_done: last line of every script; exit status says whether all passed.
sd_done() {
	echo "1..$SD_TAP_N"
	[ "$SD_TAP_FAILED" -eq 0 ]
}

# Random data file of SIZE bytes: sd_random FILE SIZE
sd_random() { head -c "$2" /dev/urandom >"$1"; }
sd_sha() { sha256sum "$1" | cut -d' ' -f1; }
