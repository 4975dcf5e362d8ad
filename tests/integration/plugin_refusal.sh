#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A plugin refused for its permissions, as an operator meets it in a running
# bpflbd (bpflbd on lo of its own network namespace, plugin dir in the build
# dir, whose ancestors pass the loader's StrictModes rules):
#   - start with features = good and good.so world-writable: bpflbd refuses to
#     start and says why good was refused, not that it is missing
#   - started without it, a SIGHUP enabling it fails with the reason; the
#     running configuration stays
#   - fixed since (chmod go-w): the next SIGHUP loads and enables it
#   - disabled, then broken again (owned by nobody): a SIGHUP enabling it is
#     refused with the reason, though the code was loaded earlier
#   - the same for a plugin_dir that turned group-writable
#
# Usage: plugin_refusal.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "${1:?usage: plugin_refusal.sh BUILD_DIR}" && pwd)
BPFLBD=$BUILD/core/bpflbd
BPFLBCTL=$BUILD/tools/bpflbctl/bpflbctl

P="bpr$$"
NS="${P}d"
PIN=/sys/fs/bpf/bpflb-test-$P
TMP=$(mktemp -d /tmp/bpflb-refusal-XXXXXX)
# Not under /tmp: a 1777 ancestor is refused.
PLUGDIR=$(mktemp -d "$BUILD/tests/plugin-refusal.XXXXXX")
DPID=""

cleanup() {
	set +e
	[[ -n $DPID ]] && kill -9 "$DPID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$PIN" "$TMP" "$PLUGDIR"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; [[ -f $TMP/log ]] && { echo "--- bpflbd log"; cat "$TMP/log"; } >&2; exit 1; }
ok() { echo "ok - $*"; }
nsd() { nsenter --net=/run/netns/"$NS" "$@"; }

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
ip netns add "$NS"
nsd ip link set lo up
chmod 0755 "$PLUGDIR"
install -m 0666 -o root -g root "$BUILD/tests/fixture-plugins/good.so" "$PLUGDIR/good.so"

write_config() { # features
	cat >"$TMP/bpflb.ini" <<INI
[daemon]
mode = none
features = $1
plugin_dir = $PLUGDIR
bpffs_root = $PIN
control_socket = $TMP/ctl.sock
state_dir = $TMP/state
devices = lo
[node]
name = refusal-node
address = 127.0.0.1
INI
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
good_active() {
	"$BPFLBCTL" --socket "$TMP/ctl.sock" -o json plugin list |
		python3 -c 'import json,sys
sys.exit(0 if any(p["name"]=="good" and p["active"] for p in json.load(sys.stdin)) else 1)'
}
expect_refused_reload() { # why what
	reload_and_wait "reload failed"
	grep "reload failed" "$TMP/log" | tail -1 | grep >/dev/null -F "features = good: plugin 'good' cannot be enabled: $1" ||
		fail "$2: the reload error does not say why good is refused: $(grep 'reload failed' "$TMP/log" | tail -1)"
	grep "reload failed" "$TMP/log" | tail -1 | grep >/dev/null "no feature plugin" &&
		fail "$2: good reported as missing"
	kill -0 "$DPID" || fail "$2: bpflbd died"
	if good_active; then fail "$2: good is enabled"; fi
}

# --- start ------------------------------------------------------------------
write_config good
if nsd "$BPFLBD" --config "$TMP/bpflb.ini" >"$TMP/start.log" 2>&1; then
	fail "bpflbd started with a world-writable plugin enabled"
fi
grep -qF "features = good: plugin 'good' cannot be enabled: $PLUGDIR/good.so: refused: mode 0666 is group or world writable" "$TMP/start.log" ||
	fail "start error does not say why good is refused: $(cat "$TMP/start.log")"
ok "start with a world-writable plugin enabled: refused, and the error says why"

write_config ""
# nsenter execs bpflbd, so $! is the daemon itself.
nsenter --net=/run/netns/"$NS" "$BPFLBD" --config "$TMP/bpflb.ini" >>"$TMP/log" 2>&1 &
DPID=$!
for _ in $(seq 100); do
	grep -q "running: mode" "$TMP/log" && break
	kill -0 "$DPID" 2>/dev/null || fail "bpflbd exited at start"
	sleep 0.1
done
grep -q "running: mode" "$TMP/log" || fail "bpflbd did not start"

# --- reloads ------------------------------------------------------------------
write_config good
expect_refused_reload "$PLUGDIR/good.so: refused: mode 0666 is group or world writable" \
	"refused at start"
ok "SIGHUP enabling a plugin refused at start: refused with the reason, bpflbd keeps running"

chmod 0755 "$PLUGDIR/good.so"
reload_and_wait "reload done"
good_active || fail "good not enabled after its permissions were fixed"
grep -q "reload done: mode none; features +good (now: good); services: " "$TMP/log" ||
	fail "the reload line does not say the feature was enabled"
ok "fixed since: the next SIGHUP loads and enables it (the reload line says +good)"

write_config ""
reload_and_wait "reload done"
grep -q "reload done: mode none; features -good (now: none); services: " "$TMP/log" ||
	fail "the reload line does not say the feature was disabled"
chown 65534 "$PLUGDIR/good.so"
write_config good
expect_refused_reload "$PLUGDIR/good.so: refused: owned by uid 65534, must be owned by root" \
	"broken since"
ok "broken since it was loaded: a SIGHUP enabling it is refused with the reason"

chown 0 "$PLUGDIR/good.so"
chmod 0775 "$PLUGDIR"
expect_refused_reload "plugin dir $PLUGDIR: refused: mode 0775 is group or world writable" \
	"plugin_dir group-writable"
ok "plugin_dir turned group-writable: a SIGHUP enabling a plugin is refused, naming the directory"

chmod 0755 "$PLUGDIR"
reload_and_wait "reload done"
good_active || fail "good not enabled after plugin_dir was fixed"
ok "plugin_dir fixed: the next SIGHUP enables the plugin"

kill -TERM "$DPID"
wait "$DPID" || true
DPID=""
nsd "$BPFLBD" --config "$TMP/bpflb.ini" --cleanup >>"$TMP/log" 2>&1 || fail "--cleanup failed"
echo PASS
