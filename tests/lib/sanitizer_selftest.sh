#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# sanitizer_selftest.sh - a test whose daemon wrote an ASan, LeakSanitizer or
# UBSan report to its log fails, although the test itself passed (the report
# of a daemon shows in no exit status; scripts/test-asan.sh relies on this).
# No namespaces are made: the child tests only write logs.  Needs root (ip netns).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# child REPORT_LINE: a passing test whose "daemon" logged REPORT_LINE; its exit status.
child() {
	local rc=0
	BPFLB_PREFIX="bfz$$-" bash -c '
		set -euo pipefail
		. "$1"
		cluster_trap
		printf "starting\n%s\nstopped\n" "$2" >"$CLUSTER_LOGDIR/bpflbd-node1.log"
		exit 0
	' child "$HERE/cluster.sh" "$1" 2>"$out" || rc=$?
	echo "$rc"
}

out=$(mktemp)
trap 'rm -f "$out"' EXIT
fails=0
for report in '==123==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020' \
	'==123==ERROR: LeakSanitizer: detected memory leaks' \
	'core/x.c:12:3: runtime error: signed integer overflow: 2147483647 + 1'; do
	rc=$(child "$report")
	if [[ $rc == 0 ]] || ! grep -q "sanitizer report in bpflbd-node1.log" "$out"; then
		echo "FAIL: a log with '$report' did not fail the test (rc $rc): $(cat "$out")" >&2
		fails=1
	fi
done
rc=$(child "info: reload done")
[[ $rc == 0 ]] || { echo "FAIL: a clean log failed the test (rc $rc): $(cat "$out")" >&2; fails=1; }
((fails == 0)) && echo "ok - sanitizer reports in daemon logs fail the test"
exit "$fails"
