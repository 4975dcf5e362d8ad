#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# Throughput (bench part 3): TCP bulk transfer with iperf3 from the client
# namespace to a server in a pod on a REMOTE node, through a NodePort, with
# the machine's CPU time per GB moved.  A 5-node namespace cluster:
#
#   client --> n1:30201  bpflbd, mode snat  --+
#          --> n2:30201  kube-proxy-shaped    |
#                        iptables rules       +--> n4: pod 10.244.4.2, iperf3 -s
#          --> n5:30201  bpflbd, mode dsr   --+     (n4 runs bpflbd too: the
#          --> 10.244.4.2:5201 routed via n3 -+      backend half of DSR)
#
# direct (no load balancer): the client routes the pod network through n3,
# the replies go straight back from n4, the same hop count as DSR's.
#
# Both directions: "download" (iperf3 -R, the server sends: the bulk is the
# replies, which DSR sends straight to the client) and "upload" (the client
# sends: the bulk crosses the ingress node in every variant).
#
# CPU: all namespaces share one kernel, so the cost of one namespace (the
# ingress node) cannot be read apart: /proc/stat of the whole machine is read
# before and after each run, and its busy time (user, system, irq, softirq)
# divided by the bytes received gives CPU-seconds per GB for the whole path
# (iperf3 client and server included, the same in every variant).  The
# difference between variants is what their path costs.
#
# Usage: throughput.sh BUILD_DIR OUT_DIR ROUNDS SECONDS
#   appends one JSON object per run to OUT_DIR/throughput.jsonl.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../../tests/lib/cluster.sh
. "$ROOT/tests/lib/cluster.sh"
# shellcheck source=../../tests/lib/bpflb.sh
. "$ROOT/tests/lib/bpflb.sh"
# shellcheck source=common.sh
. "$HERE/common.sh"

BUILD="$(cd "${1:?usage: throughput.sh BUILD OUT ROUNDS SECONDS}" && pwd)"
OUT="${2:?}"
ROUNDS="${3:?}"
SECS="${4:?}"
mkdir -p "$OUT"
: >"$OUT/throughput.jsonl"
cluster_find_tools "$BUILD/tests/tools"
bpflb_find "$BUILD"
command -v iperf3 >/dev/null || fail "iperf3 is missing (bench/run.sh installs it)"
HZ=$(getconf CLK_TCK)

cluster_trap
cluster_up 5
BE_IP=$(cluster_pod_ip 4 1)
cluster_bg "$(cluster_pod_ns 4 1)" "$CLUSTER_LOGDIR/iperf3.log" iperf3 -s -p 5201
wait_for "in_ns $(cluster_pod_ns 4 1) ss -ltn | grep >/dev/null ':5201 '" 5 0.05 || fail "iperf3 server did not start"
ip -n "$CLIENT_NS" route add "$(cluster_pod_cidr 4)" via "$(cluster_node_ip 3)" dev eth0

SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service iperf]
type = nodeport
port = data tcp 5201 nodeport=30201 target=5201
backend = $BE_IP node=node4
INI
for i in 1 4 5; do
	mode=snat
	((i == 5)) && mode=dsr
	bpflb_config "$i" "$mode" "$SVC"
	bench_bpflb_start "$i"
done

# kube-proxy's rules for the same service on n2 (one endpoint, remote: DNAT + MASQUERADE).
RULES="$CLUSTER_STATE/rules"
python3 "$HERE/gen.py" iptables 1 --target-backends "$BE_IP" | sed 's/8080/5201/g; s/--dport 30080/--dport 30201/' >"$RULES"
bench_ipt_restore "$(cluster_node_ns 2)" "$RULES" || fail "iptables-restore"

declare -A TARGET=(
	[direct]="$BE_IP 5201"
	[bpflb-snat]="$(cluster_node_ip 1) 30201"
	[iptables]="$(cluster_node_ip 2) 30201"
	[bpflb-dsr]="$(cluster_node_ip 5) 30201"
)
VARIANTS=(direct bpflb-snat iptables bpflb-dsr)

iperf() { # VARIANT DIR SECONDS -> iperf3 JSON
	local h p
	local -a rev=()
	read -r h p <<<"${TARGET[$1]}"
	[[ $2 == download ]] && rev=(-R)
	in_ns "$CLIENT_NS" iperf3 -c "$h" -p "$p" -t "$3" -J "${rev[@]}"
}

for v in "${VARIANTS[@]}"; do
	iperf "$v" upload 1 >"$CLUSTER_STATE/warm.json" || {
		cat "$CLUSTER_STATE/warm.json" >&2
		fail "iperf3 through $v does not work"
	}
done

for ((r = 0; r < ROUNDS; r++)); do
	for dir in download upload; do
		for ((j = 0; j < ${#VARIANTS[@]}; j++)); do
			v=${VARIANTS[(j + r) % ${#VARIANTS[@]}]}
			read -r b0 u0 s0 si0 i0 < <(bench_cpu_ticks)
			t0=$EPOCHREALTIME
			if ! iperf "$v" "$dir" "$SECS" >"$CLUSTER_STATE/run.json"; then
				log "throughput: $v $dir failed: $(head -c 300 "$CLUSTER_STATE/run.json")"
				continue
			fi
			t1=$EPOCHREALTIME
			read -r b1 u1 s1 si1 i1 < <(bench_cpu_ticks)
			python3 - "$v" "$dir" "$r" "$(bench_dt "$t0" "$t1")" "$HZ" \
				"$((b1 - b0))" "$((u1 - u0))" "$((s1 - s0))" "$((si1 - si0))" "$((i1 - i0))" \
				"$CLUSTER_STATE/run.json" >>"$OUT/throughput.jsonl" <<'PY'
import json, sys
v, d, r, wall, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
busy, user, system, softirq, irq = (int(x) / hz for x in sys.argv[6:11])
j = json.load(open(sys.argv[11]))
recv = j["end"]["sum_received"]
gb = recv["bytes"] / 1e9
print(json.dumps({"variant": v, "dir": d, "round": r, "wall_s": wall,
                  "bytes": recv["bytes"], "gbit_s": recv["bits_per_second"] / 1e9,
                  "retransmits": j["end"].get("sum_sent", {}).get("retransmits"),
                  "cpu_s": {"busy": busy, "user": user, "system": system, "softirq": softirq, "irq": irq},
                  "cpu_s_per_gb": busy / gb if gb else None,
                  "softirq_s_per_gb": softirq / gb if gb else None}))
PY
			log "throughput: round $r $dir $v: $(tail -1 "$OUT/throughput.jsonl" | python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.2f Gbit/s, %.2f CPU-s/GB" % (j["gbit_s"], j["cpu_s_per_gb"]))')"
		done
	done
done
bench_ipt_flush "$(cluster_node_ns 2)"
log "throughput: done"
