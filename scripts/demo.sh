#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# The self-contained demo: builds bpflb, starts a three-node cluster in
# network namespaces on this machine (client, fabric bridge, nodes, pods),
# runs bpflbd on every node with the embedded configuration below, sends real
# TCP and UDP through the NodePorts and the LB IP, and prints which backend
# answered and which source address it saw.  Cleans up everything it made.
#
#   sudo ./scripts/demo.sh [snat|dsr|hybrid]     (default snat)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-snat}
[[ $(id -u) -eq 0 ]] || { echo "demo.sh: run as root (network namespaces, BPF)" >&2; exit 1; }
./scripts/deps.sh
./scripts/build.sh >/dev/null
ROOT=$PWD
# shellcheck source=../tests/lib/cluster.sh
. tests/lib/cluster.sh
# shellcheck source=../tests/lib/bpflb.sh
. tests/lib/bpflb.sh
cluster_find_tools "$ROOT/build/tests/tools"
bpflb_find "$ROOT/build"
cluster_trap
cluster_up 3 >/dev/null 2>&1
for i in 1 2 3; do cluster_start_peerd "$i" 1 "pod-$i" >/dev/null; done

# The embedded default: one LoadBalancer service, TCP and UDP, a backend pod
# on every node, Maglev selection.
SVC="$CLUSTER_STATE/demo-services.ini"
cat >"$SVC" <<'INI'
[lb]
algorithm = maglev

[service web]
type = loadbalancer
port = http tcp 80 nodeport=30080 target=8080
port = dns udp 53 nodeport=30053 target=8081
lb_ips = 10.99.1.10
backend = 10.244.1.2 node=node1
backend = 10.244.2.2 node=node2
backend = 10.244.3.2 node=node3
INI
for i in 1 2 3; do
	bpflb_config "$i" "$MODE" "$SVC"
	bpflb_start "$i"
done
echo "bpflbd running in $MODE mode on node1..node3 (10.99.0.1-3); client 10.99.0.100"
echo "service web: NodePort tcp/30080 udp/30053, LB IP 10.99.1.10:80; backends pod-1..3"
echo
printf '%-28s %-8s %-20s %s\n' "client -> frontend" "backend" "source it saw" "what happened"
show() { # proto host port ingress-node
	local line b src how
	line=$(peerc_in "$CLIENT_NS" "$1" "$2" "$3" --timeout 2000 || true)
	b=$(awk '{print $1}' <<<"$line"); src=$(awk '{split($2,a,":"); print a[1]}' <<<"$line")
	case $src in
	"$CLIENT_IP")
		if [[ $b == "pod-$4" ]]; then how="local backend: DNAT, client address kept"
		else how="DSR: client address kept, ${b/pod-/node} replies directly"; fi ;;
	10.99.0.*) how="SNAT to node $src (remote backend)" ;;
	*) how="$line" ;;
	esac
	printf '%-28s %-8s %-20s %s\n' "$1 $2:$3" "$b" "$src" "$how"
}
for i in 1 2 3; do
	for _ in 1 2; do show tcp "10.99.0.$i" 30080 "$i"; done
	show udp "10.99.0.$i" 30053 "$i"
done
cluster_route_lbip 10.99.1.10 2
for _ in 1 2 3; do show tcp 10.99.1.10 80 2; done
echo
echo "distribution of 60 new TCP connections through node1:"
peerc_in "$CLIENT_NS" tcp 10.99.0.1 30080 --count 60 | awk '{print $1}' | sort | uniq -c
echo
echo "cleaning up (namespaces, daemons, pins)"
