#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The whole test suite, on a fresh Debian 12 machine, as root: install what is
# needed, build, run every test with ctest (unit, BPF fixtures, namespace
# clusters), then the same suite built with ASan + UBSan (scripts/test-asan.sh,
# build-asan/), then every fuzzer for FUZZ_SECONDS (60) each
# (scripts/fuzz.sh, build-fuzz/).  Extra arguments go to both ctest runs
# (e.g. -R snat).  ASAN=0 skips the sanitizer run, FUZZ_SECONDS=0 the fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "test.sh: run as root (network namespaces, BPF)" >&2; exit 1; }
# --bench: bench_smoke runs every benchmark part at tiny size (iptables, iperf3).
./scripts/deps.sh --bench
./scripts/build.sh
failed=()
(cd "${BUILD:-build}" && ctest --output-on-failure --timeout 600 "$@") || failed+=(ctest)
if [[ ${ASAN:-1} != 0 ]]; then
	BUILD=build-asan ./scripts/test-asan.sh "$@" || failed+=(asan)
fi
if [[ ${FUZZ_SECONDS:-60} != 0 ]]; then
	BUILD=build-fuzz ./scripts/fuzz.sh "${FUZZ_SECONDS:-60}" || failed+=(fuzz)
fi
if ((${#failed[@]})); then
	echo "test.sh: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "test.sh: all passed"
