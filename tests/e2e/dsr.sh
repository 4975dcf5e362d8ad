#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# DSR mode end to end on a three-node namespace cluster, with both dispatch
# methods (the IPv4 option, then IP-in-IP after a reload of every node): the
# client talks to node 1, the backends run on nodes 2 and 3 (pods, and a
# host-network endpoint on node 3).  Checked for each method:
#  - the backend sees the client's address (TCP and UDP, NodePort and LB IP);
#  - the client sees its answers come from the address it connected to (TCP
#    connect, and peerc's connected UDP socket, accept nothing else);
#  - the dispatch is the configured one on the wire of the backend's node;
#  - the answers do not cross node 1: a 1 MiB echo stream moves about 1 MiB
#    through node 1's eth0 each way (SNAT would move twice that);
#  - host-network backends work; one listening on another address of its
#    node than the InternalIP is SNATed under option dispatch (the daemon logs
#    why) and reached by DSR under IP-in-IP;
#  - externalTrafficPolicy=Local and a service with forwarding = snat behave
#    as in SNAT mode;
#  - no packet was dropped for its size (the MSS clamp keeps TCP within the
#    MTU under IP-in-IP).
#
# Usage: dsr.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: dsr.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"

ok() { echo "ok - $*"; }
LBIP=10.99.1.10
N1=$(cluster_node_ip 1)
N3=$(cluster_node_ip 3)

cluster_trap
cluster_up 3
command -v tcpdump >/dev/null || fail "tcpdump is needed to look at the dispatch on the wire"
for i in 2 3; do
	cluster_start_peerd "$i" 1 "web-$i"
done
cluster_add_pod 1 2
cluster_start_peerd 1 2 local-1
cluster_add_pod 3 2 hostnet
cluster_start_peerd 3 2 host-3 --tcp 9080 --udp 9081
# Node 2 has a second address, routed to it; a host-network backend listens there.
EXT2=10.99.2.2
ip -n "$(cluster_node_ns 2)" addr add "$EXT2/32" dev lo
for i in 1 3; do
	ip -n "$(cluster_node_ns "$i")" route add "$EXT2/32" via "$(cluster_node_ip 2)" dev eth0
done
# shellcheck disable=SC2034 # read by bpflb_config
declare -a BPFLB_NODE_EXT=([2]="$EXT2")
cluster_add_pod 2 2 hostnet
cluster_start_peerd 2 2 host-2 --tcp 9180 --bind "$EXT2"

SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service web]
type = loadbalancer
port = http tcp 80 nodeport=30080 target=8080
port = dns udp 53 nodeport=30053 target=8081
lb_ips = $LBIP
backend = 10.244.2.2 node=node2
backend = 10.244.3.2 node=node3

[service host]
type = nodeport
port = http tcp 80 nodeport=30180 target=9080
port = dns udp 53 nodeport=30153 target=9081
backend = $N3 node=node3 hostnet=yes

[service host-ext]
type = nodeport
port = http tcp 80 nodeport=30280 target=9180
backend = $EXT2 node=node2 hostnet=yes

[service web-local]
type = nodeport
port = http tcp 80 nodeport=30082 target=8080
external_traffic_policy = local
backend = 10.244.1.3 node=node1
backend = 10.244.2.2 node=node2

[service web-snat]
type = nodeport
forwarding = snat
port = http tcp 80 nodeport=30083 target=8080
backend = 10.244.2.2 node=node2
backend = 10.244.3.2 node=node3
INI

configure() { # DISPATCH
	for i in 1 2 3; do
		bpflb_config "$i" dsr "$SVC" "$(printf '[lb]\ndsr_dispatch = %s' "$1")"
	done
}

who() { awk '{print $1}'; }
peer_ip() { awk '{split($2,a,":"); print a[1]}'; }

# every answer came from one of BACKENDS (a regex) and saw SRC
expect_src() { # WHAT OUT BACKENDS SRC
	local what="$1" out="$2" bes="$3" src="$4" line
	while read -r line; do
		[[ $(who <<<"$line") =~ ^($bes)$ ]] || fail "$what: unexpected answer '$line'"
		[[ $(peer_ip <<<"$line") == "$src" ]] || fail "$what: backend saw $(peer_ip <<<"$line"), expected $src ($line)"
	done <<<"$out"
}

# bytes through node 1's eth0: "RX TX"
n1_bytes() {
	ip -n "$(cluster_node_ns 1)" -j -s link show dev eth0 |
		python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["stats64"]; print(s["rx"]["bytes"], s["tx"]["bytes"])'
}

# packets node 1 dropped as too big for the MTU (all CPUs)
n1_mtu_drops() {
	in_ns "$(cluster_node_ns 1)" bpftool -j map lookup pinned "$(bpflb_pin 1)/bpflb_drops" key 10 0 0 0 |
		python3 -c 'import json,sys
d=json.load(sys.stdin)
print(sum(int(v["value"]) if not isinstance(v["value"], list) else int.from_bytes(bytes(int(b, 16) for b in v["value"]), "little") for v in d["values"]))'
}

# A packet matching FILTER shows up on node NODE's eth0 while CMD runs.
on_wire() { # NODE FILTER CMD...
	local node="$1" filter="$2" f pid
	shift 2
	f="$CLUSTER_LOGDIR/tcpdump.$node.$RANDOM"
	cluster_bg "$(cluster_node_ns "$node")" "$f" timeout 5 tcpdump -i eth0 -n -l -c 1 "$filter"
	pid=$CLUSTER_BG_PID
	wait_for "grep -q 'listening on' '$f'" 3 0.05 || fail "tcpdump on node $node did not start"
	"$@" >/dev/null 2>&1 || true
	wait "$pid" 2>/dev/null || true
	grep -q " IP " "$f"
}

checks() { # DISPATCH
	local d="$1" out rx tx after_rx after_tx bytes=$((1 << 20)) drops0

	# 1. TCP and UDP through node 1: client address kept, answers from the frontend.
	out=$(peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count 20) || fail "[$d] TCP NodePort via node 1: $out"
	expect_src "[$d] TCP NodePort" "$out" "web-2|web-3" "$CLIENT_IP"
	for b in web-2 web-3; do
		grep -q "^$b " <<<"$out" || fail "[$d] TCP NodePort: $b never answered in 20 connections"
	done
	out=$(peerc_in "$CLIENT_NS" udp "$N1" 30053 --count 10) || fail "[$d] UDP NodePort via node 1: $out"
	expect_src "[$d] UDP NodePort" "$out" "web-2|web-3" "$CLIENT_IP"
	cluster_route_lbip "$LBIP" 1
	out=$(peerc_in "$CLIENT_NS" tcp "$LBIP" 80 --count 6) || fail "[$d] TCP LB IP via node 1: $out"
	expect_src "[$d] TCP LB IP" "$out" "web-2|web-3" "$CLIENT_IP"
	out=$(peerc_in "$CLIENT_NS" udp "$LBIP" 53 --count 6) || fail "[$d] UDP LB IP via node 1: $out"
	expect_src "[$d] UDP LB IP" "$out" "web-2|web-3" "$CLIENT_IP"
	ok "[$d] TCP and UDP, NodePort and LB IP: backends see the client, the client sees the frontend"

	# 2. The dispatch on the wire of a backend's node.
	if [[ $d == ipip ]]; then
		on_wire 2 "ip proto 4 and src $N1" peerc_in "$CLIENT_NS" udp "$N1" 30053 --count 16 ||
			fail "[$d] no IP-in-IP packet from node 1 on node 2's wire"
		on_wire 3 "ip proto 4 and src $N1" peerc_in "$CLIENT_NS" udp "$N1" 30053 --count 16 ||
			fail "[$d] no IP-in-IP packet from node 1 on node 3's wire"
	else
		on_wire 2 "src $CLIENT_IP and ip[0] & 0xf != 5 and ip[20] == 0x9e" \
			peerc_in "$CLIENT_NS" udp "$N1" 30053 --count 16 ||
			fail "[$d] no packet with the DSR option on node 2's wire"
	fi
	ok "[$d] the backends' nodes receive the dispatch by $d"

	# 3. Host-network backend on node 3.
	out=$(peerc_in "$CLIENT_NS" tcp "$N1" 30180 --count 4) || fail "[$d] hostnet TCP via node 1: $out"
	expect_src "[$d] hostnet TCP" "$out" "host-3" "$CLIENT_IP"
	out=$(peerc_in "$CLIENT_NS" udp "$N1" 30153 --count 4) || fail "[$d] hostnet UDP via node 1: $out"
	expect_src "[$d] hostnet UDP" "$out" "host-3" "$CLIENT_IP"
	ok "[$d] host-network backend: reached by DSR, sees the client, answers from the frontend"
	out=$(peerc_in "$CLIENT_NS" tcp "$N1" 30280 --count 3) || fail "[$d] hostnet on $EXT2 via node 1: $out"
	if [[ $d == ipip ]]; then
		expect_src "[$d] hostnet on $EXT2" "$out" "host-2" "$CLIENT_IP"
		ok "[$d] host-network backend on node 2's other address: reached by DSR over IP-in-IP"
	else
		expect_src "[$d] hostnet on $EXT2" "$out" "host-2" "$N1"
		grep -q "backend $EXT2:9180 (hostnet on node2, not its node address): DSR option dispatch cannot reach it; its flows use SNAT" \
			"$(bpflb_log 1)" || fail "node 1 did not log the SNAT fallback of $EXT2:9180"
		ok "[$d] host-network backend on node 2's other address: SNAT instead of DSR, logged by the daemon"
	fi

	# 4. ETP=Local and forwarding = snat are unchanged by the mode.
	out=$(peerc_in "$CLIENT_NS" tcp "$N1" 30082 --count 3) || fail "[$d] ETP=Local via node 1: $out"
	expect_src "[$d] ETP=Local" "$out" "local-1" "$CLIENT_IP"
	out=$(peerc_in "$CLIENT_NS" tcp "$N1" 30083 --count 6) || fail "[$d] forwarding=snat via node 1: $out"
	expect_src "[$d] forwarding=snat" "$out" "web-2|web-3" "$N1"
	ok "[$d] ETP=Local keeps the local backend; forwarding = snat still SNATs"

	# 5. The echo of a 1 MiB stream does not cross node 1.
	drops0=$(n1_mtu_drops)
	read -r rx tx <<<"$(n1_bytes)"
	out=$(peerc_in "$CLIENT_NS" stream "$N1" 30080 --bytes $bytes --chunk 65536 --interval-ms 1 --timeout 5000) ||
		fail "[$d] stream via node 1: $out"
	grep -q "^OK bytes=$bytes" <<<"$out" || fail "[$d] stream: $out"
	read -r after_rx after_tx <<<"$(n1_bytes)"
	rx=$((after_rx - rx))
	tx=$((after_tx - tx))
	((rx >= bytes && tx >= bytes)) || fail "[$d] node 1 moved rx=$rx tx=$tx bytes: the request did not go through it?"
	((rx < bytes * 3 / 2 && tx < bytes * 3 / 2)) ||
		fail "[$d] node 1 moved rx=$rx tx=$tx bytes for a $bytes-byte echo: the answers crossed it"
	[[ $(n1_mtu_drops) == "$drops0" ]] || fail "[$d] node 1 dropped packets for their size during the stream"
	ok "[$d] 1 MiB echo stream: node 1 moved rx=$rx tx=$tx bytes, the echo went around it; MTU drops: $drops0 before, $(n1_mtu_drops) after"
}

configure option
for i in 1 2 3; do
	bpflb_start "$i"
done
grep -q "new flows to backends on other nodes: DSR (DSR dispatch: IPv4 option)" "$(bpflb_log 1)" || fail "node 1 does not log the dispatch method"
ok "bpflbd runs in DSR mode on 3 nodes, dispatch by the IPv4 option"
checks option

configure ipip
for i in 1 2 3; do
	bpflb_reload "$i" || fail "reload with dsr_dispatch = ipip refused on node $i"
done
grep -q "new flows to backends on other nodes: DSR (DSR dispatch: IP-in-IP)" "$(bpflb_log 1)" || fail "node 1 does not log the new dispatch method"
ok "SIGHUP: dispatch switched to IP-in-IP on every node, no restart"
checks ipip
echo PASS
