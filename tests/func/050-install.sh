#!/usr/bin/env bash
# 050-install.sh - make install: sheep, dog, man pages and sheep.service land under the prefix, the unit's ExecStart is the installed sheep, systemd-analyze verify is clean; make bench runs only the benchmarks that need no cluster.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
O=${SD_BUILD:-$SD_TOP/build}

# Default prefix into a DESTDIR: the unit names /usr/local/sbin/sheep.
d=$SD_TEST_DIR/destdir
make -C "$SD_TOP" -s install O="$O" DESTDIR="$d" >"$SD_TEST_DIR/make1.out" 2>&1 ||
	bail "make install DESTDIR: $(tail -3 "$SD_TEST_DIR/make1.out")"
p=$(sed -n 's/^prefix = //p' "$SD_TOP/config.mk")
for f in sbin/sheep bin/dog share/man/man8/sheep.8 share/man/man8/dog.8 lib/systemd/system/sheep.service; do
	check "make install DESTDIR: $p/$f" test -s "$d$p/$f"
done
check_eq "unit runs the sheep make install put in $p/sbin" \
	"ExecStart=$p/sbin/sheep -f -c corosync \$SHEEP_OPTS \$SHEEP_DIR" \
	"$(grep '^ExecStart=' "$d$p/lib/systemd/system/sheep.service")"

# A prefix systemd-analyze can check on this machine's root.
r=$SD_TEST_DIR/root/usr
make -C "$SD_TOP" -s install O="$O" prefix="$r" >"$SD_TEST_DIR/make2.out" 2>&1 ||
	bail "make install prefix=: $(tail -3 "$SD_TEST_DIR/make2.out")"
unit=$r/lib/systemd/system/sheep.service
exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
check_eq "ExecStart follows prefix" "$r/sbin/sheep" "$exe"
check "ExecStart is executable" test -x "$exe"
check_eq "the installed sheep runs" "$("$SHEEP" --version)" "$("$exe" --version)"
MANPATH=$r/share/man: systemd-analyze verify "$unit" >"$SD_TEST_DIR/verify.out" 2>&1
rc=$?
check_eq "systemd-analyze verify sheep.service: exit 0" 0 "$rc"
check_eq "systemd-analyze verify sheep.service: no warning" "" "$(cat "$SD_TEST_DIR/verify.out")"
systemd-analyze verify "$SD_TOP/contrib/systemd/corosync.service" >"$SD_TEST_DIR/verify2.out" 2>&1
check_eq "systemd-analyze verify contrib corosync.service: clean" "0 " "$? $(cat "$SD_TEST_DIR/verify2.out")"
check "sheep.default names /var/lib/sheepdog" grep -q '^SHEEP_DIR=/var/lib/sheepdog$' "$SD_TOP/contrib/systemd/sheep.default"
# make bench runs the benchmarks that need nothing else: sd_bench is a
# client of a running cluster and exits 1 without arguments, which made
# make bench fail.
runs=$(make -C "$SD_TOP" -s -n bench O="$O" 2>/dev/null | sed -n 's/.*for b in \(.*\); do.*/\1/p')
check "make bench runs some benchmarks" test -n "$runs"
check_eq "make bench leaves out sd_bench (a cluster's client)" "" "$(grep -o sd_bench <<<"$runs")"
sd_done
