#!/usr/bin/env bash
# 051-deb.sh - make deb builds sheepdog-ec_*.deb; dpkg --root installs it into an empty directory, the installed sheep and dog run there under chroot (--version), the unit runs /usr/sbin/sheep; lintian finds no error.
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
O=${SD_BUILD:-$SD_TOP/build}

make -C "$SD_TOP" -s deb O="$O" DEB_DIR="$SD_TEST_DIR/deb" >"$SD_TEST_DIR/make.out" 2>&1 ||
	bail "make deb: $(tail -3 "$SD_TEST_DIR/make.out")"
deb=$(ls "$SD_TEST_DIR"/deb/sheepdog-ec_*.deb 2>/dev/null | head -1)
check "make deb wrote a .deb ($deb)" test -s "$deb"
ver=$("$SHEEP" --version | awk '{print $NF}')
check_eq "package version is the build's version, revision 1" "$ver-1" "$(dpkg-deb -f "$deb" Version)"
check "Depends names ISA-L (from dpkg-shlibdeps)" grep -q libisal <<<"$(dpkg-deb -f "$deb" Depends)"
for f in ./usr/sbin/sheep ./usr/bin/dog ./usr/share/man/man8/sheep.8.gz ./usr/share/man/man8/dog.8.gz \
	./lib/systemd/system/sheep.service ./etc/default/sheep ./var/lib/sheepdog/ \
	./usr/share/doc/sheepdog-ec/copyright; do
	check "package holds $f" grep -qF " $f" <(dpkg-deb -c "$deb" | awk '{print " " $6}')
done

# A fresh root with an empty dpkg database: dpkg installs the package there.
r=$SD_TEST_DIR/root
mkdir -p "$r/var/lib/dpkg/info" "$r/var/lib/dpkg/updates"
: >"$r/var/lib/dpkg/status"
dpkg --root="$r" --force-depends --log=/dev/null -i "$deb" >"$SD_TEST_DIR/dpkg.out" 2>&1
check_eq "dpkg --root -i: exit 0" 0 "$?"
check_eq "dpkg --root: status installed" "install ok installed" \
	"$(dpkg --root="$r" -s sheepdog-ec 2>/dev/null | sed -n 's/^Status: //p')"
check "dpkg --root: /var/lib/sheepdog is there" test -d "$r/var/lib/sheepdog"
check_eq "unit's ExecStart is the packaged sheep" "/usr/sbin/sheep" \
	"$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$r/lib/systemd/system/sheep.service")"
check "conffile /etc/default/sheep registered" grep -q '^/etc/default/sheep$' "$r/var/lib/dpkg/info/sheepdog-ec.conffiles"
# Make the root runnable: the shared libraries the programs need, then chroot.
for exe in "$r/usr/sbin/sheep" "$r/usr/bin/dog"; do
	ldd "$exe" | grep -o '/[^ ]*' | while read -r lib; do
		mkdir -p "$r$(dirname "$lib")"
		cp -Ln "$lib" "$r$lib" 2>/dev/null || true
	done
done
# The packaged programs are this build's (their version: the build's).
check_eq "chroot: sheep --version" "$("$SHEEP" --version)" "$(chroot "$r" /usr/sbin/sheep --version 2>&1)"
check_eq "chroot: dog --version" "$("$DOG" --version)" "$(chroot "$r" /usr/bin/dog --version 2>&1)"
check "chroot: sheep --help works" grep -q -- "--size" <(chroot "$r" /usr/sbin/sheep --help 2>&1)

# lintian: no errors (the warnings are listed in the README).
lintian --tag-display-limit 0 "$deb" >"$SD_TEST_DIR/lintian.out" 2>&1
log "lintian: $(tr '\n' ';' <"$SD_TEST_DIR/lintian.out")"
check_eq "lintian: no error" "" "$(grep '^E:' "$SD_TEST_DIR/lintian.out")"
sd_done
