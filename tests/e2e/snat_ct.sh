#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# SNAT conntrack pairs under loss and churn, with real TCP between namespaces:
# node 1 runs bpflbd in SNAT mode, the only backend is a pod on node 2, and
# two clients (the client and ext namespaces) stream through node 1's NodePort.
#
#  1. One half of an established flow's pair is deleted (bpftool, as an LRU
#     eviction or a half-done flush would): the flow goes on, every byte
#     echoed intact, and the repairs are counted.
#  2. Client A's REV half is lost and client B gets A's SNAT port (the pool
#     has one port): B never receives an answer meant for A.
#  3. Churn: a few thousand short connections from one client through a
#     pool smaller than their count: closed flows' ports come back, none is
#     dropped for want of a port, none is reset.
#
# Usage: snat_ct.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: snat_ct.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"
command -v bpftool >/dev/null || fail "bpftool is needed to delete conntrack halves"

ok() { echo "ok - $*"; }
NODE1=$(cluster_node_ip 1)
BACKEND=10.244.2.2
NP=30080

cluster_trap
cluster_up 2
cluster_start_peerd 2 1 web-2

SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service web]
type = nodeport
port = http tcp 80 nodeport=$NP target=8080
port = dns udp 53 nodeport=30053 target=8081
backend = $BACKEND node=node2
INI
config_node1() { # SNAT_PORTS
	BPFLB_DAEMON_EXTRA="metrics_listen = 127.0.0.1:9962" \
		bpflb_config 1 snat "$SVC" "$(printf '[lb]\nsnat_ports = %s\n' "$1")"
}
metric() { local v; v=$(bpflb_metric 1 "$1"); echo "${v:-0}"; }

# The bpftool key of a conntrack entry: KIND(fwd|rev) SADDR SPORT DADDR DPORT [tcp|udp].
ct_key() {
	python3 -c '
import socket, struct, sys
kind = {"fwd": 1, "rev": 2}[sys.argv[1]]
proto = {"tcp": 6, "udp": 17}[sys.argv[6] if len(sys.argv) > 6 else "tcp"]
k = socket.inet_aton(sys.argv[2]) + socket.inet_aton(sys.argv[4]) + \
    struct.pack("!HH", int(sys.argv[3]), int(sys.argv[5])) + bytes([proto, kind, 0, 0])
print(" ".join(str(b) for b in k))' "$@"
}
ct_del() { # KIND SADDR SPORT DADDR DPORT [PROTO]
	# shellcheck disable=SC2046
	in_ns "$(cluster_node_ns 1)" bpftool map delete pinned "$(bpflb_pin 1)/bpflb_ct" \
		key $(ct_key "$@") || fail "no conntrack $1 half $2:$3 -> $4:$5 to delete"
}
ct_has() { # KIND SADDR SPORT DADDR DPORT [PROTO]
	# shellcheck disable=SC2046
	in_ns "$(cluster_node_ns 1)" bpftool map lookup pinned "$(bpflb_pin 1)/bpflb_ct" \
		key $(ct_key "$@") >/dev/null 2>&1
}

# 1. An established flow loses one half of its pair, then the other.
config_node1 40000-40000
bpflb_start 1
out="$CLUSTER_STATE/a1.out"
peerc_in "$CLIENT_NS" stream "$NODE1" $NP --sport 45000 --bytes 300000 --chunk 1000 \
	--interval-ms 10 --seed 1 >"$out" 2>&1 &
apid=$!
wait_for "ct_has rev $BACKEND 8080 $NODE1 40000" 5 0.05 || fail "client A's flow has no SNAT port 40000"
sleep 0.3
ct_del rev "$BACKEND" 8080 "$NODE1" 40000
sleep 0.5
ct_del fwd "$CLIENT_IP" 45000 "$NODE1" $NP
wait "$apid" || fail "stream lost after a conntrack half was deleted: $(cat "$out")"
grep -q "^OK bytes=300000" "$out" || fail "stream: $(cat "$out")"
ct_has rev "$BACKEND" 8080 "$NODE1" 40000 && ct_has fwd "$CLIENT_IP" 45000 "$NODE1" $NP ||
	fail "the pair was not put back"
[[ $(metric 'bpflb_conntrack_halves_repaired_total{half="rev"}') -ge 1 &&
	$(metric 'bpflb_conntrack_halves_repaired_total{half="fwd"}') -ge 1 ]] ||
	fail "repairs not counted: $(bpflb_metric 1 'bpflb_conntrack_halves_repaired_total{half="rev"}')"
ok "an established SNAT stream survives the loss of either conntrack half; repairs counted"

# 2. Client A's REV half is lost and client B gets A's SNAT port (the pool has
# one).  UDP, where nothing at the backend tells A's datagrams from B's: A
# sends a datagram every 2 s; right after A's first one, its REV half is
# deleted and B sends one datagram (and gets A's port), then counts the
# answers it gets while A goes on sending.
udp_client() { # NS SPORT COUNT INTERVAL_S LISTEN_S: "sent=N recv=M"
	in_ns "$1" python3 -c '
import socket, sys, time
host, port, sport, count, interval, listen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", sport))
s.connect((host, port))
sent = recv = 0
end = time.monotonic() + count * interval + listen
nxt = time.monotonic()
while time.monotonic() < end:
    if sent < count and time.monotonic() >= nxt:
        s.send(b"x")
        sent += 1
        nxt += interval
    s.settimeout(max(0.01, min(nxt, end) - time.monotonic()))
    try:
        s.recv(512)
        recv += 1
    except (socket.timeout, ConnectionRefusedError):
        pass
print("sent=%d recv=%d" % (sent, recv))' "$NODE1" 30053 "$2" "$3" "$4" "$5"
}
c0=$(metric bpflb_conntrack_conflicts_total)
outa="$CLUSTER_STATE/a2.out"
udp_client "$CLIENT_NS" 45002 3 2 0.5 >"$outa" 2>&1 &
apid=$!
wait_for "ct_has rev $BACKEND 8081 $NODE1 40000 udp" 5 0.05 || fail "client A's flow has no SNAT port 40000"
ct_del rev "$BACKEND" 8081 "$NODE1" 40000 udp
outb=$(udp_client "$EXT_NS" 46000 1 0.1 5)
wait "$apid" || true
[[ $outb != "sent=1 recv=0" ]] || fail "client B got no answer: A took the port back first? (A: $(cat "$outa"))"
[[ $outb == "sent=1 recv=1" ]] ||
	fail "client B, on the SNAT port client A lost, got answers meant for A: $outb (A: $(cat "$outa"))"
(($(metric bpflb_conntrack_conflicts_total) > c0)) || fail "conflict not counted (A: $(cat "$outa"))"
ok "a SNAT port that lost its REV half goes to client B: B gets only its own answers ($outb)"

# 3. Churn through a pool smaller than the connections: closed flows give
# their ports back.  At most 300 connections a second: with the 2 s grace
# before a closed flow's port is reused, at most a quarter of the pool is
# waiting at any time.
config_node1 40000-42399
bpflb_reload 1 || fail "reload with snat_ports = 40000-42399 refused"
e0=$(metric bpflb_snat_port_exhausted_total) r0=$(metric bpflb_snat_ports_reused_total)
res=$(in_ns "$CLIENT_NS" python3 "$HERE/../tools/churn.py" "$NODE1" $NP --count 3000 --rate 300) ||
	fail "churn: $res"
ex=$(($(metric bpflb_snat_port_exhausted_total) - e0))
((ex == 0)) || fail "churn: $ex connections dropped for want of a SNAT port ($res)"
reused=$(($(metric bpflb_snat_ports_reused_total) - r0))
((reused > 0)) || fail "churn: no closed flow's port was reused ($res)"
ok "churn: $res through 2400 SNAT ports, 0 exhausted, $reused ports of closed flows reused"
echo PASS
