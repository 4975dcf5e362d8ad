#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# SNAT port churn: one client makes short TCP connections (connect, read the
# greeting line, close) back to back, as fast as it can, through a NodePort
# whose only backend runs on another node, so every connection takes a SNAT
# port.  Prints the connections made and bpflb_snat_port_exhausted_total
# before and after; the goal is 0 exhaustion drops.
#
#   sudo ./bench/snat_churn.sh [--build DIR] [--seconds 60] [--snat-ports LOW-HIGH]
#
# Default: 60 s and the default [lb] snat_ports.  The client namespace gets
# net.ipv4.tcp_tw_reuse = 1 (its own namespace only), so that its own
# TIME_WAIT sockets do not cap the rate at ~470 connections a second: the
# load balancer, not the client's port range, is what is measured.
# Everything it creates (namespaces, pins, processes) goes at exit.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build"
SECS=60
PORTS=""
while (($#)); do
	case "$1" in
	--build) BUILD="$2"; shift ;;
	--seconds) SECS="$2"; shift ;;
	--snat-ports) PORTS="$2"; shift ;;
	*) echo "snat_churn.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
	shift
done
((EUID == 0)) || { echo "snat_churn.sh: needs root" >&2; exit 77; }
BPFLB_PREFIX="bct$$-"
export BPFLB_PREFIX
# shellcheck source=../tests/lib/cluster.sh
. "$ROOT/tests/lib/cluster.sh"
# shellcheck source=../tests/lib/bpflb.sh
. "$ROOT/tests/lib/bpflb.sh"
cluster_find_tools "$BUILD/tests/tools"
bpflb_find "$BUILD"

cluster_trap
cluster_up 2
cluster_start_peerd 2 1 web-2
in_ns "$CLIENT_NS" sysctl -qw net.ipv4.tcp_tw_reuse=1
SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service web]
type = nodeport
port = http tcp 80 nodeport=30080 target=8080
backend = 10.244.2.2 node=node2
INI
BPFLB_DAEMON_EXTRA="metrics_listen = 127.0.0.1:9962" \
	bpflb_config 1 snat "$SVC" "${PORTS:+$(printf '[lb]\nsnat_ports = %s\n' "$PORTS")}"
bpflb_start 1
metric() { local v; v=$(bpflb_metric 1 "$1"); echo "${v:-0}"; }

e0=$(metric bpflb_snat_port_exhausted_total) r0=$(metric bpflb_snat_ports_reused_total)
echo "snat_ports ${PORTS:-default}, ${SECS}s; before: snat_exhausted=$e0 ports_reused=$r0"
res=$(in_ns "$CLIENT_NS" python3 "$ROOT/tests/tools/churn.py" "$(cluster_node_ip 1)" 30080 \
	--seconds "$SECS" --timeout 3000) || true
e1=$(metric bpflb_snat_port_exhausted_total) r1=$(metric bpflb_snat_ports_reused_total)
echo "churn: $res"
echo "after: snat_exhausted=$e1 (+$((e1 - e0))) ports_reused=$r1 (+$((r1 - r0))) conntrack_entries=$(metric bpflb_conntrack_entries)"
((e1 == e0))
