#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Configure and build into ${BUILD:-build}, the benchmarks too (ctest
# bench_smoke, bench/run.sh --no-build use them; a plain cmake build has none).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBPFLB_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
