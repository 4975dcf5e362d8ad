#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# What bpflbd does with a dangerous or wrong configuration, seen as an operator
# sees it:
#   - bpffs_root on an ordinary file system (this test's own directory) is
#     refused by --check-config, start and --cleanup with file:line and key,
#     and a canary file there survives all three
#   - --cleanup removes the pins bpflb made (core and mode plugin) by name and
#     leaves a foreign pin in the same directory, naming it
#   - [lb] ct_size sizes the conntrack map, the mode plugin loads against the
#     resized pins, and a pinned map of another size is refused by
#     --check-config and start with the key and what to do
#   - pinned maps of another schema version fail --check-config as they fail start
#   - a [node] address that is not local fails --check-config (file:line, key)
#   - run under `ip netns exec` (a private mount namespace and bpffs), the
#     daemon says so at --check-config, start, stop and --cleanup
#
# Usage: config_safety.sh BUILD_DIR
set -euo pipefail
BUILD=${1:?usage: config_safety.sh BUILD_DIR}
BPFLBD=$BUILD/core/bpflbd
PLUGDIR=$BUILD/plugins-out

P="bcs$$"
NS="${P}n"
PIN=/sys/fs/bpf/bpflb-cs-$P
TMP=$(mktemp -d /tmp/bpflb-cs-XXXXXX)
DPID=""

cleanup() {
	set +e
	[[ -n $DPID ]] && kill -9 "$DPID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; [[ -f $TMP/log ]] && { echo "--- output"; cat "$TMP/log"; } >&2; exit 1; }
ok() { echo "ok - $*"; }
nsn() { nsenter --net=/run/netns/"$NS" "$@"; }
# Start bpflbd in the background (DPID) and wait until it serves; WHY names the case.
start_daemon() {
	nsenter --net=/run/netns/"$NS" "$BPFLBD" --config "$TMP/bpflb.ini" >"$TMP/log" 2>&1 &
	DPID=$!
	for _ in $(seq 100); do
		grep -q "running: mode snat" "$TMP/log" && return 0
		kill -0 "$DPID" 2>/dev/null || fail "bpflbd exited at start $1"
		sleep 0.1
	done
	fail "bpflbd did not start $1"
}
# line number of the first line of the config starting with $1
line_of() { grep -n "^$1" "$TMP/bpflb.ini" | head -1 | cut -d: -f1; }

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
ip netns add "$NS"
nsn ip link set lo up
nsn ip link add "${P}d" type veth peer name "${P}e"
nsn ip addr add 10.96.0.1/24 dev "${P}d"
nsn ip link set "${P}d" up
nsn ip link set "${P}e" up

write_config() { # bpffs_root node_address [extra [lb] lines]
	cat >"$TMP/bpflb.ini" <<INI
[daemon]
mode = snat
plugin_dir = $PLUGDIR
bpffs_root = $1
control_socket = $TMP/ctl.sock
state_dir = $TMP/state
devices = ${P}d

[node]
name = cs-node
address = $2

[lb]
${3:-}
INI
}

# --- bpffs_root on an ordinary file system ---------------------------------
NOTBPF=$TMP/notbpf
mkdir -p "$NOTBPF/sub"
echo canary >"$NOTBPF/canary"
echo canary >"$NOTBPF/sub/canary"
write_config "$NOTBPF" 10.96.0.1
where="bpflb.ini:$(line_of bpffs_root): \[daemon\] bpffs_root = $NOTBPF"
if nsn "$BPFLBD" --config "$TMP/bpflb.ini" --check-config >"$TMP/log" 2>&1; then
	fail "--check-config accepted bpffs_root on $(stat -f -c %T "$NOTBPF")"
fi
grep -q "$where: .*is not on a bpf filesystem" "$TMP/log" ||
	fail "--check-config does not name file:line, key and the problem"
if nsn "$BPFLBD" --config "$TMP/bpflb.ini" --cleanup >"$TMP/log" 2>&1; then
	fail "--cleanup accepted bpffs_root on $(stat -f -c %T "$NOTBPF")"
fi
grep -q "$where: .*is not on a bpf filesystem" "$TMP/log" || fail "--cleanup: no clear refusal"
write_config "$NOTBPF/new/dir" 10.96.0.1
if timeout 20 nsenter --net=/run/netns/"$NS" "$BPFLBD" --config "$TMP/bpflb.ini" >"$TMP/log" 2>&1; then
	fail "start accepted bpffs_root on an ordinary file system"
fi
grep -q "bpffs_root = $NOTBPF/new/dir: .*is not on a bpf filesystem" "$TMP/log" ||
	fail "start: no clear refusal"
[[ -f $NOTBPF/canary && -f $NOTBPF/sub/canary ]] || fail "a canary file was removed"
[[ -e $NOTBPF/new ]] && fail "start created directories on the ordinary file system"
ok "bpffs_root off bpffs refused by --check-config, --cleanup and start; canaries intact"

# --- a [node] address that is not local ---------------------------------------
write_config "$PIN" 10.96.0.99
if nsn "$BPFLBD" --config "$TMP/bpflb.ini" --check-config >"$TMP/log" 2>&1; then
	fail "--check-config accepted a [node] address that is not on any interface"
fi
grep -q "bpflb.ini:$(line_of address): \[node\] address = 10.96.0.99: .*not an address of any interface" \
	"$TMP/log" || fail "--check-config does not name file:line and key of the address"
ok "--check-config refuses a non-local [node] address with file:line and key"

# --- map sizes: [lb] ct_size, and a pin of another size -----------------------
write_config "$PIN" 10.96.0.1 "ct_size = 4096"
nsn "$BPFLBD" --config "$TMP/bpflb.ini" --check-config >"$TMP/log" 2>&1 ||
	fail "--check-config refused a good file"
start_daemon "with ct_size = 4096"
n=$(bpftool map show pinned "$PIN/bpflb_ct" -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["max_entries"])')
((n == 4096)) || fail "bpflb_ct has $n entries, [lb] ct_size = 4096"
kill -TERM "$DPID"
wait "$DPID" || true
DPID=""
ok "[lb] ct_size = 4096 sizes the pinned conntrack map; the snat plugin loads against it"

write_config "$PIN" 10.96.0.1 "ct_size = 8192"
if nsn "$BPFLBD" --config "$TMP/bpflb.ini" --check-config >"$TMP/log" 2>&1; then
	fail "--check-config accepted ct_size 8192 with a pinned conntrack map of 4096"
fi
grep -q "bpflb.ini:$(line_of ct_size): \[lb\] ct_size = 8192: .*bpflb_ct.* has 4096.*--cleanup" "$TMP/log" ||
	fail "--check-config: the size refusal does not name file:line, key and what to do"
if timeout 20 nsenter --net=/run/netns/"$NS" "$BPFLBD" --config "$TMP/bpflb.ini" >"$TMP/log" 2>&1; then
	fail "start accepted ct_size 8192 with a pinned conntrack map of 4096"
fi
grep -q "\[lb\] ct_size = 8192: .*has 4096" "$TMP/log" || fail "start: no clear size refusal"
ok "a pinned map of another size is refused with the key and what to do"

# --- maps of schema 1 (same layout) are adopted in place: an upgrade keeps conntrack
write_config "$PIN" 10.96.0.1 "ct_size = 4096"
# bpflb_schema["lb"] and ["snat"] = {magic "bplb", version 1}
bpftool map update pinned "$PIN/bpflb_schema" key 0x6c 0x62 0 0 0 0 0 0 0 0 0 0 0 0 0 0 \
	value 0x62 0x6c 0x70 0x62 1 0 0 0
bpftool map update pinned "$PIN/bpflb_schema" key 0x73 0x6e 0x61 0x74 0 0 0 0 0 0 0 0 0 0 0 0 \
	value 0x62 0x6c 0x70 0x62 1 0 0 0
nsn "$BPFLBD" --config "$TMP/bpflb.ini" --check-config >"$TMP/log" 2>&1 ||
	fail "--check-config refused maps of schema 1: $(cat "$TMP/log")"
start_daemon "on maps of schema 1"
grep -q "for 'lb' have schema version 1: adopted in place" "$TMP/log" ||
	fail "no notice that the maps of schema 1 were adopted"
kill -TERM "$DPID"
wait "$DPID" || true
DPID=""
ver=$(bpftool map lookup pinned "$PIN/bpflb_schema" key 0x6c 0x62 0 0 0 0 0 0 0 0 0 0 0 0 0 0 -j |
	python3 -c 'import json,sys; print(int(json.load(sys.stdin)["value"][4], 16))')
((ver == 2)) || fail "the adopted maps are recorded as schema $ver, not 2"
ok "maps of schema 1 are adopted in place and recorded as schema 2"

# --- pinned maps of another schema version: --check-config refuses as start does
write_config "$PIN" 10.96.0.1 "ct_size = 4096"
# bpflb_schema["lb"] = {magic "bplb", version 99}
bpftool map update pinned "$PIN/bpflb_schema" key 0x6c 0x62 0 0 0 0 0 0 0 0 0 0 0 0 0 0 \
	value 0x62 0x6c 0x70 0x62 99 0 0 0
if nsn "$BPFLBD" --config "$TMP/bpflb.ini" --check-config >"$TMP/log" 2>&1; then
	fail "--check-config accepted pinned maps of schema version 99"
fi
grep -q "for 'lb' have schema version 99, this build needs" "$TMP/log" ||
	fail "--check-config: no clear schema refusal"
ok "--check-config refuses pinned maps of another schema version, as start does"

# --- --cleanup removes what bpflb pinned, by name, and nothing else ------------
write_config "$PIN" 10.96.0.1 "ct_size = 4096"
bpftool map create "$PIN/foreign" type array key 4 value 4 entries 1 name foreign
nsn "$BPFLBD" --config "$TMP/bpflb.ini" --cleanup >"$TMP/log" 2>&1 || fail "--cleanup failed"
[[ -e $PIN/foreign ]] || fail "--cleanup removed a pin bpflb did not make"
left=$(ls "$PIN")
[[ $left == foreign ]] || fail "--cleanup left pins of bpflb: $left"
grep -q "left 1 entries bpflb did not make there: foreign" "$TMP/log" ||
	fail "--cleanup does not name the foreign pin it left"
rm -f "$PIN/foreign"
rmdir "$PIN"
ok "--cleanup removes bpflb's pins by name and leaves (and names) a foreign one"

# --- ip netns exec: a private bpffs --------------------------------------------
write_config "$PIN" 10.96.0.1
private="mount namespace other than PID 1's"
ip netns exec "$NS" "$BPFLBD" --config "$TMP/bpflb.ini" --check-config >"$TMP/log" 2>&1 ||
	fail "--check-config under ip netns exec refused a good file"
grep -q "$private" "$TMP/log" || fail "--check-config under ip netns exec: no warning"
nsn "$BPFLBD" --config "$TMP/bpflb.ini" --check-config >"$TMP/log" 2>&1
grep -q "$private" "$TMP/log" && fail "--check-config warns under nsenter --net (the host's bpffs)"
ip netns exec "$NS" "$BPFLBD" --config "$TMP/bpflb.ini" >"$TMP/log" 2>&1 &
DPID=$!
for _ in $(seq 100); do
	grep -q "running: mode" "$TMP/log" && break
	kill -0 "$DPID" 2>/dev/null || fail "bpflbd exited at start under ip netns exec"
	sleep 0.1
done
grep -q "warning: bpffs_root $PIN: .*$private" "$TMP/log" || fail "start under ip netns exec: no warning"
[[ -e $PIN ]] && fail "pins made under ip netns exec appeared in the host's bpffs"
kill -TERM "$DPID"
wait "$DPID" || true
DPID=""
grep -q "goes with this private mount namespace" "$TMP/log" ||
	fail "stop under ip netns exec still claims the pinned state stays"
grep -q "pinned state stay in place" "$TMP/log" && fail "stop claims pinned state stays in place"
if ip netns exec "$NS" "$BPFLBD" --config "$TMP/bpflb.ini" --cleanup >"$TMP/log" 2>&1; then
	fail "--cleanup under ip netns exec claimed success on a bpffs it cannot see"
fi
grep -q "$private" "$TMP/log" || fail "--cleanup under ip netns exec: no warning"
ok "ip netns exec: warned at --check-config, start, stop and --cleanup"
echo PASS
