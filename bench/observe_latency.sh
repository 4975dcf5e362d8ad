#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# How late `bpflbctl observe --follow` shows a flow, and whether in order: a
# one-node namespace cluster (mode snat), a follower, and N connections to a
# NodePort from two clients pinned to CPU 0 and CPU 1 (COUNT each, PAUSE ms
# apart).  For every flow record: the time it was read by the follower minus
# the flow's own time (the datapath's timestamp).  Prints the percentiles and
# the number of records that went back in time, per build side by side
# (BASE_BUILD: another build of bpflb, e.g. main's, for comparison).  Numbers,
# not a test.  Needs root and taskset; take /tmp/bpflb-net.lock around it.
#
# Usage: observe_latency.sh BUILD [BASE_BUILD] [COUNT=100] [PAUSE_MS=5]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export BPFLB_PREFIX="${BPFLB_PREFIX:-ob$$-}"
# shellcheck source=../tests/lib/cluster.sh
. "$HERE/../tests/lib/cluster.sh"
# shellcheck source=../tests/lib/bpflb.sh
. "$HERE/../tests/lib/bpflb.sh"
BUILD=$(cd "${1:?usage: observe_latency.sh BUILD [BASE_BUILD] [COUNT] [PAUSE_MS]}" && pwd)
BASE=${2:+$(cd "$2" && pwd)}
COUNT=${3:-100}
PAUSE=${4:-5}
cluster_find_tools "$BUILD/tests/tools"
N1=$(cluster_node_ip 1)

cluster_trap
cluster_up 1
cluster_start_peerd 1 1 web-1
SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[lb]
events_per_sec = 100000

[service web]
type = nodeport
port = http tcp 80 nodeport=30080 target=8080
backend = $(cluster_pod_ip 1 1) node=node1
INI

# run BUILD: prints "p50_ms p90_ms p99_ms max_ms flows backwards"
run() {
	local b="$1" out="$CLUSTER_STATE/follow-$RANDOM.json" fpid c pids=()
	bpflb_find "$b"
	bpflb_config 1 snat "$SVC"
	bpflb_start 1
	# the follower stamps each line as it reads it (ns since the epoch, then the line)
	"$b/tools/bpflbctl/bpflbctl" --socket "$(bpflb_sock 1)" -o json observe --follow > >(python3 -u -c '
import sys, time
for line in sys.stdin:
    sys.stdout.write("%d %s" % (time.time_ns(), line))
    sys.stdout.flush()' >"$out") &
	fpid=$! # bpflbctl; the stamper ends with its output
	sleep 0.5
	for c in 0 1; do
		in_ns "$CLIENT_NS" taskset -c "$c" python3 -c '
import socket, sys, time
host, port, n, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]) / 1000
for _ in range(n):
    s = socket.create_connection((host, port), timeout=2)
    s.close()
    time.sleep(pause)' "$N1" 30080 "$COUNT" "$PAUSE" &
		pids+=($!)
	done
	for c in "${pids[@]}"; do wait "$c"; done
	sleep 0.5 # the last flows reach even a 100 ms drain
	kill "$fpid" 2>/dev/null || true
	wait "$fpid" 2>/dev/null || true
	bpflb_stop 1
	_bpflb_cleanup_node 1 # the next build starts from no pins
	python3 - "$out" <<'EOF'
import json, sys, datetime
lat, prev, back = [], None, 0
for line in open(sys.argv[1]):
    got, _, rec = line.partition(" ")
    r = json.loads(rec)
    f = r.get("flow") or (r if "ts_ns" in r else None)  # hubble's records, or the flat events before them
    if not f:
        continue
    t = f["time"]
    whole, _, frac = t.rstrip("Z").partition(".")
    secs = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    ns = int(secs) * 10**9 + int((frac + "000000000")[:9])
    if prev is not None and ns < prev:
        back += 1
    prev = ns
    lat.append((int(got) - ns) / 1e6)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
print("%.1f %.1f %.1f %.1f %d %d" % (q(0.5), q(0.9), q(0.99), lat[-1] if lat else float("nan"), len(lat), back))
EOF
}

printf '%-10s %8s %8s %8s %8s %6s %10s\n' build p50_ms p90_ms p99_ms max_ms flows backwards
# run in this shell (not in $(...)): the cluster's exit handlers belong to it
run "$BUILD" >"$CLUSTER_STATE/this.txt"
read -r a b c d e f <"$CLUSTER_STATE/this.txt"
printf '%-10s %8s %8s %8s %8s %6s %10s\n' this "$a" "$b" "$c" "$d" "$e" "$f"
if [[ -n $BASE ]]; then
	run "$BASE" >"$CLUSTER_STATE/base.txt"
	read -r a b c d e f <"$CLUSTER_STATE/base.txt"
	printf '%-10s %8s %8s %8s %8s %6s %10s\n' base "$a" "$b" "$c" "$d" "$e" "$f"
fi
