#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The core end to end: bpflbd runs in its own network namespace with the test
# plugin attached to a veth, and we check from outside what an operator would:
#   - --check-config accepts the good file and names file:line in a bad one
#   - the running datapath drops exactly what the config says (real UDP)
#   - SIGHUP with a good file switches behaviour; with a broken file (syntax,
#     then one a plugin refuses) bpflbd keeps running the old config, logs the
#     file:line error and counts the failure
#   - systemd notifications READY=1, RELOADING=1, STOPPING=1 are sent
#   - SIGTERM leaves pins and tc hooks in place and traffic keeps its treatment
#   - a restarted bpflbd adopts the pinned state (counters keep counting)
#   - --cleanup removes every hook and pin
#
# Usage: daemon.sh BUILD_DIR
set -euo pipefail
BUILD=${1:?usage: daemon.sh BUILD_DIR}
BPFLBD=$BUILD/core/bpflbd
PEERD=$BUILD/tests/tools/peerd
PEERC=$BUILD/tests/tools/peerc
PLUGDIR=$BUILD/tests/plugin-dir

P="bld$$"
NS_D="${P}d"      # daemon side
NS_C="${P}c"      # client side
PIN=/sys/fs/bpf/bpflb-test-$P
TMP=$(mktemp -d /tmp/bpflb-it-XXXXXX)
DPID=""
NPID=""

cleanup() {
	set +e
	[[ -n $DPID ]] && kill -9 "$DPID" 2>/dev/null
	[[ -n $NPID ]] && kill "$NPID" 2>/dev/null
	pkill -f "$PEERD --name $P" 2>/dev/null
	ip netns del "$NS_D" 2>/dev/null
	ip netns del "$NS_C" 2>/dev/null
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; [[ -f $TMP/log ]] && { echo "--- bpflbd log"; cat "$TMP/log"; } >&2; exit 1; }
ok() { echo "ok - $*"; }
nsd() { nsenter --net=/run/netns/"$NS_D" "$@"; }
nsc() { nsenter --net=/run/netns/"$NS_C" "$@"; }

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

ip netns add "$NS_D"
ip netns add "$NS_C"
ip link add "${P}a" type veth peer name "${P}b"
ip link set "${P}a" netns "$NS_D"
ip link set "${P}b" netns "$NS_C"
nsd ip link set "${P}a" name eth0
nsc ip link set "${P}b" name eth0
nsd ip addr add 10.98.0.1/24 dev eth0
nsc ip addr add 10.98.0.2/24 dev eth0
for ns in "$NS_D" "$NS_C"; do
	nsenter --net=/run/netns/"$ns" ip link set lo up
	nsenter --net=/run/netns/"$ns" ip link set eth0 up
done

nsd "$PEERD" --name "$P" --udp 9998,9999 --tcp 9997 >/dev/null 2>&1 &

write_config() { # drop_port [extra line]
	cat >"$TMP/bpflb.ini" <<INI
; integration test instance
[daemon]
mode = none
features = testplug
plugin_dir = $PLUGDIR
bpffs_root = $PIN
control_socket = $TMP/ctl.sock
state_dir = $TMP/state
devices = eth0
tick_interval = 1

[node]
name = it-node
address = 10.98.0.1

[testplug]
drop_port = $1
${2:-}
INI
}

udp_ok() { nsc "$PEERC" udp 10.98.0.1 "$1" --timeout 300 >/dev/null 2>&1; }
expect_dropped() { udp_ok "$1" && fail "$2: UDP to port $1 passed, expected it dropped"; true; }
expect_passed() { udp_ok "$1" || fail "$2: UDP to port $1 dropped, expected it to pass"; }
counter() { # index -> value of testplug_counts[index]
	bpftool map lookup pinned "$PIN/testplug_counts" key "$1" 0 0 0 -j |
		python3 -c 'import json,sys; v=json.load(sys.stdin)["value"]; print(int.from_bytes(bytes(int(b,16) for b in v),"little"))'
}
start_daemon() {
	# nsenter execs bpflbd, so $! is the daemon itself.
	NOTIFY_SOCKET=$TMP/notify nsenter --net=/run/netns/"$NS_D" "$BPFLBD" \
		--config "$TMP/bpflb.ini" >>"$TMP/log" 2>&1 &
	DPID=$!
	for _ in $(seq 100); do
		grep -q "READY=1" "$TMP/notify.log" 2>/dev/null && return 0
		kill -0 "$DPID" 2>/dev/null || fail "bpflbd exited at start"
		sleep 0.1
	done
	fail "bpflbd did not report READY=1"
}
reload_and_wait() { # expected log substring
	local n
	n=$(grep -c "$1" "$TMP/log" || true)
	kill -HUP "$DPID"
	for _ in $(seq 50); do
		[[ $(grep -c "$1" "$TMP/log" || true) -gt $n ]] && return 0
		sleep 0.1
	done
	fail "no '$1' in the log after SIGHUP"
}

# sd_notify listener: records every datagram bpflbd sends.
python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); s.bind(sys.argv[1])
f=open(sys.argv[2],"a")
while True:
    f.write(s.recv(4096).decode()+"\n"); f.flush()' "$TMP/notify" "$TMP/notify.log" &
NPID=$!
sleep 0.3

# --- --check-config -------------------------------------------------------
write_config 9999
nsd "$BPFLBD" --config "$TMP/bpflb.ini" --check-config 2>"$TMP/check.err" ||
	fail "--check-config rejected a good file: $(cat "$TMP/check.err")"
ok "--check-config accepts a good file"
write_config 9999 "bogus_key = 1"
if nsd "$BPFLBD" --config "$TMP/bpflb.ini" --check-config 2>"$TMP/check.err"; then
	fail "--check-config accepted an unknown key"
fi
grep -q "bpflb.ini:18:.*bogus_key" "$TMP/check.err" ||
	fail "--check-config message lacks file:line and key: $(cat "$TMP/check.err")"
ok "--check-config names file:line and key of a bad file"

# --- a failed first start takes its pins and hooks with it -----------------------
write_config 9999 "fail_apply = yes"
nsd "$BPFLBD" --config "$TMP/bpflb.ini" >>"$TMP/log" 2>&1 && fail "start with fail_apply succeeded"
[[ -e $PIN ]] && fail "a failed first start (plugin apply) left pins: $(ls "$PIN")"
# after the hooks are attached: the metrics listener's port is taken (peerd's TCP 9997)
write_config 9999
sed -i '/^\[daemon\]/a metrics_listen = 10.98.0.1:9997' "$TMP/bpflb.ini"
nsd "$BPFLBD" --config "$TMP/bpflb.ini" >>"$TMP/log" 2>&1 && fail "start with a taken metrics port succeeded"
[[ $(grep -c "failed first start removed its hooks" "$TMP/log") == 2 ]] || fail "no line about the undone first starts"
grep -q "9997.*in use" "$TMP/log" || fail "the second start did not fail on the metrics port"
[[ -e $PIN ]] && fail "a failed first start (listener) left pins: $(ls "$PIN")"
nsd tc filter show dev eth0 ingress | grep >/dev/null bpflb && fail "a failed first start left its hook"
ok "a failed first start removes the pins and hooks it made (plugin apply, listener)"

# --- start ------------------------------------------------------------------
write_config 9999
start_daemon
ok "bpflbd started and sent READY=1"
nsd tc filter show dev eth0 ingress | grep >/dev/null "bpflb_entry_in" || fail "no ingress hook on eth0"
nsd tc filter show dev eth0 egress | grep >/dev/null "bpflb_entry_out" || fail "no egress hook on eth0"
ok "entry programs attached to tc ingress and egress"
expect_dropped 9999 "initial config"
expect_passed 9998 "initial config"
ok "datapath drops UDP 9999 and passes 9998 as configured"
[[ $(counter 1) -ge 1 ]] || fail "drop counter did not move"

# --- good reload --------------------------------------------------------------
write_config 9998
reload_and_wait "reload done"
expect_passed 9999 "after good reload"
expect_dropped 9998 "after good reload"
grep -q "RELOADING=1" "$TMP/notify.log" || fail "no RELOADING=1 notification"
ok "SIGHUP with a good file switched the datapath (RELOADING=1 sent)"
# the one-line summary of what the reload changed (this file has no services: all zero)
grep -q "reload done: mode .*; services: +0 -0 ~0 services, +0 -0 ~0 backends, +0 -0 ~0 frontends" \
	"$TMP/log" || fail "reload did not log its one-line summary"
ok "a reload logs one line of what it changed"

# --- broken reloads keep the old config ------------------------------------------
write_config 70000
reload_and_wait "reload failed"
grep -q "bpflb.ini:17:.*drop_port = 70000" "$TMP/log" || fail "reload error lacks file:line:key"
kill -0 "$DPID" || fail "bpflbd died on a broken reload"
expect_passed 9999 "after broken reload"
expect_dropped 9998 "after broken reload"
ok "SIGHUP with an out-of-range value: error names file:line, old config keeps serving"

write_config 22
reload_and_wait "reload failed"
grep -q "refusing to drop the SSH port" "$TMP/log" || fail "plugin validation error not logged"
expect_dropped 9998 "after refused reload"
expect_passed 9999 "after refused reload"
ok "SIGHUP with a file a plugin refuses: old config keeps serving"

# A reload that fails in apply, after the core already applied its part (a new
# service): the core must roll that part back.
svc_count() { bpftool map dump pinned "$PIN/bpflb_svc" -j | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
before=$(svc_count)
write_config 9998 "fail_apply = yes

[service rollback]
type = nodeport
port = p udp 9 nodeport=30009
backend = 10.98.0.1 node=it-node"
reload_and_wait "reload failed"
grep -q "testplug: fail_apply is set" "$TMP/log" || fail "apply failure not logged"
[[ $(svc_count) == "$before" ]] || fail "service of a failed reload left in the map ($before -> $(svc_count))"
expect_dropped 9998 "after failed apply"
ok "SIGHUP failing in a plugin's apply: the core's half (a new service) is rolled back"

printf '[daemon\n' >"$TMP/bpflb.ini"
reload_and_wait "reload failed"
expect_dropped 9998 "after syntax error reload"
ok "SIGHUP with a syntax error: old config keeps serving"

# --- SIGTERM leaves the datapath --------------------------------------------------
write_config 9998
seen_before=$(counter 0)
kill -TERM "$DPID"
wait "$DPID" || fail "bpflbd exited non-zero on SIGTERM"
DPID=""
grep -q "STOPPING=1" "$TMP/notify.log" || fail "no STOPPING=1 notification"
[[ -e $PIN/bpflb_stages && -e $PIN/testplug_counts ]] || fail "pins removed by SIGTERM"
nsd tc filter show dev eth0 ingress | grep >/dev/null "bpflb_entry_in" || fail "hook removed by SIGTERM"
expect_dropped 9998 "with the daemon stopped"
expect_passed 9999 "with the daemon stopped"
ok "SIGTERM: pins and hooks stay, the datapath keeps its treatment without the daemon"

# --- a failing restart over existing state keeps it serving ------------------------
write_config 9998 "fail_apply = yes"
nsd "$BPFLBD" --config "$TMP/bpflb.ini" >>"$TMP/log" 2>&1 && fail "restart with fail_apply succeeded"
[[ -e $PIN/bpflb_stages && -e $PIN/testplug_counts ]] || fail "a failed restart removed the existing pins"
nsd tc filter show dev eth0 ingress | grep >/dev/null "bpflb_entry_in" || fail "a failed restart removed the hook"
expect_dropped 9998 "after a failed restart"
ok "a failing restart over existing state leaves its pins and hooks serving"
write_config 9998

# --- restart adopts the pinned state ----------------------------------------------
start_daemon
expect_dropped 9998 "after restart"
[[ $(counter 0) -gt $seen_before ]] || fail "pinned counter was reset by the restart"
ok "restart adopts pinned maps (counter kept counting: $seen_before -> $(counter 0))"
kill -TERM "$DPID"; wait "$DPID" || true; DPID=""

# --- cleanup --------------------------------------------------------------------
nsd "$BPFLBD" --config "$TMP/bpflb.ini" --cleanup >>"$TMP/log" 2>&1 || fail "--cleanup failed"
[[ -e $PIN ]] && fail "pins remain after --cleanup: $(ls "$PIN")"
nsd tc filter show dev eth0 ingress | grep >/dev/null bpflb && fail "hook remains after --cleanup"
expect_passed 9998 "after cleanup"
ok "--cleanup removed every hook and pin"
nsd "$BPFLBD" --config "$TMP/bpflb.ini" --cleanup >"$TMP/cleanup2" 2>&1 || fail "--cleanup of nothing failed"
[[ $(wc -l <"$TMP/cleanup2") == 1 ]] && grep -q "nothing to clean up: no bpflb hooks on eth0 and no pins under $PIN" "$TMP/cleanup2" ||
	fail "--cleanup with nothing attached is not one clear line: $(cat "$TMP/cleanup2")"
ok "--cleanup with nothing attached: one line, no libbpf noise"
# A sanitizer build (scripts/test-asan.sh): the daemon's reports are only in its log.
! grep -qE '^==[0-9]+==ERROR: (Address|Leak)Sanitizer|: runtime error: ' "$TMP/log" ||
	fail "sanitizer report in the bpflbd log"
echo "PASS"
