# tests/func/corosync.sh - private corosync daemons for functional tests (root only, each in its own namespaces).
#
# Source after lib.sh. corosync has one pid file (/run/corosync.pid) and
# serves clients on abstract unix sockets, which belong to the network
# namespace; so every corosync here runs with a private /run, and in a
# network namespace of its own, never touching one the host may be running.

cs_conf_token=${CS_TOKEN:-1000}

# cs_missing: print why corosync tests cannot run here (nothing when they can).
cs_missing() {
	[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, private /run)"; return; }
	local b
	for b in corosync corosync-cpgtool corosync-quorumtool unshare ip; do
		command -v "$b" >/dev/null 2>&1 || { echo "$b is not installed (apt-get install corosync iproute2 util-linux)"; return; }
	done
	unshare -m -n true 2>/dev/null || echo "unshare -m -n is not permitted here"
}

# cs_write_conf DIR NODEID ADDR ALL_ADDRS...: DIR/corosync.conf for one node
# of a cluster whose ring0 addresses are ALL_ADDRS (node ids 1..N in order).
cs_write_conf() {
	local dir=$1 self_id=$2 addr=$3; shift 3
	local n=$# i=1 a quorum
	mkdir -p "$dir/state"
	if [ "$n" -eq 1 ]; then
		quorum="expected_votes: 1"
	else
		quorum="expected_votes: $n"
	fi
	{
		cat <<EOF
# corosync.conf for node $self_id ($addr), written by tests/func/corosync.sh
totem {
	version: 2
	cluster_name: sdtest
	transport: knet
	token: $cs_conf_token
	crypto_cipher: none
	crypto_hash: none
}
nodelist {
EOF
		for a in "$@"; do
			printf '\tnode {\n\t\tring0_addr: %s\n\t\tnodeid: %d\n\t\tname: n%d\n\t}\n' "$a" "$i" "$i"
			i=$((i + 1))
		done
		cat <<EOF
}
quorum {
	provider: corosync_votequorum
	$quorum
}
logging {
	to_stderr: yes
	to_logfile: no
	to_syslog: no
	timestamp: hires
}
system {
	state_dir: $dir/state
	sched_rr: no
	allow_knet_handle_fallback: yes
}
EOF
	} >"$dir/corosync.conf"
}

# cs_start_here DIR: start corosync in the current namespaces (the caller has
# a private /run); wait until it serves CPG. Sets CS_PID.
cs_start_here() {
	local dir=$1 t
	corosync -f -c "$dir/corosync.conf" >>"$dir/corosync.log" 2>&1 &
	CS_PID=$!
	echo "$CS_PID" >"$dir/pid"
	for ((t = 0; t < 100; t++)); do
		corosync-cpgtool >/dev/null 2>&1 && return 0
		kill -0 "$CS_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "# corosync did not start:"; tail -n 20 "$dir/corosync.log" | sed 's/^/# /'
	return 1
}

# cs_stop_pid PID: stop a corosync we started, SIGKILL if it lingers.
cs_stop_pid() {
	local pid=$1 t
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	for ((t = 0; t < 50; t++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
}

# cs_enter_private_ns "$0" "$@": re-run the calling script as root in a new
# mount and network namespace (only lo, up), with private /run and /dev/shm.
# Returns in the child; the parent exits with the child's status.
cs_enter_private_ns() {
	if [ -z "${SD_CS_INNER:-}" ]; then
		SD_CS_INNER=1 exec unshare -m -n --propagation private bash "$@"
	fi
	mount -t tmpfs -o mode=755 tmpfs /run || return 1
	mount -t tmpfs -o mode=1777 tmpfs /dev/shm || return 1
	ip link set lo up || return 1
}
