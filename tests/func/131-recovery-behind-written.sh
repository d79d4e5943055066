#!/usr/bin/env bash
# 131-recovery-behind-written.sh - a fragment left behind on its holder of an object that writes keep moving is brought back by the writes themselves (its coordinator rewrites the object whole once recovery has had GW_BEHIND_GRACE_MS to do it), not left one fragment short while every write goes around it and every rebuild fails with "versions moved" (here: every repair fails, SHEEP_TEST_REPAIR_FAIL).
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

REPAIR_FAIL=1000000 BEHIND_WRITES=1
. "$SD_TOP/tests/func/stale_holder.sh"
sd_done
