#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Stale DSR state never answers a connection that did not come by DSR (issue
# #13 item 18).  Two nodes: the client talks to node 1's NodePort, the only
# backend is a pod on node 2, so node 2 keeps the reply-side half of each
# flow.  For each dispatch method (the IPv4 option, then IP-in-IP after a
# reload):
#  - a burst of N DSR connections from client ports S..S+N-1 (TCP, then UDP
#    datagrams), all answered from the NodePort with the client's address seen;
#  - at once, N connections from the same client ports straight to the pod's
#    address (no service): every one succeeds, the answers come from the pod,
#    and the client sends no reset.  Before the fix, node 2 rewrote the pod's
#    SYN-ACK (and UDP answers) to come from node 1's NodePort, the client
#    reset them and the connections failed until conntrack GC.
#
# Usage: dsr_direct.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: dsr_direct.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"

ok() { echo "ok - $*"; }
N=40
N1=$(cluster_node_ip 1)

cluster_trap
cluster_up 2
POD=$(cluster_pod_ip 2 1)
cluster_start_peerd 2 1 web-2
# The client reaches node 2's pods directly, as a client inside the cluster would.
ip -n "$CLIENT_NS" route add "$(cluster_pod_cidr 2)" via "$(cluster_node_ip 2)" dev eth0

SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service web]
type = nodeport
port = http tcp 80 nodeport=30080 target=8080
port = dns udp 53 nodeport=30053 target=8081
backend = $POD node=node2
INI

configure() { # DISPATCH
	for i in 1 2; do
		bpflb_config "$i" dsr "$SVC" "$(printf '[lb]\ndsr_dispatch = %s' "$1")"
	done
}

# TCP resets the client sent so far
client_rsts() {
	in_ns "$CLIENT_NS" awk '$1 == "Tcp:" && !h { for (i = 2; i <= NF; i++) col[$i] = i; h = 1; next }
		$1 == "Tcp:" { print $col["OutRsts"] }' /proc/net/snmp
}

# every one of N answers came from web-2 and saw the client's address
expect_all() { # WHAT OUT
	local what="$1" out="$2" n
	n=$(grep -c "^web-2 $CLIENT_IP:" <<<"$out" || true)
	((n == N)) || fail "$what: $n of $N answered as expected:
$(grep -v "^web-2 $CLIENT_IP:" <<<"$out" | sort | uniq -c | head)"
}

checks() { # DISPATCH FIRST_PORT
	local d="$1" p="$2" out rst0 rst1

	out=$(peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count $N --sport "$p" --sport-step 1) ||
		fail "[$d] TCP burst via node 1: $out"
	expect_all "[$d] TCP via NodePort" "$out"
	out=$(peerc_in "$CLIENT_NS" udp "$N1" 30053 --count $N --sport "$p" --sport-step 1) ||
		fail "[$d] UDP burst via node 1: $out"
	expect_all "[$d] UDP via NodePort" "$out"
	ok "[$d] $N TCP connections and $N UDP datagrams by DSR from ports $p..$((p + N - 1))"

	rst0=$(client_rsts)
	out=$(peerc_in "$CLIENT_NS" tcp "$POD" 8080 --count $N --sport "$p" --sport-step 1 \
		--timeout 3000) || true
	expect_all "[$d] TCP straight to the pod from the same ports" "$out"
	rst1=$(client_rsts)
	((rst1 == rst0)) || fail "[$d] the client sent $((rst1 - rst0)) TCP resets (answers from the wrong address)"
	ok "[$d] $N TCP connections straight to the pod from the same ports: all answered, 0 resets"

	out=$(peerc_in "$CLIENT_NS" udp "$POD" 8081 --count $N --sport "$p" --sport-step 1 \
		--timeout 1000) || true
	expect_all "[$d] UDP straight to the pod from the same ports" "$out"
	ok "[$d] $N UDP datagrams straight to the pod from the same ports: all answered by the pod"
}

configure option
for i in 1 2; do
	bpflb_start "$i"
done
checks option 42000

configure ipip
for i in 1 2; do
	bpflb_reload "$i" || fail "reload with dsr_dispatch = ipip refused on node $i"
done
checks ipip 43000
echo PASS
