#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Drift repair end to end: under a running bpflbd (reconcile_interval = 1 s),
# entries of the pinned service maps are deleted or changed with bpftool, as
# someone else could: the NodePort's frontend in bpflb_svc, a backend in
# bpflb_backends, a Maglev table's entry in bpflb_maglev, an entry inside a
# Maglev table, a slot in bpflb_slots.  Each time the drift check puts back
# exactly what was applied (same ids, same bytes), traffic flows again, the
# log names the map and the key, and bpflb_drift_repairs_total{map=...} and
# bpflb_reconcile_runs_total{reason="drift"} count it.
#
# Usage: drift.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: drift.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"
CTL="$1/tools/bpflbctl/bpflbctl"
[[ -x $CTL ]] || fail "no bpflbctl in $1/tools/bpflbctl (build first)"
command -v bpftool >/dev/null || fail "bpftool is needed to change the pinned maps"

ok() { echo "ok - $*"; }
N1=$(cluster_node_ip 1)

cluster_trap
cluster_up 2
cluster_start_peerd 1 1 web-1
cluster_start_peerd 2 1 web-2

SVC="$CLUSTER_STATE/services.ini"
cat >"$SVC" <<INI
[service web]
type = nodeport
port = http tcp 80 nodeport=30080 target=8080
backend = 10.244.1.2 node=node1
backend = 10.244.2.2 node=node2

[service mg]
type = nodeport
algorithm = maglev
port = dns udp 53 nodeport=30053 target=8081
backend = 10.244.1.2 node=node1
backend = 10.244.2.2 node=node2
INI
BPFLB_DAEMON_EXTRA=$'reconcile_interval = 1\nmetrics_listen = 127.0.0.1:9962' bpflb_config 1 snat "$SVC"
bpflb_config 2 snat "$SVC"
bpflb_start 1
bpflb_start 2
SOCK=$(bpflb_sock 1)
PIN=$(bpflb_pin 1)
LOG=$(bpflb_log 1)
ctl() { "$CTL" --socket "$SOCK" -o json "$@"; }
py() { python3 -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if not isinstance(r,(dict,list)) else json.dumps(r, sort_keys=True))' "$1"; }
# bpftool's byte lists <-> hex words
hexbytes() { python3 -c 'import sys; print(" ".join("0x%02x" % b for b in bytes.fromhex(sys.argv[1])))' "$1"; }
dump() { bpftool -j map dump pinned "$PIN/$1"; }
value_of() { # map key-hex -> value hex ("" when absent)
	bpftool -j map lookup pinned "$PIN/$1" key $(hexbytes "$2") 2>/dev/null |
		python3 -c 'import json,sys; v=json.load(sys.stdin)["value"]; print("".join("%02x" % int(b,16) for b in v) if isinstance(v,list) else "%08x" % v)' || true
}
repairs() { bpflb_metric 1 "bpflb_drift_repairs_total{map=\"$1\"}"; }
u32le() { python3 -c 'import sys; print(int(sys.argv[1]).to_bytes(4,"little").hex())' "$1"; }
nrepaired() { grep -c "drift: .*repaired .*$1" "$LOG" || true; }
wait_repaired() { # map before -> the log has one more repair line naming map
	wait_for "[[ \$(nrepaired $1) -gt $2 ]]" 10 0.1 || fail "no repair of $1 logged: $(tail -5 "$LOG")"
}

peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count 4 >/dev/null || fail "NodePort before any drift"
peerc_in "$CLIENT_NS" udp "$N1" 30053 --count 4 >/dev/null || fail "Maglev NodePort before any drift"
[[ $(bpflb_metric 1 'bpflb_drift_repairs_total{map="bpflb_svc"}') == 0 ]] || fail "repairs before any drift"
wait_for "[[ \$(bpflb_metric 1 'bpflb_reconcile_runs_total{reason=\"drift\",result=\"ok\"}') -ge 1 ]]" 10 0.1 ||
	fail "the drift check does not run every second"
ok "reconcile_interval = 1: the drift check runs and finds nothing to repair"

# 1. the NodePort's frontend deleted from bpflb_svc: node address, port 30080, TCP
KEY=$(python3 -c 'import socket,sys; print((socket.inet_aton(sys.argv[1]) + (30080).to_bytes(2,"big") + bytes([6,0])).hex())' "$N1")
WANT=$(value_of bpflb_svc "$KEY")
[[ -n $WANT ]] || fail "no bpflb_svc entry for $N1:30080/tcp"
n=$(nrepaired bpflb_svc)
bpftool map delete pinned "$PIN/bpflb_svc" key $(hexbytes "$KEY")
wait_repaired bpflb_svc "$n"
[[ $(value_of bpflb_svc "$KEY") == "$WANT" ]] || fail "bpflb_svc entry not restored as it was"
grep -q "repaired bpflb_svc: 1 ($N1:30080/tcp)" "$LOG" || fail "the log does not name the frontend: $(grep drift: "$LOG")"
[[ $(repairs bpflb_svc) -ge 1 ]] || fail "bpflb_drift_repairs_total{map=bpflb_svc} did not count"
peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count 4 >/dev/null || fail "NodePort after the repair"
ok "deleted NodePort frontend in bpflb_svc: restored, logged with its key, counted, traffic flows"

# 2. a backend entry changed: 10.244.2.2:8080 pointed at an address nobody has
ID=$(ctl backend list | py '[b["id"] for b in d if b["addr"]=="10.244.2.2" and b["port"]==8080][0]')
BKEY=$(u32le "$ID")
WANT=$(value_of bpflb_backends "$BKEY")
BAD="0af40909${WANT:8}"   # 10.244.9.9, same port, state and node
n=$(nrepaired bpflb_backends)
bpftool map update pinned "$PIN/bpflb_backends" key $(hexbytes "$BKEY") value $(hexbytes "$BAD")
wait_repaired bpflb_backends "$n"
[[ $(value_of bpflb_backends "$BKEY") == "$WANT" ]] || fail "backend $ID not restored as it was"
grep -q "repaired .*bpflb_backends: 1 ($ID)" "$LOG" || fail "the log does not name backend $ID"
[[ $(repairs bpflb_backends) -ge 1 ]] || fail "bpflb_drift_repairs_total{map=bpflb_backends} did not count"
out=$(peerc_in "$CLIENT_NS" tcp "$N1" 30080 --count 20) || fail "NodePort after the backend repair: $out"
grep -q "^web-2 " <<<"$out" || fail "backend web-2 takes no flows after its repair: $out"
[[ $(ctl backend list | py '[b["id"] for b in d if b["addr"]=="10.244.2.2" and b["port"]==8080][0]') == "$ID" ]] ||
	fail "backend 10.244.2.2:8080 changed its id"
ok "corrupted bpflb_backends entry: restored under the same id, logged, counted, its backend answers again"

# 3. the Maglev service's table removed from bpflb_maglev, then a slot from bpflb_slots
MGID=$(ctl service get mg | py 'd["ports"][0]["id"]')
MKEY=$(u32le "$MGID")
n=$(nrepaired bpflb_maglev)
bpftool map delete pinned "$PIN/bpflb_maglev" key $(hexbytes "$MKEY")
wait_repaired bpflb_maglev "$n"
[[ -n $(value_of bpflb_maglev "$MKEY") ]] || fail "Maglev table of service id $MGID not back"
[[ $(repairs bpflb_maglev) -ge 1 ]] || fail "bpflb_drift_repairs_total{map=bpflb_maglev} did not count"
peerc_in "$CLIENT_NS" udp "$N1" 30053 --count 4 >/dev/null || fail "Maglev NodePort after the table repair"
ok "deleted bpflb_maglev entry: a new table installed, logged, counted, traffic flows"

# 3b. an entry inside the table: pointed at backend id 0 (none)
INNER=$(value_of bpflb_maglev "$MKEY")
INNER=$(python3 -c 'import sys; print(int.from_bytes(bytes.fromhex(sys.argv[1]),"little"))' "$INNER")
WANT=$(bpftool -j map lookup id "$INNER" key 0 0 0 0 | py '"".join("%02x" % int(b,16) for b in d["value"])')
n=$(nrepaired bpflb_maglev)
bpftool map update id "$INNER" key 0 0 0 0 value 0 0 0 0
wait_repaired bpflb_maglev "$n"
NEWINNER=$(python3 -c 'import sys; print(int.from_bytes(bytes.fromhex(sys.argv[1]),"little"))' "$(value_of bpflb_maglev "$MKEY")")
[[ $(bpftool -j map lookup id "$NEWINNER" key 0 0 0 0 | py '"".join("%02x" % int(b,16) for b in d["value"])') == "$WANT" ]] ||
	fail "Maglev table entry 0 not restored"
ok "changed entry inside a Maglev table: the table is compared whole and replaced"

SKEY="$(u32le "$MGID")$(u32le 0)"
WANT=$(value_of bpflb_slots "$SKEY")
n=$(nrepaired bpflb_slots)
bpftool map delete pinned "$PIN/bpflb_slots" key $(hexbytes "$SKEY")
wait_repaired bpflb_slots "$n"
[[ $(value_of bpflb_slots "$SKEY") == "$WANT" ]] || fail "slot 0 of service id $MGID not restored"
grep -q "repaired .*bpflb_slots: 1 ($MGID/0)" "$LOG" || fail "the log does not name slot $MGID/0"
[[ $(repairs bpflb_slots) -ge 1 ]] || fail "bpflb_drift_repairs_total{map=bpflb_slots} did not count"
ok "deleted bpflb_slots entry: restored, logged as SVC/SLOT, counted"

# 4. nothing left to repair: the check is quiet again, the ids did not move
n=$(grep -c "drift: " "$LOG" || true)
runs=$(bpflb_metric 1 'bpflb_reconcile_runs_total{reason="drift",result="ok"}')
wait_for "[[ \$(bpflb_metric 1 'bpflb_reconcile_runs_total{reason=\"drift\",result=\"ok\"}') -ge $((runs + 2)) ]]" 10 0.1 ||
	fail "the drift check stopped running"
[[ $(grep -c "drift: " "$LOG" || true) == "$n" ]] || fail "repairs logged without drift: $(grep drift: "$LOG" | tail -3)"
[[ $(bpflb_metric 1 'bpflb_reconcile_runs_total{reason="drift",result="failed"}') == 0 ]] || fail "failed drift runs"
ok "without drift the check writes nothing and logs nothing"
