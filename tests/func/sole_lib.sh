# sole_lib.sh - what the one-copy read tests 029 and 030 share: their sheep's HTTP ports, the sole-read counter, reads compared with the reference, writes kept in it.
# Source after lib.sh. Uses VDI v, its contents in $SD_TEST_DIR/v.ref and
# SIZE; the test defines pick_off, which sets OFF to a 4 KiB-aligned offset
# to read (called in this shell, so $RANDOM moves on).

hp() { echo $((SD_PORT_BASE + 60 + $1)); }
sole_reads() {
	curl -sf "http://127.0.0.1:$(hp "$1")/metrics" | awk '$1 == "sheep_sole_reads_total" {print $2}'
}

# reads_match IDX COUNT WHAT: COUNT whole reads and COUNT 4 KiB reads at
# offsets from pick_off through sheep IDX, each compared with the reference.
reads_match() {
	local i=$1 n=$2 bad=0 k want
	for ((k = 0; k < n; k++)); do
		[ "$(dogn "$i" vdi read v | sha256sum | cut -d' ' -f1)" = \
		  "$(sd_sha "$SD_TEST_DIR/v.ref")" ] || bad=$((bad + 1))
		pick_off
		want=$(dd if="$SD_TEST_DIR/v.ref" bs=4096 skip=$((OFF / 4096)) count=1 status=none |
		       sha256sum | cut -d' ' -f1)
		[ "$(dogn "$i" vdi read v "$OFF" 4096 | sha256sum | cut -d' ' -f1)" = "$want" ] ||
			bad=$((bad + 1))
	done
	check_eq "$3: $((2 * n)) reads through sheep $i match what was written" 0 "$bad"
}

write_at() { # OFF LEN: new data through sheep 0, kept in the reference
	sd_random "$SD_TEST_DIR/p" "$2"
	dogn 0 vdi write v "$1" "$2" <"$SD_TEST_DIR/p" || return 1
	dd if="$SD_TEST_DIR/p" of="$SD_TEST_DIR/v.ref" bs=1 seek="$1" conv=notrunc status=none
}
