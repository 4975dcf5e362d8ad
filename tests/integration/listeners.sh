#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bpflbd's listeners (control socket, metrics, a health check node port) under
# clients that misbehave, against a real daemon in its own network namespace:
#   - a control client that hangs up before its answer does not kill bpflbd
#     (SIGPIPE);
#   - the control socket's directory is created 0750; bpflbd refuses one that
#     another user owns or that group/others can write; bpflbctl refuses a
#     socket served by a user who is not root;
#   - floods of connections to every listener (beyond RLIMIT_NOFILE's soft
#     limit at start) leave `bpflbctl status` and SIGHUP reloads working and
#     the daemon's descriptors bounded by the caps; idle, slow and silent
#     connections are closed after client_timeout;
#   - a control client that pipelines requests and reads no answers does not
#     grow the daemon's memory, and others are still answered;
#   - status reports conntrack counts from a snapshot taken off the loop, and
#     they follow the map.
#
# Usage: listeners.sh BUILD_DIR   (ONLY="dir peer ..." runs some parts: dir peer
# sigpipe pipeline flood timeout ct)
set -euo pipefail
BUILD=$(cd "${1:?usage: listeners.sh BUILD_DIR}" && pwd)
BPFLBD=$BUILD/core/bpflbd
CTL=$BUILD/tools/bpflbctl/bpflbctl
PLUGDIR=$BUILD/tests/plugin-dir

P="bctl$$"
NS="${P}d"
PIN=/sys/fs/bpf/$P
TMP=$(mktemp -d /tmp/bctl-it-XXXXXX)
SOCK=$TMP/run/ctl.sock
DPID=""
BG=()

# A background function call runs in a subshell whose child is the real
# process: end the subshell's descendants too (by pid, never by name).
kill_tree() {
	local c
	for c in $(pgrep -P "$1"); do kill_tree "$c"; done
	kill "$1" 2>/dev/null
}

cleanup() {
	set +e
	for p in "${BG[@]}"; do kill_tree "$p"; done
	[[ -n $DPID ]] && kill -9 "$DPID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; [[ -f $TMP/log ]] && { echo "--- bpflbd log"; tail -50 "$TMP/log"; } >&2; exit 1; }
ok() { echo "ok - $*"; }
nsd() { nsenter --net=/run/netns/"$NS" "$@"; }
# nobody: a local user without privileges (and a python3 it may run)
nobody() { nsd setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
NPY=/usr/bin/python3
[[ -x $NPY ]] || NPY=$(command -v python3)
ctl() { "$CTL" --socket "$SOCK" -o json "$@"; }
py() { python3 -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$1"; }
ONLY=${ONLY:-dir peer sigpipe pipeline flood timeout ct}
# small caps and a short timeout, so that floods and timeouts are quick
# (LIMITS= runs a daemon from before these keys existed, to see it fail)
LIMITS=${LIMITS-"max_connections = 40
max_connections_per_listener = 24
client_timeout = 2"}
want() { [[ " $ONLY " == *" $1 "* ]]; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$DPID/status"; }
nfds() { ls "/proc/$DPID/fd" | wc -l; }

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
ip netns add "$NS"
nsd ip link set lo up
nsd ip link add eth0 type veth peer name eth1
nsd ip link set eth1 up
nsd ip addr add 10.97.0.1/24 dev eth0
nsd ip link set eth0 up
chmod 0711 "$TMP" # nobody may reach the directories made for it below

write_config() { # control_socket
	cat >"$TMP/bpflb.ini" <<INI
[daemon]
mode = none
plugin_dir = $PLUGDIR
bpffs_root = $PIN
control_socket = $1
state_dir = $TMP/state
metrics_listen = 127.0.0.1:9962
devices = eth0
$LIMITS

[node]
name = n1
address = 10.97.0.1

[lb]
; the fake conntrack entries below must stay until counted
ct_gc_interval = 3600

[service hc]
type = nodeport
port = p tcp 80 nodeport=30080
external_traffic_policy = local
health_check_node_port = 32100
backend = 10.244.0.5 node=n1
INI
}

start_daemon() {
	# A soft descriptor limit below what the floods below open: bpflbd must
	# raise it and cap its connections, not run out.
	# Under ASan (scripts/test-asan.sh sets ASAN_OPTIONS) freed memory waits in
	# a quarantine of up to 256 MB, which would hide a bounded output queue
	# behind allocator growth: keep the quarantine small for this daemon.
	local asan=${ASAN_OPTIONS:+$ASAN_OPTIONS:quarantine_size_mb=1}
	ASAN_OPTIONS=$asan prlimit --nofile=256:4096 nsenter --net=/run/netns/"$NS" "$BPFLBD" \
		--config "$TMP/bpflb.ini" >>"$TMP/log" 2>&1 &
	DPID=$!
	for _ in $(seq 100); do
		grep -q "running: mode" "$TMP/log" 2>/dev/null && return 0
		kill -0 "$DPID" 2>/dev/null || fail "bpflbd exited at start"
		sleep 0.1
	done
	fail "bpflbd did not start"
}
alive() { kill -0 "$DPID" 2>/dev/null || { wait "$DPID"; fail "bpflbd died (exit $?) $1"; }; }

# --- the control socket's directory ----------------------------------------------
refused_dir() { # dir why
	write_config "$1/ctl.sock"
	if nsd timeout 5 "$BPFLBD" --config "$TMP/bpflb.ini" >"$TMP/refused.log" 2>&1; then
		fail "bpflbd started with its socket in $1 ($2)"
	fi
	grep -q "refusing directory $1" "$TMP/refused.log" ||
		fail "no clear refusal naming $1 ($2): $(cat "$TMP/refused.log")"
	nsd tc filter show dev eth0 ingress | grep >/dev/null bpflb && fail "refused start left a hook"
	true
}
if want dir; then
	mkdir -p "$TMP/user" "$TMP/ww" "$TMP/sticky"
	chown 65534:65534 "$TMP/user"
	chmod 0777 "$TMP/ww"
	chmod 1777 "$TMP/sticky"
	refused_dir "$TMP/user" "owned by nobody"
	refused_dir "$TMP/ww" "world-writable"
	refused_dir "$TMP/sticky" "world-writable even if sticky"
	ok "bpflbd refuses a socket directory owned by another user or writable by others"
fi

write_config "$SOCK"
start_daemon
if want dir; then
	[[ $(stat -c '%a %u' "$TMP/run") == "750 0" ]] || fail "socket directory is $(stat -c '%a %u' "$TMP/run"), expected 750 root"
	ok "bpflbd created the socket directory 0750 root-owned"
fi

if want peer; then
# bpflbctl does not believe a socket served by another user
mkdir "$TMP/evil"
chmod 1777 "$TMP/evil"
nobody "$NPY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
while True:
    c, _ = s.accept()
    try:
        c.recv(4096)
        c.sendall(b"{\"ok\": true, \"data\": {\"mode\": \"evil\", \"version\": \"0\"}}\n")
    except OSError:
        pass
    c.close()' \
	"$TMP/evil/ctl.sock" &
BG+=($!)
for _ in $(seq 50); do [[ -S $TMP/evil/ctl.sock ]] && break; sleep 0.1; done
if out=$("$CTL" --socket "$TMP/evil/ctl.sock" status 2>&1); then
	fail "bpflbctl believed a socket served by nobody: $out"
fi
grep -q "refusing $TMP/evil/ctl.sock: it is served by uid 65534" <<<"$out" ||
	fail "bpflbctl's refusal does not say why: $out"
ok "bpflbctl refuses a socket served by a user other than root (SO_PEERCRED)"
fi

# --- SIGPIPE: clients that hang up before the answer ---------------------------------
if want sigpipe; then
nsd python3 - "$SOCK" <<'EOF'
import socket, sys
for _ in range(200):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(b'{"cmd": "status"}\n' * 20)
    s.close()
EOF
sleep 0.5
alive "after clients hung up before their answers"
[[ $(ctl status | py 'd["mode"]') == none ]] || fail "status after hung-up clients"
ok "control clients that hang up before the answer: bpflbd lives and answers status"
fi

# --- pipelined requests, answers never read ----------------------------------------------
if want pipeline; then
rss0=$(rss_kb)
nsd python3 - "$SOCK" >"$TMP/pipe.out" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.setblocking(False)
req = b'{"cmd": "status"}\n' * 100
sent, stuck = 0, None
while sent < 100000:
    try:
        n = s.send(req)
        sent += n // 18
        stuck = None
    except BlockingIOError:
        stuck = stuck or time.monotonic()
        if time.monotonic() - stuck > 1.0:
            break
        time.sleep(0.01)
print("sent", sent, flush=True)
# hold the connection without reading until the daemon drops it
s.setblocking(True)
s.settimeout(30)
try:
    while s.recv(1 << 20):
        pass
    print("closed", flush=True)
except OSError as e:
    print("error", e, flush=True)
EOF
PIPE=$!
BG+=("$PIPE")
for _ in $(seq 100); do grep -q "^sent" "$TMP/pipe.out" && break; sleep 0.1; done
grep -q "^sent" "$TMP/pipe.out" || fail "the pipelining client never stopped sending"
rss1=$(rss_kb)
[[ $(ctl status | py 'd["mode"]') == none ]] || fail "status while a client pipelines"
((rss1 - rss0 < 20480)) || fail "RSS grew from ${rss0} kB to ${rss1} kB with a client that reads no answers ($(cat "$TMP/pipe.out"))"
ok "pipelined requests without reading: RSS ${rss0} -> ${rss1} kB, others answered ($(head -1 "$TMP/pipe.out"))"
# nothing read for client_timeout (2 s): the daemon drops it (the client
# then reads what was queued, up to the close)
wait "$PIPE" || true
grep -q "^closed" "$TMP/pipe.out" || fail "the client that reads no answers was not dropped: $(cat "$TMP/pipe.out")"
ok "a client whose answers stay unread past client_timeout is dropped"
fi

# --- connection floods ---------------------------------------------------------------
if want flood; then
# flood.py HOW N TARGET: open N connections and hold them until killed
cat >"$TMP/flood.py" <<'EOF'
import socket, sys, time
how, n, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns = []
for _ in range(n):
    if how == "unix":
        s = socket.socket(socket.AF_UNIX); s.setblocking(False)
        try: s.connect(target)
        except (BlockingIOError, OSError): pass
    else:
        host, port = target.rsplit(":", 1)
        s = socket.socket(); s.setblocking(False)
        try: s.connect((host, int(port)))
        except BlockingIOError: pass
    conns.append(s)
print("open", len(conns), flush=True)
time.sleep(60)
EOF
fd0=$(nfds)
nobody "$NPY" "$TMP/flood.py" tcp 300 127.0.0.1:9962 >"$TMP/f1" &
BG+=($!)
nobody "$NPY" "$TMP/flood.py" tcp 300 10.97.0.1:32100 >"$TMP/f2" &
BG+=($!)
nsd python3 "$TMP/flood.py" unix 100 "$SOCK" >"$TMP/f3" &
BG+=($!)
for f in f1 f2 f3; do
	for _ in $(seq 100); do grep -q open "$TMP/$f" && break; sleep 0.1; done
done
sleep 0.5
alive "under a connection flood"
fd1=$(nfds)
# 40 TCP connections in all, 24 on the control socket, one held per paused listener
((fd1 - fd0 <= 40 + 24 + 3)) || fail "descriptors grew from $fd0 to $fd1 under the flood (caps 40 + 24)"
[[ $(ctl status | py 'd["mode"]') == none ]] || fail "status under a connection flood"
ok0=$(ctl status | py 'd["reloads"]["ok"]')
kill -HUP "$DPID"
for _ in $(seq 100); do
	grep -q "reload done\|reload failed" "$TMP/log" && break
	sleep 0.1
done
grep -q "reload failed" "$TMP/log" && fail "SIGHUP reload failed under a connection flood: $(grep 'reload failed' "$TMP/log")"
[[ $(ctl status | py 'd["reloads"]["ok"]') == $((ok0 + 1)) ]] || fail "the reload under the flood did not count"
ok "700 connections to metrics, health check and control: descriptors $fd0 -> $fd1, status and SIGHUP reload work"
for p in "${BG[@]}"; do kill_tree "$p" || true; done
# once the flood is gone the endpoints answer again
for _ in $(seq 50); do
	nobody curl -sf -m 2 http://127.0.0.1:9962/metrics >"$TMP/metrics" && break
	sleep 0.2
done
grep -q "^bpflb_connections_refused_total [1-9]" "$TMP/metrics" || fail "metrics after the flood: no refused connections counted"
for _ in $(seq 50); do
	nobody curl -s -m 2 http://10.97.0.1:32100/ >"$TMP/hz" && grep -q localEndpoints "$TMP/hz" && break
	sleep 0.2
done
grep -q localEndpoints "$TMP/hz" ||
	fail "health check after the flood: $(cat "$TMP/hz"); $(nsd ss -tanp state all '( sport = :32100 )' | head -20)"
ok "after the flood metrics and the health check answer again (refusals counted)"
fi

# --- idle and partial connections are closed ------------------------------------------
if want timeout; then
nsd python3 - "$SOCK" <<'EOF' || fail "a silent or slow connection was not closed after client_timeout"
import socket, sys, time

def closed_within(s, secs, trickle=None):
    s.settimeout(0.3)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if trickle:
            try: s.send(trickle)
            except OSError: return True
        try:
            if s.recv(65536) == b"":
                return True
        except socket.timeout:
            pass
        except OSError:
            return True
    return False

c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1])
assert closed_within(c, 10), "idle control connection"
c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1])
assert closed_within(c, 10, b" "), "control request sent a byte at a time"
m = socket.create_connection(("127.0.0.1", 9962))
assert closed_within(m, 10), "idle metrics connection"
h = socket.create_connection(("10.97.0.1", 32100))
h.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
assert closed_within(h, 10), "idle keep-alive health check connection"
h = socket.create_connection(("10.97.0.1", 32100))
assert closed_within(h, 10, b"X"), "health check head sent a byte at a time"
EOF
ok "idle, slow (a byte at a time) and silent connections are closed after client_timeout"
fi

# --- conntrack counts from the snapshot --------------------------------------------------
if want ct; then
st=$(ctl status)
[[ $(py 'd["conntrack"]["entries"] == 0 and d["conntrack"]["snapshot_age_ms"] is not None' <<<"$st") == True ]] ||
	fail "status conntrack: $st"
# three entries (two TCP, one UDP) the way the datapath writes them
for e in "1 6 1" "2 6 2" "3 17 1"; do
	read -r n proto kind <<<"$e"
	bpftool map update pinned "$PIN/bpflb_ct" \
		key 10 0 0 "$n" 10 0 0 1 0 80 0 80 "$proto" "$kind" 0 0 \
		value $(printf '0 %.0s' $(seq 40))
done
counts() { ctl status | py '"%d %d %d" % (d["conntrack"]["entries"], d["conntrack"]["tcp"], d["conntrack"]["udp"])'; }
for _ in $(seq 50); do [[ $(counts) == "3 2 1" ]] && break; sleep 0.1; done
[[ $(counts) == "3 2 1" ]] || fail "status conntrack counts $(counts), expected 3 entries, 2 tcp, 1 udp"
st=$(ctl status)
[[ $(py 'd["conntrack"]["snapshot_age_ms"] < 60000' <<<"$st") == True ]] || fail "snapshot age: $st"
ok "status: conntrack counts from the snapshot follow the map ($(py 'd["conntrack"]' <<<"$st"))"
fi

alive "at the end"
kill -TERM "$DPID"
wait "$DPID" || fail "bpflbd exited non-zero on SIGTERM"
DPID=""
nsd "$BPFLBD" --config "$TMP/bpflb.ini" --cleanup >>"$TMP/log" 2>&1 || true
echo "PASS"
