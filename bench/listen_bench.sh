#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# Control and reload latency of a real bpflbd under 200 concurrent clients with
# a full conntrack map (issue 13, item 7): starts bpflbd (mode none) in a
# network namespace of its own, then runs `ctrl_bench listen` there, which
# fills bpflb_ct and measures, in one run, `status` and `reload` while 200
# clients make the daemon walk the map per request (as status and /metrics
# did) and then while 200 scrapers read /metrics (counts from the snapshot).
# Prints ctrl_bench's JSON.  Needs root.
#
# Usage: listen_bench.sh BUILD_DIR [SCRAPERS]
set -euo pipefail
BUILD=$(cd "${1:?usage: listen_bench.sh BUILD_DIR [SCRAPERS]}" && pwd)
[[ -x $BUILD/bench/ctrl_bench ]] || {
	echo "listen_bench.sh: no $BUILD/bench/ctrl_bench: configure with -DBPFLB_BUILD_BENCH=ON" \
		"(scripts/build.sh does)" >&2
	exit 1
}
N=${2:-200}
NS="bctlb$$"
PIN=/sys/fs/bpf/$NS
TMP=$(mktemp -d /tmp/bctl-bench-XXXXXX)
DPID=""
cleanup() {
	set +e
	[[ -n $DPID ]] && kill "$DPID" 2>/dev/null && wait "$DPID"
	ip netns del "$NS" 2>/dev/null
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT
nsd() { nsenter --net=/run/netns/"$NS" "$@"; }

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
ip netns add "$NS"
nsd ip link set lo up
nsd ip link add eth0 type veth peer name eth1
nsd ip addr add 10.97.0.1/24 dev eth0
nsd ip link set eth0 up
nsd ip link set eth1 up
cat >"$TMP/bpflb.ini" <<INI
[daemon]
mode = none
plugin_dir = $BUILD/plugins-out
bpffs_root = $PIN
control_socket = $TMP/run/ctl.sock
state_dir = $TMP/state
metrics_listen = 127.0.0.1:9962
devices = eth0
log_level = warning

[node]
name = bench
address = 10.97.0.1

[lb]
; the GC sweeps on the loop too; keep it out of this measurement
ct_gc_interval = 3600
INI
nsd "$BUILD/core/bpflbd" --config "$TMP/bpflb.ini" >"$TMP/log" 2>&1 &
DPID=$!
for _ in $(seq 100); do [[ -S $TMP/run/ctl.sock ]] && break; sleep 0.1; done
[[ -S $TMP/run/ctl.sock ]] || { cat "$TMP/log" >&2; exit 1; }
nsd "$BUILD/bench/ctrl_bench" listen --socket "$TMP/run/ctl.sock" --metrics 127.0.0.1:9962 \
	--ct "$PIN/bpflb_ct" --scrapers "$N"
