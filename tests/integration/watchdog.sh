#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# What the unit relies on (etc/bpflbd.service.in), without systemd: bpflbd in
# a network namespace of its own, NOTIFY_SOCKET on a datagram socket this test
# reads, as systemd would set it for WatchdogSec=2s, and with what the unit
# leaves root: its CapabilityBoundingSet (read from the generated unit),
# NoNewPrivileges and UMask=0077 (setpriv; the file system sandbox needs
# systemd: tests/integration/unit_security.sh checks the unit offline).
#   - READY=1, then WATCHDOG=1 again and again (from the event loop's timer)
#   - WATCHDOG=1 keeps coming after a reload (the loop is not stuck)
#   - ExecReload: `bpflbctl reload` exits 0 on a good reload and 1 when the
#     reload fails (so `systemctl reload` fails), and the old config keeps
#     running
#   - WATCHDOG_PID naming another process: no WATCHDOG=1 (sd_watchdog_enabled)
#
# Usage: watchdog.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "${1:?usage: watchdog.sh BUILD_DIR}" && pwd)
BPFLBD=$BUILD/core/bpflbd
CTL=$BUILD/tools/bpflbctl/bpflbctl
P="pkgwd$$"
NS=$P
PIN=/sys/fs/bpf/pkg-wd-$$
TMP=$(mktemp -d /tmp/pkg-wd-XXXXXX)
DPID="" NPID=""

cleanup() {
	set +e
	[[ -n $DPID ]] && kill -9 "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	[[ -n $NPID ]] && kill "$NPID" 2>/dev/null
	[[ -d $PIN ]] && nsenter --net=/run/netns/"$NS" "$BPFLBD" --config "$TMP/bpflb.ini" --cleanup \
		>/dev/null 2>&1
	ip netns del "$NS" 2>/dev/null
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; { echo "--- bpflbd log"; cat "$TMP/log"; echo "--- notifications";
	cat "$TMP/notify.log"; } >&2 2>/dev/null; exit 1; }
ok() { echo "ok - $*"; }

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
ip netns add "$NS"
ip -n "$NS" link add eth0 type veth peer name eth1
ip -n "$NS" addr add 10.96.0.1/24 dev eth0
ip -n "$NS" link set lo up
ip -n "$NS" link set eth0 up
ip -n "$NS" link set eth1 up

write_config() { # [extra [daemon] line]
	cat >"$TMP/bpflb.ini" <<INI
[daemon]
; a mode: its plugin loads BPF, bpflbd attaches and sets the devices' sysctls
mode = snat
plugin_dir = $BUILD/plugins-out
bpffs_root = $PIN
control_socket = $TMP/ctl.sock
state_dir = $TMP/state
devices = eth0
${1:-}

[node]
name = wd-node
address = 10.96.0.1

[service web]
type = nodeport
port = http tcp 80 nodeport=30080
backend = 10.96.0.2 node=wd-node
INI
}

# The sd_notify listener: one line per datagram.
: >"$TMP/notify.log"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(4096).decode().replace("\n", " ") + "\n")
        f.flush()' "$TMP/notify" "$TMP/notify.log" &
NPID=$!
for _ in $(seq 50); do [[ -S $TMP/notify ]] && break; sleep 0.1; done

# The unit's bounding set as setpriv takes it: CAP_BPF CAP_NET_ADMIN -> -all,+bpf,+net_admin
UNIT=$BUILD/etc/bpflbd.service
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT")
[[ -n $caps ]] || fail "no CapabilityBoundingSet in $UNIT"
BOUNDING=-all
for c in $caps; do
	c=${c#CAP_}
	BOUNDING+=",+${c,,}"
done
grep -qx "NoNewPrivileges=yes" "$UNIT" || fail "the unit lost NoNewPrivileges=yes"

# start WATCHDOG_PID_SPEC: "self" (bpflbd's own pid, as systemd sets it) or a pid.
start() {
	# bash execs nsenter, which execs bpflbd: $$ of that bash is bpflbd's pid.
	NOTIFY_SOCKET=$TMP/notify WATCHDOG_USEC=2000000 WD=$1 NS=$NS BPFLBD=$BPFLBD \
		CONF=$TMP/bpflb.ini BOUNDING=$BOUNDING bash -c '
		[[ $WD == self ]] && WD=$$
		export WATCHDOG_PID=$WD
		umask 0077
		exec setpriv --bounding-set "$BOUNDING" --no-new-privs \
			nsenter --net=/run/netns/$NS "$BPFLBD" --config "$CONF"' >>"$TMP/log" 2>&1 &
	DPID=$!
	for _ in $(seq 200); do
		grep -q "READY=1" "$TMP/notify.log" && return 0
		kill -0 "$DPID" 2>/dev/null || fail "bpflbd exited at start"
		sleep 0.1
	done
	fail "bpflbd did not send READY=1"
}
stop() {
	kill -TERM "$DPID"
	wait "$DPID" || true
	DPID=""
}
# wait_pings N: N more WATCHDOG=1 than now (1 s apart; at most 30 s).
wait_pings() {
	local n0 n
	n0=$(grep -c "^WATCHDOG=1" "$TMP/notify.log" || true)
	for _ in $(seq 300); do
		n=$(grep -c "^WATCHDOG=1" "$TMP/notify.log" || true)
		((n - n0 >= $1)) && return 0
		kill -0 "$DPID" 2>/dev/null || fail "bpflbd exited"
		sleep 0.1
	done
	fail "$(($1)) WATCHDOG=1 expected, $((n - n0)) came"
}

write_config
start self
[[ $(awk '/^CapBnd:/ { print $2 }' /proc/$DPID/status) != \
	$(awk '/^CapBnd:/ { print $2 }' /proc/self/status) ]] || fail "bpflbd runs with the full bounding set"
[[ $(awk '/^NoNewPrivs:/ { print $2 }' /proc/$DPID/status) == 1 ]] || fail "bpflbd runs without NoNewPrivs"
ok "bpflbd started (READY=1) with the unit's bounding set ($caps) and NoNewPrivileges"
wait_pings 3
grep -q "systemd watchdog: WATCHDOG=1 every 1000 ms" "$TMP/log" ||
	fail "bpflbd did not log the watchdog interval (half of WATCHDOG_USEC)"
ok "READY=1, then WATCHDOG=1 repeatedly at half of WATCHDOG_USEC"
tc -n "$NS" filter show dev eth0 ingress | grep >/dev/null bpf || fail "no tc program on eth0"
"$CTL" --socket "$TMP/ctl.sock" service list | grep >/dev/null web || fail "service web not served"
ok "the datapath is attached and serves the service"

out=$("$CTL" --socket "$TMP/ctl.sock" reload 2>&1) || fail "bpflbctl reload of a good file failed: $out"
ok "bpflbctl reload of a good file exits 0 ($out)"
write_config "bogus_key = 1"
set +e
out=$("$CTL" --socket "$TMP/ctl.sock" reload 2>&1)
rc=$?
set -e
((rc == 1)) || fail "bpflbctl reload of a broken file exited $rc, expected 1: $out"
grep -q "bogus_key" <<<"$out" || fail "bpflbctl reload did not say why: $out"
ok "bpflbctl reload of a broken file exits 1 and names the key (ExecReload fails)"
wait_pings 2
"$CTL" --socket "$TMP/ctl.sock" status >/dev/null || fail "status after the failed reload"
ok "WATCHDOG=1 continues after the reloads; the daemon still answers"
stop

# sd_watchdog_enabled() ignores a watchdog meant for another process.
write_config
: >"$TMP/notify.log"
start 1
"$CTL" --socket "$TMP/ctl.sock" status >/dev/null || fail "status"
# Three round trips through the loop, two seconds: a 1 s ping would be there.
for _ in 1 2 3; do "$CTL" --socket "$TMP/ctl.sock" status >/dev/null; sleep 1; done
grep -q "^WATCHDOG=1" "$TMP/notify.log" && fail "WATCHDOG=1 sent although WATCHDOG_PID names another process"
ok "no WATCHDOG=1 when WATCHDOG_PID is another process's"
stop
echo "watchdog: all ok"
