#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The whole test suite again, built with AddressSanitizer + UndefinedBehavior-
# Sanitizer (-DBPFLB_SANITIZE=ON) into ${BUILD:-build-asan}.  Every report
# fails: UBSan aborts at the first one (-fno-sanitize-recover=all,
# halt_on_error), ASan and LeakSanitizer make the process exit non-zero, and
# the harness (tests/lib/cluster.sh) fails a test whose daemons reported
# something in their logs.  Extra arguments go to ctest.  Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "test-asan.sh: run as root (network namespaces, BPF)" >&2; exit 1; }
./scripts/deps.sh --bench
BUILD=${BUILD:-build-asan}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBPFLB_SANITIZE=ON -DBPFLB_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
# detect_leaks: LeakSanitizer works here (root, no ptrace restrictions on the
# test processes); a leak at exit is a failure like any other report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
cd "$BUILD"
ctest --output-on-failure --timeout 600 "$@"
