#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The overlay and the one writer, end to end on a two-node namespace cluster:
#   - `service set`, `service delete` and `backend set-state` are kept in
#     <state_dir>/overlay.json (0600) and survive a reload (SIGHUP) and a
#     restart, checked with real traffic; `service get` says "overlay";
#   - `overlay list` shows them, `overlay clear` returns to the file (one
#     service, one backend, everything);
#   - an overlay entry that no longer fits the file fails the reload with
#     its name, and the old state keeps serving;
#   - a corrupt or group-writable state file stops a start with the file and
#     the field, and nothing else changed;
#   - a second bpflbd on the same bpffs_root is refused, naming the first's
#     pid; --cleanup is refused while it runs; after it stops, another starts.
#
# Usage: overlay.sh BUILD_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/cluster.sh
. "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/bpflb.sh
. "$HERE/../lib/bpflb.sh"
cluster_find_tools "${1:?usage: overlay.sh BUILD_DIR}/tests/tools"
bpflb_find "$1"
CTL="$1/tools/bpflbctl/bpflbctl"
[[ -x $CTL ]] || fail "no bpflbctl in $1/tools/bpflbctl (build first)"

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

[service old]
type = nodeport
port = http tcp 80 nodeport=30081 target=8080
backend = 10.244.2.2 node=node2
INI
bpflb_config 1 snat "$SVC"
bpflb_config 2 snat "$SVC"
bpflb_start 1
bpflb_start 2
SOCK=$(bpflb_sock 1)
LOG=$(bpflb_log 1)
STATE_FILE=$CLUSTER_STATE/node1.state/overlay.json
ctl() { "$CTL" --socket "$SOCK" -o json "$@"; }
py() { python3 -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if not isinstance(r,(dict,list)) else json.dumps(r, sort_keys=True))' "$1"; }
answers() { peerc_in "$CLIENT_NS" tcp "$N1" "$1" --count "${2:-4}"; }
refused() { ! peerc_in "$CLIENT_NS" tcp "$N1" "$1" --timeout 300 >/dev/null 2>&1; }
be_state() { ctl backend list | py '[b["state"] for b in d if b["addr"]=="10.244.2.2" and b["port"]==8080][0]'; }
check_overlay() { # what must hold with the overlay in place
	out=$(answers 30100) || fail "$1: overlay service on 30100: $out"
	grep -q "^web-1 " <<<"$out" || fail "$1: 30100 not answered by its overlay backend web-1: $out"
	refused 30081 || fail "$1: service 'old', deleted by the overlay, answers"
	[[ $(be_state) == maintenance ]] || fail "$1: backend 10.244.2.2:8080 is $(be_state), not maintenance"
	out=$(answers 30080 12) || fail "$1: 30080: $out"
	grep -q "^web-2 " <<<"$out" && fail "$1: a backend in maintenance got new flows: $out"
	[[ $(ctl service get extra | py 'd["origin"]') == overlay ]] || fail "$1: origin of 'extra'"
	[[ $(ctl service get web | py 'd["origin"]') == config ]] || fail "$1: origin of 'web'"
	true
}

# 1. three edits, kept in the state file
[[ ! -e $STATE_FILE ]] || fail "a state file before any edit"
ctl service set extra type=nodeport 'port=http tcp 80 nodeport=30100 target=8080' \
	'backend=10.244.1.2 node=node1' >/dev/null || fail "service set"
ctl service delete old >/dev/null || fail "service delete"
ctl backend set-state 10.244.2.2:8080 maintenance >/dev/null || fail "backend set-state"
[[ $(stat -c %a "$STATE_FILE") == 600 ]] || fail "state file mode $(stat -c %a "$STATE_FILE")"
[[ $(py '[s["name"] + ("-" if s["deleted"] else "+") for s in d["services"]]' <"$STATE_FILE") == '["extra+", "old-"]' ]] ||
	fail "state file services: $(cat "$STATE_FILE")"
[[ $(py 'd["backends"]' <"$STATE_FILE") == '[{"addr": "10.244.2.2", "port": 8080, "state": "maintenance"}]' ]] ||
	fail "state file backends: $(cat "$STATE_FILE")"
[[ $(ctl overlay list | py 'd["state_file"]') == "$STATE_FILE" ]] || fail "overlay list: state file"
check_overlay "after the edits"
ok "service set|delete, backend set-state: applied and saved to overlay.json (0600)"

# 2. reload and restart keep it
bpflb_reload 1 || fail "reload refused"
check_overlay "after a reload"
bpflb_stop 1
bpflb_start 1
check_overlay "after a restart"
grep -q "overlay from $STATE_FILE: 2 services, 1 backend states" "$LOG" || fail "start does not report the overlay"
ok "the overlay survives a reload and a restart (real traffic, origin overlay)"

# 3. an overlay entry that no longer fits the file: the reload fails and names it
sed -i 's/nodeport=30080/nodeport=30100/' "$SVC"
bpflb_config 1 snat "$SVC"
# --check-config reads the state file too: it says what the reload is about to say
out=$(in_ns "$(cluster_node_ns 1)" "$BPFLBD" --config "$(bpflb_ini 1)" --check-config 2>&1) &&
	fail "--check-config passed a file the overlay does not fit"
[[ $out == *"overlay service 'extra' does not fit the configuration"* ]] ||
	fail "--check-config does not name the overlay entry: $out"
bpflb_reload 1 && fail "a reload clashing with the overlay was applied"
grep -q "overlay service 'extra' does not fit the configuration: .*30100.*overlay clear service extra" "$LOG" ||
	fail "the failed reload does not name the overlay entry: $(grep 'reload failed' "$LOG" | tail -1)"
answers 30080 >/dev/null || fail "the old state stopped serving after a refused reload"
sed -i 's/nodeport=30100/nodeport=30080/' "$SVC"
bpflb_config 1 snat "$SVC"
bpflb_reload 1 || fail "reload of the fixed file"
in_ns "$(cluster_node_ns 1)" "$BPFLBD" --config "$(bpflb_ini 1)" --check-config >/dev/null 2>&1 ||
	fail "--check-config refuses the fixed file"
ok "a reload (and --check-config) the overlay does not fit is refused with the entry's name; the old state serves"

# 4. clear one by one, then everything
ctl overlay clear service extra >/dev/null || fail "overlay clear service"
refused 30100 || fail "cleared overlay service still answers"
ctl overlay clear service extra >/dev/null 2>&1 && fail "clearing an absent overlay service succeeded"
ctl overlay clear backend 10.244.2.2 >/dev/null || fail "overlay clear backend"
[[ $(be_state) == active ]] || fail "backend after overlay clear: $(be_state)"
ctl overlay clear >/dev/null || fail "overlay clear"
answers 30081 >/dev/null || fail "service 'old' not back after overlay clear"
[[ $(ctl overlay list | py 'len(d["services"]) + len(d["backends"])') == 0 ]] || fail "overlay not empty"
[[ $(py 'len(d["services"]) + len(d["backends"])' <"$STATE_FILE") == 0 ]] || fail "state file not empty"
ok "overlay clear service NAME | backend ADDR | everything: back to the file, saved"

# 5. a state file that cannot be trusted stops a start, naming the file and field
ctl backend set-state 10.244.2.2:8080 maintenance >/dev/null
bpflb_stop 1
cp "$STATE_FILE" "$CLUSTER_STATE/good.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["backends"][0]["state"]="sleeping"; json.dump(d,open(sys.argv[1],"w"))' "$STATE_FILE"
start_fails() { # expected message
	in_ns "$(cluster_node_ns 1)" "$BPFLBD" --config "$(bpflb_ini 1)" >"$CLUSTER_STATE/start.log" 2>&1 &&
		fail "bpflbd started with a bad state file"
	grep -q "$1" "$CLUSTER_STATE/start.log" || fail "start error: $(cat "$CLUSTER_STATE/start.log")"
}
start_fails "state file $STATE_FILE: backends\[0\].state: missing or not active, terminating or maintenance"
printf '{"version": 1, "services": [' >"$STATE_FILE"
start_fails "state file $STATE_FILE: not valid JSON"
cp "$CLUSTER_STATE/good.json" "$STATE_FILE"
chmod 0620 "$STATE_FILE"
start_fails "state file $STATE_FILE: mode 0620 is writable by others than root"
chmod 0600 "$STATE_FILE"
out=$(answers 30080 12) || fail "the datapath stopped while starts were refused: $out"
grep -q "^web-2 " <<<"$out" && fail "the refused starts changed the backend states: $out"
bpflb_start 1
[[ $(be_state) == maintenance ]] || fail "backend state from the restored state file"
ok "corrupt, truncated or group-writable state file: start refused with file and field; datapath untouched"

# 6. one writer per bpffs_root: the same file, then only the same bpffs_root
in_ns "$(cluster_node_ns 1)" "$BPFLBD" --config "$(bpflb_ini 1)" >"$CLUSTER_STATE/second.log" 2>&1 &&
	fail "a second bpflbd with the same file started"
grep -q "bpffs_root $(bpflb_pin 1) is in use by bpflbd pid $(bpflb_pid 1)" "$CLUSTER_STATE/second.log" ||
	fail "second daemon (same file) error: $(cat "$CLUSTER_STATE/second.log")"
sed -e "s|^control_socket = .*|control_socket = $CLUSTER_STATE/second.sock|" \
	-e "s|^state_dir = .*|state_dir = $CLUSTER_STATE/second.state|" "$(bpflb_ini 1)" >"$CLUSTER_STATE/second.ini"
in_ns "$(cluster_node_ns 1)" "$BPFLBD" --config "$CLUSTER_STATE/second.ini" >"$CLUSTER_STATE/second.log" 2>&1 &&
	fail "a second bpflbd on the same bpffs_root started"
grep -q "bpffs_root $(bpflb_pin 1) is in use by bpflbd pid $(bpflb_pid 1)" "$CLUSTER_STATE/second.log" ||
	fail "second daemon's error: $(cat "$CLUSTER_STATE/second.log")"
in_ns "$(cluster_node_ns 1)" "$BPFLBD" --config "$CLUSTER_STATE/second.ini" --cleanup >"$CLUSTER_STATE/cleanup.log" 2>&1 &&
	fail "--cleanup ran under a running bpflbd"
grep -q "is in use by bpflbd pid $(bpflb_pid 1)" "$CLUSTER_STATE/cleanup.log" || fail "cleanup error: $(cat "$CLUSTER_STATE/cleanup.log")"
[[ -e $(bpflb_pin 1)/bpflb_svc ]] || fail "the refused --cleanup removed pins"
answers 30080 >/dev/null || fail "the first bpflbd's datapath after the refused second"
bpflb_stop 1
nsenter --net="/run/netns/$(cluster_node_ns 1)" -- "$BPFLBD" --config "$CLUSTER_STATE/second.ini" \
	</dev/null >"$CLUSTER_STATE/second.log" 2>&1 &
SECOND=$!
cluster_track_pid "$SECOND"
wait_for "grep -q 'running: mode' '$CLUSTER_STATE/second.log'" 10 0.05 ||
	fail "after the first stopped, another bpflbd did not start: $(cat "$CLUSTER_STATE/second.log")"
kill -TERM "$SECOND"
wait_for "! kill -0 $SECOND 2>/dev/null" 10 0.05 || fail "second bpflbd did not stop"
bpflb_start 1
ok "second bpflbd on the same bpffs_root refused naming pid $(bpflb_pid 1); --cleanup refused; after a stop another starts"
