#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bpflbctl observe as hubble's users read it, on a one-node namespace cluster
# (mode snat, features policy), with real connections:
#
#   1. order: a follower (observe -o json --follow) runs while two client
#      processes, pinned to CPU 0 and CPU 1, open connections to a NodePort at
#      the same time; the follower's records and the history (--last) come
#      from both CPUs and their times never go back.
#   2. shape: every line is JSON; flow records carry hubble's fields with
#      their types (IP.source/destination, l4.TCP ports and flags, verdict,
#      drop_reason_desc, is_reply, traffic_direction, node_name, Type, time);
#      lost_events and stats records have no "flow" key.
#   3. policy names: a drop by an ingressDeny rule names its policy and rule
#      (ingress_denied_by, "policy=deny-world-9022 rule=0 (ingress deny)"), a
#      default-deny drop names the policy whose selection denies and says so
#      ("default-deny (ingress: no policy allows)").
#   4. filters: --from-ip, --to-ip, --ip, --port, --from-port, --to-port,
#      --type drop|trace|policy-verdict, --verdict, --since/--until select what
#      they say; bad values exit 2 naming the option.
#
# Usage: observe.sh BUILD_DIR
set -euo pipefail
export BPFLB_PREFIX="${BPFLB_PREFIX:-ob$$-}"
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: observe.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"
CTL="$1/tools/bpflbctl/bpflbctl"
[[ -x $CTL ]] || fail "no bpflbctl in $1/tools/bpflbctl (build first)"
[[ -f $BPFLB_PLUGINS/policy.so ]] || fail "no policy.so in $BPFLB_PLUGINS (build first)"
command -v taskset >/dev/null || fail "taskset (util-linux) is needed to pin the clients to CPUs"

ok() { echo "ok - $*"; }
N1=$(cluster_node_ip 1)
NCPU=$(nproc)

cluster_trap
cluster_up 1
cluster_start_peerd 1 1 web-1
SOCK=$(bpflb_sock 1)
obs() { "$CTL" --socket "$SOCK" observe "$@"; }

POLDIR="$CLUSTER_STATE/policies"
mkdir -p "$POLDIR"
# The node is selected (ingress default deny) and only the kube-apiserver may
# reach it; from the world, port 9022 is also denied by a rule of its own.
cat >"$POLDIR/allow-apiserver.yaml" <<'YAML'
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: allow-apiserver
spec:
  nodeSelector: {}
  ingress:
  - fromEntities: [kube-apiserver]
YAML
cat >"$POLDIR/deny-world-9022.yaml" <<'YAML'
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: deny-world-9022
spec:
  nodeSelector: {}
  ingressDeny:
  - fromEntities: [world]
    toPorts:
    - ports:
      - port: "9022"
        protocol: TCP
YAML
SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service web]
type = nodeport
port = http tcp 80 nodeport=30080 target=8080
backend = $(cluster_pod_ip 1 1) node=node1
INI
BPFLB_DAEMON_EXTRA='features = policy'
bpflb_config 1 snat "$SVC" "[policy]
dir = $POLDIR
kube_apiserver = $CLIENT_IP
cluster_cidrs = 10.244.0.0/16"
bpflb_start 1

# --- 1. order across CPUs ----------------------------------------------------------
FOLLOW="$CLUSTER_STATE/follow.json"
"$CTL" --socket "$SOCK" -o json observe --follow >"$FOLLOW" 2>"$CLUSTER_STATE/follow.err" &
fpid=$!
cluster_track_pid "$fpid"
wait_for "[[ \$(\"$CTL\" --socket \"$SOCK\" -o json status | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"flow_events\"][\"subscribers\"])') == 1 ]]" 10 0.1 ||
	fail "observe --follow did not subscribe"
T0=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
cpus=(0)
((NCPU > 1)) && cpus=(0 1)
for round in 1 2 3; do
	pids=()
	for c in "${cpus[@]}"; do
		in_ns "$CLIENT_NS" taskset -c "$c" "$PEERC" tcp "$N1" 30080 --count 20 \
			>"$CLUSTER_STATE/client-$c-$round.out" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || fail "client traffic to the NodePort failed: $(cat "$CLUSTER_STATE"/client-*-$round.out)"; done
done
# a default-deny drop (port 22) and a rule's drop (port 9022), from the world
peerc_in "$EXT_NS" tcp "$N1" 22 --timeout 300 >/dev/null && fail "the default deny let port 22 through"
peerc_in "$EXT_NS" tcp "$N1" 9022 --timeout 300 >/dev/null && fail "deny-world-9022 let port 9022 through"
wait_for "grep -q '\"destination_port\":9022' '$FOLLOW'" 5 0.05 || fail "the follower did not see the drop to 9022"
T1=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
sleep 0.2 # lost_events are reported once a second; let the follower write them if any
cluster_kill_pid "$fpid"
HIST="$CLUSTER_STATE/history.json"
"$CTL" --socket "$SOCK" -o json observe --last 8192 >"$HIST"

# check_order FILE: every line JSON, times non-decreasing; prints the CPUs seen
check_order() {
	python3 - "$1" <<'EOF'
import json, sys
prev, cpus, n = "", set(), 0
for i, line in enumerate(open(sys.argv[1]), 1):
    r = json.loads(line)  # raises on a line that is not JSON
    if "flow" not in r:
        continue
    t = r["flow"]["time"]
    # RFC 3339 with nanoseconds in UTC: equal length, so text order is time order
    assert len(t) == 30 and t.endswith("Z"), (i, t)
    assert t >= prev, "line %d goes back in time: %s after %s" % (i, t, prev)
    prev, n = t, n + 1
    cpus.add(r["flow"]["bpflb"]["cpu"])
assert n >= 40, "only %d flows" % n
print(" ".join(str(c) for c in sorted(cpus)))
EOF
}
seen=$(check_order "$FOLLOW") || fail "observe --follow: $(head -c 2000 "$FOLLOW")"
seen_hist=$(check_order "$HIST") || fail "observe --last: $(head -c 2000 "$HIST")"
if ((NCPU > 1)); then
	[[ $seen == "0 1" && $seen_hist == "0 1" ]] ||
		fail "flows did not come from both CPUs (follow: $seen, history: $seen_hist): the order was not put to the test"
fi
late=$("$CTL" --socket "$SOCK" -o json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["flow_events"]["late"])')
ok "order: flows of CPUs $seen, followed and from the history, in time order ($late late)"

# --- 2. hubble's shape --------------------------------------------------------------
python3 - "$FOLLOW" "$HIST" "$CLIENT_IP" "$EXT_IP" "$N1" <<'EOF' || fail "hubble shape"
import json, re, sys
follow, hist, client, ext, node = sys.argv[1:6]
rfc = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
for path in (follow, hist):
    recs = [json.loads(l) for l in open(path)]
    flows = [r["flow"] for r in recs if "flow" in r]
    for r in recs:
        if "flow" in r:
            assert r["node_name"] == "node1" and r["time"] == r["flow"]["time"], r
            continue
        # anything else is typed by its own key and is no flow
        assert set(r) <= {"lost_events", "stats", "node_name", "time"}, r
        if "lost_events" in r:
            assert isinstance(r["lost_events"]["num_events_lost"], int), r
            assert isinstance(r["lost_events"]["source"], str), r
    for f in flows:
        assert rfc.match(f["time"]), f
        assert f["Type"] == "L3_L4" and f["node_name"] == "node1", f
        assert f["verdict"] in ("FORWARDED", "DROPPED", "AUDIT", "TRANSLATED"), f
        assert f["IP"]["ipVersion"] == "IPv4", f
        assert isinstance(f["IP"]["source"], str) and ":" not in f["IP"]["source"], f
        assert isinstance(f["is_reply"], bool), f
        assert f["traffic_direction"] in ("INGRESS", "EGRESS"), f
        assert isinstance(f["Summary"], str), f
        assert ("drop_reason_desc" in f) == (f["verdict"] == "DROPPED"), f
    web = [f for f in flows if f["IP"]["source"] == client and f["IP"]["destination"] == node
           and f["l4"].get("TCP", {}).get("destination_port") == 30080]
    assert len(web) >= 40, "web flows: %d in %s" % (len(web), path)
    for f in web:
        tcp = f["l4"]["TCP"]
        assert isinstance(tcp["source_port"], int) and 1024 <= tcp["source_port"] <= 65535, f
        assert tcp["flags"] == {"SYN": True}, f  # the first packet of each connection
        assert f["verdict"] == "FORWARDED" and f["is_reply"] is False, f
        assert f["traffic_direction"] == "INGRESS", f
        assert f["destination_service"]["name"] == "web/http", f
        assert f["Summary"] == "TCP Flags: SYN", f
    drops = [f for f in flows if f["verdict"] == "DROPPED" and f["IP"]["source"] == ext]
    by_port = {f["l4"]["TCP"]["destination_port"]: f for f in drops}
    assert 22 in by_port and 9022 in by_port, drops
    for port, name, action, rule in ((9022, "deny-world-9022", "deny", 0),
                                     (22, "allow-apiserver", "default-deny", None)):
        f = by_port[port]
        assert f["drop_reason_desc"] == "POLICY_DENIED", f
        assert f["ingress_denied_by"][0]["name"] == name, f
        assert "egress_denied_by" not in f and "ingress_allowed_by" not in f, f
        p = f["bpflb"]["policy"]
        assert (p["name"], p["action"], p["rule"], p["direction"]) == (name, action, rule, "ingress"), f
        assert f["traffic_direction"] == "INGRESS" and f["is_reply"] is False, f
EOF
ok "shape: hubble's flow fields and types; policy names for a rule's drop and a default deny; other records carry no flow"

text=$(obs --last 8192) || fail "observe (text)"
grep -q "^20[0-9-]*T[0-9:.]*Z node1 eth0 $EXT_IP:[0-9]* -> $N1:9022 TCP DROPPED (policy) policy=deny-world-9022 rule=0 (ingress deny)" <<<"$text" ||
	fail "text: the rule's drop does not name policy and rule: $(grep 9022 <<<"$text")"
grep -q " -> $N1:22 TCP DROPPED (policy) policy=allow-apiserver default-deny (ingress: no policy allows)" <<<"$text" ||
	fail "text: the default deny is not named as such: $(grep ":22 " <<<"$text")"
grep -q "^20.* $CLIENT_IP:[0-9]* -> $N1:30080 TCP svc web/http => .* FORWARDED (TCP Flags: SYN)$" <<<"$text" ||
	fail "text: no forwarded flow line: $(head -3 <<<"$text")"
ok "text: one line per flow, time first, policy verdicts named"

# --- 4. filters -----------------------------------------------------------------------
# sel ARGS... -- PY-EXPR: observe -o json ARGS returns flows, all satisfy PY-EXPR over f
sel() {
	local args=() expr
	while [[ $1 != -- ]]; do args+=("$1"); shift; done
	expr=$2
	"$CTL" --socket "$SOCK" -o json observe --last 8192 "${args[@]}" | python3 -c '
import json, sys
expr = sys.argv[1]
flows = [r["flow"] for r in map(json.loads, sys.stdin) if "flow" in r]
def port(f, k):
    l4 = f["l4"].get("TCP") or f["l4"].get("UDP") or {}
    return l4.get(k)
bad = [f for f in flows if not eval(expr)]
print(len(flows), len(bad))
sys.exit(1 if bad or not flows else 0)' "$expr"
}
none() { # ARGS...: observe -o json ARGS returns no flow
	local n
	n=$("$CTL" --socket "$SOCK" -o json observe --last 8192 "$@" | grep -c '"flow"' || true)
	[[ $n == 0 ]]
}
sel --from-ip "$EXT_IP" -- 'f["IP"]["source"] == "'"$EXT_IP"'"' >/dev/null || fail "--from-ip"
sel --to-ip "$N1" --port 9022 -- 'f["IP"]["destination"] == "'"$N1"'" and 9022 in (port(f, "source_port"), port(f, "destination_port"))' >/dev/null ||
	fail "--to-ip with --port"
sel --ip "$EXT_IP" -- '"'"$EXT_IP"'" in (f["IP"]["source"], f["IP"]["destination"])' >/dev/null || fail "--ip"
sel --to-port 30080 -- 'port(f, "destination_port") == 30080' >/dev/null || fail "--to-port"
sel --type drop -- 'f["verdict"] == "DROPPED"' >/dev/null || fail "--type drop"
sel --type policy-verdict -- '"policy" in f["bpflb"]' >/dev/null || fail "--type policy-verdict"
sel --type trace -- 'f["verdict"] == "FORWARDED"' >/dev/null || fail "--type trace"
[[ $(sel --type drop --type trace -- 'True') == "$(sel -- 'True')" ]] || fail "--type given twice selects both"
sel --verdict dropped -- 'f["verdict"] == "DROPPED"' >/dev/null || fail "--verdict"
sel --since "$T0" --until "$T1" -- 'True' >/dev/null || fail "--since/--until (RFC 3339) around the traffic"
sel --since 10m -- 'True' >/dev/null || fail "--since 10m"
none --from-port 9022 || fail "--from-port 9022 matched flows to 9022"
none --until 10m || fail "--until 10m (before the cluster existed) matched flows"
none --since "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" || fail "--since in the future matched flows"
none --from-ip 192.0.2.1 || fail "--from-ip of nobody matched flows"
for bad in "--from-ip 10.0.0" "--to-ip x" "--ip 1.2.3.4.5" "--port 0" "--port 70000" "--from-port x" \
	"--type drops" "--verdict maybe" "--since yesterday" "--until 2026-13-01T00:00:00Z" \
	"--since 5m --until 10m" "--follow --until 5m" "--last -1"; do
	opt=${bad%% *}
	# shellcheck disable=SC2086 # word splitting wanted: option and value
	if err=$("$CTL" --socket "$SOCK" observe $bad 2>&1 >/dev/null); then
		fail "observe $bad was accepted"
	else
		rc=$?
	fi
	((rc == 2)) || fail "observe $bad: exit $rc, not 2 (usage)"
	[[ $err == *"${opt}"* || $err == *"--since is after --until"* ]] ||
		fail "observe $bad: the error does not name $opt: $err"
done
ok "filters: --from-ip, --to-ip, --ip, --port, --to-port, --from-port, --type (repeatable), --verdict, --since/--until; bad values exit 2 naming the option"
