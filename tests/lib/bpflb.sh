# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/lib/bpflb.sh - run one bpflbd per node of a cluster.sh cluster.
# Source after cluster.sh.  Each node i gets its own instance: config
# $CLUSTER_STATE/node<i>.ini, pins under /sys/fs/bpf/${P}node<i>, log
# $CLUSTER_LOGDIR/bpflbd-node<i>.log.  Everything is removed by cluster_down
# (daemons killed, --cleanup run, pins removed), also when a test fails.
#
#   bpflb_find BUILD_DIR              locate bpflbd and the plugin directory
#   bpflb_config I MODE SERVICES_FILE [EXTRA_INI]   write node I's config
#                                     (BPFLB_DAEMON_EXTRA: more [daemon] lines;
#                                     BPFLB_NODE_LABELS[K]: labels of node K, written
#                                     in [node] or [cluster-node nodeK]; likewise
#                                     BPFLB_NODE_EXT[K]: its external_addresses)
#   bpflb_sock I                      node I's control socket
#   bpflb_start I                     start node I's bpflbd, wait until it runs
#   bpflb_reload I                    SIGHUP node I, wait for the outcome line
#   bpflb_stop I [SIGNAL]             stop node I's bpflbd (default TERM)
#   bpflb_all FUNC ARGS...            FUNC on every node
#   bpflb_log I                       path of node I's log
#   bpflb_flat_flows                  filter: bpflbctl observe -o json (hubble records) to one
#                                     flat object per flow (time, node, proto, src, dst,
#                                     verdict, reason, service, backend, translation, xlate,
#                                     stage, rule_id); other records are left out

bpflb_find() {
	BPFLB_BUILD="${1:?bpflb_find BUILD_DIR}"
	BPFLBD="$BPFLB_BUILD/core/bpflbd"
	BPFLB_PLUGINS="$BPFLB_BUILD/plugins-out"
	[[ -x $BPFLBD ]] || fail "no bpflbd in $BPFLB_BUILD/core (build first)"
	export BPFLB_BUILD BPFLBD BPFLB_PLUGINS
}

bpflb_log() { echo "$CLUSTER_LOGDIR/bpflbd-node$1.log"; }
bpflb_pin() { echo "/sys/fs/bpf/${P}node$1"; }
bpflb_ini() { echo "$CLUSTER_STATE/node$1.ini"; }
bpflb_sock() { echo "$CLUSTER_STATE/node$1.sock"; }

# bpflb_metric I SERIES: the value of one Prometheus series (name{labels} as
# bpflbd prints it) from node I's metrics_listen = 127.0.0.1:9962; empty if absent.
bpflb_metric() {
	in_ns "$(cluster_node_ns "$1")" python3 -c '
import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:9962/metrics", timeout=5).read().decode()
for line in body.splitlines():
    k, _, v = line.rpartition(" ")
    if k == sys.argv[1]:
        print(v)' "$2"
}

# bpflb_config I MODE SERVICES_FILE [EXTRA_INI]
bpflb_config() {
	local i="$1" mode="$2" svc="$3" extra="${4:-}" k
	{
		cat <<INI
; node $i of test cluster $P (written by tests/lib/bpflb.sh)
[daemon]
mode = $mode
plugin_dir = $BPFLB_PLUGINS
bpffs_root = $(bpflb_pin "$i")
control_socket = $CLUSTER_STATE/node$i.sock
state_dir = $CLUSTER_STATE/node$i.state
${BPFLB_DAEMON_EXTRA:-}
devices = eth0
log_level = info

[node]
name = node$i
address = $(cluster_node_ip "$i")
${BPFLB_NODE_LABELS[$i]:+labels = ${BPFLB_NODE_LABELS[$i]}}
${BPFLB_NODE_EXT[$i]:+external_addresses = ${BPFLB_NODE_EXT[$i]}}

INI
		for ((k = 1; k <= CLUSTER_NODES; k++)); do
			((k == i)) && continue
			printf '[cluster-node node%d]\naddress = %s\n%s\n%s\n\n' "$k" "$(cluster_node_ip "$k")" \
				"${BPFLB_NODE_LABELS[$k]:+labels = ${BPFLB_NODE_LABELS[$k]}}" \
				"${BPFLB_NODE_EXT[$k]:+external_addresses = ${BPFLB_NODE_EXT[$k]}}"
		done
		[[ -n $extra ]] && printf '%s\n\n' "$extra"
		cat "$svc"
	} >"$(bpflb_ini "$i").new"
	mv "$(bpflb_ini "$i").new" "$(bpflb_ini "$i")"
}

_bpflb_cleanup_node() {
	local i="$1" pidf="$CLUSTER_STATE/bpflbd-node$1.pid"
	if [[ -f $pidf ]]; then
		local pid
		pid=$(cat "$pidf")
		kill -TERM "$pid" 2>/dev/null || true
		wait_for "! kill -0 $pid" 3 0.05 || kill -9 "$pid" 2>/dev/null || true
		rm -f "$pidf"
	fi
	if [[ -e /run/netns/$(cluster_node_ns "$i") && -f $(bpflb_ini "$i") ]]; then
		in_ns "$(cluster_node_ns "$i")" "$BPFLBD" --config "$(bpflb_ini "$i")" --cleanup \
			>>"$(bpflb_log "$i")" 2>&1 || true
	fi
	rm -rf "$(bpflb_pin "$i")"
}

bpflb_start() {
	local i="$1" logf n
	logf="$(bpflb_log "$i")"
	touch "$logf"
	n=$(grep -c "running: mode" "$logf" || true)
	if [[ ! -f $CLUSTER_STATE/bpflbd-node$i.registered ]]; then
		cluster_on_exit _bpflb_cleanup_node "$i"
		touch "$CLUSTER_STATE/bpflbd-node$i.registered"
	fi
	# nsenter execs bpflbd: $! is the daemon, so signals reach it.
	nsenter --net="/run/netns/$(cluster_node_ns "$i")" -- "$BPFLBD" --config "$(bpflb_ini "$i")" \
		</dev/null >>"$logf" 2>&1 &
	echo $! >"$CLUSTER_STATE/bpflbd-node$i.pid"
	disown $! # its end is checked through the pid file, not reported by bash
	if ! wait_for "[[ \$(grep -c 'running: mode' '$logf') -gt $n ]]" 10 0.05; then
		sed 's/^/  bpflbd: /' "$logf" >&2
		fail "bpflbd on node $i did not start"
	fi
}

bpflb_pid() { cat "$CLUSTER_STATE/bpflbd-node$1.pid"; }

# bpflb_reload I -> 0 when the reload was applied, 1 when bpflbd refused it
bpflb_reload() {
	local i="$1" logf ok bad
	logf="$(bpflb_log "$i")"
	ok=$(grep -c "reload done" "$logf" || true)
	bad=$(grep -c "reload failed" "$logf" || true)
	kill -HUP "$(bpflb_pid "$i")"
	wait_for "[[ \$(grep -c 'reload done' '$logf') -gt $ok || \$(grep -c 'reload failed' '$logf') -gt $bad ]]" 10 0.05 ||
		fail "bpflbd on node $i did not finish its reload"
	[[ $(grep -c "reload done" "$logf") -gt $ok ]]
}

bpflb_stop() {
	local i="$1" sig="${2:-TERM}" pid
	pid="$(bpflb_pid "$i")"
	kill -"$sig" "$pid" 2>/dev/null || true
	wait_for "! kill -0 $pid 2>/dev/null" 10 0.05 || fail "bpflbd on node $i did not stop on SIG$sig"
	rm -f "$CLUSTER_STATE/bpflbd-node$i.pid"
}

bpflb_all() {
	local f="$1" k
	shift
	for ((k = 1; k <= CLUSTER_NODES; k++)); do
		"$f" "$k" "$@"
	done
}

# Tests written before observe spoke hubble's shape read flows flat; the
# hubble fields themselves are checked by tests/e2e/observe.sh.
bpflb_flat_flows() {
	python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    f = r.get("flow")
    if f is None:
        continue
    x, l4 = f["bpflb"], f["l4"]
    p = l4.get("TCP") or l4.get("UDP") or {}
    def ep(ip, k):
        return "%s:%d" % (ip, p[k]) if p.get(k) else ip
    proto = "tcp" if "TCP" in l4 else "udp" if "UDP" in l4 else "icmp" if "ICMPv4" in l4 else "other"
    print(json.dumps({"time": f["time"], "node": f["node_name"], "proto": proto,
                      "src": ep(f["IP"]["source"], "source_port"),
                      "dst": ep(f["IP"]["destination"], "destination_port"),
                      "verdict": x["verdict"], "reason": x["reason"], "service": x["service"],
                      "backend": x["backend"], "translation": x["translation"],
                      "xlate": x["xlate"], "stage": x["stage"], "rule_id": x.get("rule_id")},
                     separators=(",", ":")))
    sys.stdout.flush()
'
}
