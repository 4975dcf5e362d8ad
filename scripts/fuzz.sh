#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Build the libFuzzer targets (fuzz/, clang with ASan + UBSan) into
# ${BUILD:-build-fuzz} and run each for SECONDS (default 60), starting from its
# seed corpus fuzz/corpus/<target>/ (which holds the regression inputs of
# every fixed finding) and the words of fuzz/<target>.dict.  Fails on any
# crash, leak, UBSan report, timeout (-timeout, default 10 s per input) or
# out-of-memory.
#   fuzz.sh [SECONDS] [TARGET...]
# New inputs go to $BUILD/corpus/<target>/ (kept between runs), findings to
# $BUILD/findings/<target>/; to reproduce one: $BUILD/fuzz/fuzz_<target> FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
BUILD=${BUILD:-build-fuzz}
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(config policy control state observe_time)

CC=${CC:-clang} cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBPFLB_BUILD_FUZZ=ON \
	-DBUILD_TESTING=OFF -DBPFLB_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]/#/fuzz_}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=()
for t in "${TARGETS[@]}"; do
	mkdir -p "$BUILD/corpus/$t" "$BUILD/findings/$t"
	echo "fuzz: $t for ${SECONDS_EACH}s"
	dict=()
	[[ -f fuzz/$t.dict ]] && dict=(-dict="fuzz/$t.dict")
	if ! "$BUILD/fuzz/fuzz_$t" "${dict[@]}" -max_total_time="$SECONDS_EACH" -timeout="${FUZZ_TIMEOUT:-10}" \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD/findings/$t/" \
		"$BUILD/corpus/$t" "fuzz/corpus/$t" >"$BUILD/findings/$t.log" 2>&1; then
		tail -n 60 "$BUILD/findings/$t.log" >&2
		failed+=("$t")
	else
		grep -E '^stat::number_of_executed_units|^Done' "$BUILD/findings/$t.log" | sed "s/^/  $t: /"
	fi
done
if ((${#failed[@]})); then
	echo "fuzz: FAILED: ${failed[*]} (inputs in $BUILD/findings/)" >&2
	exit 1
fi
echo "fuzz: ${TARGETS[*]} clean for ${SECONDS_EACH}s each"
