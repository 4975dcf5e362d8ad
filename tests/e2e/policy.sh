#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Network policy end to end on a two-node namespace cluster (mode snat,
# features policy), with the documentation's CiliumClusterwideNetworkPolicy
# (allow-control-plane-connectivity) loaded verbatim:
#
#   node1 is labelled node-role.kubernetes.io/control-plane=""; the client
#   namespace (10.99.0.100) is declared the kube-apiserver; an SSH-like server
#   (peerd on tcp 22) runs in each node's namespace; ext (10.99.0.200) is the
#   world.
#
#   1. audit mode ([policy] audit_mode = yes): everything still connects, and
#      what the policy would drop shows up as AUDIT events and counters - the
#      SSH flow to node1 first of all (the documentation's warning).
#   2. enforcing (SIGHUP): the apiserver reaches node1, SSH from the world and
#      from node2 is dropped (DROPPED, reason policy), node2 (not selected) is
#      untouched, node1's own outgoing flows still get their replies, NodePort
#      traffic to workloads is not the host's business.
#   3. a second policy allows SSH again; a broken file is refused with
#      file:line and the running policies stay in force.
#   4. a workload policy judges a NodePort flow on its translated backend.
#
# Usage: policy.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: policy.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"
BPFLBCTL="$1/tools/bpflbctl/bpflbctl"
[[ -x $BPFLBCTL ]] || fail "no bpflbctl in $1/tools/bpflbctl (build first)"
[[ -f $BPFLB_PLUGINS/policy.so ]] || fail "no policy.so in $BPFLB_PLUGINS (build first)"
command -v bpftool >/dev/null || fail "bpftool is needed to read the counters"

ok() { echo "ok - $*"; }
N1=$(cluster_node_ip 1)
N2=$(cluster_node_ip 2)

cluster_trap
cluster_up 2
cluster_start_peerd 1 1 web-1
cluster_start_peerd 2 1 web-2
for i in 1 2; do
	cluster_add_pod "$i" 9 hostnet
	cluster_start_peerd "$i" 9 "ssh-$i" --tcp 22
done
cluster_bg "$EXT_NS" "$CLUSTER_LOGDIR/peerd-ext.log" "$PEERD" --name ext --tcp 9000
wait_for "grep -q '^READY' '$CLUSTER_LOGDIR/peerd-ext.log'" 5 0.05 || fail "peerd in ext did not start"

POLDIR="$CLUSTER_STATE/policies"
mkdir -p "$POLDIR"
# The documentation's policy, byte for byte.
cp "$HERE/../policies/good/allow-control-plane-connectivity.yaml" "$POLDIR/"

SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service web]
type = nodeport
port = http tcp 80 nodeport=30080 target=8080
backend = $(cluster_pod_ip 1 1) node=node1
backend = $(cluster_pod_ip 2 1) node=node2

[service web-local]
type = nodeport
port = http tcp 80 nodeport=30082 target=8080
external_traffic_policy = local
backend = $(cluster_pod_ip 1 1) node=node1
INI

BPFLB_DAEMON_EXTRA=$'features = policy\nmetrics_listen = 127.0.0.1:9962'
declare -a BPFLB_NODE_LABELS
BPFLB_NODE_LABELS[1]="node-role.kubernetes.io/control-plane="
BPFLB_NODE_LABELS[2]="node-role.kubernetes.io/worker="
configure() { # AUDIT_MODE
	local i
	for i in 1 2; do
		bpflb_config "$i" snat "$SVC" "[policy]
dir = $POLDIR
audit_mode = $1
kube_apiserver = $CLIENT_IP
cluster_cidrs = 10.244.0.0/16

[endpoint web-1]
address = $(cluster_pod_ip 1 1)
node = node1
labels = app=web io.kubernetes.pod.namespace=shop

[endpoint web-2]
address = $(cluster_pod_ip 2 1)
node = node2
labels = app=web io.kubernetes.pod.namespace=shop"
	done
}
reload_all() {
	local i
	for i in 1 2; do bpflb_reload "$i" || fail "reload on node $i refused: $(tail -3 "$(bpflb_log "$i")")"; done
}

# connects NS ADDR PORT [peerc args]: one TCP connection answered
connects() { peerc_in "$1" tcp "$2" "$3" --timeout 2000 "${@:4}" >/dev/null; }
# blocked NS ADDR PORT: no answer within 500 ms (a drop, not a refusal)
blocked() {
	local r
	r=$(peerc_in "$1" tcp "$2" "$3" --timeout 500 || true)
	[[ $r == *"ERROR"*"timeout"* ]]
}
# events I VERDICT DST: flow events of node I with that verdict to DST (ADDR:PORT)
events() {
	"$BPFLBCTL" -s "$(bpflb_sock "$1")" -o json observe --verdict "$2" --last 8192 | bpflb_flat_flows |
		grep -i "\"verdict\":\"$2\"" | grep -c "\"dst\":\"$3\"" || true
}
# Sum one __u64 field of a per-CPU map value over the CPUs, from bpftool's JSON
# (raw bytes, or "formatted" when the map carries BTF).  FIELD INDEX: the field's
# name and its position in the struct (policy_structs.h).
_percpu_sum() {
	python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    print(0); sys.exit()
name, idx = sys.argv[1], int(sys.argv[2])
vals = d.get("formatted", d)["values"]
total = 0
for v in vals:
    x = v["value"]
    if isinstance(x, dict):
        total += x[name]
    else:
        b = bytes(int(h, 16) for h in x[idx * 8:idx * 8 + 8])
        total += int.from_bytes(b, "little")
print(total)' "$@"
}
declare -A CNT_IDX=([allowed]=0 [audit]=1 [denied]=2 [reply]=3 [unselected]=4)
# counter I DIR FIELD: bpflb_pol_cnt of node I (DIR 0 ingress, 1 egress)
counter() {
	bpftool -j map lookup pinned "$(bpflb_pin "$1")/bpflb_pol_cnt" key "$2" 0 0 0 |
		_percpu_sum "$3" "${CNT_IDX[$3]}"
}
# rule_count I RULE_ID FIELD: bpflb_pol_rstat of one rule (allowed, audit or denied)
rule_count() {
	local id="$2"
	{ bpftool -j map lookup pinned "$(bpflb_pin "$1")/bpflb_pol_rstat" key \
		$((id & 255)) $(((id >> 8) & 255)) $(((id >> 16) & 255)) $(((id >> 24) & 255)) 2>/dev/null ||
		true; } | _percpu_sum "$3" "${CNT_IDX[$3]}"
}
DOC_DEFAULT_DENY=$((1 << 16)) # POL_RULE_ID(policy 1, default deny)

# --- 1. audit mode ---------------------------------------------------------------
configure yes
for i in 1 2; do bpflb_start "$i"; done
grep -q "allow-control-plane-connectivity (id 1, .*allow-control-plane-connectivity.yaml:1): audit" \
	"$(bpflb_log 1)" || fail "node 1 did not log the policy in audit mode: $(grep policy "$(bpflb_log 1)")"
grep -q "subject host $N1: ingress default deny (audit)" "$(bpflb_log 1)" ||
	fail "node 1's host is not selected in audit mode"
grep -q "subject host $N2: ingress open" "$(bpflb_log 2)" || fail "node 2 (a worker) is selected"

connects "$CLIENT_NS" "$N1" 22 || fail "audit: the apiserver cannot reach SSH on node 1"
connects "$EXT_NS" "$N1" 22 || fail "audit: SSH from the world to node 1 was dropped in audit mode"
connects "$(cluster_node_ns 2)" "$N1" 22 --bind "$N2" || fail "audit: SSH from node 2 to node 1 was dropped"
connects "$EXT_NS" "$N2" 22 || fail "audit: SSH to node 2 failed"
connects "$EXT_NS" "$N1" 30080 || fail "audit: NodePort via node 1 failed"
wait_for "(( \$(events 1 audit $N1:22) >= 2 ))" 5 0.1 ||
	fail "audit: no AUDIT events for SSH to node 1: $("$BPFLBCTL" -s "$(bpflb_sock 1)" observe --last 20)"
(($(events 1 audit "$N1:22") >= 2)) || fail "audit: expected AUDIT events from ext and node 2"
(($(events 2 audit "$N2:22") == 0)) || fail "audit: node 2 reported AUDIT although not selected"
(($(counter 1 0 audit) >= 2)) || fail "audit: ingress audit counter of node 1 is $(counter 1 0 audit)"
(($(counter 1 0 denied) == 0)) || fail "audit: node 1 dropped $(counter 1 0 denied) packets in audit mode"
(($(rule_count 1 $DOC_DEFAULT_DENY audit) >= 2)) ||
	fail "audit: per-rule counter of the policy's default deny: $(rule_count 1 $DOC_DEFAULT_DENY audit)"
(($(counter 1 0 allowed) >= 1)) || fail "audit: the apiserver's flow was not counted as allowed"
m=$(bpflb_metric 1 'bpflb_policy_packets_total{direction="ingress",verdict="audit"}')
((${m:-0} > 0)) || fail "audit: metric bpflb_policy_packets_total{verdict=audit} on node 1 is '${m}'"
ok "audit mode: SSH to the control-plane node connects from everywhere and shows up as AUDIT (events, counters, metrics); nothing dropped"

# --- 2. enforcing ------------------------------------------------------------------
configure no
reload_all
grep -q "allow-control-plane-connectivity (id 1, .*): enforcing" "$(bpflb_log 1)" ||
	fail "node 1 did not switch the policy to enforcing"
connects "$CLIENT_NS" "$N1" 22 || fail "enforce: the apiserver cannot reach node 1"
connects "$CLIENT_NS" "$N1" 22 --count 3 || fail "enforce: the apiserver's repeated connections failed"
blocked "$EXT_NS" "$N1" 22 || fail "enforce: SSH from the world to node 1 was not dropped"
blocked "$(cluster_node_ns 2)" "$N1" 22 || fail "enforce: SSH from node 2 (remote-node) to node 1 was not dropped"
connects "$EXT_NS" "$N2" 22 || fail "enforce: SSH to node 2 (not selected) failed"
wait_for "(( \$(events 1 dropped $N1:22) >= 2 ))" 5 0.1 || fail "enforce: no DROPPED events for SSH to node 1"
"$BPFLBCTL" -s "$(bpflb_sock 1)" -o json observe --verdict dropped --last 100 | bpflb_flat_flows | grep "\"dst\":\"$N1:22\"" |
	grep >/dev/null -i '"reason":"policy"' || fail "enforce: the drops are not reported with reason policy"
(($(counter 1 0 denied) >= 2)) || fail "enforce: ingress denied counter of node 1 is $(counter 1 0 denied)"
m=$(bpflb_metric 1 'bpflb_policy_packets_total{direction="ingress",verdict="denied"}')
((${m:-0} >= 2)) || fail "enforce: metric bpflb_policy_packets_total{verdict=denied} on node 1 is '${m}'"
m=$(bpflb_metric 1 'bpflb_drops_total{reason="policy"}')
((${m:-0} >= 2)) || fail "enforce: metric bpflb_drops_total{reason=policy} on node 1 is '${m}'"
# Replies of node 1's own flows come back in although ingress is default deny.
peerc_in "$(cluster_node_ns 1)" tcp "$EXT_IP" 9000 --bind "$N1" --count 3 >/dev/null ||
	fail "enforce: node 1's own connection to the world got no reply"
(($(counter 1 0 reply) >= 1)) || fail "enforce: no replies counted on node 1"
# Load-balanced traffic to workloads is judged on the backend, which no policy selects.
connects "$EXT_NS" "$N1" 30080 --count 6 || fail "enforce: NodePort via node 1 failed"
ok "enforcing: the kube-apiserver reaches node 1, SSH from world and node 2 is dropped (reason policy), node 2 and NodePorts untouched, replies pass"

# bpflbctl policy list|get: the loaded policies and what they resolved to.
"$BPFLBCTL" -s "$(bpflb_sock 1)" -o json policy list | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["audit_mode"] is False, d
names = [p["name"] for p in d["policies"]]
assert "allow-control-plane-connectivity" in names, names
assert any(s["subject"] == "host" for s in d["subjects"]), d["subjects"]' ||
	fail "bpflbctl policy list does not show the policy and the host subject"
"$BPFLBCTL" -s "$(bpflb_sock 1)" -o json policy get allow-control-plane-connectivity |
	grep >/dev/null "$CLIENT_IP" || fail "bpflbctl policy get does not show the kube-apiserver address it resolved"
"$BPFLBCTL" -s "$(bpflb_sock 1)" policy get no-such-policy 2>/dev/null &&
	fail "bpflbctl policy get of an unknown policy succeeded"
"$BPFLBCTL" -s "$(bpflb_sock 1)" -o json status | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["features"] == ["policy"] and [x["name"] for x in d["devices"]] == ["eth0"], d' ||
	fail "status: features is not an array like devices"
"$BPFLBCTL" -s "$(bpflb_sock 1)" status | grep >/dev/null -E '^features: +policy$' || fail "status table: features"
ok "bpflbctl policy list|get show the policies, subjects and resolved addresses; status features is an array"

# --- 3. an allow for SSH; a broken file keeps the running set -------------------------
cat >"$POLDIR/ssh.yaml" <<'YAML'
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: allow-ssh
spec:
  nodeSelector: {}
  ingress:
  - fromEntities: [world, cluster]
    toPorts:
    - ports:
      - port: "22"
        protocol: TCP
YAML
reload_all
connects "$EXT_NS" "$N1" 22 || fail "allow-ssh: SSH from the world to node 1 still dropped"
connects "$(cluster_node_ns 2)" "$N1" 22 --bind "$N2" || fail "allow-ssh: SSH from node 2 still dropped"
blocked "$EXT_NS" "$N1" 9999 || fail "allow-ssh: another port of node 1 is open to the world"

cat >"$POLDIR/zz-broken.yaml" <<'YAML'
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: broken
spec:
  nodeSelector: {}
  ingress:
  - fromEntities: [world]
    toPorts:
    - ports:
      - port: "22"
      rules:
        http: [{method: GET}]
YAML
bpflb_reload 1 && fail "a policy with L7 rules was accepted"
grep -q "zz-broken.yaml:12: spec.ingress\[0\].toPorts\[0\].rules: L7 rules are not supported" "$(bpflb_log 1)" ||
	fail "the refused reload does not name file:line:field: $(grep 'reload failed' "$(bpflb_log 1)" | tail -1)"
connects "$EXT_NS" "$N1" 22 || fail "after the refused reload: SSH (allow-ssh) no longer passes"
blocked "$EXT_NS" "$N1" 9999 || fail "after the refused reload: the default deny is gone"
rm -f "$POLDIR/zz-broken.yaml"
ok "a second policy opens SSH; a broken file is refused with file:line:field and the running policies stay"

# Issue 13 item 8: 70k nested lists kept a reload busy for 14 s; now the depth
# limit refuses them at once, with the file and line.
python3 -c 'import sys; n = 70000; sys.stdout.write(
    "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: deep\n"
    "spec:\n  description: " + "[" * n + "]" * n + "\n")' >"$POLDIR/zz-deep.yaml"
bpflb_reload 1 && fail "a policy nested 70000 deep was accepted"
grep -q "zz-deep.yaml:6: nested deeper than 32 lists and mappings" "$(bpflb_log 1)" ||
	fail "the deep file's refusal does not name file:line: $(grep 'reload failed' "$(bpflb_log 1)" | tail -1)"
connects "$EXT_NS" "$N1" 22 || fail "after the deep file: SSH (allow-ssh) no longer passes"
blocked "$EXT_NS" "$N1" 9999 || fail "after the deep file: the default deny is gone"
rm -f "$POLDIR/zz-deep.yaml"
ok "a policy file nested 70000 deep is refused at once with file:line; the running policies stay"

# --- 4. a workload policy, judged on the translated backend ----------------------------
cat >"$POLDIR/web.yaml" <<'YAML'
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: web-from-cluster
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEntities: [cluster]
YAML
reload_all
grep -q "subject web-1 $(cluster_pod_ip 1 1): ingress default deny" "$(bpflb_log 1)" ||
	fail "web-1 is not selected on node 1"
# ETP=Local keeps the client address: the world reaching web-1 through NodePort is denied...
blocked "$EXT_NS" "$N1" 30082 || fail "workload: the world reached web-1 through NodePort 30082"
wait_for "(( \$(events 1 dropped $(cluster_pod_ip 1 1):8080) >= 1 ))" 5 0.1 ||
	fail "workload: the drop at web-1 was not reported on its translated address"
# ...while node 2 (remote-node, part of the cluster entity) gets through.
connects "$(cluster_node_ns 2)" "$N1" 30082 --bind "$N2" || fail "workload: node 2 could not reach web-1"
ok "workload policy: NodePort traffic is judged on its translated backend (world dropped, cluster allowed)"
echo PASS
