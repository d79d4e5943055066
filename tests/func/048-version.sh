#!/usr/bin/env bash
# 048-version.sh - sheep --version / -v and dog --version print the build's version: git describe in a checkout, configure's VERSION in a tree without git (a tarball).
# timeout: 120
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

base=$(sed -n 's/^VERSION = //p' "$SD_TOP/config.mk")
check "config.mk has configure's VERSION ($base)" test -n "$base"
# The version make stamped into this build (a commit made since the build
# must not fail the test: the binaries are that build's).
hdr=${SD_BUILD:-$SD_TOP/build}/gen/sd_version.h
want=$(sed -n 's/^#define SD_VERSION "\(.*\)"$/\1/p' "$hdr")
check "the build wrote its version header ($want)" test -n "$want"
now=$("$SD_TOP/scripts/version" "$base")
check "scripts/version now and at build time have the same form ($now, $want)" \
	bash -c '[[ "$1" =~ ^[0-9.]+(\+git[0-9]+\.g[0-9a-f]{12}(\.dirty)?)?$ && "$2" =~ ^[0-9.]+(\+git[0-9]+\.g[0-9a-f]{12}(\.dirty)?)?$ ]]' _ "$now" "$want"
check_eq "sheep --version" "sheep (sheepdog-ec) $want" "$("$SHEEP" --version)"
check_eq "sheep -v" "sheep (sheepdog-ec) $want" "$("$SHEEP" -v)"
check_eq "dog --version" "dog (sheepdog-ec) $want" "$("$DOG" --version)"
if [ -e "$SD_TOP/.git" ]; then
	h=$(git -C "$SD_TOP" rev-parse --short=12 HEAD)
	check "in a git checkout the version names HEAD ($now, $h)" grep -q "g$h" <<<"$now"
	bh=$(sed -n 's/.*\.g\([0-9a-f]\{12\}\).*/\1/p' <<<"$want")
	check "the build's version names a commit of this repository ($bh)" \
		git -C "$SD_TOP" cat-file -e "$bh^{commit}"
	check "the version sorts as a Debian version above the base" \
		dpkg --compare-versions "$want" gt "$base"
	# A tree without git history (what a release tarball is): configure's version.
	mkdir -p "$SD_TEST_DIR/tar"
	(cd "$SD_TOP" && git ls-files -co --exclude-standard | tar -c -T -) | tar -x -C "$SD_TEST_DIR/tar"
	check_eq "scripts/version in a tarball tree: configure's VERSION" "$base" \
		"$("$SD_TEST_DIR/tar/scripts/version" "$base")"
	(cd "$SD_TEST_DIR/tar" && ./configure >/dev/null && make -s O=b b/gen/sd_version.h) >"$SD_TEST_DIR/mk.out" 2>&1
	check_eq "make in a tarball tree writes configure's VERSION into the header" \
		"#define SD_VERSION \"$base\"" "$(grep SD_VERSION "$SD_TEST_DIR/tar/b/gen/sd_version.h" 2>&1)"
fi
sd_done
