#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# /metrics as Prometheus reads it: a node with a service that has a local
# backend, traffic through it, a reload and a drift check, so that every
# family has samples; the whole exposition is parsed with Prometheus' own
# Python parser (Debian python3-prometheus-client, metrics_parse.py), which
# fails on untyped families (samples away from their # TYPE line), empty
# families and names seen twice.  The process_* families must be there with
# values that match /proc.
#
# Usage: metrics_parse.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: metrics_parse.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"
PY=/usr/bin/python3 # Debian's, where python3-prometheus-client installs
$PY -c 'import prometheus_client' 2>/dev/null ||
	fail "no prometheus_client for $PY: apt-get install python3-prometheus-client (scripts/deps.sh)"

ok() { echo "ok - $*"; }
N1=$(cluster_node_ip 1)

cluster_trap
cluster_up 1
cluster_start_peerd 1 1 web-1
SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service web]
type = nodeport
port = http tcp 80 nodeport=30080 target=8080
backend = 10.244.1.2 node=node1
INI
BPFLB_DAEMON_EXTRA="metrics_listen = 127.0.0.1:9962
reconcile_interval = 1" bpflb_config 1 snat "$SVC"
bpflb_start 1
peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count 3 >/dev/null || fail "no traffic through the service"
bpflb_reload 1 || fail "reload refused"
sleep 1.5 # one drift check at least

scrape() {
	in_ns "$(cluster_node_ns 1)" $PY -c '
import sys, urllib.request
r = urllib.request.urlopen("http://127.0.0.1:9962/metrics", timeout=5)
assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers["Content-Type"]
sys.stdout.write(r.read().decode())'
}
scrape >"$CLUSTER_STATE/metrics.txt" || fail "scrape failed"
out=$($PY "$HERE/metrics_parse.py" "$CLUSTER_STATE/metrics.txt" \
	bpflb_map_entries bpflb_map_capacity bpflb_map_fill_ratio \
	process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes \
	process_open_fds process_max_fds process_start_time_seconds \
	bpflb_healthz_last_sync_timestamp_seconds bpflb_connections) ||
	fail "the exposition does not parse cleanly:
$out"
ok "the whole exposition parses: $(wc -l <<<"$out") families, none untyped, empty or twice"

# the process_* values are the daemon's
pid=$(bpflb_pid 1)
$PY - "$CLUSTER_STATE/metrics.txt" "$pid" <<'PYEOF' || fail "process_* values do not match /proc/$pid"
import os, sys, time
from prometheus_client.parser import text_string_to_metric_families
v = {s.name: s.value for f in text_string_to_metric_families(open(sys.argv[1]).read())
     for s in f.samples}
pid = sys.argv[2]
rss_kb = int([l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0])
assert abs(v["process_resident_memory_bytes"] / 1024 - rss_kb) < 16384, (v, rss_kb)
assert v["process_virtual_memory_bytes"] > v["process_resident_memory_bytes"], v
nfd = len(os.listdir(f"/proc/{pid}/fd"))
assert abs(v["process_open_fds"] - nfd) < 16, (v["process_open_fds"], nfd)
soft = int([l.split()[3] for l in open(f"/proc/{pid}/limits") if l.startswith("Max open files")][0])
assert v["process_max_fds"] == soft, (v["process_max_fds"], soft)
stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
btime = int([l.split()[1] for l in open("/proc/stat") if l.startswith("btime")][0])
start = btime + int(stat[19]) / os.sysconf("SC_CLK_TCK")
assert abs(v["process_start_time_seconds"] - start) < 1, (v["process_start_time_seconds"], start)
assert v["process_start_time_seconds"] <= time.time()
assert v["process_cpu_seconds_total"] >= 0
PYEOF
ok "process_* match /proc: rss, vsize, open fds, max fds, start time"

# the map families each list their five maps right under their own TYPE line
for fam in bpflb_map_entries bpflb_map_capacity bpflb_map_fill_ratio; do
	n=$(awk -v f="$fam" '$0 == "# TYPE " f " gauge" {on=1; next} /^#/ {on=0} on && index($0, f "{") == 1 {n++} END {print n+0}' \
		"$CLUSTER_STATE/metrics.txt")
	[[ $n == 5 ]] || fail "$fam: $n samples under its TYPE line, expected 5"
done
ok "bpflb_map_entries, _capacity and _fill_ratio are grouped (5 maps each)"
echo PASS
