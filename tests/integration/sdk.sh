#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The SDK as a vendor uses it: install bpflb into a scratch prefix with
# `cmake --install`, build examples/vendor-plugin out of tree with nothing but
# pkg-config bpflb-sdk, then run it in bpflbd inside a network namespace and
# see its BPF program count real packets.
#
# The install goes into a DESTDIR under the test's own directory, and every
# file it wrote must lie below DESTDIR/PREFIX: an install that reaches outside
# its prefix (the example config to /etc/bpflb) fails here instead of writing
# into the machine.
#
# Usage: sdk.sh BUILD_DIR
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:?usage: sdk.sh BUILD_DIR}
P="bls$$"
TMP=$(mktemp -d /tmp/bpflb-sdk-XXXXXX)
# The plugin dir must not be under /tmp: bpflbd refuses a 1777 ancestor.
PLUGDIR=$(mktemp -d "$(cd "$BUILD" && pwd)/tests/sdk-plugins.XXXXXX")
PIN=/sys/fs/bpf/bpflb-sdk-$P
DPID=""
cleanup() {
	set +e
	[[ -n $DPID ]] && kill -9 "$DPID" 2>/dev/null
	ip netns del "${P}a" 2>/dev/null
	ip netns del "${P}b" 2>/dev/null
	rm -rf "$TMP" "$PIN" "$PLUGDIR"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [[ -f $TMP/log ]] && cat "$TMP/log" >&2; exit 1; }

DEST=$TMP/dest
PFX=$DEST$TMP/prefix
DESTDIR=$DEST cmake --install "$BUILD" --prefix "$TMP/prefix" >/dev/null
outside=$(find "$DEST" ! -type d | grep -v "^$PFX/" || true)
[[ -z $outside ]] || fail "cmake --install --prefix $TMP/prefix wrote outside the prefix: $outside"
[[ -f $PFX/etc/bpflb/bpflb.ini ]] || fail "the example config is not in PREFIX/etc/bpflb"
echo "ok - cmake --install --prefix P writes only below P (config in P/etc/bpflb)"
cp -r "$SRC/examples/vendor-plugin" "$TMP/plugin"
PKG_CONFIG_PATH="$PFX/share/pkgconfig" make -s -C "$TMP/plugin" >/dev/null ||
	fail "the example plugin does not build against the installed SDK"
[[ $(PKG_CONFIG_PATH="$PFX/share/pkgconfig" pkg-config --modversion bpflb-sdk) == [0-9]* ]] ||
	fail "pkg-config bpflb-sdk has no version"
chmod 0755 "$PLUGDIR" && install -m 0755 -o root -g root "$TMP/plugin/hello.so" "$PLUGDIR/"
echo "ok - example plugin built out of tree with pkg-config bpflb-sdk"

ip netns add "${P}a"; ip netns add "${P}b"
ip link add "${P}x" type veth peer name "${P}y"
ip link set "${P}x" netns "${P}a"; ip link set "${P}y" netns "${P}b"
ip -n "${P}a" addr add 10.97.0.1/24 dev "${P}x"; ip -n "${P}b" addr add 10.97.0.2/24 dev "${P}y"
ip -n "${P}a" link set "${P}x" up; ip -n "${P}b" link set "${P}y" up
cat >"$TMP/bpflb.ini" <<INI
[daemon]
mode = none
features = hello
plugin_dir = $PLUGDIR
bpffs_root = $PIN
state_dir = $TMP/state
devices = ${P}x
[node]
name = sdk
address = 10.97.0.1
[hello]
greeting = grüezi
INI
nsenter --net=/run/netns/"${P}a" "$PFX/sbin/bpflbd" --config "$TMP/bpflb.ini" --check-config 2>"$TMP/log" ||
	fail "installed bpflbd rejects a config enabling the example plugin"
nsenter --net=/run/netns/"${P}a" "$PFX/sbin/bpflbd" --config "$TMP/bpflb.ini" >"$TMP/log" 2>&1 &
DPID=$!
for _ in $(seq 50); do grep -q "running: mode" "$TMP/log" && break; sleep 0.1; done
grep -q "plugin hello: grüezi from an out-of-tree plugin" "$TMP/log" || fail "plugin did not apply"
nsenter --net=/run/netns/"${P}b" "$BUILD/tests/tools/peerc" udp 10.97.0.1 9 --count 5 --timeout 100 >/dev/null || true
n=$(bpftool map lookup pinned "$PIN/hello_packets" key 0 0 0 0 -j | python3 -c \
	'import json,sys; print(int.from_bytes(bytes(int(b,16) for b in json.load(sys.stdin)["value"]),"little"))')
((n >= 5)) || fail "the plugin's program counted $n packets, expected at least 5"
echo "ok - bpflbd runs the out-of-tree plugin in its pipeline ($n packets counted)"
echo PASS
