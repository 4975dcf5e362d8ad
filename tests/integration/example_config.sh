#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# etc/bpflb.ini, the documented example, must stay valid: check it with the
# plugins of this build (devices pointed at lo, which every machine has).
# --check-config wants the [node] address on a local interface, as start does:
# the check runs in a network namespace of its own (no name, gone with the
# process) whose lo carries the example's address.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:?usage: example_config.sh BUILD_DIR}
TMP=$(mktemp -d /tmp/bpflb-example-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
sed -e "s|^plugin_dir = .*|plugin_dir = $BUILD/plugins-out|" -e 's|^devices = .*|devices = lo|' \
	"$SRC/etc/bpflb.ini" >"$TMP/bpflb.ini"
addr=$(sed -n '/^\[node\]/,/^\[/s/^address = //p' "$TMP/bpflb.ini")
[[ -n $addr ]] || { echo "FAIL: no [node] address in etc/bpflb.ini" >&2; exit 1; }
# root: a plain network namespace; otherwise one in a user namespace.
unshare_net=(unshare --net)
((EUID == 0)) || unshare_net=(unshare --map-root-user --net)
"${unshare_net[@]}" sh -c 'ip link set lo up && ip addr add "$1/32" dev lo &&
	exec "$2" --config "$3" --check-config' sh "$addr" "$BUILD/core/bpflbd" "$TMP/bpflb.ini"
