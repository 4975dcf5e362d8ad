#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# SNAT mode end to end on a three-node namespace cluster: real TCP and UDP from
# a client namespace to NodePorts and LB IPs, backends in pod namespaces that
# report the source address they saw.
#
# Usage: snat.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: snat.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"

ok() { echo "ok - $*"; }
LBIP=10.99.1.10
MGIP=10.99.1.11

cluster_trap
cluster_up 3
for i in 1 2 3; do
	cluster_start_peerd "$i" 1 "web-$i"
done
cluster_add_pod 1 2
cluster_start_peerd 1 2 "local-1"
cluster_add_pod 2 2
cluster_start_peerd 2 2 "local-2"

SVC="$CLUSTER_STATE/services.ini"
write_services() { # [skip-web-local] [mg-backends]
	local mg="${2:-1 2 3}" k
	{
		cat <<INI
[service web]
type = loadbalancer
port = http tcp 80 nodeport=30080 target=8080
port = dns udp 53 nodeport=30053 target=8081
lb_ips = $LBIP
backend = 10.244.1.2 node=node1
backend = 10.244.2.2 node=node2
backend = 10.244.3.2 node=node3

[service maglev]
type = loadbalancer
algorithm = maglev
port = dns udp 53 target=8081
lb_ips = $MGIP
INI
		for k in $mg; do echo "backend = 10.244.$k.2 node=node$k"; done
		echo
		if [[ ${1:-} != skip-web-local ]]; then
			cat <<INI
[service web-local]
type = nodeport
port = http tcp 80 nodeport=30082 target=8080
external_traffic_policy = local
health_check_node_port = 32001
backend = 10.244.1.3 node=node1
backend = 10.244.2.3 node=node2

INI
		fi
		cat <<INI
[service agent]
type = hostport
port = metrics tcp 9080 target=8080
backend = 10.244.1.2 node=node1

[service empty-drop]
type = nodeport
port = http tcp 80 nodeport=30090

[service empty-reject]
type = nodeport
no_backend = reject
port = http tcp 80 nodeport=30091
INI
	} >"$SVC"
}

write_services
for i in 1 2 3; do
	bpflb_config "$i" snat "$SVC"
	bpflb_start "$i"
done
ok "bpflbd runs in SNAT mode on 3 nodes"

# peer address the backend reported, and its name, from a peerd line
who() { awk '{print $1}'; }
peer_ip() { awk '{split($2,a,":"); print a[1]}'; }

# 1. Every node's NodePort and the LB IP through every node; SNAT source checks.
for i in 1 2 3; do
	out=$(peerc_in "$CLIENT_NS" tcp "$(cluster_node_ip "$i")" 30080 --count 30) ||
		fail "NodePort 30080 via node $i: $out"
	while read -r line; do
		b=$(who <<<"$line"); src=$(peer_ip <<<"$line")
		if [[ $b == "web-$i" ]]; then
			[[ $src == "$CLIENT_IP" ]] || fail "local backend $b via node $i saw $src, expected the client $CLIENT_IP"
		else
			[[ $src == "$(cluster_node_ip "$i")" ]] ||
				fail "remote backend $b via node $i saw $src, expected node $i's address (SNAT)"
		fi
	done <<<"$out"
	for b in web-1 web-2 web-3; do
		n=$(grep -c "^$b " <<<"$out" || true)
		((n >= 3)) || fail "distribution via node $i: $b answered $n of 30 connections"
	done
done
ok "TCP NodePort via every node: all 3 backends answer; remote ones see the node address, local ones the client"

for i in 1 2 3; do
	cluster_route_lbip "$LBIP" "$i"
	out=$(peerc_in "$CLIENT_NS" tcp "$LBIP" 80 --count 9) || fail "LB IP via node $i: $out"
	out=$(peerc_in "$CLIENT_NS" udp "$LBIP" 53 --count 9) || fail "UDP LB IP via node $i: $out"
	out=$(peerc_in "$CLIENT_NS" udp "$(cluster_node_ip "$i")" 30053 --count 9) ||
		fail "UDP NodePort via node $i: $out"
done
ok "LB IP (TCP and UDP) and UDP NodePort through every node"

# 2. Maglev: a flow lands on the same backend whichever node receives it.
declare -A first
for i in 1 2 3; do
	cluster_route_lbip "$MGIP" "$i"
	for sp in $(seq 21000 21029); do
		b=$(peerc_in "$CLIENT_NS" udp "$MGIP" 53 --sport "$sp" | who) || fail "maglev via node $i sport $sp"
		if ((i == 1)); then
			first[$sp]=$b
		else
			[[ ${first[$sp]} == "$b" ]] || fail "maglev: sport $sp went to ${first[$sp]} via node 1, $b via node $i"
		fi
	done
done
[[ $(printf '%s\n' "${first[@]}" | sort -u | wc -l) -ge 2 ]] || fail "maglev: 30 flows all on one backend"
ok "Maglev: 30 flows pick the same backend through each of the 3 nodes"

# Removing backend 3 moves only its flows: measured with fresh flows on node 3
# before (via node 2) and after (via node 3) the removal.
cluster_route_lbip "$MGIP" 2
declare -A before
for sp in $(seq 22000 22059); do
	before[$sp]=$(peerc_in "$CLIENT_NS" udp "$MGIP" 53 --sport "$sp" | who)
done
write_services "" "1 2"
for i in 1 2 3; do bpflb_config "$i" snat "$SVC"; bpflb_reload "$i" || fail "reload on node $i refused"; done
cluster_route_lbip "$MGIP" 3
moved=0
for sp in $(seq 22000 22059); do
	b=$(peerc_in "$CLIENT_NS" udp "$MGIP" 53 --sport "$sp" | who)
	[[ $b == web-3 ]] && fail "maglev: sport $sp still reaches the removed backend"
	if [[ ${before[$sp]} != web-3 && $b != "${before[$sp]}" ]]; then
		fail "maglev: sport $sp moved ${before[$sp]} -> $b although its backend stayed"
	fi
	[[ ${before[$sp]} == web-3 ]] && moved=$((moved + 1))
done
ok "Maglev: removing a backend moved only its $moved of 60 flows"

# 3. externalTrafficPolicy=Local and its health check node port.
out=$(peerc_in "$CLIENT_NS" tcp "$(cluster_node_ip 1)" 30082 --count 3) || fail "ETP=Local via node 1: $out"
grep -qv "^local-1 $CLIENT_IP:" <<<"$out" && fail "ETP=Local via node 1 went elsewhere or lost the client address: $out"
if peerc_in "$CLIENT_NS" tcp "$(cluster_node_ip 3)" 30082 --timeout 500 >/dev/null; then
	fail "ETP=Local via node 3 (no local backend) answered"
fi
healthz() { in_ns "$CLIENT_NS" python3 -c '
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen("http://%s:32001/" % sys.argv[1], timeout=2); print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())' "$1"; }
h1=$(healthz "$(cluster_node_ip 1)"); h3=$(healthz "$(cluster_node_ip 3)")
[[ $h1 == 200* && $h1 == *'"localEndpoints": 1'* || $h1 == 200*'"localEndpoints":1'* ]] || fail "health check on node 1: $h1"
[[ $h3 == 503* ]] || fail "health check on node 3: $h3"
ok "ETP=Local: node 1 serves with the client address kept, node 3 drops; health check 200 / 503"

# 4. No backend: drop, or reject with ICMP (the client sees "connection refused").
r=$(peerc_in "$CLIENT_NS" tcp "$(cluster_node_ip 2)" 30090 --timeout 500 || true)
[[ $r == *"ERROR"*"timeout"* ]] || fail "no backend, drop: $r"
r=$(peerc_in "$CLIENT_NS" tcp "$(cluster_node_ip 2)" 30091 --timeout 2000 || true)
[[ $r == *"refused"* ]] || fail "no backend, reject: expected connection refused, got $r"
ok "service without backends: dropped, or rejected with ICMP unreachable"

# hostPort: bound on the backend's node only, on its (private) node address.
out=$(peerc_in "$CLIENT_NS" tcp "$(cluster_node_ip 1)" 9080) || fail "hostPort on node 1: $out"
[[ $(who <<<"$out") == web-1 ]] || fail "hostPort on node 1 answered from $out"
if peerc_in "$CLIENT_NS" tcp "$(cluster_node_ip 2)" 9080 --timeout 500 >/dev/null; then
	fail "hostPort answered on node 2, where its pod does not run"
fi
ok "hostPort: node 1's address forwards to its pod, other nodes do not answer"

# 5. SIGHUP changes services while a stream of another service keeps flowing.
cluster_route_lbip "$LBIP" 1
peerc_in "$CLIENT_NS" stream "$LBIP" 80 --bytes 400000 --chunk 2000 --interval-ms 10 \
	>"$CLUSTER_STATE/stream.out" 2>&1 &
spid=$!
sleep 0.5
write_services skip-web-local "1 2"
cat >>"$SVC" <<INI

[service added]
type = nodeport
port = http tcp 80 nodeport=30100 target=8080
backend = 10.244.2.2 node=node2
INI
for i in 1 2 3; do bpflb_config "$i" snat "$SVC"; bpflb_reload "$i" || fail "reload on node $i refused"; done
out=$(peerc_in "$CLIENT_NS" tcp "$(cluster_node_ip 3)" 30100 --count 3) || fail "added service: $out"
[[ $(who <<<"$out" | sort -u) == web-2 ]] || fail "added service answered from $(who <<<"$out" | sort -u)"
if peerc_in "$CLIENT_NS" tcp "$(cluster_node_ip 1)" 30082 --timeout 500 >/dev/null; then
	fail "removed service still answers"
fi
wait "$spid" || fail "stream through the LB IP broke during the reload: $(cat "$CLUSTER_STATE/stream.out")"
grep -q "^OK bytes=400000" "$CLUSTER_STATE/stream.out" || fail "stream: $(cat "$CLUSTER_STATE/stream.out")"
ok "SIGHUP: service added and removed; a stream of another service kept every byte"

# 6. A broken reload keeps the old services.
printf '[service broken]\ntype = nodeport\nport = http tcp 80 nodeport=99999\n' >>"$SVC"
bpflb_config 1 snat "$SVC"
bpflb_reload 1 && fail "reload with nodeport=99999 was accepted"
grep -q "node1.ini:[0-9]*: .*nodeport" "$(bpflb_log 1)" || fail "refused reload does not name file:line"
out=$(peerc_in "$CLIENT_NS" tcp "$(cluster_node_ip 1)" 30100 --count 3) || fail "after refused reload: $out"
ok "refused reload names file:line and keeps serving the previous services"
# 7. The Maglev table size: refused on reload (the datapath's tables have a
# size), taken at restart, when the tables are rebuilt and still agree.
write_services skip-web-local "1 2"
sed -i '1i [lb]\nmaglev_table_size = 251\n' "$SVC"
for i in 1 2 3; do bpflb_config "$i" snat "$SVC"; done
bpflb_reload 1 && fail "maglev_table_size change accepted on reload"
grep -q "maglev_table_size = 251: cannot change on reload" "$(bpflb_log 1)" || fail "no restart hint for maglev_table_size"
for i in 1 2 3; do bpflb_stop "$i"; bpflb_start "$i"; done
grep -q "Maglev table size changed from 16381 to 251" "$(bpflb_log 1)" || fail "Maglev tables not rebuilt at restart"
declare -A m251
for i in 1 2 3; do
	cluster_route_lbip "$MGIP" "$i"
	for sp in $(seq 23000 23019); do
		b=$(peerc_in "$CLIENT_NS" udp "$MGIP" 53 --sport "$sp" | who) || fail "maglev(251) via node $i sport $sp"
		[[ -z ${m251[$sp]:-} ]] && m251[$sp]=$b
		[[ ${m251[$sp]} == "$b" ]] || fail "maglev(251): sport $sp went to ${m251[$sp]} and $b"
	done
done
ok "maglev_table_size: refused on reload, applied at restart (tables rebuilt, nodes agree)"
echo PASS
