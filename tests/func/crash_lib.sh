# crash_lib.sh - coordinator-crash steps shared by 014, 021 and 028: find an object's coordinator, make it die at an armed crash point while it writes new bytes, write to the object again afterwards.
# Source after lib.sh. Uses N, SD_PIDS, SHEEP_TEST_CRASH_FILE, VDI v, its
# current contents in $SD_TEST_DIR/cur and the test's vdi_sha.

dead_pid() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null); [ -z "$st" ] || [[ $st == Z* ]]; }

# crash_find_coordinator NAME OFFSET LEN: rewrite OFFSET..+LEN with the
# bytes it holds through sheep 0 under a crash point never reached (a
# commit count of 99); the coordinator writes its port to FILE.by. Sets
# CRASH_C to that sheep's number.
crash_find_coordinator() {
	local name=$1 off=$2 len=$3 F=$SHEEP_TEST_CRASH_FILE
	rm -f "$F.by"
	echo 99 >"$F"
	dd if="$SD_TEST_DIR/cur" bs=4096 skip=$((off / 4096)) count=$((len / 4096)) status=none |
		dogn 0 vdi write v "$off" "$len" || not_ok "$name: rewrite to find the coordinator"
	rm -f "$F"
	CRASH_C=$(( $(cat "$F.by" 2>/dev/null || echo 0) - SD_PORT_BASE ))
	log "$name: coordinator is sheep $CRASH_C"
}

# crash_write NAME ARM OFFSET LEN: $SD_TEST_DIR/new becomes cur with LEN
# random bytes at OFFSET; arm ARM in the crash file and write those bytes
# through sheep CRASH_C. Checks that the crash point was taken. Sets
# CRASH_RC (dog's status), CRASH_DEAD (the sheep that died, -1 if none;
# reaped and removed from SD_PIDS), CRASH_OLD and CRASH_NEW (sha256 of
# cur and new).
crash_write() {
	local name=$1 arm=$2 off=$3 len=$4 F=$SHEEP_TEST_CRASH_FILE i
	sd_random "$SD_TEST_DIR/patch" "$len"
	cp "$SD_TEST_DIR/cur" "$SD_TEST_DIR/new"
	dd if="$SD_TEST_DIR/patch" of="$SD_TEST_DIR/new" bs=4096 seek=$((off / 4096)) conv=notrunc \
		status=none
	CRASH_OLD=$(sd_sha "$SD_TEST_DIR/cur")
	CRASH_NEW=$(sd_sha "$SD_TEST_DIR/new")
	echo "$arm" >"$F"
	dogn "$CRASH_C" vdi write v "$off" "$len" <"$SD_TEST_DIR/patch" 2>/dev/null
	CRASH_RC=$?
	for ((i = 0; i < 50; i++)); do dead_pid "${SD_PIDS[$CRASH_C]}" && break; sleep 0.1; done
	check "$name: the crash point was taken" test ! -e "$F"
	rm -f "$F"
	CRASH_DEAD=-1
	for ((i = 0; i < N; i++)); do
		if dead_pid "${SD_PIDS[$i]}"; then CRASH_DEAD=$i; fi
	done
	if [ $CRASH_DEAD -ge 0 ]; then
		wait "${SD_PIDS[$CRASH_DEAD]}" 2>/dev/null
		unset "SD_PIDS[$CRASH_DEAD]"
	fi
}

# crash_write_again NAME SHEEP OFFSET: 4 KiB of new bytes at OFFSET + 64 KiB
# through SHEEP (the object takes writes again), then the whole VDI must
# read back as cur with them.
crash_write_again() {
	local name=$1 s=$2 off=$3
	sd_random "$SD_TEST_DIR/patch" 4096
	check "$name: the object takes a new write" \
		dogn "$s" vdi write v $((off + 65536)) 4096 <"$SD_TEST_DIR/patch"
	dd if="$SD_TEST_DIR/patch" of="$SD_TEST_DIR/cur" bs=4096 seek=$(((off + 65536) / 4096)) \
		conv=notrunc status=none
	check_eq "$name: everything reads back" "$(sd_sha "$SD_TEST_DIR/cur")" "$(vdi_sha 0)"
}
