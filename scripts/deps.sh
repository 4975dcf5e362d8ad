#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Install the Debian 12 packages bpflb needs to build, test and run; mount
# bpffs.  Safe to run again: it only installs what is missing.
#   deps.sh [--bench] [PACKAGE...]
# --bench adds what only the benchmarks (bench/run.sh) use; extra arguments are
# more packages.
set -euo pipefail

PKGS=(
	gcc make cmake pkg-config clang llvm bpftool
	libbpf-dev libelf-dev zlib1g-dev libuv1-dev libinih-dev check libsystemd-dev libjson-c-dev libyaml-dev
	iproute2 util-linux procps python3 tcpdump
	libclang-rt-14-dev # libFuzzer and the sanitizer runtimes of clang 14 (scripts/fuzz.sh)
	libsmartcols-dev # bpflbctl's tables
	dpkg-dev # dpkg-shlibdeps: the .deb's Depends (cpack, ctest package)
	file # CPack DEB tells binaries apart with it
	lintian # ctest package: the .debs lint clean at error level
	man-db # ctest package: man --warnings -l on every page
	groff # ctest package: groff -ww on every page
	systemd # ctest unit_security: systemd-analyze verify and security (offline)
	libmicrohttpd-dev # the HTTP server of metrics, healthz and health check node ports
	python3-prometheus-client # tests/integration/metrics_parse.sh parses /metrics with it
)
# Only for bench/run.sh: the kube-proxy comparison, bulk transfers, plots.
BENCH_PKGS=(iptables iperf3 gnuplot-nox)
if [[ ${1:-} == --bench ]]; then
	shift
	PKGS+=("${BENCH_PKGS[@]}")
fi
PKGS+=("$@")

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
