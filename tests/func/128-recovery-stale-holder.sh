#!/usr/bin/env bash
# 128-recovery-stale-holder.sh - a fragment left at an old version on its current holder (no membership change follows) is rebuilt once a write finds it behind, instead of staying short until the next epoch (issue 14, bug 3).
# timeout: 300
. "${SD_TOP:-$(dirname "$0")/../..}/tests/func/lib.sh"
. "$SD_TOP/tests/func/rec_lib.sh"

. "$SD_TOP/tests/func/stale_holder.sh"
sd_done
