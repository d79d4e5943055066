# tests/func/zookeeper.sh - private ZooKeeper servers for functional tests and benchmarks (Debian's zookeeper package, on 127.0.0.1).
#
# Source after lib.sh (or alone with ZK_DIR set). Every server gets its own
# data directory under ZK_DIR and its own ports (client 21810+i, quorum
# 22880+i, election 23880+i); callers run inside a private network
# namespace (zk_enter_private_ns) so these ports collide with nobody.
# The JVM takes seconds to start: a script starts one ensemble and reuses it.

ZK_CLASSPATH=${ZK_CLASSPATH:-/etc/zookeeper/conf:/usr/share/java/zookeeper.jar}
ZK_TICK_MS=${ZK_TICK_MS:-250}
ZK_PIDS=()
ZK_N=0

# zk_missing: print why ZooKeeper tests cannot run here (nothing when they can).
zk_missing() {
	[ "$(id -u)" = 0 ] || { echo "needs root (network namespace)"; return; }
	command -v java >/dev/null 2>&1 || { echo "java is not installed (scripts/install-deps)"; return; }
	[ -f /usr/share/java/zookeeper.jar ] || { echo "zookeeper is not installed (scripts/install-deps)"; return; }
	unshare -n true 2>/dev/null || echo "unshare -n is not permitted here"
}

# zk_enter_private_ns "$0" "$@": re-run the calling script in a new network
# namespace (only lo, up). Returns in the child; the parent exits with its status.
zk_enter_private_ns() {
	if [ -z "${SD_ZK_INNER:-}" ]; then
		SD_ZK_INNER=1 exec unshare -n bash "$@"
	fi
	ip link set lo up
}

# zk_test_begin "$0" "$@": how a ZooKeeper test starts: skipped (77) where
# ZooKeeper cannot run, re-run in a private network namespace, the build
# checked, ZK_DIR set and the cleanup of servers and sheep trapped.
zk_test_begin() {
	local why
	why=$(zk_missing)
	if [ -n "$why" ]; then
		echo "# SKIP zookeeper test: $why"
		exit 77
	fi
	zk_enter_private_ns "$@" || bail "cannot set up a private network namespace"
	[ -x "$SHEEP" ] && [ -x "$DOG" ] || bail "sheep and dog are built"
	"$SHEEP" -h 2>&1 | grep -q "zookeeper" ||
		bail "this sheep is built without the zookeeper driver (apt-get install libzookeeper-mt-dev; ./configure)"
	ZK_DIR=$SD_TEST_DIR/zk
	trap 'zk_stop_all; sd_cleanup' EXIT
}

# zk_six_sheep_with_data SPEC: six sheep joined on SPEC one after the other
# (the member order is 0..5: sheep i watches i+1), formatted 4:2, VDI ff
# (64 MiB) with 8 MiB + 333 random bytes at 1 MiB + 5 ($SD_TEST_DIR/data).
zk_six_sheep_with_data() {
	local i mib=$((1 << 20))
	for i in 0 1 2 3 4 5; do
		sd_start "$i" -c "$1" || bail "sheep $i did not start"
		sd_wait_nodes 0 $((i + 1)) 30 || bail "sheep $i did not join"
	done
	ok "six sheep joined over ZooKeeper ($1)"
	check "cluster format -c 4:2" dogn 0 cluster format -c 4:2
	check "vdi create" dogn 0 vdi create ff 64M
	sd_random "$SD_TEST_DIR/data" $((8 * mib + 333))
	check "vdi write 8 MiB" dogn 1 vdi write ff $((mib + 5)) $((8 * mib + 333)) <"$SD_TEST_DIR/data"
}

zk_client_port() { echo $((21810 + $1)); }

# zk_hosts [I...]: "127.0.0.1:P0,127.0.0.1:P1,..." for servers I (default all).
zk_hosts() {
	local i out="" list=("$@")
	[ ${#list[@]} -eq 0 ] && list=($(seq 0 $((ZK_N - 1))))
	for i in "${list[@]}"; do out="$out${out:+,}127.0.0.1:$(zk_client_port "$i")"; done
	echo "$out"
}

# zk_4lw I WORD: send a four-letter word to server I, print the answer.
zk_4lw() {
	timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$(zk_client_port "$1") && echo $2 >&3 && cat <&3" 2>/dev/null
}

# zk_serving I: is server I part of a serving ensemble?
zk_serving() { zk_4lw "$1" srvr | grep -q '^Mode: '; }

# zk_write_conf N: one zoo.cfg per server of an ensemble of N.
zk_write_conf() {
	local n=$1 i j
	ZK_N=$n
	for ((i = 0; i < n; i++)); do
		mkdir -p "$ZK_DIR/s$i/data"
		echo $((i + 1)) >"$ZK_DIR/s$i/data/myid"
		{
			echo "tickTime=$ZK_TICK_MS"
			echo "initLimit=40"
			echo "syncLimit=8"
			echo "dataDir=$ZK_DIR/s$i/data"
			echo "clientPort=$(zk_client_port "$i")"
			echo "clientPortAddress=127.0.0.1"
			echo "maxClientCnxns=0"
			echo "minSessionTimeout=$((ZK_TICK_MS * 2))"
			echo "maxSessionTimeout=120000"
			echo "admin.enableServer=false"
			echo "4lw.commands.whitelist=*"
			echo "autopurge.snapRetainCount=3"
			echo "autopurge.purgeInterval=1"
			if [ "$n" -gt 1 ]; then
				for ((j = 0; j < n; j++)); do
					echo "server.$((j + 1))=127.0.0.1:$((22880 + j)):$((23880 + j))"
				done
			fi
		} >"$ZK_DIR/s$i/zoo.cfg"
	done
}

# zk_start I: start server I in the background (its log: ZK_DIR/sI/zk.log).
zk_start() {
	local i=$1
	java -Xmx192m -Xss512k -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
		-Dzookeeper.forceSync=no -Dzookeeper.log.dir="$ZK_DIR/s$i" \
		-Dzookeeper.root.logger=INFO,CONSOLE \
		-Dlog4j.configuration=file:/etc/zookeeper/conf/log4j.properties \
		-cp "$ZK_CLASSPATH" org.apache.zookeeper.server.quorum.QuorumPeerMain \
		"$ZK_DIR/s$i/zoo.cfg" >>"$ZK_DIR/s$i/zk.log" 2>&1 &
	ZK_PIDS[$i]=$!
}

# zk_wait I... [--secs S]: wait until every listed server serves.
zk_wait() {
	local secs=60 ids=() i t
	while [ $# -gt 0 ]; do
		case $1 in --secs) secs=$2; shift ;; *) ids+=("$1") ;; esac
		shift
	done
	for ((t = 0; t < secs * 5; t++)); do
		local all=1
		for i in "${ids[@]}"; do zk_serving "$i" || { all=0; break; }; done
		[ $all = 1 ] && return 0
		sleep 0.2
	done
	for i in "${ids[@]}"; do echo "# zookeeper server $i:"; tail -n 5 "$ZK_DIR/s$i/zk.log" | sed 's/^/#   /'; done
	return 1
}

# zk_start_ensemble N: write configs, start N servers, wait until all serve.
zk_start_ensemble() {
	local n=$1 i
	zk_write_conf "$n"
	for ((i = 0; i < n; i++)); do zk_start "$i"; done
	zk_wait $(seq 0 $((n - 1)))
}

# zk_kill I [SIG]: stop server I (default SIGKILL) and wait for it to go.
zk_kill() {
	local i=$1 sig=${2:-KILL} pid=${ZK_PIDS[$1]:-}
	[ -n "$pid" ] || return 0
	kill -"$sig" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	ZK_PIDS[$i]=""
}

# zk_stop_all: stop every server this shell started.
zk_stop_all() {
	local i
	for i in "${!ZK_PIDS[@]}"; do zk_kill "$i" KILL; done
}

# cluster_epoch NODE: the epoch sheep NODE is at (dog cluster info).
cluster_epoch() { dogn "$1" cluster info 2>/dev/null | awk '/^Epoch/{getline; print $3; exit}'; }

# all_see WANT NODES...: ms until every sheep listed reports WANT nodes (-1 after 30 s);
# needs lib.sh's dogn.
all_see() {
	local want=$1 t0 i n left
	shift
	t0=$(date +%s%N)
	while :; do
		left=0
		for i in "$@"; do
			n=$(dogn "$i" node list -r 2>/dev/null | grep -c .)
			[ "$n" = "$want" ] || left=1
		done
		[ $left = 0 ] && break
		[ $(( $(date +%s%N) - t0 )) -gt 30000000000 ] && { echo -1; return; }
		sleep 0.05
	done
	echo $(( ($(date +%s%N) - t0) / 1000000 ))
}

