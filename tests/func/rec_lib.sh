# rec_lib.sh - helpers for the recovery functional tests (100-129): recovery state per node, waiting for completion, fragment census.
# Source after lib.sh.
REC_CENSUS="$SD_TOP/tests/func/rec_census.py"
MiB=$((1 << 20))

# rec_states IDX: one "node ID epoch E status S done D ..." line per node, as sheep IDX's dog sees them.
rec_states() { dogn "$1" node recovery -v -r 2>/dev/null | grep '^node '; }

# rec_field LINE KEY: the value after KEY in a rec_states line.
rec_field() { awk -v k="$2" '{for (i = 1; i < NF; i += 2) if ($i == k) print $(i + 1)}' <<<"$1"; }

# rec_sum KEY IDX: sum of KEY over every node's state.
rec_sum() { rec_states "$2" | awk -v k="$1" '{for (i = 1; i < NF; i += 2) if ($i == k) s += $(i + 1)} END {print s + 0}'; }

# rec_epoch IDX: the highest epoch any node's recovery has reached.
rec_epoch() { rec_states "$1" | awk '{for (i = 1; i < NF; i += 2) if ($i == "epoch" && $(i + 1) > m) m = $(i + 1)} END {print m + 0}'; }

# rec_wait_done IDX COUNT MIN_EPOCH [SECONDS] [NEED_CLUSTER_DONE=1]: wait until COUNT nodes
# report recovery done at one epoch >= MIN_EPOCH with nothing failed (and, by
# default, the cluster-wide completion that lets old copies go).
rec_wait_done() {
	local i=$1 want=$2 min=$3 secs=${4:-120} cdone=${5:-1} t=0 out n e
	while [ $t -lt $((secs * 4)) ]; do
		out=$(rec_states "$i")
		n=$(awk -v min="$min" -v cd="$cdone" '{
			for (j = 1; j < NF; j += 2) kv[$j] = $(j + 1)
			if (kv["epoch"] >= min && kv["status"] == "done" && kv["failed"] == 0 &&
			    (cd == 0 || kv["cluster_done"] == 1)) print kv["epoch"]
		}' <<<"$out" | sort -u | awk 'END {print NR}')
		e=$(awk -v min="$min" -v cd="$cdone" '{
			for (j = 1; j < NF; j += 2) kv[$j] = $(j + 1)
			if (kv["epoch"] >= min && kv["status"] == "done" && kv["failed"] == 0 &&
			    (cd == 0 || kv["cluster_done"] == 1)) c++
		} END {print c + 0}' <<<"$out")
		if [ "$n" = 1 ] && [ "$e" = "$want" ]; then
			return 0
		fi
		sleep 0.25
		t=$((t + 1))
	done
	log "recovery not done after ${secs}s (want $want nodes at epoch >= $min):"
	sed 's/^/# /' <<<"$out"
	return 1
}

# rec_census [--verify] IDX...: census of the fragments on these sheep (see rec_census.py).
rec_census() {
	local args=() i
	while [ $# -gt 0 ] && [ "${1#--}" != "$1" ]; do args+=("$1"); shift; done
	for i in "$@"; do args+=("$(sd_port "$i")"); done
	python3 "$REC_CENSUS" "${args[@]}"
}

# rec_summary KEY OUTPUT: a field of the census summary line.
rec_summary() { grep '^summary' <<<"$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# rec_mkvdi IDX NAME POLICY SIZE DATA_BYTES: create a VDI and fill its first DATA_BYTES
# with random data, keeping a reference copy in $SD_TEST_DIR/NAME.ref.
rec_mkvdi() {
	local i=$1 name=$2 pol=$3 size=$4 bytes=$5
	dogn "$i" vdi create -c "$pol" "$name" "$size" || return 1
	head -c "$bytes" /dev/urandom >"$SD_TEST_DIR/$name.data"
	dogn "$i" vdi write "$name" 0 "$bytes" <"$SD_TEST_DIR/$name.data" || return 1
	truncate -s "$size" "$SD_TEST_DIR/$name.ref"
	dd if="$SD_TEST_DIR/$name.data" of="$SD_TEST_DIR/$name.ref" conv=notrunc status=none
}

# rec_check_read IDX NAME WHAT: the whole VDI reads back equal to its reference.
rec_check_read() {
	if dogn "$1" vdi read "$2" >"$SD_TEST_DIR/got" 2>"$SD_TEST_DIR/err" &&
		cmp -s "$SD_TEST_DIR/got" "$SD_TEST_DIR/$2.ref"; then
		ok "$3: $2 reads back every byte"
	else
		not_ok "$3: $2 reads back every byte ($(head -c 300 "$SD_TEST_DIR/err"))"
	fi
}
