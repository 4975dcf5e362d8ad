#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# Service-count scaling (bench part 2) and the daemon's control plane (part 4,
# daemon side), on a 3-node namespace cluster:
#
#   client --> n1:30080  bpflbd (snat), N services, target backends: 2 pods on n1
#          --> n4:30080  the same, with flow events off ([lb] events_per_sec = 1)
#          --> n2:30080  kube-proxy-shaped iptables rules, N services, 2 pods on n2
#          --> 10.244.3.2:8080  routed through n3, no load balancer (direct)
#
# bpflb-noev shows what the flow events cost a new connection: bpflbd reads
# them (up to events_per_sec per CPU), and the perf buffer wakes it for each.
#
# For every service count N: generate the same N services for both, start
# bpflbd from scratch (time to "running", RSS), load the rules with
# iptables-restore (time), then ROUNDS rounds of CONNS sequential TCP
# connections (connlat: connect() time) to each of the three, in an order that
# rotates every round.  Then, with a TCP and a UDP probe each opening 2000 new
# flows per second through n1, reload bpflbd three times (same file, one
# service changed, back): reload times, probe failures, RSS afterwards.
#
# Usage: scale.sh BUILD_DIR OUT_DIR SIZES ROUNDS CONNS
#   writes OUT_DIR/scale.jsonl (one JSON object per size) and the connect
#   times of every connection in OUT_DIR/lat/N-VARIANT.txt (microseconds).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../../tests/lib/cluster.sh
. "$ROOT/tests/lib/cluster.sh"
# shellcheck source=../../tests/lib/bpflb.sh
. "$ROOT/tests/lib/bpflb.sh"
# shellcheck source=common.sh
. "$HERE/common.sh"

BUILD="$(cd "${1:?usage: scale.sh BUILD OUT SIZES ROUNDS CONNS}" && pwd)"
OUT="${2:?}"
IFS=, read -r -a SIZES <<<"${3:?}"
ROUNDS="${4:?}"
CONNS="${5:?}"
PROBE_S="${BENCH_PROBE_S:-1}"        # probing before and after the reloads, seconds
PROBE_RATE="${BENCH_PROBE_RATE:-2000}" # new flows per second of each probe (TCP, UDP)
mkdir -p "$OUT/lat"
: >"$OUT/scale.jsonl"
cluster_find_tools "$BUILD/tests/tools"
bpflb_find "$BUILD"
CONNLAT="$BUILD/bench/connlat"
[[ -x $CONNLAT ]] || fail "no $CONNLAT (build the bench targets)"

cluster_trap
cluster_up 4
cluster_add_pod 1 2
cluster_add_pod 2 2
cluster_add_pod 4 2
for np in 1/1 1/2 2/1 2/2 3/1 4/1 4/2; do
	node=${np%/*} pod=${np#*/}
	logf="$CLUSTER_LOGDIR/connlat-$node-$pod.log"
	cluster_bg "$(cluster_pod_ns "$node" "$pod")" "$logf" "$CONNLAT" serve 8080
	wait_for "grep -q READY '$logf'" 5 0.05 || fail "connlat serve in pod $node/$pod"
done
ip -n "$CLIENT_NS" route add "$(cluster_pod_cidr 3)" via "$(cluster_node_ip 3)" dev eth0

declare -A TARGET=(
	[direct]="$(cluster_pod_ip 3 1) 8080"
	[bpflb]="$(cluster_node_ip 1) 30080"
	[bpflb-noev]="$(cluster_node_ip 4) 30080"
	[iptables]="$(cluster_node_ip 2) 30080"
)
VARIANTS=(direct bpflb bpflb-noev iptables)
NOEV=$'[lb]\nevents_per_sec = 1'
SVC4="$CLUSTER_STATE/services-n4.ini"
GEN="$HERE/gen.py"
SVC="$CLUSTER_STATE/services.ini"
SVC2="$CLUSTER_STATE/services-changed.ini"
RULES="$CLUSTER_STATE/rules"

connlat_in() { in_ns "$CLIENT_NS" "$CONNLAT" connect "$@"; }

for n in "${SIZES[@]}"; do
	log "scale: $n services"
	python3 "$GEN" bpflb "$n" --udp --target-backends "$(cluster_pod_ip 1 1),$(cluster_pod_ip 1 2)" >"$SVC"
	change=""
	if ((n > 1)); then
		change=$((n / 2 > 0 ? n / 2 : 1))
		python3 "$GEN" bpflb "$n" --udp --change "$change" \
			--target-backends "$(cluster_pod_ip 1 1),$(cluster_pod_ip 1 2)" >"$SVC2"
	fi
	python3 "$GEN" iptables "$n" --target-backends "$(cluster_pod_ip 2 1),$(cluster_pod_ip 2 2)" >"$RULES"
	python3 "$GEN" bpflb "$n" --node node4 --target-backends "$(cluster_pod_ip 4 1),$(cluster_pod_ip 4 2)" >"$SVC4"

	# bpflbd from scratch: no pins, no hooks.
	bpflb_config 1 snat "$SVC"
	bench_bpflb_fresh 1
	bench_bpflb_start 1
	start_s=$BENCH_START_S
	pid=$(bpflb_pid 1)
	rss_start=$(bench_rss_kb "$pid")
	log "scale: bpflbd up in ${start_s}s, RSS ${rss_start} kB"
	bpflb_config 4 snat "$SVC4" "$NOEV"
	bench_bpflb_fresh 4
	bench_bpflb_start 4

	bench_ipt_flush "$(cluster_node_ns 2)"
	t0=$EPOCHREALTIME
	bench_ipt_restore "$(cluster_node_ns 2)" "$RULES" || fail "iptables-restore of $n services"
	ipt_load_s=$(bench_dt "$t0" "$EPOCHREALTIME")
	ipt_rules=$(grep -c '^-A' "$RULES")
	log "scale: iptables-${BENCH_IPT:-legacy} rules loaded in ${ipt_load_s}s ($ipt_rules rules)"

	# Every path answers; 300 connections of warm-up each (neighbours, caches, CPU clocks).
	for v in "${VARIANTS[@]}"; do
		read -r h p <<<"${TARGET[$v]}"
		connlat_in "$h" "$p" --count 300 >/dev/null || fail "$v ($h:$p) does not answer with $n services"
		: >"$OUT/lat/$n-$v.txt"
	done

	for ((r = 0; r < ROUNDS; r++)); do
		for ((j = 0; j < ${#VARIANTS[@]}; j++)); do
			v=${VARIANTS[(j + r) % ${#VARIANTS[@]}]}
			read -r h p <<<"${TARGET[$v]}"
			connlat_in "$h" "$p" --count "$CONNS" --raw "$CLUSTER_STATE/lat.txt" \
				>"$CLUSTER_STATE/lat.json" || log "scale: $v had failures: $(cat "$CLUSTER_STATE/lat.json")"
			cat "$CLUSTER_STATE/lat.txt" >>"$OUT/lat/$n-$v.txt"
		done
	done

	# Reloads under a steady stream of new TCP and UDP flows through n1.
	read -r h p <<<"${TARGET[bpflb]}"
	# nsenter execs connlat: $! is the probe itself, which reports on SIGTERM.
	nsenter --net="/run/netns/$CLIENT_NS" -- "$CONNLAT" connect "$h" "$p" --duration 600 \
		--rate "$PROBE_RATE" --timeout 1000 >"$CLUSTER_STATE/probe-tcp.json" 2>&1 &
	ptcp=$!
	nsenter --net="/run/netns/$CLIENT_NS" -- "$CONNLAT" connect "$h" "$p" --udp --duration 600 \
		--rate "$PROBE_RATE" --timeout 1000 >"$CLUSTER_STATE/probe-udp.json" 2>&1 &
	pudp=$!
	cluster_track_pid "$ptcp" "$CLIENT_NS" probe
	cluster_track_pid "$pudp" "$CLIENT_NS" probe
	sleep "$PROBE_S"
	reload_s=$(bench_bpflb_reload 1)
	change_s=null back_s=null
	if [[ -n $change ]]; then
		cp "$SVC2" "$SVC"
		bpflb_config 1 snat "$SVC"
		change_s=$(bench_bpflb_reload 1)
		python3 "$GEN" bpflb "$n" --udp --target-backends "$(cluster_pod_ip 1 1),$(cluster_pod_ip 1 2)" >"$SVC"
		bpflb_config 1 snat "$SVC"
		back_s=$(bench_bpflb_reload 1)
	fi
	sleep "$PROBE_S"
	kill -TERM "$ptcp" "$pudp" 2>/dev/null || true
	wait "$ptcp" || true
	wait "$pudp" || true
	rss_after=$(bench_rss_kb "$pid")
	log "scale: reload ${reload_s} s, one change ${change_s} s, back ${back_s} s; RSS ${rss_after} kB"
	log "scale: probes: tcp $(cat "$CLUSTER_STATE/probe-tcp.json"); udp $(cat "$CLUSTER_STATE/probe-udp.json")"

	printf '{"n": %d, "rounds": %d, "conns": %d, "bpflb": {"start_s": %s, "rss_kb_start": %s, "reload_s": %s, "change_s": %s, "change_back_s": %s, "rss_kb_after_reloads": %s, "probe_tcp": %s, "probe_udp": %s}, "iptables": {"backend": "%s", "load_s": %s, "rules": %d}}\n' \
		"$n" "$ROUNDS" "$CONNS" "$start_s" "$rss_start" "$reload_s" "$change_s" "$back_s" "$rss_after" \
		"$(cat "$CLUSTER_STATE/probe-tcp.json")" "$(cat "$CLUSTER_STATE/probe-udp.json")" \
		"${BENCH_IPT:-legacy}" "$ipt_load_s" "$ipt_rules" >>"$OUT/scale.jsonl"
done
bench_ipt_flush "$(cluster_node_ns 2)"
log "scale: done"
