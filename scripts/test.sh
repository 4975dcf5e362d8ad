#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The whole test suite, on a fresh Debian 12 machine, as root: install what is
# needed, build, run every test with ctest (unit, BPF fixtures, namespace
# clusters).  Extra arguments go to ctest (e.g. -R snat).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "test.sh: run as root (network namespaces, BPF)" >&2; exit 1; }
# --bench: bench_smoke runs every benchmark part at tiny size (iptables, iperf3).
./scripts/deps.sh --bench
./scripts/build.sh
cd "${BUILD:-build}"
ctest --output-on-failure --timeout 600 "$@"
