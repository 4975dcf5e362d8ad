#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# cluster_selftest.sh [BUILD_DIR] - checks the test cluster itself (no bpflbd):
# addressing, routing, peerd/peerc, and that cleanup leaves nothing behind,
# also when a test is interrupted (SIGINT) or fails.
#
# BUILD_DIR (or env BPFLB_BUILD) is where peerd and peerc were built (the
# build directory, or the directory holding the two binaries).  Needs root.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/cluster.sh
. "$HERE/cluster.sh"

BPFLB_BUILD="${1:-${BPFLB_BUILD:-}}"
export BPFLB_BUILD
cluster_find_tools "$BPFLB_BUILD"
NODES=3
PORT_TCP=8080
PORT_UDP=8081

# expect DESCRIPTION REGEX CMD...: CMD must succeed and print a line matching REGEX.
expect() {
	local what="$1" re="$2" out
	shift 2
	if ! out="$("$@" 2>&1)"; then
		fail "$what: command failed: $* -> $out"
	fi
	[[ "$out" =~ $re ]] || fail "$what: expected /$re/, got: $out"
}

# expect_fail DESCRIPTION CMD...: CMD must fail and print "ERROR ...".
expect_fail() {
	local what="$1" out
	shift
	if out="$("$@" 2>&1)"; then
		fail "$what: expected a failure, got: $out"
	fi
	[[ "$out" == *ERROR* ]] || fail "$what: expected ERROR, got: $out"
}

re_escape() { printf '%s' "${1//./\\.}"; }

# peerd line: NAME PEER-IP:PORT LOCAL-IP:PORT
line_re() { # NAME PEER-IP LOCAL-IP LOCAL-PORT
	printf '^%s %s:[0-9]+ %s:%s$' "$1" "$(re_escape "$2")" "$(re_escape "$3")" "$4"
}

no_namespaces_left() { # PREFIX
	! ip netns list | awk '{print $1}' | grep >/dev/null "^$1"
}

# A child test that builds a 1-node cluster, then either waits to be
# interrupted or fails on purpose.  Prints "PREFIX PID", then READY.
# env --default-signal: a background job of a non-interactive shell starts
# with SIGINT ignored, and bash cannot trap a signal ignored at entry.  exec:
# the caller's $! is the child bash itself.
child_test() { # MODE=sleep|fail
	# shellcheck disable=SC2016 # expanded by the child
	exec env --default-signal=INT,TERM bash -c '
		set -euo pipefail
		. "$1"
		cluster_find_tools "$2"
		cluster_trap
		cluster_up 1
		cluster_add_pod 1 2
		cluster_start_peerd 1 1 child
		echo "$P $$"
		echo READY
		if [[ "$3" == fail ]]; then
			peerc_in client tcp 10.244.1.2 8080 --timeout 200 >/dev/null ||
				fail "forced failure"
			echo "not reached" >&2
		fi
		sleep 60 &
		cluster_on_exit "kill $!"
		wait
	' child "$HERE/cluster.sh" "$BPFLB_BUILD" "$1"
}

cluster_trap
cluster_up "$NODES"

log "starting peerd in pod 1 of every node"
for ((i = 1; i <= NODES; i++)); do
	cluster_start_peerd "$i" 1 "pod-n$i-1"
done

log "client -> node IPs (ICMP)"
for ((i = 1; i <= NODES; i++)); do
	expect "client ping node $i" "^REPLY $(re_escape "$(cluster_node_ip "$i")") seq=1 " \
		peerc_in client ping "$(cluster_node_ip "$i")"
done
expect "client ping ext" "^REPLY $(re_escape "$EXT_IP") " peerc_in client ping "$EXT_IP"

log "node -> every pod (tcp and udp)"
for ((i = 1; i <= NODES; i++)); do
	for ((k = 1; k <= NODES; k++)); do
		pip="$(cluster_pod_ip "$k" 1)"
		if ((i == k)); then
			src="$(cluster_pod_gw "$k")" # same node: the pod-side gateway address
		else
			src="$(cluster_node_ip "$i")" # other node: its fabric address
		fi
		expect "node $i -> pod $k/1 tcp" "$(line_re "pod-n$k-1" "$src" "$pip" $PORT_TCP)" \
			peerc_in "n$i" tcp "$pip" $PORT_TCP
		expect "node $i -> pod $k/1 udp" "$(line_re "pod-n$k-1" "$src" "$pip" $PORT_UDP)" \
			peerc_in "n$i" udp "$pip" $PORT_UDP
	done
done

log "pod -> pod across nodes (no NAT: the peer is the pod IP)"
for ((i = 1; i <= NODES; i++)); do
	for ((k = 1; k <= NODES; k++)); do
		((i == k)) && continue
		from="$(cluster_pod_ip "$i" 1)"
		to="$(cluster_pod_ip "$k" 1)"
		expect "pod $i/1 -> pod $k/1 tcp" "$(line_re "pod-n$k-1" "$from" "$to" $PORT_TCP)" \
			peerc_in "$(cluster_pod_ns "$i" 1)" tcp "$to" $PORT_TCP
		expect "pod $i/1 -> pod $k/1 udp" "$(line_re "pod-n$k-1" "$from" "$to" $PORT_UDP)" \
			peerc_in "$(cluster_pod_ns "$i" 1)" udp "$to" $PORT_UDP
	done
	expect "node $i ping ext" "^REPLY " peerc_in "n$i" ping "$EXT_IP"
	# ext has no pod routes: pod egress needs SNAT, which the plain cluster lacks.
	expect_fail "pod $i/1 -> ext without SNAT" peerc_in "$(cluster_pod_ns "$i" 1)" ping "$EXT_IP" --timeout 300
done

log "second pod on node 1: pod -> pod on the same node, several connections"
cluster_add_pod 1 2
cluster_start_peerd 1 2 pod-n1-2
[[ "$(cluster_pod_ip 1 2)" == 10.244.1.3 ]] || fail "pod 1/2 should be 10.244.1.3"
out="$(peerc_in n1p1 tcp 10.244.1.3 $PORT_TCP --count 5)" || fail "pod 1/1 -> pod 1/2: $out"
[[ "$(grep -cE "$(line_re pod-n1-2 10.244.1.2 10.244.1.3 $PORT_TCP)" <<<"$out")" == 5 ]] ||
	fail "pod 1/1 -> pod 1/2: expected 5 answers, got: $out"
[[ "$(awk '{print $2}' <<<"$out" | sort -u | wc -l)" == 5 ]] ||
	fail "--count 5 should use 5 source ports: $out"
expect "pod 1/2 -> pod 3/1 udp" "$(line_re pod-n3-1 10.244.1.3 10.244.3.2 $PORT_UDP)" \
	peerc_in n1p2 udp 10.244.3.2 $PORT_UDP

log "hostnet pods, and cluster_route_lbip re-pointing an address at nodes"
LBIP=10.96.0.10
for n in 2 3; do
	cluster_add_pod "$n" 9 hostnet
	[[ "$(cluster_pod_ns "$n" 9)" == "$(cluster_node_ns "$n")" ]] || fail "hostnet pod ns"
	[[ "$(cluster_pod_ip "$n" 9)" == "$(cluster_node_ip "$n")" ]] || fail "hostnet pod ip"
	in_ns "n$n" ip addr add "$LBIP/32" dev lo
	cluster_start_peerd "$n" 9 "hostnet-n$n" --tcp 9090 --udp 9091
done
expect_fail "client has no route to pods" peerc_in client tcp 10.244.1.2 $PORT_TCP --timeout 300
expect_fail "LB IP not routed yet" peerc_in client udp "$LBIP" 9091 --timeout 300
cluster_route_lbip "$LBIP" 2
expect "LB IP via node 2" "$(line_re hostnet-n2 "$CLIENT_IP" "$LBIP" 9090)" peerc_in client tcp "$LBIP" 9090
cluster_route_lbip "$LBIP" 3
expect "LB IP via node 3" "$(line_re hostnet-n3 "$CLIENT_IP" "$LBIP" 9091)" peerc_in client udp "$LBIP" 9091
cluster_unroute_lbip "$LBIP"
expect_fail "LB IP unrouted" peerc_in client tcp "$LBIP" 9090 --timeout 300

log "byte-verified stream pod 1/1 -> pod 3/1, and a stopped backend"
expect "stream" "OK bytes=262144$" peerc_in n1p1 stream 10.244.3.2 $PORT_TCP --bytes 256k --chunk 4096 --interval-ms 2
cluster_stop_peerd 3 1
expect_fail "stopped peerd refuses" peerc_in n1p1 tcp 10.244.3.2 $PORT_TCP --timeout 500
cluster_del_pod 1 2
[[ ! -e "/run/netns/${P}n1p2" ]] || fail "cluster_del_pod left ${P}n1p2"
expect_fail "deleted pod is gone" peerc_in n1 tcp 10.244.1.3 $PORT_TCP --timeout 300

log "cluster_down"
peerd_pids="$(awk '{print $1}' "$CLUSTER_STATE/pids")"
cluster_down
cluster_down # idempotent
no_namespaces_left "$P" || fail "namespaces left after cluster_down: $(ip netns list | grep "^$P")"
for pid in $peerd_pids; do
	if [[ -e "/proc/$pid" ]] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
		fail "process $pid still running after cluster_down"
	fi
done

log "cleanup after SIGINT"
cluster_trap # new state: should this script be stopped now, the child goes too
fifo="$(mktemp -u)"
mkfifo "$fifo"
child_test sleep >"$fifo" &
jobpid=$!
cluster_track_pid "$jobpid" - child-test
exec 3<"$fifo"
rm -f "$fifo"
read -r -t 30 cprefix cpid <&3 || fail "interrupt child did not start"
[[ "$cpid" == "$jobpid" ]] || fail "interrupt child: pid $cpid, expected $jobpid"
read -r -t 30 ready <&3 || fail "interrupt child did not get ready"
[[ "$ready" == READY ]] || fail "interrupt child: $ready"
no_namespaces_left "$cprefix" && fail "interrupt child made no namespaces?"
kill -INT "$cpid"
rc=0
wait "$jobpid" || rc=$?
exec 3<&-
[[ "$rc" == 130 ]] || fail "interrupted child exited with $rc, expected 130"
no_namespaces_left "$cprefix" || fail "namespaces left after SIGINT: $(ip netns list | grep "^$cprefix")"

log "cleanup after a failing test"
outf="$CLUSTER_STATE/child-fail.out"
child_test fail >"$outf" 2>&1 &
jobpid=$!
cluster_track_pid "$jobpid" - child-test
rc=0
wait "$jobpid" || rc=$?
out="$(cat "$outf")"
cprefix="$(head -1 <<<"$out" | awk '{print $1}')"
[[ "$rc" != 0 && -n "$cprefix" ]] || fail "failing child: rc=$rc out=$out"
[[ "$out" == *"FAIL: forced failure"* ]] || fail "failing child gave no reason: $out"
no_namespaces_left "$cprefix" || fail "namespaces left after a failure: $(ip netns list | grep "^$cprefix")"

log "PASS: cluster selftest"
