#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Restart without loss: long-lived TCP streams through the ingress node (SNAT to
# a remote backend, DNAT to a local one) and a steady rate of new TCP and UDP
# connections, while bpflbd on that node is restarted 10 times, alternating
# SIGTERM and SIGKILL.  Every stream must keep every byte and see no reset,
# every new connection must be answered, conntrack entries and service and
# backend ids must survive, and each new daemon must take over the entry
# programs (tc filters replaced in place, never duplicated) and the stage slots
# (its mode plugin's programs replace the predecessor's).
#
# Usage: restart.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: restart.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"
CTL="$1/tools/bpflbctl/bpflbctl"
[[ -x $CTL ]] || fail "no bpflbctl in $1/tools/bpflbctl (build first)"
command -v bpftool >/dev/null || fail "bpftool is needed to read the stage slots"

ok() { echo "ok - $*"; }
N1=$(cluster_node_ip 1)
RESTARTS=10

cluster_trap
cluster_up 2
cluster_start_peerd 1 1 web-1
cluster_start_peerd 2 1 web-2

SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service web]
type = nodeport
port = http tcp 80 nodeport=30080 target=8080
port = dns udp 53 nodeport=30053 target=8081
backend = 10.244.1.2 node=node1
backend = 10.244.2.2 node=node2

[service remote]
type = nodeport
port = http tcp 80 nodeport=30081 target=8080
backend = 10.244.2.2 node=node2

[service local]
type = nodeport
port = http tcp 80 nodeport=30082 target=8080
backend = 10.244.1.2 node=node1
INI
bpflb_config 1 snat "$SVC"
bpflb_config 2 snat "$SVC"
bpflb_start 1
bpflb_start 2
SOCK=$(bpflb_sock 1)
PIN=$(bpflb_pin 1)
ctl() { "$CTL" --socket "$SOCK" -o json "$@"; }
py() { python3 -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if not isinstance(r,(dict,list)) else json.dumps(r, sort_keys=True))' "$1"; }

# What must survive: ids, and the conntrack entries of the streams.
ids() { ctl service list | py '[(s["name"], p["name"], p["id"]) for s in d for p in s["ports"]]'; ctl backend list | py 'sorted((b["addr"], b["port"], b["id"]) for b in d)'; }
# tc filters of node 1's eth0: "DIRECTION PROGRAM-ID" per filter
filters() {
	local dir
	for dir in ingress egress; do
		in_ns "$(cluster_node_ns 1)" tc filter show dev eth0 "$dir" |
			awk -v d="$dir" '/ id [0-9]+/ {for (i = 1; i < NF; i++) if ($i == "id") print d, $(i + 1)}'
	done
}
# stage slots of node 1: "SLOT=PROGRAM-ID" (bpftool prints keys and values as bytes)
stages() { bpftool -j map dump pinned "$PIN/bpflb_stages" | python3 -c '
import json, sys
n = lambda v: v if isinstance(v, int) else int.from_bytes(bytes(int(b, 16) for b in v), "little")
print(" ".join(sorted("%d=%d" % (n(e["key"]), n(e["value"])) for e in json.load(sys.stdin))))'; }

STOP="$CLUSTER_STATE/stop"
# Streams: two to the remote-only service (SNAT), one to the local-only one (DNAT).
declare -a spid sout
k=0
for port in 30081 30081 30082; do
	sout[k]="$CLUSTER_STATE/stream-$k.out"
	peerc_in "$CLIENT_NS" stream "$N1" "$port" --bytes 100000000 --chunk 1000 --interval-ms 5 \
		--seed $((k + 7)) --timeout 10000 --until "$STOP" >"${sout[k]}" 2>&1 &
	spid[k]=$!
	cluster_track_pid "${spid[k]}"
	k=$((k + 1))
done
# New connections at a steady rate: one TCP and one UDP request after another.
NEWC="$CLUSTER_STATE/new.out"
(
	while [[ ! -e $STOP ]]; do
		peerc_in "$CLIENT_NS" tcp "$N1" 30080 --timeout 3000 || true
		peerc_in "$CLIENT_NS" udp "$N1" 30053 --timeout 3000 || true
		sleep 0.02
	done
) >"$NEWC" 2>&1 &
npid=$!
cluster_track_pid "$npid"

# Wait until all three streams have their conntrack entries.
wait_for "[[ \$(\"$CTL\" --socket \"$SOCK\" -o json ct list --proto tcp | python3 -c '
import json, sys; d = json.load(sys.stdin)
print(len({e[\"src\"] for e in d[\"entries\"] if e[\"kind\"] == \"fwd\" and e[\"dst\"].endswith((\":30081\", \":30082\"))}))') -ge 3 ]]" 10 0.1 ||
	fail "streams did not start: $(cat "${sout[@]}")"
streams_ct() { ctl ct list --proto tcp | py 'sorted((e["src"], e["dst"], e["backend_id"], e["nat"], e["svc_id"]) for e in d["entries"] if e["kind"] == "fwd" and e["dst"].endswith((":30081", ":30082")))'; }
ct0=$(streams_ct)
ids0=$(ids)
[[ $(py 'sum(1 for e in d if e[3])' <<<"$ct0") -ge 2 ]] || fail "remote streams are not SNATed: $ct0"
f0=$(filters)
[[ $(wc -l <<<"$f0") == 2 ]] || fail "expected one ingress and one egress filter: $f0"
s0=$(stages)
[[ -n $s0 ]] || fail "no programs in the stage slots"
log "before: filters $(tr '\n' ' ' <<<"$f0")| stages $s0"

prev_f=$f0 prev_s=$s0
for ((r = 1; r <= RESTARTS; r++)); do
	if ((r % 2)); then sig=TERM; else sig=KILL; fi
	bpflb_stop 1 "$sig"
	bpflb_start 1
	ctl status >/dev/null || fail "restart $r: status does not answer"
	f=$(filters)
	s=$(stages)
	[[ $(wc -l <<<"$f") == 2 ]] || fail "restart $r: filters $f (expected one per direction, replaced in place)"
	[[ $f != "$prev_f" ]] || fail "restart $r: the entry programs were not replaced ($f)"
	[[ $s != "$prev_s" ]] || fail "restart $r: the stage slots still hold the old programs ($s)"
	for id in $(awk '{print $2}' <<<"$prev_f") $(tr ' ' '\n' <<<"$prev_s" | cut -d= -f2); do
		bpftool prog show id "$id" >/dev/null 2>&1 && fail "restart $r: old program $id is still loaded"
	done
	prev_f=$f prev_s=$s
	for k in 0 1 2; do
		kill -0 "${spid[k]}" 2>/dev/null || fail "restart $r: stream $k ended early: $(cat "${sout[k]}")"
	done
done
ok "$RESTARTS restarts of bpflbd on the ingress node (SIGTERM and SIGKILL alternating): entry programs replaced in place, stage slots taken over, old programs gone"

ct1=$(streams_ct)
[[ $ct1 == "$ct0" ]] || fail "stream conntrack entries changed across the restarts: before $ct0, after $ct1"
[[ $(ids) == "$ids0" ]] || fail "service/backend ids changed: before $ids0, after $(ids)"
ok "conntrack entries of the streams (backend, SNAT port) and every service and backend id survived"

touch "$STOP"
for k in 0 1 2; do
	wait "${spid[k]}" || fail "stream $k: $(cat "${sout[k]}")"
	grep -q "^OK bytes=[1-9]" "${sout[k]}" || fail "stream $k: $(cat "${sout[k]}")"
done
wait "$npid" || true
total=$(grep -c . "$NEWC" || true)
bad=$(grep -vc "^web-[12] " "$NEWC" || true)
((bad == 0)) || fail "$bad of $total new connections failed: $(grep -v "^web-[12] " "$NEWC" | sort | uniq -c)"
((total >= 2 * RESTARTS)) || fail "only $total new connections were tried"
ok "3 streams kept every byte with no reset ($(sed -n 's/^OK bytes=//p' "${sout[@]}" | tr '\n' ' ')bytes); all $total new TCP/UDP connections answered"
[[ $(grep -c "running: mode" "$(bpflb_log 1)") == $((RESTARTS + 1)) ]] || fail "unexpected number of starts"

# A restart with a changed file: the new daemon adopts what is pinned, applies
# the file and only then prunes what the file no longer has.
web0=$(ctl service get web | py '[p["id"] for p in d["ports"]]')
bpflb_stop 1 KILL
sed -i '/^\[service local\]/,$d' "$SVC"
bpflb_config 1 snat "$SVC"
bpflb_start 1
[[ $(ctl service list | py 'sorted(s["name"] for s in d)') == '["remote", "web"]' ]] || fail "service list after the changed restart"
[[ $(ctl service get web | py '[p["id"] for p in d["ports"]]') == "$web0" ]] || fail "web ids changed"
peerc_in "$CLIENT_NS" tcp "$N1" 30082 --timeout 300 >/dev/null && fail "a service removed while bpflbd was down still answers"
peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count 3 >/dev/null || fail "web after the changed restart"
ok "restart with a changed file: the removed service is pruned, the others keep their ids and answer"
echo PASS
