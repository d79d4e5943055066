#!/usr/bin/env bash
# 040-dog-cli.sh - dog without a cluster: usage and exit codes, bad policy text, sizes, no sheep running.
# timeout: 60
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

# run CMD...: sets rc, out, err
run() {
	"$@" >"$SD_TEST_DIR/out" 2>"$SD_TEST_DIR/err"
	rc=$?
	out=$(cat "$SD_TEST_DIR/out")
	err=$(cat "$SD_TEST_DIR/err")
}

[ -x "$DOG" ] || bail "no dog binary at $DOG"
# Nothing listens here: one port of this test's range that no sheep uses.
dead=$(sd_port 49)

run "$DOG"
check_eq "no arguments: usage exit code" 64 "$rc"
check "no arguments: usage on stderr" grep -q "^Usage: dog" "$SD_TEST_DIR/err"

run "$DOG" -h
check_eq "dog -h exits 0" 0 "$rc"
check "dog -h lists vdi create" grep -q "vdi create" "$SD_TEST_DIR/out"

run "$DOG" vdi create -h
check_eq "vdi create -h exits 0" 0 "$rc"
check "vdi create -h documents -c" grep -q -- "-c, --copies" "$SD_TEST_DIR/out"

run "$DOG" frobnicate
check_eq "unknown command: exit 64" 64 "$rc"
check "unknown command is named" grep -q "Invalid command 'frobnicate'" "$SD_TEST_DIR/err"
run "$DOG" vdi frob
check_eq "unknown subcommand: exit 64" 64 "$rc"
run "$DOG" vdi
check_eq "group without subcommand: exit 64" 64 "$rc"
check "group usage lists subcommands" grep -q "Available vdi subcommands" "$SD_TEST_DIR/err"
run "$DOG" vdi create onlyname -p "$dead"
check_eq "missing argument: exit 64" 64 "$rc"
run "$DOG" vdi list -Q
check_eq "unknown option: exit 64" 64 "$rc"
run "$DOG" node list -p 99999
check_eq "bad port: exit 64" 64 "$rc"
check "bad port is explained" grep -q "Invalid port number '99999'" "$SD_TEST_DIR/err"

# The bad-policy answer of REFERENCE.md, byte for byte, on stderr, exit 1.
cat >"$SD_TEST_DIR/want" <<'TXT'
Invalid parameter 16:16
To create replicated vdi, set -c x
  x(1 to 31)   - number of replicated copies
To create erasure coded vdi, set -c x:y
  x(2,4,8,16)  - number of data strips
  y(1 to 15)   - number of parity strips
TXT
run "$DOG" vdi create -c 16:16 v 1G -p "$dead"
check_eq "vdi create -c 16:16: exit 1" 1 "$rc"
check "vdi create -c 16:16: Sheepdog's text" cmp -s "$SD_TEST_DIR/want" "$SD_TEST_DIR/err"
check_eq "bad policy prints nothing on stdout" "" "$out"
for bad in 0 32 3:1 4:0 4:16 5:2 4:2:1 x -1 ":" "4:" ; do
	run "$DOG" vdi create v 1G -c "$bad" -p "$dead"
	check_eq "vdi create -c '$bad' refused with exit 1" 1 "$rc"
	check "vdi create -c '$bad' says Invalid parameter" grep -q "^Invalid parameter $bad\$" "$SD_TEST_DIR/err"
done
run "$DOG" cluster format -c 16:16 -p "$dead"
check_eq "cluster format -c 16:16: exit 1" 1 "$rc"
check "cluster format -c 16:16: Sheepdog's text" cmp -s "$SD_TEST_DIR/want" "$SD_TEST_DIR/err"
run "$DOG" vdi create -z 19 v 1G -p "$dead"
check_eq "block size shift 19 refused" 1 "$rc"

run "$DOG" vdi create v 12Q -p "$dead"
check_eq "bad size: exit 64" 64 "$rc"
check "bad size is explained" grep -q "invalid size '12Q'" "$SD_TEST_DIR/err"
run "$DOG" vdi create "$(printf 'n%.0s' $(seq 300))" 1G -p "$dead"
check_eq "over-long VDI name: exit 64" 64 "$rc"

# No sheep: a system failure (2) that says what to check. Options after the
# arguments still count (-p last).
for cmd in "vdi list" "node list" "node info" "cluster info" "cluster format" \
	"vdi create v 1G" "vdi read v" "vdi delete v" "cluster shutdown"; do
	# shellcheck disable=SC2086
	run "$DOG" $cmd -a 127.0.0.1 -p "$dead"
	check_eq "dog $cmd without sheep: exit 2" 2 "$rc"
	check "dog $cmd without sheep: says is sheep running" \
		grep -q "cannot connect to 127.0.0.1:$dead: .*is sheep running?" "$SD_TEST_DIR/err"
done
echo data | "$DOG" vdi write v -p "$dead" 2>"$SD_TEST_DIR/err"
check_eq "vdi write without sheep: exit 2" 2 "$?"
sd_done
