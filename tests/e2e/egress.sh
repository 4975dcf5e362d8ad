#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Egress gateway end to end on a three-node namespace cluster.  The "external"
# server (ext, 10.99.0.200, peerd) has no route to the pod CIDRs: a pod reaches
# it with a working connection only through the egress gateway, whose SNAT
# gives the traffic an address ext can answer.
#
#   node1  workloads: pod 1/1 10.244.1.2 (app=web, selected), pod 1/2 10.244.1.3
#          (app=db, not selected)
#   node2  gateway of the basic policy (egress IP 10.99.0.50, configured by the
#          test) and first candidate of the virtual IP 10.99.0.60; pod 2/1
#          10.244.2.2 (app=web: selected, on the gateway itself)
#   node3  second candidate of the virtual IP; pod 3/1 runs peerd (cluster traffic)
#
# Non-selected pods get no special treatment: their packets leave their node
# with the pod address (nothing masquerades them here), which ext sees in its
# peerd log but cannot answer.  That is what "untouched" looks like in this
# cluster; a real node would masquerade them.
#
# A capture on ext runs for the whole test and must never see a selected pod's
# address as source towards ext: not while the gateway works, not while it is
# unhealthy, not while it fails over, not when there is none.
#
# Usage: egress.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: egress.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"
command -v tcpdump >/dev/null || fail "tcpdump is needed"
command -v bpftool >/dev/null || BPFTOOL=/usr/sbin/bpftool
BPFTOOL=${BPFTOOL:-bpftool}

ok() { echo "ok - $*"; }
now_ms() {
	local t=$EPOCHREALTIME
	echo $((10#${t%.*} * 1000 + 10#${t#*.} / 1000))
}

EGRESS_IP=10.99.0.50 # basic mode: configured on node2 by the test
VIP=10.99.0.60       # vip mode: the daemons put it on node2 or node3
EXCL_IP=10.99.0.201  # a second address of ext, excluded from the policies
POD_SEL=10.244.1.2   # pod 1/1, selected
POD_GW=10.244.2.2    # pod 2/1, selected, on the gateway node
POD_OTHER=10.244.1.3 # pod 1/2, not selected
DROP_NO_GATEWAY=9    # BPFLB_DROP_NO_GATEWAY

cluster_trap
cluster_up 3
cluster_add_pod 1 2
cluster_start_peerd 3 1 pod-3-1

# ext: the server, a second (excluded) address, and the leak capture.
in_ns "$EXT_NS" ip addr add "$EXCL_IP/24" dev eth0
EXT_LOG="$CLUSTER_LOGDIR/peerd-ext.log"
cluster_bg "$EXT_NS" "$EXT_LOG" "$PEERD" --name ext --verbose --tcp 8080 --udp 8081
wait_for "grep -q '^READY' '$EXT_LOG'" 5 0.05 || fail "peerd on ext did not start"
LEAK_LOG="$CLUSTER_LOGDIR/leak.txt"
cluster_bg "$EXT_NS" "$LEAK_LOG" tcpdump -i eth0 -n -l -p \
	"ip and dst host $EXT_IP and (src host $POD_SEL or src host $POD_GW)"
wait_for "grep -q 'listening on' '$LEAK_LOG'" 5 0.05 || fail "tcpdump on ext did not start"
no_leak() {
	local n
	n=$(grep -c ' IP ' "$LEAK_LOG" || true)
	((n == 0)) || fail "$1: ext saw $n packet(s) with a selected pod's address: $(grep ' IP ' "$LEAK_LOG" | head -3)"
}

# --- counters, read from the pinned maps --------------------------------------

# Sum over the CPUs of the u64 at byte OFFSET of a per-CPU array entry:
# percpu_u64 NODE MAP KEY [OFFSET]
percpu_u64() {
	"$BPFTOOL" -j map lookup pinned "$(bpflb_pin "$1")/$2" key "$3" 0 0 0 | python3 -c '
import json, sys
off = int(sys.argv[1])
d = json.load(sys.stdin)
print(sum(int.from_bytes(bytes(int(b, 16) for b in e["value"][off:off + 8]), "little")
          for e in d["values"]))' "${4:-0}"
}
drops() { percpu_u64 "$1" bpflb_drops "$DROP_NO_GATEWAY"; }

# --- configuration -------------------------------------------------------------

LEASES="$CLUSTER_STATE/leases"
mkdir -p "$LEASES"
SVC="$CLUSTER_STATE/services.ini"
: >"$SVC"
export BPFLB_DAEMON_EXTRA=$'features = egress\ntick_interval = 1\nmetrics_listen = 127.0.0.1:9962'
declare -a BPFLB_NODE_LABELS=([2]="egress=yes" [3]="egress=yes")

# egress_ini MODE(basic|vip)
egress_ini() {
	cat <<INI
[egress]
lease_dir = $LEASES
lease_duration = 3
cluster_cidrs = 10.244.0.0/16

[endpoint pod-1-1]
address = $POD_SEL
labels = app=web
node = node1

[endpoint pod-1-2]
address = $POD_OTHER
labels = app=db
node = node1

[endpoint pod-2-1]
address = $POD_GW
labels = app=web
node = node2

INI
	if [[ $1 == basic ]]; then
		cat <<INI
[egress-policy web-basic]
mode = basic
endpoint_selector = app=web
destination_cidrs = 0.0.0.0/0
excluded_cidrs = $EXCL_IP/32
gateway_nodes = node2
egress_ip = $EGRESS_IP
INI
	else
		cat <<INI
[egress-policy web-vip]
mode = vip
endpoint_selector = app=web
destination_cidrs = 0.0.0.0/0
excluded_cidrs = $EXCL_IP/32
gateway_selector = egress=yes
egress_ip = $VIP
INI
	fi
}

# configure_all LBMODE EGRESSMODE
configure_all() {
	local i
	for i in 1 2 3; do
		bpflb_config "$i" "$1" "$SVC" "$(egress_ini "$2")"
	done
}

# --- traffic --------------------------------------------------------------------

# The source address ext saw, from a peerd answer line "ext IP:PORT IP:PORT".
seen_by_ext() { awk '$1 == "ext" {split($2, a, ":"); print a[1]}'; }

# expect_egress NS SOURCE [PEERC-ARGS]: TCP and UDP from NS reach ext as SOURCE.
expect_egress() {
	local ns="$1" want="$2" out src
	shift 2
	out=$(peerc_in "$ns" tcp "$EXT_IP" 8080 --count 3 "$@") || fail "TCP $ns -> ext: $out"
	src=$(seen_by_ext <<<"$out" | sort -u)
	[[ $src == "$want" ]] || fail "TCP $ns -> ext: ext saw $src, expected $want"
	out=$(peerc_in "$ns" udp "$EXT_IP" 8081 --count 3 "$@") || fail "UDP $ns -> ext: $out"
	src=$(seen_by_ext <<<"$out" | sort -u)
	[[ $src == "$want" ]] || fail "UDP $ns -> ext: ext saw $src, expected $want"
}

# works_now NS SOURCE: one TCP connection through the gateway with that source
works_now() {
	local out
	out=$(peerc_in "$1" tcp "$EXT_IP" 8080 --timeout 500) || return 1
	[[ $(seen_by_ext <<<"$out") == "$2" ]]
}

# A datagram that ext receives but cannot answer: check ext's log for it.
# sent_direct NS DST SPORT SOURCE
sent_direct() {
	peerc_in "$1" udp "$2" 8081 --sport "$3" --timeout 300 >/dev/null 2>&1 || true
	wait_for "grep -q 'udp $4:$3 -> $2:8081' '$EXT_LOG'" 3 0.05
}

# Flow events through bpflbctl observe: observe_has NODE PY-EXPR
# (a Python expression over one event e) -> true when a recent event matches.
CTL="$BPFLB_BUILD/tools/bpflbctl/bpflbctl"
observe_has() {
	"$CTL" -c "$(bpflb_ini "$1")" -o json observe --last 1000 2>/dev/null | bpflb_flat_flows | python3 -c '
import json, sys
want = sys.argv[1]
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    try:
        d = json.loads(line)
    except ValueError:
        continue
    evs = d if isinstance(d, list) else d.get("events", [d.get("event", d)])
    for e in evs if isinstance(evs, list) else [evs]:
        if isinstance(e, dict) and eval(want):
            sys.exit(0)
sys.exit(1)' "$2"
}

N1P1=$(cluster_pod_ns 1 1)
N1P2=$(cluster_pod_ns 1 2)
N2P1=$(cluster_pod_ns 2 1)

# === 0. configuration errors name file:line =========================================

check_config() { # EXTRA_INI -> the error line of bpflbd --check-config
	bpflb_config 1 snat "$SVC" "$1"
	in_ns "$(cluster_node_ns 1)" "$BPFLBD" --config "$(bpflb_ini 1)" --check-config 2>&1 | grep 'node1.ini:' || true
}
pol='[egress-policy p]
endpoint_selector = app=web
destination_cidrs = 0.0.0.0/0'
e=$(check_config "$pol
mode = vip
gateway_nodes = node2
egress_ip = $VIP")
[[ $e == *"[egress-policy p] mode = vip: vip mode needs a lease store"* ]] || fail "vip without lease_dir: $e"
e=$(check_config "$pol
gateway_nodes = node2 node7
egress_ip = $EGRESS_IP")
[[ $e == *"gateway_nodes = node2 node7: no node is named node7"* ]] || fail "unknown gateway: $e"
e=$(check_config "[egress]
lease_dir = $LEASES
lease_duration = 2

$pol
mode = vip
gateway_nodes = node2
egress_ip = $VIP")
[[ $e == *"[egress] lease_duration = 2: 2 s is not more than twice [daemon] tick_interval"* ]] ||
	fail "short lease: $e"
ok "configuration errors name file:line: vip without lease_dir, unknown gateway node, lease too short"

# === 1. basic mode =================================================================

in_ns "$(cluster_node_ns 2)" ip addr add "$EGRESS_IP/32" dev eth0
configure_all snat basic
for i in 1 2 3; do bpflb_start "$i"; done
wait_for "grep -q 'egress IP $EGRESS_IP is configured on eth0: gateway healthy' '$(bpflb_log 2)'" 5 ||
	fail "node2 did not find its egress IP"
ok "basic mode: 3 nodes run egress; node2 checked its egress IP $EGRESS_IP"

expect_egress "$N1P1" "$EGRESS_IP"
ok "selected pod on node1: TCP and UDP reach ext from $EGRESS_IP (tunnel to node2, SNAT there)"
expect_egress "$N2P1" "$EGRESS_IP"
ok "selected pod on the gateway node itself: SNAT to $EGRESS_IP without a tunnel"

out=$(peerc_in "$N1P1" stream "$EXT_IP" 8080 --bytes 3000000 --chunk 16384 --interval-ms 0) ||
	fail "stream through the gateway: $out"
[[ $out == *"OK bytes=3000000"* ]] || fail "stream through the gateway: $out"
out=$(peerc_in "$N1P1" ping "$EXT_IP" --count 2) || fail "ping through the gateway: $out"
ok "3 MB TCP stream echoed intact (tunnel MTU, MSS clamp) and ICMP echo through the gateway"

sent_direct "$N1P2" "$EXT_IP" 31111 "$POD_OTHER" || fail "pod not selected: ext did not get its datagram from $POD_OTHER"
sent_direct "$N1P1" "$EXCL_IP" 31112 "$POD_SEL" || fail "excluded CIDR: ext did not get the datagram from $POD_SEL"
out=$(peerc_in "$N1P1" tcp "$(cluster_pod_ip 3 1)" 8080) || fail "pod to pod: $out"
[[ $out == "pod-3-1 $POD_SEL:"* ]] || fail "pod to pod through the cluster was translated: $out"
ok "untouched: a pod not selected and an excluded CIDR go out directly; pod-to-pod keeps the pod address"

# struct egress_stats: steered_packets at 0, snat_packets at 16, reply_packets at 32.
steered=$(percpu_u64 1 egress_stats 0 0)
snat=$(percpu_u64 2 egress_stats 0 16)
replies=$(percpu_u64 2 egress_stats 0 32)
((steered > 0 && snat >= steered && replies > 0)) ||
	fail "policy counters: node1 steered $steered, node2 translated $snat and $replies replies"
no_leak "basic mode"
m=$(bpflb_metric 2 'bpflb_egress_packets_total{policy="web-basic",action="snat"}')
((${m:-0} >= snat)) || fail "metric bpflb_egress_packets_total{action=snat} on node2 is '${m}', counters say $snat"
m=$(bpflb_metric 1 'bpflb_egress_packets_total{policy="web-basic",action="steered"}')
((${m:-0} >= steered)) || fail "metric bpflb_egress_packets_total{action=steered} on node1 is '${m}'"
ok "counters: node1 steered $steered packets; node2 translated $snat and $replies replies (also in the metrics)"
[[ -x $CTL ]] || fail "no bpflbctl at $CTL (build first)"
observe_has 2 "e.get('stage') == 3 and e.get('verdict') == 'FORWARDED' and str(e.get('xlate', '')).startswith('$EGRESS_IP:') and str(e.get('src', '')).startswith('$POD_SEL:')" ||
	fail "node2 reported no translation of $POD_SEL to $EGRESS_IP (bpflbctl observe)"
observe_has 1 "e.get('stage') == 10 and str(e.get('xlate')).split(':')[0] == '$(cluster_node_ip 2)'" ||
	{ "$CTL" -c "$(bpflb_ini 1)" -o json observe --last 5; fail "node1 reported no flow steered to node2 (bpflbctl observe)"; }
ok "flow events: node1 reports flows steered to node2, node2 their translation to $EGRESS_IP"
"$CTL" -c "$(bpflb_ini 2)" -o json egress list | python3 -c '
import json, sys
d = json.load(sys.stdin)
p = [p for p in d["policies"] if p["egress_ip"] == sys.argv[1]]
assert p and p[0]["state"] and p[0]["gateway_nodes"], d' "$EGRESS_IP" ||
	fail "bpflbctl egress list does not show the policy of $EGRESS_IP"
ok "bpflbctl egress list shows the policy, its gateways and state"

# The same in every load-balancing mode (a reload switches it).
for mode in none dsr hybrid snat; do
	[[ -f $BPFLB_PLUGINS/$mode.so || $mode == none ]] || fail "no $mode plugin in $BPFLB_PLUGINS"
	configure_all "$mode" basic
	for i in 1 2 3; do bpflb_reload "$i" || fail "reload to mode $mode on node $i refused"; done
	expect_egress "$N1P1" "$EGRESS_IP"
	ok "mode $mode: the selected pod still leaves from $EGRESS_IP"
done

# === 2. basic mode, unhealthy gateway ==================================================

d0=$(drops 2)
in_ns "$(cluster_node_ns 2)" ip addr del "$EGRESS_IP/32" dev eth0
wait_for "grep -q 'egress IP $EGRESS_IP is not configured on eth0' '$(bpflb_log 2)'" 5 ||
	fail "node2 did not notice its egress IP is gone"
if peerc_in "$N1P1" tcp "$EXT_IP" 8080 --timeout 500 >/dev/null; then
	fail "traffic went out while the gateway's egress IP was missing"
fi
d1=$(drops 2)
((d1 > d0)) || fail "node2 counted no no_gateway drop ($d0 -> $d1)"
no_leak "unhealthy gateway"
in_ns "$(cluster_node_ns 2)" ip addr add "$EGRESS_IP/32" dev eth0
wait_for "works_now '$N1P1' '$EGRESS_IP'" 5 0.2 || fail "traffic did not resume after the egress IP came back"
ok "basic mode: egress IP removed -> policy unhealthy, $((d1 - d0)) packet(s) dropped (no_gateway), none leaked; back -> traffic resumes"

# === 3. virtual-IP mode: placement and failover ========================================

in_ns "$(cluster_node_ns 2)" ip addr del "$EGRESS_IP/32" dev eth0
configure_all snat vip
for i in 1 2 3; do bpflb_reload "$i" || fail "reload to vip mode on node $i refused"; done
has_vip() { ip -n "$(cluster_node_ns "$1")" -br addr show dev eth0 | grep >/dev/null -w "$VIP/32"; }
holder() { awk '$1 == "holder" {print $2}' "$LEASES/egress-$VIP.lease" 2>/dev/null; }
wait_for "has_vip 2" 5 || fail "node2 (first candidate) did not take the virtual IP"
[[ $(holder) == node2 ]] || fail "lease holder is '$(holder)', expected node2"
has_vip 3 && fail "the virtual IP is on node3 too"
wait_for "works_now '$N1P1' '$VIP'" 5 0.2 || fail "traffic does not leave from the virtual IP"
expect_egress "$N1P1" "$VIP"
ok "vip mode: node2 holds $VIP (lease in $LEASES), node3 does not; the pod leaves from $VIP"

# Graceful stop of the holder: it hands the lease over at once.
t0=$(now_ms)
bpflb_stop 2 TERM
wait_for "has_vip 3" 5 0.05 || fail "node3 did not take the virtual IP over after node2's daemon stopped"
has_vip 2 && fail "node2 kept the virtual IP after its daemon stopped"
wait_for "works_now '$N1P1' '$VIP'" 5 0.2 || fail "traffic did not resume through node3"
t1=$(now_ms)
[[ $(holder) == node3 ]] || fail "lease holder is '$(holder)', expected node3"
mac=$(ip -n "$EXT_NS" neigh show "$VIP" | awk '{print $5}')
[[ $mac == 02:00:0a:63:00:03 ]] || fail "ext still sends $VIP to $mac, not node3 (gratuitous ARP)"
ok "holder's daemon stopped: node3 took $VIP over (ARP updated); traffic resumed after $((t1 - t0)) ms (bound: (rank+2) ticks = 3 s from the release, + ARP and polling)"

# node2 comes back: no preemption, the holder keeps the address.
n=$(grep -c "virtual IP $VIP: gateway is node3" "$(bpflb_log 2)" || true)
bpflb_start 2
wait_for "[[ \$(grep -c 'virtual IP $VIP: gateway is node3' '$(bpflb_log 2)') -gt $n ]]" 5 ||
	fail "node2 did not learn that node3 holds the virtual IP"
has_vip 3 && ! has_vip 2 || fail "the virtual IP moved back when node2 returned"
ok "node2 back: the virtual IP stays on node3 (no preemption)"

# node3 disappears (cable pulled, daemon dead): its lease expires, node2 takes over.
t0=$(now_ms)
kill -9 "$(bpflb_pid 3)"
ip -n "$FABRIC_NS" link set n3 down
wait_for "has_vip 2" 10 0.1 || fail "node2 did not take the virtual IP over after node3 disappeared"
wait_for "works_now '$N1P1' '$VIP'" 5 0.2 || fail "traffic did not resume through node2"
t1=$(now_ms)
ok "holder node3 gone: its lease expired, node2 took $VIP over; traffic resumed after $((t1 - t0)) ms (bound: lease 3 s + (rank+2) ticks = 5 s, + ARP and polling)"

# node3 returns with a fresh daemon: it removes the address it no longer holds.
ip -n "$FABRIC_NS" link set n3 up
rm -f "$CLUSTER_STATE/bpflbd-node3.pid"
bpflb_start 3
wait_for "! has_vip 3" 5 0.1 || fail "node3 kept a virtual IP it does not hold"
wait_for "works_now '$N1P1' '$VIP'" 5 0.2 || fail "traffic broke when node3 came back"
no_leak "failover"
ok "node3 back: it dropped the stale virtual IP; node2 keeps serving"

# === 4. no gateway at all ==============================================================

n=$(grep -c "virtual IP $VIP has no gateway now" "$(bpflb_log 1)" || true)
bpflb_stop 2 TERM
bpflb_stop 3 TERM
wait_for "[[ \$(grep -c 'virtual IP $VIP has no gateway now' '$(bpflb_log 1)') -gt $n ]]" 5 ||
	fail "node1 did not notice that no gateway is left"
d0=$(drops 1)
if peerc_in "$N1P1" tcp "$EXT_IP" 8080 --timeout 500 >/dev/null; then
	fail "traffic went out without any gateway"
fi
peerc_in "$N1P1" udp "$EXT_IP" 8081 --timeout 300 >/dev/null || true
d1=$(drops 1)
((d1 >= d0 + 2)) || fail "node1 counted too few no_gateway drops ($d0 -> $d1)"
sleep 0.2
no_leak "no gateway"
if [[ -x $CTL ]]; then
	observe_has 1 "e.get('verdict') == 'DROPPED' and e.get('reason') == 'no_gateway' and e.get('stage') == 10" ||
		fail "node1 reported no no_gateway drop (bpflbctl observe)"
fi
ok "no gateway: node1 dropped $((d1 - d0)) packet(s) as no_gateway (counted, reported); ext saw none from a selected pod"
echo PASS
