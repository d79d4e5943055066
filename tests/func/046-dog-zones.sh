#!/usr/bin/env bash
# 046-dog-zones.sh - a policy wider than the cluster's zones: refused with the reason when no write could be acknowledged, created with a warning when redundancy would only be reduced.
# timeout: 120
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"

run() {
	"$@" >"$SD_TEST_DIR/out" 2>"$SD_TEST_DIR/err"
	rc=$?
	err=$(cat "$SD_TEST_DIR/err")
}

sd_start_cluster 4 || bail "four sheep did not form a cluster"
dogn 0 cluster format -c 2:1 || bail "cluster format failed"

# 4:2 needs d+1 = 5 zones before any write can be acknowledged.
run dogn 0 vdi create -c 4:2 wide 1G
check_eq "4:2 on 4 zones: refused with exit 1" 1 "$rc"
log "dog said: $err"
check "4:2 on 4 zones: the message names the policy and the zones" \
	bash -c '[[ "$1" == *4:2* && "$1" == *zone* ]]' _ "$err"
check_eq "4:2 on 4 zones: nothing created" "" "$(dogn 0 vdi list -r wide)"

# 2:1 and 3 copies fit.
check "2:1 on 4 zones" dogn 0 vdi create -c 2:1 fits 64M
check "3 copies on 4 zones" dogn 0 vdi create -c 3 three 64M

# A fifth zone: 4:2 can now acknowledge writes (d+1 = 5) but not place all
# six fragments: created, with a warning.
sd_start 4 || bail "fifth sheep"
sd_wait_nodes 0 5 || bail "five nodes"
run dogn 0 vdi create -c 4:2 wide 64M
check_eq "4:2 on 5 zones: created (exit 0)" 0 "$rc"
log "dog said: $err"
check "4:2 on 5 zones: warns about reduced redundancy" bash -c '[[ "$1" == *zone* ]]' _ "$err"
head -c $((8 << 20)) /dev/urandom >"$SD_TEST_DIR/d"
check "4:2 on 5 zones: write" dogn 0 vdi write wide <"$SD_TEST_DIR/d"
check_eq "4:2 on 5 zones: read back" "$(sd_sha "$SD_TEST_DIR/d")" \
	"$(dogn 0 vdi read wide 0 $((8 << 20)) | sd_sha /dev/stdin)"
sd_done
