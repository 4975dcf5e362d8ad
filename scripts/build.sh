#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Configure and build into ${BUILD:-build}.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
