#!/usr/bin/env bash
# 117-recovery-repair-retry.sh - a repair that cannot be planned when asked (too few fragments agree: a write in flight) is tried again until it succeeds, not dropped: the stale holder of 109 with its first two repair attempts failing (SHEEP_TEST_REPAIR_FAIL=2), as seen in 112's long run (an object left 5/6 with recovery done).
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

REPAIR_FAIL=2
. "$SD_TOP/tests/func/stale_holder.sh"
sd_done
