#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Operating bpflbd on a two-node namespace cluster: every bpflbctl command with
# -o json (parsed here), the control protocol's error replies, the socket's
# permissions, flow observation (forwarded and dropped flows, a UDP flood that
# the datapath rate limit holds back), and the Prometheus endpoint.
#
# Usage: ops.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: ops.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"
CTL="$1/tools/bpflbctl/bpflbctl"
[[ -x $CTL ]] || fail "no bpflbctl in $1/tools/bpflbctl (build first)"

ok() { echo "ok - $*"; }
MGIP=10.99.1.11
N1=$(cluster_node_ip 1)

cluster_trap
cluster_up 2
# Others may traverse the state directory, so that the socket's own mode is
# what keeps them out (checked below).
chmod 0711 "$CLUSTER_STATE"
cluster_start_peerd 1 1 web-1
cluster_start_peerd 2 1 web-2

SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[lb]
events_per_sec = 50

[service web]
type = nodeport
port = http tcp 80 nodeport=30080 target=8080
port = dns udp 53 nodeport=30053 target=8081
backend = 10.244.1.2 node=node1
backend = 10.244.2.2 node=node2

[service mg]
type = loadbalancer
algorithm = maglev
port = dns udp 53 target=8081
lb_ips = $MGIP
backend = 10.244.1.2 node=node1
backend = 10.244.2.2 node=node2

[service empty]
type = nodeport
port = http tcp 80 nodeport=30090
port = dns udp 53 nodeport=30091
INI
BPFLB_DAEMON_EXTRA="metrics_listen = 127.0.0.1:9962" bpflb_config 1 snat "$SVC"
bpflb_config 2 snat "$SVC"
bpflb_start 1
bpflb_start 2
SOCK=$(bpflb_sock 1)

# ctl ARGS...: bpflbctl -o json against node 1; the JSON on stdout
ctl() { "$CTL" --socket "$SOCK" -o json "$@"; }
# events ARGS...: the flows of observe -o json, flat (bpflb_flat_flows)
events() { ctl observe "$@" | bpflb_flat_flows; }
# table_has REGEX ARGS...: the table output of bpflbctl ARGS has a line matching REGEX
table_has() {
	local re="$1" out
	shift
	out=$("$CTL" --socket "$SOCK" "$@") && grep -q "$re" <<<"$out"
}
# jq-like: py EXPR < json  (EXPR sees the parsed document as d)
py() { python3 -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$1"; }
# expect_rc RC CMD...: run CMD, check its exit status, keep its stderr in $ERR
expect_rc() {
	local want="$1" rc=0
	shift
	ERR=$("$@" 2>&1 >/dev/null) || rc=$?
	[[ $rc == "$want" ]] || fail "'$*' exited $rc, expected $want: $ERR"
}

# 1. status, plugins, services, backends
st=$(ctl status)
[[ $(py 'd["mode"]' <<<"$st") == snat ]] || fail "status mode: $st"
[[ $(py 'd["node"]' <<<"$st") == node1 ]] || fail "status node: $st"
[[ $(py '[x["name"] for x in d["devices"]]' <<<"$st") == '["eth0"]' ]] || fail "status devices: $st"
[[ $(py 'd["features"]' <<<"$st") == '[]' ]] || fail "status features (an array, as devices): $st"
# the datapath's flow event counts are pinned (since the pin), the daemon's since its start
[[ $(py 'd["flow_events"]["received_since"] == d["started_at"] and d["flow_events"]["sent_since"] is not None' <<<"$st") == True ]] ||
	fail "status flow_events: which counts are since-start: $st"
[[ $(py '[p["state"] for p in d["plugins"] if p["name"]=="snat"][0]' <<<"$st") == attached ]] ||
	fail "status: snat not attached: $st"
[[ $(py 'd["config"]["path"]' <<<"$st") == "$(bpflb_ini 1)" ]] || fail "status config path: $st"
[[ $(py 'd["config"]["loaded_at"] is not None and d["reloads"]["ok"]==0 and d["reloads"]["last_error"] is None' <<<"$st") == True ]] ||
	fail "status config/reloads: $st"
table_has "^mode: *snat" status || fail "status table"
table_has "^features: *-$" status || fail "status table: features"
"$CTL" -c "$(bpflb_ini 1)" status >/dev/null || fail "status with -c CONFIG"
pl=$(ctl plugin list)
[[ $(py '[p["version"] for p in d if p["name"]=="snat"][0]' <<<"$pl") != "" ]] || fail "plugin list: $pl"
sl=$(ctl service list)
[[ $(py 'sorted(s["name"] for s in d)' <<<"$sl") == '["empty", "mg", "web"]' ]] || fail "service list: $sl"
web=$(ctl service get web)
[[ $(py '"%s:30080" % "'"$N1"'" in d["ports"][0]["frontends"] and d["ports"][0]["id"] > 0' <<<"$web") == True ]] ||
	fail "service get web: $web"
webid=$(py 'd["ports"][0]["id"]' <<<"$web")
bl=$(ctl backend list)
[[ $(py 'sorted("%s:%d" % (b["addr"], b["port"]) for b in d)' <<<"$bl") == '["10.244.1.2:8080", "10.244.1.2:8081", "10.244.2.2:8080", "10.244.2.2:8081"]' ]] ||
	fail "backend list: $bl"
table_has "^web " service list || fail "service list table"
ok "status, plugin list, service list|get, backend list (-o json and tables)"

# 2. traffic: observe shows forwarded and dropped flows with their fields
out=$(peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count 10) || fail "NodePort via node 1: $out"
peerc_in "$CLIENT_NS" udp "$N1" 30053 --count 4 >/dev/null || fail "UDP NodePort"
peerc_in "$CLIENT_NS" tcp "$N1" 30090 --timeout 300 >/dev/null && fail "no-backend service answered"
ev=$(events --last 100)
python3 - "$ev" "$CLIENT_IP" "$N1" <<'EOF' || fail "observe: $ev"
import json, sys
evs = [e for e in (json.loads(l) for l in sys.argv[1].splitlines()) if "stats" not in e]
client, node = sys.argv[2], sys.argv[3]
fwd = [e for e in evs if e["verdict"] == "FORWARDED" and e["service"] == "web/http"]
drop = [e for e in evs if e["verdict"] == "DROPPED" and e["service"] == "empty/http"]
assert len(fwd) >= 10, "forwarded: %d" % len(fwd)
for e in fwd:
    assert e["src"].startswith(client + ":"), e
    assert e["dst"] == node + ":30080", e
    assert e["backend"] in ("10.244.1.2:8080", "10.244.2.2:8080"), e
    assert e["translation"] == ("local" if e["backend"].startswith("10.244.1.") else "snat"), e
    assert e["node"] == "node1" and e["proto"] == "tcp" and e["time"].endswith("Z"), e
assert {e["backend"] for e in fwd} == {"10.244.1.2:8080", "10.244.2.2:8080"}, fwd
assert drop and all(e["reason"] == "no_backend" and e["backend"] is None for e in drop), drop
assert any(e["service"] == "web/dns" and e["proto"] == "udp" for e in evs), evs
EOF
n=$(events --verdict DROPPED --last 100 | wc -l)
[[ $(events --verdict DROPPED --last 100 | python3 -c '
import json, sys; print({json.loads(l)["verdict"] for l in sys.stdin})') == "{'DROPPED'}" ]] || fail "observe --verdict"
[[ $(events --service web/http --proto tcp --addr "$CLIENT_IP" --last 3 | python3 -c '
import json, sys; e = [json.loads(l) for l in sys.stdin]; print(len(e), {x["service"] for x in e}, {x["proto"] for x in e})') == "3 {'web/http'} {'tcp'}" ]] ||
	fail "observe filters"
table_has "FORWARDED\|DROPPED" observe --last 5 || fail "observe table"
# --follow streams new events as they come
FOLLOW="$CLUSTER_STATE/follow.out"
"$CTL" --socket "$SOCK" -o json observe --follow --service web >"$FOLLOW" 2>&1 &
fpid=$!
cluster_track_pid "$fpid"
wait_for "[[ \$(\"$CTL\" --socket \"$SOCK\" -o json status | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"flow_events\"][\"subscribers\"])') == 1 ]]" 10 0.1 ||
	fail "observe --follow did not subscribe"
peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count 3 >/dev/null || fail "traffic while following"
wait_for "[[ \$(grep -c '\"web/http\"' '$FOLLOW') -ge 3 ]]" 10 0.1 || fail "observe --follow: $(cat "$FOLLOW")"
cluster_kill_pid "$fpid"
ok "observe: forwarded (backend, translation) and dropped (reason) flows, filters, --follow ($n drops seen)"

# 3. conntrack, SNAT mappings, Maglev
ct=$(ctl ct list --service web)
[[ $(py 'd["total"] > 0 and all(e["service"] and e["service"].startswith("web/") for e in d["entries"])' <<<"$ct") == True ]] ||
	fail "ct list --service web: $ct"
[[ $(ctl ct list --proto udp | py 'all(e["proto"]=="udp" for e in d["entries"]) and d["total"]>0') == True ]] || fail "ct list --proto udp"
[[ $(ctl ct list --addr 10.244.2.2 --limit 1 | py 'len(d["entries"])==1 and d["total"]>=1') == True ]] || fail "ct list --addr --limit"
nat=$(ctl nat list --service web/http)
[[ $(py 'd["total"] > 0 and all(e["nat"].startswith("'"$N1"':") and e["backend"].startswith("10.244.2.2:") for e in d["entries"])' <<<"$nat") == True ]] ||
	fail "nat list: $nat"
table_has "10.244.2.2:8080" nat list || fail "nat list table"
# status counts conntrack from a snapshot taken off the loop: after the flows
# above it agrees with the map (both halves of every flow), and says its age
ct_agree() {
	local all st
	all=$(ctl ct list --limit 0 | py 'd["total"]')
	st=$(ctl status)
	[[ $(py 'd["conntrack"]["entries"]' <<<"$st") == "$all" &&
		$(py 'd["conntrack"]["snapshot_age_ms"] is not None and d["conntrack"]["tcp"] + d["conntrack"]["udp"] + d["conntrack"]["other"] == d["conntrack"]["entries"]' <<<"$st") == True ]]
}
wait_for ct_agree 10 0.2 || fail "status conntrack $(ctl status | py 'd["conntrack"]') disagrees with ct list ($(ctl ct list --limit 0 | py 'd["total"]'))"
cluster_route_lbip "$MGIP" 1
peerc_in "$CLIENT_NS" udp "$MGIP" 53 --count 4 >/dev/null || fail "maglev service"
mg=$(ctl maglev show mg)
[[ $(py 'd["size"]==16381 and len(d["backends"])==2 and d["empty"]==0 and sum(b["entries"] for b in d["backends"])==16381 and all(0.3 < b["share"] < 0.7 for b in d["backends"])' <<<"$mg") == True ]] ||
	fail "maglev show: $mg"
table_has "%" maglev show mg/dns || fail "maglev show table"
expect_rc 1 "$CTL" --socket "$SOCK" maglev show web
ok "ct list (service, proto, addr, limit), nat list, maglev show"

# 4. runtime changes (the overlay): backend state, service set/delete, kept by a reload until cleared
ctl backend set-state 10.244.2.2:8080 maintenance >/dev/null || fail "set-state maintenance"
[[ $(ctl backend list | py '[b["state"] for b in d if b["addr"]=="10.244.2.2" and b["port"]==8080][0]') == maintenance ]] ||
	fail "backend state after set-state"
out=$(peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count 8) || fail "NodePort with a backend in maintenance: $out"
grep -q "^web-2 " <<<"$out" && fail "a backend in maintenance got new flows: $out"
ctl backend set-state 10.244.2.2:8080 configured >/dev/null || fail "set-state configured"
[[ $(ctl backend list | py '[b["state"] for b in d if b["addr"]=="10.244.2.2" and b["port"]==8080][0]') == active ]] ||
	fail "backend state after configured"
# "configured" on the address alone undoes its per-port overrides too
ctl backend set-state 10.244.2.2:8080 maintenance >/dev/null || fail "set-state maintenance (2)"
ctl backend set-state 10.244.2.2 configured >/dev/null || fail "set-state ADDR configured"
[[ $(ctl backend list | py '[b["state"] for b in d if b["addr"]=="10.244.2.2" and b["port"]==8080][0]') == active ]] ||
	fail "set-state ADDR configured left the ADDR:PORT override: $(ctl overlay list)"
[[ $(ctl overlay list | py '[b for b in d["backends"] if b["addr"]=="10.244.2.2"]') == '[]' ]] ||
	fail "overlay keeps an override of 10.244.2.2 after set-state ADDR configured: $(ctl overlay list)"
ctl backend set-state 10.244.2.2 configured >/dev/null || fail "set-state configured of nothing is not a no-op"
expect_rc 1 "$CTL" --socket "$SOCK" backend set-state 10.9.9.9 maintenance
[[ $ERR == *"no backend"* ]] || fail "set-state unknown backend: $ERR"
expect_rc 2 "$CTL" --socket "$SOCK" backend set-state 10.244.2.2 sleeping-maybe-not-a-state extra

ctl service set extra type=nodeport 'port=http tcp 80 nodeport=30100 target=8080' \
	'backend=10.244.2.2 node=node2' >/dev/null || fail "service set"
out=$(peerc_in "$CLIENT_NS" tcp "$N1" 30100 --count 2) || fail "service added at runtime: $out"
[[ $(ctl service get extra | py 'd["origin"]') == overlay ]] || fail "overlay service origin"
[[ $(ctl status | py 'd["runtime"]["services"]') == '[{"name": "extra", "change": "set"}]' ]] || fail "status runtime"
expect_rc 1 "$CTL" --socket "$SOCK" service set bad type=nodeport 'port=http tcp 80 nodeport=30080'
[[ $ERR == *"30080"* ]] || fail "clashing runtime service: $ERR"
ctl service delete extra >/dev/null || fail "service delete"
peerc_in "$CLIENT_NS" tcp "$N1" 30100 --timeout 300 >/dev/null && fail "deleted service answers"
expect_rc 1 "$CTL" --socket "$SOCK" service delete nosuch
ctl service set extra type=nodeport 'port=http tcp 80 nodeport=30100 target=8080' \
	'backend=10.244.1.2 node=node1' >/dev/null || fail "service set again"
rl=$(ctl reload)
[[ $(py 'd["mode"]' <<<"$rl") == snat ]] || fail "reload: $rl"
[[ $(ctl service get extra | py 'd["origin"]') == overlay ]] || fail "overlay service gone after a reload"
ctl overlay clear service extra >/dev/null || fail "overlay clear service extra"
expect_rc 1 "$CTL" --socket "$SOCK" service get extra
[[ $(ctl status | py 'd["reloads"]["ok"]') == 1 ]] || fail "reload counter"
printf '[service broken]\ntype = nodeport\nport = http tcp 80 nodeport=99999\n' >>"$(bpflb_ini 1)"
expect_rc 1 "$CTL" --socket "$SOCK" reload
[[ $ERR == *"node1.ini"*"nodeport"* ]] || fail "failed reload message: $ERR"
[[ $(ctl status | py 'd["reloads"]["failed"] == 1 and "99999" in d["reloads"]["last_error"]') == True ]] ||
	fail "failed reload in status"
BPFLB_DAEMON_EXTRA="metrics_listen = 127.0.0.1:9962" bpflb_config 1 snat "$SVC"
ok "backend set-state, service set|delete (overlay), reload keeps them, overlay clear (ok, and failed with file:line)"

# 5. ct flush
fl=$(ctl ct flush --service web)
[[ $(py 'd["deleted"] > 0' <<<"$fl") == True ]] || fail "ct flush: $fl"
[[ $(ctl ct list --service web | py 'd["total"]') == 0 ]] || fail "entries left after ct flush"
peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count 2 >/dev/null || fail "new flows after ct flush"
ok "ct flush --service web"

# 6. the protocol: error replies change nothing, the daemon keeps answering
raw() { python3 - "$SOCK" "$@" <<'EOF'
import socket, sys, json
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
f = s.makefile("rb")
for req in sys.argv[2:]:
    # BIG: one line over the 64 KiB limit
    data = b"{" + b" " * 70000 + b"\n" if req == "BIG" else req.encode() + b"\n"
    s.sendall(data)
    line = f.readline()
    print(json.dumps(json.loads(line)) if line else "EOF")
EOF
}
out=$(raw 'not json' '[1,2]' '{"cmd":42}' '{"cmd":"nosuch"}' '{"cmd":"service.get","args":{"name":7}}' \
	'{"cmd":"status","args":[]}' '{"cmd":"status"} trailing' '{"cmd":"service.get","args":{"name":"web"},"id":"x1"}' BIG)
python3 - "$out" <<'EOF' || fail "error replies: $out"
import json, sys
r = [json.loads(l) if l != "EOF" else None for l in sys.argv[1].splitlines()]
assert len(r) == 9, r
for x in r[:7]:
    assert x["ok"] is False and x["error"], x
assert "unknown command" in r[3]["error"], r[3]
assert r[7]["ok"] is True and r[7]["id"] == "x1" and r[7]["data"]["name"] == "web", r[7]
assert r[8]["ok"] is False and "65536" in r[8]["error"], r[8]
EOF
[[ $(ctl status | py 'd["mode"]') == snat ]] || fail "daemon after bad requests"
[[ $(ctl service list | py 'len(d)') == 3 ]] || fail "services changed by bad requests"
expect_rc 2 "$CTL" --socket "$SOCK" frobnicate
expect_rc 2 "$CTL" --socket "$SOCK" ct list --bogus
expect_rc 3 "$CTL" --socket "$CLUSTER_STATE/none.sock" status
[[ $ERR == *"cannot connect"* ]] || fail "connect error message: $ERR"
ok "malformed, unknown and oversized requests get error replies; exit codes 1/2/3"

# 7. the socket is root's only; control_group opens it to one group
[[ $(stat -c %a "$SOCK") == 600 ]] || fail "socket mode $(stat -c %a "$SOCK")"
expect_rc 3 setpriv --reuid=nobody --regid=nogroup --clear-groups "$CTL" --socket "$SOCK" status
[[ $ERR == *"ermission denied"* ]] || fail "nobody: $ERR"
bpflb_stop 2
BPFLB_DAEMON_EXTRA="control_group = nogroup" bpflb_config 2 snat "$SVC"
bpflb_start 2
[[ $(stat -c '%a %G' "$(bpflb_sock 2)") == "660 nogroup" ]] || fail "group socket: $(stat -c '%a %G' "$(bpflb_sock 2)")"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$CTL" --socket "$(bpflb_sock 2)" status >/dev/null ||
	fail "a member of control_group cannot connect"
expect_rc 3 setpriv --reuid=nobody --regid=54321 --clear-groups "$CTL" --socket "$(bpflb_sock 2)" status
ok "socket 0600 (nobody is refused); control_group makes it 0660 for that group only"
rc=0
out=$(timeout 20 nsenter --net="/run/netns/$(cluster_node_ns 1)" -- "$BPFLBD" --config "$(bpflb_ini 1)" 2>&1) || rc=$?
[[ $rc == 1 && $out == *"bpffs_root $(bpflb_pin 1) is in use by bpflbd pid $(bpflb_pid 1)"* ]] ||
	fail "a second bpflbd on node 1: rc $rc: $out"
[[ $(ctl status | py 'd["pid"]') == "$(bpflb_pid 1)" ]] || fail "the first bpflbd is not serving any more"
ok "a second bpflbd for the same instance is refused before it touches the datapath"

# 8. a UDP flood to a service without backends: the daemon keeps answering,
#    the datapath holds events back (suppressed), counters move
sup0=$(ctl status | py 'd["flow_events"]["suppressed"]')
in_ns "$CLIENT_NS" python3 - "$N1" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + 4
n = 0
while time.time() < end and n < 400000:
    for p in range(20):
        s.sendto(b"x" * 32, (sys.argv[1], 30091))
    n += 20
EOF
flood=$!
cluster_track_pid "$flood"
answered=0
while kill -0 "$flood" 2>/dev/null; do
	timeout 10 "$CTL" --socket "$SOCK" -o json status >/dev/null || fail "status failed during the flood"
	answered=$((answered + 1))
	sleep 0.2
done
wait "$flood" || true
((answered >= 3)) || fail "status answered only $answered times during the flood"
st=$(ctl status)
[[ $(py 'd["flow_events"]["suppressed"] > '"$sup0"' and d["flow_events"]["received"] > 0' <<<"$st") == True ]] ||
	fail "suppressed events did not move: $st"
out=$("$CTL" --socket "$SOCK" observe --last 5 2>&1) || fail "observe after the flood: $out"
grep -q "not shown: [1-9][0-9]* suppressed" <<<"$out" || fail "observe does not report suppressed events: $out"
ok "UDP flood: status answered $answered times; $(py 'd["flow_events"]["suppressed"]' <<<"$st") events suppressed by the datapath"

# 9. metrics over HTTP
scrape() { in_ns "$(cluster_node_ns 1)" python3 -c '
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen("http://127.0.0.1:9962" + sys.argv[1], timeout=5); print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)' "$1"; }
metric() { awk -v k="$1" '$1 == k {print $2}'; }
m1=$(scrape /metrics)
[[ $(head -1 <<<"$m1") == 200 ]] || fail "GET /metrics: $m1"
f1=$(metric 'bpflb_service_packets_total{service="web",port="http",verdict="forwarded"}' <<<"$m1")
[[ -n $f1 ]] || fail "no web forwarded counter: $m1"
for k in 'bpflb_drops_total{reason="no_backend"}' bpflb_flow_events_suppressed_total bpflb_conntrack_entries \
	'bpflb_map_fill_ratio{map="ct"}' 'bpflb_reloads_total{result="ok"}' 'bpflb_reloads_total{result="failed"}' \
	bpflb_snat_port_exhausted_total bpflb_conntrack_gc_runs_total bpflb_flow_events_lost_total; do
	[[ -n $(metric "$k" <<<"$m1") ]] || fail "metric $k missing"
done
(($(metric 'bpflb_drops_total{reason="no_backend"}' <<<"$m1") > 0)) || fail "no_backend drops not counted"
grep -q '^bpflb_plugin_info{plugin="snat",.*state="attached"} 1' <<<"$m1" || fail "plugin_info"
peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count 5 >/dev/null || fail "traffic for metrics"
m2=$(scrape /metrics)
f2=$(metric 'bpflb_service_packets_total{service="web",port="http",verdict="forwarded"}' <<<"$m2")
((f2 > f1)) || fail "forwarded packets did not move: $f1 -> $f2"
b1=$(metric 'bpflb_service_bytes_total{service="web",port="http",verdict="forwarded"}' <<<"$m1")
b2=$(metric 'bpflb_service_bytes_total{service="web",port="http",verdict="forwarded"}' <<<"$m2")
((b2 > b1)) || fail "forwarded bytes did not move: $b1 -> $b2"
[[ $(scrape /nope) == 404 ]] || fail "unknown path"
ok "metrics: counters per service move with traffic ($f1 -> $f2 packets), drops by reason, map fill, reloads"
echo PASS
