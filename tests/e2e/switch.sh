#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Switching the load-balancing mode live, on a three-node namespace cluster:
#
#   snat -> dsr -> hybrid -> snat -> dsr (ipip) -> hybrid (ipip) -> snat
#
# one SIGHUP per node and step, node after node (for a moment the nodes run
# different modes, as in a rolling change).  Long-lived TCP echo streams,
# started under several of the modes through every node and to backends on
# every node, run across all the switches: each must complete with every
# byte echoed intact and no reset (peerc stream verifies the echo).  After
# each step, new connections must use the new mode, which the backend's view
# of the source shows: the node's address for SNAT, the client's for DSR;
# hybrid: TCP by DSR, UDP by SNAT.  No daemon restarts, no conntrack reset.
#
# Usage: switch.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: switch.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"

ok() { echo "ok - $*"; }
N1=$(cluster_node_ip 1)

cluster_trap
cluster_up 3
for i in 1 2 3; do
	cluster_start_peerd "$i" 1 "web-$i"
done

SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service web]
type = nodeport
port = http tcp 80 nodeport=30080 target=8080
backend = 10.244.1.2 node=node1
backend = 10.244.2.2 node=node2
backend = 10.244.3.2 node=node3

[service probe]
type = nodeport
port = http tcp 80 nodeport=30090 target=8080
port = dns udp 53 nodeport=30091 target=8081
backend = 10.244.2.2 node=node2
backend = 10.244.3.2 node=node3
INI

configure() { # MODE DISPATCH
	for i in 1 2 3; do
		bpflb_config "$i" "$1" "$SVC" "$(printf '[lb]\ndsr_dispatch = %s' "$2")"
	done
}

peer_ip() { awk '{split($2,a,":"); print a[1]}'; }

# New connections through node 1 (backends on nodes 2 and 3) show the mode.
# A flow keeps the mode it started in, and a UDP flow lives on in conntrack
# after its answer: a new flow from a source port an earlier phase used would
# be that older flow.  So each phase takes source ports of its own, below the
# kernel's ephemeral range, which the streams' ports come from.
SPORT=20000
expect_mode() { # MODE
	local mode="$1" tcp_src udp_src out line
	case $mode in
	snat) tcp_src=$N1 udp_src=$N1 ;;
	dsr) tcp_src=$CLIENT_IP udp_src=$CLIENT_IP ;;
	hybrid) tcp_src=$CLIENT_IP udp_src=$N1 ;;
	esac
	out=$(peerc_in "$CLIENT_NS" tcp "$N1" 30090 --count 6 --sport "$SPORT" --sport-step 1) ||
		fail "[$mode] TCP via node 1: $out"
	while read -r line; do
		[[ $(peer_ip <<<"$line") == "$tcp_src" ]] || fail "[$mode] a new TCP connection: backend saw $line, expected $tcp_src"
	done <<<"$out"
	out=$(peerc_in "$CLIENT_NS" udp "$N1" 30091 --count 6 --sport $((SPORT + 6)) --sport-step 1) ||
		fail "[$mode] UDP via node 1: $out"
	SPORT=$((SPORT + 12))
	while read -r line; do
		[[ $(peer_ip <<<"$line") == "$udp_src" ]] || fail "[$mode] a new UDP flow: backend saw $line, expected $udp_src"
	done <<<"$out"
}

# Streams: about 9 s each, 1000-byte chunks every 10 ms, seeded data.
STREAMS=()
start_streams() { # TAG
	local tag="$1" i k f
	for i in 1 2 3; do
		for k in 1 2; do
			f="$CLUSTER_LOGDIR/stream-$tag-n$i-$k.out"
			cluster_bg "$CLIENT_NS" "$f" "$PEERC" stream "$(cluster_node_ip "$i")" 30080 \
				--bytes 800000 --chunk 1000 --interval-ms 10 --seed $((RANDOM)) --timeout 5000
			STREAMS+=("$CLUSTER_BG_PID:$f")
		done
	done
}

step() { # MODE DISPATCH
	local mode="$1" d="$2" i
	configure "$mode" "$d"
	for i in 1 2 3; do
		bpflb_reload "$i" || fail "switch to $mode/$d refused on node $i"
		[[ $(grep "reload done" "$(bpflb_log "$i")" | tail -n 1) == *"mode $mode;"* ]] ||
			fail "node $i did not switch to $mode"
	done
	expect_mode "$mode"
	ok "switched every node to $mode (dispatch $d); new flows use $mode"
}

configure snat option
for i in 1 2 3; do
	bpflb_start "$i"
done
expect_mode snat
ok "bpflbd runs in SNAT mode on 3 nodes"
start_streams snat
sleep 0.5

step dsr option
start_streams dsr
sleep 0.5
step hybrid option
start_streams hybrid
sleep 0.5
step snat option
sleep 0.3
step dsr ipip
start_streams dsr-ipip
sleep 0.5
step hybrid ipip
sleep 0.3
step snat ipip

# Every stream ends with every byte back, whatever mode it started in.
n=0
for s in "${STREAMS[@]}"; do
	pid=${s%%:*}
	f=${s#*:}
	wait "$pid" || fail "stream $(basename "$f") failed: $(cat "$f")"
	grep -q "^OK bytes=800000" "$f" || fail "stream $(basename "$f"): $(cat "$f")"
	n=$((n + 1))
done
ok "$n streams started under snat, dsr, hybrid and dsr/ipip survived 6 mode switches intact"

# The streams went to backends on every node, and through every node.
for b in web-1 web-2 web-3; do
	grep -qh "^$b " "$CLUSTER_LOGDIR"/stream-*.out ||
		fail "no stream was served by $b: $(head -qn1 "$CLUSTER_LOGDIR"/stream-*.out | sort | uniq -c)"
done
ok "streams were served by backends on all 3 nodes"
echo PASS
